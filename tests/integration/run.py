#!/usr/bin/env python3
"""
run.py - icap-milter integration suite against real components

SUMMARY
    Starts, on loopback and on ports picked at run time, a lab (lab.py):
    clamd with signatures made on the spot, c-icap over plain ICAP and
    ICAP over TLS, a private Postfix whose smtpd and non-smtpd milter is
    icap-milter, and an SMTP sink behind Postfix. Then runs each case with
    its own icap-milter process and config, sending mail with smtplib and
    checking the SMTP replies, what reached the sink, the Postfix log and
    the milter's log. Prints PASS/FAIL per case and a final line
    "N passed, M failed"; exits non-zero on any failure.

USAGE
    python3 tests/integration/run.py --milter BUILD/icap-milter
        [--only NAME[,NAME...]] [--keep] [--list] [--workdir DIR]
        [--cicap-conf 'KEY VALUE' ...]

    Needs root (Postfix, clamd and c-icap are started privately), and the
    Debian packages that scripts/install-deps.sh installs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mail  # noqa: E402
from lab import (VIRUS_NAME_RE, CIcap, Lab, LabError, Milter,  # noqa: E402
                 Postfix, tail)
from sink import SmtpSink, StoredMessage  # noqa: E402

# Peak resident memory allowed for the milter while it handles a 30 MB
# attachment (a 43 MB message). The milter spools to disk, so its peak must
# not grow with the message: measured 15 MB (12.5 MB idle) on Debian 12. A
# milter holding the decoded part in memory would need 12.5 + 30 MB and fail.
MAX_HWM_30MB_KB = 40 * 1024

# SIGTERM must stop the milter within this time. Up to 5 s is observed
# (libmilter's accept loop notices the stop only at its poll timeout).
MAX_STOP_SECONDS = 10.0

# A Nagle / delayed-ACK stall on an inet: milter socket costs about 40 ms
# per message; a stall-free socket is within a few ms of a unix socket.
MAX_INET_EXTRA_MS = 15.0

SCANNED_RE = re.compile(r"^icap-milter\b.* on \S+")


# ---------------------------------------------------------------- results

@dataclass
class Check:
    """Check - the findings of one case: failed expectations and notes."""
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def expect(self, condition: object, what: str) -> bool:
        """expect - record what as a failure when condition is false."""
        if not condition:
            self.failures.append(what)
        return bool(condition)

    def note(self, text: str) -> None:
        """note - a figure or fact worth printing, pass or fail."""
        self.notes.append(text)


@dataclass
class Case:
    """Case - one named test: a function of the suite and a Check."""
    name: str
    summary: str
    func: Callable[["Suite", Check], None]
    needs_milter: bool = True


CASES: list[Case] = []


def case(name: str, summary: str, needs_milter: bool = True):
    """case - decorator registering a test case, in file order."""
    def register(func: Callable[["Suite", Check], None]):
        CASES.append(Case(name, summary, func, needs_milter))
        return func
    return register


# ---------------------------------------------------------------- the suite

class Suite:
    """Suite - the shared lab (clamd, c-icap, Postfix, sink) and the helpers
    cases use to run a milter, send mail and check what happened."""

    def __init__(self, lab: Lab, milter_binary: Optional[Path],
                 cicap_conf: tuple[str, ...] = ()) -> None:
        self.lab = lab
        self.binary = milter_binary
        self.socket_spec = f"unix:{lab.dir / 'milter.sock'}"
        self.clamd = lab.start_clamd()
        self.icap: CIcap = lab.start_cicap("cicap-main", self.clamd, tls=True,
                                           extra_conf=cicap_conf)
        self.sink: SmtpSink = lab.start_sink()
        self.postfix: Postfix = lab.start_postfix("postfix-a", self.sink.port, self.socket_spec)
        self._rogue: Optional[CIcap] = None
        self.findings: list[str] = []   # problems found outside a case's own checks

    @property
    def ca_file(self) -> str:
        """ca_file - the CA that signed the main c-icap's certificate."""
        return str(self.lab.pki.ca("test-ca"))

    @property
    def rogue(self) -> CIcap:
        """rogue - a c-icap whose certificate (for localhost) comes from a
        second CA the milter does not trust. Started on first use."""
        if self._rogue is None:
            self._rogue = self.lab.start_cicap("cicap-rogue", self.clamd, tls=True,
                                               ca_name="rogue-ca")
        return self._rogue

    def tls_settings(self, icap: Optional[CIcap] = None) -> dict[str, object]:
        """tls_settings - milter keys for scanning over ICAP-over-TLS."""
        return {"IcapServer": (icap or self.icap).url(tls=True), "TlsCAFile": self.ca_file}

    @contextlib.contextmanager
    def milter(self, tag: str, settings: dict[str, object],
               socket_spec: Optional[str] = None) -> Iterator[Milter]:
        """milter - run an icap-milter with settings for the block, on the
        socket Postfix uses; stop it (by PID) afterwards."""
        if self.binary is None:
            raise LabError("no icap-milter binary given (--milter PATH)")
        m = self.lab.milter(f"milter-{tag}", self.binary, settings,
                            socket_spec or self.socket_spec)
        self.lab.start_milter(m)
        try:
            yield m
        finally:
            self.lab.forget(m)
            self.check_stopped(m)

    def check_stopped(self, m: Milter) -> None:
        """check_stopped - SIGTERM must stop the milter cleanly (status 0)
        within MAX_STOP_SECONDS; anything else is a finding of the case."""
        status = m.proc.returncode if m.proc else None
        if m.killed:
            self.findings.append(f"{m.name} ignored SIGTERM for {m.stop_timeout:.0f}s "
                                 "and was killed")
        elif status != 0:
            self.findings.append(f"{m.name} exited with status {status} on SIGTERM")
        elif (m.stop_seconds or 0) > MAX_STOP_SECONDS:
            self.findings.append(f"{m.name} took {m.stop_seconds:.1f}s to stop on SIGTERM "
                                 f"(limit {MAX_STOP_SECONDS:.0f}s)")

    # -- expectations shared by cases

    def expect_delivered(self, ck: Check, outcome: mail.Outcome, milter: Milter,
                         sent: Optional[EmailMessage] = None,
                         label: str = "clean mail", timeout: float = 30.0
                         ) -> Optional[StoredMessage]:
        """expect_delivered - 250 at end of DATA, the message reaches the sink
        with exactly one X-Virus-Scanned (icap-milter ... on host) and one
        X-Virus-Status: Clean, and the milter logs action=accept for it."""
        if not ck.expect(outcome.code == 250, f"{label}: expected 250, got {outcome}"):
            return None
        got = self.sink.wait_for(outcome.message_id, timeout)
        if not ck.expect(got is not None, f"{label}: not delivered to the sink within "
                                          f"{timeout:.0f}s (queue id {outcome.queue_id})"):
            return None
        status = got.header_values("X-Virus-Status")
        scanned = got.header_values("X-Virus-Scanned")
        ck.expect(status == ["Clean"], f"{label}: X-Virus-Status headers {status}, "
                                       "expected exactly ['Clean']")
        ck.expect(len(scanned) == 1 and SCANNED_RE.match(scanned[0]),
                  f"{label}: X-Virus-Scanned headers {scanned}, expected one "
                  "'icap-milter ... on <host>'")
        self.expect_summary(ck, milter, outcome.queue_id, "accept", label)
        if sent is not None:
            self.expect_same_body(ck, sent, got, label)
        return got

    def expect_rejected(self, ck: Check, outcome: mail.Outcome, milter: Milter,
                        label: str, postfix: Optional[Postfix] = None) -> None:
        """expect_rejected - 550 5.7.1 naming the test virus, Postfix logs a
        milter-reject, the milter logs action=reject, nothing delivered."""
        ck.expect(outcome.code == 550, f"{label}: expected 550, got {outcome}")
        ck.expect("5.7.1" in outcome.text, f"{label}: no 5.7.1 in reply: {outcome}")
        ck.expect(VIRUS_NAME_RE.search(outcome.text),
                  f"{label}: virus name ({VIRUS_NAME_RE.pattern}) not in reply: {outcome}")
        self.expect_not_delivered(ck, outcome, milter, "reject", label, postfix)

    def expect_tempfail(self, ck: Check, outcome: mail.Outcome, milter: Milter,
                        label: str) -> None:
        """expect_tempfail - 451 4.7.1 (a 4xx), the milter logs
        action=tempfail, nothing delivered."""
        ck.expect(400 <= outcome.code < 500, f"{label}: expected 4xx, got {outcome}")
        ck.expect("4.7.1" in outcome.text, f"{label}: no 4.7.1 in reply: {outcome}")
        self.expect_not_delivered(ck, outcome, milter, "tempfail", label)

    def expect_not_delivered(self, ck: Check, outcome: mail.Outcome, milter: Milter,
                             action: str, label: str,
                             postfix: Optional[Postfix] = None) -> None:
        """expect_not_delivered - Postfix logged a milter reply for the
        message at end of data (so it was never queued), the sink does not
        have it, and the milter logged the action."""
        postfix = postfix or self.postfix
        qid = postfix.queue_id_for(outcome.message_id)
        if ck.expect(qid, f"{label}: Postfix logged no queue id for {outcome.message_id}"):
            reject = postfix.wait_log_line(qid, "milter-reject")
            lines = postfix.log_lines(qid)
            ck.expect(reject, f"{label}: no milter-reject in the Postfix log for {qid}: {lines}")
            ck.expect(not any("status=sent" in l for l in lines),
                      f"{label}: Postfix delivered {qid} anyway")
            self.expect_summary(ck, milter, qid, action, label)
        ck.expect(not self.sink.find(outcome.message_id),
                  f"{label}: the message reached the sink")

    def expect_summary(self, ck: Check, milter: Milter, queue_id: Optional[str],
                       action: str, label: str, timeout: float = 5.0) -> None:
        """expect_summary - the milter logged one summary line with the queue
        id and action=<action>."""
        if not ck.expect(queue_id, f"{label}: no queue id to look up in the milter log"):
            return
        deadline = time.monotonic() + timeout
        while True:
            lines = milter.summary_lines(queue_id)
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if ck.expect(len(lines) == 1, f"{label}: expected one milter summary line with "
                                      f"{queue_id} and action=, found {len(lines)}: {lines}"):
            ck.expect(f"action={action}" in lines[0],
                      f"{label}: milter summary lacks action={action}: {lines[0]}")

    @staticmethod
    def expect_same_body(ck: Check, sent: EmailMessage,
                         got: StoredMessage, label: str) -> None:
        """expect_same_body - the delivered body is byte for byte the body
        that was sent: the milter may add and remove headers, nothing else."""
        sent_body = mail.wire_bytes(sent).split(b"\r\n\r\n", 1)[1]
        got_body = got.raw().split(b"\r\n\r\n", 1)[-1]
        if sent_body != got_body:
            n = next((i for i, (a, b) in enumerate(zip(sent_body, got_body)) if a != b),
                     min(len(sent_body), len(got_body)))
            ck.expect(False, f"{label}: body changed in transit: sent {len(sent_body)} "
                             f"bytes, delivered {len(got_body)}, first difference at {n}")

    def icap_requests(self, icap: Optional[CIcap] = None) -> int:
        """icap_requests - RESPMOD lines in a c-icap access log so far."""
        try:
            text = (icap or self.icap).access_log.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if "RESPMOD" in line)


# ---------------------------------------------------------------- cases

@case("lab", "the lab itself: clamd and c-icap verdicts by c-icap-client (plain, TLS), "
             "TLS chain checks, sink, Postfix tempfails with no milter", needs_milter=False)
def case_lab(s: Suite, ck: Check) -> None:
    clean = s.lab.dir / "clean.txt"
    clean.write_text("hello, nothing to see\n")
    for tls in (False, True):
        mode = "TLS" if tls else "plain"
        out = s.icap.scan_with_client(clean, tls)
        ck.expect("ICAP/1.0 204" in out or ("ICAP/1.0 200" in out and "X-Infection" not in out),
                  f"c-icap-client {mode}: clean file not clean:\n{out}")
        out = s.icap.scan_with_client(s.lab.db.eicar_file, tls)
        ck.expect(VIRUS_NAME_RE.search(out), f"c-icap-client {mode}: EICAR not found:\n{out}")
    ck.expect(s.icap.options_ok(tls=True), "OPTIONS over TLS, verified with the test CA, failed")
    rogue = s.rogue
    ck.expect(rogue.options_ok(tls=True), "rogue c-icap: OPTIONS with its own CA failed")
    ck.expect(not rogue.options_ok(tls=True, ca=s.lab.pki.ca("test-ca")),
              "rogue c-icap: its certificate verified against the test CA")
    msg = mail.new_message("sink check")
    with mail.SmtpClient(s.sink.port) as c:
        out = c.send(msg)
    ck.expect(out.code == 250 and s.sink.wait_for(mail.message_id(msg), 5),
              f"sink did not store a message: {out}")
    # No milter listens yet: milter_default_action = tempfail must apply.
    out = mail.send_one(s.postfix.smtp_port, mail.new_message("no milter running"))
    ck.expect(400 <= out.code < 500, f"Postfix without a milter answered {out}, expected 4xx")
    ck.note(f"c-icap plain port {s.icap.port}, TLS port {s.icap.tls_port}; "
            f"Postfix smtpd {s.postfix.smtp_port}; sink {s.sink.port}")


@case("config_check", "icap-milter -t accepts the lab config and rejects a bad one; "
                      "--dump-config shows the scanner")
def case_config_check(s: Suite, ck: Check) -> None:
    m = s.lab.milter("milter-config", s.binary, s.tls_settings(), s.socket_spec)
    res = m.check_config()
    ck.expect(res.returncode == 0, f"-t on a good config: rc={res.returncode} "
                                   f"{res.stdout}{res.stderr}")
    dump = subprocess.run([str(s.binary), "-c", str(m.conf), "--dump-config"],
                          capture_output=True, text=True, timeout=30)
    ck.expect(dump.returncode == 0 and s.icap.url(tls=True) in dump.stdout,
              f"--dump-config: rc={dump.returncode}, scanner URL missing:\n{dump.stdout[:2000]}")
    m.settings["NoSuchKey"] = "1"
    m.settings["ScanThreads"] = "many"
    m.write_config()
    res = m.check_config()
    ck.expect(res.returncode != 0, "-t accepted a config with an unknown key and a bad number")
    ck.note(f"-t on a bad config: {(res.stdout + res.stderr).strip()[:300]}")


@case("tls_clean", "clean multipart mail over icaps:// is delivered with X-Virus-Scanned "
                   "and X-Virus-Status: Clean; forged incoming status headers are removed")
def case_tls_clean(s: Suite, ck: Check) -> None:
    before = s.icap_requests()
    with s.milter("tls_clean", s.tls_settings()) as m:
        msg = mail.clean_multipart(forged=True)
        out = mail.send_one(s.postfix.smtp_port, msg)
        got = s.expect_delivered(ck, out, m, sent=msg)
        if got is not None:
            scanned = got.header_values("X-Virus-Scanned")
            ck.expect(not any("forged" in v for v in scanned + got.header_values("X-Virus-Status")),
                      "forged X-Virus-* headers survived")
            ck.note(f"X-Virus-Scanned: {scanned[0] if scanned else None}")
    scans = s.icap_requests() - before
    ck.expect(scans >= 2, f"c-icap logged {scans} RESPMOD requests for 2 attachments")
    ck.note(f"c-icap RESPMOD requests for the message: {scans}")


def _reject_case(s: Suite, ck: Check, tag: str, msg) -> None:
    """_reject_case - one infected message over TLS must be rejected."""
    with s.milter(tag, s.tls_settings()) as m:
        out = mail.send_one(s.postfix.smtp_port, msg)
        s.expect_rejected(ck, out, m, tag)
        ck.note(f"reply: {out}")


@case("eicar_attachment", "EICAR attachment: 550 5.7.1 naming the virus")
def case_eicar_attachment(s: Suite, ck: Check) -> None:
    _reject_case(s, ck, "eicar_attachment", mail.eicar_attachment())


@case("eicar_nested", "EICAR inside an attached message/rfc822: rejected")
def case_eicar_nested(s: Suite, ck: Check) -> None:
    _reject_case(s, ck, "eicar_nested", mail.eicar_nested())


@case("eicar_zip", "EICAR inside a zip attachment: rejected")
def case_eicar_zip(s: Suite, ck: Check) -> None:
    _reject_case(s, ck, "eicar_zip", mail.eicar_zip())


@case("eicar_plain", "EICAR as the body of a single-part text/plain message: rejected")
def case_eicar_plain(s: Suite, ck: Check) -> None:
    _reject_case(s, ck, "eicar_plain", mail.eicar_plain())


@case("large_30mb", "a 30 MB clean attachment is delivered intact; the milter's peak RSS "
                    "stays bounded")
def case_large(s: Suite, ck: Check) -> None:
    settings = {**s.tls_settings(), "IcapTimeout": "60s"}
    with s.milter("large_30mb", settings) as m:
        idle_kb = m.vm_hwm_kb() or 0
        msg = mail.large_clean(30 * 1024 * 1024)
        out = mail.send_one(s.postfix.smtp_port, msg)
        ck.note(f"end-of-data reply after {out.seconds:.1f}s: {out}")
        hwm_kb = m.vm_hwm_kb() or 0
        got = s.expect_delivered(ck, out, m, sent=msg, label="30 MB", timeout=120)
        if got is not None:
            ck.note(f"delivered {got.size / 1e6:.1f} MB to the sink")
    ck.note(f"milter VmHWM: {hwm_kb / 1024:.1f} MB after the 30 MB message "
            f"(at start: {idle_kb / 1024:.1f} MB)")
    ck.expect(0 < hwm_kb < MAX_HWM_30MB_KB,
              f"milter peak RSS {hwm_kb / 1024:.1f} MB, limit {MAX_HWM_30MB_KB / 1024:.0f} MB")


@case("scanner_down", "scanner stopped: 451 4.7.1 tempfail and nothing delivered; "
                      "scanning resumes once it is back")
def case_scanner_down(s: Suite, ck: Check) -> None:
    icap = s.lab.start_cicap("cicap-down", s.clamd, tls=True)
    try:
        with s.milter("scanner_down", s.tls_settings(icap)) as m:
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, mail.clean_multipart()),
                               m, label="before the scanner stops")
            icap.stop()
            out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart())
            s.expect_tempfail(ck, out, m, "scanner down")
            ck.note(f"scanner down: {out} (after {out.seconds:.1f}s)")
            icap.start()
            t0 = time.monotonic()
            for _ in range(30):
                out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart())
                if out.code == 250:
                    break
                time.sleep(1)
            s.expect_delivered(ck, out, m, label="after the scanner is back")
            ck.note(f"accepted again {time.monotonic() - t0:.1f}s after c-icap restarted")
    finally:
        s.lab.forget(icap)


@case("no_listener", "scanner port with nothing listening: 451 4.7.1 tempfail")
def case_no_listener(s: Suite, ck: Check) -> None:
    port = s.lab.ports.get()
    settings = {"IcapServer": f"icap://127.0.0.1:{port}/avscan"}
    with s.milter("no_listener", settings) as m:
        out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart())
        s.expect_tempfail(ck, out, m, "no listener")
        ck.note(f"reply: {out}")


@case("wrong_ca", "TLS scanner whose certificate comes from another CA: 451 4.7.1 tempfail")
def case_wrong_ca(s: Suite, ck: Check) -> None:
    with s.milter("wrong_ca", s.tls_settings(s.rogue)) as m:
        out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart())
        s.expect_tempfail(ck, out, m, "wrong CA")
        ck.note(f"reply: {out}")
        tls_lines = [l for l in m.log_text().splitlines()
                     if re.search(r"certif|verif|tls|ssl", l, re.I)]
        ck.expect(tls_lines, "the milter log does not mention the certificate failure")
        if tls_lines:
            ck.note(f"milter log: {tls_lines[0][:300]}")


@case("one_connection", "clean, EICAR, clean on ONE SMTP connection: 250, 550, 250")
def case_one_connection(s: Suite, ck: Check) -> None:
    with s.milter("one_connection", s.tls_settings()) as m:
        msgs = [mail.clean_multipart("first, clean"), mail.eicar_attachment("second, EICAR"),
                mail.clean_multipart("third, clean")]
        with mail.SmtpClient(s.postfix.smtp_port) as client:
            outs = [client.send(msg) for msg in msgs]
        s.expect_delivered(ck, outs[0], m, sent=msgs[0], label="first (clean)")
        s.expect_rejected(ck, outs[1], m, "second (EICAR)")
        s.expect_delivered(ck, outs[2], m, sent=msgs[2], label="third (clean)")
        ck.note("replies: " + " | ".join(f"{o.code}" for o in outs))


@case("plain_icap", "plain icap:// scanner: clean delivered, EICAR rejected")
def case_plain_icap(s: Suite, ck: Check) -> None:
    with s.milter("plain_icap", {"IcapServer": s.icap.url(tls=False)}) as m:
        msg = mail.clean_multipart()
        s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
        s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()),
                          m, "EICAR over plain ICAP")


@case("chain", "two Postfix instances, each with its own icap-milter, A relaying to B: "
               "clean mail crosses both with one X-Virus-Status; EICAR stops at A")
def case_chain(s: Suite, ck: Check) -> None:
    lab = s.lab
    sock_a, sock_b = (f"unix:{lab.dir / f'chain-{x}.sock'}" for x in "ab")
    pf_b = lab.start_postfix("postfix-chain-b", s.sink.port, sock_b)
    pf_a = lab.start_postfix("postfix-chain-a", pf_b.smtp_port, sock_a)
    try:
        with s.milter("chain_a", s.tls_settings(), sock_a) as ma, \
                s.milter("chain_b", {"IcapServer": s.icap.url(tls=False)}, sock_b) as mb:
            msg = mail.clean_multipart("clean, through two hops")
            out = mail.send_one(pf_a.smtp_port, msg)
            got = s.expect_delivered(ck, out, ma, sent=msg, label="clean via A and B",
                                     timeout=60)
            qid_b = pf_b.queue_id_for(out.message_id)
            ck.expect(qid_b, "hop B logged no queue id for the clean message")
            if qid_b:
                s.expect_summary(ck, mb, qid_b, "accept", "hop B")
            if got is not None:
                ck.note(f"after two hops: X-Virus-Scanned {got.header_values('X-Virus-Scanned')}")
            out = mail.send_one(pf_a.smtp_port, mail.eicar_attachment())
            s.expect_rejected(ck, out, ma, "EICAR at hop A", postfix=pf_a)
            ck.expect(pf_b.queue_id_for(out.message_id, 1) is None,
                      "the EICAR message reached hop B")
    finally:
        lab.forget(pf_a)
        lab.forget(pf_b)


def _send_many(port: int, msgs: list[EmailMessage], sessions: int
               ) -> tuple[list[mail.Outcome], float]:
    """_send_many - send msgs over parallel SMTP sessions (round robin);
    returns one outcome per message (code 0 when a session broke) and the
    wall-clock seconds."""
    outcomes: list[mail.Outcome] = []
    lock = threading.Lock()

    def worker(batch: list[EmailMessage]) -> None:
        done = 0
        try:
            with mail.SmtpClient(port) as client:
                for msg in batch:
                    out = client.send(msg)
                    done += 1
                    with lock:
                        outcomes.append(out)
        except Exception as e:   # the unsent rest counts as failed
            with lock:
                outcomes.extend(mail.Outcome(mail.message_id(m), 0, f"session failed: {e!r}", 0)
                                for m in batch[done:])

    batches = [msgs[i::sessions] for i in range(sessions)]
    threads = [threading.Thread(target=worker, args=(b,)) for b in batches if b]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return outcomes, time.monotonic() - t0


def _wait_delivered(sink: SmtpSink, ids: set[str], timeout: float) -> set[str]:
    """_wait_delivered - the subset of Message-IDs that reached the sink
    within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        have = ids & {msg.message_id for msg in sink.messages()}
        if have == ids or time.monotonic() > deadline:
            return have
        time.sleep(0.2)


@case("throughput", "300 small clean messages, then 200 with a 100 KB attachment, over 4 "
                    "SMTP sessions (TLS scanner; the 100 KB run again over plain ICAP): all "
                    "accepted and delivered; prints messages/s and milter CPU per 1000 messages")
def case_throughput(s: Suite, ck: Check) -> None:
    sessions = 4
    small = ("small", 300, lambda i: mail.new_message(f"throughput {i}"))
    big = ("100 KB attachment", 200,
           lambda i: mail.large_clean(100 * 1024, f"throughput 100 KB {i}"))
    # LogLevel info, as in production: debug logging costs measurable CPU.
    runs = [("TLS", {**s.tls_settings(), "LogLevel": "info"}, [small, big]),
            ("plain", {"IcapServer": s.icap.url(tls=False), "LogLevel": "info"}, [big])]
    for scanner, settings, phases in runs:
        total = 0
        with s.milter(f"throughput_{scanner.lower()}", settings) as m:
            for label, count, make in phases:
                label = f"{label}, {scanner} scanner"
                msgs = [make(i) for i in range(count)]     # built before the clock starts
                cpu0 = m.cpu_seconds()
                outs, secs = _send_many(s.postfix.smtp_port, msgs, sessions)
                accepted = [o for o in outs if o.code == 250]
                ck.expect(len(accepted) == count, f"{label}: {len(accepted)}/{count} accepted; "
                          f"others: {[str(o) for o in outs if o.code != 250][:3]}")
                delivered = _wait_delivered(s.sink, {o.message_id for o in accepted}, 60)
                ck.expect(len(delivered) == len(accepted),
                          f"{label}: only {len(delivered)}/{len(accepted)} delivered")
                cpu = m.cpu_seconds() - cpu0
                ck.note(f"{label}: {len(accepted)} messages in {secs:.2f}s over {sessions} "
                        f"sessions = {len(accepted) / secs:.1f} msg/s; milter CPU "
                        f"{1000 * cpu / max(1, len(accepted)):.2f}s per 1000 messages")
                total += count
            n = len(m.summary_lines())
            ck.expect(n >= total, f"{scanner}: milter logged {n} summary lines for "
                                  f"{total} messages")
            ck.note(f"{scanner}: milter VmHWM {(m.vm_hwm_kb() or 0) / 1024:.1f} MB")


@case("inet_socket", "milter on an inet: socket, one SMTP session: no Nagle/delayed-ACK "
                     "stall (per-message time compared with the unix socket)")
def case_inet_socket(s: Suite, ck: Check) -> None:
    count = 40
    median_ms: dict[str, float] = {}
    for kind in ("unix", "inet"):
        spec = None
        if kind == "inet":
            port = s.lab.ports.get()
            spec = f"inet:{port}@127.0.0.1"
            s.postfix.set(smtpd_milters=f"inet:127.0.0.1:{port}")
            s.postfix.reload()
            time.sleep(1)    # running smtpd processes finish with the old setting
        try:
            with s.milter(f"socket_{kind}", s.tls_settings(), spec):
                msgs = [mail.new_message(f"{kind} socket {i}") for i in range(count)]
                outs, secs = _send_many(s.postfix.smtp_port, msgs, 1)
                ok = [o for o in outs if o.code == 250]
                ck.expect(len(ok) == count, f"{kind}: {len(ok)}/{count} accepted")
                if ok:
                    median_ms[kind] = 1000 * statistics.median(o.seconds for o in ok)
                    ck.note(f"{kind} socket, one session: {len(ok) / secs:.1f} msg/s, "
                            f"median {median_ms[kind]:.1f} ms per message")
        finally:
            if kind == "inet":
                s.postfix.set(smtpd_milters=s.socket_spec)
                s.postfix.reload()
                time.sleep(1)
    if len(median_ms) == 2:
        extra = median_ms["inet"] - median_ms["unix"]
        ck.expect(extra < MAX_INET_EXTRA_MS,
                  f"inet socket costs {extra:.1f} ms more per message than the unix socket "
                  f"(limit {MAX_INET_EXTRA_MS:.0f} ms): a Nagle/delayed-ACK stall?")


# ---------------------------------------------------------------- runner

def parse_args(argv: list[str]) -> argparse.Namespace:
    """parse_args - the command line."""
    ap = argparse.ArgumentParser(description="icap-milter integration suite (real Postfix, "
                                             "c-icap, clamd, TLS; loopback only)")
    ap.add_argument("--milter", type=Path, help="the icap-milter binary to test")
    ap.add_argument("--only", help="run only these cases (comma-separated names)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--cicap-conf", action="append", default=[], metavar="LINE",
                    help="append a line to the main c-icap's config, e.g. "
                         "'DebugLevel 5' (repeatable; for debugging)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the lab's work directory is made (default: /tmp, where "
                         "Debian's AppArmor profile lets clamd read and write)")
    return ap.parse_args(argv)


def select_cases(only: Optional[str]) -> list[Case]:
    """select_cases - the cases to run, in suite order; exits on unknown names."""
    if not only:
        return list(CASES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {c.name for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"run.py: unknown case(s) {', '.join(unknown)}; "
                 f"known: {', '.join(c.name for c in CASES)}")
    return [c for c in CASES if c.name in names]


def run_case(suite: Suite, c: Case) -> bool:
    """run_case - run one case, print PASS/FAIL with its findings."""
    ck = Check()
    t0 = time.monotonic()
    try:
        c.func(suite, ck)
    except Exception as e:  # a crash is a failure of this case only
        ck.failures.append(f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
    ck.failures.extend(suite.findings)
    suite.findings.clear()
    secs = time.monotonic() - t0
    ok = not ck.failures
    print(f"{'PASS' if ok else 'FAIL'} {c.name} ({secs:.1f}s): {c.summary}", flush=True)
    for note in ck.notes:
        print(f"     info: {note}")
    for failure in ck.failures:
        print("     fail: " + failure.replace("\n", "\n           "))
    if not ok:
        for d in sorted(suite.lab.dir.glob(f"milter-{c.name}*")):
            print(f"     --- tail of {d / 'milter.log'}:")
            print("       " + tail(d / "milter.log", 15).replace("\n", "\n       "))
    sys.stdout.flush()
    return ok


def load_case_modules() -> None:
    """load_case_modules - cases_*.py files add their cases after the ones
    here: each defines register(run), where run is this module (for case,
    Suite, Check and the helpers above)."""
    import importlib
    this = sys.modules[__name__]
    for path in sorted(Path(__file__).resolve().parent.glob("cases_*.py")):
        importlib.import_module(path.stem).register(this)


def main(argv: list[str]) -> int:
    """main - set up the lab, run the selected cases, print the summary."""
    load_case_modules()
    args = parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name:18} {c.summary}")
        return 0
    cases = select_cases(args.only)
    if os.geteuid() != 0:
        print("run.py: needs root (private Postfix, clamd and c-icap instances)")
        return 2
    binary = args.milter.resolve() if args.milter else None
    if any(c.needs_milter for c in cases) and (binary is None or not os.access(binary, os.X_OK)):
        print(f"run.py: icap-milter binary not executable: {args.milter} (use --milter PATH)")
        return 2
    # A SIGTERM or SIGHUP unwinds like an exception, so the lab still stops
    # every process it started.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    t0 = time.monotonic()
    passed = failed = 0
    with Lab(keep=args.keep, base=args.workdir) as lab:
        print(f"lab: work directory {lab.dir}", flush=True)
        try:
            suite = Suite(lab, binary, tuple(args.cicap_conf))
        except LabError as e:
            print(f"FAIL lab start-up: {e}")
            print(f"0 passed, {len(cases)} failed")
            return 1
        print(f"lab: up in {time.monotonic() - t0:.1f}s", flush=True)
        for c in cases:
            if run_case(suite, c):
                passed += 1
            else:
                failed += 1
    print(f"(total {time.monotonic() - t0:.0f}s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
