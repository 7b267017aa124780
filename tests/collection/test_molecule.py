"""`molecule test` on the seed-basic lab: create, converge, idempotence, verify, destroy.

Scenarios: `default` (shared-key mode, lab prefix `mol`) and `ca` (network CA mode: the
playbook makes the CA and every node's certificate; verify checks that every node runs in
mode "ca" with the certificate the controller issued, and pings every pair; prefix `mca`).
Needs root, podman and the lab image (scripts/setup builds it); a scenario's destroy step
(also run first, for leftovers) removes its lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from collection_paths import COLLECTION_ROOT, VENV_BIN, ansible_bin

pytestmark = [pytest.mark.collection, pytest.mark.lab]

LAB_IMAGE = os.environ.get("WGNM_LAB_IMAGE", "localhost/wgnm-lab-debian:bookworm")


def _lab_ready() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("podman") is None:
        return "needs podman"
    image = subprocess.run(["podman", "image", "exists", LAB_IMAGE], check=False)
    if image.returncode != 0:
        return f"lab image {LAB_IMAGE} missing (run lab/setup-image)"
    return None


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("scenario", ["default", "ca"])
def test_molecule_scenario(ansible_env: dict[str, str], scenario: str) -> None:
    reason = _lab_ready()
    if reason:
        pytest.skip(reason)
    # molecule reads the human-readable recap for its idempotence step, and the lab hosts
    # bring their own interpreter: keep only the collection path and scratch dirs.
    env = {
        k: v
        for k, v in ansible_env.items()
        if k not in {"ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_PYTHON_INTERPRETER", "ANSIBLE_LOAD_CALLBACK_PLUGINS"}
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [ansible_bin("molecule"), "test", "--scenario-name", scenario],
        cwd=COLLECTION_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-20000:]
    assert "idempotence" in output.lower(), output[-20000:]
