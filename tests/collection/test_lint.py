"""ansible-lint's production profile reports nothing on the roles and playbooks."""

from __future__ import annotations

import subprocess

import pytest
from collection_paths import COLLECTION_ROOT, ansible_bin

pytestmark = pytest.mark.collection


def test_ansible_lint_production_profile(ansible_env: dict[str, str]) -> None:
    env = {k: v for k, v in ansible_env.items() if k != "ANSIBLE_STDOUT_CALLBACK"}
    proc = subprocess.run(
        [
            ansible_bin("ansible-lint"),
            "--nocolor",
            "--profile",
            "production",
            "roles",
            "playbooks",
            "site.yml",
            "molecule",
        ],
        cwd=COLLECTION_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Passed: 0 failure(s), 0 warning(s)" in output, output
