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
from typing import Any

from . import install
from .backends.base import BackendError
from .certcmd import cmd_ca, cmd_cert, cmd_pubkey
from .certfiles import own_cert
from .cliargs import (
    EXIT_USAGE,
    PROG,
    check_parser,
    genkey_parser,
    install_parser,
    parse_node_args,
    run_parser,
    status_parser,
)
from .configfile import default_net_file, default_peer_file, load_net, load_peer_file
from .core.cert import format_serial
from .core.config import (
    DEFAULT_RUN_DIR,
    DEFAULT_STATE_DIR,
    SHARED_KEY_LEN,
    ConfigError,
    NetConfig,
    NodeSettings,
    add_static_peers,
    node_settings,
    peer_overrides,
)
from .io.status import StatusError, read_status, socket_path
from .statusfmt import render

EXIT_FAILURE = 1

log = logging.getLogger(__name__)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger().setLevel(level)


def _settings(
    args: argparse.Namespace, need_node: bool, warn: Callable[[str], None] | None = None
) -> tuple[NetConfig, NodeSettings | None]:
    """net.yaml and this node's settings; net.yaml's warnings to stderr (or to `warn`)."""
    if args.config is None:
        args.config = default_net_file()
    if args.peer_config is None:
        args.peer_config = default_peer_file()
    net = add_static_peers(load_net(args.config), args.static_peer)
    for warning in net.warnings:
        if warn is None:
            print(warning, file=sys.stderr)
        else:
            warn(warning)
    peer_file = load_peer_file(args.peer_config) if args.peer_config else None
    overrides = peer_overrides(
        name=args.name,
        wg_ip=args.wg_ip,
        interface=args.interface,
        existing_interface=args.existing_interface,
        wg_port=args.wg_port,
        admin_port=args.admin_port,
        backend=args.backend,
        cert=args.cert,
        subnets=args.subnet,
        masquerade=args.masquerade,
        exit_node=args.exit_node,
        use_exit_node=args.use_exit_node,
        mode=args.mode,
    )
    if not need_node and peer_file is None and args.name is None and args.wg_ip is None:
        return net, None
    settings = node_settings(
        net, peer_file, overrides, state_dir=args.state_dir, run_dir=args.run_dir, verbose=args.verbose
    )
    return net, settings


def cmd_run(argv: Sequence[str]) -> int:
    args = parse_node_args(run_parser(), list(argv))
    if args.install:  # the original's `wg_netmanager [OPTIONS] install`
        return _install(args, print_only=False, unit_dir=install.UNIT_DIR, start=True)
    setup_logging(args.verbose)
    net, settings = _settings(args, need_node=True)
    assert settings is not None
    if args.output:  # the original's -O: show the configuration, start nothing
        _summary(net, settings)
        return 0
    if args.logfile:
        handler = logging.FileHandler(f"{settings.name}.log")
        handler.setFormatter(logging.getLogger().handlers[0].formatter)
        logging.getLogger().addHandler(handler)
    if args.tui:
        log.warning("-t: the text UI is not built; running without it (watch with `%s status`)", PROG)
    # Imported here: the daemon pulls in the backends, which `status` and `genkey` don't need.
    daemon = importlib.import_module("wg_netmanager.io.daemon")

    def reload() -> tuple[NetConfig, NodeSettings]:  # SIGHUP
        new, again = _settings(args, need_node=True, warn=lambda text: log.debug("reload: %s", text))
        assert again is not None
        return new, again

    return int(daemon.run(settings, net, reload))


def cmd_check_config(argv: Sequence[str]) -> int:
    args = parse_node_args(check_parser(), list(argv))
    setup_logging(args.verbose)
    net, settings = _settings(args, need_node=False)
    _summary(net, settings)
    if settings is not None:
        cert = own_cert(settings, net, None, time.time())  # the key is checked when it runs
        if cert is not None:
            until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(cert.not_after))
            print(f"  certificate: serial {format_serial(cert.serial)}, valid until {until}")
    return 0


def _summary(net: NetConfig, settings: NodeSettings | None) -> None:
    print(f"{net.source}: subnet {net.subnet}, {len(net.peers)} static peer(s)")
    print(f"  mode: {net.mode()}")
    for peer in net.peers:
        print(f"  {peer.name}: {peer.wg_ip} at {peer.endpoint}, admin port {peer.admin_port}")
    if settings is not None:
        kind = "static" if net.peer_at(settings.wg_ip) else "dynamic"
        print(
            f"node {settings.name} ({kind}): {settings.wg_ip} on {settings.interface}"
            f"{' (existing)' if settings.existing_interface else ''}, "
            f"WireGuard port {settings.wg_port}, admin port {settings.admin_port}, "
            f"backend {settings.backend}"
        )
        if settings.subnets:
            nat = " (masquerading)" if settings.masquerade else ""
            print(f"  gateway for: {', '.join(str(n) for n in settings.subnets)}{nat}")
        if settings.exit_node:
            print("  exit node: offers the mesh its internet access")
        if settings.use_exit_node:
            print(f"  internet through the exit node {settings.use_exit_node}")
        if settings.mobile:
            print("  mode mobile: one home, a HELLO per 25 s through the tunnel, direct paths with traffic")


def cmd_install(argv: Sequence[str]) -> int:
    args = parse_node_args(install_parser(), list(argv))
    return _install(args, print_only=args.print, unit_dir=args.unit_dir, start=not args.no_start)


def _install(args: argparse.Namespace, print_only: bool, unit_dir: Path, start: bool) -> int:
    setup_logging(args.verbose)
    _, settings = _settings(args, need_node=True)  # no unit for a node that cannot start
    assert settings is not None
    files = [args.config.resolve()] + ([args.peer_config.resolve()] if args.peer_config else [])
    name = install.unit_name(settings.interface)
    text = install.render_unit(install.own_command() + _agent_options(args), settings.interface, files, PROG)
    if print_only:
        sys.stdout.write(text)
        return 0
    path = unit_dir / name
    changed = install.write_unit(text, path)
    print(f"{path}: {'written' if changed else 'unchanged'}")
    ran = install.activate(name, changed) if start else []
    if ran:
        print(f"{name}: enabled and {'restarted' if changed else 'started'}")
    else:
        print(f"start it with: systemctl daemon-reload && systemctl enable --now {name}")
    return 0


def _agent_options(args: argparse.Namespace) -> list[str]:
    """The agent's options as the user gave them, with absolute file names: the unit's
    command line. What peer.yaml says stays there (so editing it is enough)."""
    opts = ["-c", str(args.config.resolve())]
    if args.peer_config is not None:
        opts += ["-p", str(args.peer_config.resolve())]
    for flag, value in (
        ("-i", args.interface),
        ("-a", args.wg_ip),
        ("-n", args.name),
        ("-w", args.wg_port),
        ("-u", args.admin_port),
        ("-b", args.backend),
    ):
        if value is not None:
            opts += [flag, str(value)]
    if args.existing_interface:
        opts.append("-e")
    if args.cert is not None:
        opts += ["--cert", str(args.cert.resolve())]
    for spec in args.static_peer:
        opts += ["-s", spec]
    if args.state_dir != DEFAULT_STATE_DIR:
        opts += ["--state-dir", str(args.state_dir.resolve())]
    if args.run_dir != DEFAULT_RUN_DIR:
        opts += ["--run-dir", str(args.run_dir.resolve())]
    if args.verbose:
        opts.append("-" + "v" * args.verbose)
    return opts


def cmd_status(argv: Sequence[str]) -> int:
    args = status_parser().parse_args(argv)
    interface = peer_overrides(interface=args.interface).interface
    assert interface is not None
    doc = read_status(socket_path(args.run_dir, interface), timeout=args.timeout)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render(doc, time.time()))
    return 0


def cmd_genkey(argv: Sequence[str]) -> int:
    genkey_parser().parse_args(argv)
    print(base64.b64encode(secrets.token_bytes(SHARED_KEY_LEN)).decode())
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": cmd_run,
    "status": cmd_status,
    "genkey": cmd_genkey,
    "check-config": cmd_check_config,
    "install": cmd_install,
    "pubkey": cmd_pubkey,
    "ca": cmd_ca,
    "cert": cmd_cert,
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
    except (StatusError, BackendError, install.InstallError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
