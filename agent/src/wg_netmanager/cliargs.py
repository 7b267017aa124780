"""The command line's parsers, and the original Rust wg_netmanager's command lines.

The original's options keep working unchanged: `-c net.yaml -i wg0 -a 10.1.1.1 -n alice`,
its positional form `-c network.yaml INTERFACE WG_IP NAME`, its long option names
(`--network_config`, `--wireguard-interface`, ...), `-l` (log to NAME.log), `-O` (print the
configuration and exit) and its `install` subcommand, before or after the options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from . import __version__
from .core.config import (
    BACKENDS,
    DEFAULT_INTERFACE,
    DEFAULT_NET_FILE,
    DEFAULT_RUN_DIR,
    DEFAULT_STATE_DIR,
    DEFAULT_WG_PORT,
    SHARED_KEY_LEN,
)

PROG = "wg_netmanager"
EXIT_USAGE = 2
POSITIONALS = ("INTERFACE", "WG_IP", "NAME")

FILES_HELP = f"""\
files:
  {DEFAULT_NET_FILE}        the network: shared key, subnet, static peers;
                                     the same on every node (mode 0600); the
                                     original's network.yaml is read when only it exists
  /etc/wg_netmanager/peer.yaml       this node's settings (name, wgIp, ...): read
                                     when it exists, or the file given with -p
  STATE_DIR/INTERFACE/private.key    this node's WireGuard key, made on first start
                                     (STATE_DIR default: {DEFAULT_STATE_DIR})
  RUN_DIR/INTERFACE.sock             status socket read by `{PROG} status`
                                     (RUN_DIR default: {DEFAULT_RUN_DIR})

Command-line values win over peer.yaml. A configuration error prints one line
"FILE: FIELD: REASON" and exits with status 2.
"""

RUN_EPILOG = f"""\
commands (`{PROG} COMMAND --help` for their options):
  run             run the agent (the default when no command is given)
  status          show the running agent's peers and paths
  genkey          print a new shared key for net.yaml
  check-config    validate net.yaml (and peer.yaml / node options) and summarize them
  install         write a hardened systemd unit for this node and start it
  pubkey          print this node's WireGuard public key (made when absent)
  ca init         make the optional network CA: ca.key and ca.pub
  cert            sign a node's certificate (cert sign), print one (cert show)

examples:
  {PROG} -c net.yaml -i wg0 -a 10.1.1.1 -n alice
  {PROG} -c net.yaml wg0 10.1.1.16 bob          (INTERFACE WG_IP NAME, as the original)
  {PROG} -c net.yaml -i wg0 -a 10.1.1.21 -n carol \\
      -s endPoint=vps.example.org:50000,wgIp=10.1.1.2

{FILES_HELP}"""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _add_node_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "words",
        nargs="*",
        metavar="INTERFACE WG_IP NAME",
        help="the original's positional form of -i, -a and -n",
    )
    add(
        "-c",
        "--config",
        "--network_config",
        metavar="NET_YAML",
        type=Path,
        help=f"network configuration, shared by all nodes (default: {DEFAULT_NET_FILE})",
    )
    add(
        "-p",
        "--peer-config",
        "--peer_config",
        metavar="PEER_YAML",
        type=Path,
        help="this node's settings file (default: /etc/wg_netmanager/peer.yaml if it exists)",
    )
    add("-n", "--name", help="this node's name (static nodes: their name in net.yaml)")
    add(
        "-a",
        "--wg-ip",
        "--wireguard-address",
        metavar="IP",
        help="this node's address inside the mesh subnet",
    )
    add(
        "-i",
        "--interface",
        "--wireguard-interface",
        metavar="IFACE",
        help=f"WireGuard interface (default: {DEFAULT_INTERFACE})",
    )
    add(
        "-e",
        "--existing-interface",
        "--existing-wg",
        action="store_true",
        default=None,
        help="adopt an interface that already exists instead of creating one",
    )
    add(
        "-w",
        "--wg-port",
        "--wireguard-port",
        metavar="PORT",
        type=int,
        help=f"WireGuard UDP port (default: {DEFAULT_WG_PORT}+ from the name; static: the endPoint's)",
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
        "-s",
        "--static-peer",
        metavar="SPEC",
        action="append",
        default=[],
        help="a static node on top of net.yaml's, as endPoint=HOST:PORT,wgIp=IP[,adminPort=PORT]"
        "[,name=NAME]; repeat for more",
    )
    add(
        "--cert",
        metavar="CERT",
        type=Path,
        help="this node's certificate from the network CA (`cert sign`; needed when net.yaml names a CA)",
    )
    add(
        "--subnet",
        metavar="CIDR",
        action="append",
        help="a LAN subnet behind this node that the other nodes route to it (a subnet gateway);"
        " repeat for more; replaces peer.yaml's `subnets`",
    )
    add(
        "--masquerade",
        action="store_true",
        default=None,
        help="the mesh reaches those subnets from this node's LAN address (for LAN hosts with no"
        " route back to the mesh)",
    )
    add(
        "--exit-node",
        action="store_true",
        default=None,
        help="offer the other nodes this node's internet access (an exit node)",
    )
    add(
        "--use-exit-node",
        metavar="NAME",
        help="send this node's internet traffic through the exit node NAME (a static node, or"
        " with a network CA one whose certificate lists 0.0.0.0/0)",
    )
    add(
        "--mode",
        choices=("normal", "mobile"),
        help="mobile: a data-limited node (a metered link): one small datagram per 25 s to one"
        " static node when idle, direct paths only while there is traffic",
    )
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


def _add_original_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-l", "--logfile", action="store_true", help="also log to NAME.log in the current directory")
    add("-O", dest="output", action="store_true", help="print the configuration and exit (like check-config)")
    add(
        "-t",
        "--tui",
        action="store_true",
        help="the original's text UI: not built (a warning); watch with `status`",
    )
    add(
        "-H",
        "--wireguard-hopping",
        action="store_true",
        help="accepted and ignored: ports are chosen per node name, so routers keep them",
    )


def run_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        usage=f"{PROG} [run] [-c NET_YAML] [-p PEER_YAML] [-i IFACE -a IP -n NAME | INTERFACE WG_IP NAME]"
        f" [options]\n       {PROG} {{status,genkey,check-config,install,pubkey,ca,cert}} [options]",
        description="Run the wg_netmanager agent: a WireGuard mesh that finds direct\n"
        "(LAN or hole-punched) paths between its nodes, and relays through another\n"
        "node where there is none.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_node_options(parser)
    _add_original_flags(parser)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def check_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} check-config",
        description="Validate net.yaml and, when -p, -n or -a is given (or INTERFACE WG_IP\n"
        "NAME), this node's settings; print a summary (exit 0) or the first mistake (exit 2).",
        epilog=FILES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_node_options(parser)
    return parser


def install_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} install",
        description="Check this node's configuration, write a hardened systemd unit that runs\n"
        "the agent with it, and (where systemd runs) enable and start it: a supervised agent\n"
        "in one step, without Ansible. Run it again after changing the options.",
        epilog=FILES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_node_options(parser)
    parser.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    parser.add_argument(
        "--unit-dir", type=Path, default=Path("/etc/systemd/system"), help="where to write the unit"
    )
    parser.add_argument("--no-start", action="store_true", help="write the unit, do not enable or start it")
    return parser


def status_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


def genkey_parser() -> argparse.ArgumentParser:
    return Parser(
        prog=f"{PROG} genkey",
        description=f"Print a new shared key (base64 of {SHARED_KEY_LEN} random bytes) for "
        "network.sharedKey in net.yaml. Every node of one mesh uses the same key.",
    )


def parse_node_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse, then fold the positional INTERFACE WG_IP NAME into -i, -a and -n. A last word
    `install` is the original's subcommand (clap took it after the options)."""
    args = parser.parse_intermixed_args(argv)
    words = list(args.words)
    args.install = len(words) in (1, len(POSITIONALS) + 1) and words[-1] == "install"
    if args.install:
        words.pop()
    if len(words) not in (0, len(POSITIONALS)):
        parser.error(
            f"expected {' '.join(POSITIONALS)} (3 words) or none, got {len(words)}: {' '.join(words)}"
        )
    for word, (attr, option), label in zip(
        words, (("interface", "-i"), ("wg_ip", "-a"), ("name", "-n")), POSITIONALS
    ):
        given = getattr(args, attr)
        if given is not None and given != word:
            parser.error(f"{label} {word!r} differs from {option} {given!r}")
        setattr(args, attr, word)
    return args
