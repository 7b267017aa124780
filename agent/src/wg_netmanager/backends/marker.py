"""A small state file recording that this agent created an interface.

With it, an agent restarted after `kill -9` adopts the interface it left behind instead of
failing on "already exists", and never adopts or deletes an interface someone else made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class CreatedMarker:
    def __init__(self, state_dir: Path, ifname: str, backend: str) -> None:
        self.path = state_dir / f"{ifname}.created.json"
        self.ifname = ifname
        self.backend = backend

    def present(self) -> bool:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        return bool(data.get("ifname") == self.ifname and data.get("backend") == self.backend)

    def write(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"ifname": self.ifname, "backend": self.backend}, f)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
