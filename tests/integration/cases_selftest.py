"""
cases_selftest.py - the scanner self-test against real c-icap services

SUMMARY
    Registered into run.py (register(run)). c-icap is started with
    Debian's virus_scan settings as shipped (/etc/c-icap/virus_scan.conf,
    included as Debian's c-icap.conf does: SendPercentData 5,
    StartSendPercentDataAfter 2M, MaxObjectSize 5M, ScanFileTypes without
    DOCUMENT, and the avscan alias), and once with only GIF in
    virus_scan.ScanFileTypes. Through real Postfix and the milter:

      selftest_stock   the plain virus_scan service: a 3 MB attachment
                       ending in EICAR is rejected; a 6 MB one (over
                       MaxObjectSize) and a small PDF-shaped EICAR file
                       are never Clean and never signed; --check-scanners
                       lists the misses and the c-icap fix.
      selftest_avscan  the same three through the avscan alias
                       (sizelimit=off, mode=simple): only the PDF is missed.
      selftest_gif     ScanFileTypes GIF: the server misses plain EICAR,
                       is in Error (--check-scanners exits 1), and mail
                       gets OnFail (451), never Clean. With ScannerSelfTest
                       no the start-up warning is logged (and EICAR passes
                       as Clean: the weakening, noted, not required).
      selftest_lab     the lab's tuned c-icap passes every canary
                       (Service validated); prints how long the self-test
                       took at start; SIGHUP runs the whole set again.

    Each case notes, per message, the SMTP reply and X-Virus-Status.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Optional

import cases_mime
import mail
from lab import EICAR

# Debian's /etc/c-icap/virus_scan.conf (libc-icap-mod-virus-scan 0.5.x) as
# shipped, for machines where the file was edited or is missing.
STOCK_VIRUS_SCAN = [
    "Service antivirus_module virus_scan.so",
    "ServiceAlias srv_clamav virus_scan",
    "ServiceAlias  avscan virus_scan?allow204=on&sizelimit=off&mode=simple",
    "virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE",
    "virus_scan.SendPercentData 5",
    "virus_scan.StartSendPercentDataAfter 2M",
    "virus_scan.MaxObjectSize  5M",
]

# A c-icap that scans only GIF images (every other type gets 204 unscanned).
GIF_ONLY_VIRUS_SCAN = [
    "Service antivirus_module virus_scan.so",
    "ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple",
    "virus_scan.ScanFileTypes GIF",
    "virus_scan.SendPercentData 0",
    "virus_scan.MaxObjectSize 200M",
]

SELF_TEST_LINE = re.compile(r"scanner (\S+) (self-test passed|self-test: misses|did not detect the EICAR)")


def stock_virus_scan() -> list[str]:
    """stock_virus_scan - the non-comment lines of this machine's
    /etc/c-icap/virus_scan.conf when it is the shipped one, else the
    shipped text above."""
    try:
        lines = [l.strip() for l in Path("/etc/c-icap/virus_scan.conf").read_text().splitlines()]
    except OSError:
        return STOCK_VIRUS_SCAN
    lines = [l for l in lines if l and not l.startswith("#")]
    shipped = [" ".join(l.split()) for l in STOCK_VIRUS_SCAN]
    return lines if [" ".join(l.split()) for l in lines] == shipped else STOCK_VIRUS_SCAN


def eicar_tail(size: int) -> bytes:
    """eicar_tail - size bytes: random bytes, then the EICAR file."""
    return os.urandom(size - len(EICAR)) + EICAR


def eicar_pdf() -> bytes:
    """eicar_pdf - a small PDF-shaped file whose one stream is EICAR."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n" % len(EICAR) + EICAR + b"\nendstream"]
    out, offsets = b"%PDF-1.5\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def with_attachment(subject: str, data: bytes, filename: str, maintype: str,
                    subtype: str) -> EmailMessage:
    """with_attachment - a text message with one attachment."""
    msg = mail.new_message(subject)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def wait_line(m, pattern: re.Pattern, timeout: float) -> Optional[re.Match]:
    """wait_line - the first milter log match of pattern, waiting up to timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search(m.log_text())
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    def keygen(s: run.Suite, tag: str) -> str:
        """keygen - a signing key for the milter, so a wrongly Clean
        message would carry a scan token the checks can see."""
        d = s.lab.dir / f"selftest-keys-{tag}"
        d.mkdir(exist_ok=True)
        ctl = Path(s.binary).parent / "icap-milterctl"
        subprocess.run([str(ctl), "keygen", str(d / "k")], capture_output=True, text=True,
                       timeout=30, check=True)
        return str(d / "k.key")

    def check_scanners(m) -> subprocess.CompletedProcess:
        """check_scanners - icap-milter --check-scanners on m's config."""
        return subprocess.run([str(m.binary), "--check-scanners", "-c", str(m.conf)],
                              capture_output=True, text=True, timeout=300)

    def outcome_of(s: run.Suite, ck: run.Check, out: mail.Outcome, label: str) -> str:
        """outcome_of - "550" or "250 Unscanned" ...; fails the case when
        a delivered copy is Clean or carries a scan token."""
        if out.code != 250:
            return f"{out.code} ({out.text[:90]})"
        got = s.sink.wait_for(out.message_id, 60)
        if not ck.expect(got is not None, f"{label}: accepted but not delivered"):
            return "250 (not delivered)"
        status = got.header_values("X-Virus-Status")
        tokens = got.header_values("X-Scan-Token")
        ck.expect("Clean" not in status, f"{label}: delivered with X-Virus-Status {status}")
        ck.expect(not tokens, f"{label}: delivered with a scan token")
        return f"250 X-Virus-Status: {', '.join(status) or '(none)'}"

    def stock_case(s: run.Suite, ck: run.Check, service: str) -> None:
        """stock_case - Debian's virus_scan through service; the three
        messages, the self-test log and --check-scanners."""
        icap = s.lab.start_cicap(f"cicap-stock-{service}", s.clamd, tls=False,
                                 virus_scan_conf=stock_virus_scan())
        url = f"icap://127.0.0.1:{icap.port}/{service}"
        settings = {"IcapServer": url, "TokenSigningKey": keygen(s, service),
                    "OnUnscannable": "accept"}
        try:
            t0 = time.monotonic()
            with s.milter(f"selftest_{service}", settings) as m:
                line = wait_line(m, SELF_TEST_LINE, 120)
                ck.expect(line and line.group(2) == "self-test: misses",
                          f"no 'self-test: misses' warning for {url}: {line and line.group(0)}")
                ck.note(f"self-test of {url} finished {time.monotonic() - t0:.1f}s after start")
                warn = next((l for l in m.log_text().splitlines() if "self-test: misses" in l), "")
                ck.note("milter log: " + warn.split("] ", 1)[-1][:400])

                clean = mail.clean_multipart(f"clean through {service}")
                out = mail.send_one(s.postfix.smtp_port, clean)
                got = s.sink.wait_for(out.message_id, 30) if out.code == 250 else None
                status = got.header_values("X-Virus-Status") if got else []
                ck.note(f"clean multipart (small CSV + 16 KB binary): {out.code} "
                        f"X-Virus-Status: {', '.join(status) or '-'}")

                three = with_attachment(f"3 MB EICAR via {service}", eicar_tail(3 << 20),
                                        "backup-3mb.bin", "application", "octet-stream")
                out3 = mail.send_one(s.postfix.smtp_port, three)
                ck.expect(out3.code == 550, f"3 MB attachment ending in EICAR: expected 550, "
                                            f"got {out3}")
                ck.note(f"3 MB attachment ending in EICAR: {outcome_of(s, ck, out3, '3 MB')}")

                six = with_attachment(f"6 MB EICAR via {service}", eicar_tail(6 << 20),
                                      "backup-6mb.bin", "application", "octet-stream")
                out6 = mail.send_one(s.postfix.smtp_port, six)
                ck.note(f"6 MB attachment ending in EICAR: {outcome_of(s, ck, out6, '6 MB')}")

                pdf = with_attachment(f"PDF EICAR via {service}", eicar_pdf(), "invoice.pdf",
                                      "application", "pdf")
                outp = mail.send_one(s.postfix.smtp_port, pdf)
                ck.note(f"small PDF-shaped EICAR file: {outcome_of(s, ck, outp, 'PDF')}")

                # The fake multipart/encrypted wrapper (issue 7) through the stock service.
                fake = cases_mime.fake_encrypted(f"fake multipart/encrypted via {service}")
                outf = mail.send_one(s.postfix.smtp_port, fake)
                ck.expect(outf.code == 550, f"fake multipart/encrypted with an EICAR exe: expected 550, "
                                            f"got {outf}")
                ck.note(f"fake multipart/encrypted with an EICAR invoice.exe: {outcome_of(s, ck, outf, 'fake')}")
                if service == "virus_scan":
                    ck.expect(out6.code != 250 or "no scanner proved it scans parts of" in m.log_text(),
                              "6 MB: accepted without the 'no scanner proved it scans parts "
                              "of' reason in the milter log")
                else:
                    ck.expect(out6.code == 550, f"6 MB through avscan: expected 550, got {out6}")
                ck.expect("no scanner proved it scans documents" in m.log_text(),
                          "the PDF part's reason ('no scanner proved it scans documents') "
                          "is not in the milter log")

                r = check_scanners(m)
                ck.expect(r.returncode == 0, f"--check-scanners exit {r.returncode}:\n{r.stdout}")
                for want in ("health:          Warnings: misses", "pdf (documents)",
                             "canary eicar:    flagged", "canary pdf:      MISSED",
                             "c-icap fix:", "DOCUMENT", "trusted size:"):
                    ck.expect(want in r.stdout, f"--check-scanners lacks {want!r}:\n{r.stdout}")
                if service == "virus_scan":
                    for want in ("large objects over", "MaxObjectSize", "sizelimit=off"):
                        ck.expect(want in r.stdout, f"--check-scanners lacks {want!r}:\n{r.stdout}")
                else:
                    ck.expect("large objects over" not in r.stdout,
                              f"avscan (sizelimit=off) reported as missing large objects:\n"
                              f"{r.stdout}")
                ck.note("--check-scanners: " + " | ".join(
                    l.strip() for l in r.stdout.splitlines()
                    if re.match(r"\s+(health|self-test|canary|trusted size|misses|c-icap fix)", l)))
        finally:
            s.lab.forget(icap)

    @run.case("selftest_stock", "Debian's stock c-icap virus_scan service: 3 MB EICAR "
                                "rejected, 6 MB and PDF EICAR never Clean, --check-scanners "
                                "lists the misses and the fix")
    def case_selftest_stock(s: run.Suite, ck: run.Check) -> None:
        stock_case(s, ck, "virus_scan")

    @run.case("selftest_avscan", "the same through Debian's avscan alias (sizelimit=off, "
                                 "mode=simple): 3 and 6 MB EICAR rejected, PDF never Clean")
    def case_selftest_avscan(s: run.Suite, ck: run.Check) -> None:
        stock_case(s, ck, "avscan")

    @run.case("selftest_gif", "c-icap with ScanFileTypes GIF: misses plain EICAR, Error in "
                              "--check-scanners, mail gets OnFail (451), never Clean")
    def case_selftest_gif(s: run.Suite, ck: run.Check) -> None:
        icap = s.lab.start_cicap("cicap-gif-only", s.clamd, tls=False,
                                 virus_scan_conf=GIF_ONLY_VIRUS_SCAN)
        url = icap.url(tls=False)
        try:
            with s.milter("selftest_gif", {"IcapServer": url}) as m:
                line = wait_line(m, SELF_TEST_LINE, 60)
                ck.expect(line and line.group(2) == "did not detect the EICAR",
                          f"no 'did not detect the EICAR' error for {url}: "
                          f"{line and line.group(0)}")
                err = next((l for l in m.log_text().splitlines()
                            if "did not detect the EICAR test file" in l), "")
                ck.expect("it gets no mail until it does (self-test)" in err,
                          f"error line lacks 'it gets no mail until it does': {err}")
                ck.note("milter log: " + err.split("] ", 1)[-1][:300])
                for label, msg in (("clean", mail.clean_multipart("clean via GIF-only")),
                                   ("EICAR", mail.eicar_attachment("EICAR via GIF-only"))):
                    out = mail.send_one(s.postfix.smtp_port, msg)
                    s.expect_tempfail(ck, out, m, f"{label} through a GIF-only c-icap")
                    ck.note(f"{label} mail: {out.code} {out.text[:100]}")
                r = check_scanners(m)
                ck.expect(r.returncode == 1, f"--check-scanners exit {r.returncode}, expected 1")
                ck.expect("health:          Error: did not detect the EICAR test file" in r.stdout,
                          f"--check-scanners lacks the Error line:\n{r.stdout}")
                ck.expect("0 of 1 scanner(s) usable" in r.stdout, f"usable count:\n{r.stdout}")
                ck.note("--check-scanners: " + " | ".join(
                    l.strip() for l in r.stdout.splitlines()
                    if re.match(r"\s+(health|canary|trusted size|c-icap fix)", l)))
            # ScannerSelfTest no: the documented weakening, with its warning.
            with s.milter("selftest_gif_off", {"IcapServer": url, "ScannerSelfTest": "no"}) as m:
                ck.expect(wait_line(m, re.compile(r"ScannerSelfTest is off: .*Clean rests on the "
                                                  r"scanners' word"), 10),
                          "no start-up warning with ScannerSelfTest no")
                ck.expect(not SELF_TEST_LINE.search(m.log_text()), "self-test ran although off")
                out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR, test off"))
                got = s.sink.wait_for(out.message_id, 30) if out.code == 250 else None
                ck.note("ScannerSelfTest no, EICAR through the GIF-only c-icap: "
                        f"{out.code} X-Virus-Status: "
                        f"{', '.join(got.header_values('X-Virus-Status')) if got else '-'} "
                        "(the weakening the man page warns of)")
        finally:
            s.lab.forget(icap)

    @run.case("selftest_lab", "the lab's tuned c-icap passes every canary (Service "
                              "validated), clean mail is delivered Clean; self-test time")
    def case_selftest_lab(s: run.Suite, ck: run.Check) -> None:
        t0 = time.monotonic()
        # The lab's certificates live 30 days: keep the expiry note out of the health.
        with s.milter("selftest_lab", {**s.tls_settings(), "TlsExpiryWarningDays": 7}) as m:
            up = time.monotonic() - t0
            line = wait_line(m, SELF_TEST_LINE, 60)
            ck.expect(line and line.group(2) == "self-test passed",
                      f"no 'self-test passed' line: {line and line.group(0)}")
            passed = next((l for l in m.log_text().splitlines() if "self-test passed" in l), "")
            ms = re.search(r"ms=(\d+)", passed)
            ck.note(f"milter up {up:.1f}s after start; self-test passed {time.monotonic() - t0:.1f}s "
                    f"after start, took {ms.group(1) if ms else '?'} ms: "
                    + passed.split("] ", 1)[-1][:200])
            msg = mail.clean_multipart("clean with the self-test on")
            out = mail.send_one(s.postfix.smtp_port, msg)
            s.expect_delivered(ck, out, m, msg)
            ck.note(f"first clean message: {out.code} in {out.seconds:.2f}s")
            r = check_scanners(m)
            ck.expect(r.returncode == 0 and "self-test:       passed" in r.stdout
                      and "health:          Service validated" in r.stdout,
                      f"--check-scanners:\n{r.stdout}")
            for name in ("eicar", "zip", "pdf", "large"):
                ck.expect(re.search(rf"canary {name}:\s+flagged", r.stdout),
                          f"canary {name} not flagged:\n{r.stdout}")
            # SIGHUP builds a new scanner pool: the whole set is sent again.
            os.kill(m.pid, signal.SIGHUP)
            again = wait_line(m, re.compile(r"(?s)self-test passed.*self-test passed"), 60)
            ck.expect(again, "no second 'self-test passed' after SIGHUP")
            ck.note("--check-scanners: " + " | ".join(
                l.strip() for l in r.stdout.splitlines()
                if re.match(r"\s+(health|self-test|canary|trusted size)", l)))
