"""A deterministic simulated network for the sans-IO core: hosts, NAT routers, WireGuard.

Hosts are public or behind a NAT router. Routers behave like the lab's home routers
(port-restricted cone: one public port per internal socket, inbound only from addresses the
socket has sent to) or are symmetric (a new public port per destination). WireGuard is
modelled at the level the core observes: handshakes (initiation + response through the NATs,
retried every 5 s), keepalives, roaming of endpoints, counters, and AllowedIPs-based
forwarding for the reachability check. A desired state is applied to the fake peers with the
real backends' `plan_peers`, so the peer re-creation rule simulated is the one that runs.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Optional

from wg_netmanager.backends.base import PeerState
from wg_netmanager.backends.reconcile import plan_peers
from wg_netmanager.core.cert import CaKey, sign
from wg_netmanager.core.mobile import params as mobile_params
from wg_netmanager.core.model import SLOTS, DesiredState, Endpoint, PeerStats
from wg_netmanager.core.node import Node, Params, StaticNode
from wg_netmanager.core.trust import compact
from wg_netmanager.core.wire import Identity

SUBNET = IPv4Network("10.1.0.0/16")
WG_PORT, ADMIN_PORT = 50000, 50001
REKEY_TIMEOUT = 5.0  # wireguard-go's: at most one handshake initiation per peer this often
# A side that sends and hears nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT gives up on
# its session and starts a handshake (a peer whose WireGuard restarted drops what we send
# under the old session, and learns nothing from it).
SESSION_GIVE_UP = 15.0
# Bytes of WireGuard's messages on the wire (UDP payload): initiation, response, keepalive.
SIZES = {b"I": 148, b"R": 92, b"K": 32}


@dataclass
class Nat:
    public_ip: str
    symmetric: bool = False
    next_port: int = 20000
    out: dict[tuple, int] = field(default_factory=dict)  # (priv ip, port[, dst]) -> public port
    back: dict[int, tuple[str, int]] = field(default_factory=dict)  # public port -> (priv ip, port)
    # public port -> the (remote ip, port)s it sent to, which may answer; a mapping's
    # permissions go with it when its port is given to another (a router's expired mapping)
    allowed: dict[int, set[tuple[str, int]]] = field(default_factory=dict)


@dataclass(**SLOTS)
class WgPeer:
    endpoint: Optional[Endpoint] = None
    allowed: tuple[IPv4Network, ...] = ()
    keepalive: int = 0
    last_handshake: float = 0.0
    session: bool = False
    responded: bool = False  # answered an initiation, no packet under that session yet
    heard: float = 0.0  # when it last received from the peer (handshake or data)
    next_send: float = 0.0
    rx: int = 0
    tx: int = 0
    stats: Optional[PeerStats] = None  # the last one handed out, while nothing changed


@dataclass
class Host:
    name: str
    ip: str  # its own address (private when behind a NAT)
    nat: Optional[Nat]
    node: Node
    key: str
    wg: dict[str, WgPeer] = field(default_factory=dict)
    wg_generations: dict[str, int] = field(default_factory=dict)  # as ManagedBackend keeps them
    firewall: bool = False  # drops unsolicited inbound (alpha)
    fw_allowed: set[tuple[int, str, int]] = field(default_factory=set)
    alive: bool = True
    applied: Optional[DesiredState] = None


class SimNet:
    def __init__(self, seed: int = 1, latency: float = 0.005) -> None:
        self.rng = random.Random(seed)
        self.now = 1_700_000_000.0
        self.latency = latency
        self.hosts: dict[str, Host] = {}
        self.by_ip: dict[str, Host] = {}
        self.nats: dict[str, Nat] = {}
        self.queue: list[tuple[float, int, str, Endpoint, Endpoint, bytes]] = []
        self.seq = 0
        self.statics: list[StaticNode] = []
        self.shared = bytes(self.rng.getrandbits(8) for _ in range(32))
        self.admin_packets = 0
        self.admin_bytes = 0
        self.admin_sent: dict[str, int] = {}  # control datagrams sent, per host
        # Every datagram a host sent and received (WireGuard's too): [sent, bytes, received, bytes]
        self.traffic: dict[str, list[int]] = {}
        self.muted: set[str] = set()  # hosts whose control datagrams are lost (WireGuard's are not)
        # (sender, receiver): WireGuard datagrams sent directly between these two hosts are lost
        # (a path that works one way only); through a third host they pass.
        self.one_way: set[tuple[str, str]] = set()
        self.verify_desired = False  # check Node.desired()'s cache against a fresh computation
        # Tick a node only when its next_deadline() says so (as the daemon does), to check
        # that the deadline misses nothing; `ticks` counts the ticks made.
        self.lazy = False
        self.ticks = 0
        self.ca: Optional[CaKey] = None  # with a network CA, every host gets a certificate
        self.revoked: frozenset[int] = frozenset()

    # --- building ---------------------------------------------------------------------------

    def add_nat(self, public_ip: str, symmetric: bool = False) -> Nat:
        nat = Nat(public_ip, symmetric)
        self.nats[public_ip] = nat
        return nat

    def add_static(self, name: str, ip: str, wg_ip: str, named: bool = True) -> None:
        """A static node as net.yaml lists it; `named=False`: the original's list form, where
        only the wgIp says which node it is (`name` is then the placeholder config makes)."""
        self.statics.append(StaticNode(name, IPv4Address(wg_ip), ip, WG_PORT, ADMIN_PORT, named))

    def add_host(
        self,
        name: str,
        ip: str,
        wg_ip: str,
        nat: Optional[Nat] = None,
        firewall: bool = False,
        cert: Optional[bytes] = None,
        ca: Optional[CaKey] = None,
        mobile: bool = False,
    ) -> Host:
        """`cert`: the host's certificate (compact) instead of one from the network CA; `ca`:
        the CA the host believes in instead of the network's (an attacker's own)."""
        identity = sim_identity(name)
        key = base64.b64encode(identity.public).decode()
        if cert is None and self.ca is not None:
            cert = self.certify(name, wg_ip)
        trusted = ca or self.ca
        params = Params(
            name,
            IPv4Address(wg_ip),
            SUBNET,
            key,
            WG_PORT,
            ADMIN_PORT,
            tuple(self.statics),
            ca_public_key=trusted.public if trusted else None,
            revoked=self.revoked,
            cert=cert or b"",
        )
        if mobile:
            params = mobile_params(params)
        node = Node(params, self.shared, identity, self.now, random.Random(self.rng.getrandbits(32)))
        prefix = 24
        node.set_locals([IPv4Interface(f"{ip}/{prefix}")])
        host = Host(name, ip, nat, node, key, firewall=firewall)
        self.hosts[name] = host
        self.by_ip[ip] = host
        return host

    # --- churn (tests/sim/soak.py) ---------------------------------------------------------

    def restart(self, name: str) -> None:
        """The host's agent starts again (same key, a new run), on a new WireGuard interface."""
        host = self.hosts[name]
        old = host.node
        node = Node(old.p, self.shared, sim_identity(name), self.now, random.Random(self.rng.getrandbits(32)))
        node.set_locals(list(old.locals) or [IPv4Interface(f"{host.ip}/24")])
        host.node, host.alive, host.applied = node, True, None
        host.wg, host.wg_generations = {}, {}

    def leave(self, name: str) -> None:
        """SIGTERM: the agent says LEAVE to its static nodes, then the host is gone."""
        host = self.hosts[name]
        host.node.leave(self.now)
        for data, dst in host.node.take_outgoing():
            self.send(host, ADMIN_PORT, dst, data)
        host.alive = False

    def move(self, name: str, ip: str, nat: Optional[Nat]) -> None:
        """The host gets another address (another LAN, or behind another router): roaming."""
        host = self.hosts[name]
        if self.by_ip.get(host.ip) is host:
            del self.by_ip[host.ip]
        host.ip, host.nat = ip, nat
        self.by_ip[ip] = host
        host.node.set_locals([IPv4Interface(f"{ip}/24")])

    def certify(
        self, name: str, wg_ip: str, *, ca: Optional[CaKey] = None, serial: int = 0, days: float = 30
    ) -> bytes:
        """A certificate (compact) for `name`'s key, from the network CA (or `ca`), valid
        from a day ago for `days` from now."""
        signer = ca or self.ca
        assert signer is not None
        c = sign(
            signer,
            serial=serial or self.rng.getrandbits(63) + 1,
            name=name,
            wg_ip=IPv4Address(wg_ip),
            public_key=base64.b64encode(sim_identity(name).public).decode(),
            not_before=int(self.now) - 86400,
            not_after=int(self.now + days * 86400),
        )
        return compact(c)

    # --- packets ----------------------------------------------------------------------------

    def _translate_out(self, host: Host, sport: int, dst: Endpoint) -> Optional[Endpoint]:
        """Source address as seen on the internet, recording what the NAT/firewall lets back."""
        if host.nat is None:
            if host.firewall:
                host.fw_allowed.add((sport, dst.host, dst.port))
            return Endpoint(host.ip, sport)
        nat = host.nat
        dst_host = self.by_ip.get(dst.host)
        if dst_host is not None and dst_host.nat is nat:
            return Endpoint(host.ip, sport)  # same LAN
        if dst_host is not None and dst_host.nat is not None:
            return None  # another LAN's private address: not routed
        key = (host.ip, sport, dst.host, dst.port) if nat.symmetric else (host.ip, sport)
        if key not in nat.out:
            port = nat.next_port + (self.rng.randrange(1, 50) if nat.symmetric else 1)
            if port > 65535:  # ports are reused, as a router's are once its mappings expire
                port = 20000 + port % 1000
            nat.next_port = port
            stale = [k for k, p in nat.out.items() if p == port] if port in nat.back else []
            for k in stale:
                del nat.out[k]
            nat.out[key] = port
            nat.back[port] = (host.ip, sport)
            nat.allowed.pop(port, None)
        port = nat.out[key]
        nat.allowed.setdefault(port, set()).add((dst.host, dst.port))
        return Endpoint(nat.public_ip, port)

    def send(self, host: Host, sport: int, dst: Endpoint, data: bytes) -> None:
        if not host.alive:
            return
        if sport == ADMIN_PORT:
            self.admin_sent[host.name] = self.admin_sent.get(host.name, 0) + 1
            if host.name in self.muted:
                return
            if IPv4Address(dst.host) in SUBNET:  # to a wgIp: through the tunnel
                self._wg_send(host, dst, data)
                return
        counts = self.traffic.setdefault(host.name, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += SIZES.get(data[:1], len(data)) if sport == WG_PORT else len(data)
        src = self._translate_out(host, sport, dst)
        if src is None:
            return
        self.seq += 1
        heapq.heappush(self.queue, (self.now + self.latency, self.seq, host.name, src, dst, data))

    def _arrive(self, sender: str, src: Endpoint, dst: Endpoint, data: bytes) -> None:
        nat = self.nats.get(dst.host)
        if nat is not None:
            if (src.host, src.port) not in nat.allowed.get(dst.port, ()):
                return
            ip, port = nat.back[dst.port]
            target, dport = self.by_ip.get(ip), port  # None: the host moved away (stale mapping)
            if target is None:
                return
        else:
            target = self.by_ip.get(dst.host)
            if target is None:
                return
            if target.nat is not None and self.hosts[sender].nat is not target.nat:
                return
            if target.firewall and (dst.port, src.host, src.port) not in target.fw_allowed:
                return
            dport = dst.port
        if not target.alive or (dport == WG_PORT and (sender, target.name) in self.one_way):
            return
        counts = self.traffic.setdefault(target.name, [0, 0, 0, 0])
        counts[2] += 1
        counts[3] += SIZES.get(data[:1], len(data)) if dport == WG_PORT else len(data)
        if dport == ADMIN_PORT:
            self.admin_packets += 1
            self.admin_bytes += len(data)
            target.node.datagram(self.now, data, src)
            for reply, to in target.node.take_outgoing():  # as the daemon: answers go out at once
                self.send(target, ADMIN_PORT, to, reply)
        elif dport == WG_PORT:
            self._wg_receive(target, src, data)

    # --- WireGuard --------------------------------------------------------------------------

    def _wg_send(self, host: Host, dst: Endpoint, data: bytes) -> None:
        """A control datagram to a wgIp: WireGuard carries it (b"D", 32 bytes more) to the
        peer whose AllowedIPs hold it, if a session is up, and it arrives from our wgIp."""
        key = self._peer_for(host, IPv4Address(dst.host))
        peer = host.wg.get(key) if key else None
        if peer is None or not peer.session or peer.endpoint is None:
            return
        peer.tx += 32 + len(data)
        if peer.keepalive:
            peer.next_send = self.now + peer.keepalive  # a persistent keepalive waits for silence
        inner = f"{host.node.p.wg_ip}|{dst.host}|".encode() + data
        self.send(host, WG_PORT, peer.endpoint, b"D" + host.key.encode() + b"\0" + inner)

    def _wg_receive(self, host: Host, src: Endpoint, data: bytes) -> None:
        kind, rest = data[:1], data[1:]
        inner = b""
        if kind == b"D":
            rest, inner = rest.split(b"\0", 1)
        sender_key = rest.decode()
        peer = host.wg.get(sender_key)
        if peer is None:
            return
        if kind in (b"K", b"D") and not (peer.session or peer.responded):
            return  # under a session this side does not hold (it restarted): dropped, unread
        peer.endpoint = src  # roaming: WireGuard follows the authenticated source
        peer.rx += SIZES[kind] if kind != b"D" else 32 + len(inner.split(b"|", 2)[2])
        peer.heard = self.now
        if kind == b"D":
            if peer.responded:
                peer.session, peer.last_handshake, peer.responded = True, self.now, False
            self._tunnel_arrive(host, peer, inner)
            return
        if kind == b"I":
            # The responder's session is confirmed, and its handshake recorded, only when the
            # first packet under it arrives (the initiator sends one at once).
            peer.responded = True
            self.send(host, WG_PORT, src, b"R" + host.key.encode())
            peer.tx += SIZES[b"R"]
        elif kind == b"R":
            peer.session, peer.last_handshake, peer.responded = True, self.now, False
            self.send(host, WG_PORT, src, b"K" + host.key.encode())  # confirms it at once
            peer.tx += SIZES[b"K"]
        elif peer.responded:
            peer.session, peer.last_handshake, peer.responded = True, self.now, False

    def _tunnel_arrive(self, host: Host, peer: WgPeer, inner: bytes) -> None:
        src_ip, dst_ip, payload = inner.split(b"|", 2)
        src = IPv4Address(src_ip.decode())
        if not any(src in net for net in peer.allowed) or dst_ip.decode() != str(host.node.p.wg_ip):
            return  # cryptokey routing: not from an address this peer may use; or not for us
        self.admin_packets += 1
        self.admin_bytes += len(payload)
        host.node.datagram(self.now, payload, Endpoint(str(src), ADMIN_PORT))
        for reply, to in host.node.take_outgoing():
            self.send(host, ADMIN_PORT, to, reply)

    def _wg_timers(self, host: Host) -> None:
        for _key, peer in host.wg.items():
            if peer.endpoint is None or self.now < peer.next_send:
                continue
            if peer.session and peer.keepalive and self.now - peer.heard > SESSION_GIVE_UP:
                peer.session = False  # WireGuard gives up on it: a handshake is sent below
            if peer.session and peer.keepalive:
                self.send(host, WG_PORT, peer.endpoint, b"K" + host.key.encode())
                peer.tx += SIZES[b"K"]
                peer.next_send = self.now + peer.keepalive
            elif not peer.session and (peer.keepalive or peer.allowed):
                self.send(host, WG_PORT, peer.endpoint, b"I" + host.key.encode())
                peer.tx += SIZES[b"I"]
                peer.next_send = self.now + REKEY_TIMEOUT
            else:
                peer.next_send = self.now + 1.0

    def _apply(self, host: Host, desired: DesiredState) -> None:
        """What ManagedBackend.apply does to WireGuard's peers, done to the fake ones."""
        current = {
            key: PeerState(key, p.endpoint, frozenset(p.allowed), p.keepalive, p.last_handshake)
            for key, p in host.wg.items()
        }
        ops, host.wg_generations = plan_peers(current, desired.peers, host.wg_generations, self.now)
        for op in ops:
            if op.remove:
                del host.wg[op.public_key]
                continue
            peer = host.wg.setdefault(op.public_key, WgPeer())
            if op.endpoint is not None:
                peer.endpoint, peer.next_send = op.endpoint, self.now
            if op.keepalive is not None:
                if op.keepalive and not peer.keepalive:
                    peer.next_send = self.now  # wireguard-go sends at once when keepalive is turned on
                peer.keepalive = op.keepalive
            if op.allowed_ips is not None:
                peer.allowed = op.allowed_ips

    def _stats(self, host: Host) -> dict[str, PeerStats]:
        out = {}
        for k, p in host.wg.items():
            st = p.stats
            if st is None or (st.endpoint, st.last_handshake, st.rx_bytes, st.tx_bytes) != (
                p.endpoint,
                p.last_handshake,
                p.rx,
                p.tx,
            ):
                st = p.stats = PeerStats(k, p.endpoint, p.last_handshake, p.rx, p.tx)
            out[k] = st
        return out

    # --- running ----------------------------------------------------------------------------

    def step(self, dt: float = 0.1) -> None:
        end = self.now + dt
        for host in self.hosts.values():
            if not host.alive:
                continue
            host.node.set_stats(self._stats(host))
            if not self.lazy or host.node.next_deadline(self.now) <= self.now:
                host.node.tick(self.now)
                self.ticks += 1
            for data, dst in host.node.take_outgoing():
                self.send(host, ADMIN_PORT, dst, data)
            desired = host.node.desired(self.now)
            if self.verify_desired:
                fresh = host.node._compute_desired(self.now)
                assert desired == fresh, f"{host.name}: cached desired state is stale"
            if desired is not host.applied:  # the core hands back the same object if unchanged
                self._apply(host, desired)
                host.applied = desired
            self._wg_timers(host)
        while self.queue and self.queue[0][0] <= end:
            t, _, sender, src, dst, data = heapq.heappop(self.queue)
            self.now = max(self.now, t)
            self._arrive(sender, src, dst, data)
        self.now = end

    def run_until(self, cond, timeout: float, dt: float = 0.1) -> float:
        start = self.now
        while self.now - start < timeout:
            self.step(dt)
            if cond():
                return self.now - start
        raise AssertionError(f"condition not met within {timeout} simulated seconds")

    # --- checks -----------------------------------------------------------------------------

    def _peer_for(self, host: Host, ip: IPv4Address) -> Optional[str]:
        for key, peer in host.wg.items():
            if any(ip in net for net in peer.allowed):
                return key
        return None

    def _index(self) -> _Index:
        """Lookups for a batch of reachability checks: O(1) per hop instead of scanning every
        host and every peer's AllowedIPs (which made `all_reachable` O(N^3))."""
        by_key: dict[str, Host] = {}
        for h in self.hosts.values():
            if h.alive:
                by_key.setdefault(h.key, h)
        return _Index(by_key, {})

    def _lookup(self, index: _Index, host: Host, ip: IPv4Address) -> Optional[str]:
        table = index.routes.get(host.name, False)
        if table is False:
            table = _route_table(host)
            index.routes[host.name] = table
        if table is None:
            return self._peer_for(host, ip)
        return table.get(ip)

    def reachable(self, a: str, b: str, index: Optional[_Index] = None) -> bool:
        """Would a packet from a's wgIp reach b's wgIp (AllowedIPs, sessions, source checks)?"""
        index = index or self._index()
        src_ip, dst_ip = self.hosts[a].node.p.wg_ip, self.hosts[b].node.p.wg_ip
        host = self.hosts[a]
        for _hop in range(3):
            key = self._lookup(index, host, dst_ip)
            if key is None or not host.wg[key].session:
                return False
            nxt = index.by_key.get(key)
            if nxt is None or host.key not in nxt.wg or not self._delivers(host.wg[key].endpoint, nxt):
                return False
            if not nxt.wg[host.key].session or self._lookup(index, nxt, src_ip) != host.key:
                return False  # receiver's cryptokey routing drops the source
            if nxt.name == b:
                return True
            host = nxt
        return False

    def _delivers(self, endpoint: Optional[Endpoint], host: Host) -> bool:
        """Would a datagram to `endpoint` arrive at `host`'s WireGuard (its address, or a
        mapping of its router that leads to it)? False for a mapping of a host that moved."""
        if endpoint is None:
            return False
        nat = self.nats.get(endpoint.host)
        if nat is not None:
            return nat.back.get(endpoint.port) == (host.ip, WG_PORT)
        return self.by_ip.get(endpoint.host) is host and endpoint.port == WG_PORT

    def all_reachable(self) -> bool:
        names = [n for n, h in self.hosts.items() if h.alive]
        index = self._index()
        return all(self.reachable(a, b, index) for a in names for b in names if a != b)

    def unreachable_pairs(self) -> list[tuple[str, str]]:
        names = [n for n, h in self.hosts.items() if h.alive]
        index = self._index()
        return [(a, b) for a in names for b in names if a != b and not self.reachable(a, b, index)]

    def path(self, a: str, b: str) -> str:
        st = self.hosts[a].node.status(self.now)
        return next((p["path"] for p in st["peers"] if p["name"] == b), "none")


@dataclass
class _Index:
    by_key: dict[str, Host]  # public key -> first live host with it
    routes: dict[str, Optional[dict[IPv4Address, str]]]  # host name -> /32 AllowedIPs -> key


def _route_table(host: Host) -> Optional[dict[IPv4Address, str]]:
    """wgIp -> the first peer (in WireGuard's order) whose AllowedIPs hold it; None when some
    AllowedIP is wider than /32 (then the caller scans, as WireGuard's longest match would)."""
    table: dict[IPv4Address, str] = {}
    for key, peer in host.wg.items():
        for net in peer.allowed:
            if net.prefixlen != 32:
                return None
            table.setdefault(net.network_address, key)
    return table


def seed_basic(net: SimNet, symmetric: bool = False) -> SimNet:
    """The lab's seed-basic (alpha behind a firewall) or, symmetric, its hard-nat."""
    net.add_static("beta", "198.51.100.2", "10.1.1.2")
    if symmetric:
        net.add_host("alpha", "192.168.9.10", "10.1.1.1", nat=net.add_nat("203.0.113.1", symmetric=True))
    else:
        net.add_host("alpha", "198.51.100.1", "10.1.1.1", firewall=True)
    net.add_host("beta", "198.51.100.2", "10.1.1.2")
    home = net.add_nat("203.0.113.10", symmetric=symmetric)
    net.add_host("charlie", "192.168.1.3", "10.1.1.3", nat=home)
    net.add_host("delta", "192.168.1.4", "10.1.1.4", nat=home)
    return net


def scale(net: SimNet, n: int, statics: Optional[int] = None) -> SimNet:
    """N nodes: `statics` (default N/20) static, the rest behind NAT routers (one symmetric),
    8 or more: at most 32 nodes behind each."""
    publics = statics or max(2, n // 20)
    for i in range(publics):
        net.add_static(f"s{i}", f"198.51.{100 + i // 250}.{1 + i % 250}", f"10.1.0.{i + 1}")
    for i in range(publics):
        net.add_host(f"s{i}", f"198.51.{100 + i // 250}.{1 + i % 250}", f"10.1.0.{i + 1}")
    # At most 32 nodes behind one router: a static node takes at most hub.MAX_PER_SOURCE (64)
    # members from one address.
    routers = max(8, -(-(n - publics) // 32))
    nats = [net.add_nat(f"203.{j // 250}.113.{1 + j % 250}", symmetric=(j == 0)) for j in range(routers)]
    for i in range(n - publics):
        j, k = i % len(nats), 10 + i // len(nats)
        net.add_host(
            f"n{i}",
            f"192.168.{j}.{k}" if j < 250 else f"172.{16 + j // 250}.{j % 250}.{k}",
            f"10.1.{1 + i // 250}.{1 + i % 250}",
            nat=nats[j],
        )
    return net


def sim_identity(name: str) -> Identity:
    """A host's key pair, the same in every run (its private key: a hash of its name)."""
    return Identity(hashlib.sha256(name.encode()).digest())
