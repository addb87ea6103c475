"""
cases_daemon.py - daemon behaviour: SIGHUP reload and SIGUSR1 statistics

SUMMARY
    Registered into run.py (register(run)). A reload must swap in a good
    new configuration for new SMTP sessions, and a broken file must be
    refused with its errors logged while the old configuration keeps
    working. SIGUSR1 must log the counters.
"""

from __future__ import annotations

import os
import signal
import time

import mail


def wait_log(milter, text: str, timeout: float = 10.0) -> bool:
    """wait_log - True once the milter's log contains text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in milter.log_text():
            return True
        time.sleep(0.1)
    return False


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("reload", "SIGHUP swaps in a new config (OnInfected reject -> discard); a broken "
                        "file is refused, logged, and the running config keeps working")
    def case_reload(s: run.Suite, ck: run.Check) -> None:
        with s.milter("reload", s.tls_settings()) as m:
            s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()),
                              m, "EICAR before reload")
            m.settings["OnInfected"] = "discard"
            m.write_config()
            os.kill(m.pid, signal.SIGHUP)
            ck.expect(wait_log(m, "reload: configuration"), "no 'reload: configuration ... loaded' log line")
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR after reload"))
            ck.expect(out.code == 250, f"after reload to discard: expected 250, got {out}")
            s.expect_summary(ck, m, out.queue_id, "discard", "EICAR after reload")
            time.sleep(1)
            ck.expect(not s.sink.find(out.message_id), "discarded EICAR reached the sink")

            # A broken file: the old (discard) configuration must stay in force.
            m.settings["NoSuchKey"] = "1"
            m.settings["ScanThreads"] = "many"
            m.write_config()
            os.kill(m.pid, signal.SIGHUP)
            ck.expect(wait_log(m, "keeping the running configuration"),
                      "bad config on reload: no 'keeping the running configuration' line")
            ck.expect("unknown key 'NoSuchKey'" in m.log_text(), "reload errors not logged with the reason")
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR after bad reload"))
            ck.expect(out.code == 250, f"after a bad reload: expected the old discard (250), got {out}")
            s.expect_summary(ck, m, out.queue_id, "discard", "EICAR after bad reload")
            clean = mail.clean_multipart("clean after bad reload")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, clean), m, sent=clean,
                               label="clean after bad reload")
            # Restore a valid file so the stop is clean.
            del m.settings["NoSuchKey"]
            m.settings["ScanThreads"] = 4
            m.write_config()

    @run.case("stats_signal", "SIGUSR1 logs the counters (Examined, VirusFree, Infected, ...)")
    def case_stats_signal(s: run.Suite, ck: run.Check) -> None:
        with s.milter("stats", s.tls_settings()) as m:
            msg = mail.clean_multipart()
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
            s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()), m, "EICAR")
            os.kill(m.pid, signal.SIGUSR1)
            ck.expect(wait_log(m, "stats: "), "no stats line after SIGUSR1")
            line = next((l for l in m.log_text().splitlines() if "stats: " in l), "")
            for field in ("Examined: 2", "VirusFree: 1", "Infected: 1", "InScannerQueue: 0"):
                ck.expect(field in line, f"stats line lacks '{field}': {line}")
            ck.note(line.split("stats: ", 1)[-1][:200])
