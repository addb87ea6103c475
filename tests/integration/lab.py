"""
lab.py - a real-component mail lab on loopback for icap-milter tests

SUMMARY
    Builds, starts and stops everything the integration suite and the demo
    need, all on 127.0.0.1 and on ports picked at run time:

      * a test PKI made with openssl (a trusted CA, a second "rogue" CA,
        and server certificates for localhost / 127.0.0.1);
      * a ClamAV signature database made on the spot (an MD5 .hdb and a
        body .ndb signature for the EICAR test file: ClamAV ships none);
      * clamd with its own configuration, socket and log;
      * c-icap instances (plain ICAP and ICAP over TLS) using that clamd;
      * private Postfix instances (own config, queue, data and log file)
        relaying to an SMTP sink (sink.py);
      * icap-milter processes, with their config, log and peak RSS.

    Every process is started by this module and stopped by its PID (or by
    the process group it was started in), never by name. A Lab is a
    context manager: leaving it stops what it started, in reverse order,
    and removes the work directory unless keep=True.

DIAGNOSTICS
    LabError, with the tail of the relevant log, when a component fails to
    start or to become ready within its timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from sink import SmtpSink

# The standard 68-byte EICAR anti-virus test file.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# Names of the signatures made on the spot. ClamAV reports signatures that
# do not come from its official databases with ".UNOFFICIAL" appended.
SIG_HASH_NAME = "Icapm.Test.EICAR-Hash"
SIG_BODY_NAME = "Icapm.Test.EICAR-Body"
VIRUS_NAME_RE = re.compile(r"Icapm\.Test\.EICAR-(?:Hash|Body)\.UNOFFICIAL")

LOOPBACK = "127.0.0.1"


def _c_icap_libdir() -> str:
    """_c_icap_libdir - where Debian keeps c-icap's modules on this
    architecture (/usr/lib/<triplet>/c_icap)."""
    found = sorted(Path("/usr/lib").glob("*/c_icap/virus_scan.so"))
    return str(found[0].parent) if found else "/usr/lib/x86_64-linux-gnu/c_icap"


C_ICAP_LIBDIR = _c_icap_libdir()


class LabError(RuntimeError):
    """A lab component could not be set up, started or stopped."""


# ---------------------------------------------------------------- helpers

def poll(predicate: Callable[[], object], timeout: float, step: float = 0.1) -> bool:
    """poll - call predicate until it is true or timeout seconds pass;
    returns whether it became true (no exception, unlike wait_until)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.05) -> object:
    """wait_until - poll predicate until it returns a true value; raise
    LabError naming `what` when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    """tail - the last lines of a text file, or a note when it is absent."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


def run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """run - run a short command, raising LabError with its output on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise LabError(f"{what} failed ({' '.join(argv)}): rc={proc.returncode}\n"
                       f"{proc.stdout}{proc.stderr}")
    return proc


def port_is_open(port: int, host: str = LOOPBACK) -> bool:
    """port_is_open - True when something accepts TCP connections on port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """pid_alive - True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_cpu(pgid: Optional[int]) -> float:
    """group_cpu - CPU seconds of process group pgid (a daemon started by
    the lab leads its own group): utime+stime of its live processes plus
    cutime+cstime, the children they reaped (c-icap's, Postfix's smtpd and
    cleanup), so a child that exits inside a measured window still counts."""
    if not pgid:
        return 0.0
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


class PortAllocator:
    """PortAllocator - hands out free loopback TCP ports, never the same one
    twice in a run (the kernel may otherwise return a port twice before
    anything has bound it)."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def get(self) -> int:
        """get - a port nothing listens on now, bound once on port 0."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = s.getsockname()[1]
            if port not in self._given:
                self._given.add(port)
                return port
        raise LabError("no free loopback port found")


# ---------------------------------------------------------------- processes

class Daemon:
    """Daemon - a foreground process started by the lab in its own session
    (so a Ctrl-C at the terminal does not reach it) and stopped by PID:
    SIGTERM, then SIGKILL of its process group if it lingers."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.console = self.dir / "console.log"   # its stdout and stderr
        self.proc: Optional[subprocess.Popen] = None
        self.stop_seconds: Optional[float] = None
        self.killed = False

    # Subclasses provide argv() and ready(); they may override stop_timeout.
    stop_timeout = 10.0
    start_timeout = 60.0

    def argv(self) -> list[str]:
        """argv - the command line that runs the daemon in the foreground."""
        raise NotImplementedError

    def ready(self) -> bool:
        """ready - True once the daemon serves requests."""
        raise NotImplementedError

    @property
    def pid(self) -> Optional[int]:
        """pid - the PID of the running process, or None."""
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def alive(self) -> bool:
        """alive - True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "Daemon":
        """start - spawn the process and wait until it is ready."""
        if self.alive():
            return self
        with open(self.console, "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir,
                                         start_new_session=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise LabError(f"{self.name} exited with status {self.proc.returncode}"
                               f" during start-up:\n{self.diagnostics()}")
            return self.ready()

        try:
            wait_until(up, self.start_timeout, f"{self.name} to become ready", 0.1)
        except LabError as e:
            self.stop()
            raise LabError(f"{e}\n{self.diagnostics()}") from None
        return self

    def stop(self) -> Optional[int]:
        """stop - SIGTERM by PID, wait, then SIGKILL its process group;
        returns the exit status (None if it was not running). Records how
        long the process took (stop_seconds) and whether it had to be
        killed (killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            t0 = time.monotonic()
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
            self.stop_seconds = time.monotonic() - t0
        # The process group was created for this daemon alone (setsid at
        # spawn), so it holds only processes the lab started: its children.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def restart(self) -> "Daemon":
        """restart - stop, then start again with the same configuration."""
        self.stop()
        return self.start()

    def diagnostics(self) -> str:
        """diagnostics - recent console output, for error messages."""
        return f"--- {self.console}:\n{tail(self.console)}"


# ---------------------------------------------------------------- PKI

@dataclass
class ServerCert:
    """ServerCert - a server certificate and key, and the CA that signed it."""
    cert: Path
    key: Path
    ca: Path


class Pki:
    """Pki - a throw-away test PKI made with the openssl command (EC P-256)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def ca(self, name: str) -> Path:
        """ca - create (once) a self-signed CA called name; returns its PEM."""
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        if not cert.exists():
            run(["openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(cert), "-days", "30",
                 "-subj", f"/O=icap-milter tests/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"], f"making CA {name}")
        return cert

    def server(self, name: str, ca_name: str, dns: Iterable[str] = ("localhost",),
               ips: Iterable[str] = (LOOPBACK,)) -> ServerCert:
        """server - create (once) a server certificate signed by ca_name,
        valid for the given DNS names and IP addresses."""
        ca = self.ca(ca_name)
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        if not cert.exists():
            csr, ext = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
            sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
            ext.write_text(f"subjectAltName={','.join(sans)}\n"
                           "basicConstraints=critical,CA:FALSE\n"
                           "keyUsage=critical,digitalSignature,keyEncipherment\n"
                           "extendedKeyUsage=serverAuth\n"
                           "subjectKeyIdentifier=hash\n"
                           "authorityKeyIdentifier=keyid\n")
            first_dns = next(iter(dns), LOOPBACK)
            run(["openssl", "req", "-new", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(csr),
                 "-subj", f"/O=icap-milter tests/CN={first_dns}"], f"making key {name}")
            run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca),
                 "-CAkey", str(self.dir / f"{ca_name}.key"), "-CAcreateserial",
                 "-days", "30", "-out", str(cert), "-extfile", str(ext)],
                f"signing {name} with {ca_name}")
        return ServerCert(cert, key, ca)


# ---------------------------------------------------------------- ClamAV

class SignatureDb:
    """SignatureDb - a ClamAV database directory holding only test
    signatures for EICAR: an MD5 signature (.hdb, from sigtool --md5) and a
    body signature (.ndb) that also matches inside archives and behind
    other data. Also writes eicar.com for hand checks."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.eicar_file = self.dir.parent / "eicar.com"
        self.eicar_file.write_bytes(EICAR)
        md5 = run(["sigtool", "--md5", str(self.eicar_file)], "sigtool --md5").stdout
        digest, size, _ = md5.strip().split(":", 2)
        (self.dir / "icapm-test.hdb").write_text(f"{digest}:{size}:{SIG_HASH_NAME}\n")
        body = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".hex()
        (self.dir / "icapm-test.ndb").write_text(f"{SIG_BODY_NAME}:0:*:{body}\n")


class Clamd(Daemon):
    """Clamd - clamd in the foreground with its own config, local socket,
    log and the on-the-spot signature database. Runs as root (the lab's
    user), so it can read the c-icap temporary files it is asked to scan."""

    def __init__(self, name: str, directory: Path, db: SignatureDb) -> None:
        super().__init__(name, directory)
        self.db = db
        self.socket = self.dir / "clamd.sock"
        self.conf = self.dir / "clamd.conf"
        self.log = self.dir / "clamd.log"
        tmp = self.dir / "tmp"
        tmp.mkdir(exist_ok=True)
        self.conf.write_text(
            "Foreground yes\n"
            f"LocalSocket {self.socket}\n"
            "LocalSocketMode 660\n"
            "FixStaleSocket yes\n"
            f"DatabaseDirectory {db.dir}\n"
            f"PidFile {self.dir / 'clamd.pid'}\n"
            f"LogFile {self.log}\n"
            "LogTime yes\n"
            f"TemporaryDirectory {tmp}\n"
            "SelfCheck 0\n"
            "User root\n"
            "MaxThreads 8\n"
            "StreamMaxLength 200M\n"
            "MaxScanSize 400M\n"
            "MaxFileSize 200M\n")

    def argv(self) -> list[str]:
        return ["clamd", "-c", str(self.conf)]

    def ready(self) -> bool:
        return self.command(b"zPING\0") == b"PONG\0"

    def command(self, cmd: bytes) -> Optional[bytes]:
        """command - send one clamd command on its socket; the reply or None."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(cmd)
                return s.recv(4096)
        except OSError:
            return None

    def diagnostics(self) -> str:
        return f"{super().diagnostics()}\n--- {self.log}:\n{tail(self.log)}"


# ---------------------------------------------------------------- c-icap

class CIcap(Daemon):
    """CIcap - a c-icap server (virus_scan service, clamd engine) answering
    as service "avscan" on a plain port, and on a TLS port when given a
    certificate. stop()/start()/restart() keep the same ports, so tests can
    take a scanner down and bring it back."""

    SERVICE = "avscan"
    # c-icap waits for its clients' keep-alive connections to end before it
    # exits on SIGTERM; after 3 s the lab kills its process group instead.
    stop_timeout = 3.0

    def __init__(self, name: str, directory: Path, clamd: Clamd, port: int,
                 tls_port: Optional[int] = None, cert: Optional[ServerCert] = None,
                 debug_level: int = 1, extra_conf: Iterable[str] = (),
                 virus_scan_conf: Optional[Iterable[str]] = None) -> None:
        super().__init__(name, directory)
        if (tls_port is None) != (cert is None):
            raise LabError("a TLS port needs a certificate, and the reverse")
        self.clamd, self.port, self.tls_port, self.cert = clamd, port, tls_port, cert
        self.conf = self.dir / "c-icap.conf"
        self.server_log = self.dir / "server.log"
        self.access_log = self.dir / "access.log"
        tmp = self.dir / "tmp"
        tmp.mkdir(exist_ok=True)
        lines = [
            f"PidFile {self.dir / 'c-icap.pid'}",
            f"CommandsSocket {self.dir / 'c-icap.ctl'}",
            "Timeout 300",
            "MaxKeepAliveRequests 100",
            "KeepAliveTimeout 600",
            "StartServers 2",
            "MaxServers 4",
            "MinSpareThreads 5",
            "MaxSpareThreads 20",
            "ThreadsPerChild 10",
            "MaxRequestsPerChild 0",
            f"Port {LOOPBACK}:{port}",
        ]
        if cert is not None:
            lines.append(f"TlsPort {LOOPBACK}:{tls_port} cert={cert.cert} key={cert.key}"
                         " tls-options=SSL_OP_NO_TLSv1|SSL_OP_NO_TLSv1_1")
        lines += [
            "ServerName icap-lab",
            f"TmpDir {tmp}",
            "MaxMemObject 131072",
            f"DebugLevel {debug_level}",
            "Pipelining on",
            f"ModulesDir {C_ICAP_LIBDIR}",
            f"ServicesDir {C_ICAP_LIBDIR}",
            "TemplateDir /usr/share/c_icap/templates/",
            "TemplateDefaultLanguage en",
            "LoadMagicFile /etc/c-icap/c-icap.magic",
            f"ServerLog {self.server_log}",
            f"AccessLog {self.access_log}",
            "Module common clamd_mod.so",
            f"clamd_mod.ClamdSocket {clamd.socket}",
        ]
        if virus_scan_conf is None:
            lines += [
                "Service antivirus_module virus_scan.so",
                f"ServiceAlias {self.SERVICE} virus_scan?allow204=on&sizelimit=off&mode=simple",
                "virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GRAPHICS STREAM DOCUMENT",
                "virus_scan.SendPercentData 0",
                "virus_scan.Allow204Responces on",
                "virus_scan.MaxObjectSize 200M",
            ]
        else:
            # The virus_scan settings come from a file of their own, as
            # Debian's c-icap.conf includes /etc/c-icap/virus_scan.conf.
            included = self.dir / "virus_scan.conf"
            included.write_text("\n".join(virus_scan_conf) + "\n")
            lines.append(f"Include {included}")
        lines += [
            "virus_scan.DefaultEngine clamd",
            *extra_conf,
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return ["c-icap", "-N", "-f", str(self.conf)]

    def ready(self) -> bool:
        if not self.options_ok(tls=False):
            return False
        return self.tls_port is None or self.options_ok(tls=True)

    def url(self, tls: bool = True, host: Optional[str] = None) -> str:
        """url - the scanner URL for icap-milter's IcapServer key. TLS URLs
        name "localhost" (the certificate's name) unless host is given."""
        if tls:
            return f"icaps://{host or 'localhost'}:{self.tls_port}/{self.SERVICE}"
        return f"icap://{host or LOOPBACK}:{self.port}/{self.SERVICE}"

    def options_ok(self, tls: bool, ca: Optional[Path] = None) -> bool:
        """options_ok - send an ICAP OPTIONS request and expect a 200 that
        lists RESPMOD. Over TLS the certificate is checked for the name
        "localhost" against ca (default: the CA that signed it)."""
        port = self.tls_port if tls else self.port
        request = (f"OPTIONS icap://localhost:{port}/{self.SERVICE} ICAP/1.0\r\n"
                   f"Host: localhost:{port}\r\nEncapsulated: null-body=0\r\n\r\n").encode()
        try:
            with socket.create_connection((LOOPBACK, port), timeout=3) as raw:
                conn = raw
                if tls:
                    ctx = ssl.create_default_context(cafile=str(ca or self.cert.ca))
                    conn = ctx.wrap_socket(raw, server_hostname="localhost")
                conn.sendall(request)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                if tls:
                    # close_notify: a bare close poisons a c-icap thread
                    # (see KNOWN SCANNER ISSUES in icap-milter(8)).
                    try:
                        conn.unwrap()
                    except (OSError, ssl.SSLError, ValueError):
                        pass
        except (OSError, ssl.SSLError):
            return False
        return reply.startswith(b"ICAP/1.0 200") and b"RESPMOD" in reply

    def scan_with_client(self, path: Path, tls: bool = False) -> str:
        """scan_with_client - scan a file with c-icap-client (a hand check
        of the lab, independent of icap-milter); returns its output."""
        out = self.dir / "client-output"
        out.unlink(missing_ok=True)
        argv = ["c-icap-client", "-i", LOOPBACK, "-s", self.SERVICE, "-f", str(path), "-v",
                "-o", str(out)]
        if tls:
            argv += ["-p", str(self.tls_port), "-tls", "-tls-no-verify"]
        else:
            argv += ["-p", str(self.port)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return proc.stdout + proc.stderr

    def diagnostics(self) -> str:
        return (f"{super().diagnostics()}\n--- {self.server_log}:\n"
                f"{tail(self.server_log)}")


# ---------------------------------------------------------------- Postfix

MASTER_CF = """\
# master.cf - private lab instance: nothing chrooted, smtpd on loopback only
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class MaillogReader:
    """MaillogReader - queue-id look-ups in an MTA's maillog file (the
    maillog attribute): Postfix here, sendmail in sendmail_lab.py."""

    maillog: Path

    def log_text(self) -> str:
        """log_text - the maillog so far."""
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self, queue_id: str) -> list[str]:
        """log_lines - maillog lines about one queue id."""
        return [l for l in self.log_text().splitlines() if f": {queue_id}:" in l]

    def wait_log_line(self, queue_id: str, text: str, timeout: float = 10.0) -> Optional[str]:
        """wait_log_line - the first maillog line about queue_id containing
        text, waiting up to timeout seconds for it (postlogd writes late)."""
        def find() -> Optional[str]:
            return next((l for l in self.log_lines(queue_id) if text in l), None)
        try:
            return wait_until(find, timeout, f"'{text}' for {queue_id} in {self.maillog}", 0.1)
        except LabError:
            return None


class Postfix(MaillogReader):
    """Postfix - a private Postfix instance: its own config_directory,
    queue_directory, data_directory and maillog_file under the lab, smtpd
    on 127.0.0.1:smtp_port, everything relayed to relay_port (a sink, or
    another instance), with icap-milter as smtpd and non-smtpd milter.
    Several instances can run at once (each has its own queue and pid)."""

    def __init__(self, name: str, directory: Path, smtp_port: int, relay_port: int,
                 milter_socket: Optional[str], extra: Optional[dict[str, str]] = None) -> None:
        self.name = name
        self.dir = directory
        self.smtp_port = smtp_port
        self.relay_port = relay_port
        self.milter_socket = milter_socket
        self.conf_dir = self.dir / "etc"
        self.queue_dir = self.dir / "queue"
        self.data_dir = self.dir / "data"
        self.maillog = self.dir / "maillog"
        for d in (self.conf_dir, self.queue_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        self.params = self._main_cf(extra or {})
        self._write_config()

    def _main_cf(self, extra: dict[str, str]) -> dict[str, str]:
        """_main_cf - the main.cf parameters of this instance."""
        milters = self.milter_socket or ""
        p = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": f"{self.name}.icapm-lab.test",
            "mydomain": "icapm-lab.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": f"[{LOOPBACK}]:{self.relay_port}",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "smtp_bind_address": LOOPBACK,
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtputf8_enable": "no",
            "biff": "no",
            "in_flow_delay": "0",
            "message_size_limit": "104857600",
            "mailbox_size_limit": "0",
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "delay_warning_time": "0",
            "smtp_connect_timeout": "5s",
            "smtpd_milters": milters,
            "non_smtpd_milters": milters,
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
            "milter_connect_timeout": "10s",
            "milter_command_timeout": "60s",
            "milter_content_timeout": "300s",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.dir),
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
        }
        p.update(extra)
        return p

    def _write_config(self) -> None:
        """_write_config - write main.cf and master.cf."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "main.cf").write_text(
            f"# main.cf - private lab instance {self.name} (generated by lab.py)\n"
            + "".join(f"{k} = {v}\n" for k, v in self.params.items()))
        (self.conf_dir / "master.cf").write_text(
            MASTER_CF.format(listen=f"{LOOPBACK}:{self.smtp_port}"))

    def set(self, **params: str) -> None:
        """set - change main.cf parameters (takes effect at start or reload)."""
        self.params.update(params)
        self._write_config()

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """postfix - run the postfix command on this instance."""
        proc = subprocess.run(["postfix", "-c", str(self.conf_dir), *args],
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise LabError(f"postfix {' '.join(args)} ({self.name}) failed: "
                           f"{proc.stdout}{proc.stderr}\n--- {self.maillog}:\n"
                           f"{tail(self.maillog)}")
        return proc

    @property
    def pid(self) -> Optional[int]:
        """pid - the master daemon's PID from its pid file, if it runs."""
        try:
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> "Postfix":
        """start - check the configuration, start the master, wait for smtpd."""
        self.postfix("check")
        self.postfix("start")
        wait_until(lambda: port_is_open(self.smtp_port), 30, f"postfix {self.name} smtpd")
        return self

    def reload(self) -> None:
        """reload - make the running instance re-read its configuration."""
        self.postfix("reload")

    def stop(self) -> None:
        """stop - postfix stop, then SIGKILL the master by PID if it stays."""
        pid = self.pid
        if pid is None:
            return
        self.postfix("stop", check=False)
        try:
            wait_until(lambda: not pid_alive(pid), 15, f"postfix {self.name} to stop", 0.1)
        except LabError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def queue_id_for(self, message_id: str, timeout: float = 10.0) -> Optional[str]:
        """queue_id_for - the queue id cleanup logged for a Message-ID."""
        pattern = re.compile(r"postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id="
                             + re.escape(message_id))

        def find() -> Optional[str]:
            m = pattern.search(self.log_text())
            return m.group(1) if m else None
        try:
            return wait_until(find, timeout, f"message-id {message_id} in {self.maillog}")
        except LabError:
            return None

    def queue_count(self) -> int:
        """queue_count - messages still in the queue (active, incoming, deferred)."""
        n = 0
        for sub in ("incoming", "active", "deferred", "hold"):
            for _root, _dirs, files in os.walk(self.queue_dir / sub):
                n += len(files)
        return n


# ---------------------------------------------------------------- icap-milter

class Milter(Daemon):
    """Milter - icap-milter run in the foreground (-f) with a config file
    written from a dict of keys. Ready when its socket accepts connections.
    Reports its peak resident memory (VmHWM) and its log."""

    stop_timeout = 20.0
    start_timeout = 30.0

    def __init__(self, name: str, directory: Path, binary: Path, socket_spec: str,
                 settings: dict[str, object]) -> None:
        super().__init__(name, directory)
        self.binary = binary
        self.socket_spec = socket_spec
        self.conf = self.dir / "icap-milter.conf"
        self.log = self.dir / "milter.log"
        tmp = self.dir / "tmp"
        tmp.mkdir(exist_ok=True)
        self.settings: dict[str, object] = {
            "Socket": socket_spec,
            "SocketMode": "0666",
            "PidFile": str(self.dir / "icap-milter.pid"),
            "ControlSocket": str(self.dir / "control"),
            "TempDirectory": str(tmp),
            "ScanThreads": 4,
            "MaxScanSize": "50M",
            "OnInfected": "reject",
            "OnFail": "tempfail",
            "OnUnscannable": "accept",
            "LogTarget": f"file:{self.log}",
            "LogLevel": "debug",
            "IcapTimeout": "10s",
            "IcapConnectTimeout": "2s",
        }
        self.settings.update(settings)
        self.write_config()
        self.last_hwm_kb: Optional[int] = None

    def write_config(self) -> None:
        """write_config - write the settings as "Key value" lines; a list
        value repeats its key (e.g. several IcapServer lines)."""
        out = [f"# icap-milter.conf - lab instance {self.name} (generated by lab.py)"]
        for key, value in self.settings.items():
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                out.append(f"{key} {v}")
        self.conf.write_text("\n".join(out) + "\n")

    def argv(self) -> list[str]:
        return [str(self.binary), "-c", str(self.conf), "-f"]

    def check_config(self) -> subprocess.CompletedProcess:
        """check_config - icap-milter -t on the config (does not raise)."""
        return subprocess.run([str(self.binary), "-c", str(self.conf), "-t"],
                              capture_output=True, text=True, timeout=30)

    def ready(self) -> bool:
        kind, _, where = self.socket_spec.partition(":")
        try:
            if kind in ("unix", "local"):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect(where)
                return True
            port, _, host = where.partition("@")
            return port_is_open(int(port), host or LOOPBACK)
        except OSError:
            return False

    def vm_hwm_kb(self) -> Optional[int]:
        """vm_hwm_kb - peak resident set size (VmHWM) of the running milter."""
        pid = self.pid
        if pid is None:
            return self.last_hwm_kb
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.last_hwm_kb = int(line.split()[1])
        except OSError:
            pass
        return self.last_hwm_kb

    def cpu_seconds(self) -> float:
        """cpu_seconds - user plus system CPU time the milter used so far."""
        pid = self.pid
        if pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> Optional[int]:
        self.vm_hwm_kb()
        return super().stop()

    def log_text(self) -> str:
        """log_text - the milter's log file (and console) so far."""
        text = ""
        for p in (self.log, self.console):
            try:
                text += p.read_text(errors="replace")
            except OSError:
                pass
        return text

    def wait_log(self, text: str, timeout: float = 10.0) -> bool:
        """wait_log - True once the milter's log contains text."""
        return poll(lambda: text in self.log_text(), timeout)

    def stats_lines(self) -> list[str]:
        """stats_lines - the "stats:" lines (SIGUSR1, stop) logged so far."""
        return [l for l in self.log_text().splitlines() if "stats: " in l]

    def stats(self, timeout: float = 10.0) -> str:
        """stats - send SIGUSR1 and return the stats line it logs ("" when
        the milter is gone or says nothing in time)."""
        before = len(self.stats_lines())
        if self.pid is None:
            return ""
        os.kill(self.pid, signal.SIGUSR1)
        if not poll(lambda: len(self.stats_lines()) > before, timeout):
            return ""
        return self.stats_lines()[before]

    @staticmethod
    def counter(line: str, name: str) -> int:
        """counter - the value of "Name: N" in a stats line, -1 if absent."""
        found = re.search(rf"(?:^|\s){re.escape(name)}: (\d+)", line)
        return int(found.group(1)) if found else -1

    def summary_lines(self, queue_id: Optional[str] = None) -> list[str]:
        """summary_lines - per-message summary log lines (those with
        "action="), optionally only those naming queue_id."""
        return [l for l in self.log_text().splitlines()
                if "action=" in l and (queue_id is None or queue_id in l)]

    def diagnostics(self) -> str:
        return f"{super().diagnostics()}\n--- {self.log}:\n{tail(self.log)}"


# ---------------------------------------------------------------- the lab

def _traversable_by_others(path: Path) -> bool:
    """_traversable_by_others - True when every directory from / to path is
    searchable by other users (Postfix's smtpd runs as user postfix and
    must reach the milter socket)."""
    p = path.resolve()
    for d in [p, *p.parents]:
        if not (d.stat().st_mode & 0o001):
            return False
    return True


@dataclass
class Lab:
    """Lab - the work directory and every component started in it.
    Components are stopped in reverse order of start by close()."""

    keep: bool = False
    base: Optional[Path] = None
    verbose: bool = True          # say where a kept work directory is
    dir: Path = field(init=False)
    ports: PortAllocator = field(default_factory=PortAllocator)
    _started: list = field(default_factory=list)
    _pki: Optional[Pki] = None
    _db: Optional[SignatureDb] = None

    def __post_init__(self) -> None:
        base = self.base
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
            if not _traversable_by_others(base):
                base = None   # Postfix could not reach the sockets: use /tmp
        self.dir = Path(tempfile.mkdtemp(prefix="icapm-lab-", dir=base))
        os.chmod(self.dir, 0o755)

    # -- context manager
    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """close - stop every component (reverse order); remove the work
        directory unless keep was asked for."""
        while self._started:
            component = self._started.pop()
            try:
                component.stop()
            except Exception as e:  # keep stopping the others
                print(f"lab: stopping {getattr(component, 'name', component)}: {e}")
        if self.keep:
            if self.verbose:
                print(f"lab: work directory kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def track(self, component):
        """track - remember a started component so close() stops it."""
        if component not in self._started:
            self._started.append(component)
        return component

    def forget(self, component) -> None:
        """forget - stop a component now and stop tracking it."""
        component.stop()
        if component in self._started:
            self._started.remove(component)

    # -- shared pieces
    @property
    def pki(self) -> Pki:
        """pki - the lab's test PKI (made on first use)."""
        if self._pki is None:
            self._pki = Pki(self.dir / "pki")
        return self._pki

    @property
    def db(self) -> SignatureDb:
        """db - the lab's ClamAV signature database (made on first use)."""
        if self._db is None:
            self._db = SignatureDb(self.dir / "clamav-db")
        return self._db

    # -- components
    def start_clamd(self, name: str = "clamd") -> Clamd:
        """start_clamd - start clamd with the test signatures."""
        return self.track(Clamd(name, self.dir / name, self.db).start())

    def start_cicap(self, name: str, clamd: Clamd, tls: bool = True,
                    ca_name: str = "test-ca", extra_conf: Iterable[str] = (),
                    virus_scan_conf: Optional[Iterable[str]] = None) -> CIcap:
        """start_cicap - start a c-icap instance on fresh ports; with tls, it
        also listens for ICAP over TLS with a certificate for localhost and
        127.0.0.1 signed by CA ca_name. extra_conf lines are appended to
        its config (later keys override earlier ones). virus_scan_conf,
        when given, replaces the lab's tuned virus_scan settings (service,
        avscan alias, file types, sizes) with these lines, in an included
        file (e.g. Debian's virus_scan.conf as shipped)."""
        cert = self.pki.server(f"{name}-server", ca_name) if tls else None
        icap = CIcap(name, self.dir / name, clamd, self.ports.get(),
                     self.ports.get() if tls else None, cert, extra_conf=extra_conf,
                     virus_scan_conf=virus_scan_conf)
        return self.track(icap.start())

    def start_sink(self, name: str = "sink") -> SmtpSink:
        """start_sink - start an SMTP sink storing messages under the lab."""
        sink = SmtpSink(self.dir / name, host=LOOPBACK, port=self.ports.get(), name=name)
        return self.track(sink.start())

    def start_postfix(self, name: str, relay_port: int, milter_socket: Optional[str],
                      extra: Optional[dict[str, str]] = None) -> Postfix:
        """start_postfix - start a private Postfix instance relaying to relay_port."""
        pf = Postfix(name, self.dir / name, self.ports.get(), relay_port, milter_socket, extra)
        self.track(pf)   # track first: a failed start may leave a master running
        return pf.start()

    def milter(self, name: str, binary: Path, settings: dict[str, object],
               socket_spec: Optional[str] = None) -> Milter:
        """milter - an icap-milter instance (not started). The default
        socket is unix:<lab>/<name>/milter.sock."""
        directory = self.dir / name
        spec = socket_spec or f"unix:{directory / 'milter.sock'}"
        return Milter(name, directory, binary, spec, settings)

    def start_milter(self, milter: Milter) -> Milter:
        """start_milter - start a milter made by milter() and track it."""
        return self.track(milter.start())
