"""
cases_privs.py - the privilege drop: TLS files read as root, reload as User

SUMMARY
    Registered into run.py (register(run)). Each case runs icap-milter
    with User set to an unprivileged account (created once, "icapm-test"):

      * privs_mtls_key - mutual TLS to a real c-icap that requires a client
        certificate, with the client key 0600 root: the milter starts,
        scans, and a SIGHUP reload keeps scanning with the key it read
        before the privilege drop, logging a warning that names the file;
      * privs_reload_log - with LogTarget file: a SIGHUP that changes a
        setting is applied and logged, though the root-owned log file
        cannot be reopened after the drop.

    Only the account is made (useradd -r), once, and left for later runs;
    every file the cases make lives in the lab's work directory.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import mail

TEST_USER = "icapm-test"


def test_user() -> pwd.struct_passwd:
    """test_user - the unprivileged account the cases run as (made once)."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                        TEST_USER], check=True, capture_output=True, text=True)
        return pwd.getpwnam(TEST_USER)


def client_cert(lab) -> tuple[Path, Path]:
    """client_cert - a client certificate (clientAuth) signed by the lab's
    test CA, and its key made 0600 root: what mutual TLS needs."""
    pki = lab.pki
    ca = pki.ca("test-ca")
    cert, key = pki.dir / "milter-client.pem", pki.dir / "milter-client.key"
    if not cert.exists():
        csr, ext = pki.dir / "milter-client.csr", pki.dir / "milter-client.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=clientAuth\n")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(key), "-out", str(csr),
                        "-subj", "/O=icap-milter tests/CN=icap-milter client"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca),
                        "-CAkey", str(pki.dir / "test-ca.key"), "-CAcreateserial", "-days", "30",
                        "-out", str(cert), "-extfile", str(ext)], check=True, capture_output=True)
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def handshake_ok(port: int, ca: Path, cert: Path | None = None, key: Path | None = None) -> bool:
    """handshake_ok - True when an ICAP OPTIONS over TLS to port gets a
    reply (with the client certificate when given)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as conn:
            conn.sendall((f"OPTIONS icap://localhost:{port}/avscan ICAP/1.0\r\n"
                          f"Host: localhost:{port}\r\nEncapsulated: null-body=0\r\n\r\n").encode())
            return conn.recv(64).startswith(b"ICAP/1.0 200")
    except (OSError, ssl.SSLError):
        return False


def start_as_user(s, tag: str, settings: dict[str, object]):
    """start_as_user - a milter with User set whose temp directory belongs
    to that user; started on the socket Postfix uses. The caller stops it
    with stop_milter."""
    user = test_user()
    m = s.lab.milter(f"milter-{tag}", s.binary, {**settings, "User": user.pw_name}, s.socket_spec)
    tmp = Path(str(m.settings["TempDirectory"]))
    os.chown(tmp, user.pw_uid, user.pw_gid)
    os.chmod(tmp, 0o700)
    s.lab.start_milter(m)
    return m


def stop_milter(s, m) -> None:
    """stop_milter - stop by PID and record how it stopped."""
    s.lab.forget(m)
    s.check_stopped(m)


def running_as(pid: int) -> int:
    """running_as - the real uid of a process (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return -1


def register(run) -> None:
    """register - add this module's cases to run.py's list."""

    @run.case("privs_mtls_key", "User set, mutual TLS with a 0600 root client key: starts and scans; "
                                "a SIGHUP reload keeps the key read before the privilege drop (warning "
                                "logged) and mail is still scanned")
    def case_privs_mtls_key(s: run.Suite, ck: run.Check) -> None:
        cert, key = client_cert(s.lab)
        ca = s.lab.pki.ca("test-ca")
        server = s.lab.pki.server("cicap-mtls-server", "test-ca")
        port = s.lab.ports.get()
        # A second TLS listener on the main c-icap would change the shared
        # lab; this c-icap requires a client certificate on its TLS port.
        icap = s.lab.start_cicap("cicap-mtls", s.clamd, tls=True, extra_conf=[
            f"TlsPort 127.0.0.1:{port} cert={server.cert} key={server.key} client_ca={ca} cafile={ca}"
            " tls-options=SSL_OP_NO_TLSv1|SSL_OP_NO_TLSv1_1"])
        try:
            ck.expect(handshake_ok(port, ca, cert, key), "c-icap's mutual-TLS port refused our client certificate")
            ck.expect(not handshake_ok(port, ca), "c-icap's mutual-TLS port accepted a client without a certificate")
            settings = {"IcapServer": f"icaps://localhost:{port}/avscan", "TlsCAFile": str(ca),
                        "TlsCertFile": str(cert), "TlsKeyFile": str(key)}
            try:
                m = start_as_user(s, "privs_mtls_key", settings)
            except run.LabError as e:
                ck.expect(False, f"milter with User and a 0600 root client key did not start: {e}")
                return
            try:
                uid = running_as(m.pid)
                ck.expect(uid == test_user().pw_uid, f"milter runs as uid {uid}, not {TEST_USER}")
                msg = mail.clean_multipart("mTLS clean before reload")
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg,
                                   label="clean over mutual TLS")
                s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()),
                                  m, "EICAR over mutual TLS")
                m.settings["OnInfected"] = "discard"
                m.write_config()
                os.kill(m.pid, signal.SIGHUP)
                ck.expect(m.wait_log("reload: configuration"),
                          "no 'reload: configuration ... loaded' line after SIGHUP")
                warning = next((l for l in m.log_text().splitlines()
                                if "TlsKeyFile" in l and "previously loaded contents stay in use" in l), "")
                ck.expect(warning and str(key) in warning,
                          "no warning naming the unreadable client key and keeping its contents")
                if warning:
                    ck.note(warning.split(": ", 1)[-1][:240])
                out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("mTLS EICAR after reload"))
                ck.expect(out.code == 250, f"after reload to discard: expected 250, got {out}")
                s.expect_summary(ck, m, out.queue_id, "discard", "EICAR after reload")
                msg = mail.clean_multipart("mTLS clean after reload")
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), m, sent=msg,
                                   label="clean over mutual TLS after reload")
            finally:
                stop_milter(s, m)
        finally:
            s.lab.forget(icap)

    @run.case("privs_reload_log", "User set and LogTarget file: a SIGHUP that changes a setting is "
                                  "applied and logged (the root-owned log file stays open)")
    def case_privs_reload_log(s: run.Suite, ck: run.Check) -> None:
        try:
            m = start_as_user(s, "privs_reload_log", {"IcapServer": s.icap.url(tls=False)})
        except run.LabError as e:
            ck.expect(False, f"milter with User did not start: {e}")
            return
        try:
            owner = m.log.stat().st_uid
            ck.note(f"log file owner uid {owner}, milter uid {running_as(m.pid)}")
            s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment()),
                              m, "EICAR before reload")
            m.settings["OnInfected"] = "discard"
            m.write_config()
            os.kill(m.pid, signal.SIGHUP)
            ck.expect(m.wait_log("reload: configuration"),
                      "no 'reload: configuration ... loaded' line after SIGHUP")
            ck.expect("keeping the running configuration" not in m.log_text(),
                      "the reload was refused: " + next((l for l in m.log_text().splitlines()
                                                         if "reload:" in l and "error" in l), "")[:300])
            out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("EICAR after reload"))
            ck.expect(out.code == 250, f"after reload to discard: expected 250, got {out}")
            s.expect_summary(ck, m, out.queue_id, "discard", "EICAR after reload")
            time.sleep(1)
            ck.expect(not s.sink.find(out.message_id), "discarded EICAR reached the sink")
            kept = next((l for l in m.log_text().splitlines() if "not reopened" in l), "")
            if kept:
                ck.note(kept.split(": ", 1)[-1][:240])
        finally:
            stop_milter(s, m)
