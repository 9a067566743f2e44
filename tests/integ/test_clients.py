"""Interoperability with real clients: Python smtplib, swaks, curl, msmtp and
openssl s_client. Each client sends a message that must then be in the queue
(sender, recipients, body) and be logged as accepted. Certificates are
verified against the test root only, which proves the server sends the whole
chain (leaf + intermediate)."""
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import uuid

import pytest

from conftest import (PASSWORD, USER, make_message, msg_id, msg_rcpts, msg_sender, queue_show,
                      set_tls_option, spool_body, wait_for)

RCPT = "bob@example.test"
QUEUED_RE = re.compile(r"queued as ([A-Za-z0-9._-]+)")


def marker():
    return "m-" + uuid.uuid4().hex


def find_by_marker(server, mark, timeout=10.0):
    """The queue id of the one queued message whose body holds mark."""
    def look():
        hits = [msg_id(m) for m in server.queued()
                if mark.encode() in spool_body(server, msg_id(m))]
        return hits or None
    hits = wait_for(look, timeout=timeout, what=f"message with {mark}")
    assert len(hits) == 1, hits
    return hits[0]


def check_queued(server, qid, mark, sender=USER, rcpts=(RCPT,), protocol="ESMTPSA"):
    """The message qid is queued with this envelope, carries mark, was
    logged as accepted, and its Received: header names the protocol."""
    msgs = {msg_id(m): m for m in server.queued()}
    assert qid in msgs, (qid, msgs)
    assert msg_sender(msgs[qid]) == sender
    assert msg_rcpts(msgs[qid]) == list(rcpts)
    shown = queue_show(server, qid)
    assert shown["id"] == qid
    assert msg_sender(shown) == sender and msg_rcpts(shown) == list(rcpts)
    if protocol.endswith("A"):
        assert shown["auth_user"] == USER, shown
    body = spool_body(server, qid)
    assert mark.encode() in body
    received = body.split(b"\r\n\r\n", 1)[0]
    assert received.startswith(b"Received: from "), received
    assert f" with {protocol} id {qid}".encode() in received, received
    ev = server.wait_event("accepted", lambda r: r.get("queue_id") == qid)
    assert ev["from"] == sender
    assert ev["rcpts"] == len(rcpts)
    return shown


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# --- Python smtplib -------------------------------------------------------------

def verifying_context(server):
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


class SMTP_SSL_Named(smtplib.SMTP_SSL):
    """SMTP_SSL that connects to an address but verifies a host name."""

    server_hostname = "mail.example.test"

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.server_hostname)


def smtplib_send(s, mark):
    msg = make_message(USER, RCPT, mark)
    code, resp = s.mail(USER)
    assert code == 250, resp
    code, resp = s.rcpt(RCPT)
    assert code == 250, resp
    code, resp = s.data(msg.encode())
    assert code == 250, resp
    m = QUEUED_RE.search(resp.decode())
    assert m, resp
    return m.group(1)


@pytest.mark.parametrize("mech,initial_response", [
    ("PLAIN", True), ("PLAIN", False), ("LOGIN", True), ("LOGIN", False)])
def test_smtplib_starttls(server, mech, initial_response):
    mark = marker()
    with smtplib.SMTP("127.0.0.1", server.submission, local_hostname="client.example.test",
                      timeout=30) as s:
        s.ehlo()
        assert s.has_extn("starttls") and not s.has_extn("auth")
        # verifies the chain and the IP address SAN against the root only
        s.starttls(context=verifying_context(server))
        s.ehlo()
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        s.user, s.password = USER, PASSWORD
        authobject = s.auth_plain if mech == "PLAIN" else s.auth_login
        code, resp = s.auth(mech, authobject, initial_response_ok=initial_response)
        assert (code, resp) == (235, b"2.7.0 Authentication successful")
        qid = smtplib_send(s, mark)
    check_queued(server, qid, mark)
    ev = server.wait_event("auth", lambda r: r.get("result") == "ok")
    assert ev["mechanism"] == mech and ev["user"] == USER and ev["code"] == 235


def test_smtplib_login_picks_a_mechanism(server):
    mark = marker()
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=verifying_context(server))
        s.login(USER, PASSWORD)
        qid = smtplib_send(s, mark)
    check_queued(server, qid, mark)


def test_smtplib_wrong_password(server):
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=verifying_context(server))
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(USER, "not the password")
        assert e.value.smtp_code == 535


def test_smtplib_implicit_tls(server):
    mark = marker()
    ctx = verifying_context(server)
    with SMTP_SSL_Named("127.0.0.1", server.smtps, context=ctx, timeout=30) as s:
        cert = s.sock.getpeercert()
        assert dict(x[0] for x in cert["subject"])["commonName"] == "mail.example.test"
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.ehlo("client.example.test")
        assert not s.has_extn("starttls")
        s.login(USER, PASSWORD)
        qid = smtplib_send(s, mark)
    check_queued(server, qid, mark)


def test_smtplib_implicit_tls_sni_other(server):
    """SNI other.example.test gets the other certificate, which verifies."""
    ctx = verifying_context(server)

    class Other(SMTP_SSL_Named):
        server_hostname = "other.example.test"

    with Other("127.0.0.1", server.smtps, context=ctx, timeout=30) as s:
        cert = s.sock.getpeercert()
        assert dict(x[0] for x in cert["subject"])["commonName"] == "other.example.test"
        s.ehlo()


def test_smtplib_rejects_wrong_root(server, tmp_path):
    """Sanity check of the verification: a foreign root does not verify."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "r.pem",
                    "-days", "1", "-subj", "/CN=foreign root"],
                   cwd=tmp_path, check=True, capture_output=True)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "r.pem"))
    with pytest.raises(ssl.SSLCertVerificationError):
        with SMTP_SSL_Named("127.0.0.1", server.smtps, context=ctx, timeout=30):
            pass


# --- swaks ------------------------------------------------------------------------

def swaks(server, port, tls_flag, mech, mark, verify=True):
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), tls_flag,
           "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD,
           "--from", USER, "--to", RCPT, "--helo", "client.example.test",
           "--header", f"Subject: swaks {mark}", "--body", f"body with {mark}",
           "--timeout", "30"]
    if verify:
        cmd += ["--tls-verify", "--tls-ca-path", str(server.pki.root)]
    return run(cmd)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_starttls(server, mech):
    mark = marker()
    r = swaks(server, server.submission, "--tls", mech, mark)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  235 2.7.0 Authentication successful" in r.stdout, r.stdout
    m = re.search(r"<~  250 2\.0\.0 OK: queued as (\S+)", r.stdout)
    assert m, r.stdout
    assert find_by_marker(server, mark) == m.group(1)
    check_queued(server, m.group(1), mark)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_implicit_tls(server):
    mark = marker()
    r = swaks(server, server.smtps, "--tlsc", "PLAIN", mark)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250" in r.stdout
    m = re.search(r"<~  250 2\.0\.0 OK: queued as (\S+)", r.stdout)
    assert m, r.stdout
    check_queued(server, m.group(1), mark)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_verify_fails_with_wrong_ca(server):
    """--tls-verify really verifies: with a CA file that holds no issuer of
    the chain (a leaf certificate) the TLS negotiation fails."""
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(server.smtps), "--tlsc",
           "--tls-verify", "--tls-ca-path", str(server.pki.dir / "other.crt"),
           "--from", USER, "--to", RCPT, "--timeout", "30", "--quit-after", "EHLO"]
    r = run(cmd)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "220 mail.example.test ESMTP ready" not in r.stdout, r.stdout


# --- curl ---------------------------------------------------------------------------

def curl(server, url, mark, tmp_path, login_options=None):
    msg = tmp_path / f"{mark}.eml"
    msg.write_bytes(make_message(USER, RCPT, mark).encode())
    cmd = ["curl", "-sS", "-v", "--max-time", "30", "--url", url,
           "--cacert", str(server.pki.root), "--user", f"{USER}:{PASSWORD}",
           "--mail-from", USER, "--mail-rcpt", RCPT, "--upload-file", str(msg)]
    if url.startswith("smtp://"):
        cmd.insert(1, "--ssl-reqd")
    if login_options:
        cmd += ["--login-options", login_options]
    return run(cmd)


@pytest.mark.parametrize("mech", [None, "PLAIN", "LOGIN"])
def test_curl_starttls(server, tmp_path, mech):
    mark = marker()
    r = curl(server, f"smtp://127.0.0.1:{server.submission}", mark, tmp_path,
             f"AUTH={mech}" if mech else None)
    assert r.returncode == 0, r.stderr
    assert "> STARTTLS" in r.stderr, r.stderr
    if mech:
        assert f"> AUTH {mech}" in r.stderr, r.stderr
    m = re.search(r"< 250 2\.0\.0 OK: queued as (\S+)", r.stderr)
    assert m, r.stderr
    check_queued(server, m.group(1), mark)


def test_curl_implicit_tls(server, tmp_path):
    mark = marker()
    r = curl(server, f"smtps://127.0.0.1:{server.smtps}", mark, tmp_path)
    assert r.returncode == 0, r.stderr
    m = re.search(r"< 250 2\.0\.0 OK: queued as (\S+)", r.stderr)
    assert m, r.stderr
    check_queued(server, m.group(1), mark)


def test_curl_wrong_password(server, tmp_path):
    mark = marker()
    msg = tmp_path / "m.eml"
    msg.write_bytes(make_message(USER, RCPT, mark).encode())
    r = run(["curl", "-sS", "--max-time", "30", "--url", f"smtps://127.0.0.1:{server.smtps}",
             "--cacert", str(server.pki.root), "--user", f"{USER}:nope",
             "--mail-from", USER, "--mail-rcpt", RCPT, "--upload-file", str(msg)])
    assert r.returncode == 67, (r.returncode, r.stderr)  # CURLE_LOGIN_DENIED
    assert server.queued() == []


# --- msmtp ------------------------------------------------------------------------

def msmtp(server, tmp_path, port, starttls, mech, mark):
    conf = tmp_path / f"msmtprc-{mark}"
    conf.write_text(f"""\
account default
host 127.0.0.1
port {port}
tls on
tls_starttls {'on' if starttls else 'off'}
tls_trust_file {server.pki.root}
auth {mech}
user {USER}
password {PASSWORD}
from {USER}
domain client.example.test
timeout 30
""")
    conf.chmod(0o600)
    msg = make_message(USER, RCPT, mark)
    return run(["msmtp", "-C", str(conf), "-d", "-t"], input=msg.replace("\r\n", "\n"))


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")
@pytest.mark.parametrize("starttls,mech", [(True, "plain"), (True, "login"), (False, "plain"),
                                           (False, "login")])
def test_msmtp(server, tmp_path, starttls, mech):
    mark = marker()
    port = server.submission if starttls else server.smtps
    r = msmtp(server, tmp_path, port, starttls, mech, mark)
    assert r.returncode == 0, r.stdout + r.stderr
    m = QUEUED_RE.search(r.stdout + r.stderr)
    qid = find_by_marker(server, mark)
    if m:
        assert m.group(1) == qid
    check_queued(server, qid, mark)
    ev = server.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech.upper()


# --- openssl s_client: SNI, chain, versions ------------------------------------------

def s_client(port, *args, timeout=30):
    # -ign_eof: the QUIT goes out, and s_client reads until the server closes
    # (after its 221), so the greeting is always in the output
    return run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts",
                "-ign_eof", *args], input="QUIT\r\n", timeout=timeout)


def assert_session_ok(r):
    """Handshake verified against the root, then the greeting. (s_client
    sends the QUIT right after the handshake: whether the 221 arrives and the
    exit status are checked in test_rejections (test_quit_right_after_handshake)
    and test_tls_close_notify_after_quit, not here.)"""
    assert "Verify return code: 0 (ok)" in r.stdout, r.stdout + r.stderr
    assert "220 mail.example.test ESMTP ready" in r.stdout or "-starttls" in r.args, r.stdout


def assert_version_refused(r):
    """The handshake failed with the server's protocol_version alert."""
    assert r.returncode != 0, r.stdout
    assert "Cipher is (NONE)" in r.stdout, r.stdout
    assert "alert protocol version" in r.stderr, r.stderr
    assert "220 mail.example.test" not in r.stdout


def chain_subjects(out):
    """The subjects (' 0 s:CN = ...') of the certificates the server sent."""
    return re.findall(r"^ *(\d+) s:(.*)$", out, re.M)


@pytest.mark.parametrize("servername,cn", [
    (None, "mail.example.test"),
    ("mail.example.test", "mail.example.test"),
    ("other.example.test", "other.example.test"),
    ("unknown.example.test", "mail.example.test"),
])
def test_sni_implicit(server, servername, cn):
    args = ["-noservername"] if servername is None else ["-servername", servername]
    r = s_client(server.smtps, *args, "-CAfile", str(server.pki.root))
    assert_session_ok(r)
    subjects = chain_subjects(r.stdout)
    assert subjects[0] == ("0", f"CN = {cn}"), subjects
    # the leaf and the intermediate, not the root
    assert subjects[1] == ("1", "CN = smtpgate test intermediate"), subjects
    assert len(subjects) == 2, subjects


@pytest.mark.parametrize("servername,cn", [
    (None, "mail.example.test"), ("other.example.test", "other.example.test")])
def test_sni_starttls(server, servername, cn):
    args = ["-noservername"] if servername is None else ["-servername", servername]
    r = s_client(server.submission, "-starttls", "smtp", *args, "-CAfile",
                 str(server.pki.root))
    assert_session_ok(r)
    subjects = chain_subjects(r.stdout)
    assert subjects[0] == ("0", f"CN = {cn}"), subjects
    assert len(subjects) == 2, subjects
    ev = server.wait_event("tls", lambda e: e.get("sni") == servername)
    assert ev["version"].startswith("TLSv1.")


def test_tls_1_1_refused(server):
    # SECLEVEL=0 so that it is the server, not OpenSSL's client defaults, refusing
    for port, extra in ((server.smtps, []), (server.submission, ["-starttls", "smtp"])):
        r = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", *extra)
        assert_version_refused(r)
    server.wait_event("tls_error", lambda e: "unsupported protocol" in e.get("error", ""))


@pytest.mark.parametrize("version", ["1_2", "1_3"])
def test_tls_1_2_and_1_3_accepted(server, version):
    r = s_client(server.smtps, f"-tls{version}", "-CAfile", str(server.pki.root))
    assert_session_ok(r)
    assert f"Protocol  : TLSv{version.replace('_', '.')}" in r.stdout, r.stdout


def test_tls_min_version_1_3(make_server):
    s = make_server()
    set_tls_option(s, "min_version", "1.3")
    s.start()
    for port, extra in ((s.smtps, []), (s.submission, ["-starttls", "smtp"])):
        assert_version_refused(s_client(port, "-tls1_2", *extra))
        r = s_client(port, "-tls1_3", *extra, "-CAfile", str(s.pki.root))
        assert_session_ok(r)
        assert "Protocol  : TLSv1.3" in r.stdout
    # and smtplib still works over TLS 1.3
    mark = marker()
    with SMTP_SSL_Named("127.0.0.1", s.smtps, context=verifying_context(s), timeout=30) as c:
        assert c.sock.version() == "TLSv1.3"
        c.login(USER, PASSWORD)
        qid = smtplib_send(c, mark)
    check_queued(s, qid, mark)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_close_notify_after_quit(server, version):
    """After 221 the server ends TLS with a close_notify alert (RFC 8446 6.1)
    before closing the socket; without it OpenSSL 3 clients report
    'unexpected eof while reading' (s_client exits 1)."""
    ctx = verifying_context(server)
    ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", server.smtps), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="mail.example.test",
                             suppress_ragged_eofs=False) as c:
            f = c.makefile("rb")
            assert f.readline() == b"220 mail.example.test ESMTP ready\r\n"
            c.sendall(b"QUIT\r\n")
            assert f.readline() == b"221 2.0.0 Bye\r\n"
            # b"" only after a close_notify; a bare TCP FIN raises SSLEOFError
            assert f.read() == b""
