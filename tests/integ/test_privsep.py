"""Privilege separation, with the real processes. The parent (root) binds
and supervises; smtpgate-smtp runs as a test user of its own (created and
removed here) with no capability, no new privileges, not dumpable, and
cannot open the passwd file, the TLS and DKIM keys or the relay
credentials (mode 0600 root): the kernel refuses it; smtpgate-auth holds the
credentials and no client socket; when it dies AUTH answers 454 4.7.0 (never
535) until it is back; a killed smtp process loses no acknowledged message and
a new one serves within 2 s; SIGHUP hands a renewed certificate over.
smtpgate-relay delivers, as the same user and as sandboxed, with no listening
socket: it signs with the DKIM key and logs in to the smarthost with the
credentials, neither of which the smtp process ever holds (not as a file, not
as one of the parent's copies); killed, it is restarted and the queued message
still goes, and `smtpgate queue flush` reaches it."""
import json
import os
import pathlib
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

import conftest
from conftest import (PASSWORD, SMTPGATE, USER, free_port, make_message, process_children,
                      wait_for)
from smtpclient import SMTPClient, client_context, plain_ir
from test_delivery import Sink, submit
from test_dkim import genkey, msg as dkim_msg, verify as dkim_verify
from test_scram import gsasl

TEST_USER = "sgprivsep"


children = process_children  # {comm: [pid, ...]} of a pid's children


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


def child_exits(port, process="auth"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as r:
        body = r.read().decode()
    for line in body.splitlines():
        if line.startswith(f'smtpgate_child_exits_total{{process="{process}"}}'):
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
    s.expect_child_exits()
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
    s.expect_child_exits()
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


# --- the relay process ------------------------------------------------------------------

def tcp_inodes_of(state=None):
    """{inode: local port} of the machine's TCP sockets (state: "0A" is LISTEN)."""
    out = {}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).read().splitlines()[1:]:
            cols = line.split()
            if state is None or cols[3] == state:
                out[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
    return out


def fd_links(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def socket_owner(server_pid, port):
    """The comm of the server's process whose TCP socket has local port port."""
    inodes = [i for i, p in tcp_inodes_of().items() if p == port]
    for comm, pids in children(server_pid).items():
        for pid in pids:
            if any(link[8:-1] in inodes for link in fd_links(pid).values()
                   if link.startswith("socket:[")):
                return comm
    return None


class OwnerSink(Sink):
    """A smarthost (aiosmtpd, STARTTLS, AUTH required) that also records which
    of the server's processes is the client of each DATA."""
    server_pid = None

    def __init__(self, *a, **kw):
        self.owners = []
        super().__init__(*a, **kw)

    async def handle_DATA(self, server, session, envelope):
        self.owners.append(socket_owner(self.server_pid, session.peer[1]))
        return await super().handle_DATA(server, session, envelope)


def memfd_contents(pid):
    """The bytes of every copy the process holds of the parent's files."""
    out = []
    for fd, link in fd_links(pid).items():
        if link.startswith("/memfd:"):
            try:
                out.append(open(f"/proc/{pid}/fd/{fd}", "rb").read())
            except OSError:
                pass
    return out


@pytest.fixture
def relaying(make_server, pki, tmp_path, test_user):
    """A dropped server whose relay process delivers to an aiosmtpd smarthost
    that requires AUTH, with a DKIM key and credentials of mode 0600 root.
    retry_min = 1h: a deferred message waits for a flush."""
    key, txt = genkey(tmp_path, "dkim", "ed25519")
    cred = secret(tmp_path / "relay.secret", "relayuser relay-password-not-to-leak\n")
    # the relay process's user reads the CA bundle: a public file of its own
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.root.read_bytes())
    os.chmod(ca, 0o644)
    sink = OwnerSink(pki, auth=("relayuser", "relay-password-not-to-leak"))
    port = free_port()
    s = make_server(user=TEST_USER, extra=f"""
[admin]
address = 127.0.0.1:{port}

[dkim example.test]
selector = s1
key = {key}

[relay]
route = smarthost 127.0.0.1:{sink.port}
tls = starttls
verify = peer+host
ca = {ca}
auth = PLAIN
credentials = {cred}
retry_min = 1h
retry_max = 2h
timeout = 5s
""")
    s.admin = port
    s.key, s.cred, s.dkim_txt = key, cred, txt
    reachable(s.dir)
    s.start()
    # `start` is the smtp process's; the relay process names itself
    # before it loads its configuration and enters its sandbox, and says
    # scheduler_start once it has (relay_proc.c)
    s.wait_event("scheduler_start", timeout=30)
    sink.server_pid = s.proc.pid
    s.sink = sink
    yield s
    sink.stop()


def test_relay_process_runs_unprivileged_and_accepts_nothing(relaying, test_user):
    s = relaying
    pid = child_pid(s, "smtpgate-relay")
    assert os.readlink(f"/proc/{pid}/exe") == os.readlink(f"/proc/{s.proc.pid}/exe")
    st = status(pid)
    assert st["Uid"] == [str(test_user.pw_uid)] * 4, st["Uid"]
    assert st["Gid"] == [str(test_user.pw_gid)] * 4, st["Gid"]
    assert st["Groups"] in ([], [str(test_user.pw_gid)]), st["Groups"]
    assert st["CapEff"] == ["0000000000000000"] and st["CapPrm"] == ["0000000000000000"]
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"]  # its own allow-list (server/sandbox.c)
    # not dumpable: the kernel gives its /proc files to root, not to its user
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0
    # no listening socket and no client: only its channels to the parent and smtp
    tcp = tcp_inodes_of()
    links = fd_links(pid).values()
    assert not [ln for ln in links if ln.startswith("socket:[") and ln[8:-1] in tcp], links
    # while the smtp process holds the listeners
    listening = tcp_inodes_of("0A")
    smtp = fd_links(child_pid(s, "smtpgate-smtp")).values()
    assert [ln for ln in smtp if ln.startswith("socket:[") and ln[8:-1] in listening]


def test_smtp_process_never_holds_the_dkim_key_or_the_credentials(relaying, test_user):
    s = relaying
    smtp, relay = child_pid(s, "smtpgate-smtp"), child_pid(s, "smtpgate-relay")
    key, cred = s.key.read_bytes(), s.cred.read_bytes()
    # the parent's copies hold the key (so this test can see one) ...
    assert key in memfd_contents(s.proc.pid)
    # ... the smtp process has none of them, nor the files, nor a mapping
    copies = memfd_contents(smtp)
    assert copies, "the smtp process should hold the parent's other copies"
    assert key not in copies and cred not in copies
    # (the TLS keys are there: it serves TLS)
    assert not [b for b in copies if key.split(b"\n")[1] in b or b"relay-password" in b]
    maps = open(f"/proc/{smtp}/maps").read()
    for path in (s.key, s.cred):
        assert str(path) not in fd_links(smtp).values()
        assert str(path) not in maps
        # and its user may not read them
        r = subprocess.run(["setpriv", f"--reuid={test_user.pw_uid}",
                            f"--regid={test_user.pw_gid}", "--clear-groups", "cat", str(path)],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r)
    # the relay process let its copies go once the key was loaded
    assert key not in memfd_contents(relay)
    assert str(s.key) not in fd_links(relay).values()


def test_relay_process_signs_and_logs_in_to_the_smarthost(relaying):
    s = relaying
    submit(s, ["bob@example.net"], dkim_msg("privsep"))
    wait_for(lambda: s.sink.messages, timeout=20, what="delivery to the smarthost")
    data = s.sink.messages[-1][3]
    # AUTH was required (aiosmtpd refuses MAIL without it): the credentials went
    # from the parent to the relay process, which made the connection
    assert s.sink.owners == ["smtpgate-relay"], s.sink.owners
    assert data.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;"), data[:80]
    assert dkim_verify(data, {"s1._domainkey.example.test.": s.dkim_txt}), data
    ev = s.wait_event("delivery", lambda r: r["result"] == "sent")
    assert ev["relay"].startswith("127.0.0.1"), ev
    assert "relay-password-not-to-leak" not in s.log.read_text()


def test_relay_process_crash_is_restarted_and_the_queued_message_goes(relaying):
    s = relaying
    s.sink.script = [(451, "4.3.0 try again later")]
    submit(s, ["bob@example.net"], dkim_msg("deferred"))
    qid = s.wait_event("accepted")["queue_id"]
    s.wait_event("delivery", lambda r: r["queue_id"] == qid and r["result"] == "deferred",
                 timeout=20)
    # the event comes just before the retry time is written to the queue file:
    # killed in between, the new process would try the message at once
    def deferral_written():
        r = subprocess.run([SMTPGATE, "queue", "show", qid, "-c", str(s.conf), "--json"],
                           capture_output=True, text=True)
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        return doc.get("attempts", 0) >= 1 and doc.get("next_try") is not None
    wait_for(deferral_written, what="the deferral in the queue file")
    pid = child_pid(s, "smtpgate-relay")
    s.expect_child_exits()
    os.kill(pid, signal.SIGKILL)
    ev = s.wait_event("child_exit", lambda r: r.get("pid") == pid)
    assert ev["process"] == "relay" and ev["signal"] == "Killed", ev
    # a message acknowledged while it is down is not lost either
    submit(s, ["bob@example.net"], dkim_msg("while-down"))
    new = child_pid(s, "smtpgate-relay", other_than=pid, timeout=15)
    assert status(new)["Uid"][0] == str(pwd.getpwnam(TEST_USER).pw_uid)
    wait_for(lambda: any(b"while-down" in m[3] for m in s.sink.messages), timeout=20,
             what="the message submitted around the crash")
    # the deferred one waits an hour: `smtpgate queue flush` reaches the new process
    assert qid in {m["id"] for m in s.queued()}
    wait_for(lambda: (s.spool / "pid").read_text().strip() == str(new), what="SPOOL/pid")
    r = subprocess.run([SMTPGATE, "queue", "flush", "-c", str(s.conf), "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["server_pid"] == new, r.stdout
    wait_for(lambda: any(b"deferred" in m[3] for m in s.sink.messages), timeout=20,
             what="delivery after the flush")
    wait_for(lambda: not s.queued(), what="the queue to empty")
    assert set(s.sink.owners) == {"smtpgate-relay"}, s.sink.owners
    assert child_exits(s.admin, "relay") == 1
    assert child_exits(s.admin, "smtp") == 0


def test_sighup_hands_the_relay_process_a_new_log(relaying):
    s = relaying
    pid = child_pid(s, "smtpgate-relay")
    rotated = s.log.with_name("smtpgate.log.1")
    os.rename(s.log, rotated)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_event("reload", lambda r: r["result"] == "ok")
    submit(s, ["bob@example.net"], dkim_msg("after-reload"))
    # the delivery is the relay process's line, in the new file
    s.wait_event("delivery", lambda r: r["result"] == "sent", timeout=20)
    assert child_pid(s, "smtpgate-relay") == pid  # reloaded, not restarted
    assert not [e for e in s.events("child_exit")]


def test_no_relay_process_without_relay_or_route(dropped, make_server, test_user):
    # dropped has [relay]: the relay process runs
    assert child_pid(dropped, "smtpgate-relay")
    s = make_server(user=TEST_USER)
    reachable(s.dir)
    s.start()
    s.wait_event("start")
    time.sleep(0.3)
    assert "smtpgate-relay" not in children(s.proc.pid), children(s.proc.pid)
    acked = send_one(s, "no-relay")
    assert acked in {m["id"] for m in s.queued()}  # kept, as without delivery before


def unix_peers():
    """{socket inode: peer inode} of the machine's connected Unix sockets."""
    out = {}
    r = subprocess.run(["ss", "-xaH"], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[5].isdigit() and cols[7].isdigit():
            out[cols[5]] = cols[7]
    return out


def channel_ends(smtp, other):
    """The smtp process's descriptors that are its ends of channels to the
    process other, and the socket inodes of other."""
    peers = unix_peers()
    socks = {ln[8:-1] for ln in fd_links(other).values() if ln.startswith("socket:[")}
    ends = [fd for fd, ln in fd_links(smtp).items()
            if ln.startswith("socket:[") and peers.get(ln[8:-1]) in socks]
    return ends, socks


def steal_fd(pid, fd):
    """A copy of descriptor fd of process pid (pidfd_getfd(2); root)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        n = libc.syscall(438, pidfd, int(fd), 0)  # SYS_pidfd_getfd
        assert n >= 0, os.strerror(ctypes.get_errno())
        return n
    finally:
        os.close(pidfd)


def test_malformed_frame_closes_the_smtp_channel_not_the_relay_process(relaying):
    s = relaying
    smtp, relay = child_pid(s, "smtpgate-smtp"), child_pid(s, "smtpgate-relay")
    # the smtp process's end of its channel to the relay process
    ends, _ = channel_ends(smtp, relay)
    assert len(ends) == 1, (ends, fd_links(smtp))
    old = fd_links(smtp)[ends[0]]
    fd = steal_fd(smtp, ends[0])
    try:
        os.write(fd, b"\0" * 16)  # type 0: not a frame
    finally:
        os.close(fd)
    ev = s.wait_event("relay_channel", lambda r: r["process"] == "relay")
    assert "malformed" in ev["error"], ev
    # the receiver goes on; the smtp process's next notice fails (the relay
    # process closed its end): it says so and asks the parent for a new channel
    assert child_pid(s, "smtpgate-relay") == relay
    submit(s, ["bob@example.net"], dkim_msg("notice-lost"))
    ev = s.wait_event("relay_channel", lambda r: r["process"] == "smtp")
    wait_for(lambda: (lambda e: len(e) == 1 and fd_links(smtp).get(e[0]) != old)(
        channel_ends(smtp, relay)[0]), what="a new channel to the relay process")
    # the next message's notice reaches it at once (its scan is a minute away)
    submit(s, ["bob@example.net"], dkim_msg("after-garbage"))
    wait_for(lambda: any(b"after-garbage" in m[3] for m in s.sink.messages), timeout=20,
             what="delivery by the same relay process, noticed on the new channel")
    # and the one whose notice was lost goes at the next scan or flush
    r = subprocess.run([SMTPGATE, "queue", "flush", "-c", str(s.conf)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: any(b"notice-lost" in m[3] for m in s.sink.messages), timeout=20,
             what="delivery of the message whose notice was lost")
    assert child_pid(s, "smtpgate-relay") == relay
    assert not s.events("child_exit")


def socket_fds(pid):
    return [fd for fd, ln in fd_links(pid).items() if ln.startswith("socket:[")]


def logins_on_every_loop(s, n=40):
    """n clients at once (the kernel spreads them over the loops, SO_REUSEPORT),
    each AUTH PLAIN: every answer 235."""
    clients = [SMTPClient(s.submission) for _ in range(n)]
    try:
        for c in clients:
            c.ehlo()
            c.starttls()
            c.ehlo()
        codes = [c.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD)).code for c in clients]
    finally:
        for c in clients:
            c.close()
    assert codes == [235] * n, codes


def test_each_loop_has_its_own_auth_channel(make_server):
    """One channel per loop thread of smtpgate-smtp (each loop reads its answers
    itself): the auth process holds [server] threads of them besides its control
    socket, every loop logs in, and after an auth crash every loop gets a new
    channel (all 235 again), and after an smtp crash the old channels are gone."""
    s = make_server(threads=4).start()
    pid = auth_pid(s)
    wait_for(lambda: len(socket_fds(pid)) == 4 + 1, what="4 channels and the control socket")
    logins_on_every_loop(s)
    s.expect_child_exits()
    os.kill(pid, signal.SIGKILL)
    s.wait_event("child_exit", lambda r: r.get("pid") == pid)
    pid = auth_pid(s, other_than=pid, timeout=15)
    wait_for(lambda: len(socket_fds(pid)) == 4 + 1, what="4 new channels")
    logins_on_every_loop(s)
    smtp = child_pid(s, "smtpgate-smtp")
    os.kill(smtp, signal.SIGKILL)
    s.wait_event("child_exit", lambda r: r.get("pid") == smtp)
    child_pid(s, "smtpgate-smtp", other_than=smtp, timeout=15)
    # the dead process's channels closed, the new one's 4 came
    wait_for(lambda: len(socket_fds(pid)) == 4 + 1, what="only the new smtp's channels")
    logins_on_every_loop(s)


def kernel_landlock_abi():
    """The Landlock ABI of the running kernel, asked of the kernel itself
    (landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION); 0: none."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return abi if abi > 0 else 0


def open_in(pid, path, flags):
    """open(path, flags) made by the process pid itself (gdb calls it in the
    stopped process, then closes what it got): the descriptor or -1. The path
    goes into a buffer the process mallocs and frees again (a string given
    to a call would be left in its heap: a leak for the sanitizers)."""
    out = subprocess.run(
        ["gdb", "-p", str(pid), "-batch", "-nx",
         "-ex", "set $p = (char *)malloc(4096)",
         "-ex", f'set {{char[{len(path) + 1}]}} $p = "{path}"',
         "-ex", f"call (int)open($p, {flags}, 0644)",
         "-ex", "call (int)close($1)",
         "-ex", "call (void)free($p)"],
        capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("$1 = "):
            return int(line.split("=")[1])
    raise AssertionError(f"gdb did not call open in {pid}: {out.stdout}\n{out.stderr}")


O_RDONLY, O_WRONLY_CREAT = 0, 0o101


def test_landlock_limits_smtp_and_relay_to_the_spool(relaying, request, test_user):
    """With Landlock in the kernel, smtpgate-smtp and smtpgate-relay reach no file
    outside the spool and the system folders, whatever its mode: a file the
    user may read by its mode (0644, in a folder all may enter) cannot be
    opened, no file can be made outside the spool, while one in the spool can
    be read. The processes say so in a `landlock` event."""
    s = relaying
    abi = kernel_landlock_abi()
    ev = {e["process"]: e for e in s.events("landlock")}
    assert set(ev) == {"smtp", "relay"}, ev
    assert ev["smtp"]["abi"] == abi and ev["relay"]["abi"] == abi, ev
    if abi == 0:
        pytest.skip("the kernel has no Landlock: the processes said so (abi 0)")
    # outside the test's folder (where the relay process may read its CA file)
    public = pathlib.Path(tempfile.mkdtemp(prefix="sg-landlock-"))
    request.addfinalizer(lambda: shutil.rmtree(public, ignore_errors=True))
    reachable(public)
    readable = public / "readable.txt"
    readable.write_text("anyone may read this by its mode\n")
    os.chmod(readable, 0o644)
    os.chmod(public, 0o777)  # and anyone may make files here, by its mode
    spool_file = pathlib.Path(s.spool) / "landlock-probe"
    spool_file.write_text("x")
    os.chmod(spool_file, 0o644)
    for comm in ("smtpgate-smtp", "smtpgate-relay"):
        pid = child_pid(s, comm)
        assert open_in(pid, str(readable), O_RDONLY) == -1, comm
        assert open_in(pid, str(public / f"made-by-{comm}"), O_WRONLY_CREAT) == -1, comm
        assert not (public / f"made-by-{comm}").exists()
        assert open_in(pid, str(spool_file), O_RDONLY) >= 0, comm
        assert open_in(pid, "/etc/hostname", O_RDONLY) >= 0, comm  # a system folder
    spool_file.unlink()
    # and the server still works: a message goes through the relay process
    with SMTPClient(s.submission) as c:
        c.submit_ready(USER, PASSWORD)




def test_malformed_frame_closes_one_auth_channel_and_its_loop_gets_a_new_one(make_server):
    """A frame the auth process refuses closes that channel only: the auth
    process goes on, the smtp loop whose channel it was asks the parent for a
    new one (CHILD_MSG_AUTH back), and every loop logs in again; no process
    restarts."""
    s = make_server(threads=2).start()
    auth, smtp = auth_pid(s), child_pid(s, "smtpgate-smtp")
    wait_for(lambda: len(socket_fds(auth)) == 2 + 1, what="2 channels and the control socket")
    ends, before = channel_ends(smtp, auth)
    assert len(ends) == 2, ends
    fd = steal_fd(smtp, ends[0])
    try:
        os.write(fd, b"\0" * 16)  # type 0: not a frame
    finally:
        os.close(fd)
    ev = s.wait_event("auth_channel", lambda r: r.get("process") == "auth")
    assert "malformed" in ev["error"], ev
    ev = s.wait_event("auth_channel", lambda r: "loop" in r and r.get("process") != "auth")
    assert "closed the channel" in ev["error"], ev
    # a new channel in place of the closed one, to the same auth process
    wait_for(lambda: len(channel_ends(smtp, auth)[0]) == 2 and
             channel_ends(smtp, auth)[1] != before, what="a new channel")
    assert auth_pid(s) == auth and child_pid(s, "smtpgate-smtp") == smtp
    logins_on_every_loop(s)
    assert not s.events("child_exit")
