"""`smtpgate probe` against servers that fail in the plain, everyday ways: a
refusal at each stage of the test message, STARTTLS refused for now, a
server that stops answering, one that resets the connection, one whose
accept queue is full, a certificate about to expire, and a SCRAM server
whose proof of the password is wrong.

Each server is real (scripted SMTP over Python sockets and ssl); the
probe's report must name the finding and keep the server's own words as
evidence.
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import time

import pytest

from conftest import free_port
from zoo import script  # noqa: F401 (a fixture)
from zoo import ZooPKI, probe, severity, smtp_dialogue


@pytest.fixture(scope="module")
def zpki(tmp_path_factory):
    return ZooPKI(tmp_path_factory.mktemp("zoo-pki-faults"))


def tls_ctx(leaf):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    return ctx


def finding(doc, fid):
    found = [f for f in doc["findings"] if f["id"] == fid]
    assert len(found) == 1, (fid, doc["findings"])
    return found[0]


# --- refusals of the test message, stage by stage --------------------------------------

REFUSALS = [
    # stage, the server's reply, finding id, severity
    ("MAIL", "502 5.5.1 MAIL not implemented here", "command-not-implemented", "error"),
    ("MAIL", "555 5.5.4 MAIL FROM parameters not recognized", "parameter-not-implemented",
     "error"),
    ("RCPT", "550 5.1.1 <b@zoo.test>: Recipient address rejected: User unknown",
     "recipient-rejected", "error"),
    # greylisting and the like: a warning, the message may pass later
    ("RCPT", "451 4.3.0 <b@zoo.test>: Temporary lookup failure", "server-temporary-failure",
     "warning"),
    ("DATA", "554 5.6.0 Message content rejected, UBE id=1234", "message-rejected", "error"),
]


@pytest.mark.parametrize("stage,reply,fid,sev", REFUSALS, ids=[r[2] for r in REFUSALS])
def test_refusal_of_the_test_message_is_named(zpki, script, stage, reply, fid, sev):
    leaf = zpki.leaf("refuse-" + fid)
    s = script(lambda c, srv: smtp_dialogue(
        c, srv, tls_ctx=tls_ctx(leaf), on_mail=reply if stage == "MAIL" else None,
        on_rcpt=reply if stage == "RCPT" else None, on_data=reply if stage == "DATA" else None))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem,
                         "--from", "a@zoo.test", "--to", "b@zoo.test")
    assert rc == (1 if sev == "error" else 0), (doc, err)
    f = finding(doc, fid)
    assert f["severity"] == sev
    # the server's own words, and its codes, are the evidence
    assert reply in f["evidence"], f
    assert f["cause"] and f["fix"], f
    # nothing past the refusal was attempted
    lines = s.transcripts[0]
    if stage in ("MAIL", "RCPT"):
        assert "DATA" not in lines, lines


def test_starttls_refused_for_now_is_tls_unavailable(zpki, script):
    leaf = zpki.leaf("tls454")
    reply = "454 4.7.0 TLS not available due to temporary reason"
    s = script(lambda c, srv: smtp_dialogue(c, srv, tls_ctx=tls_ctx(leaf), on_starttls=reply))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem)
    assert rc == 1, (doc, err)
    f = finding(doc, "tls-unavailable")
    assert f["severity"] == "error" and reply in f["evidence"], f
    # no credentials or mail went over the unencrypted connection
    for t in s.transcripts:
        assert not any(x.upper().startswith(("AUTH", "MAIL")) for x in t), t


# --- servers that stop talking ----------------------------------------------------------

def test_server_that_stops_answering_is_a_reply_timeout(script):
    def mute_after_greeting(c, srv):
        c.send("220 zoo.test ESMTP\r\n")
        c.readline()  # EHLO, never answered
        srv.stopping.wait(30)

    s = script(mute_after_greeting)
    t0 = time.monotonic()
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--timeout", "2")
    took = time.monotonic() - t0
    assert rc == 1, (doc, err)
    f = finding(doc, "reply-timeout")
    assert f["severity"] == "error", f
    assert "greeting-timeout" not in {x["id"] for x in doc["findings"]}
    assert took < 20, took  # bounded by --timeout, with retries


def test_connection_reset_is_named_with_its_stage(script):
    def reset_on_ehlo(c, srv):
        c.send("220 zoo.test ESMTP\r\n")
        c.readline()
        # SO_LINGER 0: close sends RST, not FIN
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()

    s = script(reset_on_ehlo)
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--timeout", "5")
    assert rc == 1, (doc, err)
    f = finding(doc, "connection-reset")
    assert "EHLO" in f["evidence"] or "ehlo" in f["evidence"].lower(), f
    assert "connection-closed" not in {x["id"] for x in doc["findings"]}


def test_full_accept_queue_is_a_connection_timeout():
    """A listener that never accepts, whose queue is full: the kernel drops
    the probe's SYN, as a firewall that drops packets does."""
    port = free_port()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers = []
    try:
        lsock.bind(("127.0.0.1", port))
        lsock.listen(0)
        for _ in range(4):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        time.sleep(0.2)
        t0 = time.monotonic()
        rc, doc, err = probe(f"127.0.0.1:{port}", "--plain", "--timeout", "2")
        took = time.monotonic() - t0
    finally:
        for c in fillers:
            c.close()
        lsock.close()
    assert rc == 1, (doc, err)
    f = finding(doc, "connection-timeout")
    assert f["severity"] == "error", f
    assert took < 30, took


# --- a certificate about to expire -------------------------------------------------------

def test_certificate_expiring_within_two_weeks_is_a_warning(zpki, script):
    leaf = zpki.leaf("soon", days=(-80, 5))
    s = script(lambda c, srv: smtp_dialogue(c, srv, tls_ctx=tls_ctx(leaf)))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem)
    assert severity(doc, "cert-expires-soon") == "warning", doc["findings"]
    assert "cert-expired" not in {x["id"] for x in doc["findings"]}
    assert rc == 0, (doc, err)  # a warning, not an error


def test_certificate_valid_for_months_is_not_expiring_soon(zpki, script):
    leaf = zpki.leaf("notsoon", days=(-1, 90))
    s = script(lambda c, srv: smtp_dialogue(c, srv, tls_ctx=tls_ctx(leaf)))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem)
    assert "cert-expires-soon" not in {x["id"] for x in doc["findings"]}, doc["findings"]
    assert rc == 0, (doc, err)


# --- a SCRAM server that does not know the password ---------------------------------------

def _b64(b):
    return base64.b64encode(b).decode()


def scram_server(right_proof, password, state):
    """AUTH SCRAM-SHA-256 (RFC 5802/7677), server side: its final message
    proves knowledge of the password when right_proof, else it is random
    (a server that does not hold this password, or a man in the middle)."""
    def auth(conn, line):
        parts = line.split(" ")
        first = parts[2] if len(parts) > 2 else None
        if first is None:
            conn.send("334 \r\n")
            first = conn.readline()
        cfirst = base64.b64decode(first).decode()
        bare = cfirst.split(",", 2)[2]
        cnonce = dict(kv.split("=", 1) for kv in bare.split(","))["r"]
        salt, it = os.urandom(16), 4096
        sfirst = f"r={cnonce}{_b64(os.urandom(18))},s={_b64(salt)},i={it}"
        conn.send(f"334 {_b64(sfirst.encode())}\r\n")
        cfinal = base64.b64decode(conn.readline()).decode()
        without_proof = cfinal.rsplit(",p=", 1)[0]
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        authmsg = f"{bare},{sfirst},{without_proof}".encode()
        sig = hmac.new(server_key, authmsg, "sha256").digest()
        state["finals"] += 1
        v = sig if right_proof else os.urandom(32)
        conn.send(f"334 {_b64(('v=' + _b64(v)).encode())}\r\n")
        answer = conn.readline()
        state["after"].append(answer)
        if answer == "":
            conn.send("235 2.7.0 Authentication successful\r\n")
        else:
            conn.send("501 5.7.0 Authentication aborted\r\n")

    return auth


@pytest.mark.parametrize("right", [True, False], ids=["right-proof", "wrong-proof"])
def test_scram_server_proof_is_checked(zpki, script, right):
    leaf = zpki.leaf("scram-" + str(right))
    state = {"finals": 0, "after": []}
    s = script(lambda c, srv: smtp_dialogue(
        c, srv, ehlo=("AUTH SCRAM-SHA-256",), tls_ctx=tls_ctx(leaf),
        auth=scram_server(right, "pw", state)))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem,
                         "--user", "u@zoo.test", "--auth", "SCRAM-SHA-256",
                         "--password-stdin", stdin="pw\n")
    assert state["finals"] >= 1, (doc, err, s.transcripts)
    fids = {x["id"] for x in doc["findings"]}
    if right:
        assert "auth-server-proof-invalid" not in fids, doc["findings"]
        assert [a["result"] for a in doc["auth"]] == ["ok"], doc["auth"]
        assert rc == 0, (doc, err)
    else:
        f = finding(doc, "auth-server-proof-invalid")
        assert f["severity"] == "error", f
        # the client gave up instead of accepting a server that proved nothing
        assert state["after"] and state["after"][0] == "*", state
        assert rc == 1, (doc, err)
