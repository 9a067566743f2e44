"""SCRAM-* and CRAM-MD5 run their key-dependent steps in smtpgate-auth: the
smtp process (which reads the network) never receives a StoredKey, a
ServerKey or a CRAM-MD5 key. strace records every byte the smtp process
reads (the auth channel included) during real logins; the keys of the
passwd file must not be among them, while the salt of the server-first
message, which comes over the same channel, must be (so the trace saw the
answers). An auth process that dies in the middle of a SCRAM exchange gives
454 4.7.0 (never 535); a stopped one leaves the smtp process serving
everyone else."""
import base64
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import PASSWORD, USER, free_port, wait_for
from smtpclient import SMTPClient, plain_ir
from test_privsep import auth_pid, child_pid
from test_scram import CRAM_PASSWORD, CRAM_USER, Scram, gsasl, tls_client

MECHS = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1 PLAIN CRAM-MD5"


@pytest.fixture
def srv(make_server):
    port = free_port()
    s = make_server(mechanisms=MECHS, extra=f"[admin]\naddress = 127.0.0.1:{port}\n")
    s.add_user(CRAM_USER, CRAM_PASSWORD, "--scheme", "CRAM-MD5")
    return s.start()


def secrets_of(passwd):
    """Every key of the passwd file (raw and as stored), and the salts."""
    keys, salts = [], []
    for line in passwd.read_text().splitlines():
        fields = line.split(":")
        for v in [fields[1]] + [f.split("=", 1)[1] for f in " ".join(fields[7:]).split()
                                if f.startswith("scram1=")]:
            if v.startswith("{CRAM-MD5}$k$"):
                hexkey = v[len("{CRAM-MD5}$k$"):]
                keys += [bytes.fromhex(hexkey), hexkey.encode()]
                continue
            v = re.sub(r"^\{SCRAM-SHA-\d+\}", "", v)
            parts = v.split(",")
            if len(parts) == 4:
                salts.append(parts[1].encode())
                for k in parts[2:]:
                    keys += [base64.b64decode(k), k.encode()]
    return keys, salts


def traced(pid):
    """strace on every thread of pid: what it reads, in hex."""
    out = f"/tmp/strace-{pid}-{os.getpid()}.txt"
    p = subprocess.Popen(["strace", "-f", "-qq", "-p", str(pid), "-xx", "-s", "70000",
                          "-e", "trace=read,readv,recvmsg,recvfrom", "-e", "signal=none",
                          "-o", out], stderr=subprocess.DEVNULL)

    def attached():
        for t in os.listdir(f"/proc/{pid}/task"):
            st = open(f"/proc/{pid}/task/{t}/status").read()
            if "TracerPid:\t0\n" in st:
                return False
        return True
    wait_for(attached, timeout=10, what="strace attached")
    return p, out


def read_bytes(out):
    text = open(out).read()
    os.unlink(out)
    return [bytes.fromhex(m.replace("\\x", ""))
            for m in re.findall(r'"((?:\\x[0-9a-f]{2})+)"', text)]


def test_smtp_process_never_receives_key_material(srv):
    smtp = child_pid(srv, "smtpgate-smtp")
    keys, salts = secrets_of(srv.users)
    assert len(keys) >= 6 and salts  # SHA-256, SHA-1 and the CRAM-MD5 key
    p, out = traced(smtp)
    try:
        for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1"):
            r = gsasl(srv, mech, cb=mech.endswith("-PLUS"))
            assert r.returncode == 0, (mech, r.stderr)
        r = gsasl(srv, "CRAM-MD5", user=CRAM_USER, password=CRAM_PASSWORD)
        assert r.returncode == 0, r.stderr
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
    data = read_bytes(out)
    blob = b"\0".join(data)
    # the auth process's answers were traced: server-first carries the salt
    assert any(s in blob for s in salts), "the trace saw no server-first"
    for k in keys:
        assert k not in blob, f"key material reached the smtp process: {k!r}"


def test_auth_process_death_mid_scram_gives_454(srv):
    with tls_client(srv) as c:
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256")
        r = s.first()
        assert r.code == 334, r
        pid = auth_pid(srv)
        srv.expect_child_exits()
        os.kill(pid, signal.SIGKILL)
        srv.wait_event("child_exit", lambda e: e.get("pid") == pid)
        # the exchange lived in the dead process: a temporary failure
        r = s.final(r.texts[0])
        assert r.code == 454 and r.last.startswith("454 4.7.0"), r
        auth_pid(srv, other_than=pid, timeout=15)

        def login():
            s2 = Scram(c, "SCRAM-SHA-256")
            r = s2.first()
            if r.code != 334:
                return None
            r = s2.final(r.texts[0])
            return c.cmd("") if r.code == 334 else None
        r = wait_for(lambda: (lambda r: r if r is not None and r.code == 235 else None)(
            login()), timeout=15, interval=0.3, what="SCRAM after the restart")
        assert r.last.startswith("235 2.7.0"), r
    fails = [e for e in srv.events() if e.get("event") == "auth" and e.get("result") == "fail"]
    assert not fails, fails


def test_stopped_auth_process_never_stalls_the_loop(srv):
    pid = auth_pid(srv)
    a = SMTPClient(srv.submission)
    b = SMTPClient(srv.submission)
    try:
        for c in (a, b):
            c.ehlo()
            c.starttls()
            c.ehlo()
        os.kill(pid, signal.SIGSTOP)
        try:
            a.send(b"AUTH PLAIN " + plain_ir(USER, PASSWORD).encode() + b"\r\n")
            s = Scram(b, "SCRAM-SHA-256")
            b.send(f"AUTH {s.mech} ".encode() + base64.b64encode(
                (s.gs2 + f"n={s.user},r={s.cnonce}").encode()) + b"\r\n")
            # both wait for the auth process; a third session is served at once
            t = time.monotonic()
            with SMTPClient(srv.submission) as c:
                assert "STARTTLS" in c.ehlo()
                assert c.cmd("NOOP").code == 250
            assert time.monotonic() - t < 2
            # and the waiting ones get 454 within the client's bound (30 s)
            for c in (a, b):
                r = c.reply(timeout=40)
                assert r.code == 454 and r.last.startswith("454 4.7.0"), r
        finally:
            os.kill(pid, signal.SIGCONT)
        r = wait_for(lambda: (lambda r: r if r.code == 235 else None)(
            a.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD))), timeout=10, interval=0.3,
            what="235 after SIGCONT")
        assert r.last.startswith("235 2.7.0"), r
    finally:
        a.close()
        b.close()
