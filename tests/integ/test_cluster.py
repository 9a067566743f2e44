"""Three smtpgate nodes sharing their abuse-defence state through a real
redis-server ([cluster]), behind a real HAProxy that sends PROXY v2 to them
round robin: AUTH failures counted over every node, bans added or lifted
on any node acting on all, Redis killed and restarted mid-test.

Every engine is started here, on free 127.0.0.1 ports in the test's temp
folder. Clients connect to HAProxy from other loopback addresses
(127.0.0.2...): Linux routes all of 127.0.0.0/8 to lo, and HAProxy names
that address in its PROXY header, so each is another client for the nodes.
"""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import PASSWORD, SMTPGATE, USER, free_port, make_message, wait_for, wait_port
from smtpclient import Closed, SMTPClient, client_context

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
BAN_TEXT = "421 4.7.0 Too many authentication failures, try again later"
PER_IP = 4
QUOTA = 4

pytestmark = pytest.mark.skipif(
    not (os.path.exists(HAPROXY) and os.path.exists(REDIS)),
    reason="haproxy and redis-server are needed")


class Redis:
    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cmd(self, *args):
        """One command over RESP; the reply decoded loosely (tests only)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(out)
            f = s.makefile("rb")
            return _resp(f)


def _resp(f):
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if t == b"*":
        return [_resp(f) for _ in range(int(rest))]
    raise ValueError(line)


class Cluster:
    """Redis, three nodes, HAProxy in front."""

    def __init__(self, make_server, tmp_path, limits=""):
        self.redis = Redis(tmp_path).start()
        users = tmp_path / "users"
        subprocess.run([SMTPGATE, "user", "add", USER, "-f", str(users), "--password-stdin"],
                       input=PASSWORD + "\n", text=True, check=True, capture_output=True)
        self.users = users
        self.nodes = []
        for i in range(3):
            s = make_server(
                users=[], backend=f"file:{users}",
                submission_extra="proxy_protocol = yes\nproxy_from = 127.0.0.1\n",
                limits=("allow = ::1\nauth_failures_per_net = 1000\n"
                        f"auth_failures_per_ip = {PER_IP}\nauth_failures_per_account = 1000\n"
                        "connection_rate_per_ip = 1000\nconnections_per_ip = 200\n"
                        f"ban_time = 10m\nquota_messages_per_day = {QUOTA}\n" + limits),
                extra=(f"[cluster]\nredis = redis://127.0.0.1:{self.redis.port}\n"
                       f"node = node{i + 1}\n\n[admin]\naddress = 127.0.0.1:{free_port()}\n"))
            self.nodes.append(s)
        for s in self.nodes:
            s.start()
        for s in self.nodes:
            s.wait_event("cluster", lambda r: r.get("state") == "up")
        self.front = free_port()
        cfg = tmp_path / "haproxy.cfg"
        servers = "\n".join(f"    server n{i + 1} 127.0.0.1:{s.submission} send-proxy-v2"
                            for i, s in enumerate(self.nodes))
        cfg.write_text(f"""\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend submission
    bind 127.0.0.1:{self.front}
    default_backend nodes
backend nodes
    balance roundrobin
{servers}
""")
        self.hap = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.front, proc=self.hap)

    def close(self):
        self.hap.terminate()
        try:
            self.hap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.hap.kill()
            self.hap.wait()
        self.redis.stop()

    def admin(self, i):
        return self.nodes[i].conf.read_text().split("[admin]\naddress = ")[1].split("\n")[0]


@pytest.fixture
def cluster(make_server, tmp_path):
    c = Cluster(make_server, tmp_path)
    yield c
    c.close()


def node_of(c, src):
    """Which node served the last connection from src (its connect event)."""
    for i, s in enumerate(c.nodes):
        if any(e.get("client") == src for e in s.events("connect")):
            yield i


def attempt(port, src, user, password):
    """STARTTLS, then AUTH PLAIN: the reply, or None when the connection is
    refused or closed before."""
    try:
        with SMTPClient.__new__(SMTPClient) as c:
            c.timeout = 10.0
            c.buf = b""
            c.tls = False
            c.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                              source_address=(src, 0))
            g = c.reply()
            if g.code != 220:
                return g
            c.ehlo()
            c.starttls(client_context())
            c.ehlo()
            r = c.auth_plain(user, password)
            c.cmd("QUIT")
            return r
    except (Closed, ConnectionResetError, BrokenPipeError):
        return None


def greeting(port, src):
    """The first reply a client from src gets (None: closed at once)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10,
                                      source_address=(src, 0)) as s:
            data = s.recv(512)
            return data.decode(errors="replace").strip() or None
    except (ConnectionResetError, socket.timeout):
        return None


def metric(c, i, name):
    with urllib.request.urlopen(f"http://{c.admin(i)}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def ban_cmd(c, i, *args):
    return subprocess.run([SMTPGATE, "ban", *args, "-c", str(c.nodes[i].conf)],
                          capture_output=True, text=True, timeout=30)


def test_brute_force_over_three_nodes_banned_at_the_total(cluster):
    """PER_IP failures spread round robin over three nodes (each node sees
    at most two) ban the client: the last of them is answered with the ban,
    and every node then refuses the client at connect."""
    src = "127.0.0.21"
    replies = [attempt(cluster.front, src, USER, "wrong-%d" % k) for k in range(PER_IP)]
    assert [r.code for r in replies[:-1]] == [535] * (PER_IP - 1), replies
    assert replies[-1] is None or replies[-1].last == BAN_TEXT, replies
    counts = [len([e for e in s.events("auth") if e.get("client") == src])
              for s in cluster.nodes]
    assert max(counts) < PER_IP and sum(counts) == PER_IP, counts
    # every node refuses it, whichever HAProxy picks
    for _ in range(3):
        assert greeting(cluster.front, src) in (None, BAN_TEXT)
    # and the others are still served
    assert attempt(cluster.front, "127.0.0.22", USER, PASSWORD).code == 235
    rec = cluster.redis.cmd("HGET", "smtpgate:bans", src)
    assert rec is not None and rec.endswith(" 1 auth_failures_per_ip"), rec


def test_ban_add_on_one_node_del_on_another(cluster):
    src = "127.0.0.31"
    assert attempt(cluster.front, src, USER, PASSWORD).code == 235
    r = ban_cmd(cluster, 0, "add", src, "--seconds", "10m")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "shared state of the cluster" in r.stdout, r.stdout
    # every node refuses it, whichever HAProxy picks
    wait_for(lambda: all(greeting(cluster.front, src) in (None, BAN_TEXT) for _ in range(3)),
             what="the ban on every node")
    assert any(e.get("client") == src and e.get("reason") == "banned"
               for e in cluster.nodes[2].events("reject")), "node 3 did not refuse it"
    # bans survive a restart of every node (the spool's own file removed: Redis has it)
    for s in cluster.nodes:
        assert s.stop() == 0, s.stderr_text()
        (s.spool / "bans.json").unlink(missing_ok=True)
    for s in cluster.nodes:
        s.start()
    for s in cluster.nodes:
        wait_for(lambda: len([e for e in s.events("cluster") if e.get("state") == "up"]) >= 2,
                 what="up after the restart")
    wait_for(lambda: all(greeting(cluster.front, src) in (None, BAN_TEXT) for _ in range(3)),
             what="the ban after a restart of every node")
    lst = ban_cmd(cluster, 2, "list", "--json")
    assert lst.returncode == 0, lst.stderr
    assert src in [b["address"] for b in json.loads(lst.stdout)["bans"]]
    r = ban_cmd(cluster, 1, "del", src)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: all(attempt(cluster.front, src, USER, PASSWORD) is not None
                         for _ in range(3)), what="the ban lifted on every node")


def test_redis_down_local_fallback_then_shared_again(cluster):
    # a shared ban every node knows
    src = "127.0.0.41"
    for k in range(PER_IP):
        attempt(cluster.front, src, USER, "wrong-%d" % k)
    for i in range(3):
        wait_for(lambda: metric(cluster, i, "smtpgate_bans_active") == 1, what="ban known")
        assert metric(cluster, i, "smtpgate_cluster_up") == 1
    cluster.redis.stop()
    for i, s in enumerate(cluster.nodes):
        s.wait_event("cluster", lambda r: r.get("state") == "down")
        wait_for(lambda: metric(cluster, i, "smtpgate_cluster_up") == 0, what="cluster_up 0")
    # the nodes keep serving, within a bounded time, and keep their bans
    t0 = time.monotonic()
    for _ in range(3):
        assert attempt(cluster.front, "127.0.0.42", USER, PASSWORD).code == 235
        assert greeting(cluster.front, src) in (None, BAN_TEXT)
    assert time.monotonic() - t0 < 15
    # local counting goes on: a node alone bans after PER_IP of its own
    cluster.redis.start()
    for i, s in enumerate(cluster.nodes):
        wait_for(lambda: len([e for e in s.events("cluster") if e.get("state") == "up"]) >= 2,
                 timeout=20, what="up again")
        assert metric(cluster, i, "smtpgate_cluster_up") == 1
    # shared counting resumed: a new client is banned at the total again
    src2 = "127.0.0.43"
    replies = [attempt(cluster.front, src2, USER, "wrong-%d" % k) for k in range(PER_IP)]
    assert replies[-1] is None or replies[-1].last == BAN_TEXT, replies
    for _ in range(3):
        assert greeting(cluster.front, src2) in (None, BAN_TEXT)


def send_via(port, src, marker):
    """One message through HAProxy from src: (MAIL reply, final reply or None)."""
    c = SMTPClient.__new__(SMTPClient)
    c.timeout = 10.0
    c.buf = b""
    c.tls = False
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    try:
        assert c.reply().code == 220
        c.submit_ready(USER, PASSWORD)
        mail = c.cmd(f"MAIL FROM:<{USER}>")
        if mail.code != 250:
            return mail, None
        assert c.cmd("RCPT TO:<bob@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(make_message(USER, "bob@example.net", marker).encode() + b".\r\n")
        final = c.reply()
        c.cmd("QUIT")
        return mail, final
    finally:
        c.sock.close()


def test_quota_over_three_nodes_reached_at_the_total_unlock_anywhere(cluster):
    """QUOTA messages spread round robin over the nodes use up the quota of
    the day: the next MAIL is refused wherever it lands, the hold is on
    every node, and `user unlock` with node 3's configuration lifts it on
    all of them."""
    src = "127.0.0.51"
    for k in range(QUOTA):
        mail, final = send_via(cluster.front, src, f"q{k}")
        assert final is not None and final.code == 250, (k, mail, final)
    served = [len([e for e in s.events("accepted")]) for s in cluster.nodes]
    assert max(served) < QUOTA and sum(served) == QUOTA, served
    hx = USER.lower().encode().hex()
    counts = cluster.redis.cmd("HGETALL", f"smtpgate:quota:{hx}")
    assert sum(int(v) for v in counts[1::2]) == QUOTA, counts
    mail, _ = send_via(cluster.front, src, "over")
    assert mail.code == 452, mail
    assert sum(len([e for e in s.events("alert") if e.get("user") == USER])
               for s in cluster.nodes) == 1
    assert cluster.redis.cmd("SISMEMBER", "smtpgate:holds", hx) == 1
    for s in cluster.nodes:
        s.wait_event("quota_lock" if not s.events("alert") else "alert",
                     lambda e: e.get("user") == USER)
    # refused wherever HAProxy sends the next ones
    for k in range(3):
        assert send_via(cluster.front, src, f"held{k}")[0].code == 452
    r = subprocess.run([SMTPGATE, "user", "unlock", USER, "-c", str(cluster.nodes[2].conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every node" in r.stdout, r.stdout
    for s in cluster.nodes:
        s.wait_event("quota_unlock", lambda e: e.get("user") == USER)
    assert cluster.redis.cmd("SISMEMBER", "smtpgate:holds", hx) == 0
    for k in range(3):
        mail, final = send_via(cluster.front, src, f"again{k}")
        assert final is not None and final.code == 250, (mail, final)


def s_client(port, src, *args):
    """openssl s_client with STARTTLS through HAProxy from src: its output."""
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-bind", f"{src}:0",
         "-starttls", "smtp", "-name", "client.example.test", "-ign_eof", *args],
        input="EHLO client.example.test\r\nQUIT\r\n", capture_output=True, text=True,
        timeout=30)
    return r.stdout


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_tls_session_resumes_on_another_node(cluster, tmp_path, version):
    """A session made through one node resumes on the next one HAProxy
    picks: the nodes share their ticket keys through Redis."""
    src = "127.0.0.61" if version == "-tls1_3" else "127.0.0.62"
    sess = tmp_path / f"sess{version}"
    for s in cluster.nodes:
        s.wait_event("cluster", lambda e: e.get("tls_ticket_keys") == "shared")
    first = s_client(cluster.front, src, version, "-sess_out", str(sess))
    assert "New, TLSv1." in first, first
    second = s_client(cluster.front, src, version, "-sess_in", str(sess))
    served = [i for i in node_of(cluster, src)]
    assert len(served) == 2, served  # two nodes, one connection each
    assert "Reused, TLSv1." in second, second
    keys = [k for k in cluster.redis.cmd("KEYS", "smtpgate:ticket:*")]
    assert len(keys) == 1, keys


def resp_session(port, *cmds):
    """Several commands on one connection (AUTH, SELECT hold): the last reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        r = None
        for args in cmds:
            out = b"*%d\r\n" % len(args)
            for a in args:
                out += b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode())
            s.sendall(out)
            r = _resp(f)
        return r


def test_password_unix_socket_db_and_name_clash(make_server, tmp_path):
    """Redis with requirepass: the right password file over unix:PATH and
    over TCP with DB 3 comes up; a wrong one is a clear `cluster` event and
    the node keeps serving; two live nodes with one name are an event."""
    port = free_port()
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--save", "", "--requirepass", "s3cret-pw", "--unixsocket", str(sock),
         "--unixsocketperm", "700"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
        good.write_text("s3cret-pw\n")
        bad.write_text("not-the-password\n")
        good.chmod(0o600)
        bad.chmod(0o600)

        def node(url, pw, name):
            return make_server(extra=(f"[cluster]\nredis = {url}\nredis_password_file = {pw}\n"
                                      f"node = {name}\n")).start()
        a = node(f"unix:{sock}", good, "twin")
        a.wait_event("cluster", lambda e: e.get("state") == "up")
        b = node(f"redis://127.0.0.1:{port}/3", good, "twin")
        b.wait_event("cluster", lambda e: e.get("state") == "up")
        c = node(f"redis://127.0.0.1:{port}", bad, "wrong")
        down = c.wait_event("cluster", lambda e: e.get("state") == "down")
        assert "AUTH" in down["error"] and "s3cret" not in json.dumps(down), down
        assert "not-the-password" not in c.stderr_text()
        with SMTPClient(c.submission) as cl:  # serving from its local state
            assert cl.greeting.code == 220
        auth = ("AUTH", "s3cret-pw")
        # DB 3 is B's alone: its registration is there, A's (DB 0) is not
        assert resp_session(port, auth, ("SELECT", "3"), ("EXISTS", "smtpgate:node:twin")) == 1
        assert resp_session(port, auth, ("EXISTS", "smtpgate:node:wrong")) == 0
        # a second live "twin" in DB 0 clashes with A
        d = node(f"redis://127.0.0.1:{port}", good, "twin")
        d.wait_event("cluster", lambda e: e.get("error") == "node_name_clash")
        assert resp_session(port, auth, ("SISMEMBER", "smtpgate:clash", "twin")) == 1
        # B has the name in another database: no clash for it
        assert not any(e.get("error") == "node_name_clash" for e in b.events("cluster"))
    finally:
        proc.kill()
        proc.wait()
