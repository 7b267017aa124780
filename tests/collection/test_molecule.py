"""`molecule test` on the seed-basic lab: create, converge, idempotence, verify, destroy.

Scenarios: `default` (shared-key mode, lab prefix `mol`) and `ca` (network CA mode: the
playbook makes the CA and every node's certificate; verify checks that every node runs in
mode "ca" with the certificate the controller issued, and pings every pair; prefix `mca`), and
`systemd` (systemd as PID 1 on Debian trixie: verify checks that the hardened unit runs
sandboxed and pings every pair, side_effect kills every agent with SIGKILL and waits for
systemd to restart it, verify runs again; prefix `msd`).
Needs root, podman and the lab images (scripts/setup builds them); a scenario's destroy step
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
SYSTEMD_IMAGE = os.environ.get("WGNM_LAB_SYSTEMD_IMAGE", "localhost/wgnm-lab-debian:trixie-systemd")
SCENARIO_IMAGES = {"default": LAB_IMAGE, "ca": LAB_IMAGE, "systemd": SYSTEMD_IMAGE}


def _lab_ready(image: str) -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("podman") is None:
        return "needs podman"
    found = subprocess.run(["podman", "image", "exists", image], check=False)
    if found.returncode != 0:
        return f"lab image {image} missing (run scripts/setup)"
    return None


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("scenario", list(SCENARIO_IMAGES))
def test_molecule_scenario(ansible_env: dict[str, str], scenario: str) -> None:
    reason = _lab_ready(SCENARIO_IMAGES[scenario])
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
