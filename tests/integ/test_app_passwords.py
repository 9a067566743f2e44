"""App passwords (issue 3 point 5): `smtpgate user app-password add` makes
a strong password and prints it once, alone on the last line; it works for
AUTH PLAIN and LOGIN at once in a running server; `user list` shows label,
creation, expiry and last use (time and client address, kept across
restarts); `app-password del` revokes it at the next AUTH (no restart, no
SIGHUP); an expired one fails like a wrong password."""
import json
import re
import smtplib
import subprocess
import time

from conftest import PASSWORD, SMTPGATE, USER, wait_for
from smtpclient import SMTPClient, client_context

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
APP_PW_RE = re.compile(r"^[a-km-np-z2-9]{4}(-[a-km-np-z2-9]{4}){4}$")


def user_cmd(server, *args, check=True):
    r = subprocess.run([SMTPGATE, "user", *args, "-f", str(server.users)],
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def app_add(server, label, *extra):
    r = user_cmd(server, "app-password", "add", USER, label, *extra)
    lines = r.stdout.splitlines()
    pw = lines[-1]
    assert APP_PW_RE.match(pw), r.stdout
    # shown once: only on that line, never in the file or on stderr
    assert r.stdout.count(pw) == 1 and pw not in r.stderr
    assert pw not in server.users.read_text()
    return pw


def auth(server, mech, password, user=USER):
    with SMTPClient(server.submission) as c:
        c.ehlo()
        c.starttls(client_context())
        c.ehlo()
        if mech == "PLAIN":
            return c.auth_plain(user, password).last
        from smtpclient import b64
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(b64(user)).code == 334
        return c.cmd(b64(password)).last


def listed(server, label):
    doc = json.loads(user_cmd(server, "list", "--json", USER).stdout)
    hits = [c for c in doc["credentials"] if c["label"] == label]
    assert len(hits) == 1, doc
    return hits[0]


def test_add_prints_password_and_works_at_once(server):
    pw = app_add(server, "phone")
    # the running server: no restart, no SIGHUP
    assert auth(server, "PLAIN", pw) == AUTH_OK
    assert auth(server, "LOGIN", pw) == AUTH_OK
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=client_context())
        s.login(USER, pw)
        s.sendmail(USER, ["bob@example.test"], f"From: {USER}\r\nSubject: app\r\n\r\nx\r\n")
    # the main password still works, a wrong one does not
    assert auth(server, "PLAIN", PASSWORD) == AUTH_OK
    assert auth(server, "PLAIN", pw + "x") == AUTH_INVALID
    # stored as SCRAM keys (SCRAM-SHA-256 with SCRAM-SHA-1 beside it)
    cred = listed(server, "phone")
    assert cred["schemes"] == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    assert abs(cred["created"] - time.time()) < 120 and cred["expires"] is None
    # a second one with the same label is refused; two passwords differ
    r = user_cmd(server, "app-password", "add", USER, "phone", check=False)
    assert r.returncode == 1 and "exists" in r.stderr
    assert app_add(server, "laptop") != pw


def test_list_shows_last_use_across_restart(server):
    pw = app_add(server, "tablet", "--expires", "2099-12-31")
    before = int(time.time())
    assert auth(server, "PLAIN", pw) == AUTH_OK

    def used():
        c = listed(server, "tablet")
        return c if c["last_use"] is not None else None
    cred = wait_for(used, timeout=15, what="last use in user list")
    assert cred["last_use"]["client"] == "127.0.0.1"
    assert before - 1 <= cred["last_use"]["time"] <= time.time() + 1
    assert cred["label"] == "tablet"
    # 2099-12-31 means through that day, UTC
    assert cred["expires"] == 4102444800  # 2100-01-01T00:00:00Z
    # the text form: user, schemes, label, created, state, expires, last use, client
    rows = [line.split("\t") for line in user_cmd(server, "list", USER).stdout.splitlines()]
    row = [r for r in rows if r[2] == "tablet"][0]
    assert row[4] == "-" and row[5] == "2100-01-01T00:00:00Z"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", row[6]) and row[7] == "127.0.0.1"
    # the main password's line has no use yet
    assert [r for r in rows if r[2] == "-"][0][6:] == ["-", "-"]

    assert server.stop() == 0
    cred = listed(server, "tablet")  # read from the state file, server down
    assert cred["last_use"]["client"] == "127.0.0.1"
    server.start()
    assert listed(server, "tablet")["last_use"] == cred["last_use"]
    time.sleep(1.1)
    assert auth(server, "LOGIN", pw) == AUTH_OK
    wait_for(lambda: listed(server, "tablet")["last_use"]["time"] > cred["last_use"]["time"],
             timeout=15, what="a newer last use")


def test_del_revokes_at_once(server):
    pw = app_add(server, "old-phone")
    assert auth(server, "PLAIN", pw) == AUTH_OK
    user_cmd(server, "app-password", "del", USER, "old-phone")
    # the very next AUTH fails: no restart, no SIGHUP
    assert auth(server, "PLAIN", pw) == AUTH_INVALID
    assert auth(server, "LOGIN", pw) == AUTH_INVALID
    assert auth(server, "PLAIN", PASSWORD) == AUTH_OK
    r = user_cmd(server, "app-password", "del", USER, "old-phone", check=False)
    assert r.returncode == 1
    # re-made with the same label: a new password, no inherited last use
    # (records are matched by created=, which has one-second resolution)
    time.sleep(1.1)
    pw2 = app_add(server, "old-phone")
    assert auth(server, "PLAIN", pw) == AUTH_INVALID
    assert listed(server, "old-phone")["last_use"] is None
    assert auth(server, "PLAIN", pw2) == AUTH_OK
    assert server.proc.poll() is None


def test_lock_takes_effect_at_once(server):
    pw = app_add(server, "watch")
    user_cmd(server, "lock", USER, "--label", "watch")
    assert auth(server, "PLAIN", pw) == AUTH_INVALID
    assert auth(server, "PLAIN", PASSWORD) == AUTH_OK
    user_cmd(server, "unlock", USER, "--label", "watch")
    assert auth(server, "PLAIN", pw) == AUTH_OK


def test_expired_fails_like_a_wrong_password(server):
    r = user_cmd(server, "app-password", "add", USER, "expired", "--expires", "2001-02-03")
    pw = r.stdout.splitlines()[-1]
    assert APP_PW_RE.match(pw) and "past" in r.stdout
    assert auth(server, "PLAIN", pw) == AUTH_INVALID
    assert auth(server, "LOGIN", pw) == AUTH_INVALID
    cred = listed(server, "expired")
    assert cred["expired"] is True and cred["active"] is False
    assert cred["expires"] == 981244800  # 2001-02-04T00:00:00Z
    # an ISO timestamp a few seconds ahead: works, then stops
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    pw = app_add(server, "brief", "--expires", soon)
    assert auth(server, "PLAIN", pw) == AUTH_OK
    time.sleep(4)
    assert auth(server, "PLAIN", pw) == AUTH_INVALID


def test_usage_errors(server):
    assert user_cmd(server, "app-password", "add", USER, check=False).returncode == 2
    assert user_cmd(server, "app-password", "frob", USER, "x", check=False).returncode == 2
    r = user_cmd(server, "app-password", "add", USER, "x", "--expires", "tomorrow",
                 check=False)
    assert r.returncode == 2 and "--expires" in r.stderr
    r = user_cmd(server, "app-password", "add", "nobody@example.test", "x", check=False)
    assert r.returncode == 1 and "no such user" in r.stderr
    r = user_cmd(server, "app-password", "add", USER, "bad label", check=False)
    assert r.returncode == 2
    assert "app-password" in subprocess.run([SMTPGATE, "user", "app-password", "--help"],
                                            capture_output=True, text=True).stdout
