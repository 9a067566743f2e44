"""Privilege separation, with the real processes: the credentials are
checked by a process of their own (smtpgate-auth) that holds no client
socket; when it dies, AUTH answers 454 4.7.0 (never 535) until the parent
has started a new one, which the same open session then uses; the parent
logs child_exit and counts it; SIGHUP reaches the auth process."""
import os
import signal
import urllib.request

from conftest import PASSWORD, USER, free_port, wait_for
from smtpclient import SMTPClient, plain_ir


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


def auth_pid(server, other_than=None, timeout=10.0):
    def find():
        pids = children(server.proc.pid).get("smtpgate-auth", [])
        pids = [p for p in pids if p != other_than]
        return pids[0] if len(pids) == 1 else None
    return wait_for(find, timeout=timeout, what="an smtpgate-auth process")


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
    server.wait_event("reload", lambda r: r.get("process") == "auth" and r["result"] == "ok")
    server.wait_event("reload", lambda r: "process" not in r and r["result"] == "ok")
    assert auth_pid(server) == pid  # reloaded, not restarted
    assert not server.events("child_exit")
    with SMTPClient(server.submission) as c:
        c.submit_ready(USER, PASSWORD)
