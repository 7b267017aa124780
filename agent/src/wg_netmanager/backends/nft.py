"""`nft`, the one program the data plane runs besides WireGuard's own: a script applied as
one transaction (`nft -f -`), or a listing read as JSON (`nft -j`). Each table the agent
writes is its own (named after the interface) and is replaced or removed whole."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from .base import BackendError

NFT_TIMEOUT = 10.0


def _nft(args: list[str], script: str, why: str) -> str:
    nft = shutil.which("nft")
    if nft is None:
        raise BackendError(f"{why} needs nftables (`nft` not found)")
    try:
        res = subprocess.run([nft, *args], input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"nft: {exc}") from None
    if res.returncode != 0:
        raise BackendError(f"nft: {res.stderr.strip() or f'exit {res.returncode}'}")
    return res.stdout


def run_script(script: str, why: str) -> None:
    """Apply `script` as one transaction; `why` names the feature in the error if nft is missing."""
    _nft(["-f", "-"], script, why)


def list_json(what: str, why: str) -> Any:
    """`nft -j list WHAT` (e.g. "set ip TABLE NAME"), parsed."""
    try:
        return json.loads(_nft(["-j", "list", *what.split()], "", why))
    except ValueError as exc:
        raise BackendError(f"nft -j list {what}: {exc}") from None


def replace_table(table: str, body: str) -> str:
    """A script that replaces `table` (family ip) with `body` ("" removes it). Adding it first
    makes the delete succeed whether or not it was there: one transaction, so there is no
    moment without the rules or with them twice."""
    text = f"table ip {table} {{}}\ndelete table ip {table}\n"
    return text + (f"table ip {table} {{\n{body}}}\n" if body else "")
