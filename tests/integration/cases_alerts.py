"""
cases_alerts.py - alert mail (issue 12 item 3) with real components

SUMMARY
    Registered into run.py (register(run)). The alerts go to a second lab
    sink (sink.py, the real SMTP sink), given as the backup AlertSmtpServer
    after a primary port nothing listens on, so every alert shows the
    failover. Mail comes through the lab's Postfix; scanning is a c-icap of
    the case's own with clamd, so the case can stop and freeze it.

    alerts_mail: the start alert; an EICAR message gives an infection alert
    naming the virus and the queue id; c-icap stopped gives "scanner ... is
    down", restarted "is back up"; SIGTERM gives the stop alert. Each is
    asserted from the mail the alert sink stored (headers and body), and
    the counters Alerts.Sent/Alerts.Failed from SIGUSR1. Two more EICAR
    messages within AlertRateLimit (5s) come as one digest, not two mails.

    alerts_load: LoadThreshold 2 and LoadAlertInterval 3s, ScanThreads 1;
    c-icap is frozen (SIGSTOP to its process group) for 10 s while 12
    messages arrive over 6 sessions: the load alert fires once per
    interval (1 to 4 mails, at least 3 s apart), not once per message.

    alerts_failed: both servers closed: a warning naming both, Alerts.Failed.

    alerts_selftest: a c-icap that misses plain EICAR gives a self-test alert.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Optional

import cases_selftest
import mail

ALERT_HEADER = "X-Icap-Milter-Alert"
ADMIN = "av-admin@example.com"


def _alerts(sink, kind: str) -> list:
    """_alerts - the stored alert mails of one kind, oldest first."""
    return [m for m in sink.messages() if str(m.headers.get(ALERT_HEADER, "")).strip() == kind]


def _wait_alert(sink, kind: str, timeout: float, count: int = 1, pred=None) -> Optional[object]:
    """_wait_alert - the count-th alert of kind (matching pred), or None after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in _alerts(sink, kind) if pred is None or pred(m)]
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _body(m) -> str:
    """_body - the stored mail as text."""
    return m.raw().decode("ascii", "replace")


def _alert_settings(s, icap, alert_sink, closed_port: int) -> dict[str, object]:
    """_alert_settings - the milter keys shared by the cases."""
    settings = dict(s.tls_settings(icap))
    settings.update({
        "AlertRecipients": ADMIN,
        "AlertSender": "icap-milter@lab.example",
        "AlertSmtpServer": f"\"127.0.0.1:{closed_port}, 127.0.0.1:{alert_sink.port}\"",
        "AlertRateLimit": "2s",
        "ReportHostname": "mx.lab.example",
        "LogLevel": "info",
    })
    return settings


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("alerts_mail", "alert mail to a real SMTP sink, backup server after a dead primary: "
                             "start, infection (virus named), scanner down and back up, stop")
    def case_alerts_mail(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-alerts", s.clamd, tls=True)
        alert_sink = s.lab.start_sink("alert-sink")
        closed = s.lab.ports.get()
        settings = _alert_settings(s, icap, alert_sink, closed)
        settings.update({"HealthCheckInterval": "1s", "CircuitBreakerFailures": 1,
                         "CircuitBreakerProbeInterval": "1s", "AlertRateLimit": "5s"})
        try:
            with s.milter("alerts_mail", settings) as m:
                start = _wait_alert(alert_sink, "start", 20)
                if not ck.expect(start is not None, "no start alert reached the alert sink"):
                    return
                subject = str(start.headers.get("Subject", ""))
                ck.expect(subject.startswith("[icap-milter] mx.lab.example: icap-milter ")
                          and subject.endswith(" started"), f"start alert subject: {subject!r}")
                ck.expect(start.mail_from == "icap-milter@lab.example", f"envelope sender {start.mail_from}")
                ck.expect(start.rcpt_to == [ADMIN], f"envelope recipients {start.rcpt_to}")
                for name, want in (("From", "icap-milter@lab.example"), ("To", ADMIN),
                                   ("Auto-Submitted", "auto-generated")):
                    got = str(start.headers.get(name, "")).strip()
                    ck.expect(got == want, f"start alert {name}: {got!r}, expected {want!r}")
                for name in ("Date", "Message-ID"):
                    ck.expect(start.headers.get(name), f"start alert lacks {name}")
                # The primary refused: the log shows the failover to the sink.
                sent_line = next((l for l in m.log_text().splitlines()
                                  if "alert sent: kind=start" in l), "")
                ck.expect(f"server=127.0.0.1:{alert_sink.port}" in sent_line
                          and f"failed_over=\"127.0.0.1:{closed}: connect: Connection refused" in sent_line,
                          f"start alert log line does not show the failover: {sent_line!r}")

                out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR for an alert"))
                s.expect_rejected(ck, out, m, "EICAR")
                # Two more within AlertRateLimit (5s): held, then one digest.
                for i in range(2):
                    s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment(f"EICAR {i}")),
                                      m, f"EICAR {i}")
                inf = _wait_alert(alert_sink, "infection", 20)
                if ck.expect(inf is not None, "no infection alert"):
                    text = _body(inf)
                    isubject = str(inf.headers.get("Subject", ""))
                    ck.expect("Icapm.Test.EICAR" in isubject, f"infection subject lacks the virus: {isubject!r}")
                    qid = next((l.split()[-1] for l in text.splitlines() if l.startswith("Queue id:")), "")
                    ck.expect(qid and any("action=reject" in l and "Icapm.Test.EICAR" in l
                                          for l in m.summary_lines(qid)),
                              f"the alert's queue id {qid!r} is not the rejected message's")
                    ck.expect("Action:     reject" in text, "infection alert lacks 'Action: reject'")
                    ck.expect(mail.SENDER in text, "infection alert lacks the sender")
                    ck.expect("X5O!P%@AP" not in text, "infection alert carries the message content")

                digest = _wait_alert(alert_sink, "infection", 15, count=2)
                if ck.expect(digest is not None, "no infection digest after AlertRateLimit"):
                    dsubject = str(digest.headers.get("Subject", ""))
                    ck.expect("2 more infected messages since" in dsubject, f"digest subject: {dsubject!r}")
                    ck.expect(_body(digest).count("virus=\"Icapm.Test.EICAR") == 2,
                              "the digest does not list both held infections")
                    ck.note(f"digest: {dsubject}")
                icap.stop()
                # Mail to the stopped scanner hastens the breaker; the health
                # check (1s) would find it too.
                mail.send_one(s.postfix.smtp_port, mail.clean_multipart("while the scanner is down"))
                down = _wait_alert(alert_sink, "scanner-down", 30)
                if ck.expect(down is not None, "no scanner-down alert after c-icap stopped"):
                    dsub = str(down.headers.get("Subject", ""))
                    ck.expect(dsub.endswith(" is down") and icap.url(tls=True).split("/")[2] in dsub,
                              f"scanner-down subject: {dsub!r}")
                icap.start()
                up = _wait_alert(alert_sink, "scanner-up", 30)
                if ck.expect(up is not None, "no scanner-up alert after c-icap restarted"):
                    ck.expect(str(up.headers.get("Subject", "")).endswith(" is back up"),
                              f"scanner-up subject: {up.headers.get('Subject')!r}")
                line = m.stats()
                ck.expect(m.counter(line, "Alerts.Sent") >= 5, f"Alerts.Sent: {line}")
                ck.expect(m.counter(line, "Alerts.Failed") == 0, f"Alerts.Failed: {line}")
                ck.note(f"Alerts.Sent={m.counter(line, 'Alerts.Sent')} "
                        f"Alerts.Failed={m.counter(line, 'Alerts.Failed')} "
                        f"Alerts.Dropped={m.counter(line, 'Alerts.Dropped')}")
            # The with block sent SIGTERM: the stop alert came before exit.
            stop = _wait_alert(alert_sink, "stop", 5)
            if ck.expect(stop is not None, "no stop alert after SIGTERM"):
                ck.expect("SIGTERM" in str(stop.headers.get("Subject", "")),
                          f"stop subject: {stop.headers.get('Subject')!r}")
                ck.expect("Alerts.Sent:" in _body(stop), "stop alert lacks the counters")
            kinds = [str(x.headers.get(ALERT_HEADER, "")).strip() for x in alert_sink.messages()]
            ck.note(f"alerts stored: {kinds}")
            if inf is not None:
                ck.note(f"infection alert as stored: {inf.path}")
        finally:
            s.lab.forget(icap)

    @run.case("alerts_load", "c-icap frozen 10 s with LoadThreshold 2, LoadAlertInterval 3s while 12 "
                             "messages arrive: load alerts once per interval, not per message")
    def case_alerts_load(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-alerts-load", s.clamd, tls=True)
        alert_sink = s.lab.start_sink("alert-sink-load")
        settings = _alert_settings(s, icap, alert_sink, s.lab.ports.get())
        interval, freeze, count = 3.0, 10.0, 12
        settings.update({"ScanThreads": 1, "LoadThreshold": 2, "LoadAlertInterval": f"{interval:.0f}s",
                         "IcapTimeout": "25s", "MessageScanTimeout": "40s", "MaxQueueLength": 1000})
        try:
            with s.milter("alerts_load", settings) as m:
                first = mail.clean_multipart("before the freeze")
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, first), m, sent=first,
                                   label="clean before the freeze")
                ck.expect(not _alerts(alert_sink, "load"), "a load alert before any load")
                os.killpg(icap.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                try:
                    results: list = []
                    msgs = [mail.clean_multipart(f"during the freeze {i}") for i in range(count)]
                    sender = threading.Thread(
                        target=lambda: results.append(run._send_many(s.postfix.smtp_port, msgs, 6)))
                    sender.start()
                    time.sleep(max(0.0, freeze - (time.monotonic() - frozen_at)))
                finally:
                    os.killpg(icap.pid, signal.SIGCONT)
                thawed_at = time.monotonic()
                sender.join(120)
                outs = results[0][0] if results else []
                codes = sorted(o.code for o in outs)
                ck.note(f"replies: {codes}")
                ck.expect(len(outs) == count and all(c == 250 for c in codes),
                          f"expected {count} x 250 after the thaw, got {codes}")
                # Let any alert about to be sent arrive, then count.
                time.sleep(2)
                loads = _alerts(alert_sink, "load")
                times = []
                for a in loads:
                    times.append(json.loads(a.path.with_suffix(".json").read_text())["time"])
                gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
                ck.note(f"load alerts: {len(loads)} during a {freeze:.0f}s freeze "
                        f"(interval {interval:.0f}s), gaps {gaps}; "
                        f"{thawed_at - frozen_at:.1f}s frozen")
                most = int(freeze / interval) + 1
                ck.expect(1 <= len(loads) <= most,
                          f"{len(loads)} load alerts; expected 1..{most} for a {freeze:.0f}s freeze")
                ck.expect(len(loads) < count, "a load alert per message")
                ck.expect(all(g >= interval - 0.5 for g in gaps), f"load alerts closer than {interval}s: {gaps}")
                if loads:
                    text = _body(loads[0])
                    subj = str(loads[0].headers.get("Subject", ""))
                    ck.expect("load exceeded" in subj and "LoadThreshold 2" in subj, f"load subject: {subj!r}")
                    ck.expect("above LoadThreshold 2 for" in text, "load alert body lacks the rule")
        finally:
            s.lab.forget(icap)

    @run.case("alerts_failed", "both AlertSmtpServers unreachable: the alert is logged at warning "
                               "with each server's reason and counted in Alerts.Failed; mail still flows")
    def case_alerts_failed(s: run.Suite, ck: run.Check) -> None:
        a, b = s.lab.ports.get(), s.lab.ports.get()
        settings = dict(s.tls_settings())
        settings.update({"AlertRecipients": ADMIN, "AlertSmtpServer": f"\"127.0.0.1:{a} 127.0.0.1:{b}\"",
                         "LogLevel": "info"})
        with s.milter("alerts_failed", settings) as m:
            ck.expect(m.wait_log("alert not sent: kind=start"), "no 'alert not sent' warning for the start alert")
            line = next((l for l in m.log_text().splitlines() if "alert not sent" in l), "")
            ck.expect("warning:" in line and f"127.0.0.1:{a}: connect" in line and f"127.0.0.1:{b}: connect" in line,
                      f"the warning does not name both servers: {line!r}")
            msg = mail.clean_multipart("clean while alerts fail")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
            stats = m.stats()
            ck.expect(m.counter(stats, "Alerts.Failed") >= 1 and m.counter(stats, "Alerts.Sent") == 0,
                      f"counters: {stats}")
            ck.note(line.split("warning: ", 1)[-1][:200])

    @run.case("alerts_selftest", "c-icap that misses plain EICAR (ScanFileTypes GIF): a self-test "
                                 "alert names the scanner and says it gets no mail")
    def case_alerts_selftest(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-alerts-gif", s.clamd, tls=False,
                                 virus_scan_conf=cases_selftest.GIF_ONLY_VIRUS_SCAN)
        alert_sink = s.lab.start_sink("alert-sink-selftest")
        url = icap.url(tls=False)
        settings = {"IcapServer": url, "AlertRecipients": ADMIN,
                    "AlertSmtpServer": f"127.0.0.1:{alert_sink.port}", "LogLevel": "info"}
        try:
            with s.milter("alerts_selftest", settings):
                alert = _wait_alert(alert_sink, "self-test", 60)
                if ck.expect(alert is not None, "no self-test alert"):
                    subject = str(alert.headers.get("Subject", ""))
                    ck.expect(f"self-test of scanner {url} failing" in subject, f"subject: {subject!r}")
                    text = _body(alert)
                    ck.expect("gets no mail until it detects the EICAR test file" in text,
                              "the alert does not say the scanner gets no mail")
                    ck.note(subject)
        finally:
            s.lab.forget(icap)
