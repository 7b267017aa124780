"""The roles' argument specs document the defaults the roles use, and their READMEs are current.

`ansible-doc -t role` shows meta/argument_specs.yml, but the role runs with defaults/main.yml:
the two must say the same. roles/*/README.md is generated from the specs (scripts/role_docs.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from collection_paths import COLLECTION_ROOT, ansible_bin

pytestmark = pytest.mark.collection

ROLES = sorted(p.parent.parent.name for p in (COLLECTION_ROOT / "roles").glob("*/meta/argument_specs.yml"))


def load(role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    base = COLLECTION_ROOT / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return defaults, specs["main"]["options"]


def test_every_role_has_argument_specs() -> None:
    assert sorted(p.name for p in (COLLECTION_ROOT / "roles").iterdir() if p.is_dir()) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_are_the_roles_defaults(role: str) -> None:
    defaults, options = load(role)
    problems = []
    for var, value in defaults.items():
        spec = options.get(var)
        if spec is None:
            problems.append(f"{var}: in defaults/main.yml, not in argument_specs.yml")
        elif spec.get("required"):
            # A required variable's entry in defaults/main.yml is only a placeholder to document it.
            if value not in ("", None, [], {}):
                problems.append(f"{var}: required, but defaults/main.yml gives it {value!r}")
            if "default" in spec:
                problems.append(f"{var}: required and with a default in argument_specs.yml")
        elif "default" not in spec:
            problems.append(f"{var}: argument_specs.yml gives no default (defaults/main.yml: {value!r})")
        elif spec["default"] != value:
            problems.append(
                f"{var}: argument_specs.yml says {spec['default']!r}, defaults/main.yml {value!r}"
            )
    for var, spec in options.items():
        if var not in defaults and not spec.get("required"):
            problems.append(f"{var}: in argument_specs.yml, not in defaults/main.yml")
    assert problems == []


def test_ansible_doc_shows_the_roles_defaults(ansible_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [ansible_bin("ansible-doc"), "-t", "role", "--json", "wg_netmanager.mesh.agent"],
        env=ansible_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    options = json.loads(proc.stdout)["wg_netmanager.mesh.agent"]["entry_points"]["main"]["options"]
    defaults, _ = load("agent")
    for var in ("wg_agent_venv", "wg_admin_port", "wg_agent_controller_cache_dir", "wg_port"):
        assert options[var]["default"] == defaults[var]


def test_role_readmes_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(COLLECTION_ROOT / "scripts" / "role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_role_readmes_render_the_specs() -> None:
    readme = (COLLECTION_ROOT / "roles" / "agent" / "README.md").read_text()
    assert "#### `wg_agent_controller_cache_dir` (path)" in readme
    assert "#### `wg_ip` (str, required)" in readme
    assert "- Default: `{{ wg_agent_home }}/venv`" in readme
    assert Path(COLLECTION_ROOT / "roles" / "wireguard" / "README.md").read_text().count("#### `wg_") == 3
