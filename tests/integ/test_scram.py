"""SCRAM-SHA-1/256 (and -PLUS) and CRAM-MD5 against real clients (the gsasl
command-line client, msmtp, swaks, Python smtplib) and a raw-socket SCRAM
client for the rejection paths: wrong password, unknown user, wrong channel
binding, replayed nonce, downgrade, malformed messages, -PLUS without TLS.
"""
import base64
import hashlib
import hmac
import os
import re
import smtplib
import ssl
import subprocess

import pytest

from conftest import PASSWORD, SMTPGATE, USER, Server, free_port
from smtpclient import SMTPClient, b64, client_context

ALL = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN CRAM-MD5"
CRAM_USER = "carol@example.test"
CRAM_PASSWORD = "tanstaaftanstaaf"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_BAD_B64 = "501 5.5.2 Cannot decode response"
NEEDS_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
TOO_WEAK = "534 5.7.9 Authentication mechanism is too weak"


@pytest.fixture
def srv(make_server):
    """STARTTLS + implicit TLS listeners, and a plaintext listener with auth
    (SCRAM may run there; PLAIN, LOGIN and -PLUS may not)."""
    plain = free_port()
    s = make_server(mechanisms=ALL, extra=f"""
[listen plain]
address = 127.0.0.1:{plain}
tls = none
auth = required
relay = authenticated
""")
    s.plain = plain
    s.add_user(CRAM_USER, CRAM_PASSWORD, "--scheme", "CRAM-MD5")
    return s.start()


def gsasl(srv, mech, user=USER, password=PASSWORD, port=None, tls=True, cb=True,
          priority=None):
    cmd = ["gsasl", "--client", "--smtp", "--mechanism", mech,
           "--connect", f"127.0.0.1:{port or srv.submission}",
           "-a", user, "-p", password, "--quiet"]
    if tls:
        cmd += ["--starttls", "--x509-ca-file", str(srv.pki.root)]
    else:
        cmd += ["--no-starttls"]
    if not cb:
        # gsasl's client sends the "y" flag for a non-PLUS mechanism when it
        # could bind, which a server offering -PLUS must refuse (RFC 5802 6)
        cmd += ["--no-cb"]
    if priority:
        cmd += ["--priority", priority]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)


def last_auth(srv):
    return srv.wait_event("auth")  # at least one; callers filter further


def auth_events(srv):
    return [e for e in srv.events("auth")]


# --- real clients ------------------------------------------------------------------

@pytest.mark.parametrize("mech,cb,priority,cbtype", [
    ("SCRAM-SHA-256", False, None, None),
    ("SCRAM-SHA-1", False, None, None),
    ("SCRAM-SHA-256-PLUS", True, None, "tls-exporter"),  # TLS 1.3
    ("SCRAM-SHA-1-PLUS", True, None, "tls-exporter"),
    ("SCRAM-SHA-256-PLUS", True, "NORMAL:-VERS-TLS1.3", "tls-unique"),  # TLS 1.2
])
def test_gsasl_scram(srv, mech, cb, priority, cbtype):
    r = gsasl(srv, mech, cb=cb, priority=priority)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = srv.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech and ev["user"] == USER


def test_gsasl_scram_without_tls(srv):
    # SCRAM does not reveal the password: allowed on a plaintext listener
    r = gsasl(srv, "SCRAM-SHA-256", port=srv.plain, tls=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_gsasl_cram_md5(srv):
    r = gsasl(srv, "CRAM-MD5", user=CRAM_USER, password=CRAM_PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = srv.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == "CRAM-MD5" and ev["user"] == CRAM_USER


def test_gsasl_wrong_password_and_unknown_user(srv):
    for user, pw in ((USER, "wrong"), ("nobody@example.test", PASSWORD)):
        r = gsasl(srv, "SCRAM-SHA-256-PLUS", user=user, password=pw)
        assert r.returncode != 0
        assert AUTH_INVALID in r.stdout + r.stderr
    fails = [e for e in srv.events("auth") if e.get("code") == 535]
    assert [e["reason"] for e in fails] == ["proof mismatch", "proof mismatch"]


@pytest.mark.parametrize("mech", ["scram-sha-256", "scram-sha-1"])
def test_msmtp_scram(srv, mech):
    msg = f"From: {USER}\r\nTo: bob@example.test\r\nSubject: msmtp {mech}\r\n\r\nhi\r\n"
    r = subprocess.run(["msmtp", "--host=127.0.0.1", f"--port={srv.submission}",
                        "--tls=on", "--tls-starttls=on", f"--tls-trust-file={srv.pki.root}",
                        f"--auth={mech}", f"--user={USER}",
                        f"--passwordeval=echo '{PASSWORD}'", f"--from={USER}",
                        "bob@example.test"], input=msg, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    ev = srv.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech.upper()


def test_swaks_cram_md5(srv):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(srv.submission),
                        "--tls", "--tls-verify", "--tls-ca-path", str(srv.pki.root),
                        "--auth", "CRAM-MD5", "--auth-user", CRAM_USER,
                        "--auth-password", CRAM_PASSWORD, "--from", CRAM_USER,
                        "--to", "bob@example.test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert AUTH_OK in r.stdout


def test_smtplib_cram_md5(srv):
    with smtplib.SMTP("127.0.0.1", srv.submission, timeout=30) as c:
        c.starttls(context=client_context(srv.pki.root))
        c.ehlo()
        assert "CRAM-MD5" in c.esmtp_features["auth"].split()
        code, _ = c.login(CRAM_USER, CRAM_PASSWORD, initial_response_ok=False)
        assert code == 235
    with smtplib.SMTP("127.0.0.1", srv.submission, timeout=30) as c:
        c.starttls(context=client_context(srv.pki.root))
        c.ehlo()
        c.user, c.password = CRAM_USER, "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.auth("CRAM-MD5", c.auth_cram_md5)
        assert e.value.smtp_code == 535


# --- a raw SCRAM client -----------------------------------------------------------

def hi(md, pw, salt, it):
    return hashlib.pbkdf2_hmac(md, pw.encode(), salt, it)


class Scram:
    """Client side of RFC 5802 with hashlib/hmac, for tampering."""

    def __init__(self, c, mech, user=USER, password=PASSWORD, gs2="n,,", cbdata=b"",
                 cnonce=None):
        self.c, self.mech, self.user, self.password = c, mech, user, password
        self.md = "sha1" if mech.startswith("SCRAM-SHA-1") else "sha256"
        self.gs2, self.cbdata = gs2, cbdata
        self.cnonce = cnonce or base64.b64encode(os.urandom(18)).decode()

    def first(self):
        self.bare = f"n={self.user},r={self.cnonce}"
        r = self.c.cmd(f"AUTH {self.mech} {b64(self.gs2 + self.bare)}")
        return r

    def final(self, server_first, nonce=None, cbdata=None):
        sf = base64.b64decode(server_first).decode()
        attrs = dict(a.split("=", 1) for a in sf.split(","))
        salt, it = base64.b64decode(attrs["s"]), int(attrs["i"])
        cb = base64.b64encode(self.gs2.encode() + (self.cbdata if cbdata is None else cbdata))
        noproof = f"c={cb.decode()},r={nonce or attrs['r']}"
        am = f"{self.bare},{sf},{noproof}".encode()
        salted = hi(self.md, self.password, salt, it)
        ck = hmac.new(salted, b"Client Key", self.md).digest()
        sk = hashlib.new(self.md, ck).digest()
        sig = hmac.new(sk, am, self.md).digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        self.server_sig = hmac.new(hmac.new(salted, b"Server Key", self.md).digest(), am,
                                   self.md).digest()
        self.final_msg = f"{noproof},p={base64.b64encode(proof).decode()}"
        self.salt, self.iter = attrs["s"], it
        return self.c.cmd(b64(self.final_msg))


def tls12_client(srv):
    ctx = client_context(srv.pki.root)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c = SMTPClient(srv.submission)
    c.ehlo()
    c.starttls(ctx)
    c.ehlo()
    return c


def tls_client(srv, port=None):
    c = SMTPClient(port or srv.submission)
    c.ehlo()
    c.starttls(client_context(srv.pki.root))
    return c


def test_raw_scram_ok_and_server_signature(srv):
    with tls_client(srv) as c:
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256")
        r = s.first()
        assert r.code == 334
        r = s.final(r.texts[0])
        assert r.code == 334
        assert base64.b64decode(r.texts[0]) == b"v=" + base64.b64encode(s.server_sig)
        assert c.cmd("").last == AUTH_OK


def test_concurrent_scram_exchanges(srv):
    """The auth process's workers run the SASL steps of many exchanges at
    once (and look up keys for each other): good and wrong passwords and
    exchanges left half-way (the client hangs up after server-first) all
    interleaved; each one gets its own right answer and server signature,
    and the auth process neither loses a channel nor restarts."""
    import concurrent.futures

    def one(i):
        results = []
        for k in range(5):
            good = (i + k) % 3 != 0
            with tls_client(srv) as c:
                c.ehlo()
                s = Scram(c, "SCRAM-SHA-256", password=PASSWORD if good else "wrong")
                r = s.first()
                assert r.code == 334, r
                if (i + k) % 4 == 3:
                    results.append("left")
                    continue  # hangs up mid-exchange: the smtp process ends it
                r = s.final(r.texts[0])
                if not good:
                    assert r.last == AUTH_INVALID, r
                    results.append("wrong")
                    continue
                assert r.code == 334, r
                assert base64.b64decode(r.texts[0]) == b"v=" + base64.b64encode(s.server_sig)
                assert c.cmd("").last == AUTH_OK
                results.append("ok")
        return results

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        done = [r for rs in ex.map(one, range(12)) for r in rs]
    assert done.count("ok") >= 20 and done.count("wrong") >= 10 and "left" in done, done
    # the store is not left with the abandoned exchanges' answers owed, and
    # the channels and the process held
    with tls_client(srv) as c:
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256")
        r = s.final(s.first().texts[0])
        assert r.code == 334 and c.cmd("").last == AUTH_OK
    oks = [e for e in srv.events("auth") if e.get("result") == "ok"]
    assert len(oks) == done.count("ok") + 1, (len(oks), done)
    assert not srv.events("child_exit"), srv.events("child_exit")
    assert not [e for e in srv.events("auth_channel") if e.get("process") == "auth"]


def test_raw_scram_plus_tls_unique(srv):
    # Python's ssl exposes tls-unique (TLS 1.2): a third implementation of it
    with tls12_client(srv) as c:
        cb = c.sock.get_channel_binding("tls-unique")
        s = Scram(c, "SCRAM-SHA-256-PLUS", gs2="p=tls-unique,,", cbdata=cb)
        r = s.final(s.first().texts[0])
        assert r.code == 334, r
        assert c.cmd("").last == AUTH_OK


def test_wrong_channel_binding(srv):
    with tls12_client(srv) as c:
        s = Scram(c, "SCRAM-SHA-256-PLUS", gs2="p=tls-unique,,", cbdata=os.urandom(12))
        assert s.final(s.first().texts[0]).last == AUTH_INVALID
        assert c.cmd("NOOP").code == 250  # the session survives
    ev = srv.wait_event("auth", lambda e: e.get("code") == 535)
    assert ev["reason"] == "channel binding mismatch"


def test_wrong_channel_binding_exporter(srv):
    with tls_client(srv) as c:  # TLS 1.3: only tls-exporter exists
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256-PLUS", gs2="p=tls-exporter,,", cbdata=os.urandom(32))
        assert s.final(s.first().texts[0]).last == AUTH_INVALID
        s = Scram(c, "SCRAM-SHA-256-PLUS", gs2="p=tls-unique,,", cbdata=os.urandom(12))
        assert s.first().last == AUTH_INVALID  # no tls-unique in TLS 1.3


def test_replayed_nonce(srv):
    with tls_client(srv) as c:
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256")
        s.final(s.first().texts[0])
        old_final = s.final_msg
        assert c.cmd("").last == AUTH_OK
    with tls_client(srv) as c:
        c.ehlo()
        s2 = Scram(c, "SCRAM-SHA-256", cnonce=s.cnonce)  # same client nonce
        r = s2.first()
        assert r.code == 334
        assert c.cmd(b64(old_final)).last == AUTH_INVALID
    ev = srv.wait_event("auth", lambda e: e.get("code") == 535)
    assert ev["reason"] == "nonce mismatch"


def test_unknown_user_salt_is_stable_and_plausible(srv):
    def server_first(user):
        with tls_client(srv) as c:
            c.ehlo()
            r = Scram(c, "SCRAM-SHA-256", user=user).first()
            assert r.code == 334
            attrs = dict(a.split("=", 1)
                         for a in base64.b64decode(r.texts[0]).decode().split(","))
            c.cmd("*")
            return attrs["s"], attrs["i"]

    known = server_first(USER)
    a = server_first("nobody@example.test")
    assert a == server_first("nobody@example.test")
    assert a != server_first("nobody2@example.test")
    # same shape as a real user's: 16-byte salt, 4096 iterations
    assert len(base64.b64decode(a[0])) == len(base64.b64decode(known[0]))
    assert a[1] == known[1]
    # and the same after a restart (the secret is kept in the spool)
    assert (srv.spool / "auth-fake-salt.key").stat().st_mode & 0o777 == 0o600
    assert srv.stop() == 0
    srv.start()
    assert server_first("nobody@example.test") == a


@pytest.mark.parametrize("mech,first,reason", [
    ("SCRAM-SHA-256", "p=tls-unique,,n=alice,r=abc",
     "channel binding requested on a non-PLUS mechanism"),
    ("SCRAM-SHA-256", "y,,n=alice,r=abc", "downgrade: flag y while -PLUS was offered"),
    ("SCRAM-SHA-256-PLUS", "n,,n=alice,r=abc", "-PLUS mechanism without channel binding"),
    ("SCRAM-SHA-256", "n,,m=x,n=alice,r=abc", "unsupported mandatory extension m="),
    ("SCRAM-SHA-256", "n,,n=al=ice,r=abc", "bad username"),
    ("SCRAM-SHA-256", "n,,n=alice", "no nonce attribute"),
    ("SCRAM-SHA-256", "n,a=bob,n=alice,r=abc", "authzid differs from the user"),
    ("SCRAM-SHA-1", "x,,n=alice,r=abc", "bad GS2 channel binding flag"),
])
def test_malformed_client_first(srv, mech, first, reason):
    with tls_client(srv) as c:
        c.ehlo()
        assert c.cmd(f"AUTH {mech} {b64(first)}").last == AUTH_INVALID
        assert c.cmd("NOOP").code == 250
    ev = srv.wait_event("auth", lambda e: e.get("code") == 535)
    assert ev["reason"] == reason
    # no secrets or message bytes in the log
    assert "r=abc" not in srv.log.read_text()


def test_malformed_client_final_and_bad_base64(srv):
    with tls_client(srv) as c:
        c.ehlo()
        s = Scram(c, "SCRAM-SHA-256")
        assert s.first().code == 334
        assert c.cmd("%%%%").last == AUTH_BAD_B64
        s = Scram(c, "SCRAM-SHA-256")
        assert s.first().code == 334
        assert c.cmd(b64("c=biws")).last == AUTH_INVALID
        s = Scram(c, "SCRAM-SHA-256")
        assert s.first().code == 334
        assert c.cmd(b64("c=biws,r=nonsense,p=AAAA")).last == AUTH_INVALID
        # a non-empty answer to the server-final 334
        s = Scram(c, "SCRAM-SHA-256")
        assert s.final(s.first().texts[0]).code == 334
        assert c.cmd(b64("x")).last == AUTH_INVALID
        # the session is still usable
        s = Scram(c, "SCRAM-SHA-256")
        assert s.final(s.first().texts[0]).code == 334
        assert c.cmd("=").last == AUTH_OK


def test_plus_not_offered_without_tls(srv):
    with SMTPClient(srv.plain) as c:
        exts = c.ehlo()
        auth = [e for e in exts if e.startswith("AUTH ")]
        assert auth == ["AUTH SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5"]
        assert c.cmd(f"AUTH SCRAM-SHA-256-PLUS {b64('p=tls-unique,,n=a,r=b')}").last == NEEDS_TLS
        assert c.cmd("AUTH PLAIN").last == NEEDS_TLS
        s = Scram(c, "SCRAM-SHA-256")
        r = s.final(s.first().texts[0])
        assert r.code == 334
        assert c.cmd("").last == AUTH_OK
    # before STARTTLS on a STARTTLS listener: no AUTH at all
    with SMTPClient(srv.submission) as c:
        assert not [e for e in c.ehlo() if e.startswith("AUTH")]
    with tls_client(srv) as c:
        auth = [e for e in c.ehlo() if e.startswith("AUTH ")]
        assert auth == ["AUTH " + ALL]


def test_cram_md5_policy(make_server):
    s = make_server(mechanisms="SCRAM-SHA-256 PLAIN")
    s.add_user(CRAM_USER, CRAM_PASSWORD, "--scheme", "CRAM-MD5")
    s.start()
    with tls_client(s) as c:
        assert "AUTH SCRAM-SHA-256 PLAIN" in c.ehlo()
        assert c.cmd("AUTH CRAM-MD5").last == TOO_WEAK
        assert c.cmd("AUTH SCRAM-SHA-256-PLUS").last.startswith("504 5.5.4")
    assert not [e for e in s.events("config_warning") if e["key"] == "[auth] mechanisms"]


def test_cram_md5_needs_a_cram_credential(srv):
    # enabled, but alice has only SCRAM keys: fails like a wrong password
    r = gsasl(srv, "CRAM-MD5", user=USER, password=PASSWORD)
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    ev = srv.wait_event("config_warning", lambda e: e["key"] == "[auth] mechanisms")
    assert ev["value"] == "CRAM-MD5"


def test_cram_md5_challenge_unique(srv):
    seen = set()
    for _ in range(3):
        with tls_client(srv) as c:
            c.ehlo()
            r = c.cmd("AUTH CRAM-MD5")
            ch = base64.b64decode(r.texts[0]).decode()
            assert re.fullmatch(r"<\d+\.\d+@mail\.example\.test>", ch), ch
            seen.add(ch)
            c.cmd("*")
    assert len(seen) == 3


def test_lock_and_passwd_count_at_once_for_scram(srv):
    """`smtpgate user lock` and `user passwd` take effect at the next SCRAM
    login of a running server, without SIGHUP (the key lookup checks the
    passwd file for changes first, like a password verification)."""
    assert gsasl(srv, "SCRAM-SHA-256-PLUS").returncode == 0
    subprocess.run([SMTPGATE, "user", "lock", USER, "-f", str(srv.users)], check=True,
                   capture_output=True)
    r = gsasl(srv, "SCRAM-SHA-256-PLUS")
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    subprocess.run([SMTPGATE, "user", "unlock", USER, "-f", str(srv.users)], check=True,
                   capture_output=True)
    assert gsasl(srv, "SCRAM-SHA-256-PLUS").returncode == 0
    subprocess.run([SMTPGATE, "user", "passwd", USER, "-f", str(srv.users), "--password-stdin"],
                   input="a brand new password\n", text=True, check=True, capture_output=True)
    r = gsasl(srv, "SCRAM-SHA-256-PLUS")
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", password="a brand new password").returncode == 0
    assert not [e for e in srv.events() if e.get("event") == "reload"]
