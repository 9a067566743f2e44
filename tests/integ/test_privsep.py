"""Privilege separation, with the real processes. The parent (root) binds
and supervises; smtpgate-smtp runs as a test user of its own (created and
removed here) with no capability, no new privileges, not dumpable, and
cannot open the passwd file, the TLS and DKIM keys or the relay
credentials (mode 0600 root): the kernel refuses it; smtpgate-auth holds the
credentials and no client socket; when it dies AUTH answers 454 4.7.0 (never
535) until it is back; a killed smtp process loses no acknowledged message and
a new one serves within 2 s; SIGHUP hands a renewed certificate over."""
import os
import pathlib
import pwd
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

import conftest
from conftest import PASSWORD, SMTPGATE, USER, free_port, make_message, wait_for
from smtpclient import SMTPClient, client_context, plain_ir
from test_scram import gsasl

TEST_USER = "sgprivsep"


def children(pid):
    """The direct children of pid, as {comm: [pid, ...]}."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids = open(f"/proc/{pid}/task/{task}/children").read().split()
        except FileNotFoundError:
            continue
        for k in kids:
            try:
                comm = open(f"/proc/{k}/comm").read().strip()
            except FileNotFoundError:
                continue
            out.setdefault(comm, []).append(int(k))
    return out


def child_pid(server, comm, other_than=None, timeout=10.0):
    def find():
        pids = children(server.proc.pid).get(comm, [])
        pids = [p for p in pids if p != other_than]
        return pids[0] if len(pids) == 1 else None
    return wait_for(find, timeout=timeout, what=f"an {comm} process")


def auth_pid(server, other_than=None, timeout=10.0):
    return child_pid(server, "smtpgate-auth", other_than, timeout)


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status").read().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def admin_server(make_server):
    port = free_port()
    s = make_server(extra=f"[admin]\naddress = 127.0.0.1:{port}\n")
    s.admin = port
    return s.start()


def child_exits(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as r:
        body = r.read().decode()
    for line in body.splitlines():
        if line.startswith('smtpgate_child_exits_total{process="auth"}'):
            return float(line.split()[-1])
    return 0.0


def tcp_inodes():
    """The socket inodes of every TCP socket of the machine."""
    inodes = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).read().splitlines()[1:]:
            inodes.add(line.split()[9])
    return inodes


def test_auth_process_named_and_holds_no_client_socket(make_server):
    s = admin_server(make_server)
    pid = auth_pid(s)
    # the same binary, started afresh (no copy of the parent's memory)
    assert os.readlink(f"/proc/{pid}/exe") == os.readlink(f"/proc/{s.proc.pid}/exe")
    assert "--child" in open(f"/proc/{pid}/cmdline").read().split("\0")
    with SMTPClient(s.submission) as c:
        c.submit_ready(USER, PASSWORD)  # an open, authenticated client
        tcp = tcp_inodes()
        fds = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except FileNotFoundError:
                pass
        sockets = [f[len("socket:["):-1] for f in fds if f.startswith("socket:[")]
        assert sockets, fds  # its channels
        # no listener and no client connection: only the channels to its peers
        assert not [i for i in sockets if i in tcp], fds
        # while the server's own process holds the listeners and the client
        server_fds = [os.readlink(f"/proc/{s.proc.pid}/fd/{fd}")
                      for fd in os.listdir(f"/proc/{s.proc.pid}/fd")]
        assert [f for f in server_fds if f.startswith("socket:[") and f[8:-1] in tcp]


def test_auth_process_crash_gives_454_then_235_on_the_same_session(make_server):
    s = admin_server(make_server)
    pid = auth_pid(s)
    with SMTPClient(s.submission) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        # every young crash doubles the restart delay (500 ms, 1 s, 2 s, ...);
        # crash it until the delay leaves a wide window to ask in
        kills = 0
        while True:
            os.kill(pid, signal.SIGKILL)
            kills += 1
            ev = s.wait_event("child_exit", lambda r: r.get("pid") == pid)
            assert ev["process"] == "auth" and ev["signal"] == "Killed", ev
            if ev["restart_ms"] >= 2000:
                break
            pid = auth_pid(s, other_than=pid)
        r = c.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD))
        assert r.code == 454 and r.last.startswith("454 4.7.0"), r
        assert children(s.proc.pid).get("smtpgate-auth") is None  # still down
        # back: the same session logs in
        auth_pid(s, other_than=pid, timeout=15)
        r = wait_for(lambda: (lambda r: r if r.code == 235 else None)(
            c.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD))), timeout=10, interval=0.3,
            what="235 after the restart")
        assert r.last.startswith("235 2.7.0"), r
    assert child_exits(s.admin) == kills
    # the 454 was a temporary failure for the log as well, not a bad password
    fails = [e for e in s.events() if e.get("event") == "auth" and e.get("result") == "fail"]
    assert not fails, fails


def test_wrong_password_is_still_535_through_the_auth_process(server):
    with SMTPClient(server.submission) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain_ir(USER, "not the password"))
        assert r.last.startswith("535 5.7.8"), r
        r = c.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD))
        assert r.code == 235, r


def test_sighup_reaches_the_auth_process(server):
    pid = auth_pid(server)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_event("auth_reload", lambda r: r["result"] == "ok")
    server.wait_event("reload", lambda r: r["result"] == "ok")
    assert auth_pid(server) == pid  # reloaded, not restarted
    assert not server.events("child_exit")
    with SMTPClient(server.submission) as c:
        c.submit_ready(USER, PASSWORD)


# --- the smtp process as an unprivileged user ----------------------------------------

@pytest.fixture(scope="module")
def test_user():
    """A system user for the smtp process, made here and removed after."""
    made = False
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", TEST_USER], check=True)
        made = True
        pw = pwd.getpwnam(TEST_USER)
    yield pw
    if made:
        subprocess.run(["userdel", TEST_USER], check=True)


def reachable(path):
    """Lets every user through the folders above path (not into pki's)."""
    p = pathlib.Path(path)
    for d in [p, *p.parents]:
        if d == pathlib.Path("/"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o111)


def secret(path, text):
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def dropped(make_server, pki, tmp_path, test_user):
    """A server whose smtp process runs as the test user, with a DKIM key and
    relay credentials of mode 0600 root, and [admin]."""
    key = tmp_path / "dkim.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    cred = secret(tmp_path / "relay.secret", "relayuser relay-password-not-to-leak\n")
    port = free_port()
    s = make_server(user=TEST_USER, mechanisms="SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN",
                    extra=f"""
[admin]
address = 127.0.0.1:{port}

[dkim example.test]
selector = s1
key = {key}

[relay]
route = smarthost 127.0.0.1:{free_port()}
auth = PLAIN
credentials = {cred}
""")
    s.admin = port
    s.secrets = [key, cred, s.users]
    reachable(s.dir)
    s.start()
    # the parent binds before the smtp process serves: wait for it
    s.wait_event("start")
    return s


def test_smtp_process_runs_unprivileged(dropped, test_user):
    s = dropped
    pid = child_pid(s, "smtpgate-smtp")
    st = status(pid)
    assert st["Uid"] == [str(test_user.pw_uid)] * 4, st["Uid"]
    assert st["Gid"] == [str(test_user.pw_gid)] * 4, st["Gid"]
    assert st["Groups"] in ([], [str(test_user.pw_gid)]), st["Groups"]
    assert st["CapEff"] == ["0000000000000000"] and st["CapPrm"] == ["0000000000000000"]
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"]  # a filter: the allow-list of server/sandbox.c
    # the parent stays root and the auth process too: neither reads a client
    assert status(s.proc.pid)["Uid"][0] == "0"
    assert status(auth_pid(s))["Uid"][0] == "0"
    start = s.wait_event("start")
    assert start["user"] == TEST_USER, start


def test_smtp_process_cannot_open_secrets(dropped, test_user):
    s = dropped
    pid = child_pid(s, "smtpgate-smtp")
    open_files = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            open_files.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    for path in s.secrets:
        assert os.stat(path).st_uid == 0 and (os.stat(path).st_mode & 0o077) == 0, path
        # the passwd file is the auth process's; the keys came as copies from
        # the parent and the credentials are read by it: none is open here
        assert str(path) not in open_files, (path, open_files)
        # and its user cannot read any of them: the kernel says no
        r = subprocess.run(["setpriv", f"--reuid={test_user.pw_uid}",
                            f"--regid={test_user.pw_gid}", "--clear-groups", "cat", str(path)],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r)
    assert str(s.pki.dir / "mail.key") not in open_files, open_files
    # the TLS key, in a folder of root's
    r = subprocess.run(["setpriv", f"--reuid={test_user.pw_uid}", f"--regid={test_user.pw_gid}",
                        "--clear-groups", "cat", str(s.pki.dir / "mail.key")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # and nothing it logs holds the relay password
    assert "relay-password-not-to-leak" not in s.log.read_text()


def test_auth_plain_and_scram_plus_through_the_dropped_process(dropped):
    s = dropped
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{s.submission}", "--tls",
                        "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", USER, "--to", "bob@example.net", "--quit-after", "AUTH"],
                       capture_output=True, text=True, timeout=60)
    assert "235 2.7.0" in r.stdout, r.stdout + r.stderr
    r = gsasl(s, "SCRAM-SHA-256-PLUS")
    assert r.returncode == 0, r.stdout + r.stderr


def send_one(server, marker):
    with SMTPClient(server.submission) as c:
        c.submit_ready(USER, PASSWORD)
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd("RCPT TO:<bob@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(make_message(USER, "bob@example.net", marker).encode() + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        return r.last.split()[-1]


def serves(port):
    """A greeting within half a second."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as so:
            return so.recv(64).startswith(b"220 ")
    except OSError:
        return False


def test_smtp_process_crash_loses_no_acknowledged_message(dropped):
    s = dropped
    acked = [send_one(s, f"before-crash-{i}") for i in range(3)]
    pid = child_pid(s, "smtpgate-smtp")
    os.kill(pid, signal.SIGSEGV)
    t0 = time.monotonic()
    ev = s.wait_event("child_exit", lambda r: r.get("pid") == pid)
    # (under ASan its handler reports the fault and exits 1)
    assert ev["process"] == "smtp" and (ev.get("signal") == "Segmentation fault" or
                                        ev.get("status", 0) != 0), ev
    new = child_pid(s, "smtpgate-smtp", other_than=pid)
    wait_for(lambda: serves(s.submission), timeout=5, interval=0.05, what="a new smtp process")
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0, f"served again after {elapsed:.2f} s"
    assert status(new)["Uid"][0] == str(pwd.getpwnam(TEST_USER).pw_uid)
    queued = {m["id"] for m in s.queued()}
    assert set(acked) <= queued, (acked, queued)
    send_one(s, "after-crash")


def leaf_pem(port):
    ctx = client_context()
    with SMTPClient(port, implicit_tls=True, ctx=ctx) as c:
        der = c.sock.getpeercert(binary_form=True)
    return ssl.DER_cert_to_PEM_cert(der)


def test_sighup_hands_a_renewed_certificate_to_the_dropped_process(dropped, pki, tmp_path):
    s = dropped
    before = leaf_pem(s.smtps)
    # a new pair in a folder the smtp process's user cannot enter
    chain, key = pki.leaf("renewed", ["mail.example.test"], ["127.0.0.1"])
    private = tmp_path / "tls-private"
    private.mkdir(mode=0o700)
    (private / "chain.pem").write_bytes(chain.read_bytes())
    secret(private / "key.pem", key.read_text())
    conf = s.conf.read_text()
    conf = conf.replace(f"cert = {pki.dir / 'mail-chain.pem'}", f"cert = {private / 'chain.pem'}")
    conf = conf.replace(f"key = {pki.dir / 'mail.key'}", f"key = {private / 'key.pem'}")
    s.conf.write_text(conf)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_event("reload", lambda r: r["result"] == "ok")
    after = leaf_pem(s.smtps)
    assert after != before and after.strip() == chain.read_text().split("-----END CERTIFICATE-----")[0].strip() + "\n-----END CERTIFICATE-----"


def test_missing_user_is_a_configuration_error(make_server):
    s = make_server(user="sg-no-such-user")
    r = subprocess.run([SMTPGATE, "serve", "-c", str(s.conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert "[server] user sg-no-such-user does not exist" in r.stderr, r.stderr
    assert ("useradd --system --home-dir /var/spool/smtpgate --shell /usr/sbin/nologin "
            "sg-no-such-user") in r.stderr, r.stderr


# --- the audit's view of [server] user -------------------------------------------------

def audit_ids(conf, as_user=None):
    cmd = [SMTPGATE, "audit", "-c", str(conf), "--json"]
    if as_user is not None:
        cmd = ["setpriv", f"--reuid={as_user.pw_uid}", f"--regid={as_user.pw_gid}",
               "--clear-groups", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    import json
    conftest.findings_record(r.stdout)  # also through setpriv
    return r.returncode, {f["id"]: f for f in json.loads(r.stdout)["findings"]}


def test_audit_names_secrets_the_server_user_can_read(make_server, tmp_path, test_user):
    key = tmp_path / "dkim.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    s = make_server(user=TEST_USER, extra=f"[dkim example.test]\nselector = s1\nkey = {key}\n")
    reachable(s.dir)
    rc, ids = audit_ids(s.conf)
    assert "secret-readable-by-server-user" not in ids, ids
    assert "server-user-root" not in ids and "server-user-missing" not in ids, ids
    # the key given to that user: the one process that must not read it can
    os.chown(key, test_user.pw_uid, test_user.pw_gid)
    rc, ids = audit_ids(s.conf)
    f = ids["secret-readable-by-server-user"]
    assert rc == 1 and f["severity"] == "error", (rc, f)
    assert str(key) in f["evidence"] and "[dkim example.test] key" in f["evidence"], f
    assert TEST_USER in f["evidence"], f
    # a passwd file of mode 0644 in a folder it may enter is as bad
    os.chown(key, 0, 0)
    os.chmod(s.users, 0o644)
    rc, ids = audit_ids(s.conf)
    assert str(s.users) in ids["secret-readable-by-server-user"]["evidence"], ids


def test_audit_server_user_root_missing_and_not_root(make_server, test_user):
    s = make_server(user="root")
    rc, ids = audit_ids(s.conf)
    assert ids["server-user-root"]["severity"] == "warning", ids
    s2 = make_server(user="sg-no-such-user")
    rc, ids = audit_ids(s2.conf)
    assert rc == 1 and ids["server-user-missing"]["severity"] == "error", ids
    assert "useradd --system" in ids["server-user-missing"]["fix"], ids
    reachable(s2.dir)
    rc, ids = audit_ids(s2.conf, as_user=test_user)
    f = ids["server-not-root"]
    assert f["severity"] == "info" and TEST_USER in f["evidence"], f
    assert "server-user-missing" not in ids, ids
