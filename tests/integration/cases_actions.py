"""
cases_actions.py - what each OnInfected action does to an EICAR message

SUMMARY
    Registered into run.py (register(run)). One milter per action, real
    Postfix, c-icap (TLS) and clamd, the same multipart with eicar.com:
      tempfail  451 4.7.1 naming the virus, nothing delivered;
      reject    550 5.7.1 with a RejectText template filled in;
      accept    delivered with X-Virus-Status: Infected (...) and the
                SubjectTag once: also for an encoded-word Subject, one
                that already carries the tag, and none at all;
      hold      250, the message waits in Postfix's hold queue (postqueue
                -j says queue_name hold, the sink gets nothing), and
                postsuper -H delivers it, tagged;
      redirect  delivered only to RedirectAddress, with the original
                recipients in X-Icap-Milter-Original-Recipients.
    A second case, actions_notify_clean, checks the two actions that
    change the body (smfi_replacebody): notify delivers one text/plain
    notice instead (NotifyTemplate), and clean replaces only the
    infected part (CleanTemplate) of three shapes: multipart/mixed with
    clean attachments, a forwarded message/rfc822 holding EICAR, and
    multipart/alternative plus attachments. The delivered messages parse
    with Python's email parser, carry the tag once and no EICAR byte, and
    every part that was clean is there byte for byte; the milter's own
    parser (GMime, through icap-milterctl mime) reads each as one clean,
    unambiguous structure.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import mail
from lab import EICAR, VIRUS_NAME_RE

REDIRECT_TO = "virus-admin@dest.icapm-lab.test"


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    def send(s, subject) -> tuple[mail.Outcome, object]:
        """send - an EICAR attachment with this Subject (None: no Subject)."""
        msg = mail.eicar_attachment("x" if subject is None else subject)
        if subject is None:
            del msg["Subject"]
        return mail.send_one(s.postfix.smtp_port, msg), msg

    def delivered(s, ck, out, label):
        """delivered - 250 and the sink has it: the stored message or None."""
        if not ck.expect(out.code == 250, f"{label}: expected 250, got {out}"):
            return None
        got = s.sink.wait_for(out.message_id, 30)
        ck.expect(got is not None, f"{label}: not delivered (queue id {out.queue_id})")
        return got

    def infected_status(ck, got, label):
        """infected_status - one X-Virus-Status: Infected (<test virus>)."""
        status = got.header_values("X-Virus-Status")
        ck.expect(len(status) == 1 and status[0].startswith("Infected (") and VIRUS_NAME_RE.search(status[0]),
                  f"{label}: X-Virus-Status {status}, expected one 'Infected (<virus>)'")

    def example(ck, label: str, got) -> None:
        """example - the delivered result in one note: the headers the
        action touches, then the first lines of the body."""
        head, _, body = got.raw().partition(b"\r\n\r\n")
        keep = (b"subject", b"x-virus-status", b"content-type", b"content-transfer-encoding",
                b"x-icap-milter-original-recipients")
        lines = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").split(b"\r\n")
        shown = [l.decode(errors="replace") for l in lines if l.split(b":")[0].lower() in keep]
        first = [l.decode(errors="replace")[:100] for l in body.split(b"\r\n") if l.strip()][:4]
        ck.note(f"example {label}: rcpt={got.rcpt_to} | " + " | ".join(shown) + " || " + " / ".join(first))

    def raw_subjects(got) -> list[bytes]:
        """raw_subjects - the Subject lines as delivered, unfolded."""
        head = got.raw().split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
        return [l[len(b"Subject:"):].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"subject:")]

    @run.case("actions_infected", "OnInfected tempfail, reject (RejectText), accept (SubjectTag once), hold "
                                  "(Postfix hold queue, postsuper -H), redirect (RedirectAddress only)")
    def case_actions_infected(s: run.Suite, ck: run.Check) -> None:
        base = s.tls_settings()
        # tempfail
        with s.milter("act_tempfail", {**base, "OnInfected": "tempfail"}) as m:
            out, _ = send(s, "tempfail me")
            ck.expect(out.code == 451 and "4.7.1" in out.text and VIRUS_NAME_RE.search(out.text),
                      f"tempfail: expected 451 4.7.1 naming the virus, got {out}")
            s.expect_not_delivered(ck, out, m, "tempfail", "tempfail")
            ck.note(f"tempfail: {out}")
        # reject with a RejectText template
        with s.milter("act_reject", {**base, "RejectText": "Blocked {viruses} in {files} from {sender}"}) as m:
            out, _ = send(s, "reject me")
            ck.expect(out.code == 550 and "5.7.1 Blocked Icapm.Test.EICAR" in out.text
                      and "in eicar.com from sender@client.icapm-lab.test" in out.text,
                      f"reject: RejectText not used: {out}")
            s.expect_not_delivered(ck, out, m, "reject", "reject")
            ck.note(f"reject: {out}")
        # accept: tagged once, whatever the Subject looked like
        with s.milter("act_accept", {**base, "OnInfected": "accept"}) as m:
            for subject, want in (("Invoice", b"[VIRUS] Invoice"),
                                  ("Rechnung f\u00fcr Sie", b"[VIRUS] Rechnung =?utf-8?"),
                                  ("[VIRUS] already tagged", b"[VIRUS] already tagged"),
                                  (None, b"[VIRUS]")):
                label = f"accept, Subject {subject!r}"
                out, _ = send(s, subject)
                got = delivered(s, ck, out, label)
                if got is None:
                    continue
                infected_status(ck, got, label)
                subs = raw_subjects(got)
                ck.expect(len(subs) == 1 and subs[0].startswith(want) and subs[0].count(b"[VIRUS]") == 1,
                          f"{label}: delivered Subject lines {subs}, expected one starting {want!r} "
                          "with the tag once")
                s.expect_summary(ck, m, out.queue_id, "accept", label)
                ck.note(f"{label}: Subject {subs}")
                if subject == "Invoice":
                    example(ck, "accept", got)
        # hold: Postfix's hold queue, released by postsuper -H
        with s.milter("act_hold", {**base, "OnInfected": "hold"}) as m:
            out, _ = send(s, "hold me")
            if ck.expect(out.code == 250, f"hold: expected 250, got {out}"):
                qid = out.queue_id
                s.expect_summary(ck, m, qid, "hold", "hold")
                conf = str(s.postfix.conf_dir)
                queue = ""
                for _ in range(50):
                    q = subprocess.run(["postqueue", "-c", conf, "-j"], capture_output=True, text=True,
                                       timeout=30)
                    entries = [json.loads(l) for l in q.stdout.splitlines() if l.strip()]
                    queue = next((e.get("queue_name", "") for e in entries if e.get("queue_id") == qid), "")
                    if queue:
                        break
                    time.sleep(0.1)
                ck.expect(queue == "hold", f"hold: postqueue -j shows {qid} in {queue!r}, expected 'hold'")
                time.sleep(1)
                ck.expect(not s.sink.find(out.message_id), "hold: the held message reached the sink")
                subprocess.run(["postsuper", "-c", conf, "-H", qid], capture_output=True, timeout=30)
                got = s.sink.wait_for(out.message_id, 30)
                if ck.expect(got is not None, f"hold: not delivered after postsuper -H {qid}"):
                    infected_status(ck, got, "hold")
                    ck.expect(raw_subjects(got) == [b"[VIRUS] hold me"],
                              f"hold: Subject {raw_subjects(got)}")
                    example(ck, "hold (after postsuper -H)", got)
                ck.note(f"hold: {out}; postqueue queue_name={queue}; released with postsuper -H")
        # redirect: only RedirectAddress gets it
        with s.milter("act_redirect", {**base, "OnInfected": "redirect", "RedirectAddress": REDIRECT_TO}) as m:
            out, _ = send(s, "redirect me")
            got = delivered(s, ck, out, "redirect")
            if got is not None:
                ck.expect(got.rcpt_to == [REDIRECT_TO],
                          f"redirect: envelope recipients {got.rcpt_to}, expected only {REDIRECT_TO}")
                orig = got.header_values("X-Icap-Milter-Original-Recipients")
                ck.expect(orig == [f"<{mail.RECIPIENT}>"],
                          f"redirect: X-Icap-Milter-Original-Recipients {orig}")
                infected_status(ck, got, "redirect")
                ck.expect(raw_subjects(got) == [b"[VIRUS] redirect me"], f"redirect: Subject {raw_subjects(got)}")
                s.expect_summary(ck, m, out.queue_id, "redirect", "redirect")
                ck.note(f"redirect: rcpt_to={got.rcpt_to} original={orig}")
                example(ck, "redirect", got)

    def gmime_reading(s, ck, raw: bytes, label: str) -> None:
        """gmime_reading - the milter's own parser (GMime, through
        icap-milterctl mime) reads the delivered message as one clean,
        unambiguous structure."""
        path = s.lab.dir / f"delivered-{label.replace(' ', '_')}.eml"
        path.write_bytes(raw)
        res = subprocess.run([str(Path(s.binary).parent / "icap-milterctl"), "mime", str(path)],
                             capture_output=True, text=True, timeout=60)
        ck.expect(res.returncode == 0 and res.stdout.startswith("structure: hashable"),
                  f"{label}: GMime's reading is not clean: {res.stdout[:400]!r} {res.stderr[:200]!r}")

    def segments(raw: bytes) -> list[bytes]:
        """segments - the pieces of a message between any two delimiter
        lines (lines starting with "--"), as sent."""
        return [seg for seg in re.split(rb"\r\n--[^\r\n]*\r\n", raw) if seg]

    def no_eicar(ck, raw: bytes, label: str) -> None:
        """no_eicar - neither the EICAR bytes nor their base64 are left."""
        b64 = base64.b64encode(EICAR)[:40]
        ck.expect(EICAR not in raw and b64 not in raw.replace(b"\r\n", b""),
                  f"{label}: EICAR is still in the delivered message")

    def alternative_with_attachments() -> EmailMessage:
        """alternative_with_attachments - text + HTML, EICAR and a CSV."""
        msg = mail.new_message("clean: alternative and attachments", "Plain text version.\n")
        msg.add_alternative("<html><body><p>HTML version.</p></body></html>\n", subtype="html")
        msg.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
        msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="table.csv")
        return msg

    def mixed_with_clean_parts() -> EmailMessage:
        """mixed_with_clean_parts - text, EICAR, a CSV and a binary."""
        msg = mail.clean_multipart("clean: mixed")
        msg.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
        return msg

    @run.case("actions_notify_clean", "OnInfected notify (the whole body replaced by NotifyTemplate) and clean "
                                      "(only the infected part replaced, in multipart/mixed, a forwarded "
                                      "message and multipart/alternative): valid MIME, tagged once, no EICAR, "
                                      "clean parts byte for byte")
    def case_actions_notify_clean(s: run.Suite, ck: run.Check) -> None:
        base = s.tls_settings()
        with s.milter("act_notify", {**base, "OnInfected": "notify"}) as m:
            sent = mail.eicar_attachment("notify me")
            out = mail.send_one(s.postfix.smtp_port, sent)
            got = delivered(s, ck, out, "notify")
            if got is not None:
                msg = email.message_from_bytes(got.raw(), policy=email.policy.default)
                ck.expect(not msg.is_multipart() and msg.get_content_type() == "text/plain",
                          f"notify: delivered {msg.get_content_type()}, expected one text/plain")
                text = msg.get_content() if not msg.is_multipart() else ""
                ck.expect("Virus: Icapm.Test.EICAR" in text and "File: eicar.com" in text
                          and f"Queue ID: {out.queue_id}" in text,
                          f"notify: the notice lacks the virus, file or queue id: {text[:300]!r}")
                ck.expect(raw_subjects(got) == [b"[VIRUS] notify me"], f"notify: Subject {raw_subjects(got)}")
                infected_status(ck, got, "notify")
                no_eicar(ck, got.raw(), "notify")
                gmime_reading(s, ck, got.raw(), "notify")
                s.expect_summary(ck, m, out.queue_id, "notify", "notify")
                head = got.raw().split(b"\r\n\r\n", 1)[0]
                ck.note("notify: delivered headers: " + " | ".join(
                    l.decode(errors="replace") for l in head.split(b"\r\n")
                    if l.split(b":")[0].lower() in (b"subject", b"content-type", b"content-transfer-encoding",
                                                    b"mime-version", b"x-virus-status")))
                ck.note(f"notify: first lines: {text.splitlines()[:3]}")
                example(ck, "notify", got)
        with s.milter("act_clean", {**base, "OnInfected": "clean"}) as m:
            for label, sent in (("clean mixed", mixed_with_clean_parts()),
                                ("clean forwarded", mail.eicar_nested("clean: forwarded")),
                                ("clean alternative", alternative_with_attachments())):
                out = mail.send_one(s.postfix.smtp_port, sent)
                got = delivered(s, ck, out, label)
                if got is None:
                    continue
                raw = got.raw()
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                defects = [str(d) for part in msg.walk() for d in part.defects]
                ck.expect(not defects, f"{label}: Python's parser found defects: {defects}")
                notices = [p for p in msg.walk() if p.get_content_type() == "text/plain"
                           and "was removed from this message because it held" in p.get_content()]
                ck.expect(len(notices) == 1 and "eicar.com" in notices[0].get_content()
                          and VIRUS_NAME_RE.search(notices[0].get_content()),
                          f"{label}: expected one notice naming eicar.com and the virus, found {len(notices)}")
                no_eicar(ck, raw, label)
                gmime_reading(s, ck, raw, label)
                ck.expect(raw_subjects(got) == [b"[VIRUS] " + str(sent["Subject"]).encode()],
                          f"{label}: Subject {raw_subjects(got)}")
                infected_status(ck, got, label)
                # Every segment of the sent body without EICAR is delivered as it was.
                sent_body = mail.wire_bytes(sent).split(b"\r\n\r\n", 1)[1]
                got_body = raw.split(b"\r\n\r\n", 1)[1]
                b64 = base64.b64encode(EICAR)[:20]
                kept = [seg for seg in segments(b"\r\n" + sent_body)
                        if EICAR not in seg and b64 not in seg.replace(b"\r\n", b"")]
                missing = [seg[:60] for seg in kept if seg not in got_body]
                ck.expect(kept and not missing, f"{label}: clean parts changed or lost: {missing}")
                s.expect_summary(ck, m, out.queue_id, "clean", label)
                example(ck, label, got)
                ck.note(f"{label}: {len(kept)} clean segments kept byte for byte; notice: "
                        f"{notices[0].get_content().strip()[:120] if notices else None!r}")
