"""
cases_filters.py - filters, bypass lists and per-part logging (issue 12)

SUMMARY
    Registered into run.py (register(run)), against the real Postfix,
    c-icap and clamd:
    - each bypass rule (SkipClientNetworks by the SMTP client's source
      address 127.0.0.2 against 127.0.0.1, and ::1 over IPv6, SkipSenders, SkipRecipients,
      SkipAuthenticated with SMTP AUTH through Cyrus SASL and a sasldb on
      a Postfix instance of its own) lets an EICAR message through
      unscanned (SentToScanner stays 0) and labelled
      X-Virus-Status: Skipped, with forged status headers removed and the
      rule in the summary line; the same message not matching is
      rejected, and clean mail is Clean;
    - BlockedExtensions catches a clean .exe by name: plain, as an
      RFC 2231 name, as an RFC 2047 encoded word, as invoice.pdf.exe and
      with a trailing dot; an EICAR .exe is Infected; OnBlocked accept
      delivers X-Virus-Status: Blocked;
    - ScanOnlyExtensions leaves a message Unscanned, never Clean;
    - MaxMessageSize makes a big message Unscanned without scanning it;
    - LogScanned all logs one info line per part.
"""

from __future__ import annotations

import base64
import os
import signal
import smtplib
import subprocess
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Optional

import mail
from lab import EICAR, VIRUS_NAME_RE

CLEAN_EXE = b"MZ" + b"\x00" * 62 + b"icap-milter integration test: a harmless file named .exe\r\n" * 4
TRUSTED_SENDER = "robot@trusted.icapm-lab.test"
POSTMASTER = "postmaster@dest.icapm-lab.test"


def raw_attachment(subject: str, type_params: str, disp_params: str, content: bytes,
                   ctype: str = "application/octet-stream") -> bytes:
    """raw_attachment - a multipart message, byte for byte, with one base64
    attachment under the given Content-Type / Content-Disposition
    parameters (written as given: RFC 2231 and RFC 2047 forms included)."""
    mid = make_msgid("icapm", domain="client.icapm-lab.test")
    b64 = base64.encodebytes(content).decode().replace("\n", "\r\n")
    return ("From: Test Sender <" + mail.SENDER + ">\r\n"
            "To: Test User <" + mail.RECIPIENT + ">\r\n"
            "Subject: " + subject + "\r\n"
            "Date: " + formatdate(localtime=True) + "\r\n"
            "Message-ID: " + mid + "\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"filters-b\"\r\n"
            "\r\n"
            "--filters-b\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "Please find the file attached.\r\n"
            "--filters-b\r\n"
            "Content-Type: " + ctype + type_params + "\r\n"
            "Content-Disposition: attachment" + disp_params + "\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n" + b64 +
            "--filters-b--\r\n").encode()


def eicar_forged(subject: str) -> EmailMessage:
    """eicar_forged - EICAR attached, plus forged status headers that must
    be removed even when the message is not scanned."""
    msg = mail.eicar_attachment(subject)
    msg["X-Virus-Status"] = "Clean"
    msg["X-Virus-Scanned"] = "forged-scanner 1.0 on evil.example"
    return msg


def send_from(port: int, msg: EmailMessage, source: str, sender: str = mail.SENDER,
              rcpts: tuple[str, ...] = (mail.RECIPIENT,),
              login: Optional[tuple[str, str]] = None, host: str = "127.0.0.1") -> mail.Outcome:
    """send_from - one message on its own SMTP connection to host from the
    local address source, optionally after SMTP AUTH PLAIN."""
    mid = mail.message_id(msg)
    start = time.monotonic()
    try:
        smtp = smtplib.SMTP(host, port, local_hostname="client.icapm-lab.test",
                            timeout=120, source_address=(source, 0))
        try:
            smtp.ehlo()
            if login:
                smtp.login(*login)
            code, text = smtp.mail(sender)
            if code == 250:
                for r in rcpts:
                    code, text = smtp.rcpt(r)
                    if code not in (250, 251):
                        break
                else:
                    try:
                        code, text = smtp.data(mail.wire_bytes(msg))
                    except smtplib.SMTPDataError as e:
                        code, text = e.smtp_code, e.smtp_error
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except (smtplib.SMTPException, OSError) as e:
        code, text = 0, f"connection lost: {e}"
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return mail.Outcome(mid, code, " ".join(str(text).split("\n")), time.monotonic() - start)


def port_open_v6(port: int) -> bool:
    """port_open_v6 - True when something accepts TCP connections on [::1]:port."""
    import socket
    try:
        with socket.create_connection(("::1", port), timeout=0.5):
            return True
    except OSError:
        return False


def counters(m) -> dict[str, str]:
    """counters - the milter's counters from a fresh SIGUSR1 stats line."""
    def stats_lines() -> list[str]:
        return [l for l in m.log_text().splitlines() if "info: stats: " in l]
    before = len(stats_lines())
    os.kill(m.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while len(stats_lines()) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = stats_lines()
    if len(lines) <= before:
        return {}
    text = lines[-1].split("info: stats: ", 1)[1]
    out: dict[str, str] = {}
    # "Name: value Name: value ..." - names have no blanks, values may.
    words = text.split()
    key = None
    for w in words:
        if w.endswith(":") and key is None:
            key = w[:-1]
        elif key is not None:
            out[key] = w
            key = None
    return out


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    def expect_status(s, ck, outcome: mail.Outcome, m, status: str, label: str,
                      summary: tuple[str, ...] = (), action: str = "accept"):
        """expect_status - 250, delivered with exactly one X-Virus-Status
        starting with status, no scan token, action=accept and the given
        fields in the milter's summary line."""
        if not ck.expect(outcome.code == 250, f"{label}: expected 250, got {outcome}"):
            return None
        got = s.sink.wait_for(outcome.message_id, 30)
        if not ck.expect(got is not None, f"{label}: not delivered (queue id {outcome.queue_id})"):
            return None
        values = got.header_values("X-Virus-Status")
        ck.expect(len(values) == 1 and values[0].startswith(status),
                  f"{label}: X-Virus-Status headers {values}, expected one '{status}'")
        ck.expect(not got.header_values("X-Scan-Token"), f"{label}: a scan token was added")
        s.expect_summary(ck, m, outcome.queue_id, action, label)
        lines = m.summary_lines(outcome.queue_id)
        for field in (f"status={status}",) + summary:
            ck.expect(lines and field in lines[0], f"{label}: summary lacks '{field}': {lines}")
        return got

    def expect_skipped(s, ck, m, outcome: mail.Outcome, rule: str, match: str, label: str) -> None:
        """expect_skipped - Skipped, the rule in the summary, no RESPMOD
        for it (measured around the send by the caller), forged headers gone."""
        got = expect_status(s, ck, outcome, m, "Skipped", label, (f"rule={rule}", f"match={match}"))
        if got is not None:
            scanned = got.header_values("X-Virus-Scanned")
            ck.expect(len(scanned) == 1 and "not scanned" in scanned[0] and "forged" not in scanned[0],
                      f"{label}: X-Virus-Scanned {scanned}, expected ours saying 'not scanned'")

    def skip_then_scan(s, ck, m, skipped: callable, scanned: callable, rule: str, match: str,
                       postfix=None) -> None:
        """skip_then_scan - EICAR that matches the rule is Skipped without a
        RESPMOD; EICAR that does not is rejected; clean mail is Clean."""
        out = skipped()
        expect_skipped(s, ck, m, out, rule, match, f"{rule}: EICAR matching")
        # The milter's first message: nothing may have gone to a scanner.
        # (c-icap's access log is no measure here: the start-up self-test's
        # lines may land in it late.)
        k = counters(m)
        ck.expect(k.get("SentToScanner") == "0" and k.get("Skipped") == "1",
                  f"{rule}: after the skipped message SentToScanner={k.get('SentToScanner')} "
                  f"Skipped={k.get('Skipped')}, expected 0 and 1")
        lines = m.summary_lines(out.queue_id) if out.queue_id else []
        ck.expect(lines and "parts=0 verdicts=[]" in lines[0], f"{rule}: the summary shows scanned parts: {lines}")
        s.expect_rejected(ck, scanned(eicar_forged(f"{rule}: EICAR not matching")), m,
                          f"{rule}: EICAR not matching", postfix)
        clean = mail.clean_multipart(f"{rule}: clean not matching")
        s.expect_delivered(ck, scanned(clean), m, sent=clean, label=f"{rule}: clean not matching")
        ck.note(f"{rule}: EICAR matching -> {out.code}, not matching -> rejected")

    @run.case("filters_skip_networks", "SkipClientNetworks 127.0.0.2/32: EICAR from 127.0.0.2 is delivered "
                                       "Skipped, nothing sent to a scanner; from 127.0.0.1 it is rejected, clean is Clean")
    def case_skip_networks(s, ck) -> None:
        with s.milter("filters_skip_networks", dict(s.tls_settings(),
                                                    SkipClientNetworks="127.0.0.2/32 ::1/128")) as m:
            port = s.postfix.smtp_port
            skip_then_scan(s, ck, m, lambda: send_from(port, eicar_forged("from 127.0.0.2"), "127.0.0.2"),
                           lambda msg: send_from(port, msg, "127.0.0.1"), "SkipClientNetworks", "127.0.0.2/32")
            k = counters(m)
            ck.expect(k.get("Skipped.SkipClientNetworks") == "1" and k.get("Skipped.SkipSenders") == "0",
                      f"stats: Skipped.SkipClientNetworks={k.get('Skipped.SkipClientNetworks')}, expected 1")

    @run.case("filters_skip_networks_v6", "SkipClientNetworks ::1/128 with a Postfix listening on [::1] too: "
                                          "EICAR from ::1 (an AF_INET6 client) is Skipped; from 127.0.0.1 rejected")
    def case_skip_networks_v6(s, ck) -> None:
        pf = s.lab.start_postfix("postfix-v6", s.sink.port, s.socket_spec, {
            "inet_protocols": "all",
            "inet_interfaces": "127.0.0.1, [::1]",
            "mynetworks": "127.0.0.0/8 [::1]/128",
        })
        # The lab's master.cf listens on 127.0.0.1:PORT only; add [::1]:PORT.
        master = pf.conf_dir / "master.cf"
        text = master.read_text()
        first = text.splitlines()[1]
        if ck.expect(first.startswith(f"127.0.0.1:{pf.smtp_port} "), f"unexpected master.cf line: {first}"):
            master.write_text(text + first.replace(f"127.0.0.1:{pf.smtp_port}", f"[::1]:{pf.smtp_port}", 1) + "\n")
            pf.reload()
            deadline = time.monotonic() + 20
            while not port_open_v6(pf.smtp_port) and time.monotonic() < deadline:
                time.sleep(0.2)
        if not ck.expect(port_open_v6(pf.smtp_port), "Postfix does not listen on [::1]"):
            return
        with s.milter("filters_skip_networks_v6", dict(s.tls_settings(), SkipClientNetworks="::1/128")) as m:
            out = send_from(pf.smtp_port, eicar_forged("from ::1"), "::1", host="::1")
            expect_skipped(s, ck, m, out, "SkipClientNetworks", "::1/128", "EICAR from ::1")
            lines = m.summary_lines(out.queue_id) if out.queue_id else []
            ck.expect(lines and "client=[::1]" in lines[0],
                      f"the summary does not show the IPv6 client: {lines}")
            s.expect_rejected(ck, send_from(pf.smtp_port, eicar_forged("from 127.0.0.1 (v6 rule)"), "127.0.0.1"),
                              m, "EICAR from 127.0.0.1", pf)

    @run.case("filters_skip_senders", "SkipSenders @trusted...: EICAR from that domain is Skipped; from "
                                      "another sender it is rejected")
    def case_skip_senders(s, ck) -> None:
        with s.milter("filters_skip_senders", dict(s.tls_settings(),
                                                   SkipSenders="*@TRUSTED.icapm-lab.test")) as m:
            port = s.postfix.smtp_port
            skip_then_scan(s, ck, m,
                           lambda: send_from(port, eicar_forged("trusted sender"), "127.0.0.1", TRUSTED_SENDER),
                           lambda msg: send_from(port, msg, "127.0.0.1"), "SkipSenders", "@trusted.icapm-lab.test")

    @run.case("filters_skip_recipients", "SkipRecipients postmaster@...: EICAR to postmaster alone is "
                                         "Skipped; to postmaster and another recipient it is rejected")
    def case_skip_recipients(s, ck) -> None:
        with s.milter("filters_skip_recipients", dict(s.tls_settings(), SkipRecipients=POSTMASTER)) as m:
            port = s.postfix.smtp_port
            skip_then_scan(s, ck, m,
                           lambda: send_from(port, eicar_forged("to postmaster"), "127.0.0.1",
                                             rcpts=(POSTMASTER,)),
                           lambda msg: send_from(port, msg, "127.0.0.1", rcpts=(POSTMASTER, mail.RECIPIENT)),
                           "SkipRecipients", POSTMASTER)

    @run.case("filters_skip_authenticated", "SkipAuthenticated yes: a Postfix with Cyrus SASL (sasldb); "
                                            "EICAR after AUTH PLAIN is Skipped, without AUTH it is rejected")
    def case_skip_authenticated(s, ck) -> None:
        # Debian's Postfix reads <config_directory>/sasl/smtpd.conf (and
        # not cyrus_sasl_config_path): the instance's own etc/sasl.
        sasl_dir = s.lab.dir / "postfix-sasl" / "etc" / "sasl"
        sasl_dir.mkdir(parents=True, exist_ok=True)
        db = sasl_dir / "sasldb2"
        proc = subprocess.run(["saslpasswd2", "-f", str(db), "-c", "-p", "-u", "icapm-lab.test", "alice"],
                              input="alice-secret", capture_output=True, text=True, timeout=30)
        if not ck.expect(proc.returncode == 0, f"saslpasswd2 failed (package sasl2-bin): {proc.stderr}"):
            return
        os.chmod(db, 0o644)
        os.chmod(sasl_dir, 0o755)
        (sasl_dir / "smtpd.conf").write_text(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                             f"mech_list: PLAIN LOGIN\nsasldb_path: {db}\n")
        pf = s.lab.start_postfix("postfix-sasl", s.sink.port, s.socket_spec, {
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "smtpd_sasl_security_options": "noanonymous",
            # Postfix's default milter_mail_macros has {auth_authen}; with
            # only "i" the macro arrives only because the milter asks for
            # it (smfi_setsymlist at negotiation).
            "milter_mail_macros": "i",
        })
        login = ("alice@icapm-lab.test", "alice-secret")
        with s.milter("filters_skip_authenticated", dict(s.tls_settings(), SkipAuthenticated="yes")) as m:
            skip_then_scan(s, ck, m,
                           lambda: send_from(pf.smtp_port, eicar_forged("authenticated"), "127.0.0.1",
                                             login=login),
                           lambda msg: send_from(pf.smtp_port, msg, "127.0.0.1"), "SkipAuthenticated", "yes",
                           pf)
            ck.expect(m.wait_log("macros requested at MAIL FROM: i {auth_authen}"),
                      "the milter did not log its smfi_setsymlist request")
            # The 'sasl_username=' Postfix logs is what {auth_authen} carries.
            ck.expect("sasl_username=alice@icapm-lab.test" in pf.maillog.read_text(errors="replace"),
                      "Postfix logged no sasl_username: AUTH did not happen")

    def blocked_reply(ck, out: mail.Outcome, label: str, name: str) -> None:
        """blocked_reply - 550 5.7.1 naming the file (no virus name)."""
        ck.expect(out.code == 550 and "5.7.1" in out.text, f"{label}: expected 550 5.7.1, got {out}")
        ck.expect("Blocked attachment" in out.text and name in out.text,
                  f"{label}: the reply does not name '{name}': {out}")

    @run.case("filters_blocked", "BlockedExtensions exe: a clean .exe is rejected by name (plain, RFC 2231, "
                                 "RFC 2047, invoice.pdf.exe, trailing dot); an EICAR .exe is Infected; a .pdf "
                                 "is Clean; OnBlocked accept delivers X-Virus-Status: Blocked; OnBlocked clean "
                                 "replaces the .exe")
    def case_blocked(s, ck) -> None:
        port = s.postfix.smtp_port
        variants = [
            ("plain", "; name=\"setup.exe\"", "; filename=\"setup.exe\"", "setup.exe"),
            ("RFC 2231", "", "; filename*=UTF-8''r%C3%A9sum%C3%A9.exe", ".exe"),
            ("RFC 2047", "", "; filename=\"=?UTF-8?B?c2V0dXAuZXhl?=\"", "setup.exe"),
            ("double extension", "", "; filename=\"invoice.pdf.exe\"", "invoice.pdf.exe"),
            ("trailing dot", "", "; filename=\"invoice.exe.\"", "invoice.exe."),
            ("Content-Type name only", "; name=\"tool.EXE\"", "; filename=\"tool.txt\"", "tool.EXE"),
        ]
        with s.milter("filters_blocked", dict(s.tls_settings(), BlockedExtensions="exe scr",
                                              BlockedTypes="application/x-msdownload video/*")) as m:
            before = s.icap_requests()
            for label, tp, dp, name in variants:
                out = mail.send_raw(port, raw_attachment(f"blocked: {label}", tp, dp, CLEAN_EXE))
                blocked_reply(ck, out, label, name)
                s.expect_not_delivered(ck, out, m, "reject", label)
                qid = s.postfix.queue_id_for(out.message_id)
                lines = m.summary_lines(qid) if qid else []
                ck.expect(lines and "status=Blocked" in lines[0] and "rule=exe" in lines[0],
                          f"{label}: summary lacks status=Blocked ... rule=exe: {lines}")
            ck.expect(s.icap_requests() > before, "blocked parts were not scanned at all")
            out = mail.send_raw(port, raw_attachment("EICAR named .exe", "", "; filename=\"eicar.exe\"", EICAR))
            s.expect_rejected(ck, out, m, "EICAR .exe")
            qid = s.postfix.queue_id_for(out.message_id)
            lines = m.summary_lines(qid) if qid else []
            ck.expect(lines and "status=Infected" in lines[0], f"EICAR .exe: not Infected: {lines}")
            out = mail.send_raw(port, raw_attachment("a pdf", "", "; filename=\"report.pdf\"", CLEAN_EXE))
            got = expect_status(s, ck, out, m, "Clean", "clean .pdf")
            out = mail.send_raw(port, raw_attachment("by type", "", "; filename=\"report.dat\"", CLEAN_EXE,
                                                     "Application/X-MSDownload"))
            blocked_reply(ck, out, "BlockedTypes", "report.dat")
            qid = s.postfix.queue_id_for(out.message_id)
            lines = m.summary_lines(qid) if qid else []
            ck.expect(lines and "rule=application/x-msdownload" in lines[0],
                      f"BlockedTypes: summary lacks rule=application/x-msdownload: {lines}")
            k = counters(m)
            ck.expect(k.get("Blocked") == str(len(variants) + 1) and k.get("Infected") == "1",
                      f"stats: Blocked={k.get('Blocked')} Infected={k.get('Infected')}, "
                      f"expected {len(variants) + 1} and 1")
            ck.note(f"{len(variants)} .exe variants rejected by name; EICAR .exe Infected; .pdf {got is not None}")
        with s.milter("filters_blocked_accept", dict(s.tls_settings(), BlockedExtensions="exe",
                                                     OnBlocked="accept")) as m:
            out = mail.send_raw(port, raw_attachment("blocked, accepted", "", "; filename=\"a.pdf.exe\"", CLEAN_EXE))
            expect_status(s, ck, out, m, "Blocked", "OnBlocked accept", ("rule=exe",))
        with s.milter("filters_blocked_clean", dict(s.tls_settings(), BlockedExtensions="exe",
                                                    OnBlocked="clean")) as m:
            out = mail.send_raw(port, raw_attachment("blocked, cleaned", "", "; filename=\"tool.exe\"", CLEAN_EXE))
            got = expect_status(s, ck, out, m, "Blocked", "OnBlocked clean", ("rule=exe",), "clean")
            if got is not None:
                body = got.raw().decode("latin-1")
                ck.expect("Please find the file attached." in body, "OnBlocked clean: the text part is gone")
                ck.expect("TVo" not in body and "harmless file" not in body,
                          "OnBlocked clean: the .exe content was delivered")
                ck.expect("a blocked file type (exe)" in body and "tool.exe" in body,
                          f"OnBlocked clean: no CleanTemplate notice naming tool.exe: {body[-400:]}")

    @run.case("filters_scan_only", "ScanOnlyExtensions pdf: a message with .csv and .bin attachments is "
                                   "delivered Unscanned (not in ScanOnlyExtensions), never Clean")
    def case_scan_only(s, ck) -> None:
        with s.milter("filters_scan_only", dict(s.tls_settings(), ScanOnlyExtensions="pdf")) as m:
            out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart("scan only pdf"))
            expect_status(s, ck, out, m, "Unscanned", "ScanOnlyExtensions", ("not in ScanOnlyExtensions",))
            s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_plain("EICAR body, scan only")),
                              m, "EICAR as the body (no file name: still scanned)")

    @run.case("filters_max_size", "MaxMessageSize 64K: a 200 KB message is delivered Unscanned (message "
                                  "larger than MaxMessageSize), nothing sent to a scanner; a small one is Clean")
    def case_max_size(s, ck) -> None:
        with s.milter("filters_max_size", dict(s.tls_settings(), MaxMessageSize="64K")) as m:
            out = mail.send_one(s.postfix.smtp_port, mail.large_clean(200 * 1024, "too big"))
            expect_status(s, ck, out, m, "Unscanned", "MaxMessageSize",
                          ("message larger than MaxMessageSize",))
            k = counters(m)
            ck.expect(k.get("SentToScanner") == "0" and k.get("Unscanned") == "1",
                      f"the big message: SentToScanner={k.get('SentToScanner')} Unscanned={k.get('Unscanned')}, "
                      "expected 0 and 1")
            clean = mail.clean_multipart("small enough")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, clean), m, sent=clean, label="small")

    @run.case("filters_log_scanned", "LogScanned all at LogLevel info: one info line per part with queue id, "
                                     "job id, file, type, size, server and verdict; infected only by default")
    def case_log_scanned(s, ck) -> None:
        with s.milter("filters_log_scanned", dict(s.tls_settings(), LogScanned="all", LogLevel="info")) as m:
            out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart("log every part"))
            s.expect_summary(ck, m, out.queue_id, "accept", "LogScanned all")
            summary = m.summary_lines(out.queue_id)
            parts = int(summary[0].split(" parts=", 1)[1].split()[0]) if summary else -1
            lines = [l for l in m.log_text().splitlines()
                     if out.queue_id and out.queue_id in l and " part=" in l and "action=" not in l]
            ck.expect(parts > 0 and len(lines) == parts, f"{len(lines)} part lines for {parts} parts: {lines}")
            for l in lines:
                ok = " info: " in l or "[info]" in l or "info:" in l
                ck.expect(ok and "file=\"" in l and " type=" in l and " size=" in l and " server=icaps://" in l
                          and "verdict=clean" in l and ": Job-" in l, f"part line lacks a field: {l}")
            if lines:
                ck.note(lines[-1].split(": ", 1)[-1][:200])
        with s.milter("filters_log_infected", dict(s.tls_settings(), LogLevel="info")) as m:
            out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart("log infected only"))
            s.expect_summary(ck, m, out.queue_id, "accept", "LogScanned infected")
            lines = [l for l in m.log_text().splitlines() if " part=" in l and "action=" not in l]
            ck.expect(not lines, f"LogScanned infected logged clean parts: {lines}")
            bad = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("log the infected part"))
            qid = s.postfix.queue_id_for(bad.message_id)
            time.sleep(0.5)
            lines = [l for l in m.log_text().splitlines() if qid and qid in l and " part=" in l and "verdict=infected" in l]
            ck.expect(lines and VIRUS_NAME_RE.search(lines[0]), f"no info line for the infected part: {lines}")
