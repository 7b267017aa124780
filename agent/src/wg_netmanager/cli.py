"""Command line: run the agent, show its status, make a shared key, check a configuration.

User mistakes are one line on stderr and exit status 2; an agent that cannot be reached or a
backend that fails is one line and status 1. Tracebacks are left for bugs.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .backends.base import BackendError
from .core.config import (
    BACKENDS,
    DEFAULT_INTERFACE,
    DEFAULT_NET_FILE,
    DEFAULT_RUN_DIR,
    DEFAULT_STATE_DIR,
    DEFAULT_WG_PORT,
    SHARED_KEY_LEN,
    ConfigError,
    NetConfig,
    NodeSettings,
    load_net,
    load_peer_file,
    node_settings,
    peer_overrides,
)
from .io.status import StatusError, read_status, socket_path
from .statusfmt import render

PROG = "wg_netmanager"
EXIT_FAILURE = 1
EXIT_USAGE = 2

FILES_HELP = f"""\
files:
  {DEFAULT_NET_FILE}        the network: shared key, subnet, static peers;
                                     the same on every node (mode 0600)
  /etc/wg_netmanager/peer.yaml       this node's settings (name, wgIp, ...), given with -p
  STATE_DIR/INTERFACE/private.key    this node's WireGuard key, made on first start
                                     (STATE_DIR default: {DEFAULT_STATE_DIR})
  RUN_DIR/INTERFACE.sock             status socket read by `{PROG} status`
                                     (RUN_DIR default: {DEFAULT_RUN_DIR})

Command-line values win over peer.yaml. A configuration error prints one line
"FILE: FIELD: REASON" and exits with status 2.
"""

RUN_EPILOG = f"""\
commands (give them first; `{PROG} COMMAND --help` for their options):
  run             run the agent (the default when no command is given)
  status          show the running agent's peers and paths
  genkey          print a new shared key for net.yaml
  check-config    validate net.yaml (and peer.yaml / node options) and summarize them

{FILES_HELP}"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _add_node_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "-c",
        "--config",
        metavar="NET_YAML",
        type=Path,
        default=DEFAULT_NET_FILE,
        help=f"network configuration, shared by all nodes (default: {DEFAULT_NET_FILE})",
    )
    add("-p", "--peer-config", metavar="PEER_YAML", type=Path, help="this node's settings file")
    add("-n", "--name", help="this node's name (static nodes: their name in net.yaml)")
    add("-a", "--wg-ip", metavar="IP", help="this node's address inside the mesh subnet")
    add("-i", "--interface", metavar="IFACE", help=f"WireGuard interface (default: {DEFAULT_INTERFACE})")
    add(
        "-e",
        "--existing-interface",
        action="store_true",
        default=None,
        help="adopt an interface that already exists instead of creating one",
    )
    add(
        "-w",
        "--wg-port",
        metavar="PORT",
        type=int,
        help=f"WireGuard UDP port (default: {DEFAULT_WG_PORT}; static nodes: their endPoint's)",
    )
    add(
        "-u",
        "--admin-port",
        metavar="PORT",
        type=int,
        help="UDP port of the encrypted control channel (default: WireGuard port + 1)",
    )
    add("-b", "--backend", help=f"one of {', '.join(BACKENDS)} (default: auto)")
    add(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the private key is kept (default: {DEFAULT_STATE_DIR})",
    )
    add(
        "--run-dir",
        type=Path,
        default=DEFAULT_RUN_DIR,
        help=f"where the status socket is made (default: {DEFAULT_RUN_DIR})",
    )
    add("-v", "--verbose", action="count", default=0, help="-v: info, -vv: debug logging")


def _run_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [run] -c NET_YAML [-p PEER_YAML] -n NAME -a IP [options]\n"
        f"       {PROG} {{status,genkey,check-config}} [options]",
        description="Run the wg_netmanager agent: a WireGuard mesh that finds direct\n"
        "(LAN or hole-punched) paths between its nodes, and relays through another\n"
        "node where there is none.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_node_options(parser)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} check-config",
        description="Validate net.yaml and, when -p, -n or -a is given, this node's\n"
        "settings; print a summary (exit 0) or the first mistake (exit 2).",
        epilog=FILES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_node_options(parser)
    return parser


def _status_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} status",
        description="Show the running agent's peers, their paths and traffic.",
        epilog="The agent serves its status on RUN_DIR/INTERFACE.sock (mode 0600, so run "
        "this as root). Exit status 1 when no agent answers.",
    )
    parser.add_argument(
        "-i",
        "--interface",
        metavar="IFACE",
        default=DEFAULT_INTERFACE,
        help=f"the agent's WireGuard interface (default: {DEFAULT_INTERFACE})",
    )
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=DEFAULT_RUN_DIR,
        help=f"directory of the status socket (default: {DEFAULT_RUN_DIR})",
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for the agent (default: 2)"
    )
    return parser


def _genkey_parser() -> argparse.ArgumentParser:
    return _Parser(
        prog=f"{PROG} genkey",
        description=f"Print a new shared key (base64 of {SHARED_KEY_LEN} random bytes) for "
        "network.sharedKey in net.yaml. Every node of one mesh uses the same key.",
    )


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger().setLevel(level)


def _settings(args: argparse.Namespace, need_node: bool) -> tuple[NetConfig, NodeSettings | None]:
    net = load_net(args.config)
    peer_file = load_peer_file(args.peer_config) if args.peer_config else None
    overrides = peer_overrides(
        name=args.name,
        wg_ip=args.wg_ip,
        interface=args.interface,
        existing_interface=args.existing_interface,
        wg_port=args.wg_port,
        admin_port=args.admin_port,
        backend=args.backend,
    )
    if not need_node and peer_file is None and args.name is None and args.wg_ip is None:
        return net, None
    settings = node_settings(
        net, peer_file, overrides, state_dir=args.state_dir, run_dir=args.run_dir, verbose=args.verbose
    )
    return net, settings


def cmd_run(argv: Sequence[str]) -> int:
    args = _run_parser().parse_args(argv)
    setup_logging(args.verbose)
    net, settings = _settings(args, need_node=True)
    assert settings is not None
    # Imported here: the daemon pulls in the backends, which `status` and `genkey` don't need.
    daemon = importlib.import_module("wg_netmanager.io.daemon")
    return int(daemon.run(settings, net))


def cmd_check_config(argv: Sequence[str]) -> int:
    args = _check_parser().parse_args(argv)
    setup_logging(args.verbose)
    net, settings = _settings(args, need_node=False)
    print(f"{net.source}: subnet {net.subnet}, {len(net.peers)} static peer(s)")
    for peer in net.peers:
        print(f"  {peer.name}: {peer.wg_ip} at {peer.endpoint}, admin port {peer.admin_port}")
    if settings is not None:
        kind = "static" if net.peer_named(settings.name) else "dynamic"
        print(
            f"node {settings.name} ({kind}): {settings.wg_ip} on {settings.interface}"
            f"{' (existing)' if settings.existing_interface else ''}, "
            f"WireGuard port {settings.wg_port}, admin port {settings.admin_port}, "
            f"backend {settings.backend}"
        )
    return 0


def cmd_status(argv: Sequence[str]) -> int:
    args = _status_parser().parse_args(argv)
    interface = peer_overrides(interface=args.interface).interface
    assert interface is not None
    doc = read_status(socket_path(args.run_dir, interface), timeout=args.timeout)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render(doc, time.time()))
    return 0


def cmd_genkey(argv: Sequence[str]) -> int:
    _genkey_parser().parse_args(argv)
    print(base64.b64encode(secrets.token_bytes(SHARED_KEY_LEN)).decode())
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": cmd_run,
    "status": cmd_status,
    "genkey": cmd_genkey,
    "check-config": cmd_check_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    command: Callable[[Sequence[str]], int] = cmd_run
    if args and args[0] in COMMANDS:
        command = COMMANDS[args.pop(0)]
    try:
        return command(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except (StatusError, BackendError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
