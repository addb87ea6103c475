"""
cases_mime.py - MIME structures that claim more than they are

SUMMARY
    Registered into run.py (register(run)). A multipart/encrypted label
    (no protocol, no control part) around a text part and a base64
    invoice.exe holding EICAR must not hide the exe: real Postfix, the
    milter, c-icap and clamd must answer 550 5.7.1 with the virus name and
    deliver nothing. A genuine PGP/MIME message (the gpg-made fixture
    tests/data/mime/pgp_binary.eml) must still be delivered, marked
    X-Virus-Status: Unscanned under the default OnUnscannable accept, with
    its ciphertext named unscannable in the milter's summary line.
    EICAR uuencoded, yEnc- or BinHex-encoded inside a text body, or
    standing as a multipart's preamble or (nested) epilogue, must be
    rejected likewise; the clean twins of those fixtures are delivered
    marked Clean.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import mail
from lab import EICAR

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "mime"


def fake_encrypted(subject: str = "invoice (fake multipart/encrypted)") -> EmailMessage:
    """fake_encrypted - the reported bypass: Content-Type multipart/encrypted
    (no protocol) around a text part and a base64 invoice.exe that is EICAR."""
    msg = mail.new_message(subject, "Please find the invoice attached.\n")
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                       filename="invoice.exe")
    msg.set_type("multipart/encrypted")   # keeps the boundary parameter
    return msg


def genuine_pgp_mime(subject: str = "genuine PGP/MIME") -> EmailMessage:
    """genuine_pgp_mime - the gpg-made PGP/MIME fixture with fresh From, To,
    Date and Message-ID."""
    msg = email.message_from_bytes((FIXTURES / "pgp_binary.eml").read_bytes(),
                                   policy=email.policy.default)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        del msg[name]
    msg["From"] = f"Test Sender <{mail.SENDER}>"
    msg["To"] = f"Test User <{mail.RECIPIENT}>"
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("icapm", domain="client.icapm-lab.test")
    return msg


def fixture_message(name: str, subject: str) -> EmailMessage:
    """fixture_message - a tests/data/mime fixture with fresh From, To,
    Subject, Date and Message-ID."""
    msg = email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.default)
    for field in ("From", "To", "Subject", "Date", "Message-ID"):
        del msg[field]
    msg["From"] = f"Test Sender <{mail.SENDER}>"
    msg["To"] = f"Test User <{mail.RECIPIENT}>"
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("icapm", domain="client.icapm-lab.test")
    return msg


# Fixtures (made by tests/data/mime/make_inline_fixtures.py) and a marker
# that must survive re-serialisation, so the test sends what it means to.
# The third field is the part id the extra item gets, which the clean
# message's summary line must show as clean.
INLINE = (("uuencode", b"begin 644 ", "1.u1"), ("yenc", b"=ybegin line=128", "1.y1"),
          ("binhex", b"(This file must be converted with BinHex 4.0)", "1.b1"))
OUTSIDE = (("preamble", b"\r\n--outer\r\n", "preamble"),
           ("nested_epilogue", b"--inner--\r\n", "1.epilogue"))


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("mime_fake_encrypted", "multipart/encrypted without PGP/MIME around a text part "
                                     "and a base64 invoice.exe holding EICAR: 550 5.7.1 naming "
                                     "the virus, nothing delivered")
    def case_mime_fake_encrypted(s: run.Suite, ck: run.Check) -> None:
        msg = fake_encrypted()
        wire = mail.wire_bytes(msg)
        ck.expect(b"Content-Type: multipart/encrypted" in wire and b"protocol" not in wire,
                  "the test message is not the reported multipart/encrypted wrapper")
        with s.milter("mime_fake_encrypted", s.tls_settings()) as m:
            out = mail.send_one(s.postfix.smtp_port, msg)
            s.expect_rejected(ck, out, m, "fake multipart/encrypted")
            ck.note(f"reply: {out}")
            ck.expect("not PGP/MIME" in m.log_text(),
                      "the milter's debug log does not say the wrapper is not PGP/MIME")

    @run.case("mime_pgp_unscanned", "genuine PGP/MIME (gpg-made) is delivered with "
                                    "X-Virus-Status: Unscanned; only the ciphertext is "
                                    "unscannable")
    def case_mime_pgp_unscanned(s: run.Suite, ck: run.Check) -> None:
        msg = genuine_pgp_mime()
        with s.milter("mime_pgp_unscanned", s.tls_settings()) as m:
            out = mail.send_one(s.postfix.smtp_port, msg)
            if not ck.expect(out.code == 250, f"genuine PGP/MIME: expected 250, got {out}"):
                return
            got = s.sink.wait_for(out.message_id, 30)
            if not ck.expect(got is not None, f"genuine PGP/MIME: not delivered (queue id "
                                              f"{out.queue_id})"):
                return
            status = got.header_values("X-Virus-Status")
            ck.expect(status == ["Unscanned"],
                      f"X-Virus-Status headers {status}, expected exactly ['Unscanned']")
            s.expect_summary(ck, m, out.queue_id, "accept", "genuine PGP/MIME")
            # The control part (1) is scanned, the ciphertext (2) is not;
            # the raw message (0, ScanWholeMessage always) is scanned too.
            lines = m.summary_lines(out.queue_id)
            ck.expect(any("verdicts=[1:clean 2:unscannable(encrypted (PGP/MIME)) 0:clean]" in l
                          for l in lines),
                      f"summary should show the control part clean and only the ciphertext "
                      f"unscannable: {lines}")
            ck.note(f"summary: {lines[0] if lines else None}")
            ck.expect("not PGP/MIME" not in m.log_text(),
                      "the genuine message was logged as not PGP/MIME")

    def send_fixtures(s: run.Suite, ck: run.Check, case: str, fixtures, tag: str,
                      infected: bool) -> None:
        """send_fixtures - send each <name>_<tag>.eml; infected ones must be
        rejected with the virus name, clean ones delivered marked Clean."""
        with s.milter(case, s.tls_settings()) as m:
            for name, marker, part in fixtures:
                label = f"{name}_{tag}.eml"
                msg = fixture_message(label, f"{name} {tag}")
                wire = mail.wire_bytes(msg)
                if not ck.expect(marker in wire, f"{label}: the block did not survive "
                                                 f"re-serialisation"):
                    continue
                if name in ("preamble", "nested_epilogue"):
                    text = EICAR if tag == "eicar" else b"harmless little file"
                    ck.expect(text in wire, f"{label}: {text!r} is not in the sent message")
                out = mail.send_one(s.postfix.smtp_port, msg)
                ck.note(f"{label}: {out}")
                if infected:
                    s.expect_rejected(ck, out, m, label)
                    continue
                if not ck.expect(out.code == 250, f"{label}: expected 250, got {out}"):
                    continue
                got = s.sink.wait_for(out.message_id, 30)
                if not ck.expect(got is not None, f"{label}: not delivered (queue id "
                                                  f"{out.queue_id})"):
                    continue
                status = got.header_values("X-Virus-Status")
                ck.expect(status == ["Clean"],
                          f"{label}: X-Virus-Status headers {status}, expected ['Clean']")
                s.expect_summary(ck, m, out.queue_id, "accept", label)
                lines = m.summary_lines(out.queue_id)
                ck.expect(any(f" {part}:clean" in l or f"[{part}:clean" in l for l in lines),
                          f"{label}: summary does not show part {part} scanned clean: {lines}")
                ck.note(f"{label} summary: {lines[:1]}")

    @run.case("mime_inline_eicar", "EICAR uuencoded, yEnc-encoded and BinHex-encoded inside "
                                   "a text/plain body: each 550 5.7.1 naming the virus, "
                                   "nothing delivered")
    def case_mime_inline_eicar(s: run.Suite, ck: run.Check) -> None:
        send_fixtures(s, ck, "mime_inline_eicar", INLINE, "eicar", True)

    @run.case("mime_inline_clean", "clean files uuencoded, yEnc-encoded and BinHex-encoded "
                                   "inside text/plain: delivered, X-Virus-Status: Clean")
    def case_mime_inline_clean(s: run.Suite, ck: run.Check) -> None:
        send_fixtures(s, ck, "mime_inline_clean", INLINE, "clean", False)

    @run.case("mime_outside_eicar", "EICAR as the top-level preamble and as the epilogue of a "
                                    "nested multipart: each 550 5.7.1 naming the virus, "
                                    "nothing delivered")
    def case_mime_outside_eicar(s: run.Suite, ck: run.Check) -> None:
        send_fixtures(s, ck, "mime_outside_eicar", OUTSIDE, "eicar", True)

    @run.case("mime_outside_clean", "clean text as the top-level preamble and as a nested "
                                    "epilogue: delivered, X-Virus-Status: Clean")
    def case_mime_outside_clean(s: run.Suite, ck: run.Check) -> None:
        send_fixtures(s, ck, "mime_outside_clean", OUTSIDE, "clean", False)
