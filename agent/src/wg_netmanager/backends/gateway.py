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
from ipaddress import IPv4Network

from . import netlink, nft
from .base import BackendError

log = logging.getLogger(__name__)

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
        body = ""
        if nat:
            daddr = "" if nat == (EVERYTHING,) else f"ip daddr {{ {', '.join(str(n) for n in nat)} }} "
            body = (
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                f'    iifname "{self.ifname}" oifname != "{self.ifname}" {daddr}masquerade\n'
                "  }\n"
            )
        return nft.replace_table(self.table, body)

    def _nft(self, script: str) -> None:
        nft.run_script(script, "masquerading")
