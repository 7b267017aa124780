"""A mesh with a network CA, in the simulator: certified nodes converge as in shared-key mode;
a node that holds the shared key but no valid certificate for what it claims is accepted by
no honest node (no WireGuard peer, no table entry); a certificate that expires takes its node
out of the mesh, a renewed one before expiry keeps it in."""

from __future__ import annotations

import itertools

import pytest
import simnet
from simnet import SimNet

from wg_netmanager.core.cert import CaKey

HONEST = ("alpha", "beta", "charlie", "delta")


def ca_mesh(revoked: frozenset[int] = frozenset()) -> SimNet:
    net = SimNet()
    net.ca = CaKey(bytes([7]) * 32)
    net.revoked = revoked
    return simnet.seed_basic(net)


def honest_whole(net: SimNet, hosts: tuple[str, ...] = HONEST) -> bool:
    return all(net.reachable(a, b) for a, b in itertools.permutations(hosts, 2))


def knows(net: SimNet, who: str, key: str) -> list[str]:
    """The hosts that have `key` as a WireGuard peer, a table entry or a view entry."""
    found = []
    for h in net.hosts.values():
        if h.name == who:
            continue
        node = h.node
        in_table = any(key in link.table for link in node.links.values())
        members = node.hub.members if node.hub else {}
        if key in h.wg or key in node.view or in_table or key in members:
            found.append(h.name)
    return found


def test_a_certified_mesh_converges_with_direct_paths() -> None:
    net = ca_mesh()
    net.run_until(lambda: honest_whole(net), timeout=10)
    net.run_until(lambda: net.path("charlie", "delta") == "lan" and net.path("alpha", "charlie") == "nat", 10)
    for h in net.hosts.values():
        st = h.node.status(net.now)
        assert st["mode"] == "ca" and st["converged"], st
        assert sum(st["drops"].values()) == 0, st["drops"]


ROGUE = CaKey(bytes([8]) * 32)
SERIAL = 0x5E7


@pytest.mark.parametrize(
    "case", ["no certificate", "self-signed", "another node's", "expired", "revoked", "other address"]
)
def test_a_member_without_a_valid_certificate_is_accepted_by_no_one(case: str) -> None:
    net = ca_mesh(revoked=frozenset({SERIAL}))
    net.run_until(lambda: honest_whole(net), timeout=10)
    cert = {
        "no certificate": b"",
        "self-signed": net.certify("mallory", "10.1.1.9", ca=ROGUE),
        "another node's": net.certify("charlie", "10.1.1.3"),
        "expired": net.certify("mallory", "10.1.1.9", days=-0.5),
        "revoked": net.certify("mallory", "10.1.1.9", serial=SERIAL),
        "other address": net.certify("mallory", "10.1.1.19"),
    }[case]
    # mallory holds the shared key and runs the real core, believing in a CA of its own
    # choice (so that it does not refuse itself); it sits beside charlie and delta.
    mallory = net.add_host(
        "mallory", "192.168.1.9", "10.1.1.9", nat=net.nats["203.0.113.10"], cert=cert, ca=ROGUE
    )
    rejected = net.hosts["beta"].node.drops["rejected"]
    net.run_until(lambda: net.hosts["beta"].node.drops["rejected"] >= rejected + 5, timeout=10)
    assert knows(net, "mallory", mallory.key) == []
    assert honest_whole(net)


def test_an_expiring_certificate_leaves_the_mesh_and_a_renewed_one_stays() -> None:
    net = ca_mesh()
    net.hosts["charlie"].node.set_cert(net.certify("charlie", "10.1.1.3", days=30 / 86400))
    net.hosts["delta"].node.set_cert(net.certify("delta", "10.1.1.4", days=30 / 86400))
    net.run_until(lambda: honest_whole(net), timeout=10)
    net.hosts["delta"].node.set_cert(net.certify("delta", "10.1.1.4", days=1))  # renewed in time
    net.run_until(lambda: not knows(net, "charlie", net.hosts["charlie"].key), timeout=40)
    assert honest_whole(net, ("alpha", "beta", "delta"))
    assert not net.reachable("alpha", "charlie")
