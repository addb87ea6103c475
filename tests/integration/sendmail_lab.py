"""
sendmail_lab.py - a private sendmail 8.17 on loopback for the icap-milter lab

SUMMARY
    SendmailTree fetches Debian's sendmail-bin and sendmail-cf (and
    libwrap0, which sendmail links against and a Postfix host lacks) with
    `apt-get download` and unpacks them with `dpkg -x` into a directory of
    the lab. Nothing is installed: Debian's sendmail conflicts with
    Postfix, so the system's Postfix, /etc/mail and the dpkg database are
    never touched.

    Sendmail is one instance of the unpacked binary: it writes an m4 .mc
    (its own queue, pid file, status file, aliases, service switch, hosts
    file and local host names, all in its directory; no DNS; smtpd on
    127.0.0.1:PORT only; every message relayed by the esmtp mailer to a
    loopback port; one INPUT_MAIL_FILTER with F=T), builds sendmail.cf
    from it with m4 and the unpacked cf tree, and runs sendmail -bD (a
    daemon in the foreground) as root.

    sendmail logs only to syslog(3), and the lab has no syslog daemon. So
    sendmail runs in a private mount namespace (unshare -m, private
    propagation) whose /dev is a small tmpfs holding the few device nodes
    it opens (bind-mounted from the real /dev) and a /dev/log that leads
    to a datagram socket of the instance; SyslogSink writes what arrives
    there to <dir>/maillog. Outside the namespace nothing changes.

DIAGNOSTICS
    LabError when the packages cannot be fetched or unpacked, when a
    shared library of the binary is missing, when m4 or newaliases fail,
    or when sendmail does not listen in time (with the tail of its console
    output and maillog).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

from lab import LOOPBACK, Daemon, LabError, MaillogReader, pid_alive, run, tail

# The packages unpacked (never installed). libwrap0 is a dependency of
# sendmail-bin that a Postfix-only Debian 12 does not have.
PACKAGES = ("sendmail-bin", "sendmail-cf", "libwrap0")

# Where the unpacked packages keep the binary, the m4 tree and the help file.
BINARY = "usr/libexec/sendmail/sendmail"
CF_DIR = "usr/share/sendmail/cf"
HELP_FILE = "etc/mail/helpfile"

# The unpacked tree of each lab work directory: unpacked once per run.
_TREES: dict[Path, "SendmailTree"] = {}

# Device nodes sendmail (and libc, OpenSSL, Berkeley DB) may open.
DEVICES = ("null", "zero", "random", "urandom")


class SendmailTree:
    """SendmailTree - Debian's sendmail packages unpacked under one directory
    (made once, then reused by every instance)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.version = ""             # the Debian version of sendmail-bin

    @property
    def binary(self) -> Path:
        """binary - the unpacked sendmail executable."""
        return self.dir / BINARY

    @property
    def cf_dir(self) -> Path:
        """cf_dir - the unpacked m4 tree (cf/m4/cf.m4, feature/, mailer/ ...)."""
        return self.dir / CF_DIR

    @property
    def lib_path(self) -> str:
        """lib_path - LD_LIBRARY_PATH for the unpacked libraries (libwrap)."""
        return ":".join(str(p) for p in sorted(self.dir.glob("usr/lib/*-linux-gnu"))
                        + sorted(self.dir.glob("lib/*-linux-gnu")))

    def ensure(self) -> "SendmailTree":
        """ensure - download and unpack the packages unless done before;
        check that the binary finds every shared library."""
        stamp = self.dir / ".unpacked"
        if not stamp.exists():
            self._unpack()
            stamp.write_text(self.version + "\n")
        self.version = stamp.read_text().strip()
        env = {**os.environ, "LD_LIBRARY_PATH": self.lib_path}
        ldd = run(["ldd", str(self.binary)], "ldd on the unpacked sendmail", env=env)
        missing = [l.split()[0] for l in ldd.stdout.splitlines() if "not found" in l]
        if missing:
            raise LabError(f"the unpacked sendmail lacks shared libraries: {missing}")
        return self

    def _unpack(self) -> None:
        """_unpack - apt-get download the .debs into a temporary directory
        (apt-get update once if the lists are missing), then dpkg -x each."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="debs-", dir=self.dir.parent) as tmp:
            argv = ["apt-get", "download", "-q", *PACKAGES]
            got = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=300)
            if got.returncode != 0:
                run(["apt-get", "update", "-qq"], "apt-get update", timeout=600)
                run(argv, "apt-get download", cwd=tmp, timeout=300)
            debs = sorted(Path(tmp).glob("*.deb"))
            if len(debs) != len(PACKAGES):
                raise LabError(f"apt-get download gave {[d.name for d in debs]}")
            for deb in debs:
                run(["dpkg", "-x", str(deb), str(self.dir)], f"dpkg -x {deb.name}")
                if deb.name.startswith("sendmail-bin_"):
                    self.version = run(["dpkg-deb", "-f", str(deb), "Version"],
                                       "dpkg-deb -f").stdout.strip()
        # The package's binary is set-group-ID mail: the loader would then
        # ignore LD_LIBRARY_PATH. This copy runs as root and needs no sgid.
        os.chmod(self.binary, 0o755)


class SyslogSink:
    """SyslogSink - a unix datagram socket that takes syslog(3) messages
    and appends them, one per line without the <priority>, to a file."""

    def __init__(self, sock: Path, log: Path) -> None:
        self.path = sock
        self.log = log
        self.path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(sock))
        os.chmod(sock, 0o666)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="syslog-sink", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """_serve - receive datagrams until stopped."""
        with open(self.log, "ab", buffering=0) as out:
            while not self._stop.is_set():
                try:
                    data = self._sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                out.write(re.sub(rb"^<\d+>", b"", data).rstrip(b"\0\n") + b"\n")

    def stop(self) -> None:
        """stop - end the thread and remove the socket."""
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        self.path.unlink(missing_ok=True)


class Sendmail(MaillogReader, Daemon):
    """Sendmail - one private sendmail instance: smtpd on 127.0.0.1:smtp_port,
    everything relayed to 127.0.0.1:relay_port, every SMTP message passed
    to the milter on milter_socket (F=T: no milter, no mail accepted)."""

    stop_timeout = 10.0
    start_timeout = 30.0

    def __init__(self, name: str, directory: Path, tree: SendmailTree, smtp_port: int,
                 relay_port: int, milter_socket: str) -> None:
        super().__init__(name, directory)
        self.tree = tree
        self.smtp_port = smtp_port
        self.relay_port = relay_port
        self.milter_socket = milter_socket
        self.hostname = f"{name}.icapm-lab.test"
        self.etc = self.dir / "etc"
        self.queue = self.dir / "mqueue"
        self.mc = self.dir / "sendmail.mc"
        self.cf = self.dir / "sendmail.cf"
        self.pid_file = self.dir / "sendmail.pid"
        self.maillog = self.dir / "maillog"
        self.traffic = self.dir / "traffic.log"     # sendmail -X: the SMTP dialogues
        self.syslog: Optional[SyslogSink] = None
        self.banner = ""
        for d in (self.etc, self.queue, self.dir / "hoststat", self.dir / "hostdev"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.queue, 0o700)
        self._write_files()
        self.syslog = SyslogSink(self.dir / "syslog.sock", self.maillog)
        try:
            self._build_cf()
        except LabError:
            self.syslog.stop()
            raise

    def mc_text(self) -> str:
        """mc_text - the m4 source of this instance's sendmail.cf."""
        d, e = self.dir, self.etc
        return f"""\
divert(-1)dnl
# sendmail.mc - private lab instance {self.name} (generated by sendmail_lab.py)
# Every file in {d}; no DNS; smtpd on {LOOPBACK}:{self.smtp_port} only;
# everything relayed to [{LOOPBACK}]:{self.relay_port}; icap-milter with F=T.
divert(0)dnl
OSTYPE(`linux')dnl
define(`MAIL_SETTINGS_DIR', `{e}/')dnl
define(`ALIAS_FILE', `{e}/aliases')dnl
define(`HELP_FILE', `{self.tree.dir / HELP_FILE}')dnl
define(`STATUS_FILE', `{d}/sendmail.st')dnl
define(`QUEUE_DIR', `{self.queue}')dnl
define(`confPID_FILE', `{self.pid_file}')dnl
define(`confCW_FILE', `{e}/local-host-names')dnl
define(`confCR_FILE', `-o {e}/relay-domains')dnl
define(`confHOSTS_FILE', `{e}/hosts')dnl
define(`confSERVICE_SWITCH_FILE', `{e}/service.switch')dnl
define(`confHOST_STATUS_DIRECTORY', `{d}/hoststat')dnl
define(`confDEAD_LETTER_DROP', `{d}/dead.letter')dnl
define(`confDOMAIN_NAME', `{self.hostname}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confTO_IDENT', `0')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confTO_CONNECT', `10s')dnl
define(`confLOG_LEVEL', `14')dnl
define(`confMILTER_LOG_LEVEL', `14')dnl
define(`SMART_HOST', `esmtp:[{LOOPBACK}]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {self.relay_port}')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {self.relay_port}')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(`Port={self.smtp_port}, Addr={LOOPBACK}, Name=MTA')dnl
INPUT_MAIL_FILTER(`icap-milter', `S={self.milter_socket}, F=T, T=S:10s;R:30s;E:5m')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

    def _write_files(self) -> None:
        """_write_files - the small files sendmail.cf points at."""
        e = self.etc
        (e / "aliases").write_text("postmaster: root\nMAILER-DAEMON: postmaster\n")
        (e / "local-host-names").write_text(f"{self.hostname}\n")
        (e / "relay-domains").write_text("")
        # The first line names the clients (127.0.0.1 is localhost); the
        # second qualifies the machine's own short name, which sendmail
        # looks up at start (unqualified, it sleeps 60 s and retries).
        short = socket.gethostname().split(".")[0]
        (e / "hosts").write_text(f"{LOOPBACK}\tlocalhost\n::1\tlocalhost\n"
                                 f"{LOOPBACK}\t{self.hostname} {short}\n"
                                 f"::1\t{self.hostname} {short}\n")
        (e / "resolv.conf").write_text(f"nameserver {LOOPBACK}\noptions timeout:1 attempts:1\n")
        (self.dir / "sendmail.st").write_text("")   # statistics kept only if it exists
        (e / "service.switch").write_text("hosts\tfiles\naliases\tfiles\n")
        self.mc.write_text(self.mc_text())

    def _build_cf(self) -> None:
        """_build_cf - m4 with the unpacked cf tree, then the aliases database."""
        cf_dir = self.tree.cf_dir
        out = run(["m4", f"-D_CF_DIR_={cf_dir}/", str(cf_dir / "m4" / "cf.m4"), str(self.mc)],
                  f"m4 for {self.name}", cwd=self.dir)
        if out.stderr.strip():
            raise LabError(f"m4 for {self.name} warned:\n{out.stderr}")
        self.cf.write_text(out.stdout)
        run(self._in_namespace("-bi"), f"newaliases for {self.name}", cwd=self.dir, timeout=60)

    def _env(self) -> dict[str, str]:
        """_env - the environment sendmail runs with (the unpacked libraries)."""
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH": self.tree.lib_path}

    def _sendmail_argv(self, *args: str) -> list[str]:
        """_sendmail_argv - the unpacked binary on this instance's config."""
        return [str(self.tree.binary), "-C", str(self.cf), "-L", f"sm-{self.name}", *args]

    def _in_namespace(self, *args: str) -> list[str]:
        """_in_namespace - a command line running sendmail with args in a
        private mount namespace: /etc/hosts and /etc/resolv.conf are this
        instance's (its names resolve from the file, and any DNS query goes
        to 127.0.0.1, where nothing listens), and /dev/log leads to its
        syslog socket. unshare and sh exec in turn, so the PID is sendmail's."""
        dev = self.dir / "hostdev"
        script = " && ".join(
            [f"mount --bind {self.etc / 'hosts'} /etc/hosts",
             f"mount --bind {self.etc / 'resolv.conf'} /etc/resolv.conf",
             f"mount --bind /dev {dev}",
             "mount -t tmpfs -o mode=0755,size=64k icapm-sendmail-dev /dev"]
            + [f": > /dev/{n} && mount --bind {dev}/{n} /dev/{n}" for n in DEVICES]
            + ["ln -s /proc/self/fd /dev/fd",
               f"ln -s {self.dir / 'syslog.sock'} /dev/log",
               f"umount -l {dev}",
               "exec " + " ".join(self._sendmail_argv(*args))])
        return ["unshare", "--mount", "--propagation", "private", "env", "-i",
                *(f"{k}={v}" for k, v in self._env().items()), "sh", "-c", script]

    def argv(self) -> list[str]:
        return self._in_namespace("-bD", "-q1m", "-X", str(self.traffic))

    def start(self) -> "Sendmail":
        """start - the syslog socket, then the daemon; ready once it listens."""
        if self.syslog is None:
            self.syslog = SyslogSink(self.dir / "syslog.sock", self.maillog)
        super().start()
        return self

    def ready(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.smtp_port), timeout=5) as s:
                reader = s.makefile("rb")
                self.banner = reader.readline().decode(errors="replace").strip()
                s.sendall(b"QUIT\r\n")
                reader.readline()
        except OSError:
            return False
        return self.banner.startswith("220")

    @property
    def daemon_pid(self) -> Optional[int]:
        """daemon_pid - the PID sendmail wrote to its PidFile, if it runs."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def stop(self) -> Optional[int]:
        """stop - SIGTERM the daemon by the PID in its PidFile (the process
        the lab started: unshare, sh and sendmail exec in turn), wait, SIGKILL
        its process group if it lingers (Daemon.stop), then SIGKILL any
        process of this instance that left the group (leftovers)."""
        pid = self.daemon_pid
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        status = super().stop()
        for left in self.leftovers():
            try:
                os.kill(left, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.syslog is not None:
            self.syslog.stop()
            self.syslog = None
        return status

    def leftovers(self) -> list[int]:
        """leftovers - PIDs of live processes of this instance: they run the
        unpacked binary in this instance's queue directory (sendmail chdirs
        there, and rewrites its command line, so that cannot tell)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                exe = os.readlink(proc / "exe")
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if (exe == str(self.tree.binary) and Path(cwd).is_relative_to(self.dir)
                    and pid_alive(int(proc.name))):
                pids.append(int(proc.name))
        return pids

    def queue_files(self) -> list[str]:
        """queue_files - what is left in the queue directory."""
        return sorted(p.name for p in self.queue.iterdir())

    def diagnostics(self) -> str:
        return (f"{super().diagnostics()}\n--- {self.maillog}:\n{tail(self.maillog, 30)}"
                f"\n--- {self.traffic}:\n{tail(self.traffic, 30)}")


def start_sendmail(lab, name: str, relay_port: int, milter_socket: str) -> Sendmail:
    """start_sendmail - unpack the packages once per lab, then start a
    sendmail instance on a fresh port, tracked by the lab."""
    tree = _TREES.get(lab.dir)
    if tree is None:
        tree = _TREES[lab.dir] = SendmailTree(lab.dir / "sendmail-pkg").ensure()
    sm = Sendmail(name, lab.dir / name, tree, lab.ports.get(), relay_port, milter_socket)
    lab.track(sm)      # track first: a failed start may leave a daemon running
    return sm.start()
