"""
cases_tls_stress.py - many multi-megabyte messages over ICAP-over-TLS

SUMMARY
    Registered into run.py (register(run)). Case tls_large_300: 304 clean
    messages, each with a random attachment of 2-3 MB (every 25th one of
    6-8 MB), go over 4 SMTP sessions through the real Postfix and
    icap-milter to a c-icap of their own over icaps://. Every message must
    get 250 and reach the sink with X-Virus-Status: Clean: no tempfail.

    c-icap 0.5.10 with OpenSSL 3 (Debian 12) cuts off large TLS uploads on
    a worker thread whose OpenSSL error queue still holds the "unexpected
    eof while reading" of an earlier client that closed without a TLS
    close_notify (see KNOWN SCANNER ISSUES in icap-milter(8)). Before the
    run the case puts every c-icap thread in that state on purpose, as
    killed clients and TLS health probes do in production, so any cut-off
    during the run has to be absorbed by the milter's ScanRetries. On
    loopback such cut-offs are rare (the milter seldom sends faster than
    c-icap reads): 0 to 2 per run of 608 parts were measured, each
    absorbed by one retry.

    Prints the figures: messages and megabytes sent, tempfails, the
    milter's ScanRetries counter (from its SIGUSR1 stats line), the
    "failed: ... trying again" warnings, messages/s and the run time.
"""

from __future__ import annotations

import os
import random
import re
import socket
import ssl
import threading
import time
from email.message import EmailMessage

import mail

SESSIONS = 4
TOTAL = 304                   # 76 per session
BIG_EVERY = 25                # every 25th message carries 6-8 MB
SMALL_MB = (2.0, 3.0)
BIG_MB = (6.0, 8.0)
# Enough to cover every c-icap worker thread: the lab's c-icap runs 2 to 4
# children of 10 threads.
POISON_CONNECTIONS = 40


def _attachment_size(i: int, rng: random.Random) -> int:
    """_attachment_size - bytes of random data for message i."""
    lo, hi = BIG_MB if i % BIG_EVERY == BIG_EVERY - 1 else SMALL_MB
    return int(rng.uniform(lo, hi) * 1024 * 1024)


def _make(i: int, size: int) -> EmailMessage:
    """_make - message i: a short text and a random attachment of size bytes."""
    msg = mail.new_message(f"tls stress {i} ({size / 1048576:.1f} MB)")
    msg.add_attachment(os.urandom(size), maintype="application", subtype="octet-stream",
                       filename=f"archive-{i:03d}.bin")
    return msg


def _send_lazily(port: int, sizes: list[int], sessions: int
                 ) -> tuple[list[mail.Outcome], float]:
    """_send_lazily - send one message per entry of sizes over parallel SMTP
    sessions (message i on session i % sessions). Each message is built just
    before it is sent, so memory holds one message per session, not all of
    them. Returns one outcome per message (code 0 when a session broke) and
    the wall-clock seconds."""
    outcomes: list[mail.Outcome] = []
    lock = threading.Lock()

    def worker(first: int) -> None:
        todo = list(range(first, len(sizes), sessions))
        done = 0
        try:
            with mail.SmtpClient(port) as client:
                for i in todo:
                    out = client.send(_make(i, sizes[i]))
                    done += 1
                    with lock:
                        outcomes.append(out)
        except Exception as e:   # the unsent rest counts as failed
            with lock:
                outcomes.extend(mail.Outcome(f"<unsent {i}>", 0, f"session failed: {e!r}", 0)
                                for i in todo[done:])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    return outcomes, time.monotonic() - t0


def _poison_threads(icap, ca_file: str, count: int) -> int:
    """_poison_threads - hold count TLS connections to c-icap at once, each
    having got an OPTIONS reply, then close them all with a bare TCP FIN (no
    close_notify), as a killed client or a TLS health probe does. Each
    leaves "unexpected eof while reading" in the OpenSSL error queue of the
    c-icap thread that served it. Returns how many got their reply."""
    ctx = ssl.create_default_context(cafile=ca_file)
    port = icap.tls_port
    request = (f"OPTIONS icap://localhost:{port}/{icap.SERVICE} ICAP/1.0\r\n"
               f"Host: localhost:{port}\r\nEncapsulated: null-body=0\r\n\r\n").encode()
    conns: list[ssl.SSLSocket] = []
    served = 0
    try:
        for _ in range(count):
            try:
                # Short: a connection beyond c-icap's free threads waits in
                # its queue and gets no reply while the others stay open.
                raw = socket.create_connection(("127.0.0.1", port), timeout=2)
                conns.append(ctx.wrap_socket(raw, server_hostname="localhost"))
            except (OSError, ssl.SSLError):
                break
        for c in conns:
            try:
                c.sendall(request)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    data = c.recv(4096)
                    if not data:
                        break
                    reply += data
                served += reply.startswith(b"ICAP/1.0 200")
            except (OSError, ssl.SSLError):
                pass
    finally:
        for c in conns:
            c.close()          # no unwrap(): no close_notify
    time.sleep(0.5)            # let c-icap read the EOFs
    return served


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("tls_large_300", "304 messages with 2-8 MB random attachments over 4 SMTP "
                               "sessions to c-icap over icaps://, every c-icap thread "
                               "first left with a stale TLS error: no tempfail, all "
                               "delivered Clean; prints retries and messages/s")
    def case_tls_large_300(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-tls-stress", s.clamd, tls=True)
        try:
            settings = {**s.tls_settings(icap), "LogLevel": "info"}
            with s.milter("tls_large_300", settings) as m:
                served = _poison_threads(icap, s.ca_file, POISON_CONNECTIONS)
                ck.expect(served >= 20, f"only {served}/{POISON_CONNECTIONS} OPTIONS answered "
                                        "before the run")
                rng = random.Random(300)
                sizes = [_attachment_size(i, rng) for i in range(TOTAL)]
                requests_before = s.icap_requests(icap)
                outs, secs = _send_lazily(s.postfix.smtp_port, sizes, SESSIONS)

                ok = [o for o in outs if o.code == 250]
                temp = [o for o in outs if 400 <= o.code < 500]
                other = [o for o in outs if o.code != 250 and not 400 <= o.code < 500]
                ck.expect(len(outs) == TOTAL, f"{len(outs)} outcomes for {TOTAL} messages")
                ck.expect(not temp, f"{len(temp)} tempfails: {[str(o) for o in temp[:3]]}")
                ck.expect(not other, f"{len(other)} neither accepted nor tempfailed: "
                                     f"{[str(o) for o in other[:3]]}")
                delivered = run._wait_delivered(s.sink, {o.message_id for o in ok}, 120)
                ck.expect(len(delivered) == len(ok),
                          f"only {len(delivered)}/{len(ok)} accepted messages delivered")
                by_id = {msg.message_id: msg for msg in s.sink.messages()}
                not_clean = [i for i in delivered
                             if by_id[i].header_values("X-Virus-Status") != ["Clean"]]
                ck.expect(not not_clean,
                          f"{len(not_clean)} delivered without exactly X-Virus-Status: Clean")

                line = m.stats()
                ck.expect(line, "no stats line after SIGUSR1")
                retries = m.counter(line, "ScanRetries")
                ck.expect(retries >= 0, f"stats line lacks ScanRetries: {line[:200]}")
                warnings = [l for l in m.log_text().splitlines()
                            if "failed: " in l and "trying again" in l]
                reasons: dict[str, int] = {}
                for l in warnings:
                    why = re.sub(r"^.*failed: ", "", l)
                    why = re.sub(r"; trying again.*$", "", why)
                    why = re.sub(r" after \d+ ms", "", why)
                    reasons[why] = reasons.get(why, 0) + 1
                megabytes = sum(sizes) / 1048576
                ck.note(f"{TOTAL} messages, {megabytes:.0f} MB of attachments "
                        f"({sum(1 for z in sizes if z > 5 * 1048576)} of 6-8 MB) over "
                        f"{SESSIONS} sessions; {served} c-icap threads given a stale TLS "
                        "error first")
                ck.note(f"accepted {len(ok)}, tempfailed {len(temp)}, other {len(other)}, "
                        f"delivered Clean {len(delivered) - len(not_clean)}")
                ck.note(f"ScanRetries (stats) {retries}; 'failed ... trying again' warnings "
                        f"{len(warnings)}; RESPMODs at c-icap "
                        f"{s.icap_requests(icap) - requests_before}")
                for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3]:
                    ck.note(f"  {n} x {why[:160]}")
                if temp or other:   # the last attempt's warning and the summary
                    final = [l for l in m.log_text().splitlines()
                             if ("failed: " in l and "trying again" not in l)
                             or "action=tempfail" in l]
                    for l in final[:6]:
                        ck.note(f"  milter: {l[:300]}")
                ck.note(f"{len(ok) / secs:.2f} msg/s, {megabytes / secs:.1f} MB/s; sending "
                        f"took {secs:.1f}s; milter VmHWM "
                        f"{(m.vm_hwm_kb() or 0) / 1024:.1f} MB")
        finally:
            s.lab.forget(icap)
