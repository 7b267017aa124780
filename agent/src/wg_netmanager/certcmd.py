"""`ca init`, `cert sign`, `cert show` and `pubkey`: the optional network CA on the command
line, shared by users, the Ansible roles and the tests.

Inputs are checked with the configuration's own rules, so a certificate never says what
net.yaml would refuse; a mistake is one line `FILE: FIELD: REASON` and exit status 2. The CA
private key is read from its file only, and never printed or logged.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from . import certfiles
from .cliargs import PROG, Parser
from .core import checks
from .core.cert import MAX_SUBNETS, Cert, CertError, b64, fingerprint, format_serial, sign, verify
from .core.checks import ConfigError
from .core.config import DEFAULT_INTERFACE, DEFAULT_STATE_DIR
from .keystore import load_or_create_private_key

CMD = "command line"
DEFAULT_DAYS = 365
MAX_DAYS = 36500
DAY = 86400
# Backdated by the clock difference the control channel accepts, so that a node whose clock
# lags the controller's still takes a certificate made a moment ago.
BACKDATE = 120  # seconds: a node whose clock is a little behind accepts a fresh certificate
EXIT_INVALID = 1


def _now() -> int:
    return int(time.time())


def ca_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} ca", description="Manage the network's certificate authority.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = sub.add_parser(
        "init",
        help="make a new CA: DIR/ca.key and DIR/ca.pub",
        description="Make a new Ed25519 CA: DIR/ca.key (mode 0600: keep it on the controller, "
        "never on the nodes) and DIR/ca.pub (for net.yaml's network.caPublicKey). Prints the "
        "public key. Existing files are never overwritten.",
    )
    init.add_argument("directory", metavar="DIR", type=Path, help="made (0700) when absent")
    return parser


def cert_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} cert", description="Sign or show node certificates.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    signer = sub.add_parser(
        "sign",
        help="sign a node's certificate",
        description="Certify that the node N, at mesh address IP, owns the WireGuard public key "
        "KEY and may route the subnets given. Writes FILE (mode 0644: it holds no secret).",
    )
    add = signer.add_argument
    add("--ca-key", metavar="FILE", type=Path, required=True, help="the CA's ca.key")
    add("--name", metavar="N", required=True, help="the node's name")
    add("--wg-ip", metavar="IP", required=True, help="the node's address in the mesh")
    add(
        "--public-key",
        metavar="KEY",
        required=True,
        help=f"the node's WireGuard public key (`{PROG} pubkey` on the node prints it)",
    )
    add(
        "--subnet",
        metavar="CIDR",
        action="append",
        default=[],
        help=f"a network the node may route into the mesh; repeat, at most {MAX_SUBNETS}",
    )
    add("--days", metavar="D", default=str(DEFAULT_DAYS), help=f"validity (default: {DEFAULT_DAYS})")
    add("-o", "--output", metavar="FILE", type=Path, required=True, help="certificate file to write")
    add("--force", action="store_true", help="replace FILE if it exists")
    show = sub.add_parser(
        "show",
        help="print a certificate",
        description="Print a certificate's fields. Exit status 1 when it is not valid now "
        "(expired, not yet valid, or, with --ca, not signed by that CA).",
    )
    show.add_argument("file", metavar="FILE", type=Path)
    show.add_argument("--ca", metavar="CA_PUB", type=Path, help="check the signature against this ca.pub")
    show.add_argument("--json", action="store_true", help="print the fields as JSON")
    return parser


def pubkey_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=f"{PROG} pubkey",
        description="Print this node's WireGuard public key, making its private key when there "
        "is none yet (so a certificate can be signed before the first start).",
    )
    parser.add_argument(
        "-i",
        "--interface",
        metavar="IFACE",
        default=DEFAULT_INTERFACE,
        help=f"WireGuard interface (default: {DEFAULT_INTERFACE})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the private key is kept (default: {DEFAULT_STATE_DIR})",
    )
    return parser


def cmd_ca(argv: Sequence[str]) -> int:
    args = ca_parser().parse_args(argv)
    ca = certfiles.init_ca(args.directory)
    key, pub = args.directory / certfiles.CA_KEY_FILE, args.directory / certfiles.CA_PUB_FILE
    print(f"{key}: written (mode 0600: keep it secret, off the nodes)", file=sys.stderr)
    print(f"{pub}: written (its line is net.yaml's network.caPublicKey)", file=sys.stderr)
    print(ca.public_b64)
    return 0


def cmd_cert(argv: Sequence[str]) -> int:
    args = cert_parser().parse_args(argv)
    return _sign(args) if args.action == "sign" else _show(args)


def cmd_pubkey(argv: Sequence[str]) -> int:
    args = pubkey_parser().parse_args(argv)
    interface = checks.interface(args.interface, CMD, "--interface")
    print(load_or_create_private_key(args.state_dir, interface).public_b64)
    return 0


def _sign(args: argparse.Namespace) -> int:
    name = checks.name(args.name, CMD, "--name")
    wg_ip = checks.ipv4(args.wg_ip, CMD, "--wg-ip")
    public_key = _public_key(args.public_key)
    subnets = _subnets(args.subnet)
    days = _days(args.days)
    if os.path.lexists(args.output) and not args.force:
        raise ConfigError(str(args.output), "(file)", "already exists (give --force to replace it)")
    ca = certfiles.read_ca_key(args.ca_key)
    now = _now()
    try:
        cert = sign(
            ca,
            serial=secrets.randbits(64),
            name=name,
            wg_ip=wg_ip,
            public_key=public_key,
            subnets=subnets,
            not_before=now - BACKDATE,
            not_after=now + days * DAY,
        )
    except CertError as exc:
        raise ConfigError(CMD, "(certificate)", exc.reason) from None
    certfiles.write_cert(args.output, cert, force=args.force)
    print(
        f"{args.output}: certificate for {name} ({wg_ip}), serial {format_serial(cert.serial)}, "
        f"valid until {_utc(cert.not_after)}"
    )
    return 0


def _public_key(text: str) -> str:
    hint = f"must be a WireGuard public key, base64 of 32 bytes (`{PROG} pubkey` prints it)"
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(CMD, "--public-key", hint) from None
    if len(raw) != 32:
        raise ConfigError(CMD, "--public-key", hint)
    if raw == bytes(32):
        raise ConfigError(CMD, "--public-key", "the all-zero key is not a public key")
    return base64.b64encode(raw).decode()


def _subnets(texts: Sequence[str]) -> tuple[IPv4Network, ...]:
    return checks.routed_subnets(list(texts), CMD, "--subnet", default_route=True)


def _days(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        raise ConfigError(CMD, "--days", f"must be a whole number of days in 1..{MAX_DAYS}, got {text!r}")
    return int(text)


def _show(args: argparse.Namespace) -> int:
    cert = certfiles.read_cert(args.file)
    now = _now()
    problem = None
    if args.ca is not None:
        try:
            verify(cert, certfiles.read_ca_public_key(args.ca), now)
        except CertError as exc:
            problem = exc.reason
    elif now < cert.not_before:
        problem = "not yet valid"
    elif now > cert.not_after:
        problem = "expired"
    unchecked = "valid now (signature not checked: give --ca CA_PUB)"
    status = problem or ("valid" if args.ca else unchecked)
    if args.json:
        print(json.dumps(cert_document(cert, status, verified=args.ca is not None and not problem), indent=2))
    else:
        sys.stdout.write(render(cert, str(args.file), status))
    if problem:
        print(f"{args.file}: certificate: {problem}", file=sys.stderr)
        return EXIT_INVALID
    return 0


def _utc(t: int) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cert_document(cert: Cert, status: str, verified: bool) -> dict[str, Any]:
    return {
        "version": cert.version,
        "serial": format_serial(cert.serial),
        "name": cert.name,
        "wgIp": str(cert.wg_ip),
        "publicKey": cert.public_key,
        "subnets": [str(s) for s in cert.subnets],
        "notBefore": cert.not_before,
        "notAfter": cert.not_after,
        "issuer": b64(cert.issuer),
        "fingerprint": fingerprint(cert),
        "signature": cert.signature.hex(),
        "status": status,
        "verified": verified,
    }


def render(cert: Cert, source: str, status: str) -> str:
    rows = [
        ("version", str(cert.version)),
        ("serial", format_serial(cert.serial)),
        ("name", cert.name),
        ("wg ip", str(cert.wg_ip)),
        ("public key", cert.public_key),
        ("subnets", ", ".join(str(s) for s in cert.subnets) or "none"),
        ("not before", _utc(cert.not_before)),
        ("not after", _utc(cert.not_after)),
        ("issuer", b64(cert.issuer)),
        ("fingerprint", fingerprint(cert)),
        ("signature", cert.signature.hex()),
        ("status", status),
    ]
    width = max(len(label) for label, _ in rows) + 2
    return f"certificate {source}\n" + "".join(f"  {label:<{width}}{value}\n" for label, value in rows)
