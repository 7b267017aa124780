"""`wg_netmanager install`: a supervised agent without Ansible, as the original's `install` was.

It writes a hardened systemd unit that starts this very executable with the node's checked
options (the same hardening as the Ansible role's unit), then reloads systemd and enables and
starts the unit when systemd runs. The unit holds no secret: the shared key stays in net.yaml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .core.config import DEFAULT_INTERFACE

UNIT_DIR = Path("/etc/systemd/system")
SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(): systemd is PID 1

UNIT = """\
# Written by `{prog} install`; run it again to change the node's options.
[Unit]
Description=wg_netmanager WireGuard mesh agent ({interface})
Wants=network-online.target
After=network-online.target
{conditions}
[Service]
Type=simple
ExecStart={exec_start}
# SIGHUP: read net.yaml again (shared keys, network CA, revocations) without a restart.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2

# The agent needs to configure interfaces and routes, nothing else.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
# wireguard-go and boringtun put their control sockets in /run/wireguard; keep it across
# restarts, since other interfaces may use it too.
RuntimeDirectory=wg_netmanager wireguard
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
StateDirectory=wg_netmanager
StateDirectoryMode=0700
ReadWritePaths=/var/lib/wg_netmanager /run/wg_netmanager /var/run/wireguard

[Install]
WantedBy=multi-user.target
"""


def unit_name(interface: str) -> str:
    """wg_netmanager.service for wg0 (the name the Ansible role uses), one per interface else."""
    return "wg_netmanager.service" if interface == DEFAULT_INTERFACE else f"wg_netmanager-{interface}.service"


def own_command() -> list[str]:
    """The absolute command line that runs this agent (a venv's script, or python -m)."""
    argv0 = sys.argv[0]
    if argv0.endswith("__main__.py") or not argv0:
        return [sys.executable, "-m", "wg_netmanager"]
    found = shutil.which(argv0)
    return [str(Path(found or argv0).resolve())]


def quote(arg: str) -> str:
    """One ExecStart word: systemd splits on spaces, expands % specifiers and $ variables."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c.isspace() or c in "\"'\\;" for c in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(command: Sequence[str], interface: str, files: Sequence[Path], prog: str) -> str:
    conditions = "".join(f"ConditionPathExists={quote(str(f))}\n" for f in files)
    return UNIT.format(
        prog=prog,
        interface=interface,
        conditions=conditions,
        exec_start=" ".join(quote(a) for a in command),
    )


def write_unit(text: str, path: Path) -> bool:
    """Write the unit (0644: it holds no secret); False when it was already so."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


class InstallError(Exception):
    """systemctl failed; the message says which command."""


def activate(name: str, changed: bool) -> list[list[str]]:
    """Reload systemd, enable the unit and (re)start it; the commands run ([] without systemd)."""
    if not SYSTEMD_RUNNING.is_dir():
        return []
    commands = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", name],
        ["systemctl", "restart" if changed else "start", name],
    ]
    for cmd in commands:
        try:
            subprocess.run(cmd, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InstallError(f"{' '.join(cmd)} failed: {exc}") from None
    return commands
