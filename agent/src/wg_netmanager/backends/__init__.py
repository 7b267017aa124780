"""WireGuard backends: one small file each, all behind `base.Backend`.

`select_backend` turns the configured kind into a backend object; `auto` prefers the kernel,
then wireguard-go, then boringtun.
"""

from __future__ import annotations

from pathlib import Path

from ..core.checks import BACKENDS
from .base import Backend, BackendError

KINDS = BACKENDS  # the names config accepts are the names handled here


def select_backend(kind: str, ifname: str, state_dir: Path) -> Backend:
    from . import kernel
    from .boringtun import BoringtunBackend
    from .existing import ExistingBackend
    from .wggo import WireGuardGoBackend

    if kind == "existing":
        return ExistingBackend(ifname, state_dir)
    if kind == "kernel":
        if not kernel.available():
            raise BackendError("backend kernel: this kernel has no WireGuard module (try wireguard-go)")
        return kernel.KernelBackend(ifname, state_dir)
    if kind == "wireguard-go":
        if WireGuardGoBackend.find_binary() is None:
            raise BackendError("backend wireguard-go: the wireguard-go program is not installed")
        return WireGuardGoBackend(ifname, state_dir)
    if kind == "boringtun":
        if BoringtunBackend.find_binary() is None:
            raise BackendError("backend boringtun: neither boringtun-cli nor boringtun is installed")
        return BoringtunBackend(ifname, state_dir)
    if kind == "auto":
        if kernel.available():
            return kernel.KernelBackend(ifname, state_dir)
        for cls in (WireGuardGoBackend, BoringtunBackend):
            if cls.find_binary() is not None:
                return cls(ifname, state_dir)
        raise BackendError(
            "no WireGuard implementation found: the kernel has no WireGuard module and neither "
            "wireguard-go nor boringtun is installed"
        )
    raise BackendError(f"unknown backend {kind!r} (one of: {', '.join(KINDS)})")


__all__ = ["KINDS", "Backend", "BackendError", "select_backend"]
