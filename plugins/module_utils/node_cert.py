# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""When the controller (re)signs a node's certificate, and what the revocation list says.

Pure logic: no Ansible, no files, no subprocess, no clock (`now`, unix seconds, is an
argument). A certificate is seen as the document `wg_netmanager cert show --json --ca ca.pub`
prints (fields `serial`, `name`, `wgIp`, `publicKey`, `subnets`, `notAfter`, `status`,
`verified`); the revocation list is a list of entries, each with at least a `serial`.

Rules:
1. A node gets a new certificate when it has none, when its certificate does not verify
   against the CA now (expired, not yet valid, another CA, unreadable), when the certificate
   is revoked, when it says another name, address, key or set of subnets than the inventory,
   or when it expires within `renew_days`.
2. A certificate replaced because the node's identity changed (rule 1's name, address, key
   or subnets) is revoked: it still verifies, and whoever holds its key could use it. One
   replaced only because it expires soon, or that no longer verifies, is not.
3. A revoked serial stays listed until a day after the certificate expires (a node whose clock
   lags still refuses it), then it is dropped: an expired certificate is refused anyway.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

DAY = 86400
REVOKED_GRACE = DAY  # rule 3
SERIAL_DIGITS = 16  # `cert show` prints serials as 16 lower-case hex digits
REVOKED_FORMAT = 1


class CertPlanError(ValueError):
    """An input the controller cannot turn into a certificate; the message says which."""


def normalize_subnets(values: Optional[Sequence[Any]]) -> List[str]:
    """The subnets a node may route, as `cert sign --subnet` takes them (no host bits)."""
    subnets: List[str] = []
    for value in values or []:
        text = str(value).strip()
        try:
            net = ipaddress.IPv4Network(text, strict=True)
        except ValueError:
            raise CertPlanError(
                f"wg_cert_subnets: {text!r} is not an IPv4 network without host bits, such as 192.168.1.0/24"
            ) from None
        if "/" not in text:
            raise CertPlanError(f"wg_cert_subnets: {text!r} needs a prefix length, such as {text}/32")
        if str(net) in subnets:
            raise CertPlanError(f"wg_cert_subnets: {net} is listed twice")
        subnets.append(str(net))
    return subnets


def desired_cert(name: str, wg_ip: str, public_key: Optional[str], subnets: Sequence[str]) -> Dict[str, Any]:
    """What the inventory says the node's certificate must bind (public_key None: the node has
    no key yet; the real run makes one)."""
    try:
        address = str(ipaddress.IPv4Address(str(wg_ip).strip()))
    except ValueError:
        raise CertPlanError(f"wg_ip: {wg_ip!r} is not an IPv4 address") from None
    return {
        "name": name,
        "wgIp": address,
        "publicKey": public_key.strip() if public_key else None,
        "subnets": sorted(normalize_subnets(subnets)),
    }


def identity_changes(current: Dict[str, Any], desired: Dict[str, Any]) -> List[str]:
    """The fields of rule 2 in which the certificate differs from the inventory."""
    changes = []
    for field, label in (("name", "name"), ("wgIp", "address"), ("publicKey", "public key")):
        if current.get(field) != desired[field]:
            changes.append(f"{label} {current.get(field)} -> {desired[field] or '(made on the node)'}")
    if sorted(current.get("subnets") or []) != desired["subnets"]:
        before = ", ".join(sorted(current.get("subnets") or [])) or "none"
        changes.append(f"subnets {before} -> {', '.join(desired['subnets']) or 'none'}")
    return changes


def renewal_reasons(
    current: Optional[Dict[str, Any]],
    desired: Dict[str, Any],
    revoked: Sequence[str],
    now: int,
    renew_days: int,
) -> List[str]:
    """Why the node needs a new certificate (rule 1); empty: keep the one it has."""
    if current is None:
        return ["no certificate yet"]
    if not current.get("verified"):
        return [f"the certificate is not valid: {current.get('status') or 'unreadable'}"]
    reasons = identity_changes(current, desired)
    serial = current.get("serial")
    if _is_serial(serial) and _serial_text(serial) in {_serial_text(s) for s in revoked}:
        reasons.append(f"serial {current.get('serial')} is revoked")
    left = int(current.get("notAfter", 0)) - now
    if left <= renew_days * DAY:
        reasons.append(f"expires in {max(left, 0) // DAY} days (renewed within {renew_days})")
    return reasons


def supersedes(current: Optional[Dict[str, Any]], desired: Dict[str, Any]) -> bool:
    """Rule 2: the certificate being replaced must be revoked."""
    return bool(current and current.get("verified") and identity_changes(current, desired))


def revocation(cert: Dict[str, Any], host: str, reason: str, now: int) -> Dict[str, Any]:
    """A revocation list entry for the certificate `cert` (a `cert show --json` document)."""
    return {
        "serial": str(cert["serial"]).lower(),
        "host": host,
        "name": cert.get("name"),
        "wgIp": cert.get("wgIp"),
        "notAfter": int(cert["notAfter"]),
        "revokedAt": _utc(now),
        "reason": reason,
    }


def parse_revoked(text: str, source: str) -> List[Dict[str, Any]]:
    """The entries of a revocation list file (JSON, see dump_revoked); empty text: none."""
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CertPlanError(f"{source}: not a JSON document ({exc})") from None
    entries = doc.get("revoked") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise CertPlanError(f"{source}: expected an object with a list 'revoked'")
    for i, entry in enumerate(entries):
        serial = entry.get("serial") if isinstance(entry, dict) else None
        if not _is_serial(serial):
            raise CertPlanError(
                f"{source}: revoked[{i}]: needs a 'serial' of up to {SERIAL_DIGITS} hex digits, as"
                " `wg_netmanager cert show` prints it"
            )
        if entry.get("notAfter") is not None and not isinstance(entry["notAfter"], int):
            raise CertPlanError(f"{source}: revoked[{i}].notAfter: must be unix seconds or absent")
    return entries


def dump_revoked(entries: Sequence[Dict[str, Any]]) -> str:
    doc = {
        "format": REVOKED_FORMAT,
        "comment": "Certificates this network CA revoked (wg_netmanager.mesh). Every serial goes into"
        " net.yaml's network.revokedCerts until a day after its notAfter. Add an entry"
        ' {"serial": "..."} by hand to revoke a certificate for good.',
        "revoked": list(entries),
    }
    return json.dumps(doc, indent=2) + "\n"


def merge_revoked(
    entries: Sequence[Dict[str, Any]], new: Sequence[Dict[str, Any]], now: int
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Add `new` entries (a serial already listed is kept as it is) and drop the ones past
    rule 3's time. Returns (entries, added, dropped)."""
    known = {_serial_text(e["serial"]) for e in entries}
    added = []
    for entry in new:
        serial = _serial_text(entry["serial"])
        if serial not in known:
            known.add(serial)
            added.append(entry)
    kept, dropped = [], []
    for entry in list(entries) + added:
        expiry = entry.get("notAfter")
        (dropped if expiry is not None and expiry + REVOKED_GRACE < now else kept).append(entry)
    return kept, [e for e in added if e in kept], dropped


def serials_in_force(entries: Sequence[Dict[str, Any]]) -> List[str]:
    """net.yaml's network.revokedCerts: sorted, so that every node's file is the same."""
    return sorted({_serial_text(e["serial"]) for e in entries})


def describe(cert: Optional[Dict[str, Any]]) -> str:
    """A certificate's fields as diff lines (no signature: it means nothing to a reader)."""
    if cert is None:
        return ""
    if cert.get("name") is None:
        return f"status: {cert.get('status')}\n"
    lines = [
        f"name: {cert.get('name')}",
        f"wgIp: {cert.get('wgIp')}",
        f"publicKey: {cert.get('publicKey') or '(made on the node in the real run)'}",
        f"subnets: [{', '.join(cert.get('subnets') or [])}]",
        f"serial: {cert.get('serial', '(new)')}",
        f"notAfter: {_utc(cert['notAfter']) if cert.get('notAfter') else '(new)'}",
    ]
    if cert.get("status"):
        lines.append(f"status: {cert['status']}")
    return "\n".join(lines) + "\n"


def describe_revoked(entries: Sequence[Dict[str, Any]]) -> str:
    lines = []
    for e in sorted(entries, key=lambda e: _serial_text(e["serial"])):
        until = _utc(e["notAfter"]) if e.get("notAfter") is not None else "forever"
        who = f"{e.get('host') or '-'} {e.get('name') or '-'}"
        lines.append(f"{_serial_text(e['serial'])} {who} until {until}: {e.get('reason') or '-'}\n")
    return "".join(lines)


def _is_serial(value: Any) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= SERIAL_DIGITS:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


def _serial_text(value: str) -> str:
    return f"{int(value, 16):0{SERIAL_DIGITS}x}"


def _utc(unix: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
