"""contrib/systemd/smtpgate.service: its hardening score, `systemd-analyze
verify`, and the server started the way the unit starts it.

There is no running systemd here (nor in CI): the notification protocol is
checked from the other side. The test owns a datagram socket, passes it as
$NOTIFY_SOCKET and reads what the server sends, with the sender's
credentials (SO_PASSCRED): READY=1 must come from the main process, once
every listener answers; RELOADING=1 then READY=1 around SIGHUP; STOPPING=1
on SIGTERM. The unit's SystemCallFilter is checked against the system
calls every process really makes (strace -f over a start, a submission, a
reload and a stop).
"""
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import PASSWORD, ROOT, SMTPGATE, USER, Server, free_port

UNIT = ROOT / "contrib" / "systemd" / "smtpgate.service"
EXPOSURE_MAX = 2.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def unit_values(key):
    """Every value of KEY in the unit's [Service] section, in order."""
    section, out = None, []
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line.startswith(key + "="):
            out.append(line[len(key) + 1:])
    return out


def unit_argv(key, conf):
    """KEY's command line (ExecStart, ExecStartPre) with the binary under
    test and conf for the installed paths."""
    (line,) = unit_values(key)
    argv = shlex.split(line)
    assert argv[0] == "/usr/sbin/smtpgate", argv
    assert "/etc/smtpgate/smtpgate.conf" in argv, argv
    return [SMTPGATE] + [str(conf) if a == "/etc/smtpgate/smtpgate.conf" else a
                         for a in argv[1:]]


def exposure(unit_path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
    assert m, r.stdout[-2000:]
    return float(m.group(1)), m.group(2), r.stdout


def test_unit_exposure_at_most_2_5():
    score, verdict, out = exposure(UNIT)
    assert score <= EXPOSURE_MAX and verdict == "OK", out


def test_exposure_measure_tells_a_weaker_unit():
    """The measure above can fail: the same unit without its sandboxing
    options scores far worse."""
    weak = "\n".join(line for line in UNIT.read_text().splitlines()
                     if not line.startswith(("Protect", "Private", "Restrict", "SystemCall",
                                             "CapabilityBoundingSet")))
    path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"smtpgate-weak-{os.getpid()}.service"
    path.write_text(weak + "\n")
    try:
        score, _, _ = exposure(path)
    finally:
        path.unlink()
    assert score > EXPOSURE_MAX + 3


def _verify_root(tmp_path, binary=True):
    """A root for `systemd-analyze verify --root`: the system's units, the
    unit under test, and (binary) the binary where ExecStart names it."""
    root = tmp_path / "root"
    (root / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "lib" / "systemd" / "system", symlinks=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc" / "systemd" / "system" / "smtpgate.service")
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "bin").mkdir()
    shutil.copy("/bin/kill", root / "bin" / "kill")
    if binary:
        shutil.copy(SMTPGATE, root / "usr" / "sbin" / "smtpgate")
    return root


def _verify(root):
    # the man pages are checked where they are installed (test_deb.py)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}",
                           "smtpgate.service"], capture_output=True, text=True, timeout=60)


def test_unit_verifies_without_a_word(tmp_path):
    r = _verify(_verify_root(tmp_path))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_verify_tells_a_missing_binary(tmp_path):
    r = _verify(_verify_root(tmp_path, binary=False))
    assert r.returncode != 0 and "/usr/sbin/smtpgate" in r.stderr, r.stdout + r.stderr


# --- the notification protocol ----------------------------------------------------------

def built_with_notify():
    r = subprocess.run([SMTPGATE, "--version"], capture_output=True, text=True, timeout=30)
    return "systemd notification: yes" in r.stdout


needs_notify = pytest.mark.skipif(not built_with_notify(),
                                  reason="built without libsystemd: no notification")


class NotifySocket:
    """The service manager's end: a datagram socket that learns each
    sender's pid."""

    def __init__(self, d):
        self.path = str(d / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def recv(self, timeout):
        """(pid, {key: value}) of the next datagram, or None at timeout."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        return pid, fields

    def close(self):
        self.sock.close()


def banner(port):
    """The first reply line of the listener on port (implicit TLS: none in
    clear, so a connect is all it shows)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return s.recv(512)


def start_as_the_unit(server, notify, extra_env=None):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, **(extra_env or {}))
    pre = subprocess.run(unit_argv("ExecStartPre", server.conf), capture_output=True,
                         text=True, env=env, timeout=60)
    assert pre.returncode == 0, pre.stdout + pre.stderr
    server.logf = open(server.dir / "stderr.txt", "ab")
    server.proc = subprocess.Popen(unit_argv("ExecStart", server.conf), env=env,
                                   stdout=server.logf, stderr=subprocess.STDOUT)
    return server.proc


@needs_notify
def test_ready_after_the_listeners_serve_then_reload_and_stopping(tmp_path, pki):
    server = Server(tmp_path, pki)
    notify = NotifySocket(tmp_path)
    try:
        proc = start_as_the_unit(server, notify)
        got = notify.recv(60)
        assert got is not None, "no notification within 60 s"
        pid, fields = got
        assert fields.get("READY") == "1", fields
        # the moment READY=1 arrives, every listener serves
        assert banner(server.submission).startswith(b"220 ")
        assert banner(server.mx).startswith(b"220 ")
        with socket.create_connection(("127.0.0.1", server.smtps), timeout=5):
            pass
        assert pid == proc.pid, "READY=1 from a process that is not the main one"
        assert server.events("start"), "READY=1 before the smtp process said start"

        proc.send_signal(signal.SIGHUP)
        pid, fields = notify.recv(30)
        assert pid == proc.pid and fields.get("RELOADING") == "1", fields
        assert int(fields["MONOTONIC_USEC"]) > 0
        pid, fields = notify.recv(30)
        assert pid == proc.pid and fields.get("READY") == "1", fields

        proc.send_signal(signal.SIGTERM)
        pid, fields = notify.recv(30)
        assert pid == proc.pid and fields.get("STOPPING") == "1", fields
        assert proc.wait(timeout=60) == 0
        assert notify.recv(0.5) is None, "a notification after STOPPING=1"
    finally:
        server.stop()
        notify.close()


@needs_notify
def test_no_ready_when_a_listener_cannot_bind(tmp_path, pki):
    server = Server(tmp_path, pki)
    notify = NotifySocket(tmp_path)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", server.smtps))
    taken.listen(1)
    try:
        proc = start_as_the_unit(server, notify)
        assert proc.wait(timeout=60) == 2
        got = notify.recv(0.5)
        assert got is None or "READY" not in got[1], got
    finally:
        taken.close()
        server.stop()
        notify.close()


# --- the unit's system-call filter ------------------------------------------------------

def _expand(names, cache={}):
    """System call names of a SystemCallFilter= value (groups expanded)."""
    out = set()
    for n in names:
        if not n.startswith("@"):
            out.add(n)
            continue
        if n not in cache:
            r = subprocess.run(["systemd-analyze", "syscall-filter", n], capture_output=True,
                               text=True, check=True, timeout=60)
            items = [ln.strip() for ln in r.stdout.splitlines()[1:]
                     if ln.strip() and not ln.strip().startswith("#")]
            cache[n] = _expand(items)
        out |= cache[n]
    return out


def unit_syscalls():
    """The unit's SystemCallFilter lines applied in order: the first is an
    allow-list, a ~ line takes calls out, a later plain line puts them back."""
    allowed = None
    for value in unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = _expand(value.lstrip("~").split())
        if allowed is None:
            assert not deny, "the first SystemCallFilter= is an allow-list"
            allowed = set(names)
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def test_unit_filter_allows_what_every_process_calls(tmp_path, pki):
    if shutil.which("strace") is None or shutil.which("swaks") is None:
        pytest.skip("strace or swaks is not installed")
    allowed = unit_syscalls()
    assert "setresuid" in allowed and "seccomp" in allowed
    assert "reboot" not in allowed and "mount" not in allowed
    # an smtp process of its own user, as installed: the switch is traced too
    server = Server(tmp_path, pki, user="nobody")
    for d in [tmp_path, *tmp_path.parents][:-1]:
        os.chmod(d, os.stat(d).st_mode | 0o111)
    notify = NotifySocket(tmp_path)
    trace = tmp_path / "strace.txt"
    argv = unit_argv("ExecStart", server.conf)
    # no leak check at exit: LeakSanitizer's ptrace is the test build's, not the server's
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, ASAN_OPTIONS="detect_leaks=0")
    server.logf = open(tmp_path / "stderr.txt", "ab")
    server.proc = subprocess.Popen(["strace", "-f", "-qq", "-o", str(trace), *argv], env=env,
                                   stdout=server.logf, stderr=subprocess.STDOUT)
    try:
        got = notify.recv(120)
        assert got is not None and got[1].get("READY") == "1", got
        main = got[0]  # strace's child: the server's parent process
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.submission),
                            "-tls", "--auth", "PLAIN", "--auth-user", USER,
                            "--auth-password", PASSWORD, "--from", USER,
                            "--to", "bob@example.test"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]
        os.kill(main, signal.SIGHUP)
        assert notify.recv(60)[1].get("RELOADING") == "1"
        assert notify.recv(60)[1].get("READY") == "1"
        os.kill(main, signal.SIGTERM)
        assert server.proc.wait(timeout=120) == 0  # strace's status is the server's
    finally:
        server.stop()
        notify.close()
    called = set()
    for line in trace.read_text().splitlines():
        m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if m and m.group(1) not in ("exited", "killed", "resumed"):
            called.add(m.group(1))
    assert {"setresuid", "seccomp", "accept4", "execve"} <= called, sorted(called)
    assert called - allowed == set(), f"calls the unit's filter refuses: {sorted(called - allowed)}"
