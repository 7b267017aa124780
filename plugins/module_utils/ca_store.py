# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""The network CA's directory on the controller, as the wg_netmanager.mesh modules keep it::

    DIR/ca.key                   the CA's private key (`wg_netmanager ca init`, mode 0600);
                                 read only to sign, by the agent's command line alone
    DIR/ca.pub                   its public key: net.yaml's network.caPublicKey
    DIR/issued/HOST.crt          the certificate each inventory host was last given
    DIR/revoked/HOST-SERIAL.crt  certificates of hosts taken out of the mesh, for the record
    DIR/revoked.json             the revocation list (node_cert.dump_revoked)
    DIR/.lock                    serialises changes to revoked.json (hosts run in parallel)

The agent's command line (`cert sign`, `cert show --json`) signs and reads certificates: it
is the one place that knows their format. The CA key never passes through Ansible: no module
argument, result or log line holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_cert import (
    CertPlanError,
    dump_revoked,
    merge_revoked,
    parse_revoked,
)

# argv -> (exit status, stdout, stderr); the module passes AnsibleModule.run_command.
Runner = Callable[[List[str]], Tuple[int, str, str]]

CA_KEY = "ca.key"
CA_PUB = "ca.pub"
ISSUED = "issued"
RETIRED = "revoked"
REVOKED_LIST = "revoked.json"
LOCK = ".lock"
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:-]*$")  # a file name: no '/', no leading '.'


class CaStoreError(Exception):
    """The CA directory cannot be used as asked; the message names the file."""


class CaStore:
    def __init__(self, directory: str, command: Sequence[str], run: Runner) -> None:
        self.dir = os.path.abspath(os.path.expanduser(directory))
        self.command = list(command)
        self._run = run

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def issued(self, host: str) -> str:
        if not _HOST.match(host):
            raise CaStoreError(f"inventory host {host!r} cannot name a certificate file")
        return self.path(ISSUED, host + ".crt")

    def check_ready(self) -> None:
        if not os.path.isfile(self.path(CA_PUB)):
            raise CaStoreError(
                f"{self.path(CA_PUB)}: no network CA there (make one with `wg_netmanager ca init {self.dir}`;"
                " the agent role does when wg_ca_enabled is true)"
            )

    def check_can_sign(self) -> None:
        """The CA key is there and is the agent's format (it reads the file itself)."""
        key = self.path(CA_KEY)
        try:
            with open(key, "rb") as handle:
                head = handle.read(16)
        except OSError as exc:
            raise CaStoreError(
                f"{key}: cannot read the CA key ({exc.strerror}); it is needed only to sign: put it"
                " back for this run"
            ) from None
        if head.startswith(b"$ANSIBLE_VAULT"):
            raise CaStoreError(
                f"{key}: is ansible-vault encrypted, and the agent reads the key itself; decrypt it for"
                " the runs that sign, or keep it plain in a directory only you can read"
            )

    # --- certificates ---------------------------------------------------------------------

    def show(self, path: str, verify: bool = True) -> Optional[Dict[str, Any]]:
        """`cert show --json` of `path` (checked against ca.pub with `verify`); None if there
        is no such file. An unreadable file is a document that does not verify."""
        if not os.path.lexists(path):
            return None
        argv = [*self.command, "cert", "show", "--json", path]
        if verify:
            argv += ["--ca", self.path(CA_PUB)]
        rc, out, err = self._run(argv)
        if rc in (0, 1):  # 1: printed, but not valid now
            try:
                return json.loads(out)
            except ValueError:
                pass
        problem = _one_line(err) or f"`cert show` exited with status {rc}"
        return {"verified": False, "status": f"unreadable ({problem})"}

    def issue(
        self,
        host: str,
        desired: Dict[str, Any],
        days: int,
        before_replace: Callable[[], None] = lambda: None,
    ) -> Tuple[str, Dict[str, Any]]:
        """Sign a certificate for `desired` and put it in issued/HOST.crt; `before_replace`
        runs once the new one is signed and checked, before the old one is replaced (so a
        revocation is recorded before anything can be lost). Returns (PEM text, fields)."""
        self.check_can_sign()
        os.makedirs(self.path(ISSUED), mode=0o700, exist_ok=True)
        final = self.issued(host)
        tmp = self.path(ISSUED, f".{host}.{secrets.token_hex(6)}.new")
        argv = [
            *self.command,
            "cert",
            "sign",
            "--ca-key",
            self.path(CA_KEY),
            "--name",
            desired["name"],
            "--wg-ip",
            desired["wgIp"],
            "--public-key",
            desired["publicKey"],
            "--days",
            str(days),
            "-o",
            tmp,
        ]
        for subnet in desired["subnets"]:
            argv += ["--subnet", subnet]
        try:
            rc, _out, err = self._run(argv)
            if rc != 0:
                raise CaStoreError(
                    f"cannot sign a certificate for {host}: {_one_line(err) or f'status {rc}'}"
                )
            fields = self.show(tmp)
            if not fields or not fields.get("verified"):
                status = (fields or {}).get("status")
                raise CaStoreError(f"the certificate just signed for {host} does not verify: {status}")
            with open(tmp, encoding="ascii") as handle:
                text = handle.read()
            before_replace()
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return text, fields

    def read_text(self, path: str) -> str:
        with open(path, encoding="ascii") as handle:
            return handle.read()

    def issued_hosts(self) -> List[str]:
        try:
            names = os.listdir(self.path(ISSUED))
        except FileNotFoundError:
            return []
        return sorted(n[: -len(".crt")] for n in names if n.endswith(".crt") and not n.startswith("."))

    def retire(self, host: str, serial: str) -> None:
        """Move a removed host's certificate out of issued/ (it is revoked)."""
        os.makedirs(self.path(RETIRED), mode=0o700, exist_ok=True)
        os.replace(self.issued(host), self.path(RETIRED, f"{host}-{serial}.crt"))

    # --- the revocation list --------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read_revoked(self) -> List[Dict[str, Any]]:
        path = self.path(REVOKED_LIST)
        try:
            text = self.read_text(path)
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise CaStoreError(f"{path}: cannot read it ({exc})") from None
        try:
            return parse_revoked(text, path)
        except CertPlanError as exc:
            raise CaStoreError(str(exc)) from None

    def update_revoked(
        self, new: Sequence[Dict[str, Any]], now: int, write: bool = True
    ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]]]:
        """Add `new` entries and drop expired ones (node_cert.merge_revoked), under the lock.
        Returns (entries before, entries after, added, dropped); writes only with `write`
        and when something changed."""
        with self.locked() if write else contextlib.nullcontext():
            before = self.read_revoked()
            after, added, dropped = merge_revoked(before, new, now)
            if write and (added or dropped):
                _write_atomic(self.path(REVOKED_LIST), dump_revoked(after), 0o644)
        return before, after, added, dropped


def _write_atomic(path: str, text: str, mode: int) -> None:
    tmp = f"{path}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())
