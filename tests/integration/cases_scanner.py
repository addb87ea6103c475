"""
cases_scanner.py - the scan queue and the message deadline against a real,
frozen c-icap

SUMMARY
    Registered into run.py (register(run)). The scenario that crashed the
    milter (SIGSEGV): ScanThreads 1, MaxQueueLength 1, IcapTimeout 25s, its
    own c-icap frozen (SIGSTOP to its process group) for 40 s while four
    multipart messages arrive at once. Now the milter must stay up, every
    message must get a deliberate reply (the milter logs a summary line
    with action=tempfail for each, at MessageScanTimeout), the full queue
    must be a warning line and the QueueFull counter, and after the thaw
    (SIGCONT) clean mail must be delivered again.
"""

from __future__ import annotations

import os
import signal
import time

import mail


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("queue_full", "ScanThreads 1, MaxQueueLength 1, c-icap frozen 40 s while four "
                            "messages arrive: the milter stays up, every message gets 451 at "
                            "MessageScanTimeout, QueueFull counted; clean mail flows after the thaw")
    def case_queue_full(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-freeze", s.clamd, tls=True)
        settings = dict(s.tls_settings(icap))
        settings.update({"ScanThreads": 1, "MaxQueueLength": 1, "IcapTimeout": "25s",
                         "MessageScanTimeout": "30s", "CircuitBreakerProbeInterval": "1s",
                         "LogLevel": "info"})
        freeze_seconds = 40
        with s.milter("queue_full", settings) as m:
            first = mail.clean_multipart("before the freeze")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, first), m, sent=first,
                               label="clean before the freeze")
            os.killpg(icap.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                msgs = [mail.clean_multipart(f"during the freeze {i}") for i in range(4)]
                outs, secs = run._send_many(s.postfix.smtp_port, msgs, 4)
            finally:
                left = freeze_seconds - (time.monotonic() - frozen_at)
                if left > 0:
                    time.sleep(left)
                os.killpg(icap.pid, signal.SIGCONT)
            ck.expect(m.alive(), f"the milter died while the queue was full "
                                 f"(exit status {m.proc.returncode if m.proc else '?'})")
            if not m.alive():
                return
            codes = sorted(o.code for o in outs)
            ck.note(f"replies during the freeze: {codes} after {secs:.1f}s")
            ck.expect(len(outs) == 4, f"expected 4 replies, got {len(outs)}: {outs}")
            for out in outs:
                # 451 from the milter at MessageScanTimeout: a summary line with
                # action=tempfail proves it was the milter's decision, not
                # Postfix's milter_default_action after a crash or timeout.
                s.expect_tempfail(ck, out, m, f"message during the freeze ({out.message_id})")
            # Every message ends by MessageScanTimeout (30s), long before the
            # 40s freeze is over: the circuit breaker may end them a little
            # earlier ("no scanner is up"), never later.
            ck.expect(secs < 35, f"replies took {secs:.1f}s; MessageScanTimeout is 30s")
            log = m.log_text()
            ck.expect("scan queue full" in log, "no 'scan queue full' warning in the milter log")
            line = m.stats()
            ck.expect(m.counter(line, "QueueFull") >= 1, f"QueueFull not counted: {line}")
            ck.note(f"QueueFull={m.counter(line, 'QueueFull')} "
                    f"MessageScanTimeouts={m.counter(line, 'MessageScanTimeouts')} "
                    f"ScanRetries={m.counter(line, 'ScanRetries')}")

            # After the thaw the same milter delivers clean mail again.
            after = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msg = mail.clean_multipart("after the thaw")
                out = mail.send_one(s.postfix.smtp_port, msg)
                if out.code == 250:
                    after = (out, msg)
                    break
                time.sleep(1)
            if ck.expect(after is not None, "clean mail still refused 30s after the thaw"):
                s.expect_delivered(ck, after[0], m, sent=after[1], label="clean after the thaw")
