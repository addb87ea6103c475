"""
cases_pool.py - the scanner pool against three real c-icap instances

SUMMARY
    Registered into run.py (register(run)). 200 clean messages go out over
    4 SMTP sessions while one c-icap of three is killed (SIGKILL to its own process group):
    every message must be either delivered with X-Virus-Status: Clean or
    tempfailed (4xx), none lost, none rejected, and the other two c-icaps
    must take the traffic. The killed one is restarted and must come back
    (the milter logs "is up again" and it gets RESPMODs). Then all three
    are stopped and mail must be tempfailed at once, far below IcapTimeout.
    Prints the figures: sent, delivered, tempfailed, time to detect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import mail
from lab import poll


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("pool_failover", "three c-icaps, one killed during 200 messages: none lost or "
                               "accepted unscanned, traffic moves; it comes back after a "
                               "restart; with all stopped mail is tempfailed at once")
    def case_pool_failover(s: run.Suite, ck: run.Check) -> None:
        icaps = [s.lab.start_cicap(f"cicap-pool{i}", s.clamd, tls=False) for i in range(3)]
        io_timeout = 30
        settings = {"IcapServer": [ic.url(tls=False) for ic in icaps],
                    "ScanThreads": 6, "LogLevel": "info",
                    "CircuitBreakerFailures": 2, "CircuitBreakerProbeInterval": "1s",
                    "IcapConnectTimeout": "2s", "IcapTimeout": f"{io_timeout}s"}
        try:
            with s.milter("pool_failover", settings) as m:
                victim = icaps[0]
                victim_url = victim.url(tls=False)
                total = 200
                msgs = [mail.new_message(f"pool failover {i}") for i in range(total)]
                result: dict[str, object] = {}

                def sender() -> None:
                    result["outs"], result["secs"] = run._send_many(s.postfix.smtp_port, msgs, 4)

                # The self-test's canaries are RESPMODs too: count from after them.
                ck.expect(poll(lambda: m.log_text().count("self-test passed") >= len(icaps), 60),
                          "the self-test did not pass on every c-icap within 60s")
                before = [s.icap_requests(ic) for ic in icaps]
                t = threading.Thread(target=sender)
                t.start()
                # Kill the victim once it has served part of the run.
                poll(lambda: s.icap_requests(victim) - before[0] >= 20, 60)
                at_kill = [s.icap_requests(ic) for ic in icaps]
                killed_at = time.monotonic()
                os.killpg(victim.proc.pid, signal.SIGKILL)   # c-icap and its children
                down_line = f"scanner {victim_url} is down"
                detected = poll(lambda: down_line in m.log_text(), 30, 0.01)
                detect_s = time.monotonic() - killed_at
                victim.stop()   # reap it (already dead)
                t.join(600)
                outs = result.get("outs") or []
                ck.expect(detected, f"milter never logged '{down_line}'")
                ok = [o for o in outs if o.code == 250]
                temp = [o for o in outs if 400 <= o.code < 500]
                other = [o for o in outs if not (o.code == 250 or 400 <= o.code < 500)]
                ck.expect(len(outs) == total, f"{len(outs)} outcomes for {total} messages")
                ck.expect(not other, f"{len(other)} messages neither accepted nor tempfailed: "
                                     f"{[str(o) for o in other[:3]]}")
                delivered = run._wait_delivered(s.sink, {o.message_id for o in ok}, 60)
                ck.expect(len(delivered) == len(ok),
                          f"only {len(delivered)}/{len(ok)} accepted messages delivered")
                by_id = {msg.message_id: msg for msg in s.sink.messages()}
                unscanned = [i for i in delivered
                             if by_id[i].header_values("X-Virus-Status") != ["Clean"]]
                ck.expect(not unscanned, f"{len(unscanned)} delivered without X-Virus-Status: Clean")
                after = [s.icap_requests(ic) for ic in icaps]
                moved = [after[i] - at_kill[i] for i in (1, 2)]
                ck.expect(all(n > 0 for n in moved),
                          f"the other c-icaps got {moved} RESPMODs after the kill")
                ck.expect(len(ok) >= total * 0.9, f"only {len(ok)}/{total} accepted")
                ck.note(f"failover run: sent {total}, accepted {len(ok)}, delivered "
                        f"{len(delivered)}, tempfailed {len(temp)}, other {len(other)}; "
                        f"dead server detected {detect_s * 1000:.0f} ms after SIGKILL; "
                        f"RESPMODs after the kill: {moved}; run took "
                        f"{result.get('secs', 0):.1f}s")

                # -- restart: the victim returns to service
                victim.start()
                t0 = time.monotonic()
                up_line = f"scanner {victim_url} is up again"
                back = poll(lambda: up_line in m.log_text(), 15, 0.05)
                ck.expect(back, f"milter never logged '{up_line}'")
                ck.note(f"back in service {time.monotonic() - t0:.1f}s after the restart")
                base = s.icap_requests(victim)
                more = [mail.new_message(f"pool after restart {i}") for i in range(30)]
                outs2, _ = run._send_many(s.postfix.smtp_port, more, 3)
                ck.expect(all(o.code == 250 for o in outs2),
                          f"after restart: {[str(o) for o in outs2 if o.code != 250][:3]}")
                got = s.icap_requests(victim) - base
                ck.expect(got > 0, "the restarted c-icap got no RESPMOD")
                ck.note(f"restarted c-icap served {got} of 30 messages")

                # -- stop all: tempfail at once
                for ic in icaps:
                    ic.stop()
                times = []
                for i in range(5):
                    out = mail.send_one(s.postfix.smtp_port, mail.new_message(f"all down {i}"))
                    s.expect_tempfail(ck, out, m, f"all scanners down #{i}")
                    times.append(out.seconds)
                ck.expect(max(times) < 2.0, f"tempfail took {max(times):.2f}s (IcapTimeout "
                                            f"{io_timeout}s): not immediate")
                ck.note("all down: tempfail in " + ", ".join(f"{x * 1000:.0f}" for x in times)
                        + " ms")
                ck.expect("no scanner is up" in m.log_text(),
                          "milter did not log 'no scanner is up'")
        finally:
            for ic in icaps:
                s.lab.forget(ic)

    @run.case("check_scanners", "icap-milter --check-scanners: per-server report (health, TLS, "
                                "ISTag, Preview, Max-Connections, round trip); non-zero exit "
                                "when no server is usable")
    def case_check_scanners(s: run.Suite, ck: run.Check) -> None:
        dead = f"icap://127.0.0.1:{s.lab.ports.get()}/avscan"
        good = s.lab.milter("milter-check-good", s.binary,
                            {**s.tls_settings(), "IcapServer": [s.icap.url(tls=True), dead],
                             "TlsExpiryWarningDays": 7})
        # The lab's certificates live 30 days: the default warning window sees them.
        warn = s.lab.milter("milter-check-warn", s.binary, s.tls_settings())
        bad = s.lab.milter("milter-check-bad", s.binary, {"IcapServer": dead})
        r = subprocess.run([str(s.binary), "--check-scanners", "-c", str(good.conf)],
                           capture_output=True, text=True, timeout=60)
        ck.expect(r.returncode == 0, f"exit {r.returncode} with one usable server: {r.stderr}")
        for want in ("health:          Service validated", "tls:             TLSv1.3",
                     "certificate:", "expires:", "istag:           \"CI0001-", "preview:",
                     "max-connections:", "round trip:", "health:          Error",
                     "1 of 2 scanner(s) usable"):
            ck.expect(want in r.stdout, f"report lacks {want!r}:\n{r.stdout}")
        ck.expect("[warning]" not in r.stdout, "log lines mixed into the report")
        r3 = subprocess.run([str(s.binary), "--check-scanners", "-c", str(warn.conf)],
                            capture_output=True, text=True, timeout=60)
        ck.expect(r3.returncode == 0 and "health:          Warnings: certificate expires" in r3.stdout,
                  f"no expiry warning with TlsExpiryWarningDays 30:\n{r3.stdout}")
        r2 = subprocess.run([str(s.binary), "--check-scanners", "-c", str(bad.conf)],
                            capture_output=True, text=True, timeout=60)
        ck.expect(r2.returncode == 1, f"exit {r2.returncode} with no usable server")
        ck.note("report: " + " | ".join(line.strip() for line in r.stdout.splitlines()[:12]))
