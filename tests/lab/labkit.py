"""Lab test helpers shared by the lab tests (a module of its own: every test directory has a
`conftest`, and which one `import conftest` finds depends on collection order)."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `pytest` run directly, not as `python -m pytest` from the repo
    sys.path.insert(0, str(REPO))

from lab import Lab  # noqa: E402


def skip_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces, mounts, nftables)")
    for tool in ("ip", "nft", "unshare"):
        if not shutil.which(tool):
            pytest.skip(f"lab tests need {tool!r} (see scripts/apt-packages.txt)")


def new_prefix() -> str:
    """A fresh short prefix, so parallel runs and leftovers of old runs never collide."""
    return "wgt" + secrets.token_hex(3)


class LabFactory:
    def __init__(self) -> None:
        self.labs: list[Lab] = []

    def __call__(self, topology: Any, *, prefix: str | None = None, containers: bool = False) -> Lab:
        skip_unless_root()
        lab = Lab.up(topology, prefix=prefix or new_prefix(), containers=containers)
        self.labs.append(lab)
        return lab

    def down_all(self) -> None:
        while self.labs:
            self.labs.pop().down()
