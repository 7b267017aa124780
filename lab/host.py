"""One lab host: run commands in its network namespace with its own view of the project's files.

Light mode: every command runs as `ip netns exec NS unshare --mount --propagation private`,
then bind-mounts the host's directories over /etc/wg_netmanager, /var/lib/wg_netmanager and
/run (which holds /run/wg_netmanager and wireguard-go's /var/run/wireguard), and the host's
resolv.conf over /etc/resolv.conf while the lab runs a DNS server (lab/dns.py), then execs the
command, so the PID of a `popen` is the command's own. Container mode: `podman exec`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .control import Lab

# Mount points on the controller: bind mounts need an existing directory to mount over.
MOUNTS = {"etc": "/etc/wg_netmanager", "varlib": "/var/lib/wg_netmanager"}
_PREFIXES = {
    "/etc/wg_netmanager": "etc",
    "/var/lib/wg_netmanager": "varlib",
    "/run": "run",
    "/var/run": "run",
}
RESOLV_CONF = "resolv.conf"  # in the per-host directory: written by lab/dns.py
# $0 is the per-host directory, under /run: everything from it is mounted before /run is.
_ENTER = (
    'mount --bind "$0/etc" /etc/wg_netmanager'
    ' && mount --bind "$0/varlib" /var/lib/wg_netmanager'
    f' && {{ [ ! -e "$0/{RESOLV_CONF}" ] || mount --bind "$0/{RESOLV_CONF}" /etc/resolv.conf; }}'
    ' && mount --bind "$0/run" /run'
    ' && { [ -L /var/run ] || mount --bind "$0/run" /var/run; }'
    ' && exec "$@"'
)


class Host:
    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.netns = f"{lab.prefix}-{name}"
        self.dir = lab.state_dir / name  # per-host files on the controller (light mode)
        self.container = f"{lab.prefix}-{name}" if lab.containers else None

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address} ns={self.netns}>"

    @property
    def address(self) -> str:
        """The host's main underlay IPv4 address (eth0; a router's wan)."""
        return self.lab.addresses[self.name]

    def argv(self, cmd: list[str]) -> list[str]:
        """The full command line that runs `cmd` on this host."""
        if self.container:
            return ["podman", "exec", "-i", self.container, *cmd]
        return [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _ENTER,
            str(self.dir),
            *cmd,
        ]

    def _env(self, kwargs: dict[str, Any]) -> None:
        if self.container:
            env = dict(kwargs.get("env") or os.environ)
            env["CONTAINERS_CONF"] = str(self.lab.containers_conf)
            kwargs["env"] = env

    def run(
        self,
        cmd: list[str],
        *,
        check: bool = True,
        timeout: float | None = 30,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion, capturing text stdout/stderr unless told otherwise."""
        kwargs.setdefault("capture_output", "stdout" not in kwargs and "stderr" not in kwargs)
        self._env(kwargs)
        return subprocess.run(self.argv(cmd), check=check, timeout=timeout, text=True, **kwargs)

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        """Start in the background. In light mode the PID is the command's, so terminate()
        reaches it; in container mode it is `podman exec`'s (Lab.down kills everything anyway)."""
        self._env(kwargs)
        return subprocess.Popen(self.argv(cmd), text=True, **kwargs)

    def path(self, path: str) -> Path:
        """Where the host's file `path` is on the controller, e.g. to write its configuration.
        Only the per-host trees exist: /etc/wg_netmanager, /var/lib/wg_netmanager, /run (light)
        and /run/wg_netmanager (containers)."""
        p = PurePosixPath(path)
        for root, sub in _PREFIXES.items():
            if p == PurePosixPath(root) or PurePosixPath(root) in p.parents:
                rel = p.relative_to(root)
                if self.container and sub == "run" and not str(rel).startswith("wg_netmanager"):
                    break
                return self.dir / sub / rel
        raise ValueError(f"{self.name}: {path} is not in a per-host directory ({', '.join(_PREFIXES)})")
