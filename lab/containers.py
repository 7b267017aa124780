"""Container mode: one podman container per mesh host, joined to the host's network namespace,
with its own Debian file system (image from lab/setup-image), reachable by Ansible.

Podman here needs `--runtime runc` and CONTAINERS_CONF with `default_ulimits = []`
(/work/shared/LAB-FACTS.md); every call below goes through `podman()` which sets both.

PID 1 of the containers, chosen by WGNM_LAB_INIT (read once, at import), each with its image:
- `openrc` (default; Debian bookworm, WGNM_LAB_IMAGE): catatonit (`--init`) runs the image's
  entrypoint, which marks OpenRC as booted; the agent runs under supervise-daemon.
- `systemd` (Debian trixie, WGNM_LAB_SYSTEMD_IMAGE, built by `WGNM_LAB_RELEASE=trixie
  WGNM_LAB_INIT=systemd lab/setup-image`): systemd is PID 1 (`--systemd always`) and the agent
  runs as its hardened unit. The container gets CAP_SYS_ADMIN, which a real host's PID 1 has:
  without it systemd cannot unshare a mount namespace for the unit and, in a container, runs
  it without ProtectSystem=, ProtectHome= and PrivateTmp= ("Failed to set up namespace,
  assuming containerized execution and ignoring"), so the sandbox would go untested.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from .topology import Topology

IMAGES = {  # init -> image
    "openrc": os.environ.get("WGNM_LAB_IMAGE", "localhost/wgnm-lab-debian:bookworm"),
    "systemd": os.environ.get("WGNM_LAB_SYSTEMD_IMAGE", "localhost/wgnm-lab-debian:trixie-systemd"),
}
INIT = os.environ.get("WGNM_LAB_INIT", "openrc")
IMAGE = IMAGES.get(INIT, IMAGES["openrc"])  # the image this process starts containers from
# How podman starts PID 1.
_INIT_ARGS = {
    "openrc": ["--init"],
    "systemd": ["--systemd", "always", "--cap-add", "SYS_ADMIN"],
}
BOOT_TIMEOUT = 30.0  # seconds for systemd to finish booting a container
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"
LABEL = "wgnm.lab"


def podman(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    res = subprocess.run(
        ["podman", "--runtime", "runc", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and res.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:2])} failed: {res.stderr.strip()}")
    return res


def _check_init() -> None:
    if INIT not in IMAGES:
        raise RuntimeError(f"WGNM_LAB_INIT={INIT!r}: must be one of {', '.join(IMAGES)}")


def image_exists() -> bool:
    _check_init()
    return podman("image", "exists", IMAGE, check=False).returncode == 0


def start(prefix: str, host: str, host_dir: Path) -> None:
    """Start the container `<prefix>-<host>` in namespace `<prefix>-<host>`. The project's
    directories are bind mounts of the same per-host directories as in light mode, so
    Host.path() works in both modes; /run (and /var/run/wireguard) is the container's own.
    With systemd, return once it has booted, as a machine does once it answers ssh."""
    _check_init()
    name = f"{prefix}-{host}"
    podman(
        "run",
        "-d",
        *_INIT_ARGS[INIT],
        "--pull",
        "never",
        "--name",
        name,
        "--hostname",
        host,
        "--label",
        f"{LABEL}={prefix}",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "NET_RAW",
        "--device",
        "/dev/net/tun",
        "--network",
        f"ns:/run/netns/{name}",
        "-v",
        f"{host_dir / 'etc'}:/etc/wg_netmanager",
        "-v",
        f"{host_dir / 'varlib'}:/var/lib/wg_netmanager",
        "-v",
        f"{host_dir / 'run' / 'wg_netmanager'}:/run/wg_netmanager",
        IMAGE,
    )
    if INIT == "systemd":
        _wait_booted(name)


def _wait_booted(name: str) -> None:
    """Wait until systemd in container `name` has booted; fail unless it is `running`. Right
    after `podman run` systemctl may find no manager to ask yet ("offline"): ask again."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    state = "offline"
    while state == "offline" and time.monotonic() < deadline:
        try:
            wait = ["systemctl", "is-system-running", "--wait"]
            res = podman("exec", name, *wait, check=False, timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            break
        state = res.stdout.strip() or "offline"
        if state == "offline":
            time.sleep(0.1)
    if state == "running":
        return
    if state == "offline":
        raise RuntimeError(f"{name}: systemd did not finish booting in {BOOT_TIMEOUT:.0f} s")
    failed = podman("exec", name, "systemctl", "--failed", "--no-legend", "--plain", check=False).stdout
    raise RuntimeError(f"{name}: systemd is {state}; failed units: {failed.strip() or '-'}")


def remove(prefix: str) -> None:
    """Remove every container labelled with this lab's prefix (never anything else)."""
    res = podman("ps", "-a", "-q", "--filter", f"label={LABEL}={prefix}", check=False)
    ids = res.stdout.split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids, check=False)


def write_inventory(topo: Topology, prefix: str, lab_dir: Path) -> Path:
    """Write `<lab_dir>/inventory.yml` (group wg_mesh). The connection plugin's plain
    `podman exec`/`podman cp` work without our CONTAINERS_CONF or --runtime (checked): the
    runtime is recorded in the container and the ulimit problem only hits `podman run`.
    With systemd as PID 1 every host gets `wg_service_manager: auto`, which wins over the
    `openrc` of inventories/lab (host vars beat group_vars): the service manager fact decides."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, Any] = {}
    for name in topo.hosts:
        hosts[name] = {
            "ansible_connection": "containers.podman.podman",
            "ansible_host": f"{prefix}-{name}",
            "ansible_python_interpreter": "/usr/bin/python3",
            **({"wg_service_manager": "auto"} if INIT == "systemd" else {}),
            **topo.nodes[name].vars,
        }
    inventory = lab_dir / "inventory.yml"
    init = f", WGNM_LAB_INIT={INIT}" if INIT != "openrc" else ""
    header = f"# Generated by `lab up {topo.name}` (prefix {prefix}{init}); rewritten on every up.\n"
    inventory.write_text(
        header + yaml.safe_dump({"all": {"children": {"wg_mesh": {"hosts": hosts}}}}, sort_keys=False)
    )
    return inventory
