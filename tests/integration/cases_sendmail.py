"""
cases_sendmail.py - icap-milter behind a real sendmail 8.17

SUMMARY
    Registered into run.py (register(run)). Debian's sendmail-bin and
    sendmail-cf are fetched with apt-get download and unpacked with
    dpkg -x under the lab (sendmail_lab.py; they conflict with Postfix, so
    nothing is installed). A private sendmail on a loopback port, its
    sendmail.cf built with m4 from an .mc holding

        INPUT_MAIL_FILTER(`icap-milter', `S=unix:..., F=T, T=S:10s;R:30s;E:5m')

    relays to the lab's sink. With the lab's c-icap (TLS) and clamd:
      clean     250, delivered with one X-Virus-Status: Clean and one
                X-Virus-Scanned, the body byte for byte, and the milter's
                summary line carries sendmail's queue id (macro i);
      EICAR     550 5.7.1 naming the virus, sendmail logs the milter's
                reject, nothing delivered;
      scanner   a milter whose IcapServer is a closed loopback port:
      down      451 4.7.1 from the milter (action=tempfail);
      milter    no milter on the socket: 4xx from sendmail itself (F=T),
      down      nothing delivered.
    sendmail is stopped by the PID in its PidFile; no process of the
    unpacked binary may be left, nor anything in its queue.

DIAGNOSTICS
    On a failure the notes hold the tail of sendmail's log
    (<lab>/sendmail-a/maillog, from its syslog socket) and SMTP traffic
    (traffic.log, sendmail -X).
"""

from __future__ import annotations

import re
import time
from typing import Optional

import mail
import sendmail_lab
from lab import VIRUS_NAME_RE, poll, tail

# sendmail's reply to an accepted message: "250 2.0.0 <qid> Message accepted".
ACCEPTED_RE = re.compile(r"2\.0\.0 (\w+) Message accepted for delivery")


def register(run) -> None:
    """register - add this module's case to run.py's list."""

    def queue_id(out: mail.Outcome) -> Optional[str]:
        """queue_id - sendmail's queue id from its 250 reply, or None."""
        found = ACCEPTED_RE.search(out.text)
        return found.group(1) if found else None

    def rejected_qid(sm, out: mail.Outcome) -> Optional[str]:
        """rejected_qid - the queue id sendmail logged with the Message-ID of
        a message it did not accept (None if it logged none)."""
        def find() -> Optional[str]:
            m = re.search(r": (\w+): .*msgid=" + re.escape(out.message_id), sm.log_text())
            return m.group(1) if m else None
        return find() if poll(find, 10) else None

    def not_delivered(s, ck, out: mail.Outcome, label: str) -> None:
        """not_delivered - the sink never gets the message."""
        time.sleep(0.5)
        ck.expect(not s.sink.find(out.message_id), f"{label}: the message reached the sink")

    @run.case("sendmail_milter", "real sendmail 8.17 (Debian's packages unpacked, not installed), "
                                 "INPUT_MAIL_FILTER F=T: clean delivered with the status headers, "
                                 "EICAR 550 naming the virus, scanner down 4xx, milter down 4xx")
    def case_sendmail_milter(s: run.Suite, ck: run.Check) -> None:
        sock = f"unix:{s.lab.dir / 'sendmail-milter.sock'}"
        t0 = time.monotonic()
        sm = sendmail_lab.start_sendmail(s.lab, "sendmail-a", s.sink.port, sock)
        ck.note(f"sendmail-bin {sm.tree.version} (apt-get download, dpkg -x) up in "
                f"{time.monotonic() - t0:.1f}s: {sm.banner}")
        ck.note("sendmail.mc: " + next(l for l in sm.mc_text().splitlines()
                                       if l.startswith("INPUT_MAIL_FILTER")))
        completed = False      # False in finally: an exception is on its way out
        try:
            with s.milter("sendmail_milter", s.tls_settings(), sock) as m:
                # 1. clean: delivered with the status headers.
                msg = mail.clean_multipart("clean, through sendmail", forged=True)
                out = mail.send_one(sm.smtp_port, msg)
                qid = queue_id(out)
                if ck.expect(out.code == 250 and qid, f"clean: expected 250 with a queue id, "
                                                      f"got {out}"):
                    got = s.sink.wait_for(out.message_id, 30)
                    if ck.expect(got is not None, f"clean: not delivered (queue id {qid})"):
                        status = got.header_values("X-Virus-Status")
                        scanned = got.header_values("X-Virus-Scanned")
                        ck.expect(status == ["Clean"], f"clean: X-Virus-Status {status}, "
                                                       "expected exactly ['Clean']")
                        ck.expect(len(scanned) == 1 and run.SCANNED_RE.match(scanned[0]),
                                  f"clean: X-Virus-Scanned {scanned}, expected one "
                                  "'icap-milter ... on <host>'")
                        s.expect_same_body(ck, msg, got, "clean")
                        ck.note(f"clean: {out}; X-Virus-Scanned: {scanned}")
                    s.expect_summary(ck, m, qid, "accept", "clean")
                # 2. EICAR: rejected with the virus name.
                out = mail.send_one(sm.smtp_port, mail.eicar_attachment("EICAR, through sendmail"))
                ck.expect(out.code == 550 and "5.7.1" in out.text,
                          f"EICAR: expected 550 5.7.1, got {out}")
                ck.expect(VIRUS_NAME_RE.search(out.text),
                          f"EICAR: virus name ({VIRUS_NAME_RE.pattern}) not in reply: {out}")
                qid = rejected_qid(sm, out)
                if ck.expect(qid, f"EICAR: sendmail logged no queue id for {out.message_id}"):
                    line = sm.wait_log_line(qid, "Milter: data, reject=550 5.7.1")
                    ck.expect(line, f"EICAR: sendmail logged no milter reject for {qid}: "
                                    f"{sm.log_lines(qid)}")
                    s.expect_summary(ck, m, qid, "reject", "EICAR")
                    ck.note(f"EICAR: {out}; sendmail: {line.split(': ', 2)[-1] if line else None}")
                not_delivered(s, ck, out, "EICAR")

            # 3. scanner down: the milter answers 451 (OnFail tempfail).
            dead = s.lab.ports.get()
            with s.milter("sendmail_milter_down", {"IcapServer": f"icap://127.0.0.1:{dead}/avscan"},
                          sock) as m:
                out = mail.send_one(sm.smtp_port, mail.clean_multipart("scanner down, sendmail"))
                ck.expect(400 <= out.code < 500 and "4.7.1" in out.text,
                          f"scanner down: expected 451 4.7.1, got {out}")
                qid = rejected_qid(sm, out)
                if ck.expect(qid, "scanner down: sendmail logged no queue id for "
                                  f"{out.message_id}"):
                    ck.expect(sm.wait_log_line(qid, "Milter: data, reject=451 4.7.1"),
                              f"scanner down: sendmail logged no milter tempfail for {qid}: "
                              f"{sm.log_lines(qid)}")
                    s.expect_summary(ck, m, qid, "tempfail", "scanner down")
                not_delivered(s, ck, out, "scanner down")
                ck.note(f"scanner down: {out}")

            # 4. milter down: sendmail's own 4xx (F=T). First with the socket
            # file the stopped milter left (libmilter running as root does not
            # remove it), then with none at all.
            sock_path = s.lab.dir / "sendmail-milter.sock"
            for state in ("socket file left", "socket gone"):
                if state == "socket gone":
                    sock_path.unlink(missing_ok=True)
                elif not sock_path.exists():
                    ck.note("the stopped milter removed its socket file")
                    continue
                seen = len(sm.log_text())
                msg = mail.clean_multipart(f"milter down, {state}")
                out = mail.send_raw(sm.smtp_port, mail.wire_bytes(msg))
                ck.expect(400 <= out.code < 500,
                          f"milter down ({state}): expected 4xx (F=T), got {out}")
                ck.expect(poll(lambda: "Milter: initialization failed, temp failing commands"
                               in sm.log_text()[seen:], 5),
                          f"milter down ({state}): sendmail did not log 'Milter: "
                          "initialization failed, temp failing commands'")
                not_delivered(s, ck, out, f"milter down ({state})")
                ck.note(f"milter down ({state}): {out}")

            ck.expect(poll(lambda: not sm.queue_files(), 10),
                      f"sendmail's queue is not empty: {sm.queue_files()}")
            completed = True
        finally:
            pid, started = sm.daemon_pid, sm.proc.pid if sm.proc else None
            s.lab.forget(sm)
            ck.expect(pid is not None and pid == started,
                      f"sendmail's PidFile names PID {pid}, the lab started {started}")
            left = sm.leftovers()
            ck.expect(not left and not sm.killed,
                      f"sendmail did not stop on SIGTERM (killed: {sm.killed}, left: {left})")
            ck.note(f"sendmail stopped by SIGTERM to its PidFile's PID {pid}: exit status "
                    f"{sm.proc.returncode if sm.proc else None}, {len(left)} process(es) left")
            if ck.failures or not completed:
                ck.note(f"tail of {sm.maillog}:\n{tail(sm.maillog, 40)}")
                ck.note(f"tail of {sm.traffic}:\n{tail(sm.traffic, 40)}")
