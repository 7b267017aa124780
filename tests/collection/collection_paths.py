"""Paths and tools shared by the collection tests (a module of its own: every test directory
has a `conftest`, and which one `import conftest` finds depends on collection order)."""

from __future__ import annotations

import os
import shutil
import sys
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


def ansible_environment(tmp: Path) -> dict[str, str]:
    """Environment for ansible commands run by a test: our collection, JSON output, no user
    configuration (an empty ansible.cfg in `tmp`), scratch directories under `tmp`."""
    if tree is None:
        raise RuntimeError("collection tree not set up")
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(tree),
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return env
