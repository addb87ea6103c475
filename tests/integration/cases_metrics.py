"""
cases_metrics.py - the Prometheus /metrics endpoint (MetricsListen)

SUMMARY
    Registered into run.py (register(run)). The milter runs with
    MetricsListen on a loopback port the case picks, behind the lab's
    Postfix, c-icap and clamd (TLS). Clean and EICAR mail is sent, then
    /metrics is fetched with a real HTTP client (urllib) and parsed with
    Debian's python3-prometheus-client (text_string_to_metric_families,
    which raises on anything malformed). The counters must match what was
    sent and what SIGUSR1's stats line says; the per-part histogram must
    count exactly the parts the summary lines show as scanned; the scanner
    must be up and the queue gauge present. Without MetricsListen the
    milter listens on no TCP port; a port already taken makes start-up
    fail with status 1 and a line naming the address and the reason. With
    User set, a port below 1024 opened before the privilege drop still
    serves after it, from a process that runs as User.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

import cases_privs  # start_as_user, stop_milter, running_as: the privilege-drop helpers
import mail

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a python3 other than Debian's: use Debian's package, as installed
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

# A part the summary line shows as scanned: "1:clean", "2:infected(Eicar)", "0:clean".
SCANNED_PART_RE = re.compile(r"^[^\s:]+:(clean|infected)")


def scrape(port: int) -> tuple[str, str]:
    """scrape - GET /metrics from 127.0.0.1:port: (Content-Type, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        if r.status != 200:
            raise OSError(f"/metrics answered HTTP {r.status}")
        return r.headers.get("Content-Type", ""), r.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """samples - every sample of the exposition text, keyed by
    (sample name, sorted labels). Raises ValueError on malformed text."""
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(got: dict, name: str, **labels) -> Optional[float]:
    """value - one sample's value, None when absent."""
    return got.get((name, tuple(sorted(labels.items()))))


def total(got: dict, name: str) -> float:
    """total - the sum of a sample name over all its label sets."""
    return sum(v for (n, _), v in got.items() if n == name)


def scanned_parts(summary: str) -> int:
    """scanned_parts - parts the summary line's verdicts=[...] shows as scanned."""
    found = re.search(r"verdicts=\[([^\]]*)\]", summary)
    return sum(1 for p in found.group(1).split() if SCANNED_PART_RE.match(p)) if found else -1


def tcp_listen_ports(pid: int) -> list[int]:
    """tcp_listen_ports - TCP ports pid's own sockets listen on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A = LISTEN
                ports.append(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("metrics_scrape", "MetricsListen: /metrics over HTTP, parsed; counters, part and "
                                "message histograms, scanner health and queue gauges match the mail sent")
    def case_metrics_scrape(s: run.Suite, ck: run.Check) -> None:
        if not ck.expect(text_string_to_metric_families is not None,
                         "prometheus_client not importable: install python3-prometheus-client "
                         "(scripts/install-deps.sh)"):
            return
        port = s.lab.ports.get()
        # The lab's test certificate lives 30 days: without TlsExpiryWarningDays 0
        # its expiry warning would make the scanner "Warnings" rather than "validated".
        settings = dict(s.tls_settings(), MetricsListen=f"127.0.0.1:{port}", TlsExpiryWarningDays=0)
        with s.milter("metrics", settings) as m:
            ck.expect(m.wait_log(f"listening on http://127.0.0.1:{port}/metrics"),
                      "no 'metrics: Prometheus endpoint listening on ...' log line")
            ck.expect(port in tcp_listen_ports(m.pid), f"the milter does not listen on port {port}")
            _, before = scrape(port)
            got = samples(before)
            ck.expect(value(got, "icap_milter_examined_total") == 0,
                      f"a fresh milter has examined_total {value(got, 'icap_milter_examined_total')}")

            sent = []
            for i in range(2):
                msg = mail.clean_multipart(f"metrics clean {i}")
                out = mail.send_one(s.postfix.smtp_port, msg)
                s.expect_delivered(ck, out, m, sent=msg, label=f"clean {i}")
                sent.append(out)
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("metrics EICAR"))
            s.expect_rejected(ck, out, m, "EICAR")
            sent.append(out)
            qids = [o.queue_id or s.postfix.queue_id_for(o.message_id) for o in sent]
            summaries = [m.summary_lines(q) for q in qids if q]
            parts = sum(scanned_parts(l[0]) for l in summaries if l)
            ck.expect(len(summaries) == 3 and all(len(l) == 1 for l in summaries) and parts > 3,
                      f"summary lines {summaries}")

            ctype, text = scrape(port)
            (m.dir / "metrics.txt").write_text(text)  # kept with --keep
            ck.expect(ctype.startswith("text/plain"),
                      f"Content-Type {ctype!r}, expected text/plain (the text exposition format)")
            try:
                got = samples(text)
            except ValueError as e:
                ck.expect(False, f"the exposition text does not parse: {e}")
                return
            server = settings["IcapServer"]
            expect = {
                ("icap_milter_examined_total", ()): 3,
                ("icap_milter_virus_free_total", ()): 2,
                ("icap_milter_infected_total", ()): 1,
                ("icap_milter_unscanned_total", ()): 0,
                ("icap_milter_actions_total", (("action", "accept"),)): 2,
                ("icap_milter_actions_total", (("action", "reject"),)): 1,
                ("icap_milter_scanned_total", ()): parts,
                ("icap_milter_sent_to_scanner_total", ()): parts,
                ("icap_milter_part_scan_seconds_count", (("server", server),)): parts,
                ("icap_milter_message_scan_seconds_count", ()): 3,
                ("icap_milter_scanner_up", (("server", server),)): 1,
                ("icap_milter_scan_queue_length", ()): 0,
                ("icap_milter_messages_in_scan", ()): 0,
            }
            for key, want in expect.items():
                ck.expect(got.get(key) == want, f"{key}: expected {want}, scraped {got.get(key)}")
            ck.expect(total(got, "icap_milter_part_scan_seconds_count") == parts,
                      "part histogram counts parts of a server the milter does not have")
            inf = value(got, "icap_milter_part_scan_seconds_bucket", server=server, le="+Inf")
            ck.expect(inf == parts, f"part histogram +Inf bucket {inf}, expected {parts}")
            ck.expect(0 < (value(got, "icap_milter_part_scan_seconds_sum", server=server) or 0) < 60 * parts,
                      "part histogram sum is not a plausible number of seconds")
            # Health: one state is 1, "validated", as SIGUSR1's "Health:" says.
            line = m.stats()
            health = re.search(r"Health: (Pending validation|Service validated|Warnings|Error)", line)
            label = {"Pending validation": "pending", "Service validated": "validated",
                     "Warnings": "warnings", "Error": "error"}[health.group(1)] if health else None
            states = {dict(k[1]).get("state"): v for k, v in got.items()
                      if k[0] == "icap_milter_scanner_health" and dict(k[1]).get("server") == server}
            ck.expect(sorted(states) == ["error", "pending", "validated", "warnings"]
                      and sum(states.values()) == 1 and label == "validated"
                      and states.get(label) == 1,
                      f"scanner_health for {server}: {states}; stats line says {label}")
            overall = {dict(k[1]).get("state"): v for k, v in got.items() if k[0] == "icap_milter_health"}
            ck.expect(sum(overall.values()) == 1 and overall.get(label) == 1,
                      f"overall health {overall}; stats line says {label}")
            ck.note(f"health: {label}")
            ck.expect(value(got, "icap_milter_scanner_self_test_passed", server=server) == 1,
                      "scanner_self_test_passed is not 1 (the lab's c-icap passes every canary)")
            ck.expect((value(got, "icap_milter_scanner_connections_open", server=server) or 0) >= 1,
                      "no open connection counted to the scanner")
            ck.expect(any(k[0] == "icap_milter_scanner_definitions_info" for k in got),
                      "no scanner_definitions_info (ISTag) sample")

            # The same figures as SIGUSR1's stats line.
            for name, metric in (("Examined", "icap_milter_examined_total"),
                                 ("Scanned", "icap_milter_scanned_total"),
                                 ("Infected", "icap_milter_infected_total"),
                                 ("VirusFree", "icap_milter_virus_free_total")):
                ck.expect(m.counter(line, name) == value(got, metric),
                          f"stats line {name}={m.counter(line, name)}, /metrics {metric}={value(got, metric)}")
            # A reload does not move the listener: it warns, and the old port keeps answering.
            m.settings["MetricsListen"] = f"127.0.0.1:{s.lab.ports.get()}"
            m.write_config()
            os.kill(m.pid, signal.SIGHUP)
            ck.expect(m.wait_log("MetricsListen changes take effect only after a restart"),
                      "no reload warning naming MetricsListen")
            ck.expect(m.wait_log("reload: configuration"), "the reload was not applied")
            ck.expect(value(samples(scrape(port)[1]), "icap_milter_examined_total") == 3,
                      "the endpoint stopped answering on its port after a reload")
            m.settings["MetricsListen"] = f"127.0.0.1:{port}"
            m.write_config()
            ck.note(f"{parts} parts scanned in 3 messages; part scan sum "
                    f"{value(got, 'icap_milter_part_scan_seconds_sum', server=server):.3f}s")
            wanted = ("icap_milter_examined_total", "icap_milter_infected_total", "icap_milter_virus_free_total",
                      'icap_milter_actions_total{action="reject"}', "icap_milter_scan_queue_length",
                      "icap_milter_scanner_up", 'state="validated"', "icap_milter_part_scan_seconds_count",
                      'le="0.05"', "icap_milter_message_scan_seconds_count")
            for l in text.splitlines():
                if not l.startswith("#") and any(w in l for w in wanted):
                    ck.note("scrape: " + l)

    @run.case("metrics_off_and_busy", "MetricsListen empty opens no TCP port; a port in use stops "
                                      "start-up with status 1 and a line naming address and reason")
    def case_metrics_off_and_busy(s: run.Suite, ck: run.Check) -> None:
        with s.milter("metrics-off", s.tls_settings()) as m:
            msg = mail.clean_multipart("metrics off")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
            ports = tcp_listen_ports(m.pid)
            ck.expect(ports == [], f"with MetricsListen empty the milter listens on TCP {ports}")
            ck.expect("metrics:" not in m.log_text(), "a metrics line was logged with MetricsListen empty")

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            m = s.lab.milter("milter-metrics-busy", s.binary,
                             dict(s.tls_settings(), MetricsListen=f"127.0.0.1:{port}"),
                             f"unix:{s.lab.dir / 'milter-metrics-busy' / 'milter.sock'}")
            try:
                s.lab.start_milter(m)
                ck.expect(False, "the milter started although its MetricsListen port is taken")
                s.lab.forget(m)
            except run.LabError:
                pass
            ck.expect(m.proc is not None and m.proc.returncode == 1,
                      f"exit status {m.proc.returncode if m.proc else None}, expected 1")
            want = f"start-up failed: MetricsListen 127.0.0.1:{port}: cannot listen: Address already in use"
            ck.expect(want in m.log_text(), f"no '{want}' in the log:\n{m.log_text()[-600:]}")
            ck.note(next((l for l in m.log_text().splitlines() if "start-up failed" in l), "")[-160:])

        # A malformed address is a configuration error (-t, exit 78), named with the key.
        m = s.lab.milter("milter-metrics-bad", s.binary, dict(s.tls_settings(), MetricsListen="localhost:9375"))
        r = m.check_config()
        ck.expect(r.returncode == 78 and "names are not accepted" in r.stderr,
                  f"-t with MetricsListen localhost:9375: status {r.returncode}, {r.stderr.strip()}")

    @run.case("metrics_as_user", "User set: MetricsListen on a port below 1024 is opened before the "
                                 "privilege drop and still serves after it")
    def case_metrics_as_user(s: run.Suite, ck: run.Check) -> None:
        port = free_privileged_port()
        if not ck.expect(port, "no free loopback port in 900-1000"):
            return
        try:
            m = cases_privs.start_as_user(s, "metrics-user", dict(s.tls_settings(),
                                                                   MetricsListen=f"127.0.0.1:{port}"))
        except run.LabError as e:
            ck.expect(False, f"milter with User and MetricsListen 127.0.0.1:{port} did not start: {e}")
            return
        try:
            uid = cases_privs.running_as(m.pid)
            ck.expect(uid == cases_privs.test_user().pw_uid, f"the milter runs as uid {uid}, not User")
            msg = mail.clean_multipart("metrics as user")
            s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg)
            got = samples(scrape(port)[1])
            ck.expect(value(got, "icap_milter_examined_total") == 1 and value(got, "icap_milter_virus_free_total") == 1,
                      f"after one clean message: examined {value(got, 'icap_milter_examined_total')}, "
                      f"virus_free {value(got, 'icap_milter_virus_free_total')}")
            ck.note(f"port {port}, milter uid {uid}")
        finally:
            cases_privs.stop_milter(s, m)


    @run.case("metrics_under_load", "scrapes every 50 ms during 60 messages over 6 SMTP sessions all parse, "
                                    "counters never go back, the end matches; idle clients holding "
                                    "civetweb's threads delay scrapes, never mail")
    def case_metrics_under_load(s: run.Suite, ck: run.Check) -> None:
        if not ck.expect(text_string_to_metric_families is not None, "prometheus_client not importable"):
            return
        port = s.lab.ports.get()
        settings = dict(s.tls_settings(), MetricsListen=f"127.0.0.1:{port}", LogLevel="info")
        with s.milter("metrics-load", settings) as m:
            stop = threading.Event()
            seen: list[dict] = []
            errors: list[str] = []

            def scraper() -> None:
                while not stop.is_set():
                    try:
                        seen.append(samples(scrape(port)[1]))
                    except (OSError, ValueError) as e:
                        errors.append(repr(e))
                    time.sleep(0.05)

            t = threading.Thread(target=scraper)
            t.start()
            try:
                count = 60
                msgs = [mail.clean_multipart(f"metrics load {i}") for i in range(count)]
                outs, secs = run._send_many(s.postfix.smtp_port, msgs, 6)
            finally:
                stop.set()
                t.join()
            ok = [o for o in outs if o.code == 250]
            ck.expect(len(ok) == count, f"{len(ok)}/{count} accepted: {[str(o) for o in outs if o.code != 250][:3]}")
            ck.expect(not errors, f"{len(errors)} scrapes failed: {errors[:3]}")
            ck.expect(len(seen) >= 5, f"only {len(seen)} scrapes during the load")
            for name in ("icap_milter_examined_total", "icap_milter_scanned_total",
                         "icap_milter_message_scan_seconds_count"):
                series = [value(g, name) or 0 for g in seen]
                ck.expect(all(a <= b for a, b in zip(series, series[1:])), f"{name} went back: {series}")
            busiest = max((value(g, "icap_milter_messages_in_scan") or 0) for g in seen) if seen else 0
            final = samples(scrape(port)[1])
            ck.expect(value(final, "icap_milter_examined_total") == count
                      and value(final, "icap_milter_virus_free_total") == count
                      and value(final, "icap_milter_message_scan_seconds_count") == count,
                      f"final examined {value(final, 'icap_milter_examined_total')}, virus_free "
                      f"{value(final, 'icap_milter_virus_free_total')}, message histogram count "
                      f"{value(final, 'icap_milter_message_scan_seconds_count')}, expected {count}")
            ck.expect(total(final, "icap_milter_part_scan_seconds_count") == value(final, "icap_milter_scanned_total"),
                      "part histogram count differs from scanned_total")
            ck.expect(value(final, "icap_milter_messages_in_scan") == 0, "messages_in_scan not back to 0")
            ck.note(f"{count} messages in {secs:.1f}s with {len(seen)} scrapes alongside; "
                    f"most messages in scan at a scrape: {busiest:.0f}")

            # Idle clients take both civetweb threads: scrapes wait (request
            # timeout 5 s), mail does not.
            idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
            try:
                time.sleep(0.3)
                msg = mail.clean_multipart("metrics: mail while scrapers hang")
                t0 = time.monotonic()
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg,
                                   label="mail while idle HTTP clients hold the endpoint")
                mail_secs = time.monotonic() - t0
                ck.expect(mail_secs < 4, f"mail took {mail_secs:.1f}s while the endpoint was held")
                t0 = time.monotonic()
                got = samples(scrape(port)[1])
                ck.expect(value(got, "icap_milter_examined_total") == count + 1,
                          "the endpoint did not recover after the idle clients timed out")
                ck.note(f"with 3 idle HTTP clients: mail {mail_secs:.2f}s, next scrape "
                        f"{time.monotonic() - t0:.1f}s")
            finally:
                for c in idle:
                    c.close()

def free_privileged_port() -> Optional[int]:
    """free_privileged_port - a loopback port in 900-1000 nothing listens on (we are root)."""
    for port in range(900, 1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return None
