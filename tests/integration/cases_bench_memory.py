"""
cases_bench_memory.py - icap-milter's peak memory under many sessions
and with a very large attachment

SUMMARY
    Registered into run.py (register(run)) only when ICAPM_BENCH=1 is set,
    as peer_compare is (bench/run.sh sets it). By hand:

        ICAPM_BENCH=1 python3 tests/integration/run.py --milter B/icap-milter \\
            --only memory_sessions

    Case memory_sessions measures the milter's peak resident set (VmHWM)
    against issue 11's two memory goals, with the lab's default TLS
    scanner settings:
      - 50 SMTP sessions at once, each sending 1 MB attachments (a 1.4 MB
        message: just past SpoolMemoryLimit, so every session holds a full
        in-memory spool before it spills, the worst case for memory): the
        goal is under 64 MB;
      - one message with a 100 MB attachment (about 137 MB on the wire;
        Postfix's message_size_limit is raised for it and set back), to a
        milter that has already handled a small message: the goal is at
        most 16 MB more than before it. With the default MaxScanSize the
        part is larger than any scanner is trusted with, so its verdict
        is Unscanned (OnUnscannable), never Clean; the case reports the
        reply it got.
    Each part runs on a freshly started milter, so one does not inherit
    the other's peak. The case fails only when a message is not answered
    or the 50-session messages are not all accepted; the figures are
    reported, never asserted (timings and sizes belong to the bench).
"""

from __future__ import annotations

import os

import mail
from cases_bench_peers import _hwm_kb
from cases_token import _self_tested

SESSIONS = 50
PER_SESSION = 3
ATTACHMENT = 1024 * 1024
HUGE = 100 * 1024 * 1024


def register(run) -> None:
    """register - add memory_sessions to run.py's list (ICAPM_BENCH=1 only)."""
    if os.environ.get("ICAPM_BENCH") != "1":
        return

    @run.case("memory_sessions", f"peak RSS of the milter: {SESSIONS} SMTP sessions of 1 MB "
                                 "attachments at once, and one 100 MB attachment")
    def case_memory_sessions(s: run.Suite, ck: run.Check) -> None:
        pf = s.postfix
        settings = {**s.tls_settings(), "LogLevel": "info"}
        with s.milter("memory_sessions", settings) as m:
            _self_tested(m)
            start = _hwm_kb(m.pid)
            msgs = [mail.large_clean(ATTACHMENT, f"memory {i}")
                    for i in range(SESSIONS * PER_SESSION)]
            outs, secs = run._send_many(pf.smtp_port, msgs, SESSIONS)
            ok = {o.message_id for o in outs if o.code == 250}
            ck.expect(len(ok) == len(msgs), f"{len(ok)}/{len(msgs)} accepted at {SESSIONS} "
                      f"sessions: {[str(o) for o in outs if o.code != 250][:3]}")
            peak = _hwm_kb(m.pid)
            ck.note(f"{SESSIONS} sessions x {PER_SESSION} messages of "
                    f"{len(msgs[0].as_bytes()) / 1e6:.2f} MB in {secs:.1f}s: VmHWM "
                    f"{start / 1024:.1f} MB after start, {peak / 1024:.1f} MB after "
                    f"(goal: under 64 MB)")
            del msgs
        limit = pf.params.get("message_size_limit", "")
        pf.set(message_size_limit=str(HUGE * 2))
        pf.reload()
        try:
            with s.milter("memory_huge", settings) as m:
                _self_tested(m)
                warm = [mail.large_clean(100 * 1024, "memory warm-up")]
                run._send_many(pf.smtp_port, warm, 1)
                before = _hwm_kb(m.pid)
                huge = mail.large_clean(HUGE, "memory 100 MB attachment")
                size = len(huge.as_bytes())
                outs, secs = run._send_many(pf.smtp_port, [huge], 1)
                del huge
                after = _hwm_kb(m.pid)
                ck.expect(bool(outs) and outs[0].code in (250, 451, 550, 554),
                          f"100 MB attachment: no SMTP answer: {[str(o) for o in outs]}")
                ck.note(f"one {size / 1e6:.0f} MB message (100 MB attachment) in {secs:.1f}s, "
                        f"reply {outs[0] if outs else '-'}: VmHWM {before / 1024:.1f} MB before, "
                        f"{after / 1024:.1f} MB after, +{(after - before) / 1024:.1f} MB "
                        f"(goal: at most +16 MB)")
        finally:
            pf.set(message_size_limit=limit)
            pf.reload()
