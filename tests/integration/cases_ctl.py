"""
cases_ctl.py - the control socket and icap-milterctl stats|health|queue|reload|loglevel

SUMMARY
    Registered into run.py (register(run)). The daemon answers
    icap-milterctl over ControlSocket while 10 SMTP sessions send mail
    through real Postfix, c-icap and clamd: counters move, messages show
    in `queue`, --json parses, and every message still gets its verdict.
    `loglevel debug` turns debug lines on without a restart and `loglevel
    info` off again (a reload applies LogLevel from the file again).
    `reload` answers when the reload is done: ok for a good file, an error
    for a broken one. A client that connects and stalls, or floods, does
    not delay another `stats` beyond a second, nor the mail.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import mail
from lab import poll


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    def ctl(s, m, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """ctl - icap-milterctl -c <the milter's config> ARGS (text output)."""
        binary = Path(s.binary).parent / "icap-milterctl"
        return subprocess.run([str(binary), "-c", str(m.conf), *args],
                              capture_output=True, text=True, timeout=timeout)

    def stats_dict(text: str) -> dict[str, str]:
        """stats_dict - "Name: value" lines as a dict."""
        out = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                out[name] = value
        return out

    @run.case("ctl_load", "icap-milterctl stats, health and queue (text and --json) answer while "
                          "10 SMTP sessions send mail: counters move, messages show in the queue, "
                          "every message gets its verdict")
    def case_ctl_load(s: run.Suite, ck: run.Check) -> None:
        with s.milter("ctl_load", {**s.tls_settings(), "LogLevel": "info", "ScanThreads": 4}) as m:
            ck.expect(poll(lambda: "self-test passed" in m.log_text(), 60), "self-test did not pass")
            msgs: list = []
            infected: set[str] = set()
            for i in range(60):
                if i % 10 == 3:
                    msg = mail.eicar_attachment(f"ctl load EICAR {i}")
                    infected.add(mail.message_id(msg))
                elif i % 3 == 0:
                    msg = mail.large_clean(1_500_000, f"ctl load large {i}")
                else:
                    msg = mail.clean_multipart(f"ctl load clean {i}")
                msgs.append(msg)
            result: dict[str, object] = {}

            def sender() -> None:
                result["outs"], result["secs"] = run._send_many(s.postfix.smtp_port, msgs, 10)

            t = threading.Thread(target=sender)
            t.start()
            answers, failures, examined = 0, [], []
            max_in_flight, max_pending, sample_queue, json_ok = 0, 0, "", 0
            max_in_queue, busy_health = 0, ""
            slowest = 0.0
            while t.is_alive():
                for args in (("stats",), ("stats", "--json"), ("health",), ("health", "--json"),
                             ("queue",), ("queue", "--json")):
                    t0 = time.monotonic()
                    res = ctl(s, m, *args, timeout=30)
                    slowest = max(slowest, time.monotonic() - t0)
                    if res.returncode != 0:
                        failures.append(f"{' '.join(args)}: rc={res.returncode} {res.stderr.strip()}")
                        continue
                    answers += 1
                    if "--json" in args:
                        try:
                            j = json.loads(res.stdout)
                        except ValueError as e:
                            failures.append(f"{' '.join(args)}: not JSON ({e}): {res.stdout[:200]}")
                            continue
                        json_ok += 1
                        if args[0] == "stats":
                            examined.append(j["Examined"])
                            max_in_queue = max(max_in_queue, j["InScannerQueue"])
                            for key in ("SentToScanner", "InScannerQueue", "Scanned", "Infected",
                                        "VirusFree", "Unscanned", "Token.Self", "Token.TrustedServer",
                                        "Token.Rejected", "Action.reject", "Action.accept"):
                                if key not in j:
                                    failures.append(f"stats --json lacks {key}")
                        elif args[0] == "queue":
                            max_in_flight = max(max_in_flight, j["InFlight"])
                            for e in j["Messages"]:
                                max_pending = max(max_pending, e["Pending"])
                                if not e["QueueId"] or not e["JobId"].startswith("Job-") or e["AgeMs"] < 0:
                                    failures.append(f"odd queue entry {e}")
                        elif args[0] == "health":
                            if not j["Scanners"] or j["Scanners"][0]["State"] != "up":
                                failures.append(f"health --json: scanner not up: {res.stdout[:300]}")
                    elif args[0] == "queue" and res.stdout.count("\n") > 1 and not sample_queue:
                        sample_queue = res.stdout
                    elif args[0] == "health" and "in_use=0 " not in res.stdout and not busy_health:
                        busy_health = res.stdout
            t.join(600)
            outs = result.get("outs") or []
            ck.expect(not failures, f"{len(failures)} control failures: {failures[:5]}")
            ck.expect(answers >= 12, f"only {answers} answers during the run")
            ck.expect(slowest < 5, f"a control command took {slowest:.1f}s under load")
            ck.expect(examined == sorted(examined), f"Examined went backwards: {examined}")
            ck.expect(len(set(examined)) >= 2, f"Examined did not move during the run: {examined}")
            ck.expect(max_in_flight >= 1, "queue never showed a message being scanned")
            # Every message got its verdict: EICAR 550, the rest 250 and delivered Clean.
            ck.expect(len(outs) == len(msgs), f"{len(outs)} outcomes for {len(msgs)} messages")
            bad = [str(o) for o in outs if (o.code == 550) != (o.message_id in infected)
                   or o.code not in (250, 550)]
            ck.expect(not bad, f"{len(bad)} wrong verdicts: {bad[:3]}")
            ok = {o.message_id for o in outs if o.code == 250}
            delivered = run._wait_delivered(s.sink, ok, 60)
            ck.expect(delivered == ok, f"{len(ok - delivered)} accepted messages not delivered")
            by_id = {x.message_id: x for x in s.sink.messages()}
            unclean = [i for i in delivered if by_id[i].header_values("X-Virus-Status") != ["Clean"]]
            ck.expect(not unclean, f"{len(unclean)} delivered without X-Virus-Status: Clean")
            # After the run: the totals add up and the queue is empty.
            res = ctl(s, m, "stats")
            st = stats_dict(res.stdout)
            ck.expect(st.get("Examined") == str(len(msgs)), f"Examined {st.get('Examined')} != {len(msgs)}")
            ck.expect(st.get("Infected") == str(len(infected)), f"Infected {st.get('Infected')}")
            ck.expect(st.get("VirusFree") == str(len(msgs) - len(infected)), f"VirusFree {st.get('VirusFree')}")
            ck.expect(st.get("Action.reject") == str(len(infected)), f"Action.reject {st.get('Action.reject')}")
            ck.expect(st.get("InScannerQueue") == "0", f"InScannerQueue {st.get('InScannerQueue')} after the run")
            q = ctl(s, m, "queue")
            ck.expect(q.returncode == 0 and q.stdout == "InFlight: 0\n", f"queue after the run: {q.stdout!r}")
            health = ctl(s, m, "health")
            # The lab's certificate expires within TlsExpiryWarningDays: Warnings, not an Error.
            ck.expect(health.returncode == 0 and ("Health: Service validated" in health.stdout
                                                  or "Health: Warnings" in health.stdout)
                      and "State: up" in health.stdout and "ISTag: CI" in health.stdout
                      and "Latency: last=" in health.stdout and "Connections: in_use=" in health.stdout,
                      f"health after the run:\n{health.stdout}")
            (s.lab.dir / "ctl_stats.txt").write_text(res.stdout)
            (s.lab.dir / "ctl_health.txt").write_text(health.stdout)
            (s.lab.dir / "ctl_queue_sample.txt").write_text(sample_queue)
            (s.lab.dir / "ctl_health_busy.txt").write_text(busy_health)
            (s.lab.dir / "ctl_stats.json").write_text(ctl(s, m, "stats", "--json").stdout)
            ck.note(f"{answers} answers ({json_ok} JSON) during {result.get('secs', 0):.1f}s of mail, "
                    f"slowest {slowest * 1000:.0f} ms; Examined samples {examined[:3]}..{examined[-3:]}; "
                    f"most in flight {max_in_flight}, most parts pending {max_pending}, "
                    f"most InScannerQueue {max_in_queue}")
            ck.note("queue sample: " + sample_queue.replace("\n", " | ")[:300])

    @run.case("ctl_loglevel", "icap-milterctl loglevel debug makes debug lines appear without a "
                              "restart, loglevel info stops them; a reload applies LogLevel again")
    def case_ctl_loglevel(s: run.Suite, ck: run.Check) -> None:
        with s.milter("ctl_loglevel", {**s.tls_settings(), "LogLevel": "info"}) as m:
            def debug_lines_after(mark: int) -> list[str]:
                return [l for l in m.log_text()[mark:].splitlines() if "] debug: " in l]

            def send_clean(label: str) -> None:
                msg = mail.clean_multipart(label)
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg, label=label)

            pid = m.pid
            mark = len(m.log_text())
            send_clean("ctl loglevel: at info")
            ck.expect(not debug_lines_after(mark), f"debug lines at LogLevel info: {debug_lines_after(mark)[:2]}")
            res = ctl(s, m, "loglevel", "debug")
            ck.expect(res.returncode == 0 and "log level debug" in res.stdout, f"loglevel debug: {res}")
            mark = len(m.log_text())
            send_clean("ctl loglevel: at debug")
            lines = debug_lines_after(mark)
            ck.expect(any("part=" in l for l in lines), f"no per-part debug line after loglevel debug: {lines[:3]}")
            res = ctl(s, m, "loglevel", "info")
            ck.expect(res.returncode == 0, f"loglevel info: {res}")
            mark = len(m.log_text())
            send_clean("ctl loglevel: back at info")
            ck.expect(not debug_lines_after(mark), f"debug lines after loglevel info: {debug_lines_after(mark)[:2]}")
            # A reload applies the file's LogLevel (info) again.
            ctl(s, m, "loglevel", "debug")
            res = ctl(s, m, "reload")
            ck.expect(res.returncode == 0, f"reload: {res}")
            mark = len(m.log_text())
            send_clean("ctl loglevel: after reload")
            ck.expect(not debug_lines_after(mark), "debug lines after a reload to LogLevel info")
            bad = ctl(s, m, "loglevel", "loud")
            ck.expect(bad.returncode == 2, f"loglevel loud: rc={bad.returncode}")
            ck.expect(m.pid == pid, "the milter restarted")
            ck.note(f"{len(lines)} debug lines for one message at debug; e.g. {lines[0][:160] if lines else ''}")

    @run.case("ctl_reload", "icap-milterctl reload answers ok when the new config is in force and "
                            "an error (status 1) for a broken file; the socket is removed at exit")
    def case_ctl_reload(s: run.Suite, ck: run.Check) -> None:
        with s.milter("ctl_reload", s.tls_settings()) as m:
            path = Path(str(m.settings["ControlSocket"]))
            mode = path.stat().st_mode & 0o777
            ck.expect(mode == 0o660, f"control socket mode {oct(mode)}, expected 0660")
            s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()), m,
                              "EICAR before reload")
            m.settings["OnInfected"] = "discard"
            m.write_config()
            res = ctl(s, m, "reload")
            ck.expect(res.returncode == 0 and res.stdout.strip() == "reloaded", f"reload: {res}")
            # No waiting for a log line: the reply comes when the new config is in force.
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR after ctl reload"))
            ck.expect(out.code == 250, f"after reload to discard: expected 250, got {out}")
            s.expect_summary(ck, m, out.queue_id, "discard", "EICAR after ctl reload")
            m.settings["ScanThreads"] = "many"
            m.write_config()
            # icap-milterctl reports the file's errors, still finds ControlSocket in it, and
            # the daemon refuses the file, saying why.
            res = ctl(s, m, "reload")
            ck.expect(res.returncode == 1 and "daemon: reload failed: " in res.stderr
                      and res.stderr.count("'many' is not a number") == 2, f"broken reload: {res}")
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR after bad ctl reload"))
            ck.expect(out.code == 250, f"after a bad reload: expected the old discard (250), got {out}")
            m.settings["ScanThreads"] = 4
            m.write_config()
            unknown = ctl(s, m, "-s", str(path), "stats", "--json")
            ck.expect(unknown.returncode == 0 and json.loads(unknown.stdout)["Examined"] == 3,
                      f"-s SOCKET stats --json: {unknown}")
            ck.note(f"broken reload answered: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ''}")
        ck.expect(not path.exists(), f"{path} left behind after the milter stopped")
        gone = ctl(s, m, "stats")
        ck.expect(gone.returncode == 3, f"stats with no daemon: rc={gone.returncode}")

    @run.case("ctl_hostile", "a control client that connects and stalls, or sends megabytes, "
                             "delays neither another icap-milterctl stats (under 1 s) nor the mail")
    def case_ctl_hostile(s: run.Suite, ck: run.Check) -> None:
        with s.milter("ctl_hostile", s.tls_settings()) as m:
            path = str(m.settings["ControlSocket"])
            stalled = []
            for _ in range(8):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(path)
                stalled.append(c)
            half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            half.connect(path)
            half.sendall(b"sta")    # a request that never ends
            stalled.append(half)
            stop = threading.Event()
            flooded = [0]

            def flood() -> None:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as f:
                    f.connect(path)
                    f.settimeout(0.5)
                    chunk = b"A" * 65536
                    while not stop.is_set() and flooded[0] < 10 << 20:
                        try:
                            flooded[0] += f.send(chunk)
                        except socket.timeout:
                            continue
                        except OSError:
                            break

            ft = threading.Thread(target=flood)
            ft.start()
            times = []
            for _ in range(5):
                t0 = time.monotonic()
                res = ctl(s, m, "stats")
                times.append(time.monotonic() - t0)
                ck.expect(res.returncode == 0 and "Examined:" in res.stdout, f"stats beside stalled clients: {res}")
            msg = mail.clean_multipart("mail beside stalled control clients")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
            stop.set()
            ft.join(10)
            ck.expect(max(times) < 1.0, f"stats took up to {max(times):.2f}s beside stalled clients")
            ck.expect(flooded[0] < 10 << 20, "the flooding client pushed all 10 MB in")
            # The stalled clients are dropped at their deadline (5 s), with no reply.
            time.sleep(5.5)
            for c in stalled:
                c.settimeout(2)
                try:
                    data = c.recv(100)
                except OSError:
                    data = b""
                ck.expect(data == b"", f"a stalled client got {data!r}")
                c.close()
            ck.expect("client dropped reason=timeout reading the request" in m.log_text(),
                      "no 'client dropped' line for the stalled clients")
            ck.note(f"stats beside 9 stalled clients and a flood: {', '.join(f'{x * 1000:.0f}' for x in times)} ms; "
                    f"the flood got {flooded[0]} bytes in before it was cut off")
