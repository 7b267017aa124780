"""The CA's and the nodes' certificate files: PEM-like text, written so that a secret is never
readable by others and a file is never half-written or silently replaced.

    DIR/ca.key   -----BEGIN WG_NETMANAGER CA PRIVATE KEY----- (the Ed25519 seed), mode 0600
    DIR/ca.pub   the base64 of the CA's raw public key on one line: net.yaml's caPublicKey
    NODE.crt     -----BEGIN WG_NETMANAGER CERTIFICATE----- (core.cert's encoding), mode 0644

Every problem is a `ConfigError(file, field, reason)`: the command line prints it on one line.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from .core import checks, trust
from .core.cert import CaKey, Cert, CertError, decode, encode
from .core.checks import ConfigError
from .core.config import COMMAND_LINE, NetConfig, NodeSettings
from .fsutil import fsync_dir, read_small_text

CERT_BANNER = "WG_NETMANAGER CERTIFICATE"
CA_KEY_BANNER = "WG_NETMANAGER CA PRIVATE KEY"
CA_KEY_FILE = "ca.key"
CA_PUB_FILE = "ca.pub"
MAX_FILE = 16 * 1024  # far above any of these files; a guard against reading a wrong one
LINE = 64


def armor(banner: str, data: bytes) -> str:
    text = base64.b64encode(data).decode()
    lines = [text[i : i + LINE] for i in range(0, len(text), LINE)]
    return "\n".join([f"-----BEGIN {banner}-----", *lines, f"-----END {banner}-----", ""])


def unarmor(text: str, banner: str, file: str) -> bytes:
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != f"-----BEGIN {banner}-----":
        raise ConfigError(file, "(file)", f"not a {banner.lower()} (no -----BEGIN {banner}----- line)")
    if lines[-1] != f"-----END {banner}-----":
        raise ConfigError(file, "(file)", f"no -----END {banner}----- line (truncated?)")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(file, "(file)", "not valid base64 between the BEGIN and END lines") from None


def cert_to_pem(cert: Cert) -> str:
    return armor(CERT_BANNER, encode(cert))


def cert_from_pem(text: str, file: str) -> Cert:
    """A certificate from its file's text (`file` names it in errors: a path or a field)."""
    try:
        return decode(unarmor(text, CERT_BANNER, file))
    except CertError as exc:
        raise ConfigError(file, "certificate", exc.reason) from None


def read_cert(path: Path) -> Cert:
    return cert_from_pem(_read_text(path)[0], str(path))


def own_cert(settings: NodeSettings, net: NetConfig, public_key: str | None, wall: float) -> Cert | None:
    """This node's certificate, checked as far as `public_key` (None: not known yet) allows;
    None when it has none. A network CA wants one: without it the others refuse this node."""
    if settings.cert is None:
        if net.ca_public_key is not None:
            reason = f"names a network CA: node {settings.name} needs a certificate (peer.yaml cert, --cert)"
            raise ConfigError(net.source, "network.caPublicKey", reason)
        return None
    cert = read_cert(settings.cert)
    try:
        trust.check_own(
            cert,
            settings.name,
            settings.wg_ip,
            cert.public_key if public_key is None else public_key,
            net.ca_public_key,
            net.revoked,
            wall,
        )
    except CertError as exc:
        raise ConfigError(str(settings.cert), "certificate", exc.reason) from None
    if net.ca_public_key is not None:
        for subnet in settings.subnets:  # the others would refuse it: say so now
            if not any(subnet.subnet_of(s) for s in cert.subnets):
                listed = ", ".join(map(str, cert.subnets)) or "none"
                reason = f"{subnet} is not in this node's certificate {settings.cert} (it lists {listed})"
                field = "--subnet" if settings.subnets_source == COMMAND_LINE else "subnets"
                raise ConfigError(settings.subnets_source, field, reason)
        if settings.exit_node and not any(s.prefixlen == 0 for s in cert.subnets):
            reason = f"an exit node's certificate must list 0.0.0.0/0 ({settings.cert} does not)"
            raise ConfigError(settings.cert_source, "exitNode", reason)
    return cert


def write_cert(path: Path, cert: Cert, force: bool = False) -> None:
    """Write `path` (0644: a certificate is public) atomically; an existing file is replaced
    only with `force`."""
    _write_new(path, cert_to_pem(cert).encode(), 0o644, replace=force, exists="give --force to replace it")


def init_ca(directory: Path) -> CaKey:
    """A new CA in `directory` (made 0700 when absent); refuses if either file exists."""
    key_path, pub_path = directory / CA_KEY_FILE, directory / CA_PUB_FILE
    for path in (key_path, pub_path):
        if os.path.lexists(path):
            raise ConfigError(str(path), "(file)", "already exists: a CA is never overwritten")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(str(directory), "(directory)", f"cannot create: {exc.strerror}") from None
    ca = CaKey(secrets.token_bytes(32))
    _write_new(key_path, armor(CA_KEY_BANNER, ca.seed()).encode(), 0o600)
    try:
        _write_new(pub_path, (ca.public_b64 + "\n").encode(), 0o644)
    except ConfigError:
        key_path.unlink(missing_ok=True)  # ours, made a moment ago: leave no CA without ca.pub
        raise
    return ca


def read_ca_key(path: Path) -> CaKey:
    text, mode = _read_text(path)
    if mode & 0o077:
        raise ConfigError(str(path), "(file)", f"mode {mode:04o} lets others read the CA key; chmod 600 it")
    seed = unarmor(text, CA_KEY_BANNER, str(path))
    try:
        return CaKey(seed)
    except CertError as exc:
        raise ConfigError(str(path), "(file)", exc.reason) from None


def read_ca_public_key(path: Path) -> bytes:
    """The raw 32 bytes of a ca.pub file."""
    return checks.ca_key(_read_text(path)[0], str(path), "(file)")


def _read_text(path: Path) -> tuple[str, int]:
    """The file's text and mode."""
    return read_small_text(path, MAX_FILE, "not one of ours", "not a text file")


def _write_new(
    path: Path, data: bytes, mode: int, replace: bool = False, exists: str = "never overwritten"
) -> None:
    """Write a temporary file with its final mode from the start, then link it to `path`
    (never replacing a file there) or, with `replace`, rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot create: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # whatever the umask was
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
        fsync_dir(path.parent)
    except FileExistsError:
        raise ConfigError(str(path), "(file)", f"already exists ({exists})") from None
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot write: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
