"""Which claims this node believes, on the shell's wall clock.

`Belief` holds the trust (trust.py: the network CA and the revoked serials) and the wall
clock as an offset from `now`: certificates are valid from and until a wall-clock time. A
pass over the claims in view (the view's merge, between `start_pass` and `end_pass`) leaves
`due`, the `now` at which one of their certificates expires or becomes valid: what is
believed changes then with no message at all, and the view is merged again.
"""

from __future__ import annotations

import math
from ipaddress import IPv4Network
from typing import Optional

from .messages import NodeInfo
from .trust import Trust


class Belief:
    def __init__(self, ca_public_key: Optional[bytes], revoked: frozenset[int]) -> None:
        self.trust = Trust(ca_public_key, revoked)
        self.wall_offset = 0.0  # wall clock minus `now`
        self.due = math.inf  # `now` at which a certificate in view expires or starts

    def set_wall_clock(self, offset: float) -> bool:
        """The wall clock minus `now`, as the shell reads it; True if it moved by more than
        a second (the wall clock was set), and what is believed may have changed."""
        if abs(offset - self.wall_offset) <= 1.0:
            return False
        self.wall_offset = offset
        return True

    def set_trust(self, ca_public_key: Optional[bytes], revoked: frozenset[int]) -> bool:
        """A reload's network CA and revocation list; True if either changed."""
        if (ca_public_key, revoked) == (self.trust.ca, self.trust.revoked):
            return False
        self.trust = Trust(ca_public_key, revoked)
        return True

    def vouch(self, info: NodeInfo, now: float) -> Optional[str]:
        """Why `info`'s claim is not believed (trust.py), or None."""
        return self.trust.check(*info.claim, now + self.wall_offset)

    def certified_subnets(self, info: NodeInfo) -> Optional[tuple[IPv4Network, ...]]:
        """The subnets `info`'s certificate lets it route (none if it has no valid one);
        None without a network CA (subnets.plan)."""
        if self.trust.ca is None:
            return None
        cert = self.trust.certificate(*info.claim)
        return () if isinstance(cert, str) else tuple(cert.subnets)

    def costly(self, info: NodeInfo) -> bool:
        """Whether vouching for `info` would verify a signature (`Trust.costly`)."""
        return self.trust.costly(*info.claim)

    def start_pass(self) -> None:
        """A pass over the claims in view begins: `vouch` notes their certificates' times."""
        self.trust.soonest = math.inf

    def end_pass(self) -> None:
        """The pass is over: `due` is the soonest of those times, on the node's clock."""
        self.due = self.trust.soonest - self.wall_offset
