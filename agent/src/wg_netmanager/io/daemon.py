"""The asyncio shell around the sans-IO node: sockets, timers, signals, backend, status.

One loop owns everything. Every `TICK` seconds it feeds the node the time, WireGuard's
counters and the host's addresses, sends what the node wants sent, and hands the node's desired
state to the backend when it changed. Datagrams are fed to the node as they arrive.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, Optional

from ..backends import BackendError, select_backend
from ..core.config import NetConfig, NodeSettings
from ..core.model import DesiredState, Endpoint, InterfaceSettings
from ..core.node import Node, Params, StaticNode
from ..keystore import load_or_create_private_key
from . import status as status_socket

log = logging.getLogger(__name__)

TICK = 0.1
STATS_EVERY = 0.2
LOCALS_EVERY = 1.0
RESOLVE_EVERY = 30.0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.agent.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("control socket: %s", exc)  # e.g. ICMP port unreachable from a dead peer


class Agent:
    def __init__(self, settings: NodeSettings, net: NetConfig) -> None:
        self.settings = settings
        self.net = net
        self.backend = select_backend(settings.backend, settings.interface, settings.state_dir)
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.node: Optional[Node] = None
        self.applied: Optional[DesiredState] = None
        self.stop = asyncio.Event()
        # pyroute2's synchronous API runs an event loop of its own, which cannot nest inside
        # ours: all backend calls go to one worker thread (which also keeps them in order).
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="backend")
        self.hostnames = {p.name: p.endpoint_host for p in net.peers if not _is_ip(p.endpoint_host)}

    def _params(self, public_key: str, listen_port: int) -> Params:
        s = self.settings
        statics = tuple(
            StaticNode(p.name, p.wg_ip, p.endpoint_host, p.endpoint_port, p.admin_port)
            for p in self.net.peers
        )
        return Params(s.name, s.wg_ip, self.net.subnet, public_key, listen_port, s.admin_port, statics)

    async def run(self) -> int:
        s = self.settings
        if s.existing_interface:
            private = ""
        else:
            private = load_or_create_private_key(s.state_dir, s.interface).private_b64()
        address = IPv4Interface(f"{s.wg_ip}/{self.net.subnet.prefixlen}")
        loop = asyncio.get_running_loop()
        await self._bk(self.backend.up, InterfaceSettings(s.interface, address, s.wg_port, private))
        del private
        now = time.time()
        self.node = Node(
            self._params(self.backend.public_key, self.backend.listen_port or s.wg_port),
            self.net.shared_key,
            now,
            random.SystemRandom(),
        )
        sock_path = status_socket.socket_path(s.run_dir, s.interface)
        server = None
        try:
            self.transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=("0.0.0.0", s.admin_port)
            )
            server = await status_socket.start_status_server(sock_path, self.status)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop.set)
            log.info(
                "%s (%s) up on %s with %s, control port %d",
                s.name,
                s.wg_ip,
                s.interface,
                self.backend.name,
                s.admin_port,
            )
            await self._loop()
            log.info("leaving the mesh")
            self.node.leave(time.time())
            self._flush()
            await asyncio.sleep(0.05)  # let the LEAVE datagrams go out
        finally:
            if server is not None:
                await status_socket.stop_status_server(server, sock_path)
            if self.transport is not None:
                self.transport.close()
            await self._bk(self.backend.down)
            self.pool.shutdown()
        return 0

    async def _bk(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _loop(self) -> None:
        assert self.node is not None
        next_stats = next_locals = next_resolve = 0.0
        while not self.stop.is_set():
            now = time.time()
            if now >= next_locals:
                next_locals = now + LOCALS_EVERY
                addrs = await self._bk(self.backend.local_addresses)
                if self.node.locals and sorted(addrs) != self.node.locals:
                    log.info("local addresses changed: %s", ", ".join(map(str, addrs)))
                    await self._bk(self.backend.refresh_endpoints)
                self.node.set_locals(addrs)
            if now >= next_resolve and self.hostnames:
                next_resolve = now + RESOLVE_EVERY
                asyncio.ensure_future(self._resolve())
            if now >= next_stats:
                next_stats = now + STATS_EVERY
                self.node.set_stats(await self._bk(self.backend.stats))
            self.node.tick(now)
            self._flush()
            desired = self.node.desired(now)
            if desired is not self.applied and desired != self.applied:  # usually the same object
                try:
                    await self._bk(self.backend.apply, desired)
                    self.applied = desired
                except BackendError as exc:
                    log.error("applying the WireGuard configuration failed: %s", exc)
            try:
                await asyncio.wait_for(self.stop.wait(), TICK)
            except asyncio.TimeoutError:
                pass

    async def _resolve(self) -> None:
        """Re-resolve static nodes given by name, so dynamic DNS works."""
        assert self.node is not None
        loop = asyncio.get_running_loop()
        for name, host in self.hostnames.items():
            try:
                infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
                address: Optional[str] = str(infos[0][4][0])
            except OSError as exc:
                log.warning("cannot resolve %s (static node %s): %s", host, name, exc)
                address = None
            self.node.set_static_address(name, address)

    def on_datagram(self, data: bytes, addr: Any) -> None:
        if self.node is None:
            return
        try:
            self.node.datagram(time.time(), data, Endpoint(addr[0], addr[1]))
        except Exception:  # the core never raises on input; if it does, it is a bug, not fatal
            log.exception("bug while handling a datagram from %s", addr[0])
        self._flush()

    def _flush(self) -> None:
        assert self.node is not None and self.transport is not None
        for data, dst in self.node.take_outgoing():
            self.transport.sendto(data, (dst.host, dst.port))

    def status(self) -> dict[str, Any]:
        assert self.node is not None
        doc = self.node.status(time.time())
        doc["interface"] = self.settings.interface
        doc["backend"] = self.backend.name
        return doc


def _is_ip(host: str) -> bool:
    try:
        IPv4Address(host)
        return True
    except ValueError:
        return False


def run(settings: NodeSettings, net: NetConfig) -> int:
    """Entry point used by the CLI. Returns the exit status."""
    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug output is noise here
    try:
        agent = Agent(settings, net)
    except BackendError as exc:
        log.error("%s", exc)
        return 1
    try:
        return asyncio.run(agent.run())
    except BackendError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:  # e.g. the control port is taken
        log.error("%s: %s", settings.interface, exc)
        return 1
