"""Hostile datagrams at a live static node: it drops every one, stays up, and the mesh too.

    .venv/bin/python bench/fuzz.py [--count 1000000] [--rate 5000] [--senders 2] [--seconds S]
    .venv/bin/python bench/fuzz.py --quick        # 20,000 datagrams

Root only. seed-basic with real agents; beta, the static node, is the target. A capture in the
lab's switch records the mesh's control datagrams from the agents' start; once every pair
pings, what beta drops over a window as long as the run is the baseline. Then SENDERS processes
in alpha's namespace send COUNT datagrams at RATE per second in all, in phases of one kind each
(so what beta counts is attributed to the kind), the shares of MIX:
  random    random bytes of random length 0..1500, or behind the magic and version
  mutated   captured datagrams with bits flipped, truncated, extended, spliced onto each
            other, header fields changed; "member" ones get mac1 recomputed with the shared
            key (from net.yaml), so they reach the decryption
  replayed  captured datagrams for beta verbatim, each several times, from alpha's socket,
            from their original source and from made-up ones (raw socket); and those for others
  member    a fresh identity holding the shared key seals every message type with malformed
            bodies (bad JSON, wrong types, huge numbers) and claims of other nodes' names,
            addresses and keys; type 0 and 10-255 too
Printed per phase: datagrams sent, answers the senders got back (not those to spoofed
sources), beta's status drops (after - before, once its socket is drained), its control
socket's overflow (/proc/PID/net/udp) and accepted = sent - dropped - overflow, which must be
0. Beta's members' HELLOs (one each per second) arrive meanwhile: one that beta drops or loses
to overflow counts against the phase (accepted < 0); the baseline is what beta drops of them
without fuzzing. Then beta's process (same pid, RSS, tracebacks in the agents' logs), pings of
every ordered pair in rounds during the run, and the time until every pair pings after it.
Exit status 1 on anything accepted, a crash, a traceback in a log, or a mesh not whole 30 s
after the run.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import queue
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

import probe  # noqa: E402
from meshlab import PYTHON, Mesh, wait_for  # noqa: E402

from lab import Lab, net  # noqa: E402
from wg_netmanager.core import messages as m  # noqa: E402
from wg_netmanager.core import wire  # noqa: E402
from wg_netmanager.core.model import Endpoint  # noqa: E402
from wg_netmanager.core.wire import Codec, Drop, Identity  # noqa: E402

Addr = tuple[str, int]
TARGET, ATTACKER = "beta", "alpha"
MIX = [  # (class, kind, share of the datagrams)
    ("random", "bytes", 0.15),
    ("random", "magic", 0.15),
    ("mutated", "outsider", 0.20),
    ("mutated", "member", 0.10),
    ("replayed", "sealed", 0.10),
    ("replayed", "keyreq", 0.02),
    ("replayed", "for others", 0.03),
    *(("member", k, s) for k, s in [("hello", 0.06), ("hello_ack", 0.02), ("table", 0.02)]),
    *(("member", k, 0.02) for k in ("table_delta", "probe", "probe_ack", "leave", "key_resp", "cookie")),
    ("member", "type 0", 0.01),
    ("member", "types 10-255", 0.02),
]
TYPES = {k.lower(): int(t) for k, t in m.MsgType.__members__.items()} | {"type 0": 0}
ROUND = 0.5  # seconds between the starts of two rounds of pings
FIELDS = {"sender": (6, 38), "s_epoch": (38, 46), "r_epoch": (46, 54), "counter": (54, 62)}
BAD_IPS = ["10.9.9.9", "10.1.1.0", "10.1.1.255", "0.0.0.0", "255.255.255.255", "127.0.0.1", "198.51.100.2"]
LOCALS = [IPv4Interface(a) for a in ("192.168.1.3/24", "198.51.100.2/24", "127.0.0.1/8", "0.0.0.0/0")]
NOT_JSON = [b"", b"null", b"[]", b"0", b'"x"', b"1e999", b"NaN", b"-Infinity", b"\xff\xfe\x00", b"{" * 40]


@dataclass(frozen=True)
class Captured:
    src: Addr
    dst: Addr
    data: bytes


@dataclass(frozen=True)
class Peer:
    name: str
    ip: str
    key: str


# --- what the senders send (in alpha's namespace) --------------------------------------------


class Forge:
    """The hostile datagrams of each kind, as endless streams of (datagram, spoofed source or
    None). `codec` is a fresh identity that holds the shared key and has asked the target who
    it is (`epoch`, `cookie`). No claim names a free wgIp: a member could join with it."""

    def __init__(
        self, rng: random.Random, codec: Codec, key: bytes, epoch: int, cookie: bytes, nodes: list[Peer]
    ) -> None:
        self.r, self.codec, self.key, self.epoch, self.cookie = rng, codec, key, epoch, cookie
        self.nodes = nodes
        self.own = base64.b64encode(codec.identity.public).decode()
        self.mac_key = codec.mac1_key(key)
        keys = [p.key for p in nodes]
        self.hostile: list[Any] = [None, True, -1, 2**63, 2**64, -(2**63), 10**300, 1.5, 1e308]
        self.hostile += [float("nan"), "", "x" * 300, "\u0000", "\u00e9" * 50, [], {}, [[[[]]]]]
        self.hostile += [list(range(100)), {"n": "alpha"}, "10.1.1.999", "::1", *BAD_IPS, "AAAA"]
        self.hostile += [keys[0][:-2] + "B=", keys[0][:40], "!" * 44, *keys]

    def stream(self, kind: str, pools: dict[str, list[Captured]]) -> Iterator[tuple[bytes, Optional[Addr]]]:
        r = self.r
        sealed, keyreqs = pools["sealed"], pools["keyreq"]
        if kind == "bytes":
            while True:
                yield r.randbytes(r.randint(0, 1500)), None
        elif kind == "magic":
            sizes = [6, wire.OVERHEAD - 1, wire.OVERHEAD, wire.KEYREQ_SIZE, wire.KEYREQ_SIZE + 1, 1400, 1401]
            while True:
                n = r.choice(sizes) if r.random() < 0.3 else r.randint(6, 1500)
                head = wire.MAGIC + bytes((wire.WIRE_VERSION, r.choice([1, 2, r.randrange(256)])))
                yield (head + r.randbytes(n))[:n], None
        elif kind in ("outsider", "member"):
            pool = sealed if kind == "member" else sealed + keyreqs
            originals = {c.data for c in pool}
            while pool:
                mutated = self.mutate(r.choice(pool).data, pool, kind == "member")
                if mutated not in originals:  # e.g. spliced onto itself: a replay, not a mutation
                    yield mutated, None
        elif kind in ("sealed", "keyreq", "for others"):
            pool = pools[kind]
            for i in range(10**12 if pool else 0):
                c = pool[i % len(pool)]
                how = r.randrange(3) if kind != "for others" else 0
                yield c.data, None if how == 0 else c.src if how == 1 else self.made_up()
        else:
            while True:
                t = TYPES[kind] if kind in TYPES else r.randrange(10, 256)
                body = self.body(t if kind in TYPES else r.choice(list(m.MsgType)))
                yield self.codec.seal(t, body[: wire.MAX_BODY], self.key, self.epoch), None

    def made_up(self) -> Addr:
        r = self.r
        host = r.choice([f"198.51.100.{r.randint(3, 250)}", "203.0.113.1", f"192.0.2.{r.randint(1, 254)}"])
        return host, r.randint(1024, 65535)

    def mutate(self, data: bytes, pool: list[Captured], member: bool) -> bytes:
        r, d = self.r, bytearray(data)
        op = r.randrange(5)
        if op == 0:  # flip bits
            for _ in range(r.randint(1, 8)):
                i = r.randrange(len(d) * 8)
                d[i // 8] ^= 1 << (i % 8)
        elif op == 1:
            del d[r.randrange(len(d)) :]
        elif op == 2:
            d += r.randbytes(r.randint(1, 200))
        elif op == 3:  # one's header on another's body, or one's body with another's mac1
            other = r.choice(pool).data
            cut = r.choice(
                [wire.HEADER.size, len(d) - wire.MAC_SIZE, r.randrange(1, min(len(d), len(other)))]
            )
            d = d[:cut] + other[cut:]
        else:
            name = r.choice(list(FIELDS))
            a, b = FIELDS[name]
            if name == "sender":
                other_key = base64.b64decode(r.choice(self.nodes).key)
                d[a:b] = r.choice([other_key, self.key, r.randbytes(32), bytes(32), b"\1" + bytes(31)])
            else:
                old = int.from_bytes(d[a:b], "big")
                v = r.choice([0, 1, 2**64 - 1, r.getrandbits(64), (old + 1) % 2**64, (old - 1) % 2**64])
                d[a:b] = v.to_bytes(8, "big")
        if member and len(d) >= wire.OVERHEAD:  # a member can make mac1 right again
            mac = hashlib.blake2s(bytes(d[: -wire.MAC_SIZE]), key=self.mac_key, digest_size=wire.MAC_SIZE)
            d[-wire.MAC_SIZE :] = mac.digest()
        return bytes(d)

    def claim(self) -> m.NodeInfo:
        """A node that must be refused: another's key, or another's name or wgIp, or a wrong wgIp."""
        r, v = self.r, self.r.choice(self.nodes)
        target_key = base64.b64encode(self.key).decode()
        name, ip, key = r.choice(
            [
                (v.name, v.ip, v.key),
                (v.name, v.ip, self.own),
                (v.name, r.choice(BAD_IPS), self.own),
                (f"mallory{r.randrange(100)}", v.ip, self.own),
                (f"mallory{r.randrange(100)}", r.choice(BAD_IPS), self.own),
                (f"mallory{r.randrange(100)}", v.ip, target_key),
            ]
        )
        ep = Endpoint(r.choice(["198.51.100.2", "192.168.1.3", "0.0.0.0"]), r.randint(1, 65535))
        return m.NodeInfo(
            name,
            IPv4Address(ip),
            key,
            r.randint(1, 65535),
            r.randint(1, 65535),
            tuple(r.sample(LOCALS, r.randint(0, len(LOCALS)))),
            r.random() < 0.3,
            ep if r.random() < 0.5 else None,
            r.getrandbits(64),
            r.randbytes(r.randint(1, 129)) if r.random() < 0.2 else b"",
        )

    def well_formed(self, t: int) -> bytes:
        """A message of type `t` that beta must refuse (sealed type 0 or 10-255: any bytes)."""
        r, v = self.r, self.r.choice(self.nodes)
        cookie = self.cookie if r.random() < 0.8 else r.choice([b"", r.randbytes(16)])
        nonce, version = r.getrandbits(64), r.randint(0, 10)
        msg: Optional[m.Message] = {
            m.MsgType.HELLO: lambda: m.Hello(self.claim(), version, cookie),
            m.MsgType.HELLO_ACK: lambda: m.HelloAck(self.claim(), version),
            m.MsgType.TABLE: lambda: m.TableChunk(version + 1, 0, 1, (self.claim(), self.claim())),
            m.MsgType.TABLE_DELTA: lambda: m.TableChunk(version + 2, 0, 1, (self.claim(),), 1, (v.key,)),
            m.MsgType.PROBE: lambda: m.Probe(v.name, v.key, nonce),  # own key: answered, by design
            m.MsgType.PROBE_ACK: lambda: m.Probe(v.name, r.choice([v.key, self.own]), nonce, True),
            m.MsgType.LEAVE: lambda: m.Leave(v.name, r.choice([v.key, self.own])),
            m.MsgType.KEY_RESP: lambda: m.KeyResp(nonce, r.randbytes(16)),
            m.MsgType.COOKIE: lambda: m.Cookie(r.randbytes(16)),
        }.get(t, lambda: None)()
        return m.encode(msg)[1] if msg else r.randbytes(r.choice([0, 1, 8, 9, r.randint(0, wire.MAX_BODY)]))

    def body(self, t: int) -> bytes:
        r = self.r
        body = self.well_formed(t)
        x = r.random()
        if t not in TYPES.values() or t == 0 or x < 0.3:
            return body
        if x < 0.5:  # not JSON, or not what it should be
            return r.choice(
                [
                    body[: r.randrange(max(1, len(body)))],
                    body.replace(b'"', b"", 1),
                    b"[" * r.randint(1, wire.MAX_BODY),
                    b"9" * r.randint(1, 1300),
                    r.randbytes(r.randint(0, 300)),
                    r.choice(NOT_JSON),
                ]
            )
        obj = json.loads(body)  # wrong types and huge numbers in some fields
        for _ in range(r.randint(1, 3)):
            where = obj
            if isinstance(obj.get("node"), dict) and r.random() < 0.6:
                where = obj["node"]
            elif (
                isinstance(obj.get("e"), list)
                and obj["e"]
                and isinstance(obj["e"][0], dict)
                and r.random() < 0.6
            ):
                where = obj["e"][0]
            if not where:
                continue
            k = r.choice(sorted(where))
            if r.random() < 0.1:
                del where[k]
            else:
                where[k if r.random() < 0.9 else k + "x"] = copy.deepcopy(r.choice(self.hostile))
        return json.dumps(obj, separators=(",", ":")).encode()


def ip_udp(src: Addr, dst: Addr, payload: bytes) -> bytes:
    """An IPv4/UDP packet from any source, for a raw socket (the kernel fills the IP checksum;
    UDP checksum 0: none)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0)
    return ip + socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + udp + payload


def ask_target(sock: socket.socket, codec: Codec, rng: random.Random) -> tuple[bytes, int, bytes]:
    """A KEYREQ, as any node's first datagram: the target's key, run and our cookie."""
    for _ in range(20):
        nonce = rng.getrandbits(64) | 1
        sock.send(codec.keyreq(nonce))
        deadline = time.monotonic() + 0.5
        while select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                opened = codec.open(sock.recv(2048))
                msg = m.decode(opened.msg_type, opened.body)
            except (Drop, OSError):
                continue
            if isinstance(msg, m.KeyResp) and msg.nonce == nonce:
                return opened.sender, opened.epoch, msg.cookie
    raise SystemExit("the target never answered a KEYREQ")


def drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            sock.recv(2048)
            n += 1
        except BlockingIOError:
            return n
        except OSError:  # an ICMP error reported on the socket
            continue


def send_paced(
    stream: Iterator[tuple[bytes, Optional[Addr]]],
    count: int,
    rate: float,
    seconds: float,
    sock: socket.socket,
) -> dict[str, Any]:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    target = sock.getpeername()
    sent = answers = 0
    errors = Counter[str]()
    start = time.monotonic()
    for tried, (data, spoof) in enumerate(stream):  # `tried` before this one
        if tried >= count or time.monotonic() - start > seconds:
            break
        while tried >= (time.monotonic() - start) * rate:
            answers += drain(sock)
            time.sleep(0.001)
        if tried % 64 == 63:  # also when behind: the answers must not overflow our socket
            answers += drain(sock)
        try:
            if spoof is None:
                sock.send(data)
            else:
                raw.sendto(ip_udp(spoof, target, data), (target[0], 0))
            sent += 1
        except OSError as exc:
            errors[os.strerror(exc.errno or 0)] += 1
    raw.close()
    return {"sent": sent, "errors": dict(errors), "answers": answers + drain(sock)}


def sender_main() -> None:
    """One sender (in alpha's namespace): JSON lines in, JSON lines out."""
    init = json.loads(sys.stdin.readline())
    rng = random.Random(init["seed"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(tuple(init["target"]))
    codec = Codec(base64.b64decode(init["shared"]), Identity(rng.randbytes(32)), rng.getrandbits(64) | 1)
    key, epoch, cookie = ask_target(sock, codec, rng)
    sock.setblocking(False)
    forge = Forge(rng, codec, key, epoch, cookie, [Peer(*p) for p in init["nodes"]])
    pools = {
        k: [Captured(tuple(a), tuple(b), bytes.fromhex(x)) for a, b, x in v] for k, v in init["pools"].items()
    }
    print(json.dumps({"key": base64.b64encode(key).decode(), "epoch": epoch}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["do"] == "send":
            stream = forge.stream(cmd["kind"], pools)
            print(json.dumps(send_paced(stream, cmd["count"], cmd["rate"], cmd["seconds"], sock)), flush=True)
        elif cmd["do"] == "ask":  # a fresh cookie: the target's secret rotates every 2 minutes
            forge.key, forge.epoch, forge.cookie = ask_target(sock, codec, rng)
            print(json.dumps({"epoch": forge.epoch}), flush=True)
        else:  # the target has taken in everything: its answers are here
            time.sleep(0.05)
            print(json.dumps({"answers": drain(sock)}), flush=True)


def capture_main(target_port: str) -> None:
    """In the switch: every control datagram (it starts with the magic), as `T|O src sport dst
    dport hex` lines. T: leaving the switch on the target's port (what the target receives)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
    while True:
        pkt, (ifname, proto, pkttype, _, _) = s.recvfrom(65535)
        outgoing = pkttype == socket.PACKET_OUTGOING
        if proto != 0x0800 or pkt[9] != 17 or (outgoing and ifname != target_port):
            continue
        ihl = (pkt[0] & 15) * 4
        payload = pkt[ihl + 8 :]
        if payload[:4] == wire.MAGIC:
            sport, dport = struct.unpack("!HH", pkt[ihl : ihl + 4])
            src, dst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
            print("T" if outgoing else "O", src, sport, dst, dport, payload.hex(), flush=True)


# --- the controller ---------------------------------------------------------------------------


class Lines:
    """A child process's stdout lines, read by a thread, so a read can have a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.q = proc, queue.Queue[Optional[str]]()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout: float) -> str:
        line = self.q.get(timeout=timeout)
        if line is None:
            raise RuntimeError(f"process {self.proc.pid} exited ({self.proc.wait()})")
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Capture(Lines):
    """Records the lab's control datagrams from now on (start it before the agents)."""

    def __init__(self, lab: Lab, target: str = TARGET) -> None:
        port = net.ports(lab.topology)[(target, "eth0")]
        argv = ["ip", "netns", "exec", net.switch_ns(lab.prefix), PYTHON, __file__, "--capture", port]
        super().__init__(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        self.seen: list[tuple[str, Captured]] = []

    def take(self) -> list[tuple[str, Captured]]:
        while not self.q.empty():
            line = self.q.get()
            if line:
                tag, src, sport, dst, dport, data = line.split()
                self.seen.append((tag, Captured((src, int(sport)), (dst, int(dport)), bytes.fromhex(data))))
        return self.seen

    def pools(self, target: Addr) -> dict[str, list[Captured]]:
        """What the target received, by kind, and (once each) what the mesh sent to the others."""
        to_target = {c.data: c for tag, c in self.take() if tag == "T" and c.dst == target}
        others = {c.data: c for tag, c in self.seen if c.dst != target and c.data not in to_target}
        mine = list(to_target.values())
        return {
            "sealed": [c for c in mine if c.data[5] == wire.KIND_SEALED],
            "keyreq": [c for c in mine if c.data[5] == wire.KIND_KEYREQ],
            "for others": list(others.values()),
        }


class FuzzMesh(Mesh):
    """A mesh whose control datagrams are captured from its agents' start: `run` replays and
    mutates them. Works with tests/lab's `mesh_on(..., cls=FuzzMesh)`."""

    capture: Optional[Capture] = None

    def start_all(self) -> None:
        self.capture = Capture(self.lab)
        super().start_all()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.capture is not None:
                self.capture.stop()


@dataclass
class Row:
    cls: str
    kind: str
    sent: int = 0
    answers: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    overflow: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.sent - sum(self.dropped.values()) - self.overflow


@dataclass
class Report:
    rows: list[Row]
    baseline: Counter[str]
    baseline_s: float
    pools: dict[str, int]
    fuzz_s: float
    pid: int
    alive: bool
    rss_mb: tuple[float, float]
    cpu_pct: float
    exceptions: list[str]  # "host: last line of the traceback"
    rounds: int
    missed: Counter[tuple[str, str]]  # (phase, ordered pair) -> rounds in which it did not answer
    whole_after: Optional[float]

    @property
    def accepted(self) -> int:
        """Hostile datagrams not dropped (a phase below 0 dropped members' own HELLOs: it
        hides nothing of another phase)."""
        return sum(max(r.accepted, 0) for r in self.rows)

    @property
    def ok(self) -> bool:
        return self.accepted == 0 and self.alive and not self.exceptions and self.whole_after is not None


def counters(lab: Lab, pid: int, port: int) -> tuple[Counter[str], int]:
    """The target's drops by reason and its control socket's overflow, once its socket is
    empty and stays so (everything it read is handled: the status comes from the same loop)."""
    last: list[Any] = [None]

    def drained() -> bool:
        sock = probe.udp_socket(pid, port)
        stable = sock is not None and sock[0] == 0 and sock == last[0]
        last[0] = sock
        return stable

    wait_for(drained, 60, interval=0.05, what="the target's control socket to drain")
    st = wait_for_value(lambda: probe.status(lab, TARGET), 30, "the target's status")
    return Counter(st["drops"]), last[0][1]


def wait_for_value(get: Any, timeout: float, what: str) -> Any:
    box: list[Any] = []
    wait_for(lambda: box.append(get()) or box[-1] is not None, timeout, what=what)
    return box[-1]


def tracebacks(mesh: Mesh) -> list[str]:
    """Per agent, the last line of each traceback in its log, counted."""
    out = []
    for host in mesh.hosts:
        lines = mesh.log(host).splitlines()
        ends = [
            next((x for x in lines[i + 1 :] if not x.startswith((" ", "Traceback"))), "?")
            for i, line in enumerate(lines)
            if line.startswith("Traceback (most recent call last)")
        ]
        kinds = Counter(re.sub(r"\d+", "N", end) for end in ends)
        examples = {re.sub(r"\d+", "N", end): end for end in reversed(ends)}
        out += [f"{host}: {n} x {examples[k]!r}" for k, n in kinds.items()]
    return out


class Pinger(threading.Thread):
    """Every ordered pair pings the other's wgIp (0.5 s timeout), all at once, every ROUND s."""

    def __init__(self, mesh: Mesh) -> None:
        super().__init__(daemon=True)
        self.lab, self.pairs = mesh.lab, mesh.pairs()
        self.ips = {h: mesh.wg_ip(h) for h in mesh.hosts}
        self.halt, self.rounds, self.missed = threading.Event(), 0, Counter[tuple[str, str]]()
        self.phase = ""  # what is being sent: a missed ping is counted against it

    def missing(self) -> list[str]:
        ttls = probe.ttls(self.lab, self.pairs, self.ips, 0.5)
        return [f"{a}>{b}" for (a, b), t in ttls.items() if t is None]

    def run(self) -> None:
        while not self.halt.is_set():
            start, phase = time.monotonic(), self.phase
            self.missed.update((phase, pair) for pair in self.missing())
            self.rounds += 1
            # A round every ROUND s: back to back, the pings' processes take the agent's CPU.
            self.halt.wait(ROUND - (time.monotonic() - start))

    def stop(self) -> None:
        self.halt.set()
        self.join()


def run(
    mesh: FuzzMesh,
    count: int,
    rate: float = 5000.0,
    senders: int = 2,
    seconds: float = float("inf"),
    seed: int = 0,
    min_captured: int = 20,
    say: Any = None,
) -> Report:
    """Baseline, capture, the phases of MIX against beta, and what became of beta and the mesh."""
    lab, say, capture = mesh.lab, say or (lambda s: None), mesh.capture
    assert capture is not None, "start the mesh with FuzzMesh.start_all"
    target = (lab.host(TARGET).address, int(mesh.net_yaml()["peers"][TARGET]["adminPort"]))
    pid = mesh.procs[TARGET].pid
    wait_for(mesh.all_ping, 90, what="every pair pings")
    window = min(count / rate, seconds)
    say(f"mesh whole; baseline window {window:.1f} s")
    t = time.monotonic()
    drops0, _ = counters(lab, pid, target[1])
    time.sleep(window)  # a measurement window, not a wait for a condition
    drops1, _ = counters(lab, pid, target[1])
    baseline, baseline_s = drops1 - drops0, time.monotonic() - t
    wait_for(lambda: len(capture.pools(target)["sealed"]) >= min_captured, 60, what="captured datagrams")
    pools = capture.pools(target)
    capture.stop()
    st = wait_for_value(lambda: probe.status(lab, TARGET), 30, "the target's status")
    nodes = [(p["name"], p["wgIp"], p["publicKey"]) for p in [st, *st["peers"]]]
    init = {
        "target": target,
        "shared": mesh.shared_key,
        "nodes": nodes,
        "pools": {k: [(c.src, c.dst, c.data.hex()) for c in v] for k, v in pools.items()},
    }
    procs: list[Lines] = []
    pinger = Pinger(mesh)
    try:
        for i in range(senders):
            err = open(mesh.logs / f"fuzz-sender{i}.log", "w")  # noqa: SIM115
            argv = [PYTHON, __file__, "--sender"]
            proc = lab.host(ATTACKER).popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
            err.close()
            procs.append(Lines(proc))
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(init | {"seed": seed * 1000 + i}) + "\n")
            proc.stdin.flush()
        for s in procs:
            assert json.loads(s.get(60))["key"] == st["publicKey"]

        def tell(s: Lines, cmd: dict[str, Any]) -> None:
            assert s.proc.stdin is not None
            s.proc.stdin.write(json.dumps(cmd) + "\n")
            s.proc.stdin.flush()

        rss0, cpu0 = probe.rss_kb(pid) or 0, probe.cpu_seconds(pid) or 0.0
        pinger.start()
        rows, t0 = [], time.monotonic()
        for cls, kind, share in MIX:
            row, n = Row(cls, kind), round(count * share)
            rows.append(row)
            pinger.phase = f"{cls} {kind}"
            left = min(seconds - (time.monotonic() - t0), 2 * n / rate + 30)  # a slow sender stops
            if left <= 0:
                continue
            if cls == "member":  # before the counters: the KEYREQ is a member's right
                for s in procs:
                    tell(s, {"do": "ask"})
                    s.get(30)
            if (cls, kind) == ("replayed", "keyreq") and pools["keyreq"]:
                # Each captured KEYREQ once first, outside the tally: one that never reached
                # the target (sent before its socket was up) is news to it, not a replay.
                prime = {
                    "do": "send",
                    "kind": kind,
                    "count": len(pools["keyreq"]),
                    "rate": rate,
                    "seconds": 30,
                }
                tell(procs[0], prime)
                procs[0].get(60)
                tell(procs[0], {"do": "drain"})
                procs[0].get(30)
            before, over0 = counters(lab, pid, target[1])
            t = time.monotonic()
            for i, s in enumerate(procs):
                part = n // senders + (i < n % senders)
                tell(s, {"do": "send", "kind": kind, "count": part, "rate": rate / senders, "seconds": left})
            for s in procs:
                res = json.loads(s.get(left + 60))
                row.sent += res["sent"]
                row.errors.update(res["errors"])
                row.answers += res["answers"]
            row.seconds = time.monotonic() - t
            after, over1 = counters(lab, pid, target[1])
            row.dropped, row.overflow = after - before, over1 - over0
            for s in procs:
                tell(s, {"do": "drain"})
                row.answers += json.loads(s.get(30))["answers"]
            say(f"{cls} {kind}: {row.sent} sent in {row.seconds:.1f} s, {row.accepted} accepted")
        fuzz_s = time.monotonic() - t0
        cpu = ((probe.cpu_seconds(pid) or 0.0) - cpu0) / fuzz_s
        pinger.stop()
        end = time.monotonic()
        whole = probe.wait_until(lambda: not pinger.missing(), end, 30)
    finally:
        if pinger.is_alive():
            pinger.stop()
        for s in procs:
            s.stop()
    alive = all(p.poll() is None for p in mesh.procs.values()) and probe.status(lab, TARGET) is not None
    return Report(
        rows,
        baseline,
        baseline_s,
        {k: len(v) for k, v in pools.items()},
        fuzz_s,
        pid,
        alive and mesh.procs[TARGET].pid == pid,
        (rss0 / 1024, (probe.rss_kb(pid) or 0) / 1024),
        100 * cpu,
        tracebacks(mesh),
        pinger.rounds,
        pinger.missed,
        whole,
    )


def reasons(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common() if v) or "-"


def print_report(rep: Report, count: int) -> None:
    shares = Counter[str]()
    for cls, _, share in MIX:
        shares[cls] += share
    print("mix of " + f"{count:,}: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items()), end="; ")
    print("captured to beta: {sealed} sealed, {keyreq} KEYREQ; to others: {for others}".format(**rep.pools))
    heads = ("sent", "answered", "dropped", "overflow", "accepted")
    print(f"{'class':9} {'kind':13} " + " ".join(f"{h:>8}" for h in heads) + "  dropped as")
    for r in rep.rows:
        cells = [r.sent, r.answers, sum(r.dropped.values()), r.overflow, r.accepted]
        print(f"{r.cls:9} {r.kind:13} " + " ".join(f"{c:8}" for c in cells) + "  " + reasons(r.dropped))
    total = Row("total", "", sum(r.sent for r in rep.rows), sum(r.answers for r in rep.rows))
    for r in rep.rows:
        total.dropped.update(r.dropped)
        total.overflow += r.overflow
        total.errors.update(r.errors)
    cells = [total.sent, total.answers, sum(total.dropped.values()), total.overflow, total.accepted]
    print(f"{'total':23} " + " ".join(f"{c:8}" for c in cells) + "  " + reasons(total.dropped))
    sending = max(sum(r.seconds for r in rep.rows), 1e-9)
    print(
        f"sending took {sending:.1f} s ({total.sent / sending:.0f}/s) of the run's {rep.fuzz_s:.1f} s "
        f"(the rest: waiting for beta's socket to drain between phases); not sent: {reasons(total.errors)}"
    )
    base = f"{sum(rep.baseline.values())} ({reasons(rep.baseline)})"
    print(f"baseline, no fuzzing, {rep.baseline_s:.1f} s: beta dropped {base}")
    alive = "alive, same process" if rep.alive else "NOT ALIVE"
    print(f"beta's agent: pid {rep.pid} {alive}; RSS {rep.rss_mb[0]:.1f} -> {rep.rss_mb[1]:.1f} MB; ", end="")
    print(f"CPU {rep.cpu_pct:.0f} % of a core during the run")
    print(f"tracebacks in the agents' logs: {'; '.join(rep.exceptions) or 'none'}")
    by_phase: dict[str, list[str]] = {}
    for (phase, pair), n in sorted(rep.missed.items()):
        by_phase.setdefault(phase, []).append(f"{pair} {n}")
    missed = "; ".join(f"{k}: {', '.join(v)}" for k, v in by_phase.items()) or "none"
    print(f"pings during the run: {rep.rounds} rounds of all pairs, one every {ROUND} s; missed: {missed}")
    whole = f"{rep.whole_after:.2f} s" if rep.whole_after is not None else "NOT within 30 s"
    print(f"every pair pings again {whole} after the run")
    crashes = 0 if rep.alive else 1
    verdict = f"{crashes} crashes, {len(rep.exceptions)} kinds of traceback, {rep.accepted} accepted, "
    print(verdict + ("the mesh stays up" if rep.whole_after is not None else "the mesh is NOT whole"))


def describe() -> str:
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "agent"], capture_output=True, text=True).stdout
    return head.strip() + ("+uncommitted" if dirty.strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="datagrams in all (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="20,000 datagrams")
    ap.add_argument("--seconds", type=float, default=float("inf"), help="stop sending after this long")
    ap.add_argument("--rate", type=float, default=5000.0, help="datagrams per second, all senders")
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--capture", metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        return sender_main()
    if args.capture:
        return capture_main(args.capture)
    count = 20_000 if args.quick else args.count
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    load = os.getloadavg()
    print(
        f"wg_netmanager live fuzz, {datetime.date.today()}, `{' '.join(['bench/fuzz.py', *sys.argv[1:]])}`, "
        f"seed-basic, agent {describe()}, target beta's control port, {args.senders} senders in alpha at "
        f"{args.rate:.0f}/s, seed {seed}, load {load[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    start = time.monotonic()

    def say(s: str) -> None:
        print(f"  {time.monotonic() - start:6.1f} s  {s}", file=sys.stderr, flush=True)

    with Lab.up("seed-basic", prefix="bfz" + os.urandom(3).hex()) as lab:
        mesh = FuzzMesh(lab, extra_args=())
        try:
            mesh.start_all()
            mesh.wait_started(90)
            rep = run(mesh, count, args.rate, args.senders, args.seconds, seed, say=say)
        finally:
            mesh.close()
    print_report(rep, count)
    took, end_load = time.monotonic() - start, os.getloadavg()[0]
    print(f"(took {took:.0f} s, load {end_load:.2f} at the end; agents' logs in .lab/logs-{lab.prefix}/)")
    sys.exit(0 if rep.ok else 1)


if __name__ == "__main__":
    main()
