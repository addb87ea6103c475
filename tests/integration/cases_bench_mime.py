"""
cases_bench_mime.py - what the whole-message view costs the scanner

SUMMARY
    Registered into run.py (register(run)). Case whole_message_cost runs
    two icap-milters against the same c-icap (TLS) and clamd, one with
    ScanWholeMessage never (only the decoded MIME parts are scanned), one
    with ScanWholeMessage always (the raw message goes to the scanner as
    one more item, part 0, and the decoded base64 / quoted-printable text
    parts as part 0.text when there are any). Each milter sits behind its
    own private Postfix, so both run for the whole case and the rounds can
    alternate: never, always, three times over, each round ROUND_MESSAGES
    messages over 4 SMTP sessions, in three shapes in turn:
      - office: text, a CSV and a 16 KB binary (as mail.clean_multipart);
      - newsletter: multipart/alternative text + HTML, both
        quoted-printable as common mail clients send them, with a 100 KB
        PDF (a real FlateDecode stream) attached;
      - plain: a single text/plain part of about 3 KB.
    Every message's attachments and text are fresh random bytes: clamd
    caches clean results by hash, so repeated parts would cost nothing and
    make part 0 (always unique) look dearer than it is. Per message it
    prints clamd CPU (its /proc total), c-icap CPU (its process group),
    the milter's CPU and the RESPMODs in c-icap's access log, for both
    modes side by side and as a ratio.

    It fails only on real errors: a message not accepted or not delivered,
    an X-Virus-Status other than Clean, or the always milter not sending
    exactly the extra items its mode promises: one part 0 per message, plus
    one part 0.text per message with an encoded text part. No timing is
    asserted.
"""

from __future__ import annotations

import os
import textwrap
import time
import zlib
from email.message import EmailMessage

import mail
from cases_token import _self_tested
from lab import group_cpu

ROUND_MESSAGES = 150
ROUNDS = ("never", "always") * 3
SESSIONS = 4

WORDS = ("invoice quarterly report meeting schedule budget forecast customer "
         "delivery contract review update project summary attached please "
         "regards team office account payment order shipment").split()


def _words(n: int) -> str:
    """_words - n random words from WORDS (fresh per call, so no two
    messages share their text)."""
    raw = os.urandom(n)
    return " ".join(WORDS[b % len(WORDS)] for b in raw)


def _paragraphs(count: int, words: int = 40) -> list[str]:
    """_paragraphs - count paragraphs of random words, wrapped at 72
    columns as mail clients do (so plain ASCII text stays 7bit)."""
    return [textwrap.fill(_words(words).capitalize() + ".", 72) for _ in range(count)]


def _pdf(size: int) -> bytes:
    """_pdf - a small but well-formed PDF whose one page has a FlateDecode
    content stream of about size bytes (deflated random data)."""
    stream = zlib.compress(os.urandom(size), 6)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream +
            b"\nendstream"]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, xref))
    return bytes(out)


def office(subject: str) -> EmailMessage:
    """office - text, a CSV and a 16 KB binary, like mail.clean_multipart
    but with fresh contents."""
    msg = mail.new_message(subject, "Hello,\n\n" + "\n\n".join(_paragraphs(3)) +
                           "\n\n-- \nicap-milter benchmark\n")
    rows = ["region,q1,q2,q3,q4"] + [f"r{i},{b},{b * 3 % 97},{b * 7 % 89},{b * 11 % 83}"
                                     for i, b in enumerate(os.urandom(40))]
    msg.add_attachment("\n".join(rows) + "\n", subtype="csv", filename="report.csv")
    msg.add_attachment(os.urandom(16 * 1024), maintype="application",
                       subtype="octet-stream", filename="data.bin")
    return msg


def newsletter(subject: str) -> EmailMessage:
    """newsletter - multipart/alternative text + HTML (quoted-printable,
    with a non-ASCII character as real ones have) and a 100 KB PDF."""
    paras = _paragraphs(8)
    msg = mail.new_message(subject)
    msg.set_content("Dear customer \u2013 your monthly statement.\n\n" + "\n\n".join(paras) +
                    "\n", cte="quoted-printable")
    html = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{font-family:"
            "Arial,sans-serif;color:#222}td{padding:4px 8px}</style></head><body>"
            "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\"><tr><td><h1>Your "
            "monthly statement \u2013 overview</h1>" +
            "".join(f"<p style=\"margin:0 0 12px 0;line-height:1.4\">{p}</p>" for p in paras) +
            "<p><a href=\"https://example.com/account?utm_source=mail&amp;utm_medium=email\">"
            "View your account</a></p></td></tr></table></body></html>\n")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    msg.add_attachment(_pdf(100 * 1024), maintype="application", subtype="pdf",
                       filename="statement.pdf")
    return msg


def plain(subject: str) -> EmailMessage:
    """plain - one text/plain part of about 3 KB (7bit)."""
    return mail.new_message(subject, "Hi,\n\n" + "\n\n".join(_paragraphs(10)) +
                            "\n\nBest,\nA. Sender\n")


SHAPES = (("office", office), ("newsletter", newsletter), ("plain", plain))


def _encoded_text(msg: EmailMessage) -> bool:
    """_encoded_text - True when a text/* leaf is base64 or quoted-printable
    (ScanWholeMessage always then adds the 0.text item)."""
    return any(p.get_content_maintype() == "text" and
               str(p.get("Content-Transfer-Encoding", "")).strip().lower()
               in ("base64", "quoted-printable")
               for p in msg.walk() if not p.is_multipart())


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("whole_message_cost", f"scanner and milter CPU per message, ScanWholeMessage "
                                    f"never vs always: {len(ROUNDS)} alternating rounds of "
                                    f"{ROUND_MESSAGES} messages (office, newsletter with a "
                                    "100 KB PDF, plain text)")
    def case_whole_message_cost(s: run.Suite, ck: run.Check) -> None:
        lab = s.lab
        sock_always = f"unix:{lab.dir / 'whole-always.sock'}"
        pf_always = lab.start_postfix("postfix-whole-always", s.sink.port, sock_always)
        base = {**s.tls_settings(), "LogLevel": "info"}
        try:
            with s.milter("whole_message_cost_never", {**base, "ScanWholeMessage": "never"}) \
                    as m_never, \
                    s.milter("whole_message_cost_always", {**base, "ScanWholeMessage": "always"},
                             sock_always) as m_always:
                _self_tested(m_never, m_always)
                time.sleep(0.5)
                milters = {"never": (m_never, s.postfix.smtp_port),
                           "always": (m_always, pf_always.smtp_port)}
                keys = ("n", "clamd", "icap", "milter", "respmod", "text_views", "secs")
                total = {mode: dict.fromkeys(keys, 0.0) for mode in milters}
                rounds: list[str] = []
                for rnd, mode in enumerate(ROUNDS, 1):
                    m, port = milters[mode]
                    label = f"round {rnd} ({mode})"
                    msgs = [SHAPES[i % len(SHAPES)][1](f"whole message cost {rnd}.{i}")
                            for i in range(ROUND_MESSAGES)]
                    text_views = sum(1 for msg in msgs if _encoded_text(msg))
                    req0 = s.icap_requests()
                    cpu0 = m.cpu_seconds()
                    icap0, clamd0 = group_cpu(s.icap.pid), group_cpu(s.clamd.pid)
                    outs, secs = run._send_many(port, msgs, SESSIONS)
                    ok = [o for o in outs if o.code == 250]
                    ck.expect(len(ok) == len(msgs),
                              f"{label}: {len(ok)}/{len(msgs)} accepted; others: "
                              f"{[str(o) for o in outs if o.code != 250][:3]}")
                    have = run._wait_delivered(s.sink, {o.message_id for o in ok}, 120)
                    ck.expect(len(have) == len(ok), f"{label}: {len(have)}/{len(ok)} delivered")
                    time.sleep(0.5)   # the last RESPMODs' log lines, clamd's last work
                    cpu = m.cpu_seconds() - cpu0
                    icap_cpu = group_cpu(s.icap.pid) - icap0
                    clamd_cpu = group_cpu(s.clamd.pid) - clamd0
                    respmod = s.icap_requests() - req0
                    statuses: dict[str, int] = {}
                    for got in s.sink.messages():
                        if got.message_id in have:
                            st = ",".join(got.header_values("X-Virus-Status")) or "(none)"
                            statuses[st] = statuses.get(st, 0) + 1
                    ck.expect(statuses == {"Clean": len(have)},
                              f"{label}: X-Virus-Status of the delivered messages {statuses}, "
                              "expected Clean on each")
                    n = len(have) or 1
                    t = total[mode]
                    for k, v in (("n", len(have)), ("clamd", clamd_cpu), ("icap", icap_cpu),
                                 ("milter", cpu), ("respmod", respmod),
                                 ("text_views", text_views), ("secs", secs)):
                        t[k] += v
                    rounds.append(f"{mode} {1000 * clamd_cpu / n:.1f}/{1000 * icap_cpu / n:.1f}/"
                                  f"{1000 * cpu / n:.2f}")
                ck.note("per round, clamd/c-icap/milter CPU ms per message: " +
                        "; ".join(rounds))
                per = {mode: {k: (t[k] / t["n"] if t["n"] else 0.0) for k in keys}
                       for mode, t in total.items()}
                nv, al = per["never"], per["always"]

                def ratio(a: float, b: float) -> str:
                    return f"{a / b:.2f}x" if b > 0 else "n/a"

                for what, k, scale, fmt in (("clamd CPU", "clamd", 1000, ".2f"),
                                            ("c-icap CPU", "icap", 1000, ".2f"),
                                            ("milter CPU", "milter", 1000, ".2f")):
                    ck.note(f"{what} ms/message: never {scale * nv[k]:{fmt}}, always "
                            f"{scale * al[k]:{fmt}} ({ratio(al[k], nv[k])})")
                ck.note(f"RESPMODs/message: never {nv['respmod']:.2f}, always "
                        f"{al['respmod']:.2f}; {int(total['always']['n'])} messages per mode "
                        f"(1/3 each office, newsletter, plain); wall time per round: never "
                        f"{total['never']['secs'] / ROUNDS.count('never'):.1f}s, always "
                        f"{total['always']['secs'] / ROUNDS.count('always'):.1f}s")
                # always adds part 0 to every message and part 0.text to each
                # with a base64 / quoted-printable text part (the newsletters).
                t_nv, t_al = total["never"], total["always"]
                if t_nv["n"] == t_al["n"] == ROUND_MESSAGES * ROUNDS.count("always"):
                    extra = t_al["respmod"] - t_nv["respmod"]
                    want = t_al["n"] + t_al["text_views"]
                    ck.expect(extra == want,
                              f"always sent {int(extra)} RESPMODs more than never for "
                              f"{int(t_al['n'])} messages each, expected {int(want)} (one part 0 "
                              f"per message, one 0.text for each of the "
                              f"{int(t_al['text_views'])} with an encoded text part)")
                    ck.note(f"always - never: {int(extra)} RESPMODs for {int(t_al['n'])} "
                            f"messages = {int(t_al['n'])} part 0 + {int(t_al['text_views'])} "
                            "part 0.text")
        finally:
            lab.forget(pf_always)
