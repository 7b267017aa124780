"""The asyncio shell around the sans-IO node: sockets, timers, signals, backend, status.

The node's time is the monotonic clock: a step of the wall clock (an IoT box without RTC
setting its time from NTP) moves no timer, and the control channel needs no wall time.

One loop owns everything. It runs the node when the node's next deadline comes or an input
gave it something to do, feeds it WireGuard's counters and the host's addresses on their own
schedule, sends what the node wants sent, and hands the node's desired state to the backend
when it changed. Datagrams are fed to the node as they arrive.

Start-up takes the lock, the status socket and the control port before it touches the
interface, so a second agent for the same interface stops without harming the first (lock.py).
Faults are handled beside the loop: a data plane that died is restored (dataplane.py), DNS
names of static nodes are looked up with deadlines (resolver.py), and the status socket
bounds what its clients cost (status.py). The configuration becomes the core's parameters,
and a SIGHUP's new files a running node's, in reconfig.py.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import random
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Interface
from typing import Any, Callable, Optional

from ..backends import BackendError, select_backend
from ..backends.activity import Activity
from ..backends.base import EXIT_MARK
from ..backends.existing import ExistingBackend
from ..core.checks import ConfigError
from ..core.config import NetConfig, NodeSettings
from ..core.limits import LogLimiter
from ..core.model import DesiredState, InterfaceSettings
from ..core.node import Node
from ..core.wire import MAX_DATAGRAM, Identity
from ..keystore import load_or_create_private_key
from . import reconfig
from . import status as status_socket
from .certwatch import CertWatch
from .controlsock import control_socket
from .dataplane import DataPlane
from .lock import AlreadyRunning, InstanceLock
from .resolver import Resolver

log = logging.getLogger(__name__)

MAX_SLEEP = 1.0  # seconds: the loop looks at least this often (counters, addresses)
MIN_SLEEP = 0.002  # seconds: bounds the loop's rate, should a deadline ever stay in the past
STATS_EVERY = 0.2  # while the node is busy (probing, changing)
STATS_IDLE = 1.0  # in a settled mesh: reading hundreds of peers costs milliseconds
LOCALS_EVERY = 1.0  # without address events from the kernel (Backend.address_events)
LOCALS_SAFETY = 30.0  # with them: a look now and then all the same
READ_BATCH = 256  # datagrams read per wakeup before the loop does anything else
STALL_WARNING = 1.0  # seconds a wakeup may come late before we say so
ACTIVE_EVERY = 1.0  # a mobile node reads which peers it has traffic with (backends/activity.py)


# Reads net.yaml and peer.yaml again (the shell's, for SIGHUP).
Reload = Callable[[], tuple[NetConfig, NodeSettings]]


class Agent:
    def __init__(self, settings: NodeSettings, net: NetConfig, reload: Optional[Reload] = None) -> None:
        self.settings = settings
        self.net = net
        self.reload = reload
        self.backend = select_backend(settings.backend, settings.interface, settings.state_dir)
        self.sock: Optional[socket.socket] = None
        self.node: Optional[Node] = None
        self.applied: Optional[DesiredState] = None
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()  # the node has something to do before its deadline
        self.bell: Optional[socket.socket] = None  # Backend.address_events
        self.rang = False  # it rang: read the addresses again
        self.address_reads = 0
        # pyroute2's synchronous API runs an event loop of its own, which cannot nest inside
        # ours: all backend calls go to one worker thread (which also keeps them in order).
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="backend")
        self.resolver = Resolver(reconfig.by_dns_name(net), self._resolved)  # the core sees addresses only
        self.certs = CertWatch(settings, net)
        self.bug_log = LogLimiter()
        sock_path = status_socket.socket_path(settings.run_dir, settings.interface)
        self.status_server = status_socket.StatusServer(sock_path, self.status)
        self.plane: Optional[DataPlane] = None  # once the interface is up
        self.activity: Optional[Activity] = None  # a mobile node: which peers have traffic

    async def run(self) -> int:
        """Whatever shows that another agent runs for this interface comes first, before the
        interface is touched: the lock, the status socket, the control port. A second agent
        started by mistake stops with one line and leaves the first one alone."""
        s = self.settings
        lock = InstanceLock(s.state_dir, s.interface)
        lock.acquire()
        try:
            self.status_server.listen()  # answers once the node exists (`serve`)
            try:
                self.sock = control_socket(s.admin_port, EXIT_MARK if s.use_exit_node else 0)
            except OSError as exc:
                why = exc.strerror or exc
                raise BackendError(f"{s.interface}: control port {s.admin_port}: {why}") from None
            return await self._run()
        finally:
            if self.sock is not None:
                self.sock.close()
            await status_socket.stop_status_server(self.status_server, self.status_server.path)
            self.pool.shutdown()
            lock.release()

    async def _run(self) -> int:
        s = self.settings
        if s.existing_interface:
            private = ""
            cert = self.certs.load(None)  # its key is known once the interface is adopted
        else:
            private = load_or_create_private_key(s.state_dir, s.interface).private_b64()
            public = base64.b64encode(Identity(base64.b64decode(private)).public).decode()
            cert = self.certs.load(public)  # a wrong certificate: exit before touching anything
        address = IPv4Interface(f"{s.wg_ip}/{self.net.subnet.prefixlen}")
        loop = asyncio.get_running_loop()
        # Kept to restore the interface should it vanish (DataPlane); the node holds the key anyway.
        iface = InterfaceSettings(s.interface, address, s.wg_port, private)
        await self._bk(self.backend.up, iface)
        reading = False
        try:
            if isinstance(self.backend, ExistingBackend):
                private = self.backend.take_private_key()
                cert = self.certs.load(self.backend.public_key)
            identity = Identity(base64.b64decode(private))
            del private
            now = time.monotonic()
            self.node = Node(
                reconfig.params(
                    s, self.net, self.backend.public_key, self.backend.listen_port or s.wg_port, cert
                ),
                self.net.shared_key,
                identity,
                now,
                random.SystemRandom(),
                self.net.previous_key,
            )
            self.plane = DataPlane(self.backend, iface, self._bk)
            if s.mobile:
                await self._start_activity()
            assert self.sock is not None
            loop.add_reader(self.sock.fileno(), self._readable)
            reading = True
            self.bell = self.backend.address_events()
            if self.bell is not None:
                loop.add_reader(self.bell.fileno(), self._rang)
            self.status_server.serve()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop)
            loop.add_signal_handler(signal.SIGHUP, self._reload)
            log.info(
                "%s (%s) up on %s with %s, control port %d",
                s.name,
                s.wg_ip,
                s.interface,
                self.backend.name,
                s.admin_port,
            )
            await self._loop()
            if self.plane.gave_up is not None:
                log.error("%s", self.plane.gave_up)
            log.info("leaving the mesh")
            self.node.leave(time.monotonic())
            self._flush()
            await asyncio.sleep(0.05)  # let the LEAVE datagrams go out
        finally:
            if reading and self.sock is not None:
                loop.remove_reader(self.sock.fileno())
            if self.bell is not None:
                loop.remove_reader(self.bell.fileno())
                self.bell.close()
            await self.resolver.close()
            if self.activity is not None:
                await self._bk(self.activity.close)
            await self._bk(self.backend.down)
        return 1 if self.plane is not None and self.plane.gave_up is not None else 0

    async def _start_activity(self) -> None:
        self.activity = Activity(self.settings.interface, self.net.subnet)
        try:
            await self._bk(self.activity.start)
        except BackendError as exc:
            log.warning("%s: no direct paths will be tried, all traffic goes through the home", exc)
            self.activity = None

    async def _read_activity(self) -> None:
        assert self.node is not None and self.activity is not None
        try:
            self.node.set_active(await self._bk(self.activity.read))
            self._poke()
        except BackendError as exc:
            assert self.plane is not None
            self.plane.failed("reading the peers with traffic", exc, time.monotonic())

    async def _bk(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _stop(self) -> None:
        self.stop.set()
        self.wake.set()

    def _reload(self) -> None:
        """SIGHUP: read net.yaml and peer.yaml again and apply what can change while running
        (reconfig.apply_reload); a file with a mistake changes nothing."""
        if self.reload is None or self.node is None:
            return
        try:
            new, settings = self.reload()
        except ConfigError as exc:
            log.error("reload: %s (nothing changed)", exc)
            return
        self.net = reconfig.apply_reload(self.node, self.net, self.settings, new, settings, self.resolver)
        self.certs.net = self.net
        self.wake.set()

    def _rang(self) -> None:
        """An address or a link changed (or something else the kernel told the doorbell)."""
        assert self.bell is not None
        try:
            for _ in range(64):  # a storm of events is read on the next turn
                self.bell.recv(65536)
        except BlockingIOError:
            pass
        except OSError as exc:  # ENOBUFS: events were lost; a look at the addresses is all we need
            log.debug("address events: %s", exc)
        self.rang = True
        self.wake.set()

    def _poke(self) -> None:
        """After an input: wake the loop if the node now has something due (aioquic's shell
        re-arms its timer after every datagram the same way)."""
        if self.node is not None and self.node.next_deadline(time.monotonic()) <= time.monotonic():
            self.wake.set()

    async def _loop(self) -> None:
        """Run the node when it asks to (`next_deadline`, as aioquic's get_timer) or an input
        gave it something to do; read counters and addresses on their own schedule. Backend
        work (reading counters, applying the desired state, reading addresses) runs as tasks
        on the backend thread and is never awaited here: a slow WireGuard or netlink call (a
        loaded host, hundreds of peers) must not delay the HELLOs, or static nodes drop us
        and the mesh churns. While the data plane is down (DataPlane), counters are not read
        and nothing is applied until it is restored."""
        assert self.node is not None and self.plane is not None
        plane = self.plane
        await self._read_locals()  # the first HELLO already says where we are
        every = LOCALS_EVERY if self.bell is None else LOCALS_SAFETY
        next_locals = time.monotonic() + every
        next_stats = 0.0
        stats: Optional[asyncio.Future[Any]] = None
        apply: Optional[asyncio.Future[Any]] = None
        locals_: Optional[asyncio.Future[Any]] = None
        repair: Optional[asyncio.Future[Any]] = None
        active: Optional[asyncio.Future[Any]] = None
        next_active = 0.0 if self.activity is not None else math.inf
        restores = plane.restores
        while not self.stop.is_set():
            now = time.monotonic()
            if _idle(repair):
                repair = plane.step(now)
                if repair is not None:
                    repair.add_done_callback(lambda _: self.wake.set())
            if plane.restores != restores:  # a new device: everything again
                restores, self.applied, next_stats = plane.restores, None, 0.0
            if plane.gave_up is not None:
                break
            if self.rang and _idle(locals_):
                self.rang, next_locals = False, now  # an address or link changed: look now
            if now >= next_locals and _idle(locals_):
                next_locals = now + every
                locals_ = asyncio.ensure_future(self._read_locals())
            renewed = self.certs.poll(now)  # looks at the file every CHECK_EVERY seconds
            if renewed is not None:
                self.node.set_cert(renewed)
            self.node.set_wall_clock(time.time() - time.monotonic())
            due = self.node.resolve_due(now)
            if due:
                self.resolver.start(due)
            if now >= next_stats and _idle(stats) and plane.up:
                next_stats = now + (STATS_EVERY if self.node.busy(now) else STATS_IDLE)
                stats = asyncio.ensure_future(self._read_stats())
            if now >= next_active and _idle(active):
                next_active = now + ACTIVE_EVERY
                active = asyncio.ensure_future(self._read_activity())
            self.node.tick(now)
            self._flush()
            desired = self.node.desired(now)
            if (
                desired is not self.applied
                and desired != self.applied
                and _idle(apply)
                and plane.up
                and now >= plane.apply_after
            ):
                apply = asyncio.ensure_future(self._apply(desired))
            wake_at = min(
                self.node.next_deadline(now),
                next_stats,
                next_locals,
                next_active,
                plane.next_due(now),
                now + MAX_SLEEP,
            )
            try:
                await asyncio.wait_for(self.wake.wait(), max(wake_at - time.monotonic(), MIN_SLEEP))
            except asyncio.TimeoutError:
                lag = time.monotonic() - wake_at
                if lag > STALL_WARNING:
                    log.warning("the agent's loop woke %.1f s late (is the host overloaded?)", lag)
            self.wake.clear()
        for task in (stats, apply, locals_, repair, active):
            if task is not None:
                await asyncio.wait([task])

    async def _read_locals(self) -> None:
        assert self.node is not None and self.plane is not None
        try:
            self.address_reads += 1
            addrs = await self._bk(self.backend.local_addresses)
            if self.node.locals and sorted(addrs) != self.node.locals:
                log.info("local addresses changed: %s", ", ".join(map(str, addrs)))
                if self.plane.up:
                    await self._bk(self.backend.refresh_endpoints)
        except BackendError as exc:
            self.plane.failed("reading the local addresses", exc, time.monotonic())
            return
        self.node.set_locals(addrs)
        self._poke()

    async def _read_stats(self) -> None:
        assert self.node is not None and self.plane is not None
        try:
            self.node.set_stats(await self._bk(self.backend.stats))
            self._poke()
        except BackendError as exc:
            self.plane.failed("reading WireGuard's peers", exc, time.monotonic())
            self.wake.set()  # for the DataPlane's question

    async def _apply(self, desired: DesiredState) -> None:
        assert self.plane is not None
        try:
            await self._bk(self.backend.apply, desired)
            self.applied = desired
            self.plane.applied(True, time.monotonic())
            self.wake.set()  # the node may have wanted more meanwhile
        except BackendError as exc:
            self.plane.failed("applying the WireGuard configuration", exc, time.monotonic())
            self.plane.applied(False, time.monotonic())
            self.wake.set()

    def _resolved(self, name: str, address: Optional[str], now: float) -> None:
        """The Resolver's answer for a static node's DNS name."""
        if self.node is not None:
            self.node.set_static_address(name, address, now)
            self._poke()

    def _readable(self) -> None:
        """Drain the control socket (up to a batch), then send what the node answered: one
        wakeup of the loop per burst instead of one per datagram."""
        assert self.sock is not None
        if self.node is None:
            return
        receive, recvfrom, now = self.node.receive, self.sock.recvfrom, time.monotonic()
        for _ in range(READ_BATCH):
            try:
                # One byte more than the protocol's largest: a longer one is refused, whole.
                data, addr = recvfrom(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable from a dead peer
                log.debug("control socket: %s", exc)
                continue
            try:
                receive(now, data, addr[0], addr[1])
            except Exception:  # the core never raises on input; if it does, it is a bug, not fatal
                held = self.bug_log.allow("datagram", now)
                if held is not None:
                    more = f" ({held} more held back)" if held else ""
                    log.exception("bug while handling a datagram from %s%s", addr[0], more)
        self._flush()
        self._poke()

    def _flush(self) -> None:
        assert self.node is not None and self.sock is not None
        for data, dst in self.node.take_outgoing():
            try:
                self.sock.sendto(data, (dst.host, dst.port))
            except (BlockingIOError, InterruptedError):
                log.debug("control socket full: dropped a datagram to %s", dst)
            except OSError as exc:  # unreachable network, ICMP error reported on this socket
                log.debug("sending to %s: %s", dst, exc)

    def status(self) -> dict[str, Any]:
        assert self.node is not None and self.plane is not None  # served once they exist
        now = time.monotonic()
        doc = self.node.status(now)
        doc["interface"] = self.settings.interface
        doc["backend"] = self.backend.name
        doc["dataPlane"] = self.plane.status(now)
        doc["statusSocket"] = self.status_server.status()
        doc["addresses"] = {"watch": "poll" if self.bell is None else "events", "reads": self.address_reads}
        if self.resolver.hosts:
            doc["resolve"] = self.resolver.status()
        return doc | self.certs.status()


def _idle(task: Optional[asyncio.Future[Any]]) -> bool:
    """No such task is running. A task that failed with anything but a BackendError (which
    the tasks log themselves) is a bug: raise it here, as if it had been awaited."""
    if task is None:
        return True
    if not task.done():
        return False
    task.result()
    return True


def run(settings: NodeSettings, net: NetConfig, reload: Optional[Reload] = None) -> int:
    """Entry point used by the CLI. Returns the exit status."""
    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug output is noise here
    try:
        agent = Agent(settings, net, reload)
    except BackendError as exc:
        log.error("%s", exc)
        return 1
    try:
        return asyncio.run(agent.run())
    except (BackendError, AlreadyRunning, status_socket.StatusError) as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:  # e.g. the control port is taken
        log.error("%s: %s", settings.interface, exc)
        return 1
