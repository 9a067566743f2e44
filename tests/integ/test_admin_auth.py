"""[admin] token_file and auth: the admin API asks for `Authorization: Bearer
TOKEN` (401 with WWW-Authenticate otherwise), `smtpgate ban` and `smtpgate
user unlock -c` send the token of the same file, bad token files are
configuration errors, SIGHUP re-reads the token, and the audit reports an
[admin] without a token. The token never appears in a log or an output."""
import json
import os
import secrets
import signal
import subprocess
import urllib.error
import urllib.request

from conftest import SMTPGATE, USER, free_port, wait_for, wait_port

REALM = 'Bearer realm="smtpgate"'


def run(*args, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=60, **kw)


def write_token(path, token, mode=0o600):
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, mode)  # whatever the umask


def token_server(make_server, auth=None, token=None, **kw):
    """A server whose [admin] has token_file = admin.token (relative to the
    config folder). Not started."""
    port = free_port()
    extra = f"[admin]\naddress = 127.0.0.1:{port}\ntoken_file = admin.token\n"
    if auth:
        extra += f"auth = {auth}\n"
    s = make_server(extra=extra, **kw)
    s.admin = port
    s.token = token or secrets.token_hex(32)
    write_token(s.dir / "admin.token", s.token)
    return s


def start(s):
    s.start()
    wait_port(s.admin, proc=s.proc)
    return s


def http(port, path, method="GET", token=None, authorization=None):
    """(status, headers, body); token becomes "Authorization: Bearer TOKEN"."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if authorization is not None:
        req.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def assert_401(resp, wrong=False):
    status, headers, body = resp
    assert status == 401, resp
    www = headers.get("WWW-Authenticate")
    if wrong:
        assert www == REALM + ', error="invalid_token"', www
    else:
        assert www == REALM, www
    assert headers.get("Content-Type") == "application/json"
    assert "error" in json.loads(body)


def log_text(s):
    return s.log.read_text() if s.log.exists() else ""


def test_token_required_for_changes_and_user_data(make_server):
    s = start(token_server(make_server))
    wrong = secrets.token_hex(32)
    # open by default: scrapers and health probes have no token
    assert http(s.admin, "/metrics")[0] == 200
    assert http(s.admin, "/healthz")[0] == 200
    # reads that name users or addresses, and every change: token required
    assert_401(http(s.admin, "/bans"))
    assert_401(http(s.admin, "/quota"))
    assert_401(http(s.admin, f"/quota/unlock?user={USER}", method="POST"))
    assert_401(http(s.admin, "/bans/127.0.0.7", method="DELETE"))
    assert_401(http(s.admin, "/bans", method="POST"))
    assert_401(http(s.admin, "/metrics", method="POST"))  # before the route's 405
    assert_401(http(s.admin, f"/quota/unlock?user={USER}", method="POST", token=wrong),
               wrong=True)
    assert_401(http(s.admin, "/bans/127.0.0.7", method="DELETE", token=wrong), wrong=True)
    assert_401(http(s.admin, "/bans", token=s.token[:-1]), wrong=True)  # a prefix
    assert_401(http(s.admin, "/bans", token=s.token + "0"), wrong=True)  # longer
    assert_401(http(s.admin, "/bans", authorization=f"Basic {s.token}"))
    assert_401(http(s.admin, "/bans", authorization="Bearer"))
    # the right token
    st, _, body = http(s.admin, f"/quota/unlock?user={USER}", method="POST", token=s.token)
    assert st == 200, body
    assert json.loads(body) == {"user": USER, "was_locked": False}
    assert http(s.admin, "/quota", token=s.token)[0] == 200
    assert http(s.admin, "/metrics", method="POST", token=s.token)[0] == 405
    assert http(s.admin, "/bans/127.0.0.7", method="DELETE", token=s.token)[0] == 404
    st, _, body = http(s.admin, "/bans", authorization=f"bearer   {s.token}")
    assert st == 200 and json.loads(body)["bans"] == [], body
    # curl, a real client, with the token in a header
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                        "-H", f"Authorization: Bearer {s.token}",
                        f"http://127.0.0.1:{s.admin}/bans/127.0.0.9"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "404", r
    # every refusal is logged, with the client and the route, never the value
    evs = wait_for(lambda: len(s.events("admin_auth")) >= 12 and s.events("admin_auth"),
                   what="admin_auth events")
    assert len(evs) == 12, evs
    assert all(e["level"] == "warning" and e["client"] == "127.0.0.1" for e in evs), evs
    assert {e["route"] for e in evs} == {"/bans", "/quota", "/metrics"}
    assert [e["result"] for e in evs].count("wrong") == 4
    assert [e["result"] for e in evs].count("missing") == 6
    assert [e["result"] for e in evs].count("not_bearer") == 2
    assert any(e["method"] == "DELETE" and e["route"] == "/bans" for e in evs)
    rc = s.stop()
    assert rc == 0, s.stderr_text()
    for text in (log_text(s), s.stderr_text()):
        assert s.token not in text and wrong not in text
        assert s.token[:16] not in text


def test_ban_and_unlock_commands_send_the_token(make_server):
    s = start(token_server(make_server))
    r = run("ban", "add", "127.0.0.7", "--seconds", "2m", "-c", str(s.conf), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["source"] == "server" and out["address"] == "127.0.0.7"
    r = run("ban", "list", "-c", str(s.conf), "--json")
    assert r.returncode == 0, r.stderr
    assert [b["address"] for b in json.loads(r.stdout)["bans"]] == ["127.0.0.7"]
    r = run("ban", "del", "127.0.0.7", "-c", str(s.conf))
    assert r.returncode == 0, r.stderr
    assert "running server" in r.stdout and "lifted the ban of 127.0.0.7" in r.stdout
    r = run("user", "unlock", USER, "-c", str(s.conf))
    assert r.returncode == 0, r.stderr
    assert "running server" in r.stdout
    assert s.events("admin_auth") == []
    assert s.events("unban") and s.events("ban")
    for text in (r.stdout, r.stderr, log_text(s)):
        assert s.token not in text


def test_commands_explain_a_refused_token(make_server, tmp_path):
    s = start(token_server(make_server))
    # another config for the same admin address with another token
    other = tmp_path / "other"
    other.mkdir()
    text = s.conf.read_text()
    (other / "smtpgate.conf").write_text(text)
    (other / "users").write_bytes(s.users.read_bytes())  # `user unlock` edits it first
    os.chmod(other / "users", 0o600)
    stale = secrets.token_hex(32)
    write_token(other / "admin.token", stale)
    for args in (["ban", "list"], ["ban", "del", "127.0.0.7"], ["user", "unlock", USER]):
        r = run(*args, "-c", str(other / "smtpgate.conf"))
        assert r.returncode == 1, (args, r)
        assert "refused the token" in r.stderr, r.stderr
        assert str(other / "admin.token") in r.stderr
        assert "same file the server read" in r.stderr
        assert stale not in r.stderr + r.stdout and s.token not in r.stderr + r.stdout
    r = run("ban", "list", "-c", str(other / "smtpgate.conf"), "--json")
    assert r.returncode == 1
    assert "refused the token" in json.loads(r.stdout)["error"]
    # a config without token_file: the server wants one
    (other / "smtpgate.conf").write_text(text.replace("token_file = admin.token\n", ""))
    r = run("ban", "add", "127.0.0.7", "-c", str(other / "smtpgate.conf"))
    assert r.returncode == 1, r
    assert "requires a token" in r.stderr and "has no [admin] token_file" in r.stderr
    # nothing was banned, and no state file was edited behind the server's back
    assert json.loads(http(s.admin, "/bans", token=s.token)[2])["bans"] == []


def test_auth_all_protects_metrics_and_healthz(make_server):
    s = start(token_server(make_server, auth="all"))
    assert_401(http(s.admin, "/metrics"))
    assert_401(http(s.admin, "/healthz"))
    assert_401(http(s.admin, "/nothing"))  # no hint of which routes exist
    assert http(s.admin, "/metrics", token=s.token)[0] == 200
    assert http(s.admin, "/healthz", token=s.token)[0] == 200
    assert http(s.admin, "/nothing", token=s.token)[0] == 404
    r = run("ban", "list", "-c", str(s.conf))
    assert r.returncode == 0, r.stderr


def test_sighup_reads_the_token_again(make_server):
    s = start(token_server(make_server))
    old = s.token
    new = secrets.token_hex(32)
    write_token(s.dir / "admin.token", new)
    # the server still holds the token it read at start
    assert http(s.admin, "/bans", token=old)[0] == 200
    s.proc.send_signal(signal.SIGHUP)
    s.wait_event("reload", lambda e: e.get("result") == "ok")
    assert_401(http(s.admin, "/bans", token=old), wrong=True)
    assert http(s.admin, "/bans", token=new)[0] == 200
    # a reload with an unusable token file fails and keeps the token in use
    os.chmod(s.dir / "admin.token", 0o644)
    n = len(s.events("reload"))
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(s.events("reload")) > n, what="second reload")
    ev = s.events("reload")[-1]
    assert ev["result"] == "fail" and "0600 or stricter" in ev["error"], ev
    assert http(s.admin, "/bans", token=new)[0] == 200
    assert new not in log_text(s) and old not in log_text(s)


def test_bad_token_file_is_a_config_error(make_server):
    s = token_server(make_server)
    tok = s.dir / "admin.token"
    line = s.conf.read_text().splitlines().index("token_file = admin.token") + 1
    # readable by others
    os.chmod(tok, 0o644)
    for args in (["serve", "--check"], ["serve"], ["ban", "list"], ["audit"]):
        r = run(*args, "-c", str(s.conf))
        assert r.returncode == 2, (args, r)
        assert (f"{s.conf}:{line}: [admin] token_file: {tok} must be a regular file of mode "
                f"0600 or stricter (it is 0644): chmod 600 {tok}") in r.stderr, r.stderr
        assert s.token not in r.stdout + r.stderr
    # too short
    short = "abcdef0123456789abcdef012345678"  # 31
    write_token(tok, short)
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2, r
    assert f"{s.conf}:{line}: [admin] token_file: {tok}: the token is shorter than 32" in r.stderr
    assert short not in r.stdout + r.stderr
    assert "configuration OK" not in r.stdout
    # a character a header cannot carry
    write_token(tok, "a" * 20 + '"' + "b" * 20)
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "may only hold letters, digits" in r.stderr, r
    # missing
    tok.unlink()
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "No such file or directory" in r.stderr, r
    # 32 characters, mode 0400: fine
    write_token(tok, "x" * 32, mode=0o400)
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 0, r
    assert "admin-unauthenticated" not in r.stdout


def test_audit_reports_admin_without_token(make_server):
    port = free_port()
    s = make_server(extra=f"[admin]\naddress = 127.0.0.1:{port}\n")
    r = run("audit", "-c", str(s.conf), "--json")
    found = [f for f in json.loads(r.stdout)["findings"] if f["id"] == "admin-unauthenticated"]
    assert r.returncode == 0, r
    assert len(found) == 1 and found[0]["severity"] == "warning", found
    assert "token_file" in found[0]["evidence"] and f"127.0.0.1:{port}" in found[0]["evidence"]
    assert "openssl rand" in found[0]["fix"] and "token_file" in found[0]["fix"]
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 0, r
    assert "[warning] admin-unauthenticated" in r.stdout
    # reachable from other hosts: an error, and serve --check fails
    text = s.conf.read_text()
    s.conf.write_text(text.replace(f"address = 127.0.0.1:{port}\n", f"address = *:{port}\n"))
    r = run("audit", "-c", str(s.conf), "--json")
    assert r.returncode == 1, r
    assert [f["severity"] for f in json.loads(r.stdout)["findings"]
            if f["id"] == "admin-unauthenticated"] == ["error"]
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "[error] admin-unauthenticated" in r.stdout, r
    # as before authentication existed, with a warning in the log at start
    s.conf.write_text(text)
    s.start()
    wait_port(port, proc=s.proc)
    assert http(port, "/bans", method="POST")[0] == 400  # reaches the route
    ev = s.wait_event("config_warning", lambda e: e.get("key") == "[admin] token_file")
    assert ev["level"] == "warning" and "admin-unauthenticated" in ev["warning"]
