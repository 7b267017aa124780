"""Paths and tools shared by the collection tests (a module of its own: every test directory
has a `conftest`, and which one `import conftest` finds depends on collection order)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import pytest

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = COLLECTION_ROOT / ".venv" / "bin"
# The temporary `ansible_collections/wg_netmanager/mesh` tree (set by conftest for the session).
tree: Optional[Path] = None


def ansible_bin(name: str) -> str:
    """The venv's tool if there is one, else the one on PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (run scripts/setup)")
    return found
