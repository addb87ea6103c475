"""
cases_quarantine.py - the quarantine store with real Postfix, c-icap, clamd

SUMMARY
    Registered into run.py (register(run)).
    quarantine_store_release: QuarantineDirectory set, OnInfected reject.
    An EICAR message is rejected and a copy kept: the summary line names
    it, `icap-milterctl -c CONF quarantine list --json` lists it with its
    queue id, virus, status and action, its files are 0600, `export`
    gives the message as the milter received it (the sent body byte for
    byte, every sent header line), `show` prints its headers. `release`
    re-injects it through Postfix's own sendmail (SendmailCommand); the
    milter, as Postfix's non_smtpd_milter, lets that copy through once
    (Quarantine.Released), so the sink gets it exactly once, tagged and
    without the release marker, and `list` marks it released. A message
    arriving by SMTP with a forged X-Icap-Milter-Released marker is
    rejected and kept like any other.
    quarantine_retention_errors: QuarantineRetention 2s removes an old
    copy when a later message ends (logged, Quarantine.Expired); a
    quarantine directory the milter's User may not write makes an EICAR
    message tempfail (451) with an error line and Quarantine.Errors,
    instead of losing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import mail
from cases_privs import start_as_user, stop_milter
from lab import VIRUS_NAME_RE, poll


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    def ctl(s, m, *args: str) -> subprocess.CompletedProcess:
        """ctl - icap-milterctl -c <the milter's config> quarantine ARGS."""
        binary = Path(s.binary).parent / "icap-milterctl"
        return subprocess.run([str(binary), "-c", str(m.conf), "quarantine", *args],
                              capture_output=True, timeout=60)

    def qdir(s, name: str) -> Path:
        """qdir - a fresh quarantine directory in the lab, 0700 root."""
        d = s.lab.dir / name
        d.mkdir(mode=0o700)
        return d

    def kept_id(m, qid: str) -> str:
        """kept_id - the quarantine id the summary line names ("" if none)."""
        poll(lambda: m.summary_lines(qid), 10)
        for line in m.summary_lines(qid):
            for word in line.split():
                if word.startswith("quarantine="):
                    return word[len("quarantine="):]
        return ""

    @run.case("quarantine_store_release", "QuarantineDirectory: an EICAR message is rejected and kept (0600, "
                                          "byte for byte), listed, shown, exported and released once through "
                                          "Postfix's sendmail; a forged release marker changes nothing")
    def case_quarantine_store_release(s: run.Suite, ck: run.Check) -> None:
        d = qdir(s, "quarantine-a")
        settings = {**s.tls_settings(), "QuarantineDirectory": str(d),
                    "SendmailCommand": f"/usr/sbin/sendmail -C {s.postfix.conf_dir} -G -i"}
        with s.milter("quarantine_a", settings) as m:
            sent = mail.eicar_attachment("quarantine me")
            out = mail.send_one(s.postfix.smtp_port, sent)
            s.expect_rejected(ck, out, m, "quarantined EICAR")
            qid = s.postfix.queue_id_for(out.message_id) or ""
            qid_kept = kept_id(m, qid)
            if not ck.expect(qid_kept, f"no quarantine=ID in the summary line of {qid}: {m.summary_lines(qid)}"):
                return
            # list --json
            res = ctl(s, m, "list", "--json")
            ck.expect(res.returncode == 0, f"quarantine list failed: {res.stderr!r}")
            text = res.stdout.decode().strip()
            entries = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l]
            e = next((x for x in entries if x.get("id") == qid_kept), None)
            if not ck.expect(e is not None, f"list --json lacks {qid_kept}: {text[:300]}"):
                return
            ck.expect(e.get("queue_id") == qid and e.get("status") == "Infected" and e.get("action") == "reject"
                      and any(VIRUS_NAME_RE.search(v) for v in e.get("viruses", [])),
                      f"list --json entry: {e}")
            modes = {p.name: oct(p.stat().st_mode & 0o777) for p in d.iterdir() if not p.name.startswith(".")}
            ck.expect(modes and all(v == "0o600" for v in modes.values()), f"quarantine file modes: {modes}")
            # export: the message as the milter got it
            res = ctl(s, m, "export", qid_kept)
            wire = mail.wire_bytes(sent)
            head, _, body = res.stdout.partition(b"\r\n\r\n")
            ck.expect(res.returncode == 0 and body == wire.split(b"\r\n\r\n", 1)[1],
                      "export: the body differs from the sent body")
            missing = [l for l in wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if l and l not in head.split(b"\r\n")]
            ck.expect(not missing, f"export: sent header lines missing: {missing[:3]}")
            res = ctl(s, m, "show", qid_kept)
            ck.expect(res.returncode == 0 and b"Subject: quarantine me" in res.stdout,
                      f"show: {res.returncode} {res.stdout[:200]!r} {res.stderr!r}")
            ck.note(f"kept {qid_kept} for {qid}: files {modes}")
            # release: through Postfix's sendmail and the milter (non_smtpd_milters), delivered once
            res = ctl(s, m, "release", qid_kept)
            ck.expect(res.returncode == 0, f"release failed: {res.returncode} {res.stdout!r} {res.stderr!r}")
            got = s.sink.wait_for(out.message_id, 60)
            if ck.expect(got is not None, "release: the message never reached the sink"):
                time.sleep(2)
                ck.expect(len(s.sink.find(out.message_id)) == 1,
                          f"release: delivered {len(s.sink.find(out.message_id))} times")
                ck.expect(not got.header_values("X-Icap-Milter-Released"),
                          "release: the release marker was delivered")
                ck.expect(got.raw().split(b"\r\n\r\n", 1)[1] == wire.split(b"\r\n\r\n", 1)[1],
                          "release: the delivered body differs from the original")
                status = got.header_values("X-Virus-Status")
                ck.expect(len(status) == 1 and status[0].startswith("Infected"), f"release: status {status}")
                ck.expect(m.wait_log(f"released from quarantine {qid_kept}"),
                          "release: the milter did not log the released copy")
            stats = m.stats()
            ck.expect(m.counter(stats, "Quarantine.Stored") == 1 and m.counter(stats, "Quarantine.Released") == 1,
                      f"stats: {stats}")
            res = ctl(s, m, "list", "--json")
            ck.expect(b'"released"' in res.stdout, f"list after release lacks the release: {res.stdout[:300]!r}")
            # A forged marker on a new SMTP message: rejected and kept as usual.
            forged = mail.eicar_attachment("forged release marker")
            forged["X-Icap-Milter-Released"] = qid_kept
            out2 = mail.send_one(s.postfix.smtp_port, forged)
            s.expect_rejected(ck, out2, m, "forged release marker")
            qid2 = s.postfix.queue_id_for(out2.message_id) or ""
            ck.expect(kept_id(m, qid2) not in ("", qid_kept), "forged marker: no new copy kept")
            ck.note(f"release of {qid_kept}: delivered once; forged marker: {out2}")

    @run.case("quarantine_retention_errors", "QuarantineRetention removes an old copy (logged); a quarantine "
                                             "directory the milter cannot write makes EICAR mail tempfail")
    def case_quarantine_retention_errors(s: run.Suite, ck: run.Check) -> None:
        d = qdir(s, "quarantine-b")
        settings = {**s.tls_settings(), "QuarantineDirectory": str(d), "QuarantineRetention": "2s"}
        with s.milter("quarantine_b", settings) as m:
            first = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("old copy"))
            id1 = kept_id(m, s.postfix.queue_id_for(first.message_id) or "")
            time.sleep(3.5)
            second = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("new copy"))
            id2 = kept_id(m, s.postfix.queue_id_for(second.message_id) or "")
            ck.expect(id1 and id2, f"copies not kept: {id1!r} {id2!r}")
            ck.expect(m.wait_log(f"quarantine: removed {id1}"), f"retention: no log line removing {id1}")
            names = {p.name.split(".")[0] for p in d.iterdir() if not p.name.startswith(".")}
            ck.expect(id1 not in names and id2 in names, f"retention: directory holds {names}")
            ck.expect(m.counter(m.stats(), "Quarantine.Expired") == 1, "Quarantine.Expired is not 1")
            ck.note(f"retention 2s: {id1} removed, {id2} kept")
        # A directory the milter's User may not write: tempfail, never lost.
        ro = s.lab.dir / "quarantine-ro"
        ro.mkdir(mode=0o755)
        m = start_as_user(s, "quarantine_ro", {**s.tls_settings(), "QuarantineDirectory": str(ro)})
        try:
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("read-only quarantine"))
            ck.expect(out.code == 451 and "4.7.1" in out.text, f"read-only quarantine: expected 451, got {out}")
            ck.expect(m.wait_log("quarantine: the copy could not be written"),
                      "read-only quarantine: no error line")
            ck.expect(m.counter(m.stats(), "Quarantine.Errors") == 1, "Quarantine.Errors is not 1")
            ck.expect(not any(ro.iterdir()), "read-only quarantine: something was written")
            ck.note(f"read-only quarantine: {out}")
        finally:
            stop_milter(s, m)
