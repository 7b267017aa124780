"""The node table a static node publishes: its versions, the change each version made, and
the bytes a member is sent to catch up (the changes since the version it holds, or the whole
table in datagram-sized chunks). What is in the table is hub.py's to decide.
"""

from __future__ import annotations

from typing import Optional

from .messages import NodeInfo, TableChunk, chunk_table, encode

KEEP_DELTAS = 16  # table versions whose changes a static node keeps for members catching up


class Published:
    """The versions of one static node's table; `publish` makes the next from the entries."""

    def __init__(self, me: NodeInfo) -> None:
        self.version = 1
        self._chunks: Optional[list[TableChunk]] = None
        self._encoded: Optional[list[tuple[int, bytes]]] = None
        # The table as published at `version` (what chunks() serves), and per version the
        # change from the one before: (entries added or changed, public keys removed).
        self._published: dict[str, NodeInfo] = {me.public_key: me}
        self._deltas: dict[int, tuple[list[NodeInfo], list[str]]] = {}
        self._encoded_updates: dict[int, list[tuple[int, bytes]]] = {}  # by base version

    def publish(self, entries: list[NodeInfo]) -> None:
        """The next version, with `entries` as the whole table."""
        self.version += 1
        current = {e.public_key: e for e in entries}
        before = self._published
        self._deltas[self.version] = (
            [e for k, e in current.items() if before.get(k) != e],
            [k for k in before if k not in current],
        )
        self._deltas.pop(self.version - KEEP_DELTAS, None)
        self._published = current
        self._chunks = None
        self._encoded = None
        self._encoded_updates = {}

    def chunks(self) -> list[TableChunk]:
        """The table as published at `version`."""
        if self._chunks is None:
            self._chunks = chunk_table(self.version, list(self._published.values()))
        return self._chunks

    def encoded_chunks(self) -> list[tuple[int, bytes]]:
        """`chunks()` as (message type, body): every member asking for the table gets the
        same bytes, so they are encoded once per version instead of once per request."""
        if self._encoded is None:
            self._encoded = [encode(c) for c in self.chunks()]
        return self._encoded

    def encoded_update(self, held: int) -> list[tuple[int, bytes]]:
        """What a member holding version `held` of our table needs: nothing, the changes since
        (one datagram for a join or an endpoint change, instead of the whole table to every
        member), or the whole table when we no longer have every change since `held`."""
        if held == self.version:
            return []
        steps = range(held + 1, self.version + 1)
        if held <= 0 or held > self.version or any(v not in self._deltas for v in steps):
            return self.encoded_chunks()
        cached = self._encoded_updates.get(held)
        if cached is None:
            changed: dict[str, NodeInfo] = {}
            removed: set[str] = set()
            for v in steps:
                upserts, gone = self._deltas[v]
                for key in gone:
                    changed.pop(key, None)
                    removed.add(key)
                for e in upserts:
                    changed[e.public_key] = e
                    removed.discard(e.public_key)
            chunks = chunk_table(self.version, list(changed.values()), held, tuple(sorted(removed)))
            if len(chunks) >= len(self.chunks()):
                cached = self.encoded_chunks()  # a change as big as the table: send the table
            else:
                cached = [encode(c) for c in chunks]
            self._encoded_updates[held] = cached
        return cached
