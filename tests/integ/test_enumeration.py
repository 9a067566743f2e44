"""User enumeration: nothing a client sees tells an unknown name from a user
made with the defaults (`smtpgate user add`, plus one app password).

SCRAM: the server-first message (RFC 5802 5.1: s= salt, i= iteration count)
of an unknown name has the shape of a real user's for both hashes: salts of
the same length, different for SCRAM-SHA-1 and SCRAM-SHA-256 (`user add`
draws one salt per hash), 4096 iterations, and the same salt at every
attempt. A locked user keeps the salts it had.
"""
import base64
import os
import re
import subprocess

import pytest

from conftest import SMTPGATE, USER
from smtpclient import SMTPClient, b64, client_context

UNKNOWN = "nobody@example.test"
LOCKED = "lou@example.test"
SALT_RE = re.compile(r"^[A-Za-z0-9+/]{22}==$")  # base64 of 16 bytes



def user_cmd(srv, *args):
    r = subprocess.run([SMTPGATE, "user", *args, "-f", str(srv.users)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


@pytest.fixture
def srv(make_server):
    s = make_server(mechanisms="SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN")
    user_cmd(s, "app-password", "add", USER, "phone")
    s.add_user(LOCKED, "lou's password")
    return s.start()


def tls_client(srv):
    c = SMTPClient(srv.submission)
    c.ehlo()
    c.starttls(client_context(srv.pki.root))
    c.ehlo()
    return c


def server_first(srv, mech, user):
    """The salt (base64, as sent) and iteration count of mech for user."""
    with tls_client(srv) as c:
        nonce = base64.b64encode(os.urandom(18)).decode()
        r = c.cmd(f"AUTH {mech} {b64(f'n,,n={user},r={nonce}')}")
        assert r.code == 334, r
        attrs = dict(a.split("=", 1) for a in base64.b64decode(r.texts[0]).decode().split(","))
        assert attrs["r"].startswith(nonce)
        assert c.cmd("*").code == 501
        return attrs["s"], attrs["i"]


def salts(srv, user):
    return {mech: server_first(srv, mech, user) for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1")}


def test_scram_salts_look_real(srv):
    real = salts(srv, USER)
    unknown = salts(srv, UNKNOWN)
    locked_before = salts(srv, LOCKED)
    user_cmd(srv, "lock", LOCKED)
    locked = salts(srv, LOCKED)
    for who in (real, unknown, locked):
        sha256, sha1 = who["SCRAM-SHA-256"], who["SCRAM-SHA-1"]
        # one salt per hash, each 16 bytes, 4096 iterations
        assert sha256[0] != sha1[0], who
        for salt, it in (sha256, sha1):
            assert SALT_RE.match(salt), who
            assert it == "4096", who
    # the unknown name's salts stay the same from one attempt to the next
    assert salts(srv, UNKNOWN) == unknown
    assert salts(srv, USER) == real
    # locking does not change what the name shows
    assert locked == locked_before
    # and across a restart (the fake salts' secret is kept in the spool)
    assert srv.stop() == 0
    srv.start()
    assert salts(srv, UNKNOWN) == unknown
    assert salts(srv, LOCKED) == locked
