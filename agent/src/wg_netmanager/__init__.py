"""wg_netmanager: a WireGuard mesh manager."""

__version__ = "0.1.0"
