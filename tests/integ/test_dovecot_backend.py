"""The dovecot:SOCKET auth backend against a real Dovecot (dovecot-core 2.3)
started by the test: auth service only (protocols = none), its own base_dir
and state_dir under the test's temporary folder, a passwd-file passdb with a
SHA512-CRYPT hash made by `doveadm pw`, running as root. smtpgate verifies
AUTH PLAIN and LOGIN through Dovecot's auth-client socket (real clients:
smtplib and swaks); wrong passwords and unknown users get 535; with Dovecot
stopped AUTH gets 454 4.7.0 and works again once it is back. Every Dovecot
process started here is gone when a test ends (checked by pid)."""
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import SMTPGATE, Server, wait_for

DUSER = "carol@example.test"
DPASS = "dovecot keeps this one"
RCPT = "bob@example.test"

pytestmark = pytest.mark.skipif(shutil.which("dovecot") is None or
                                shutil.which("doveadm") is None,
                                reason="dovecot-core not installed")


def _children(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(name))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Dovecot:
    """dovecot -F -c OWN_CONFIG as a child process: only the auth service,
    listening on BASE/auth-client (mode 0600)."""

    def __init__(self, d):
        self.dir = d
        self.base = d / "run"
        self.socket = self.base / "auth-client"
        self.log = d / "dovecot.log"
        self.conf = d / "dovecot.conf"
        self.proc = None
        self.pids = set()
        h = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", DPASS],
                           capture_output=True, text=True, check=True).stdout.strip()
        assert h.startswith("{SHA512-CRYPT}$6$"), h
        (d / "passwd").write_text(f"{DUSER}:{h}\n")
        (d / "state").mkdir(exist_ok=True)
        self.conf.write_text(f"""\
base_dir = {self.base}
state_dir = {d / 'state'}
instance_name = smtpgate-test-{d.name}
protocols =
log_path = {self.log}
default_internal_user = root
default_internal_group = root
default_login_user = root
ssl = no
disable_plaintext_auth = yes
auth_mechanisms = plain login
# canonical names: smtpgate must use the user= Dovecot returns
auth_username_format = %Lu
auth_failure_delay = 1s
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {d / 'passwd'}
}}
userdb {{
  driver = static
  args = uid=root gid=root home={d}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0600
  }}
}}
""")

    def start(self):
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pids.add(self.proc.pid)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.proc.stderr.read().decode())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket))
                    s.sendall(b"VERSION\t1\t2\nCPID\t1\n")
                    s.settimeout(5)
                    data = b""
                    while b"DONE\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            return False
                        data += chunk
                    return True
            except OSError:
                return False
        wait_for(ready, timeout=20, what="dovecot auth-client socket")
        self.pids.update(_children(self.proc.pid))
        return self

    def stop(self):
        """SIGTERM to the master, then makes sure each process it had is gone."""
        if self.proc is None:
            return
        self.pids.update(_children(self.proc.pid))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        self.proc = None
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in self.pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        self.pids.clear()


@pytest.fixture
def dovecot(tmp_path_factory):
    # a short base_dir: UNIX socket paths are limited to 107 bytes
    d = Dovecot(tmp_path_factory.mktemp("dv"))
    yield d
    d.stop()


@pytest.fixture
def dserver(tmp_path, pki, dovecot):
    """A smtpgate whose backend is the Dovecot above (started)."""
    dovecot.start()
    s = Server(tmp_path, pki, backend=f"dovecot:{dovecot.socket}").start()
    yield s
    rc = s.stop()
    assert rc == 0, s.stderr_text()


def context(server):
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    return ctx


def auth(server, mech, user, password):
    """(code, text) of AUTH mech after STARTTLS on the submission port."""
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=context(server))
        s.ehlo()
        s.user, s.password = user, password
        obj = s.auth_plain if mech == "PLAIN" else s.auth_login
        try:
            return s.auth(mech, obj)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code, e.smtp_error


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtplib_auth_and_send(dserver, mech):
    with smtplib.SMTP("127.0.0.1", dserver.submission, timeout=30) as s:
        s.starttls(context=context(dserver))
        s.ehlo()
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        # Dovecot lower-cases the name (auth_username_format = %Lu)
        s.user, s.password = "Carol@Example.TEST", DPASS
        obj = s.auth_plain if mech == "PLAIN" else s.auth_login
        assert s.auth(mech, obj) == (235, b"2.7.0 Authentication successful")
        s.sendmail(DUSER, [RCPT], f"From: <{DUSER}>\r\nTo: <{RCPT}>\r\n"
                   f"Subject: dovecot {mech}\r\n\r\nhello\r\n")
    # the session's user is the name Dovecot returned, not the one typed
    ev = dserver.wait_event("mail", lambda r: r.get("user") is not None)
    assert ev["user"] == DUSER, ev
    ev = dserver.wait_event("auth", lambda r: r.get("result") == "ok")
    assert ev["mechanism"] == mech and ev["code"] == 235
    # never a password or a resp= in our log
    text = dserver.log.read_text() + dserver.stderr_text()
    assert DPASS not in text and "resp=" not in text


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks(dserver, mech):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(dserver.submission), "--tls",
         "--tls-verify", "--tls-ca-path", str(dserver.pki.root),
         "--auth", mech, "--auth-user", DUSER, "--auth-password", DPASS,
         "--from", DUSER, "--to", RCPT, "--helo", "client.example.test", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  235 2.7.0 Authentication successful" in r.stdout, r.stdout
    assert "queued as" in r.stdout, r.stdout

    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(dserver.submission), "--tls",
         "--tls-verify", "--tls-ca-path", str(dserver.pki.root),
         "--auth", mech, "--auth-user", DUSER, "--auth-password", "not it",
         "--from", DUSER, "--to", RCPT, "--quit-after", "AUTH", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "<~* 535 5.7.8 Authentication credentials invalid" in r.stdout, r.stdout


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_wrong_password_and_unknown_user_get_535(dserver, mech):
    assert auth(dserver, mech, DUSER, "wrong password") == (
        535, b"5.7.8 Authentication credentials invalid")
    assert auth(dserver, mech, "nobody@example.test", DPASS) == (
        535, b"5.7.8 Authentication credentials invalid")
    # the file backend's user does not exist in Dovecot
    assert auth(dserver, mech, "alice@example.test", "correct horse battery staple")[0] == 535
    assert auth(dserver, mech, DUSER, DPASS)[0] == 235


def test_dovecot_down_gives_454_then_recovers(dserver, dovecot):
    assert auth(dserver, "PLAIN", DUSER, DPASS)[0] == 235
    dovecot.stop()
    for mech in ("PLAIN", "LOGIN"):
        code, text = auth(dserver, mech, DUSER, DPASS)
        assert (code, text) == (454, b"4.7.0 Temporary authentication failure")
    ev = dserver.wait_event("dovecot_auth_down")
    assert ev["socket"] == str(dovecot.socket) and ev["error"]
    # logged once per outage, not per request
    assert len(dserver.events("dovecot_auth_down")) == 1
    assert dserver.wait_event("auth", lambda r: r.get("result") == "tempfail")["code"] == 454

    dovecot.start()
    assert auth(dserver, "LOGIN", DUSER, DPASS)[0] == 235
    assert auth(dserver, "PLAIN", DUSER, "wrong")[0] == 535
    dserver.wait_event("dovecot_auth_up")


def test_starts_without_dovecot_then_works(tmp_path, pki, dovecot):
    s = Server(tmp_path, pki, backend=f"dovecot:{dovecot.socket}").start()
    try:
        assert auth(s, "PLAIN", DUSER, DPASS)[0] == 454
        dovecot.start()
        assert auth(s, "PLAIN", DUSER, DPASS)[0] == 235
    finally:
        assert s.stop() == 0, s.stderr_text()
    assert "dovecot_auth_unreachable" in s.stderr_text()


def test_reload_reconnects(dserver, dovecot):
    assert auth(dserver, "PLAIN", DUSER, DPASS)[0] == 235
    dserver.proc.send_signal(signal.SIGHUP)
    dserver.wait_event("reload", lambda r: r.get("result") == "ok")
    assert auth(dserver, "PLAIN", DUSER, DPASS)[0] == 235


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "CRAM-MD5"])
def test_config_refuses_non_plaintext_mechanisms(tmp_path, pki, mech):
    s = Server(tmp_path, pki, backend="dovecot:/nonexistent/auth-client",
               mechanisms=f"PLAIN {mech}")
    r = subprocess.run([SMTPGATE, "serve", "-c", str(s.conf), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"[auth] mechanisms: {mech} needs stored credentials" in r.stderr, r.stderr
    assert "dovecot" in r.stderr
