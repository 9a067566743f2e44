"""App passwords: `smtpgate user app-password add` makes
a strong password and prints it once, alone on the last line; it works for
AUTH PLAIN and LOGIN at once in a running server; `user list` shows label,
creation, expiry and last use (time and client address, kept across
restarts); `app-password del` revokes it at the next AUTH (no restart, no
SIGHUP); an expired one fails like a wrong password."""
import base64
import calendar
import hashlib
import hmac
import json
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import PASSWORD, SMTPGATE, USER, wait_for


def epoch(rfc3339):
    """Unix seconds of an RFC 3339 UTC time as --json prints it."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rfc3339), rfc3339
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))
from smtpclient import SMTPClient, client_context

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
APP_PW_RE = re.compile(r"^[a-km-np-z2-9]{4}(-[a-km-np-z2-9]{4}){4}$")


def user_cmd(server, *args, check=True, input_=None):
    r = subprocess.run([SMTPGATE, "user", *args, "-f", str(server.users)],
                       capture_output=True, text=True, timeout=30,
                       input=None if input_ is None else input_ + "\n")
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
    assert abs(epoch(cred["created"]) - time.time()) < 120 and cred["expires"] is None
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
    assert before - 1 <= epoch(cred["last_use"]["time"]) <= time.time() + 1
    assert cred["label"] == "tablet"
    # 2099-12-31 means through that day, UTC
    assert cred["expires"] == "2100-01-01T00:00:00Z"
    # the text form: user, schemes, label, created, state, expires, last use, client
    rows = [line.split("\t") for line in user_cmd(server, "list", USER).stdout.splitlines()]
    assert rows.pop(0)[0] == "USER"
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
    wait_for(lambda: epoch(listed(server, "tablet")["last_use"]["time"])
             > epoch(cred["last_use"]["time"]),
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
    assert cred["expires"] == "2001-02-04T00:00:00Z"
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


# --- SCRAM with app passwords ---------------------------------------------------------
# All SCRAM credentials of a user share one salt per hash (`user app-password add`
# derives the keys with the main password's salt), so one server-first serves them
# all and the proof tells which credential the client used.

SCRAM_MECHS = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN"


@pytest.fixture
def scram_server(make_server):
    return make_server(mechanisms=SCRAM_MECHS).start()


def gsasl(server, mech, password, user=USER):
    cmd = ["gsasl", "--client", "--smtp", "--mechanism", mech,
           "--connect", f"127.0.0.1:{server.submission}", "-a", user, "-p", password,
           "--quiet", "--starttls", "--x509-ca-file", str(server.pki.root)]
    if "PLUS" not in mech:
        cmd += ["--no-cb"]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)


def msmtp(server, mech, password):
    msg = f"From: {USER}\r\nTo: bob@example.test\r\nSubject: msmtp {mech}\r\n\r\nhi\r\n"
    return subprocess.run(["msmtp", "--host=127.0.0.1", f"--port={server.submission}",
                           "--tls=on", "--tls-starttls=on",
                           f"--tls-trust-file={server.pki.root}", f"--auth={mech}",
                           f"--user={USER}", f"--passwordeval=echo '{password}'",
                           f"--from={USER}", "bob@example.test"], input=msg,
                          capture_output=True, text=True, timeout=30)


def scram_salts(server, scheme):
    """The salt and iterations of each of USER's lines for scheme."""
    out = {}
    for line in server.users.read_text().splitlines():
        if not line.startswith(USER + ":"):
            continue
        label = re.search(r"\blabel=(\S+)", line)
        if scheme == "SCRAM-SHA-256":
            data = line.split(":")[1].removeprefix("{SCRAM-SHA-256}")
        else:
            data = re.search(r"\bscram1=(\S+)", line).group(1)
        it, salt = data.split(",")[:2]
        out[label.group(1) if label else None] = (it, salt)
    return out


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
                                  "SCRAM-SHA-1"])
def test_scram_with_app_password(scram_server, mech):
    srv = scram_server
    pw = app_add(srv, "mua")
    for scheme in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        salts = scram_salts(srv, scheme)
        assert salts["mua"] == salts[None], (scheme, salts)  # one salt per user and hash
    r = gsasl(srv, mech, pw)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = srv.wait_event("auth", lambda e: e.get("result") == "ok")
    assert ev["mechanism"] == mech and ev["user"] == USER
    # the main password still works, a wrong one does not
    assert gsasl(srv, mech, PASSWORD).returncode == 0
    r = gsasl(srv, mech, pw + "x")
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    fails = [e for e in srv.events("auth") if e.get("code") == 535]
    assert [e["reason"] for e in fails] == ["proof mismatch"]


@pytest.mark.parametrize("mech", ["scram-sha-256", "scram-sha-1"])
def test_msmtp_scram_with_app_password(scram_server, mech):
    pw = app_add(scram_server, "msmtp")
    r = msmtp(scram_server, mech, pw)
    assert r.returncode == 0, r.stderr
    assert msmtp(scram_server, mech, PASSWORD).returncode == 0


def test_scram_del_revokes_at_once(scram_server):
    srv = scram_server
    pw = app_add(srv, "gone")
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", pw).returncode == 0
    user_cmd(srv, "app-password", "del", USER, "gone")
    r = gsasl(srv, "SCRAM-SHA-256-PLUS", pw)
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", PASSWORD).returncode == 0
    assert not [e for e in srv.events() if e.get("event") == "reload"]


def test_scram_expired_and_locked_fail(scram_server):
    srv = scram_server
    r = user_cmd(srv, "app-password", "add", USER, "old", "--expires", "2001-02-03")
    old = r.stdout.splitlines()[-1]
    r = gsasl(srv, "SCRAM-SHA-256-PLUS", old)
    assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    brief = app_add(srv, "brief", "--expires", soon)
    assert gsasl(srv, "SCRAM-SHA-256", brief).returncode == 0
    time.sleep(4)
    assert gsasl(srv, "SCRAM-SHA-256", brief).returncode != 0
    pw = app_add(srv, "watch")
    user_cmd(srv, "lock", USER, "--label", "watch")
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", pw).returncode != 0
    user_cmd(srv, "unlock", USER, "--label", "watch")
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", pw).returncode == 0
    # only the main line locked (by hand): the app passwords share its salt,
    # which the first active line then announces, and still work
    lines = srv.users.read_text().splitlines()
    lines = [ln + " locked=yes" if ln.startswith(USER + ":") and "label=" not in ln else ln
             for ln in lines]
    srv.users.write_text("\n".join(lines) + "\n")
    assert auth(srv, "PLAIN", PASSWORD) == AUTH_INVALID
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", PASSWORD).returncode != 0
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", pw).returncode == 0


def test_scram_records_last_use(scram_server):
    srv = scram_server
    pw = app_add(srv, "scram-phone")
    before = int(time.time())
    assert gsasl(srv, "SCRAM-SHA-256-PLUS", pw).returncode == 0

    def used():
        c = listed(srv, "scram-phone")
        return c if c["last_use"] is not None else None
    cred = wait_for(used, timeout=15, what="last use after a SCRAM login")
    assert cred["last_use"]["client"] == "127.0.0.1"
    assert before - 1 <= epoch(cred["last_use"]["time"]) <= time.time() + 1
    # the main password was not used
    doc = json.loads(user_cmd(srv, "list", "--json", USER).stdout)
    main = [c for c in doc["credentials"] if c["label"] is None][0]
    assert main["last_use"] is None
    assert gsasl(srv, "SCRAM-SHA-1", PASSWORD).returncode == 0
    wait_for(lambda: [c for c in json.loads(user_cmd(srv, "list", "--json", USER).stdout)
                      ["credentials"] if c["label"] is None][0]["last_use"],
             timeout=15, what="the main password's last use")


def scram_data(name, pw, salt, it=4096):
    """RFC 5803 data ITER,SALT,STOREDKEY,SERVERKEY of pw (RFC 5802 3)."""
    salted = hashlib.pbkdf2_hmac(name, pw.encode(), salt, it)
    ck = hmac.new(salted, b"Client Key", name).digest()
    sk = hmac.new(salted, b"Server Key", name).digest()
    enc = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"{it},{enc(salt)},{enc(hashlib.new(name, ck).digest())},{enc(sk)}"


def test_scram_other_salt_is_plain_only(scram_server):
    """An app password whose keys have another salt (made before salts were
    shared) keeps working for PLAIN/LOGIN; SCRAM skips it."""
    srv = scram_server
    pw = app_add(srv, "legacy")
    salt = os.urandom(16)
    new = []
    for line in srv.users.read_text().splitlines():
        if "label=legacy" in line:
            f = line.split(":")
            f[1] = "{SCRAM-SHA-256}" + scram_data("sha256", pw, salt)
            line = re.sub(r"\bscram1=\S+", "scram1=" + scram_data("sha1", pw, salt),
                          ":".join(f))
        new.append(line)
    srv.users.write_text("\n".join(new) + "\n")
    assert scram_salts(srv, "SCRAM-SHA-256")["legacy"][1] != \
        scram_salts(srv, "SCRAM-SHA-256")[None][1]
    assert auth(srv, "PLAIN", pw) == AUTH_OK
    assert auth(srv, "LOGIN", pw) == AUTH_OK
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"):
        r = gsasl(srv, mech, pw)
        assert r.returncode != 0 and AUTH_INVALID in r.stdout + r.stderr
        assert gsasl(srv, mech, PASSWORD).returncode == 0


def test_user_commands_keep_one_salt(scram_server):
    """`user add --label`, `user passwd --label` and `user passwd` keep the
    user's one salt per hash, so SCRAM keeps working with every credential."""
    srv = scram_server
    pw = app_add(srv, "mua")
    user_cmd(srv, "add", USER, "--label", "cli", "--password-stdin", input_="cli password")
    user_cmd(srv, "passwd", USER, "--label", "mua", "--password-stdin", input_="new mua pw")
    user_cmd(srv, "passwd", USER, "--password-stdin", input_="new main pw")
    for scheme in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        salts = scram_salts(srv, scheme)
        assert len(set(salts.values())) == 1 and len(salts) == 3, (scheme, salts)
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"):
        for password in ("cli password", "new mua pw", "new main pw"):
            r = gsasl(srv, mech, password)
            assert r.returncode == 0, (mech, password, r.stdout + r.stderr)
        assert gsasl(srv, mech, pw).returncode != 0
