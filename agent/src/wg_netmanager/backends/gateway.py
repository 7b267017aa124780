"""A subnet gateway's side of the data plane: packets from the mesh to the LAN subnets this
node announces, and their answers, are forwarded; with `masquerade` they reach the LAN from
the node's own LAN address, for LANs whose hosts have no route back to the mesh.

IPv4 checks the forwarding flag of the interface a packet came in on. The mesh's side is the
WireGuard interface's flag (netlink.set_forwarding: on for any node that relays); the answers
come in on the LAN interface, whose flag is set here and put back as it was when the node
stops announcing the subnet or the agent stops. Masquerading is one nftables table of the
agent's own, `ip wg_netmanager_IFNAME`, written and removed whole with `nft -f -` (no one
else's rules are touched).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from ipaddress import IPv4Network

from . import netlink
from .base import BackendError

log = logging.getLogger(__name__)

NFT_TIMEOUT = 10.0
EVERYTHING = IPv4Network("0.0.0.0/0")


class Gateway:
    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.table = f"wg_netmanager_{ifname}"
        self._turned_on: set[str] = set()  # LAN interfaces whose forwarding flag we set
        self._nat: tuple[IPv4Network, ...] = ()  # subnets masqueraded now

    def sync(self, subnets: tuple[IPv4Network, ...], masquerade: bool, exit_offer: bool = False) -> None:
        """`exit_offer`: an exit node, whose interfaces with a default route forward what comes
        from the mesh, and all of it is masqueraded."""
        lan = netlink.interfaces_on(subnets, exclude=self.ifname)
        if exit_offer:
            lan |= netlink.default_interfaces(exclude=self.ifname)
        for name in sorted(lan - self._turned_on):
            if not netlink.forwarding(name):
                netlink.set_forwarding(name, True)
                self._turned_on.add(name)
                log.info("%s: forwarding on for the subnets behind it", name)
        for name in sorted(self._turned_on - lan):
            self._put_back(name)
        nat = (EVERYTHING,) if exit_offer else subnets if masquerade else ()
        if nat != self._nat:
            self._nft(self._ruleset(nat))
            self._nat = nat
            log.info("%s: masquerading %s", self.ifname, ", ".join(map(str, nat)) or "nothing")

    def close(self) -> None:
        """Undo what `sync` did; every step is tried."""
        for name in sorted(self._turned_on):
            self._put_back(name)
        if self._nat:
            try:
                self._nft(self._ruleset(()))
                self._nat = ()
            except BackendError as exc:
                log.warning("%s", exc)

    def _put_back(self, name: str) -> None:
        self._turned_on.discard(name)
        try:
            netlink.set_forwarding(name, False)
        except BackendError as exc:
            log.warning("%s", exc)

    def _ruleset(self, nat: tuple[IPv4Network, ...]) -> str:
        # Adding the table first makes the delete succeed whether or not it was there: the
        # whole file is one transaction, so no moment without the rule or with it twice.
        text = f"table ip {self.table} {{}}\ndelete table ip {self.table}\n"
        if nat:
            daddr = "" if nat == (EVERYTHING,) else f"ip daddr {{ {', '.join(str(n) for n in nat)} }} "
            text += (
                f"table ip {self.table} {{\n"
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                f'    iifname "{self.ifname}" oifname != "{self.ifname}" {daddr}masquerade\n'
                "  }\n"
                "}\n"
            )
        return text

    def _nft(self, script: str) -> None:
        nft = shutil.which("nft")
        if nft is None:
            raise BackendError("masquerading needs nftables (`nft` not found)")
        try:
            res = subprocess.run(
                [nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"nft: {exc}") from None
        if res.returncode != 0:
            raise BackendError(f"nft: {res.stderr.strip() or f'exit {res.returncode}'}")
