"""How fast a static node drops what it must drop: the core alone, one core, no sockets.

Run: .venv/bin/python bench/junk.py [SECONDS]
Each row feeds one kind of datagram to a static node's `Node.datagram` for SECONDS (default
2) and prints datagrams per second, microseconds each, and how they were counted: junk
without the shared key (with the protocol's magic, so it reaches the mac1 check), a
member's datagram sealed for another node (mac1 wrong), a replay of a real datagram, a
member forging another node's key (mac1 right, decryption fails), and a member flooding
fresh identities from one address (rate-limited before the Diffie-Hellman).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from corekit import NOW, SHARED, Fake, beta  # noqa: E402

from wg_netmanager.core import messages as m  # noqa: E402
from wg_netmanager.core import wire  # noqa: E402
from wg_netmanager.core.model import Endpoint  # noqa: E402
from wg_netmanager.core.node import Node  # noqa: E402
from wg_netmanager.core.wire import Codec, Identity  # noqa: E402

SRC = Endpoint("192.0.2.66", 40066)


def rate(node: Node, feed: Callable[[int], bytes], seconds: float) -> tuple[float, dict[str, int]]:
    before = dict(node.drops)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            node.datagram(NOW, feed(n), SRC)
            n += 1
    per_s = n / (time.perf_counter() - start)
    return per_s, {k: v - before.get(k, 0) for k, v in node.drops.items() if v != before.get(k, 0)}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    hub, member, other = beta(), Fake(66), Fake(77)
    to_hub = (hub.codec.identity.public, hub.codec.epoch)
    probe = m.encode(m.Probe("mallory", member.key, 1))
    junk = [wire.MAGIC + bytes((wire.WIRE_VERSION, wire.KIND_SEALED)) + os.urandom(1394) for _ in range(64)]
    for_other = [member.codec.seal(1, os.urandom(200), other.identity.public, 5) for _ in range(64)]
    real = member.codec.seal(*probe, *to_hub)
    hub.datagram(NOW, real, SRC)  # accepted once; every copy after is a replay
    forged = bytearray(member.codec.seal(*probe, *to_hub))
    forged[6:38] = other.identity.public
    forged[-16:] = wire.blake(bytes(forged[:-16]), member.codec.mac1_key(to_hub[0]), 16)
    fresh = [Codec(SHARED, Identity(os.urandom(32)), 9) for _ in range(512)]
    rows: list[tuple[str, Callable[[int], bytes]]] = [
        ("junk without the shared key", lambda n: junk[n % 64]),
        ("a member's datagram for another node", lambda n: for_other[n % 64]),
        ("a replayed datagram", lambda n: real),
        ("a forgery of another node's key", lambda n: bytes(forged)),
        ("fresh identities from one address", lambda n: fresh[n % 512].seal(*probe, *to_hub)),
    ]
    print(
        f"wg_netmanager core drop rates, {date.today()}, `bench/junk.py {seconds:g}`, "
        f"Python {platform.python_version()}, one core"
    )
    print(f"{'datagram':40} {'per s':>9} {'us each':>8}  counted as")
    for name, feed in rows:
        per_s, drops = rate(hub, feed, seconds)
        print(f"{name:40} {per_s:9.0f} {1e6 / per_s:8.1f}  {drops}")


if __name__ == "__main__":
    main()
