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
            # The control part (1) is scanned, the ciphertext (2) is not.
            lines = m.summary_lines(out.queue_id)
            ck.expect(any("verdicts=[1:clean 2:unscannable(encrypted (PGP/MIME))]" in l
                          for l in lines),
                      f"summary should show the control part clean and only the ciphertext "
                      f"unscannable: {lines}")
            ck.note(f"summary: {lines[0] if lines else None}")
            ck.expect("not PGP/MIME" not in m.log_text(),
                      "the genuine message was logged as not PGP/MIME")
