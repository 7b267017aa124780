"""boringtun (Cloudflare's userspace WireGuard): same UAPI as wireguard-go, other command line.

Not packaged in Debian, so only the command line and environment are unit-tested here.
"""

from __future__ import annotations

from .wggo import CLEAN_PATH, WireGuardGoBackend


class BoringtunBackend(WireGuardGoBackend):
    name = "boringtun"
    binaries = ("boringtun-cli", "boringtun")

    def environment(self) -> dict[str, str]:
        # boringtun reads its options from these variables too, which works across versions
        # whose flag spellings differ. WG_SUDO=1 keeps root (it would otherwise drop to the
        # sudo caller and then fail to reconfigure the interface); its log goes to our file,
        # not the world-readable default /tmp/boringtun.out.
        return {
            "PATH": CLEAN_PATH,
            "WG_SUDO": "1",
            "WG_LOG_LEVEL": "error",
            "WG_LOG_FILE": str(self.log_path),
        }
