"""
cases_package.py - the Debian package, installed and run as its unit runs it

SUMMARY
    Registered into run.py only when ICAPM_DEB names a .deb made by
    scripts/build-deb.sh (scripts/test.sh builds it and sets ICAPM_DEB
    before the suite). The case package_deb:

      * installs the package on this machine with apt-get, and checks
        what its maintainer scripts did: the icap-milter system user and
        group, postfix added to that group, /run/icap-milter from the
        tmpfiles.d entry, the config registered as a conffile;
      * runs the daemon as the unit does: through systemctl when systemd
        is PID 1, else with the unit's own ExecStart line, User, Group and
        UMask, and a datagram socket standing in for systemd's
        NOTIFY_SOCKET (Type=notify);
      * with the shipped config (no IcapServer yet): the daemon refuses to
        start, exit status 78 (the unit's RestartPreventExitStatus) and
        the reason on stderr, so systemd does not restart it in a loop;
      * with an IcapServer added (the lab's c-icap over TLS): READY=1,
        a clean and an EICAR message through the lab's real Postfix to the
        installed binary on /run/icap-milter/icap-milter.sock, the unit's
        ExecReload answered with RELOADING=1 then READY=1, and SIGTERM
        with STOPPING=1 and exit status 0;
      * purges the package (and the user and group, when this case made
        them), leaving the machine as it found it.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Optional

import mail

CONF = Path("/etc/icap-milter/icap-milter.conf")
UNIT_DIRS = (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
RUN_DIR = Path("/run/icap-milter")
SOCKET = RUN_DIR / "icap-milter.sock"
EX_CONFIG = 78


def unit_service(text: str) -> dict[str, str]:
    """unit_service - the [Service] keys of a unit file (last one wins)."""
    keys: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            k, v = line.split("=", 1)
            keys[k.strip()] = v.strip()
    return keys


def apt(*args: str) -> subprocess.CompletedProcess:
    """apt - apt-get/dpkg without questions; never raises."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=300)


class Notify:
    """Notify - an abstract datagram socket playing systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.name = f"@icapm-package-notify-{os.getpid()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])

    def wait(self, state: str, timeout: float) -> list[str]:
        """wait - datagrams received until one holds the line state (or
        timeout); returns all of them."""
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                got.append(self.sock.recv(4096).decode(errors="replace"))
            except socket.timeout:
                break
            if state in got[-1].split("\n"):
                break
        return got

    def close(self) -> None:
        self.sock.close()


class Installed:
    """Installed - the packaged daemon run with its unit's settings."""

    def __init__(self, unit: dict[str, str], log: Path, notify: Notify) -> None:
        self.unit = unit
        self.log = log
        self.notify = notify
        self.proc: Optional[subprocess.Popen] = None

    def argv(self) -> list[str]:
        """argv - ExecStart, split as systemd would (no variables in it)."""
        return shlex.split(self.unit["ExecStart"].lstrip("-@:+!"))

    def start(self) -> subprocess.Popen:
        """start - as User and Group with the user's groups and the UMask."""
        user = pwd.getpwnam(self.unit["User"])
        gid = grp.getgrnam(self.unit.get("Group", user.pw_name)).gr_gid
        umask = int(self.unit.get("UMask", "0022"), 8)

        def demote() -> None:
            os.initgroups(user.pw_name, gid)
            os.setgid(gid)
            os.setuid(user.pw_uid)
            os.umask(umask)

        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": self.notify.name}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env=env, preexec_fn=demote, cwd="/")
        out.close()
        return self.proc

    def reload(self) -> None:
        """reload - the unit's ExecReload with $MAINPID filled in."""
        cmd = self.unit["ExecReload"].replace("$MAINPID", str(self.proc.pid))
        subprocess.run(shlex.split(cmd), check=True, timeout=10)

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """stop - SIGTERM by PID (TimeoutStopSec), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def summary_lines(self, queue_id: Optional[str] = None) -> list[str]:
        """summary_lines - the per-message summary lines (as lab.Milter)."""
        return [l for l in self.log_text().splitlines()
                if "action=" in l and (queue_id is None or queue_id in l)]


def register(run) -> None:
    """register - add this module's case to run.py's list (ICAPM_DEB only)."""
    deb = os.environ.get("ICAPM_DEB", "")
    if not deb:
        return

    @run.case("package_deb", "the .deb installed: user, group (postfix in it), run dir, conffile; the unit's "
                             "command line refuses a config without IcapServer (exit 78), then scans a clean "
                             "and an EICAR message from the real Postfix, answers reload and stop over the "
                             "notify socket; purged afterwards", needs_milter=False)
    def case_package_deb(s: run.Suite, ck: run.Check) -> None:
        had_user = _exists(pwd.getpwnam, "icap-milter")
        had_group = _exists(grp.getgrnam, "icap-milter")
        apt("dpkg", "--purge", "icap-milter")
        r = apt("apt-get", "install", "-y", "-q", "--no-install-recommends", str(Path(deb).resolve()))
        if not ck.expect(r.returncode == 0, f"apt-get install {deb} failed: {r.stdout[-800:]} {r.stderr[-800:]}"):
            return
        notify = Notify()
        daemon: Optional[Installed] = None
        ca_copy = CONF.parent / "lab-ca.pem"
        try:
            check_installed(ck)
            unit_path = next((d / "icap-milter.service" for d in UNIT_DIRS
                              if (d / "icap-milter.service").exists()), None)
            if not ck.expect(unit_path, "no icap-milter.service installed"):
                return
            unit = unit_service(unit_path.read_text())
            ck.note(f"ExecStart={unit.get('ExecStart')} User={unit.get('User')} Type={unit.get('Type')}")
            if Path("/run/systemd/system").is_dir():
                ck.note("systemd is PID 1 here: the unit is started with systemctl")
                run_with_systemd(s, ck, ca_copy)
                return
            ck.note("systemd is not PID 1 here: the unit's ExecStart runs as its User, Group and UMask")
            daemon = Installed(unit, s.lab.dir / "package-daemon.log", notify)

            # 1. The shipped config names no scanner: refuse, once, with the reason.
            proc = daemon.start()
            try:
                status = proc.wait(15)
            except subprocess.TimeoutExpired:
                status = None
            ck.expect(status == EX_CONFIG, f"with the shipped config the daemon exited {status}, "
                                           f"expected {EX_CONFIG} (RestartPreventExitStatus)")
            ck.expect(unit.get("RestartPreventExitStatus") == str(EX_CONFIG),
                      f"unit's RestartPreventExitStatus is {unit.get('RestartPreventExitStatus')}")
            ck.expect("no IcapServer given" in daemon.log_text(),
                      f"no reason on stderr: {daemon.log_text()[-300:]}")
            if status != EX_CONFIG and proc.poll() is None:
                daemon.stop()

            # 2. The administrator names the lab's scanner.
            ca_copy.write_bytes(Path(s.ca_file).read_bytes())
            os.chmod(ca_copy, 0o644)
            original = CONF.read_text()
            CONF.write_text(original + f"\n# added by the package_deb test\nIcapServer {s.icap.url(tls=True)}\n"
                                       f"TlsCAFile {ca_copy}\nLogTarget stderr\n")
            daemon.log.write_text("")
            proc = daemon.start()
            ready = notify.wait("READY=1", 20)
            if not ck.expect(any("READY=1" in g for g in ready),
                             f"no READY=1 on the notify socket (got {ready}); log: {daemon.log_text()[-600:]}"):
                return
            user = pwd.getpwnam(unit["User"])
            ck.expect(_uid_of(proc.pid) == user.pw_uid, f"daemon runs as uid {_uid_of(proc.pid)}, "
                                                        f"not {unit['User']}")
            if ck.expect(SOCKET.exists(), f"no socket {SOCKET}"):
                st = SOCKET.stat()
                ck.expect(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam("icap-milter").gr_gid,
                          f"socket mode {oct(stat.S_IMODE(st.st_mode))} gid {st.st_gid}")

            # 3. Mail through the real Postfix to the installed binary.
            spec = f"unix:{SOCKET}"
            s.postfix.set(smtpd_milters=spec, non_smtpd_milters=spec)
            s.postfix.reload()
            try:
                time.sleep(1)
                msg = mail.clean_multipart("package: clean")
                s.expect_delivered(ck, mail.send_one(s.postfix.smtp_port, msg), daemon, sent=msg,
                                   label="clean mail to the packaged milter")
                s.expect_rejected(ck, mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("package: EICAR")),
                                  daemon, "EICAR to the packaged milter")
            finally:
                s.postfix.set(smtpd_milters=s.socket_spec, non_smtpd_milters=s.socket_spec)
                s.postfix.reload()

            # 4. ExecReload, then stop.
            daemon.reload()
            got = notify.wait("READY=1", 15)
            ck.expect(any("RELOADING=1" in g for g in got) and bool(got) and "READY=1" in got[-1],
                      f"reload: expected RELOADING=1 then READY=1, got {got}")
            ck.expect(daemon.proc.poll() is None, "daemon died on reload")
            t0 = time.monotonic()
            status = daemon.stop()
            got = notify.wait("STOPPING=1", 1)
            ck.expect(any("STOPPING=1" in g for g in got), f"no STOPPING=1 at stop (got {got})")
            ck.expect(status == 0, f"SIGTERM: exit status {status}, expected 0")
            ck.note(f"stopped in {time.monotonic() - t0:.1f}s")
        finally:
            if daemon is not None:
                daemon.stop()
            notify.close()
            ca_copy.unlink(missing_ok=True)
            purge(ck, had_user, had_group)


def check_installed(ck) -> None:
    """check_installed - what the maintainer scripts and dpkg must have done."""
    ck.expect(_exists(pwd.getpwnam, "icap-milter"), "no icap-milter user")
    ck.expect(_exists(grp.getgrnam, "icap-milter"), "no icap-milter group")
    if _exists(pwd.getpwnam, "postfix"):
        members = grp.getgrnam("icap-milter").gr_mem if _exists(grp.getgrnam, "icap-milter") else []
        ck.expect("postfix" in members, f"postfix is not in the icap-milter group ({members})")
    if _exists(pwd.getpwnam, "icap-milter"):
        shell = pwd.getpwnam("icap-milter").pw_shell
        ck.expect(shell in ("/usr/sbin/nologin", "/bin/false", "/sbin/nologin"), f"user shell {shell}")
    r = apt("dpkg-query", "-W", "-f=${Conffiles}", "icap-milter")
    ck.expect(str(CONF) in r.stdout, f"{CONF} is not a conffile: {r.stdout.strip()}")
    if ck.expect(RUN_DIR.is_dir(), f"{RUN_DIR} not made at install (tmpfiles.d)"):
        st = RUN_DIR.stat()
        owner = pwd.getpwuid(st.st_uid).pw_name
        ck.expect(owner == "icap-milter" and stat.S_IMODE(st.st_mode) == 0o750,
                  f"{RUN_DIR}: owner {owner}, mode {oct(stat.S_IMODE(st.st_mode))}")
    ck.expect(CONF.exists() and "IcapServer" in CONF.read_text() and
              not re.search(r"^IcapServer", CONF.read_text(), re.M),
              "the shipped config must name no IcapServer (only a commented example)")


def run_with_systemd(s, ck, ca_copy: Path) -> None:
    """run_with_systemd - where systemd runs: the same checks through systemctl."""
    r = subprocess.run(["systemctl", "start", "icap-milter"], capture_output=True, text=True)
    ck.expect(r.returncode != 0, "the unit started with no IcapServer configured")
    ca_copy.write_bytes(Path(s.ca_file).read_bytes())
    os.chmod(ca_copy, 0o644)
    CONF.write_text(CONF.read_text() + f"\nIcapServer {s.icap.url(tls=True)}\nTlsCAFile {ca_copy}\n")
    r = subprocess.run(["systemctl", "restart", "icap-milter"], capture_output=True, text=True)
    ck.expect(r.returncode == 0, f"systemctl restart: {r.stderr}")
    spec = f"unix:{SOCKET}"
    s.postfix.set(smtpd_milters=spec, non_smtpd_milters=spec)
    s.postfix.reload()
    try:
        out = mail.send_one(s.postfix.smtp_port, mail.clean_multipart("package: clean (systemd)"))
        ck.expect(out.code == 250, f"clean mail: {out}")
        out = mail.send_one(s.postfix.smtp_port, mail.eicar_attachment("package: EICAR (systemd)"))
        ck.expect(out.code == 550, f"EICAR: {out}")
    finally:
        s.postfix.set(smtpd_milters=s.socket_spec, non_smtpd_milters=s.socket_spec)
        s.postfix.reload()
        subprocess.run(["systemctl", "stop", "icap-milter"], capture_output=True)


def purge(ck, had_user: bool, had_group: bool) -> None:
    """purge - remove the package with its conffiles; then the user and
    group, when they did not exist before this case."""
    r = apt("dpkg", "--purge", "icap-milter")
    ck.expect(r.returncode == 0, f"dpkg --purge failed: {r.stdout[-400:]} {r.stderr[-400:]}")
    ck.expect(not CONF.exists(), f"{CONF} left after purge")
    ck.expect(not Path("/usr/sbin/icap-milter").exists(), "/usr/sbin/icap-milter left after purge")
    if not had_user and _exists(pwd.getpwnam, "icap-milter"):
        subprocess.run(["userdel", "icap-milter"], capture_output=True)
    if not had_group and _exists(grp.getgrnam, "icap-milter"):
        subprocess.run(["groupdel", "icap-milter"], capture_output=True)
    if not had_user:
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        shutil.rmtree("/var/lib/icap-milter", ignore_errors=True)


def _exists(lookup, name: str) -> bool:
    """_exists - whether a passwd or group lookup finds name."""
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def _uid_of(pid: int) -> int:
    """_uid_of - the real uid of a process (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return -1
