"""Shared fixtures for the integration tests.

They drive the real binary (SMTPGATE_BIN, else build/smtpgate): a throw-away
PKI (root CA -> intermediate -> leaf, so a client that verifies against the
root proves the server sends the whole chain), free loopback ports, and a
Server object that writes a config, creates users with `smtpgate user add`,
starts `smtpgate serve` and reads its JSON log.
"""
import hashlib
import json
import os
import re
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMTPGATE = os.environ.get("SMTPGATE_BIN", str(ROOT / "build" / "smtpgate"))

USER = "alice@example.test"
PASSWORD = "correct horse battery staple"


_PORTS_GIVEN = set()


def free_port():
    """A port nothing listens on, never one this test run handed out before:
    the kernel may return the same free port twice in a row, and a test
    whose "nothing listens here" port is its own server's listener then
    talks to itself."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class PKI:
    """root -> intermediate -> leaf certificates (ECDSA P-256)."""

    def __init__(self, d: pathlib.Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "root.key", "-out", "root.pem",
                 "-days", "30", "-subj", "/CN=smtpgate test root",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        (d / "ca.ext").write_text(
            "basicConstraints=critical,CA:TRUE,pathlen:0\n"
            "keyUsage=critical,keyCertSign,cRLSign\n")
        _openssl("req", "-new", *ec, "-keyout", "inter.key", "-out", "inter.csr",
                 "-subj", "/CN=smtpgate test intermediate", cwd=d)
        _openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
                 "-CAcreateserial", "-out", "inter.pem", "-days", "30",
                 "-extfile", "ca.ext", cwd=d)
        self.root = d / "root.pem"
        self.leaf("mail", ["mail.example.test", "localhost"], ["127.0.0.1"])
        self.leaf("other", ["other.example.test"], [])

    def leaf(self, name, dns, ips):
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        san = ",".join([f"DNS:{n}" for n in dns] + [f"IP:{i}" for i in ips])
        (d / f"{name}.ext").write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={dns[0]}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "inter.pem",
                 "-CAkey", "inter.key", "-CAcreateserial", "-out", f"{name}.crt",
                 "-days", "30", "-extfile", f"{name}.ext", cwd=d)
        leaf = (d / f"{name}.crt").read_text()
        inter = (d / "inter.pem").read_text()
        (d / f"{name}-chain.pem").write_text(leaf + inter)
        return d / f"{name}-chain.pem", d / f"{name}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening")


class Server:
    """A smtpgate server under test. Ports: submission (STARTTLS, auth
    required), smtps (implicit TLS), mx (plain, auth off, relay local)."""

    def __init__(self, d: pathlib.Path, pki: PKI, extra: str = "", users=None,
                 mechanisms="PLAIN LOGIN", limits: str = "", threads=2, backend=None,
                 submission_extra: str = "", user=None):
        """submission_extra: lines added to [listen submission] (e.g.
        "sender_binding = off"); the smtps listener keeps the defaults."""
        self.dir = d
        self.pki = pki
        self.submission = free_port()
        self.smtps = free_port()
        self.mx = free_port()
        self.spool = d / "spool"
        self.log = d / "smtpgate.log"
        self.users = d / "users"
        self.conf = d / "smtpgate.conf"
        self.proc = None
        # the tests run as root; test_privsep.py runs the smtp process as a
        # user of its own, the others keep root (a config_warning)
        server_user = f"user = {user}" if user else (
            "user = root" if os.geteuid() == 0 else "")
        self.conf.write_text(f"""\
[server]
hostname = mail.example.test
spool = spool
threads = {threads}
log = {self.log}
{server_user}

[listen submission]
address = 127.0.0.1:{self.submission}
tls = starttls
auth = required
relay = authenticated
{submission_extra}
[listen smtps]
address = 127.0.0.1:{self.smtps}
tls = implicit
auth = required

[listen mx]
address = 127.0.0.1:{self.mx}
tls = none
auth = off
relay = local

[tls]
cert = {pki.dir / 'mail-chain.pem'}
key = {pki.dir / 'mail.key'}
cert = {pki.dir / 'other-chain.pem'}
key = {pki.dir / 'other.key'}

[auth]
mechanisms = {mechanisms}
backend = {backend or "file:users"}

[domains]
local = example.test

[limits]
{limits}
{extra}
""")
        # another backend (e.g. dovecot:SOCKET) keeps its own users
        for user, password in (users if users is not None else
                               [(USER, PASSWORD)] if backend is None else []):
            self.add_user(user, password)

    def add_user(self, user, password, *extra):
        subprocess.run([SMTPGATE, "user", "add", user, "-f", str(self.users),
                        "--password-stdin", *extra],
                       input=password + "\n", text=True, check=True, capture_output=True)

    # True: the server starts in a process group of its own (its children
    # stay in it), so a test can SIGKILL the whole node at once (os.killpg)
    new_session = False

    def start(self):
        starts = len(self.events("start"))
        self.logf = open(self.dir / "stderr.txt", "ab")
        self.proc = subprocess.Popen([SMTPGATE, "serve", "-c", str(self.conf)],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=self.new_session)
        for port in (self.submission, self.smtps, self.mx):
            wait_port(port, proc=self.proc)
        # the parent binds before its smtp process serves: wait for that too
        deadline = time.monotonic() + 30
        while len(self.events("start")) <= starts and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            time.sleep(0.02)
        # the [admin] listener starts after the loops: wait for it too
        m = re.search(r"^\[admin\][^\[]*?^address\s*=\s*[^:\s]+:(\d+)", self.conf.read_text(),
                      re.M | re.S)
        if m:
            wait_port(int(m.group(1)), proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        self.assert_no_child_died()
        return rc

    # A child that dies is restarted by the parent, so the parent living on
    # proves nothing: a crash (a signal, ASan's exit status) of any child
    # fails the test unless the test kills children on purpose.
    child_exits_expected = False

    def expect_child_exits(self):
        self.child_exits_expected = True
        return self

    def assert_no_child_died(self):
        if self.child_exits_expected:
            return
        died = self.events("child_exit")
        assert not died, ("a child process died: " + json.dumps(died) + "\n"
                          + self.stderr_text()[-6000:])

    def children(self):
        """The server's child processes now, as {comm: [pid, ...]}."""
        return process_children(self.proc.pid)

    def child_pid(self, comm="smtpgate-smtp", timeout=10.0):
        """The pid of the one child named comm (waits for it)."""
        def find():
            pids = self.children().get(comm, [])
            return pids[0] if len(pids) == 1 else None
        return wait_for(find, timeout=timeout, what=f"a {comm} process")

    def pids(self):
        """The parent and every child."""
        return [self.proc.pid] + [p for ps in self.children().values() for p in ps]

    def kill(self):
        return self.stop(signal.SIGKILL)

    def events(self, event=None):
        out = []
        if not self.log.exists():
            return out
        for line in self.log.read_text().splitlines():
            rec = json.loads(line)
            if event is None or rec.get("event") == event:
                out.append(rec)
        return out

    def wait_event(self, event, pred=lambda r: True, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.events(event):
                if pred(r):
                    return r
            time.sleep(0.05)
        tail = self.log.read_text().splitlines()[-12:] if self.log.exists() else []
        raise TimeoutError(f"no {event} event; the log ends with:\n" + "\n".join(tail))

    def queued(self):
        """The queue as `smtpgate queue list --json` shows it."""
        r = subprocess.run([SMTPGATE, "queue", "list", "-c", str(self.conf), "--json"],
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)["messages"]

    def stderr_text(self):
        return (self.dir / "stderr.txt").read_text(errors="replace")


def process_children(pid):
    """The direct children of pid, as {comm: [pid, ...]}."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for task in tasks:
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


def proc_status_kib(pid, keys=("VmRSS", "VmHWM")):
    """Fields of /proc/PID/status in KiB (0 for a process gone meanwhile)."""
    out = dict.fromkeys(keys, 0)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in keys:
                    out[key] = int(line.split()[1])
    except FileNotFoundError:
        pass
    return out


@pytest.fixture
def server(tmp_path, pki):
    s = Server(tmp_path, pki).start()
    yield s
    rc = s.stop()
    # a clean shutdown exits 0 (ASan/LSan findings would make it non-zero)
    assert rc == 0, s.stderr_text()


@pytest.fixture
def make_server(tmp_path, pki):
    """Builds a server with custom settings: make_server(limits=..., ...)."""
    made = []

    def make(**kw):
        d = tmp_path / f"srv{len(made)}"
        d.mkdir()
        s = Server(d, pki, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.proc is not None:
            rc = s.stop()
            assert rc == 0, s.stderr_text()


# --- helpers added for test_clients / test_rejections / test_durability ---

def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value (returned) or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


METRICS_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def metrics(port):
    """GET /metrics of the admin API on port: (body, {"name{labels}": value}).
    The answer must be 200 in the text format 0.0.4, every sample parsed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as r:
        status, ctype, body = r.status, r.headers.get("Content-Type"), r.read().decode()
    assert status == 200, body
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    values = {}
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        m = METRICS_SAMPLE.match(line)
        assert m, line
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return body, values


def wait_metric(port, key, value, what=None):
    """Polls /metrics until sample key is value; returns all the values then."""
    def ready():
        v = metrics(port)[1]
        return v if v.get(key) == value else None
    return wait_for(ready, what=what or f"{key} == {value}")


def set_tls_option(server, key, value):
    """Adds `key = value` to the [tls] section of a not yet started server's
    config (the Server class writes [tls] itself, so `extra` cannot)."""
    text = server.conf.read_text()
    assert "[tls]\n" in text
    server.conf.write_text(text.replace("[tls]\n", f"[tls]\n{key} = {value}\n", 1))


def use_own_certificate(server, name="mail"):
    """Copies the PKI's chain/key for `name` into the server's folder and
    points the config's first cert/key at the copies, so a test may replace
    them (SIGHUP reload) without touching the session-wide PKI. Returns the
    (chain, key) paths of the copies."""
    pki = server.pki
    chain = server.dir / "own-chain.pem"
    key = server.dir / "own.key"
    chain.write_bytes((pki.dir / f"{name}-chain.pem").read_bytes())
    key.write_bytes((pki.dir / f"{name}.key").read_bytes())
    text = server.conf.read_text()
    text = text.replace(f"cert = {pki.dir / 'mail-chain.pem'}\n", f"cert = {chain}\n", 1)
    text = text.replace(f"key = {pki.dir / 'mail.key'}\n", f"key = {key}\n", 1)
    server.conf.write_text(text)
    return chain, key


def msg_id(m):
    """Fields of a `queue list/show --json` entry."""
    return m["id"]


def msg_sender(m):
    return m["sender"]


def msg_rcpts(m):
    return m["recipients"]


def queue_show(server, qid):
    """`smtpgate queue show ID --json` as a dict."""
    r = subprocess.run([SMTPGATE, "queue", "show", qid, "-c", str(server.conf), "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def spool_body(server, qid):
    """The message bytes of a committed message, read from its spool file
    (body, then envelope, then a 120-byte trailer '%%smtpgate 1 body=<16 hex>
    env=<8 hex> sha256=<64 hex>\\n', the hash over all before it). Checks
    the sizes and the checksum."""
    for folder in ("queue", "hold"):
        p = server.spool / folder / qid
        if p.exists():
            data = p.read_bytes()
            break
    else:
        raise FileNotFoundError(f"{qid} not in the spool")
    trailer = data[-120:]
    assert trailer.startswith(b"%%smtpgate 1 body="), trailer
    body_len = int(trailer[18:34], 16)
    env_len = int(trailer[39:47], 16)
    assert body_len + env_len + 120 == len(data), (body_len, env_len, len(data))
    assert hashlib.sha256(data[:-65]).hexdigest().encode() == trailer[55:119], "bad checksum"
    return data[:body_len]


def make_message(sender, rcpt, marker, subject=None):
    """A small RFC 5322 message (CRLF line ends) carrying `marker`."""
    subject = subject or f"test {marker}"
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{marker}@client.example.test>\r\n\r\n"
            f"body line with marker {marker}\r\n.leading dot line\r\nlast line\r\n")


# --- which finding ids the tests reach --------------------------------------------------
#
# doc/findings.md promises that every finding id can really be produced. Every
# `smtpgate probe|dns|audit|serve --check` that a test runs through
# subprocess.run has its output read here, whatever the test then asserts,
# and the ids it reports are kept for the whole session; test_findings_coverage
# fails when a full run of this directory reached an id of doc/findings.md
# in no test. Reading the real output (not the test sources) means an id
# counts only when the binary printed it.

FINDINGS_SEEN = set()
_DIAG_COMMANDS = {"probe", "dns", "audit", "serve"}
_FINDING_LINE = re.compile(r"^\[(?:error|warning|info)\] ([a-z0-9]+(?:-[a-z0-9]+)*)$", re.M)


def findings_record(text):
    """Adds the finding ids of one command's output (JSON or text)."""
    if not text:
        return
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
        FINDINGS_SEEN.update(f["id"] for f in doc["findings"]
                             if isinstance(f, dict) and isinstance(f.get("id"), str))
    FINDINGS_SEEN.update(_FINDING_LINE.findall(text))


def _is_diag_command(argv):
    if not isinstance(argv, (list, tuple)) or len(argv) < 2:
        return False
    return (os.path.basename(os.fsdecode(argv[0])) == os.path.basename(SMTPGATE)
            and os.fsdecode(argv[1]) in _DIAG_COMMANDS)


_subprocess_run = subprocess.run


def _subprocess_run_recording(*args, **kw):
    r = _subprocess_run(*args, **kw)
    if _is_diag_command(args[0] if args else kw.get("args")):
        findings_record(r.stdout)
        findings_record(r.stderr)
    return r


subprocess.run = _subprocess_run_recording

# Whether this session runs the whole directory, every test of it: only then
# can an id that no test reached be blamed on the tests.
_RUN = {"deselected": 0, "items": [], "done": set()}


def pytest_deselected(items):
    _RUN["deselected"] += len(items)


def pytest_collection_modifyitems(session, config, items):
    # the coverage check looks at what every other test saw: it runs last
    last = [i for i in items if i.nodeid.endswith("::test_every_finding_id_is_reached")]
    for i in last:
        items.remove(i)
    items.extend(last)
    _RUN["items"] = items


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        _RUN["done"].add(report.nodeid)


def findings_whole_run(own_nodeid):
    """None when the session ran every test of tests/integ before own_nodeid,
    else why not (a partial run)."""
    here = pathlib.Path(__file__).resolve().parent
    files = {p.name for p in here.glob("test_*.py")}
    collected = {pathlib.Path(str(i.fspath)).name for i in _RUN["items"]}
    if files - collected:
        return "not every test file was collected: " + ", ".join(sorted(files - collected))
    if _RUN["deselected"]:
        return f"{_RUN['deselected']} tests were deselected"
    others = {i.nodeid for i in _RUN["items"]} - {own_nodeid}
    if others - _RUN["done"]:
        return f"{len(others - _RUN['done'])} tests did not run"
    return None


def pytest_sessionfinish(session, exitstatus):
    # for whoever writes tests: the ids this (maybe partial) run reached
    out = os.environ.get("SMTPGATE_FINDINGS_SEEN_FILE")
    if out:
        with open(out, "a") as f:
            f.writelines(i + "\n" for i in sorted(FINDINGS_SEEN))


@pytest.fixture
def smtpgate_user():
    """The system user `smtpgate` ([server] user's default) while the test
    runs: made (and removed after) where it does not exist and the tests run
    as root."""
    import pwd
    made = False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("smtpgate")
        except KeyError:
            subprocess.run(["useradd", "--system", "--home-dir", "/var/spool/smtpgate",
                            "--shell", "/usr/sbin/nologin", "smtpgate"], check=True)
            made = True
    yield "smtpgate"
    if made:
        subprocess.run(["userdel", "smtpgate"], check=True)
