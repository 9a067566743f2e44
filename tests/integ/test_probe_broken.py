"""`smtpgate probe` against endpoints that are broken in ways that are easy
to misdiagnose: old-TLS servers that refuse a modern ClientHello in each of
the ways seen on the wire, TLS 1.2 servers with weak parameters, trusted
certificates with weak keys or signatures, an AUTH back-end that fails once
and then works.
Each server is real (Python ssl, scripted SMTP): the probe's diagnosis must
name the cause, whatever the failure looked like.
"""
import datetime
import ipaddress
import socket
import ssl
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from zoo import script  # noqa: F401 (a fixture)
from zoo import Leaf, ScriptServer, SServer, ZooPKI, ids, probe, smtp_dialogue

# the test servers speak TLS 1.0 and sign with SHA-1 on purpose
pytestmark = [pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:SHA1 signatures are deprecated")]


@pytest.fixture(scope="module")
def zpki(tmp_path_factory):
    return ZooPKI(tmp_path_factory.mktemp("zoo-pki-broken"))


# --- a server that speaks only TLS 1.0 ----------------------------------------------

TLS10 = 0x0301


def _peek_client_hello(sock, limit=16389):
    """The first TLS record the client sent (left in the socket)."""
    sock.settimeout(10)
    data = b""
    while True:
        data = sock.recv(limit, socket.MSG_PEEK)
        if len(data) >= 5 and len(data) >= 5 + struct.unpack("!H", data[3:5])[0]:
            return data
        if not data:
            return b""


def _offered_versions(record):
    """The versions a ClientHello offers: its supported_versions extension
    (RFC 8446 4.2.1), else its legacy_version alone."""
    if len(record) < 9 or record[0] != 22 or record[5] != 1:
        return set()
    body = record[9:]
    legacy = struct.unpack("!H", body[0:2])[0]
    i = 2 + 32
    i += 1 + body[i]  # session id
    i += 2 + struct.unpack("!H", body[i:i + 2])[0]  # cipher suites
    i += 1 + body[i]  # compression methods
    if i + 2 > len(body):
        return {legacy}
    end = i + 2 + struct.unpack("!H", body[i:i + 2])[0]
    i += 2
    while i + 4 <= end:
        etype, elen = struct.unpack("!HH", body[i:i + 4])
        if etype == 43:  # supported_versions
            ext = body[i + 5:i + 4 + elen]
            return {struct.unpack("!H", ext[k:k + 2])[0] for k in range(0, len(ext), 2)}
        i += 4 + elen
    return {legacy}


def _refuse(sock, how):
    """Refuses a ClientHello the way old servers and middleboxes do."""
    if how in ("alert-protocol-version", "alert-handshake-failure"):
        desc = 70 if how == "alert-protocol-version" else 40
        sock.recv(16389)
        sock.sendall(bytes([21, 3, 1, 0, 2, 2, desc]))  # fatal alert, TLS 1.0 record
        sock.close()
    elif how == "reset":
        # unread bytes and SO_LINGER 0: the kernel answers with RST
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    elif how == "close":
        sock.recv(16389)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    elif how == "silence":
        # reads the ClientHello and never answers, until the client gives up
        sock.recv(16389)
        sock.settimeout(8)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        sock.close()


def _after_tls(conn):
    while True:
        line = conn.readline()
        verb = line.split(" ", 1)[0].upper()
        if verb == "EHLO":
            conn.send("250-zoo.test\r\n250 8BITMIME\r\n")
        elif verb == "QUIT":
            conn.send("221 2.0.0 bye\r\n")
            return
        else:
            conn.send("250 2.0.0 OK\r\n")


def old_tls_handler(leaf, how, starttls, legacy_ok=True):
    """A server that speaks TLS 1.0 only: a ClientHello that does not offer
    TLS 1.0 is refused the way `how` says; one that does is answered (unless
    legacy_ok is False: then every handshake is refused)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1

    def handler(conn, srv):
        if starttls:
            conn.send("220 zoo.test ESMTP\r\n")
            while True:
                verb = conn.readline().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    conn.send("250-zoo.test\r\n250 STARTTLS\r\n")
                elif verb == "STARTTLS":
                    conn.send("220 2.0.0 go ahead\r\n")
                    break
                elif verb == "QUIT":
                    conn.send("221 2.0.0 bye\r\n")
                    return
                else:
                    conn.send("502 5.5.1 no\r\n")
        hello = _peek_client_hello(conn.sock)
        if not legacy_ok or TLS10 not in _offered_versions(hello):
            _refuse(conn.sock, how)
            return
        conn.starttls(ctx)
        if not starttls:
            conn.send("220 zoo.test ESMTP\r\n")
        _after_tls(conn)

    return handler


REFUSALS = ["alert-protocol-version", "alert-handshake-failure", "reset", "close", "silence"]


@pytest.mark.parametrize("mode", ["--tls", "--starttls"])
@pytest.mark.parametrize("how", REFUSALS)
def test_tls10_only_server_is_named_whatever_its_refusal(zpki, script, how, mode):
    s = script(old_tls_handler(zpki.leaf("old10"), how, starttls=mode == "--starttls"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", mode, "--cafile", zpki.root_pem,
                         "--timeout", "2")
    assert rc == 1, (doc, err)
    assert "tls-version-too-old" in ids(doc), doc["findings"]
    assert "tls-handshake-failed" not in ids(doc), doc["findings"]
    assert "tls-mode-mismatch" not in ids(doc), doc["findings"]
    f = [f for f in doc["findings"] if f["id"] == "tls-version-too-old"][0]
    assert "TLSv1" in f["evidence"], f
    assert doc["tls"]["version"] == "TLSv1" and doc["tls"]["legacy_only"] is True
    assert not s.errors, s.errors


@pytest.mark.parametrize("how", ["alert-handshake-failure", "close", "silence"])
def test_server_refusing_every_handshake_is_a_handshake_failure(zpki, script, how):
    """Refused with older versions allowed too: not the version, so
    tls-handshake-failed (and not a mode mismatch: it is no plaintext port)."""
    s = script(old_tls_handler(zpki.leaf("refuser"), how, starttls=False, legacy_ok=False))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--cafile", zpki.root_pem,
                         "--timeout", "2")
    assert rc == 1, (doc, err)
    assert "tls-handshake-failed" in ids(doc), doc["findings"]
    assert "tls-version-too-old" not in ids(doc), doc["findings"]
    # the legacy handshake was tried before giving up
    assert any("which TLS version?" in e["text"] for e in doc["transcript"]), doc["transcript"]


def test_tls12_server_with_weak_signatures_is_not_called_too_old(zpki, tmp_path):
    """TLS 1.2, but only with SHA-1 handshake signatures, which current
    clients refuse: the legacy handshake works with TLS 1.2, so the version
    is not the problem and the finding says what is."""
    s = SServer(tmp_path, zpki.leaf("sha1sig"), ["-tls1_2", "-sigalgs", "ECDSA+SHA1",
                                                 "-cipher", "DEFAULT@SECLEVEL=0"])
    try:
        rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--cafile", zpki.root_pem,
                             "--timeout", "3")
    finally:
        s.stop()
    assert rc == 1, (doc, err)
    assert "tls-version-too-old" not in ids(doc), doc["findings"]
    f = [f for f in doc["findings"] if f["id"] == "tls-handshake-failed"]
    assert f and "too weak" in f[0]["evidence"] and "TLSv1.2" in f[0]["evidence"], f
    assert doc["tls"]["version"] == "TLSv1.2" and doc["tls"]["legacy_only"] is True


# --- a trusted certificate that is too weak ------------------------------------------

def _weak_leaf(zpki, d, label, key_size=None, sha1=False):
    """A leaf of the zoo's intermediate (so it is trusted with --cafile),
    with an RSA key of key_size bits or signed with SHA-1."""
    key = rsa.generate_private_key(65537, key_size) if key_size else \
        ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(zpki.inter.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(zpki.inter_key, hashes.SHA1() if sha1 else hashes.SHA256()))
    leaf = Leaf(chain=None, leaf=d / f"{label}.pem", inter=d / f"{label}-inter.pem",
                key=d / f"{label}.key")
    leaf.leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    leaf.inter.write_bytes(zpki.inter.public_bytes(serialization.Encoding.PEM))
    leaf.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return leaf


@pytest.mark.parametrize("weakness,expected", [
    ({"key_size": 1024}, "key too weak"),
    ({"sha1": True}, "digest algorithm too weak"),
])
def test_trusted_but_weak_certificate_is_not_untrusted(zpki, tmp_path, weakness, expected):
    s = SServer(tmp_path, _weak_leaf(zpki, tmp_path, "weak", **weakness),
                ["-cipher", "DEFAULT@SECLEVEL=0"])
    try:
        rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--cafile", zpki.root_pem,
                             "--timeout", "2")
    finally:
        s.stop()
    assert rc == 1, (doc, err)
    f = [f for f in doc["findings"] if f["id"] == "cert-weak"]
    assert f and expected in f[0]["evidence"], doc["findings"]
    assert "cert-untrusted" not in ids(doc), doc["findings"]
    assert "cert-name-mismatch" not in ids(doc), doc["findings"]


# --- an AUTH back-end that fails now and then ---------------------------------------

def _auth_454_then_ok(failures):
    """AUTH answers 454 `failures` times (over the whole server), then 235."""
    state = {"auth": 0}

    def auth(conn, line):
        state["auth"] += 1
        if state["auth"] <= failures:
            conn.send("454 4.7.0 Temporary authentication failure\r\n")
        else:
            conn.send("235 2.7.0 Authentication successful\r\n")

    return auth, state


def test_auth_454_then_success_is_a_warning(zpki, script):
    leaf = zpki.leaf("auth454")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    auth, state = _auth_454_then_ok(1)
    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH PLAIN",), tls_ctx=ctx,
                                            auth=auth))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem,
                         "--user", "u@zoo.test", "--password-stdin", stdin="pw\n")
    assert state["auth"] == 2
    assert [a["result"] for a in doc["auth"]] == ["ok"], doc["auth"]
    found = [f for f in doc["findings"] if f["id"] == "auth-temporary-failure"]
    assert len(found) == 1 and found[0]["severity"] == "warning", doc["findings"]
    ev = found[0]["evidence"]
    assert "454 4.7.0" in ev and "1 time" in ev and "try 2 of 3" in ev, ev
    assert rc == 0, (doc["findings"], err)


def test_auth_454_every_time_is_an_error(zpki, script):
    leaf = zpki.leaf("auth454x")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
    auth, state = _auth_454_then_ok(100)
    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH PLAIN",), tls_ctx=ctx,
                                            auth=auth))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem,
                         "--user", "u@zoo.test", "--password-stdin", stdin="pw\n")
    assert rc == 1, (doc, err)
    assert state["auth"] == 3  # PROBE_TRIES_MAX, then no more
    found = [f for f in doc["findings"] if f["id"] == "auth-temporary-failure"]
    assert len(found) == 1 and found[0]["severity"] == "error", doc["findings"]
