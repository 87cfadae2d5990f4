"""The seam between the pipeline and the sinks.

After each checkpoint the pipeline calls :meth:`AlertDispatcher.on_checkpoint`
with the findings that changed; the dispatcher turns them into alerts (one
per incident, or per finding), queues them in the durable outbox for every
configured sink -- a few SQLite inserts, never a network call -- and wakes
its delivery thread, which sends what is due with retries and rate limits.
A sink that is slow or down never blocks the pipeline, and loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from apiward.alert.base import Alert, DeliveryError, alert_from_finding, alert_from_incident
from apiward.alert.outbox import Outbox
from apiward.alert.registry import build_sink, validate_alerts
from apiward.model.finding import SEVERITIES, Finding, severity_rank

__all__ = ["AlertDispatcher"]

log = logging.getLogger("apiward.alert")


class AlertDispatcher:
    def __init__(self, state_dir: Path | str, settings: Any, *, start: bool = True, poll: float = 1.0,
                 sinks: dict[str, Any] | None = None) -> None:
        self.state = Path(state_dir)
        self.cfg = validate_alerts(getattr(settings, "alerts", {}) or {})
        self.outbox = Outbox(self.state / "outbox.db", update_interval=self.cfg.update_interval, retry_base=self.cfg.retry_base,
                             retry_max=self.cfg.retry_max, max_attempts=self.cfg.max_attempts, rate_per_minute=self.cfg.rate_per_minute)
        self.sinks = sinks if sinks is not None else {
            name: build_sink(name, table, lookup=self.evidence) for name, table in (getattr(settings, "sinks", {}) or {}).items()
        }
        self.poll = poll
        self.counters: dict[str, dict[str, int]] = {n: {"delivered": 0, "failed": 0, "enqueued": 0} for n in self.sinks}
        self.last_error: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start and self.sinks:
            self._thread = threading.Thread(target=self._run, name="apiward-alerts", daemon=True)
            self._thread.start()

    # -- producer side (pipeline thread) ------------------------------------------
    def alerts_for(self, findings: dict[str, Finding], changed: set[str], incidents: list[dict[str, Any]]) -> list[Alert]:
        floor = SEVERITIES.index(self.cfg.min_severity)
        out: list[Alert] = []
        if self.cfg.unit == "incident":
            for inc in incidents:
                if severity_rank(inc["severity"]) < floor or not changed.intersection(inc["finding_ids"]):
                    continue
                out.append(alert_from_incident(inc, findings))
        for fid in sorted(changed):
            f = findings.get(fid)
            if f is None or severity_rank(f.severity) < floor:
                continue
            exposure = f.kind == "exposure" or not f.actor
            if self.cfg.unit == "finding" and (not exposure or self.cfg.include_exposures):
                out.append(alert_from_finding(f))
            elif self.cfg.unit == "incident" and exposure and self.cfg.include_exposures:
                out.append(alert_from_finding(f))
        return out

    def enqueue(self, alerts: list[Alert]) -> int:
        n = 0
        for name in self.sinks:
            k = self.outbox.enqueue(name, alerts)
            self.counters[name]["enqueued"] += k
            n += k
        if n:
            self._wake.set()
        return n

    def on_checkpoint(self, findings: dict[str, Finding], changed: set[str], incidents: list[dict[str, Any]]) -> int:
        if not self.sinks or not changed:
            return 0
        return self.enqueue(self.alerts_for(findings, changed, incidents))

    # -- delivery side ----------------------------------------------------------------
    def pump(self, now: float | None = None) -> int:
        """Send what is due to every sink; returns alerts delivered."""
        sent = 0
        for name, sink in self.sinks.items():
            while True:
                rows = self.outbox.due(name, limit=50, now=now)
                if not rows:
                    break
                try:
                    sink.send([r.alert for r in rows])
                except DeliveryError as exc:
                    self.outbox.failed(rows, str(exc), now=now)
                    self.counters[name]["failed"] += len(rows)
                    self.last_error[name] = str(exc)
                    break
                except Exception as exc:  # a sink bug: keep the alerts, report, go on
                    self.outbox.failed(rows, f"{type(exc).__name__}: {exc}", now=now)
                    self.counters[name]["failed"] += len(rows)
                    self.last_error[name] = f"{type(exc).__name__}: {exc}"
                    log.warning("sink %s failed", name, exc_info=exc)
                    break
                self.outbox.delivered(rows, now=now)
                self.counters[name]["delivered"] += len(rows)
                sent += len(rows)
        return sent

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump()
            except Exception as exc:  # never let the thread die
                log.warning("alert delivery failed", exc_info=exc)
            self._wake.wait(self.poll)
            self._wake.clear()

    def drain(self, timeout: float = 10.0) -> bool:
        """Try to deliver everything queued within ``timeout``; True when nothing is due."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if not any(self.outbox.due(n, limit=1) for n in self.sinks):
                return True
            time.sleep(0.1)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.pump()
        except Exception as exc:
            log.warning("final alert delivery failed", exc_info=exc)
        for s in self.sinks.values():
            try:
                s.close()
            except Exception:
                pass
        self.outbox.close()

    # -- evidence for sinks that carry it (OCSF API Activity) ------------------------
    def evidence(self, alert: Alert) -> list[dict[str, Any]]:
        if not alert.event_ids:
            return []
        try:
            from apiward.lake.query import connect

            con = connect(self.state / "lake", since=alert.first_seen - 1, until=alert.last_seen + 1)
            cur = con.execute(
                """SELECT id, epoch(ts) AS ts, method, host, path, template, status, actor, actor_user, client_ip, user_agent
                   FROM calls WHERE id IN (SELECT unnest($e)) ORDER BY ts""", {"e": alert.event_ids})
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
            con.close()
            return rows
        except Exception as exc:
            log.warning("evidence lookup failed", exc_info=exc)
            return []
