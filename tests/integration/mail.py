"""
mail.py - test messages and an SMTP client that records every verdict

SUMMARY
    Builders for the messages the suite sends (clean multipart with an
    attachment, EICAR as an attachment, inside a nested message/rfc822,
    inside a zip, as a plain text body, a large clean attachment), each
    with a unique Message-ID so the Postfix log and the sink can be
    searched for it.

    SmtpClient sends one or many messages on one SMTP connection with
    smtplib and returns, for each, the reply to the end of DATA (where
    Postfix reports a milter's verdict): code, text, and the queue id of
    accepted mail.
"""

from __future__ import annotations

import io
import os
import re
import smtplib
import time
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Optional

from lab import EICAR

SENDER = "sender@client.icapm-lab.test"
RECIPIENT = "user@dest.icapm-lab.test"

CLEAN_TEXT = ("Hello,\n\nplease find the quarterly report attached.\n\n"
              "-- \nicap-milter integration test\n")


def new_message(subject: str, text: str = CLEAN_TEXT) -> EmailMessage:
    """new_message - a text message with From, To, Date and a unique Message-ID."""
    msg = EmailMessage()
    msg["From"] = f"Test Sender <{SENDER}>"
    msg["To"] = f"Test User <{RECIPIENT}>"
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("icapm", domain="client.icapm-lab.test")
    msg.set_content(text)
    return msg


def clean_multipart(subject: str = "clean: report attached", forged: bool = False) -> EmailMessage:
    """clean_multipart - text plus a clean CSV and binary attachment; with
    forged, it also carries X-Virus-Status / X-Virus-Scanned headers an
    outsider added, which the milter must remove."""
    msg = new_message(subject)
    if forged:
        msg["X-Virus-Status"] = "Clean (forged by the sender)"
        msg["X-Virus-Scanned"] = "forged-scanner 1.0 on evil.example"
        msg["X-Virus-Status"] = "Clean"
    msg.add_attachment("region,q1,q2\nnorth,10,12\nsouth,7,9\n", subtype="csv",
                       filename="report.csv")
    msg.add_attachment(bytes(range(256)) * 64, maintype="application",
                       subtype="octet-stream", filename="data.bin")
    return msg


def eicar_attachment(subject: str = "EICAR attachment") -> EmailMessage:
    """eicar_attachment - a multipart message with eicar.com attached."""
    msg = new_message(subject)
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                       filename="eicar.com")
    return msg


def eicar_nested(subject: str = "EICAR in a forwarded message") -> EmailMessage:
    """eicar_nested - EICAR attached to a message that is itself attached
    (message/rfc822) to the outer message."""
    inner = eicar_attachment("the original message")
    outer = new_message(subject, "Forwarding the message below.\n")
    outer.add_attachment(inner)          # becomes a message/rfc822 part
    return outer


def eicar_zip(subject: str = "EICAR in a zip") -> EmailMessage:
    """eicar_zip - EICAR inside a deflated zip archive, with a clean file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "nothing to see\n")
        z.writestr("tools/eicar.com", EICAR)
    msg = new_message(subject)
    msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip",
                       filename="invoice.zip")
    return msg


def eicar_plain(subject: str = "EICAR as the body") -> EmailMessage:
    """eicar_plain - a single-part text/plain message whose body is EICAR."""
    return new_message(subject, EICAR.decode("ascii") + "\n")


def large_clean(size: int, subject: str = "large clean attachment") -> EmailMessage:
    """large_clean - a clean message with a size-byte random attachment
    (base64 in transit, so the message is about 4/3 of size)."""
    msg = new_message(subject)
    msg.add_attachment(os.urandom(size), maintype="application", subtype="octet-stream",
                       filename="backup.bin")
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """wire_bytes - the message as sent over SMTP (CRLF line ends)."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def message_id(msg: EmailMessage) -> str:
    """message_id - the Message-ID header of a built message."""
    return str(msg["Message-ID"]).strip()


@dataclass
class Outcome:
    """Outcome - what the server said at the end of DATA for one message."""
    message_id: str
    code: int
    text: str
    seconds: float

    @property
    def queue_id(self) -> Optional[str]:
        """queue_id - from "250 2.0.0 Ok: queued as QUEUEID", if accepted."""
        m = re.search(r"queued as ([0-9A-Za-z]+)", self.text)
        return m.group(1) if m else None

    @property
    def accepted(self) -> bool:
        return self.code == 250

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class SmtpClient:
    """SmtpClient - an SMTP session to one server on which several
    messages can be sent in turn (MAIL, RCPT, DATA for each)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 300.0) -> None:
        self.smtp = smtplib.SMTP(host, port, local_hostname="client.icapm-lab.test",
                                 timeout=timeout)
        self.smtp.ehlo()

    def send(self, msg: EmailMessage, sender: str = SENDER,
             rcpts: tuple[str, ...] = (RECIPIENT,)) -> Outcome:
        """send - one message; the end-of-DATA reply (or the earlier error)."""
        mid = message_id(msg)
        data = wire_bytes(msg)
        start = time.monotonic()
        try:
            code, text = self.smtp.mail(sender)
            if code == 250:
                for r in rcpts:
                    code, text = self.smtp.rcpt(r)
                    if code not in (250, 251):
                        break
                else:
                    try:
                        code, text = self.smtp.data(data)
                    except smtplib.SMTPDataError as e:   # DATA itself refused
                        code, text = e.smtp_code, e.smtp_error
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            code, text = 0, f"connection lost: {e}"
        if code != 250:
            try:
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                pass
        return Outcome(mid, code, _text(text), time.monotonic() - start)

    def close(self) -> None:
        """close - QUIT (ignoring a server that already went away)."""
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()

    def __enter__(self) -> "SmtpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(reply: bytes | str) -> str:
    """_text - a server reply as one line of text."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split("\n"))


def send_one(port: int, msg: EmailMessage) -> Outcome:
    """send_one - a message on its own SMTP connection."""
    with SmtpClient(port) as client:
        return client.send(msg)


def send_raw(port: int, data: bytes, sender: str = SENDER,
             rcpts: tuple[str, ...] = (RECIPIENT,)) -> Outcome:
    """send_raw - one message, byte for byte, on its own SMTP connection over a
    plain socket (smtplib's data() would turn bare CR and bare LF into CRLF).
    Only SMTP's own framing is added: a '.' at the start of a line (after
    LF, as the server splits lines) is doubled, a CRLF is added when the data
    does not end in one, then ".\r\n". The Message-ID is read from the
    header section; the reply is the end-of-DATA one, or the first refusal."""
    import socket
    head = data.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", head, re.M | re.I)
    mid = m.group(1).decode("latin-1") if m else ""
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    start = time.monotonic()
    code, text = 0, "no reply"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=300.0) as sock:
            rfile = sock.makefile("rb")

            def reply() -> tuple[int, str]:
                lines = []
                while True:
                    line = rfile.readline(4096)
                    if not line:
                        raise OSError("connection closed by the server")
                    lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
                    if line[3:4] != b"-":
                        return int(lines[-1][:3]), " ".join(l[4:] for l in lines)

            def command(cmd: str) -> tuple[int, str]:
                sock.sendall(cmd.encode() + b"\r\n")
                return reply()

            code, text = reply()
            if code == 220:
                code, text = command("EHLO client.icapm-lab.test")
            if code == 250:
                code, text = command(f"MAIL FROM:<{sender}>")
            if code == 250:
                for r in rcpts:
                    code, text = command(f"RCPT TO:<{r}>")
                    if code not in (250, 251):
                        break
                else:
                    code, text = command("DATA")
                    if code == 354:
                        sock.sendall(body + b".\r\n")
                        code, text = reply()
            try:
                if code != 250:
                    command("RSET")
                command("QUIT")
            except OSError:
                pass
    except OSError as e:
        code, text = 0, f"connection lost: {e}"
    return Outcome(mid, code, text, time.monotonic() - start)
