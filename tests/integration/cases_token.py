"""
cases_token.py - the scan token across two real Postfix + icap-milter hops

SUMMARY
    Registered into run.py (register(run)). Two Postfix instances, A
    relaying to B, each with its own icap-milter, its own Ed25519 key (made
    by icap-milterctl keygen) and its own c-icap (same clamd, so the same
    ISTag). B trusts A's public key. Case token_two_hop checks:
      - a clean message with attachments crosses A then B; B sends no
        RESPMOD (c-icap B's access log), logs token=trusted with A's
        thumbprint and counts Token.TrustedServer (SIGUSR1 "stats:" line);
      - the message as delivered, with one attachment byte changed and
        submitted to B directly, is rescanned at B (reason hash) and gets
        B's token in place of A's;
      - a message signed by a key B does not trust is rescanned and its
        token replaced (reason unknown-key);
      - after A's scanner signature changes, B rescans (reason
        scan-version); once B's scanner has the same definitions, B trusts
        A's tokens again;
      - once A's public key is removed from B's TrustedKeysDirectory and B
        reloads (SIGHUP), A's tokens are rejected (unknown-key).
    Case token_cost measures B's milter CPU per message (from
    /proc/PID/stat utime+stime) for 200 token-verified messages against
    200 messages B had to scan, and prints both.

HOW THE SIGNATURE CHANGES
    c-icap's virus_scan ISTag is an MD5 over the signature strings of every
    antivirus engine module loaded; editing the lab's custom signatures
    does not change it (clamd reports no database version for them). The
    case restarts a c-icap on the same ports with libclamav's engine module
    (clamav_mod) loaded besides clamd_mod: a real second engine with its
    own definitions, so the ISTag changes as it would after an engine or
    definitions update. clamav_mod reads its database only from libclamav's
    built-in directory (/var/lib/clamav), so that c-icap runs in a private
    mount namespace (unshare -m) where the lab's signature directory is
    bind-mounted over it; nothing outside the lab is changed.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import time
from contextlib import contextmanager
from email.utils import make_msgid
from pathlib import Path
from typing import Iterator, Optional

import mail
from lab import CIcap, Milter, group_cpu, poll

TOKEN_HEADER = "X-Scan-Token"
COST_MESSAGES = 200


class CIcapTwoEngines(CIcap):
    """CIcapTwoEngines - c-icap with libclamav's engine module loaded besides
    clamd's (so its ISTag differs), in a private mount namespace where the
    lab's signature directory stands in for /var/lib/clamav."""

    def __init__(self, *args, db_dir: Path, **kwargs) -> None:
        kwargs["extra_conf"] = list(kwargs.get("extra_conf", ())) + [
            "Module common clamav_mod.so",
        ]
        super().__init__(*args, **kwargs)
        self.db_dir = db_dir

    def argv(self) -> list[str]:
        # unshare and sh exec in turn: the PID the lab stops is c-icap's.
        inner = f"mount --bind {self.db_dir} /var/lib/clamav && exec c-icap -N -f {self.conf}"
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]


def _replace_cicap(lab, old: CIcap, two_engines: bool) -> CIcap:
    """_replace_cicap - stop old (by PID) and start a c-icap on the same
    ports and directory, with one engine module or two."""
    lab.forget(old)
    if two_engines:
        new = CIcapTwoEngines(old.name, old.dir, old.clamd, old.port, db_dir=lab.db.dir)
    else:
        new = CIcap(old.name, old.dir, old.clamd, old.port)
    return lab.track(new.start())


def _options_istag(icap: CIcap) -> str:
    """_options_istag - the ISTag c-icap announces now (OPTIONS by c-icap-client)."""
    out = subprocess.run(["c-icap-client", "-i", "127.0.0.1", "-p", str(icap.port), "-s",
                          icap.SERVICE, "-method", "OPTIONS", "-v"],
                         capture_output=True, text=True, timeout=20)
    m = re.search(r"ISTag:\s*\"?([^\"\r\n]+)", out.stdout + out.stderr)
    return m.group(1).strip() if m else ""


def _keygen(ctl: Path, out: Path) -> str:
    """_keygen - icap-milterctl keygen; returns the printed thumbprint."""
    res = subprocess.run([str(ctl), "keygen", str(out)], capture_output=True, text=True,
                         timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"icap-milterctl keygen failed: {res.stderr}")
    m = re.search(r"thumbprint:\s*(\S+)", res.stdout)
    return m.group(1) if m else ""


def _send_raw(port: int, raw: bytes, message_id: str) -> mail.Outcome:
    """_send_raw - submit bytes as they are (CRLF) in one SMTP session."""
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.icapm-lab.test",
                      timeout=120) as smtp:
        try:
            code, text = smtp.mail(mail.SENDER)
            if code == 250:
                code, text = smtp.rcpt(mail.RECIPIENT)
            if code in (250, 251):
                code, text = smtp.data(raw)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return mail.Outcome(message_id, code, " ".join(text.split("\n")), time.monotonic() - t0)


def _with_new_id(raw: bytes) -> tuple[bytes, str]:
    """_with_new_id - the message with a fresh Message-ID (so the sink can
    tell the copy from the original)."""
    mid = make_msgid("icapm-token", domain="client.icapm-lab.test")
    new, n = re.subn(rb"(?im)^Message-ID:[^\r\n]*(\r\n[ \t][^\r\n]*)*", b"Message-ID: " +
                     mid.encode(), raw, count=1)
    if n != 1:
        raise RuntimeError("no Message-ID header to replace")
    return new, mid


def _flip_attachment_byte(raw: bytes) -> bytes:
    """_flip_attachment_byte - change one base64 character in the middle of
    the data.bin attachment, so exactly one decoded byte differs."""
    at = raw.find(b'filename="data.bin"')
    body = raw.find(b"\r\n\r\n", at) + 4
    pos = body + 20
    old = raw[pos:pos + 1]
    new = b"B" if old != b"B" else b"C"
    return raw[:pos] + new + raw[pos + 1:]


def _tokens(got) -> list[str]:
    """_tokens - the token header values of a delivered message, unfolded."""
    return ["".join(v.split()) for v in got.header_values(TOKEN_HEADER)]


def _token_signer(ctl: Path, token: str) -> str:
    """_token_signer - keyThumbprint of a token, by icap-milterctl token decode."""
    res = subprocess.run([str(ctl), "token", "decode", token], capture_output=True,
                         text=True, timeout=30)
    m = re.search(r'"keyThumbprint":\s*"([^"]+)"', res.stdout)
    return m.group(1) if m else ""


def _token_scan_version(ctl: Path, token: str) -> str:
    """_token_scan_version - scanVersion of a token (decoded, not verified)."""
    res = subprocess.run([str(ctl), "token", "decode", token], capture_output=True,
                         text=True, timeout=30)
    m = re.search(r'"scanVersion":\s*"([^"]+)"', res.stdout)
    return m.group(1) if m else ""


def _stats(m: Milter, timeout: float = 10.0) -> dict[str, int]:
    """_stats - SIGUSR1 to the milter (by PID), then its newest "stats:" line
    as {name: value}."""
    line = m.stats(timeout)
    return {k: int(v) for k, v in re.findall(r"(Token\.[A-Za-z]+(?:\.[\w-]+)?): (\d+)", line)}


def _self_tested(*milters: Milter, timeout: float = 60.0) -> None:
    """_self_tested - wait until each milter's scanner self-test is over:
    its canaries are RESPMODs too, and must not be counted as mail."""
    done = re.compile(r"self-test passed|self-test: misses|did not detect the EICAR")
    for m in milters:
        poll(lambda: done.search(m.log_text()), timeout)


def _icap_quiet(s, icap, settle: float = 1.0, timeout: float = 15.0) -> None:
    """_icap_quiet - wait until c-icap's access log has had no new RESPMOD
    line for settle seconds: c-icap writes a request's line after the
    whole body is read, so the 50 MB self-test canary can be logged a
    little after the milter has already logged its verdict."""
    deadline = time.monotonic() + timeout
    last, since = s.icap_requests(icap), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = s.icap_requests(icap)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return


def _summary_for(m: Milter, qid: Optional[str], timeout: float = 10.0) -> str:
    """_summary_for - the milter's summary line naming queue id qid ("" if none)."""
    if not qid:
        return ""
    poll(lambda: m.summary_lines(qid), timeout)
    lines = m.summary_lines(qid)
    return lines[0] if lines else ""


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    class Hops:
        """Hops - Postfix A -> Postfix B -> sink, a milter and a c-icap for
        each, keys A, B and C (C trusted by nobody), B trusting A."""

        def __init__(self, s: run.Suite, tag: str) -> None:
            self.s, self.lab = s, s.lab
            self.dir = self.lab.dir / f"token-{tag}"
            self.dir.mkdir(exist_ok=True)
            self.ctl = Path(s.binary).parent / "icap-milterctl"
            keys = self.dir / "keys"
            keys.mkdir(exist_ok=True)
            self.thumb = {k: _keygen(self.ctl, keys / k) for k in "abc"}
            self.trusted_b = self.dir / "trusted-b"
            self.trusted_b.mkdir(exist_ok=True)
            (self.trusted_b / "a.pem").write_bytes((keys / "a.pub").read_bytes())
            self.keys = keys
            self.icap_a = self.lab.start_cicap(f"cicap-{tag}-a", s.clamd, tls=False)
            self.icap_b = self.lab.start_cicap(f"cicap-{tag}-b", s.clamd, tls=False)
            self.sock_a, self.sock_b = (f"unix:{self.lab.dir / f'token-{tag}-{x}.sock'}"
                                        for x in "ab")
            self.pf_b = self.lab.start_postfix(f"postfix-{tag}-b", s.sink.port, self.sock_b)
            self.pf_a = self.lab.start_postfix(f"postfix-{tag}-a", self.pf_b.smtp_port,
                                               self.sock_a)

        def settings_a(self, key: str = "a") -> dict[str, object]:
            """settings_a - milter A: scans with c-icap A, signs with key."""
            return {"IcapServer": self.icap_a.url(tls=False), "LogLevel": "info",
                    "HealthCheckInterval": "1s",
                    "TokenSigningKey": str(self.keys / f"{key}.key")}

        def settings_b(self) -> dict[str, object]:
            """settings_b - milter B: scans with c-icap B, signs with key B,
            trusts A."""
            return {"IcapServer": self.icap_b.url(tls=False), "LogLevel": "info",
                    "HealthCheckInterval": "1s",
                    "TokenSigningKey": str(self.keys / "b.key"),
                    "TrustedKeysDirectory": str(self.trusted_b)}

        def close(self) -> None:
            for c in (self.pf_a, self.pf_b, self.icap_a, self.icap_b):
                self.lab.forget(c)

    @contextmanager
    def hops(s: run.Suite, tag: str) -> Iterator[Hops]:
        h = Hops(s, tag)
        try:
            yield h
        finally:
            h.close()

    def through_a(s, ck, h: Hops, ma, mb, label: str):
        """through_a - a clean multipart via A and B; returns (outcome, the
        delivered message, B's summary line, B's RESPMOD count added)."""
        _self_tested(ma, mb)
        _icap_quiet(s, h.icap_b)
        before_b = s.icap_requests(h.icap_b)
        msg = mail.clean_multipart(label)
        out = mail.send_one(h.pf_a.smtp_port, msg)
        got = s.expect_delivered(ck, out, ma, sent=msg, label=label, timeout=60)
        qid_b = h.pf_b.queue_id_for(out.message_id)
        line_b = _summary_for(mb, qid_b)
        ck.expect(line_b, f"{label}: no summary line at hop B (queue id {qid_b})")
        return out, got, line_b, s.icap_requests(h.icap_b) - before_b

    @run.case("token_two_hop", "scan token over two Postfix + icap-milter hops: B trusts A's "
                               "token without any RESPMOD; a changed attachment byte, an "
                               "untrusted signer and a new scanner signature each make B "
                               "rescan and replace the token")
    def case_token_two_hop(s: run.Suite, ck: run.Check) -> None:
        with hops(s, "hop") as h:
            ma_cm = s.milter("token_two_hop_a", h.settings_a(), h.sock_a)
            ma = ma_cm.__enter__()
            try:
                with s.milter("token_two_hop_b", h.settings_b(), h.sock_b) as mb:
                    ck.note("thumbprints: A " + h.thumb["a"] + ", B " + h.thumb["b"])
                    # 1. clean, with attachments, A then B: no RESPMOD at B.
                    before_a = s.icap_requests(h.icap_a)
                    out, got, line_b, respmod_b = through_a(s, ck, h, ma, mb, "clean via A and B")
                    respmod_a = s.icap_requests(h.icap_a) - before_a
                    ck.expect(respmod_a >= 3, f"hop A sent {respmod_a} RESPMODs, expected >= 3 "
                                              "(text, csv, binary)")
                    ck.expect(respmod_b == 0, f"hop B sent {respmod_b} RESPMODs for a message "
                                              "with a valid token, expected 0")
                    ck.expect(f"token=trusted signer={h.thumb['a']}" in line_b,
                              f"hop B summary lacks token=trusted signer=<A>: {line_b}")
                    stats = _stats(mb)
                    ck.expect(stats.get("Token.TrustedServer") == 1,
                              f"hop B stats: Token.TrustedServer {stats.get('Token.TrustedServer')},"
                              f" expected 1 ({stats})")
                    stats_a = _stats(ma)
                    ck.expect(stats_a.get("Token.Self") == 1,
                              f"hop A stats: Token.Self {stats_a.get('Token.Self')}, expected 1")
                    ck.note(f"clean via A and B: RESPMOD at A {respmod_a}, at B {respmod_b}; "
                            f"B stats {stats}")
                    if got is None:
                        return
                    toks = _tokens(got)
                    ck.expect(len(toks) == 1 and _token_signer(h.ctl, toks[0]) == h.thumb["a"],
                              f"delivered message should carry A's token only, has {len(toks)}")
                    ck.expect(max(len(l) for l in got.raw().split(b"\r\n")) < 998,
                              "a delivered header line is 998 characters or longer")
                    # icap-milterctl token verify agrees offline (B's config, no scanner asked).
                    eml = h.dir / "delivered.eml"
                    eml.write_bytes(got.raw())
                    sv = _token_scan_version(h.ctl, toks[0])
                    res = subprocess.run([str(h.ctl), "token", "verify", str(eml), "-c",
                                          str(mb.conf), "--scan-version", sv],
                                         capture_output=True, text=True, timeout=60)
                    ck.expect(res.returncode == 0 and "OK signer=" in res.stdout,
                              f"icap-milterctl token verify failed: {res.stdout} {res.stderr}")

                    # 2. one attachment byte changed between A and B: B rescans.
                    raw, mid = _with_new_id(_flip_attachment_byte(got.raw()))
                    before = s.icap_requests(h.icap_b)
                    out2 = _send_raw(h.pf_b.smtp_port, raw, mid)
                    ck.expect(out2.code == 250, f"tampered copy to B: {out2}")
                    got2 = s.sink.wait_for(mid, 60)
                    line2 = _summary_for(mb, out2.queue_id)
                    added = s.icap_requests(h.icap_b) - before
                    ck.expect("token=rejected:hash" in line2,
                              f"tampered copy: B summary lacks token=rejected reason=hash: {line2}")
                    ck.expect(added >= 3, f"tampered copy: B sent {added} RESPMODs, expected >= 3")
                    if ck.expect(got2 is not None, "tampered copy not delivered"):
                        t2 = _tokens(got2)
                        ck.expect(len(t2) == 1 and _token_signer(h.ctl, t2[0]) == h.thumb["b"],
                                  f"tampered copy should carry B's new token only: {len(t2)} "
                                  "token header(s)")
                        eml2 = h.dir / "tampered.eml"
                        eml2.write_bytes(raw)
                        res = subprocess.run([str(h.ctl), "token", "verify", str(eml2), "-c",
                                              str(mb.conf), "--scan-version", sv],
                                             capture_output=True, text=True, timeout=60)
                        ck.expect(res.returncode == 1 and "FAIL hash" in res.stdout,
                                  f"icap-milterctl token verify on the tampered copy: {res.stdout}")
                    ck.note(f"attachment byte changed: B {line2.split('verdicts=')[-1][:90]}...")

                    # 2b. two token headers (the valid one twice): all removed, rescanned.
                    raw = got.raw()
                    at = raw.find(b"X-Scan-Token:")
                    end = at + 1
                    while True:
                        end = raw.find(b"\r\n", end) + 2
                        if raw[end:end + 1] not in (b" ", b"\t"):
                            break
                    raw, mid = _with_new_id(raw[:end] + raw[at:end] + raw[end:])
                    before = s.icap_requests(h.icap_b)
                    out2b = _send_raw(h.pf_b.smtp_port, raw, mid)
                    got2b = s.sink.wait_for(mid, 60)
                    line2b = _summary_for(mb, out2b.queue_id)
                    ck.expect("token=rejected:multiple" in line2b and
                              s.icap_requests(h.icap_b) - before >= 3,
                              f"two token headers: B should reject and rescan: {line2b}")
                    if ck.expect(got2b is not None, "copy with two tokens not delivered"):
                        t2b = _tokens(got2b)
                        ck.expect(len(t2b) == 1 and _token_signer(h.ctl, t2b[0]) == h.thumb["b"],
                                  f"two token headers: {len(t2b)} left, expected B's one")

                    # 3. signed by a key B does not trust: rescanned, token replaced.
                    ma_cm.__exit__(None, None, None)
                    ma_cm = s.milter("token_two_hop_c", h.settings_a("c"), h.sock_a)
                    mc = ma_cm.__enter__()
                    out3, got3, line3, added3 = through_a(s, ck, h, mc, mb, "signed by C (untrusted)")
                    ck.expect("token=rejected:unknown-key" in line3,
                              f"untrusted signer: B summary lacks reason=unknown-key: {line3}")
                    ck.expect(added3 >= 3, f"untrusted signer: B sent {added3} RESPMODs, "
                                           "expected >= 3")
                    if got3 is not None:
                        t3 = _tokens(got3)
                        ck.expect(len(t3) == 1 and _token_signer(h.ctl, t3[0]) == h.thumb["b"],
                                  "untrusted signer: C's token was not replaced by B's")
                    ma_cm.__exit__(None, None, None)
                    ma_cm = s.milter("token_two_hop_a2", h.settings_a(), h.sock_a)
                    ma = ma_cm.__enter__()

                    # 4. A's scanner signature changes: B (old definitions) rescans.
                    old_tag = _options_istag(h.icap_a)
                    h.icap_a = _replace_cicap(s.lab, h.icap_a, two_engines=True)
                    new_tag = _options_istag(h.icap_a)
                    ck.expect(old_tag and new_tag and old_tag != new_tag,
                              f"c-icap A's ISTag did not change: {old_tag!r} -> {new_tag!r}")
                    ck.note(f"c-icap A ISTag {old_tag} -> {new_tag} (clamav_mod loaded); "
                            f"c-icap B still {_options_istag(h.icap_b)}")
                    time.sleep(3)   # HealthCheckInterval 1s: A learns the new signature
                    out4, got4, line4, added4 = through_a(s, ck, h, ma, mb, "after A's update")
                    ck.expect("token=rejected:scan-version" in line4,
                              f"new signature at A: B summary lacks reason=scan-version: {line4}")
                    ck.expect(added4 >= 3, f"new signature at A: B sent {added4} RESPMODs")
                    if got4 is not None:
                        t4 = _tokens(got4)
                        ck.expect(len(t4) == 1 and _token_signer(h.ctl, t4[0]) == h.thumb["b"],
                                  "new signature at A: B did not replace the token")
                    # ... and once B's scanner has the same definitions, B trusts A again.
                    h.icap_b = _replace_cicap(s.lab, h.icap_b, two_engines=True)
                    time.sleep(3)
                    out5, got5, line5, added5 = through_a(s, ck, h, ma, mb, "both updated")
                    ck.expect(f"token=trusted signer={h.thumb['a']}" in line5 and added5 == 0,
                              f"both scanners updated: B should trust A again without RESPMOD "
                              f"({added5}): {line5}")
                    # 5. A's key retired at B (file removed, SIGHUP): rejected as unknown-key.
                    (h.trusted_b / "a.pem").unlink()
                    os.kill(mb.pid, signal.SIGHUP)
                    mb.wait_log("reload: configuration", 10)
                    out6, got6, line6, added6 = through_a(s, ck, h, ma, mb, "A retired at B")
                    ck.expect("token=rejected:unknown-key" in line6 and added6 >= 3,
                              f"A's key removed and B reloaded: expected unknown-key and a rescan "
                              f"({added6} RESPMODs): {line6}")
            finally:
                ma_cm.__exit__(None, None, None)

    @run.case("token_cost", f"milter B's CPU per message: {COST_MESSAGES} messages with A's "
                            f"valid token (no scan) against {COST_MESSAGES} it must scan")
    def case_token_cost(s: run.Suite, ck: run.Check) -> None:
        with hops(s, "cost") as h:
            with s.milter("token_cost_a", h.settings_a(), h.sock_a) as ma, \
                    s.milter("token_cost_b", h.settings_b(), h.sock_b) as mb:
                _self_tested(ma, mb)
                _icap_quiet(s, h.icap_b)
                figures = {}
                for label, port in (("token-verified at B", h.pf_a.smtp_port),
                                    ("scanned at B", h.pf_b.smtp_port)):
                    msgs = [mail.clean_multipart(f"token cost {label} {i}")
                            for i in range(COST_MESSAGES)]
                    before_b = s.icap_requests(h.icap_b)
                    cpu0 = mb.cpu_seconds()
                    cpu_a0 = ma.cpu_seconds()
                    icap0, clamd0 = group_cpu(h.icap_b.pid), group_cpu(s.clamd.pid)
                    outs, secs = run._send_many(port, msgs, 4)
                    ok = [o for o in outs if o.code == 250]
                    ck.expect(len(ok) == COST_MESSAGES, f"{label}: {len(ok)}/{COST_MESSAGES} "
                                                        "accepted")
                    have = run._wait_delivered(s.sink, {o.message_id for o in ok}, 120)
                    ck.expect(len(have) == len(ok), f"{label}: {len(have)}/{len(ok)} delivered")
                    time.sleep(0.5)
                    cpu = mb.cpu_seconds() - cpu0
                    cpu_a = ma.cpu_seconds() - cpu_a0
                    respmod = s.icap_requests(h.icap_b) - before_b
                    # clamd is shared: in the token phase its work is A's scans.
                    icap_cpu = group_cpu(h.icap_b.pid) - icap0
                    clamd_cpu = group_cpu(s.clamd.pid) - clamd0
                    per = 1000 * cpu / max(1, len(have))
                    figures[label] = per
                    ck.note(f"{label}: {len(have)} messages (text + csv + 16 KB binary), "
                            f"milter B CPU {cpu:.2f}s = {per:.2f} ms/message, RESPMOD at B "
                            f"{respmod}; c-icap B CPU {1000 * icap_cpu / max(1, len(have)):.2f} ms/message, "
                            f"clamd (shared with A) {1000 * clamd_cpu / max(1, len(have)):.2f} "
                            "ms/message" + (f"; milter A (scan + sign) {1000 * cpu_a / max(1, len(have)):.2f}"
                                            " ms/message" if "token" in label else ""))
                    if "token" in label:
                        ck.expect(respmod == 0, f"{label}: B sent {respmod} RESPMODs")
                stats = _stats(mb)
                ck.expect(stats.get("Token.TrustedServer") == COST_MESSAGES,
                          f"B Token.TrustedServer {stats.get('Token.TrustedServer')}, "
                          f"expected {COST_MESSAGES}")
                if len(figures) == 2 and figures["token-verified at B"] > 0:
                    ck.note(f"a token-verified message costs B "
                            f"{figures['token-verified at B']:.2f} ms CPU, a scanned one "
                            f"{figures['scanned at B']:.2f} ms "
                            f"({figures['scanned at B'] / figures['token-verified at B']:.1f}x)")
