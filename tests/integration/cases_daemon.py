"""
cases_daemon.py - daemon behaviour: reload, statistics, failing closed

SUMMARY
    Registered into run.py (register(run)). A reload must swap in a good
    new configuration for new SMTP sessions, and a broken file must be
    refused with its errors logged while the old configuration keeps
    working. SIGUSR1 must log the counters. A forged scan-token header is
    removed even when the milter has no token keys. An MTA that withholds
    a needed action (spoken to the real binary by a scripted MTA, since
    Postfix always offers everything) gets tempfail for its messages, not
    a dropped connection that some MTAs answer with unscanned delivery.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from typing import Optional

import mail

# Milter protocol (libmilter's mfapi.h / mfdef.h) values the scripted MTA uses.
SMFIF_ADDHDRS, SMFIF_CHGBODY, SMFIF_ADDRCPT, SMFIF_DELRCPT, SMFIF_CHGHDRS, SMFIF_QUARANTINE = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20)
ALL_ACTIONS = 0x1FF
ALL_STEPS = 0x1FFFFF   # what Postfix 3.x offers with milter_protocol = 6


class ScriptedMta:
    """ScriptedMta - the MTA side of the milter protocol on a unix socket,
    one command at a time: enough to see what the real binary answers."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)

    def close(self) -> None:
        """close - say QUIT (if still connected) and close."""
        try:
            self.send(b"Q")
        except OSError:
            pass
        self.sock.close()

    def send(self, cmd: bytes, data: bytes = b"") -> None:
        """send - one packet: length, command byte, data."""
        self.sock.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _exact(self, n: int) -> Optional[bytes]:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def reply(self) -> tuple[str, bytes]:
        """reply - the next packet as (command letter, data); ("closed", b"")
        when the milter hung up."""
        try:
            head = self._exact(4)
            body = self._exact(struct.unpack(">I", head)[0]) if head else None
        except OSError as e:
            return (f"error: {e}", b"")
        if not body:
            return ("closed", b"")
        return (chr(body[0]), body[1:])

    def negotiate(self, actions: int, steps: int = ALL_STEPS) -> tuple[str, bytes]:
        """negotiate - SMFIC_OPTNEG offering protocol 6, actions and steps."""
        self.send(b"O", struct.pack(">III", 6, actions, steps))
        return self.reply()

    def connect(self) -> tuple[str, bytes]:
        """connect - SMFIC_CONNECT for client.example[192.0.2.1]."""
        self.send(b"C", b"client.example\0" + b"4" + struct.pack(">H", 25) + b"192.0.2.1\0")
        return self.reply()

    def mail(self) -> tuple[str, bytes]:
        """mail - SMFIC_MAIL <sender@example.com>."""
        self.send(b"M", b"<sender@example.com>\0")
        return self.reply()


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
            ck.expect(m.wait_log("reload: configuration"), "no 'reload: configuration ... loaded' log line")
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
            ck.expect(m.wait_log("keeping the running configuration"),
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
            ck.expect(m.wait_log("stats: "), "no stats line after SIGUSR1")
            line = next((l for l in m.log_text().splitlines() if "stats: " in l), "")
            for field in ("Examined: 2", "VirusFree: 1", "Infected: 1", "InScannerQueue: 0"):
                ck.expect(field in line, f"stats line lacks '{field}': {line}")
            ck.note(line.split("stats: ", 1)[-1][:200])

    @run.case("token_header_no_keys", "a forged X-Scan-Token reaching a milter with no TokenSigningKey "
                                      "and no TrustedKeysDirectory is removed before delivery")
    def case_token_header_no_keys(s: run.Suite, ck: run.Check) -> None:
        with s.milter("token_header_no_keys", {"IcapServer": s.icap.url(tls=False)}) as m:
            msg = mail.clean_multipart("forged scan token, milter without keys")
            msg["X-Scan-Token"] = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJmb3JnZWQiOnRydWV9.Zm9yZ2Vk"
            msg["x-scan-token"] = "second.forged.copy"
            got = s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m,
                                     label="clean with forged tokens")
            if got is not None:
                left = got.header_values("X-Scan-Token")
                ck.expect(not left, f"forged token header(s) delivered: {left}")

    @run.case("negotiate_missing_actions", "a scripted MTA withholding SMFIF_CHGHDRS: the real binary keeps "
                                           "the connection, logs what is missing and tempfails MAIL FROM; "
                                           "with every action offered MAIL FROM continues")
    def case_negotiate_missing_actions(s: run.Suite, ck: run.Check) -> None:
        sock = s.lab.dir / "milter-negotiate.sock"
        with s.milter("negotiate_missing_actions", {"IcapServer": s.icap.url(tls=False)},
                      f"unix:{sock}") as m:
            mta = ScriptedMta(str(sock))
            try:
                cmd, data = mta.negotiate(ALL_ACTIONS & ~SMFIF_CHGHDRS)
                ck.expect(cmd == "O", f"withheld CHGHDRS: negotiation answered {cmd!r} "
                                      "(the milter dropped the connection)")
                if cmd == "O" and len(data) >= 12:
                    _, actions, _ = struct.unpack(">III", data[:12])
                    ck.expect(not actions & SMFIF_CHGHDRS, f"milter asked for CHGHDRS (0x{actions:x}) "
                                                            "though it was not offered")
                cmd, data = mta.connect()
                ck.expect(cmd == "c", f"withheld CHGHDRS: connect answered {cmd!r} {data!r}")
                cmd, data = mta.mail()
                tempfail = cmd == "t" or (cmd == "y" and data.startswith(b"4"))
                ck.expect(tempfail, f"withheld CHGHDRS: MAIL FROM answered {cmd!r} {data!r}, "
                                    "expected tempfail")
                ck.note(f"MAIL FROM without CHGHDRS: {cmd} {data.rstrip(bytes(1)).decode(errors='replace')}")
            finally:
                mta.close()
            ck.expect(m.wait_log("SMFIF_CHGHDRS"), "no log line naming the missing SMFIF_CHGHDRS")
            line = next((l for l in m.log_text().splitlines() if "negotiate:" in l), "")
            if line:
                ck.note(line.split(": ", 1)[-1][:200])

            mta = ScriptedMta(str(sock))
            try:
                cmd, _ = mta.negotiate(ALL_ACTIONS)
                ck.expect(cmd == "O", f"full offer: negotiation answered {cmd!r}")
                cmd, _ = mta.connect()
                ck.expect(cmd == "c", f"full offer: connect answered {cmd!r}")
                cmd, data = mta.mail()
                ck.expect(cmd == "c", f"full offer: MAIL FROM answered {cmd!r} {data!r}, expected continue")
            finally:
                mta.close()
