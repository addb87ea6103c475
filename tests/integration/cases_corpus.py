"""
cases_corpus.py - the adversarial MIME corpus through the real components

SUMMARY
    Registered into run.py (register(run)). One case, mime_corpus, runs one
    milter (ICAP over TLS) and sends every message listed in
    tests/data/mime/corpus/MANIFEST (made by tests/data/mime/make_corpus.py)
    byte for byte through Postfix with mail.send_raw, each with a fresh
    Message-ID put in place of <CORPUS-ID@icapm-lab.test>. Each outcome
    must match the message's expect column:
        infected   550 5.7.1 naming the test virus, nothing delivered
        ambiguous  550 5.6.0, action=reject, nothing delivered
        rejected   either of the two (a payload in an ambiguous structure)
        clean      250, delivered with exactly one X-Virus-Status: Clean
    Before that, send_raw itself is checked against the sink directly
    (no Postfix): bare CR, bare LF, NUL and lines starting with '.' must
    arrive unchanged. One note per message and a count at the end.
    A second case, mime_whole_message_modes, sends three corpus messages
    through milters with ScanWholeMessage never, ambiguous and always:
    a well-formed clean message gets part 0 only with always; one without
    its close delimiter (suspect) fails closed with never and is Clean,
    with part 0 scanned, with ambiguous; an HTML alternative holding
    EICAR in base64 is found only through always's part 0.text.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import mail
from lab import VIRUS_NAME_RE

CORPUS = Path(__file__).resolve().parent.parent / "data" / "mime" / "corpus"
PLACEHOLDER = b"<CORPUS-ID@icapm-lab.test>"
EXPECTS = ("infected", "ambiguous", "rejected", "clean")


@dataclass
class Entry:
    """Entry - one MANIFEST line."""
    file: str
    cls: str
    expect: str
    what: str


def read_manifest(path: Path = CORPUS / "MANIFEST") -> list[Entry]:
    """read_manifest - the entries, skipping comments and blank lines."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 4 or fields[2] not in EXPECTS:
            raise ValueError(f"{path}: bad line: {line!r}")
        out.append(Entry(*fields))
    return out


def verdict(out: mail.Outcome) -> str:
    """verdict - what the reply says: infected, ambiguous, accepted or other."""
    if out.code == 550 and "5.7.1" in out.text and VIRUS_NAME_RE.search(out.text):
        return "infected"
    if out.code == 550 and "5.6.0" in out.text:
        return "ambiguous"
    if out.code == 250:
        return "accepted"
    return f"other({out.code})"


def note_rewrite(ck, name: str, sent: bytes, delivered: bytes) -> None:
    """note_rewrite - a note when the delivered body is not the body sent
    (Postfix turns a stray CR or LF into a space or CRLF, and cuts header
    lines at a NUL): what the milter saw was not what the corpus holds."""
    sent_body = sent.split(b"\r\n\r\n", 1)[-1]
    got_body = delivered.split(b"\r\n\r\n", 1)[-1]
    if sent_body != got_body:
        i = next((i for i, (a, b) in enumerate(zip(sent_body, got_body)) if a != b),
                 min(len(sent_body), len(got_body)))
        ck.note(f"     {name}: the delivered body differs from the sent one at byte {i}: "
                f"sent {sent_body[max(0, i - 8):i + 12]!r}, got {got_body[max(0, i - 8):i + 12]!r}")


def register(run) -> None:
    """register - add this module's case to run.py's list."""

    @run.case("mime_corpus", "the adversarial MIME corpus (tests/data/mime/corpus) sent "
                             "byte-exact: each message infected, ambiguous, rejected or "
                             "delivered Clean as its MANIFEST line says")
    def case_mime_corpus(s: run.Suite, ck: run.Check) -> None:
        entries = read_manifest()
        if not ck.expect(entries, "the corpus MANIFEST lists no messages"):
            return
        missing = [e.file for e in entries if not (CORPUS / e.file).is_file()]
        if not ck.expect(not missing, f"MANIFEST names missing files: {missing}"):
            return
        tag = f"{os.getpid()}.{int(time.time())}"

        # send_raw must not touch the bytes: check it against the sink alone.
        probe = (b"From: <" + mail.SENDER.encode() + b">\r\nSubject: send_raw probe\r\n"
                 b"Message-ID: <probe." + tag.encode() + b"@icapm-lab.test>\r\n\r\n"
                 b".dot first\r\n..two dots\r\nbare CR\rstill one line\r\nbare LF\nnext\r\n"
                 b"NUL\0byte\r\n.\r\n")
        out = mail.send_raw(s.sink.port, probe)
        got = s.sink.wait_for(out.message_id, 10) if out.code == 250 else None
        ck.expect(got is not None and got.raw() == probe,
                  f"send_raw is not byte-exact (sink reply {out}; stored "
                  f"{got.raw()[-80:] if got else None!r})")

        counts = {"infected": 0, "ambiguous": 0, "clean": 0, "other": 0}
        mismatches: list[str] = []
        with s.milter("mime_corpus", s.tls_settings()) as m:
            for i, e in enumerate(entries):
                raw = (CORPUS / e.file).read_bytes()
                mid = f"<corpus.{tag}.{i:03d}@icapm-lab.test>"
                data = raw.replace(PLACEHOLDER, mid.encode(), 1)
                if not ck.expect(data != raw, f"{e.file}: no {PLACEHOLDER.decode()} to replace"):
                    continue
                label = f"{e.file} [{e.expect}]"
                before = len(ck.failures)
                out = mail.send_raw(s.postfix.smtp_port, data)
                got_verdict = verdict(out)
                status = None
                if got_verdict == "accepted":
                    got = s.sink.wait_for(mid, 30)
                    status = got.header_values("X-Virus-Status") if got else None
                    got_verdict = (f"delivered {','.join(status)}" if status
                                   else "delivered no-status" if got else "accepted, not delivered")
                    if got is not None:
                        note_rewrite(ck, e.file, data, got.raw())
                    if status == ["Clean"]:
                        counts["clean"] += 1
                    else:
                        counts["other"] += 1
                elif got_verdict in ("infected", "ambiguous"):
                    counts[got_verdict] += 1
                else:
                    counts["other"] += 1

                if e.expect == "clean":
                    ck.expect(status == ["Clean"],
                              f"{label}: expected delivery with X-Virus-Status Clean, "
                              f"got {got_verdict}: {out}")
                elif e.expect == "infected" or (e.expect == "rejected"
                                                and got_verdict == "infected"):
                    if ck.expect(got_verdict == "infected",
                                 f"{label}: expected 550 5.7.1 with the virus name, "
                                 f"got {got_verdict}: {out}"):
                        s.expect_rejected(ck, out, m, label)
                elif ck.expect(got_verdict == "ambiguous",
                               f"{label}: expected 550 5.6.0"
                               f"{' (or 5.7.1)' if e.expect == 'rejected' else ''}, "
                               f"got {got_verdict}: {out}"):
                    s.expect_not_delivered(ck, out, m, "reject", label)
                ok = len(ck.failures) == before
                if not ok:
                    mismatches.append(e.file)
                ck.note(f"{'ok  ' if ok else 'MISS'} {e.file}: expect {e.expect}, "
                        f"got {got_verdict} ({out.code} {out.text[:160]})")
        ck.note(f"corpus: {len(entries)} messages; detected (infected) {counts['infected']}, "
                f"failed closed (ambiguous) {counts['ambiguous']}, clean delivered "
                f"{counts['clean']}, other {counts['other']}; mismatches {len(mismatches)}")

    def send_corpus(s: run.Suite, name: str, tag: str) -> mail.Outcome:
        """send_corpus - one corpus message with a fresh Message-ID."""
        mid = f"<modes.{tag}.{name}.{os.getpid()}.{time.time_ns()}@icapm-lab.test>"
        data = (CORPUS / name).read_bytes().replace(PLACEHOLDER, mid.encode(), 1)
        return mail.send_raw(s.postfix.smtp_port, data)

    def summary_of(s, m, out: mail.Outcome) -> str:
        """summary_of - the milter's summary line for out ("" if none)."""
        qid = s.postfix.queue_id_for(out.message_id)
        return (m.summary_lines(qid) or [""])[0] if qid else ""

    @run.case("mime_whole_message_modes", "ScanWholeMessage never / ambiguous / always: "
                                          "part 0 only where the mode says, suspect MIME "
                                          "fails closed without it, base64 HTML EICAR "
                                          "found through part 0.text")
    def case_mime_whole_message_modes(s: run.Suite, ck: run.Check) -> None:
        ok_clean = "client_thunderbird_clean.eml"
        noclose = "boundary_noclose_clean.eml"
        html_b64 = "alternative_htmlb64_eicar.eml"
        for f in (ok_clean, noclose, html_b64):
            if not ck.expect((CORPUS / f).is_file(), f"corpus file {f} is missing"):
                return
        for mode in ("never", "ambiguous", "always"):
            with s.milter(f"modes_{mode}", {**s.tls_settings(), "ScanWholeMessage": mode}) as m:
                # Well-formed mail: part 0 with always only.
                out = send_corpus(s, ok_clean, mode)
                s.expect_summary(ck, m, s.postfix.queue_id_for(out.message_id), "accept", f"{mode}: clean")
                line = summary_of(s, m, out)
                has_zero = " 0:clean" in line
                ck.expect(out.code == 250 and has_zero == (mode == "always"),
                          f"{mode}: well-formed clean message: {out}; part 0 scanned: {has_zero} "
                          f"(expected {mode == 'always'}): {line}")
                ck.note(f"{mode}: {ok_clean}: {out.code}, part 0 scanned: {has_zero}")
                # Suspect MIME (no close delimiter).
                out = send_corpus(s, noclose, mode)
                line = summary_of(s, m, out)
                if mode == "never":
                    ck.expect(out.code == 550 and "5.6.0" in out.text,
                              f"never: suspect MIME must fail closed (550 5.6.0), got {out}")
                    ck.expect("status=Ambiguous" in line, f"never: summary lacks status=Ambiguous: {line}")
                else:
                    ck.expect(out.code == 250 and " 0:clean" in line and "status=Clean" in line,
                              f"{mode}: suspect MIME must be Clean with part 0 scanned: {out}; {line}")
                ck.note(f"{mode}: {noclose}: {out.code} {out.text[:90]}")
                # EICAR in a base64 text/html alternative.
                out = send_corpus(s, html_b64, mode)
                line = summary_of(s, m, out)
                if mode == "always":
                    ck.expect(out.code == 550 and VIRUS_NAME_RE.search(out.text),
                              f"always: base64 HTML EICAR must be rejected naming the virus, got {out}")
                    ck.expect("0.text:infected" in line,
                              f"always: part 0.text should be the infected item: {line}")
                ck.note(f"{mode}: {html_b64}: {out.code} {out.text[:60]} {line[line.find('verdicts='):][:120]}")
