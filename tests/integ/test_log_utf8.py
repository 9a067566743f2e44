"""The log keeps failed logins whose user name is not UTF-8.

jansson refuses strings that are not UTF-8; the logger used to fall back to
{"event":"auth","log_error":"Invalid UTF-8 string"} without user, result,
code and client, so a client could take its failures out of the log (and out
of fail2ban's sight) by sending one byte 0xff in the user name. Now every
string is logged in an escaped form (doc/smtpgate.8.md, LOGS): valid UTF-8
as is, each other byte and NUL as the text \\xHH, a backslash before 'x' as
\\x5c. These tests drive the real server over TLS (STARTTLS and implicit),
check the auth lines and run the shipped fail2ban filter over the log.
"""
import base64
import json
import re
import subprocess

from conftest import ROOT, USER, PASSWORD
from smtpclient import SMTPClient

FILTER = ROOT / "contrib" / "fail2ban" / "filter.d" / "smtpgate.conf"

# (bytes sent as the user name, what the log's "user" must say)
BAD_USERS = [
    (b"\xff\xfeadmin", "\\xff\\xfeadmin"),
    (b"j\xf6rg", "j\\xf6rg"),  # Latin-1
    (b"\xc0\xafroot", "\\xc0\\xafroot"),  # overlong '/'
    (b"\xed\xa0\x80x", "\\xed\\xa0\\x80x"),  # a surrogate
    (b"cut\xe2\x82", "cut\\xe2\\x82"),  # truncated sequence at the end
    (b"\\xff\x80", "\\x5cxff\\x80"),  # a literal \x stays distinguishable
    (b"j\xc3\xb6rg", "j\u00f6rg"),  # valid UTF-8: kept
]

# Quotes and line ends in the name must not make a second line or member.
FORGER = (b'x","client":"203.0.113.9"}\n{"ts":"2030-01-01T00:00:00Z","event":"auth",'
          b'"result":"fail","code":535,"client":"203.0.113.9"}\xff')


def plain(user: bytes, password: bytes = b"wrong password") -> str:
    return base64.b64encode(b"\0" + user + b"\0" + password).decode()


def starttls_client(server):
    c = SMTPClient(server.submission)
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c


def fail_plain(c, user):
    r = c.cmd("AUTH PLAIN " + plain(user))
    assert r.code == 535, r
    return r


def auth_lines(server):
    """The auth events as raw lines and as parsed objects."""
    raw = [line for line in server.log.read_text(encoding="ascii").splitlines()
           if json.loads(line).get("event") == "auth"]
    return raw, [json.loads(line) for line in raw]


def failregex(log):
    """fail2ban-regex with the shipped filter: (Failregex total, the hosts
    it took from the matches, the output)."""
    r = subprocess.run(["fail2ban-regex", "-v", str(log), str(FILTER)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.search(r"^Failregex: (\d+) total", r.stdout, re.M)
    assert m, r.stdout
    # -v lists each hit under its regex as "|      HOST  DATE"
    section = r.stdout[m.end():r.stdout.index("Ignoreregex:")]
    hosts = re.findall(r"^\|\s{6}(\S+)\s\s", section, re.M)
    return int(m.group(1)), hosts, r.stdout


def check_fail(rec, user):
    assert rec.get("user") == user, rec
    assert rec.get("result") == "fail", rec
    assert rec.get("code") == 535, rec
    assert rec.get("client") == "127.0.0.1", rec
    assert rec.get("mechanism") in ("PLAIN", "LOGIN"), rec
    assert "log_error" not in rec, rec


def test_auth_failures_with_bad_utf8_users_are_logged_and_matched(make_server):
    s = make_server().start()
    with starttls_client(s) as c:
        for user, _ in BAD_USERS:
            fail_plain(c, user)
    # implicit TLS, and AUTH LOGIN (the user name as its own response)
    with SMTPClient(s.smtps, implicit_tls=True) as c:
        c.ehlo()
        r = c.cmd("AUTH LOGIN")
        assert r.code == 334, r
        r = c.cmd(base64.b64encode(b"\xff\xfeadmin").decode())
        assert r.code == 334, r
        r = c.cmd(base64.b64encode(b"wrong password").decode())
        assert r.code == 535, r
    want = len(BAD_USERS) + 1
    s.wait_event("auth", lambda r: r.get("mechanism") == "LOGIN")

    raw, recs = auth_lines(s)
    assert len(recs) == want, raw
    for rec, (_, logged) in zip(recs, BAD_USERS):
        check_fail(rec, logged)
    check_fail(recs[-1], "\\xff\\xfeadmin")
    assert recs[-1]["mechanism"] == "LOGIN"
    # every line is plain ASCII JSON: no raw byte of the names got through
    for line in raw:
        assert all(0x20 <= ord(ch) < 0x7f for ch in line), line

    n, hosts, out = failregex(s.log)
    assert n == want, out
    assert hosts == ["127.0.0.1"] * want, out

def test_forged_fields_in_user_name_do_not_fool_the_filter(make_server, tmp_path):
    s = make_server().start()
    with starttls_client(s) as c:
        fail_plain(c, FORGER)
        # a successful login afterwards (it must not count)
        r = c.cmd("AUTH PLAIN " + plain(USER.encode(), PASSWORD.encode()))
        assert r.code == 235, r
    s.wait_event("auth", lambda r: r.get("result") == "ok")
    raw, recs = auth_lines(s)
    assert len(recs) == 2, raw
    fail = recs[0]
    assert fail["client"] == "127.0.0.1", fail
    assert fail["user"] == FORGER[:-1].decode() + "\\xff", fail
    # one line for the failure: the newline in the name stayed inside it
    assert len([l for l in s.log.read_text().splitlines() if "203.0.113.9" in l]) == 1

    f = tmp_path / "auth.log"
    f.write_text("\n".join(raw) + "\n")
    n, hosts, out = failregex(f)
    # the failure counts once, for the real client, never the forged one
    assert n == 1, out
    assert hosts == ["127.0.0.1"], out
