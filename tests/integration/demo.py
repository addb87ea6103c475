#!/usr/bin/env python3
"""
demo.py - a guided tour of icap-milter on loopback, for mail administrators

SUMMARY
    Started by scripts/demo.sh once the packages are installed and
    icap-milter is built. Using lab.py, it starts, all on 127.0.0.1:
    clamd with a test signature database made on the spot, c-icap
    answering ICAP over TLS (with a test CA), icap-milter, a private
    Postfix wired to it, and a test mailbox (an SMTP sink) behind Postfix.
    It sends one clean message and one carrying the EICAR test virus,
    shows what happened to each and where the log lines are, then stops
    every process it started (by PID). The system's own Postfix, clamd
    and c-icap, if any, are never touched.

USAGE
    python3 tests/integration/demo.py --milter build/icap-milter [--pause] [--clean]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mail  # noqa: E402
from lab import SIG_BODY_NAME, SIG_HASH_NAME, Lab, LabError  # noqa: E402

BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


def say(text: str = "", indent: int = 0, wrap: bool = True) -> None:
    """say - print text with an indent, wrapped at 100 columns unless wrap
    is false (log lines and paths stay whole, for copy and paste)."""
    for line in text.split("\n"):
        if wrap and line:
            line = textwrap.fill(line, width=100, initial_indent=" " * indent,
                                 subsequent_indent=" " * (indent + 2),
                                 break_long_words=False, break_on_hyphens=False)
        elif line:
            line = " " * indent + line
        print(line)
    sys.stdout.flush()


def step(n: int, total: int, text: str) -> None:
    """step - one numbered start-up step."""
    say(f"{BOLD}[{n}/{total}]{RESET} {text}")


def show_clean(lab_sink, outcome: mail.Outcome) -> bool:
    """show_clean - report the clean message: reply, delivery, headers."""
    say(f"SMTP reply at end of DATA: {outcome}", 2)
    if outcome.code != 250:
        say(f"{RED}Unexpected: the clean message was not accepted.{RESET}", 2)
        return False
    got = lab_sink.wait_for(outcome.message_id, 30)
    if got is None:
        say(f"{RED}Accepted, but it did not reach the test mailbox within 30s.{RESET}", 2)
        return False
    say(f"{GREEN}Delivered{RESET} to the test mailbox ({got.path}). "
        "Headers icap-milter added:", 2)
    for name in ("X-Virus-Scanned", "X-Virus-Status"):
        for value in got.header_values(name):
            say(f"{name}: {' '.join(value.split())}", 6, wrap=False)
    return got.header_values("X-Virus-Status") == ["Clean"]


def show_infected(lab_sink, outcome: mail.Outcome) -> bool:
    """show_infected - report the EICAR message: the rejection reply."""
    say(f"SMTP reply at end of DATA: {outcome}", 2)
    if outcome.code // 100 == 5:
        say(f"{GREEN}Rejected{RESET}: the sending server gets this permanent error and "
            "bounces the message to its sender. Nothing was delivered.", 2)
        return not lab_sink.find(outcome.message_id)
    say(f"{RED}Unexpected: the infected message was not rejected.{RESET}", 2)
    return False


def show_wiring(postfix, milter) -> None:
    """show_wiring - the Postfix parameters and the icap-milter config used."""
    say()
    say(f"{BOLD}How it is wired{RESET}")
    say("Postfix main.cf (milter part):", 2)
    for key in ("smtpd_milters", "non_smtpd_milters", "milter_default_action",
                "milter_protocol", "milter_content_timeout"):
        say(f"{key} = {postfix.params[key]}", 6, wrap=False)
    say("icap-milter.conf:", 2)
    for line in milter.conf.read_text().splitlines():
        if line and not line.startswith("#"):
            say(line, 6, wrap=False)


def show_logs(lab: Lab, milter, postfix, icap, queue_ids: list[str]) -> None:
    """show_logs - where each log is, and the lines about the two messages."""
    say()
    say(f"{BOLD}Where the log lines are{RESET}")
    for what, path in (("icap-milter log", milter.log),
                       ("icap-milter config", milter.conf),
                       ("Postfix log (maillog_file)", postfix.maillog),
                       ("Postfix config", postfix.conf_dir / "main.cf"),
                       ("c-icap access log", icap.access_log),
                       ("c-icap server log", icap.server_log),
                       ("clamd log", icap.clamd.log)):
        say(f"{what + ':':28} {path}", 2, wrap=False)
    say()
    say("icap-milter writes one summary line per message (queue id, verdicts, action=):", 2)
    lines = milter.summary_lines()
    for line in lines or [f"(no summary lines found: see {milter.log})"]:
        say(f"{DIM}{line}{RESET}", 4, wrap=False)
    say()
    say("Postfix's view of the same messages:", 2)
    for qid in queue_ids:
        for line in postfix.log_lines(qid):
            if "milter" in line or "status=" in line or "message-id" in line:
                say(f"{DIM}{line}{RESET}", 4, wrap=False)


def run_demo(binary: Path, pause: bool, clean: bool) -> int:
    """run_demo - start the lab, send the two messages, explain, stop."""
    ok = True
    with Lab(keep=not clean, verbose=False) as lab:
        say(f"{BOLD}icap-milter demo{RESET}: scan mail through ICAP antivirus, on loopback only.")
        say(f"Work directory (configs, logs, queue): {lab.dir}")
        say()
        total = 5
        step(1, total, "Test certificates: a CA made just now, and a certificate for "
                       "'localhost' for the ICAP server.")
        cert = lab.pki.server("cicap-server", "test-ca")
        say(f"CA: {cert.ca}", 6)
        clamd = lab.start_clamd()
        step(2, total, f"clamd started (pid {clamd.pid}) with a test signature database "
                       f"for the EICAR test file ({SIG_HASH_NAME}, {SIG_BODY_NAME}).")
        icap = lab.start_cicap("cicap", clamd, tls=True)
        step(3, total, f"c-icap started (pid {icap.pid}), virus_scan service with clamd: "
                       f"{icap.url(tls=True)} (TLS) and {icap.url(tls=False)}.")
        sock = f"unix:{lab.dir / 'milter.sock'}"
        milter = lab.milter("icap-milter", binary,
                            {"IcapServer": icap.url(tls=True), "TlsCAFile": str(cert.ca),
                             "LogLevel": "info"}, sock)
        lab.start_milter(milter)
        step(4, total, f"icap-milter started (pid {milter.pid}) on {sock}, scanning "
                       f"through {icap.url(tls=True)}.")
        sink = lab.start_sink("mailbox")
        postfix = lab.start_postfix("postfix", sink.port, sock)
        step(5, total, f"Postfix started (master pid {postfix.pid}): smtpd on "
                       f"127.0.0.1:{postfix.smtp_port}, smtpd_milters = {sock}, relaying "
                       f"to a test mailbox on 127.0.0.1:{sink.port}.")
        show_wiring(postfix, milter)
        say()
        say(f"{BOLD}Message 1{RESET}: a clean message with two attachments "
            "(report.csv, data.bin)")
        clean_out = mail.send_one(postfix.smtp_port, mail.clean_multipart("Quarterly report"))
        ok &= show_clean(sink, clean_out)
        say()
        say(f"{BOLD}Message 2{RESET}: a message with the EICAR test virus attached (eicar.com)")
        bad_out = mail.send_one(postfix.smtp_port, mail.eicar_attachment("Invoice"))
        ok &= show_infected(sink, bad_out)
        time.sleep(0.5)          # let the log writers flush
        qids = [q for q in (clean_out.queue_id,
                            postfix.queue_id_for(bad_out.message_id, 5)) if q]
        show_logs(lab, milter, postfix, icap, qids)
        if pause:
            say()
            input("Everything is still running. Press Enter to stop it... ")
        say()
        say(f"{BOLD}Stopping{RESET} Postfix, icap-milter, c-icap and clamd (by PID).")
    if not clean:
        say(f"Logs and configs kept in {lab.dir} (remove it with: rm -rf {lab.dir}).")
    say(f"{GREEN}Demo finished: both messages were handled as expected.{RESET}" if ok
        else f"{RED}Demo finished, but something did not go as expected (see above).{RESET}")
    return 0 if ok else 1


def main() -> int:
    """main - parse arguments and run the demo."""
    ap = argparse.ArgumentParser(description="icap-milter demo on loopback")
    ap.add_argument("--milter", type=Path, required=True, help="the icap-milter binary")
    ap.add_argument("--pause", action="store_true",
                    help="wait for Enter before stopping, to look around")
    ap.add_argument("--clean", action="store_true",
                    help="remove the work directory (logs, configs) at the end")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("demo: run as root (it starts private Postfix, clamd and c-icap instances)")
        return 2
    if not os.access(args.milter, os.X_OK):
        print(f"demo: no icap-milter binary at {args.milter}")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):   # unwind, so the lab stops its processes
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    try:
        return run_demo(args.milter.resolve(), args.pause, args.clean)
    except LabError as e:
        print(f"{RED}demo: could not start the lab:{RESET} {e}")
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started has been stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
