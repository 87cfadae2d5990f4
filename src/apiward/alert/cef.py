"""CEF over syslog: each alert as an ArcSight Common Event Format line in
an RFC 5424 syslog message, over UDP (one message per datagram) or TCP
(octet-counting framing, RFC 6587: ``<length> <message>``).

CEF escaping: in the header, ``\\`` and ``|`` are escaped with a
backslash; in extension values ``\\``, ``=`` and line breaks (``\\n``,
``\\r``); header fields never carry line breaks.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timezone
from typing import Any, ClassVar

import msgspec

from apiward import __version__
from apiward.alert.base import SYSLOG_SEVERITY, Alert, DeliveryError

__all__ = ["CefSink", "CefConfig", "cef_line", "syslog_message", "escape_header", "escape_ext"]

_CEF_SEV = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}


class CefConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "cef"
    host: str
    port: int = 514
    protocol: str = "udp"  # udp | tcp
    facility: int = 10  # security/authorization (authpriv)
    app_name: str = "apiward"
    hostname: str = ""
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.protocol not in ("udp", "tcp"):
            raise ValueError("protocol must be udp or tcp")
        if not 0 <= self.facility <= 23:
            raise ValueError("facility must be 0..23")
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1..65535")


def escape_header(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def escape_ext(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def cef_line(a: Alert) -> str:
    method, _, path = a.endpoint.partition(" ")
    ext: list[tuple[str, Any]] = [
        ("rt", int(a.last_seen * 1000)), ("start", int(a.first_seen * 1000)), ("end", int(a.last_seen * 1000)),
        ("externalId", f"{a.id}:{a.version}"), ("act", a.action), ("cat", ",".join(a.tactics)),
        ("msg", a.summary or a.title),
    ]
    if a.client_ip:
        ext.append(("src", a.client_ip))
    if a.actor:
        ext.append(("suser", a.actor[5:] if a.actor.startswith("user:") else a.actor))
    if path:
        ext += [("request", path), ("requestMethod", method)]
    ext += [
        ("cs1Label", "owasp"), ("cs1", ",".join(a.owasp)), ("cs2Label", "attack"), ("cs2", ",".join(a.attack)),
        ("cs3Label", "cwe"), ("cs3", ",".join(a.cwe)), ("cs4Label", "incident"), ("cs4", a.incident),
        ("cn1Label", "events"), ("cn1", a.events), ("cfp1Label", "confidence"), ("cfp1", round(a.confidence, 2)),
    ]
    head = "|".join(escape_header(x) for x in ("CEF:0", "apiward", "apiward", __version__, a.detector or a.kind, a.title, _CEF_SEV.get(a.severity, 5)))
    return head + "|" + " ".join(f"{k}={escape_ext(v)}" for k, v in ext if v not in ("", None))


def syslog_message(a: Alert, cfg: CefConfig, hostname: str) -> bytes:
    pri = cfg.facility * 8 + SYSLOG_SEVERITY.get(a.severity, 4)
    ts = datetime.fromtimestamp(a.last_seen or 0, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"<{pri}>1 {ts} {hostname or '-'} {cfg.app_name} {os.getpid()} alert - {cef_line(a)}".encode()


class CefSink:
    type: ClassVar[str] = "cef"

    def __init__(self, name: str, cfg: CefConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.hostname = cfg.hostname or socket.gethostname().split(".")[0] or "-"
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        fam = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        if self.cfg.protocol == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.connect((self.cfg.host, self.cfg.port))
            return s
        s = socket.create_connection((self.cfg.host, self.cfg.port), timeout=self.cfg.timeout)
        s.settimeout(self.cfg.timeout)
        return s

    def send(self, alerts: list[Alert]) -> None:
        msgs = [syslog_message(a, self.cfg, self.hostname) for a in alerts]
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = self._connect()
                if self.cfg.protocol == "udp":
                    for m in msgs:
                        self._sock.send(m)
                else:
                    self._sock.sendall(b"".join(str(len(m)).encode() + b" " + m for m in msgs))
            except OSError as exc:
                if self._sock is not None:
                    self._sock.close()
                self._sock = None
                raise DeliveryError(f"{self.name}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
