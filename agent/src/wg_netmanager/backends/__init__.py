"""WireGuard backends: one small file each, all behind `base.Backend`."""
