"""Shared lab fixtures: `make_lab` (one lab per test) and `module_lab` (labs shared by the tests
of a module). Both tear every lab down afterwards, also on failure or Ctrl-C.

    def test_x(make_lab):
        lab = make_lab("seed-basic")
        lab.host("charlie").run(["ping", "-c1", "198.51.100.2"])
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
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


@pytest.fixture
def make_lab() -> Iterator[LabFactory]:
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()


@pytest.fixture(scope="module")
def module_lab() -> Iterator[LabFactory]:
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()
