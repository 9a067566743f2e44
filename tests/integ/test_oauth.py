"""XOAUTH2 and OAUTHBEARER (RFC 7628) end to end: tokens minted here with
python3-jwt (RS256, ES256, EdDSA) against a JWKS file or a JWKS served over
HTTPS, msmtp as the real client, and a raw-socket dialog for every rejection
path: the server answers a refused token with a 334 carrying the RFC 7628
3.2.2 JSON error, the client answers that with %x01 (OAUTHBEARER) or an
empty line (XOAUTH2), and the server then says 535 5.7.8.

These tests need the session wiring of auth/oauth (and the conf keys
OAUTHBEARER/XOAUTH2 in [auth] mechanisms, [oauth] jwks_ca for the URL
tests); until then they fail, on purpose, at the EHLO check or at config
load, with a message saying so.
"""
import base64
import http.server
import json
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid

import jwt
import pytest
from jwt.algorithms import get_default_algorithms
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conftest import USER, free_port, make_message, wait_for, wait_metric
from smtpclient import SMTPClient, b64

ISS = "https://issuer.example.test"
AUD = "smtpgate"
RCPT = "bob@example.test"
MECHS = "OAUTHBEARER XOAUTH2 PLAIN"


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


class Keys:
    """RSA-2048, P-256 and Ed25519 signing keys, their JWKS, and a minter."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(65537, 2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.other_rsa = rsa.generate_private_key(65537, 2048)  # not in the JWKS
        self.rotated = ed25519.Ed25519PrivateKey.generate()  # added by a reload

    @staticmethod
    def jwk(key, kid):
        pub = key.public_key()
        if isinstance(pub, rsa.RSAPublicKey):
            n = pub.public_numbers()
            return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": _int_b64u(n.n), "e": _int_b64u(n.e)}
        if isinstance(pub, ec.EllipticCurvePublicKey):
            n = pub.public_numbers()
            return {"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": _int_b64u(n.x, 32), "y": _int_b64u(n.y, 32)}
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(raw)}

    def jwks(self, rotated=False):
        keys = [self.jwk(self.rsa, "rsa1"), self.jwk(self.ec, "ec1"), self.jwk(self.ed, "ed1")]
        if rotated:
            keys.append(self.jwk(self.rotated, "ed2"))
        return {"keys": keys}

    def claims(self, user=USER, **over):
        now = int(time.time())
        c = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "email": user,
             "sub": "1234"}
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def mint(self, alg="RS256", kid=None, key=None, user=USER, headers=None, **over):
        key = key or {"RS256": self.rsa, "ES256": self.ec, "EdDSA": self.ed}[alg]
        kid = kid or {"RS256": "rsa1", "ES256": "ec1", "EdDSA": "ed1"}[alg]
        h = {"kid": kid, **(headers or {})}
        return jwt.encode(self.claims(user, **over), key, algorithm=alg, headers=h)

    def raw(self, header, payload, sign_with=None, alg="RS256"):
        """A token from literal header/payload JSON text (duplicate keys,
        crit, alg none, HMAC with the public key as secret...)."""
        signing_input = f"{b64u(header)}.{b64u(payload)}".encode()
        if sign_with == "none":
            sig = b""
        elif sign_with == "hmac-public-pem":
            pem = self.rsa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            h = hmac.HMAC(pem, hashes.SHA256())
            h.update(signing_input)
            sig = h.finalize()
        else:
            algo = get_default_algorithms()[alg]
            sig = algo.sign(signing_input, sign_with or self.rsa)
        return f"{signing_input.decode()}.{b64u(sig)}"


@pytest.fixture(scope="module")
def keys():
    return Keys()


def oauth_section(jwks, extra=""):
    return f"\n[oauth]\njwks = {jwks}\nissuer = {ISS}\naudience = {AUD}\n{extra}\n"


def start(s):
    """Starts s; a config smtpgate refuses fails with its own words."""
    try:
        return s.start()
    except RuntimeError:
        s.proc.wait()
        s.proc = None  # nothing for the fixture to stop
        s.logf.close()
        pytest.fail("smtpgate did not start with the OAuth config (XOAUTH2/OAUTHBEARER "
                    "mechanisms or [oauth] keys not wired yet?):\n" + s.stderr_text())


@pytest.fixture
def oserver(make_server, keys):
    """A server with XOAUTH2 and OAUTHBEARER against a JWKS file."""
    s = make_server(mechanisms=MECHS, extra=oauth_section("jwks.json"))
    (s.dir / "jwks.json").write_text(json.dumps(keys.jwks()))
    return start(s)


def bearer_response(user, token, mech="OAUTHBEARER", host="mail.example.test", port=587):
    if mech == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01"
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"


def connect(server):
    c = SMTPClient(server.submission)
    c.ehlo()
    c.starttls()
    exts = c.ehlo()
    auth = [e for e in exts if e.startswith("AUTH ")]
    assert auth and "OAUTHBEARER" in auth[0].split() and "XOAUTH2" in auth[0].split(), (
        f"the server does not advertise OAUTHBEARER and XOAUTH2 (EHLO: {exts}); "
        "auth/oauth is not wired into the session yet")
    return c


def assert_no_token_in_logs(server, token):
    """DESIGN 5.4: tokens never appear in the logs (the signature part is
    the unique, secret-bearing bit)."""
    parts = token.split(".")
    # an unsigned (alg=none) token has an empty signature: use its payload
    sig = next((p for p in reversed(parts) if p), token)
    text = server.log.read_text() + server.stderr_text()
    assert sig[:40] not in text


def error_challenge(reply, mech):
    assert reply.code == 334, reply
    err = json.loads(base64.b64decode(reply.last[4:]))
    if mech == "OAUTHBEARER":
        assert err["status"] == "invalid_token", err
    else:
        assert err["status"] == "401", err
    assert err["schemes"] == "bearer", err
    return err


def refused(server, keys, mech, token, user=USER):
    """The full rejection dialog; returns the JSON error."""
    with connect(server) as c:
        r = c.cmd(f"AUTH {mech} {b64(bearer_response(user, token, mech))}", timeout=30)
        err = error_challenge(r, mech)
        # RFC 7628 3.2.3: the client acknowledges with %x01; XOAUTH2 clients
        # send an empty line
        r = c.cmd(b64("\x01") if mech == "OAUTHBEARER" else "")
        assert r.last.startswith("535 5.7.8"), r
        # the session survives: another AUTH is allowed
        good = keys.mint()
        r = c.cmd(f"AUTH {mech} {b64(bearer_response(USER, good, mech))}", timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r
    ev = server.wait_event("auth", lambda e: e.get("result") == "fail" and
                           e.get("mechanism") == mech)
    assert ev["user"] == user
    assert_no_token_in_logs(server, token)
    return err


# --- success paths ---------------------------------------------------------------

@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_raw_success(oserver, keys, mech, alg):
    token = keys.mint(alg)
    with connect(oserver) as c:
        r = c.cmd(f"AUTH {mech} {b64(bearer_response(USER, token, mech))}", timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
    ev = oserver.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech and ev["user"] == USER
    assert_no_token_in_logs(oserver, token)


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
def test_without_initial_response(oserver, keys, mech):
    token = keys.mint("EdDSA")
    with connect(oserver) as c:
        r = c.cmd(f"AUTH {mech}")
        assert r.code == 334 and r.last.rstrip() == "334", r
        r = c.cmd(b64(bearer_response(USER, token, mech)), timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r


def test_oauthbearer_without_host_port_and_domain_case(oserver, keys):
    token = keys.mint("ES256")
    resp = f"n,a=alice@EXAMPLE.test,\x01auth=bearer {token}\x01\x01"
    with connect(oserver) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(resp)}", timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r


def msmtp(server, tmp_path, mech, token):
    tok = tmp_path / f"token-{uuid.uuid4().hex}"
    tok.write_text(token + "\n")
    conf = tmp_path / f"msmtprc-{uuid.uuid4().hex}"
    conf.write_text(f"""\
account default
host 127.0.0.1
port {server.submission}
tls on
tls_starttls on
tls_trust_file {server.pki.root}
auth {mech}
user {USER}
passwordeval cat {tok}
from {USER}
domain client.example.test
timeout 30
""")
    conf.chmod(0o600)
    mark = "m-" + uuid.uuid4().hex
    msg = make_message(USER, RCPT, mark)
    r = subprocess.run(["msmtp", "-C", str(conf), "-d", "-t"], input=msg.replace("\r\n", "\n"),
                       capture_output=True, text=True, timeout=60)
    return r, mark


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")
@pytest.mark.parametrize("mech,alg", [("oauthbearer", "RS256"), ("xoauth2", "ES256"),
                                      ("oauthbearer", "EdDSA")])
def test_msmtp(oserver, keys, tmp_path, mech, alg):
    connect(oserver).close()  # fails clearly when not wired
    token = keys.mint(alg)
    r, mark = msmtp(oserver, tmp_path, mech, token)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = oserver.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech.upper()
    wait_for(lambda: any(m["sender"] == USER for m in oserver.queued()), what="queued message")
    assert_no_token_in_logs(oserver, token)


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")
def test_msmtp_expired_token_fails(oserver, keys, tmp_path):
    connect(oserver).close()
    token = keys.mint("RS256", exp=int(time.time()) - 3600)
    r, _ = msmtp(oserver, tmp_path, "oauthbearer", token)
    assert r.returncode != 0, r.stdout + r.stderr
    oserver.wait_event("auth", lambda e: e.get("result") == "fail")
    assert oserver.queued() == []


# --- every token rule: 334 JSON error, then 535 5.7.8 ------------------------------

def _negative_tokens(k):
    now = int(time.time())
    claims = json.dumps(k.claims())
    return {
        "expired": k.mint(exp=now - 3600),
        "nbf-future": k.mint(nbf=now + 3600),
        "iat-future": k.mint("ES256", iat=now + 3600),
        "wrong-iss": k.mint(iss="https://evil.example.test"),
        "wrong-aud": k.mint(aud="webmail"),
        "aud-array-without-ours": k.mint("EdDSA", aud=["a", "b"]),
        "missing-exp": k.mint(exp=None),
        "wrong-user": k.mint(email="mallory@example.test"),
        "no-user-claim": k.mint(email=None),
        "email-unverified": k.mint(email_verified=False),
        "alg-none": k.raw('{"alg":"none","kid":"rsa1"}', claims, sign_with="none"),
        "hs256-public-key": k.raw('{"alg":"HS256","kid":"rsa1"}', claims,
                                  sign_with="hmac-public-pem"),
        "duplicate-claim": k.raw(
            '{"alg":"RS256","kid":"rsa1"}',
            claims[:-1] + ',"email":"mallory@example.test"}'),
        "crit": k.raw('{"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1}', claims),
        "other-key": k.mint(key=k.other_rsa),
        "unknown-kid": k.mint(kid="nope"),
        "alg-key-mismatch": k.mint("RS256", kid="ec1"),
        "es256-der": _es256_der(k, claims),
        "truncated": k.mint()[:-10],
        "padded": k.mint() + "=",
        "opaque": "ya29.not-a-jwt",
    }


def _es256_der(k, claims):
    """ES256 with the signature left in DER (RFC 7518 3.4 wants R || S)."""
    header = '{"alg":"ES256","kid":"ec1"}'
    si = f"{b64u(header)}.{b64u(claims)}".encode()
    der = k.ec.sign(si, ec.ECDSA(hashes.SHA256()))
    return f"{si.decode()}.{b64u(der)}"


NEGATIVE = ["expired", "nbf-future", "iat-future", "wrong-iss", "wrong-aud",
            "aud-array-without-ours", "missing-exp", "wrong-user", "no-user-claim",
            "email-unverified", "alg-none", "hs256-public-key", "duplicate-claim", "crit",
            "other-key", "unknown-kid", "alg-key-mismatch", "es256-der", "truncated", "opaque"]


@pytest.mark.parametrize("case", NEGATIVE)
def test_refused_oauthbearer(oserver, keys, case):
    refused(oserver, keys, "OAUTHBEARER", _negative_tokens(keys)[case])


@pytest.mark.parametrize("case", ["expired", "wrong-aud", "alg-none", "hs256-public-key",
                                  "wrong-user"])
def test_refused_xoauth2(oserver, keys, case):
    refused(oserver, keys, "XOAUTH2", _negative_tokens(keys)[case])


def test_error_challenge_names_openid_configuration(oserver, keys):
    err = refused(oserver, keys, "OAUTHBEARER", keys.mint(exp=int(time.time()) - 3600))
    assert err.get("openid-configuration") == ISS + "/.well-known/openid-configuration"


def test_padded_token_is_malformed(oserver, keys):
    """'=' after the signature is a b64token but not strict base64url: the
    token is refused (challenge then 535)."""
    refused(oserver, keys, "OAUTHBEARER", _negative_tokens(keys)["padded"])


def test_cancel_after_error_challenge(oserver, keys):
    token = keys.mint(exp=int(time.time()) - 3600)
    with connect(oserver) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, token))}", timeout=30)
        error_challenge(r, "OAUTHBEARER")
        r = c.cmd("*")
        assert r.last.startswith("501 5.7.0"), r


# --- malformed responses: 535 5.7.8 at once (nothing to explain) -------------------

@pytest.mark.parametrize("resp", [
    "p=tls-unique,a=alice@example.test,\x01auth=Bearer x\x01\x01",  # channel binding
    "n,a=alice@example.test,\x01auth=Bearer x\x01",  # missing final %x01
    "n,a=alice@example.test\x01auth=Bearer x\x01\x01",  # gs2 header without ','
    "n,a=alice@example.test,\x01auth=Basic eDp5\x01\x01",  # not Bearer
    "n,a=alice@example.test,\x01host=x\x01\x01",  # no auth
    "n,,\x01auth=Bearer x\x01\x01",  # no authzid: no identity to bind
])
def test_malformed_oauthbearer(oserver, resp):
    with connect(oserver) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(resp)}", timeout=30)
        assert r.last.startswith("535 5.7.8"), r


def test_malformed_xoauth2(oserver):
    with connect(oserver) as c:
        r = c.cmd(f"AUTH XOAUTH2 {b64('user=alice@example.test' + chr(1) + 'auth=Bearer x')}")
        assert r.last.startswith("535 5.7.8"), r


def test_huge_token(oserver):
    """A token over 8 KiB that still fits the AUTH line: refused as too long."""
    big = "A" * 8300
    with connect(oserver) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, big))}", timeout=30)
        assert r.last.startswith("535 5.7.8"), r


def test_auth_before_starttls(oserver, keys):
    with SMTPClient(oserver.submission) as c:
        c.ehlo()
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, keys.mint()))}")
        assert r.last == "530 5.7.0 Must issue a STARTTLS command first", r


# --- JWKS reload and HTTPS -------------------------------------------------------

def test_sighup_reloads_jwks_file(oserver, keys):
    token = keys.mint("EdDSA", kid="ed2", key=keys.rotated)
    refused(oserver, keys, "OAUTHBEARER", token)
    (oserver.dir / "jwks.json").write_text(json.dumps(keys.jwks(rotated=True)))
    oserver.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    with connect(oserver) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, token))}", timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r


class _JWKSHandler(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=600")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def jwks_https(pki, keys):
    """The JWKS over HTTPS on 127.0.0.1 with the test PKI's leaf (its root
    is not in the system store: smtpgate must be told with jwks_ca)."""
    handler = type("H", (_JWKSHandler,), {"body": json.dumps(keys.jwks()).encode()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    httpd.shutdown()
    httpd.server_close()


def test_jwks_url(make_server, pki, keys, jwks_https):
    s = make_server(mechanisms=MECHS,
                    extra=oauth_section(jwks_https, f"jwks_ca = {pki.root}"))
    start(s)
    with connect(s) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, keys.mint('ES256')))}",
                  timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r
    refused(s, keys, "OAUTHBEARER", keys.mint(aud="other"))


def test_jwks_url_untrusted_is_tempfail(make_server, keys, jwks_https):
    """Without jwks_ca the test root is not trusted: no keys, 454."""
    s = make_server(mechanisms=MECHS, extra=oauth_section(jwks_https))
    start(s)
    with connect(s) as c:
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, keys.mint()))}", timeout=30)
        assert r.last.startswith("454 4.7.0"), r


def test_token_checks_are_timed(make_server, keys):
    """smtpgate_auth_check_seconds times each token check as "token": a
    token accepted and one refused, two answers."""
    admin = free_port()
    s = make_server(mechanisms=MECHS, extra=oauth_section("jwks.json") +
                    f"\n[admin]\naddress = 127.0.0.1:{admin}\n")
    (s.dir / "jwks.json").write_text(json.dumps(keys.jwks()))
    start(s)
    with connect(s) as c:
        r = c.cmd(f"AUTH XOAUTH2 {b64(bearer_response(USER, 'not.a.token', 'XOAUTH2'))}",
                  timeout=30)
        if r.code == 334:  # XOAUTH2's error challenge: the client's empty answer ends it
            r = c.cmd("", timeout=30)
        assert r.code == 535, r
        r = c.cmd(f"AUTH OAUTHBEARER {b64(bearer_response(USER, keys.mint()))}", timeout=30)
        assert r.last == "235 2.7.0 Authentication successful", r
    check = "smtpgate_auth_check_seconds"
    v = wait_metric(admin, check + '_count{request="token"}', 2)
    assert v[check + '_bucket{request="token",le="+Inf"}'] == 2
    assert 0 < v[check + '_sum{request="token"}'] < 30
    assert check + '_count{request="plain"}' not in v


def test_jwks_url_unreachable_is_tempfail(make_server, keys):
    s = make_server(mechanisms=MECHS, extra=oauth_section("https://127.0.0.1:1/jwks.json"))
    start(s)
    with connect(s) as c:
        for mech in ("OAUTHBEARER", "XOAUTH2"):
            r = c.cmd(f"AUTH {mech} {b64(bearer_response(USER, keys.mint(), mech))}",
                      timeout=30)
            assert r.last.startswith("454 4.7.0"), r
        # the session goes on: PLAIN still works
        assert c.cmd("NOOP").code == 250
