"""This node's certificate file: checked at start, and read again when it is replaced (a
renewal by the collection, or by hand with `cert sign`), so that a renewed certificate is
presented without a restart. A replacement that does not check out is logged and the one in
use stays (it may still be valid for a while)."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Optional

from ..certfiles import own_cert
from ..core import trust
from ..core.cert import Cert, format_serial
from ..core.checks import ConfigError
from ..core.config import NetConfig, NodeSettings

log = logging.getLogger(__name__)

CHECK_EVERY = 10.0  # seconds between two looks at the file
WARN_BEFORE = 7 * 86400  # seconds before expiry from which the log warns (once a day)


class CertWatch:
    def __init__(self, settings: NodeSettings, net: NetConfig) -> None:
        self.settings, self.net = settings, net
        self.cert: Optional[Cert] = None
        self.public_key: Optional[str] = None
        self._seen: Optional[tuple[int, int, int]] = None
        self._next_check = 0.0
        self._warned = 0.0

    def load(self, public_key: Optional[str]) -> bytes:
        """The certificate (compact) at start, or b"" for none; ConfigError if it is wrong."""
        self.public_key = public_key
        self._seen = self._stat()
        self.cert = own_cert(self.settings, self.net, public_key, time.time())
        return trust.compact(self.cert) if self.cert else b""

    def _stat(self) -> Optional[tuple[int, int, int]]:
        if self.settings.cert is None:
            return None
        try:
            st = os.stat(self.settings.cert)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def poll(self, now: float) -> Optional[bytes]:
        """A renewed certificate (compact) when the file was replaced with a good one."""
        if self.settings.cert is None or now < self._next_check:
            return None
        self._next_check = now + CHECK_EVERY
        self._warn_expiry()
        seen = self._stat()
        if seen is None or seen == self._seen:
            return None
        self._seen = seen
        try:
            cert = own_cert(self.settings, self.net, self.public_key, time.time())
        except ConfigError as exc:
            log.warning("%s (keeping the certificate in use)", exc)
            return None
        if cert is None or cert == self.cert:
            return None
        self.cert = cert
        serial, until = format_serial(cert.serial), _when(cert.not_after)
        log.info("certificate renewed: serial %s, valid until %s", serial, until)
        return trust.compact(cert)

    def _warn_expiry(self) -> None:
        wall = time.time()
        if self.cert is None or self.cert.not_after - wall > WARN_BEFORE or wall - self._warned < 86400:
            return
        self._warned = wall
        verb = "expired" if wall > self.cert.not_after else "expires"
        log.warning("this node's certificate %s %s: renew it (cert sign)", verb, _when(self.cert.not_after))

    def status(self) -> dict[str, Any]:
        if self.cert is None:
            return {}
        c = self.cert
        return {
            "cert": {"serial": format_serial(c.serial), "notBefore": c.not_before, "notAfter": c.not_after}
        }


def _when(unix: int) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
