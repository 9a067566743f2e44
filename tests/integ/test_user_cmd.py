"""`smtpgate user`: add/passwd/del/list/lock/unlock/verify on a real passwd
file; mode 0600, no temp files left, and the password never shows up in the
file or in any output."""
import json
import os
import re
import stat
import subprocess

import pytest

from conftest import SMTPGATE

SECRET = "s3cret-Pässword!"


def run(*args, password=None, **kw):
    return subprocess.run([SMTPGATE, "user", *args], capture_output=True, text=True,
                          timeout=60, input=password if password is not None else "", **kw)


def add(path, user, password=SECRET, *extra):
    r = run("add", user, "-f", str(path), "--password-stdin", *extra, password=password + "\n")
    assert r.returncode == 0, r.stderr
    return r


def verify(path, user, password):
    return run("verify", user, "-f", str(path), password=password + "\n").returncode


def assert_no_secret(path, *results):
    assert SECRET not in path.read_text()
    for r in results:
        assert SECRET not in r.stdout and SECRET not in r.stderr


def test_add_verify_mode_and_secrecy(tmp_path):
    pw = tmp_path / "passwd"
    r = add(pw, "alice@example.org")
    assert stat.S_IMODE(os.stat(pw).st_mode) == 0o600
    line = pw.read_text()
    assert line.startswith("alice@example.org:{SCRAM-SHA-256}4096,")
    assert "::::::scram1=4096," in line and "created=" in line
    assert verify(pw, "alice@example.org", SECRET) == 0
    assert verify(pw, "alice@example.org", SECRET + "x") == 1
    assert verify(pw, "nobody", SECRET) == 1
    assert_no_secret(pw, r)
    assert sorted(os.listdir(tmp_path)) == ["passwd"]


def test_add_existing_user_fails(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "alice")
    before = pw.read_text()
    r = run("add", "alice", "-f", str(pw), "--password-stdin", password="other\n")
    assert r.returncode == 1
    assert "exists" in r.stderr
    assert pw.read_text() == before


@pytest.mark.parametrize("scheme,prefix", [
    ("SCRAM-SHA-256", "{SCRAM-SHA-256}4096,"),
    ("ARGON2ID", "{ARGON2ID}$argon2id$"),
    ("SHA512-CRYPT", "{SHA512-CRYPT}$6$"),
    ("BLF-CRYPT", "{BLF-CRYPT}$2b$"),
])
def test_schemes(tmp_path, scheme, prefix):
    pw = tmp_path / "passwd"
    # options after USER (permuted)
    r = add(pw, "bob", SECRET, "--scheme", scheme)
    text = pw.read_text()
    assert text.startswith("bob:" + prefix)
    # --scheme narrows: no SCRAM-SHA-1 keys
    assert "scram1=" not in text
    assert verify(pw, "bob", SECRET) == 0
    assert verify(pw, "bob", "wrong") == 1
    assert_no_secret(pw, r)


def test_bad_scheme_is_usage_error(tmp_path):
    r = run("add", "bob", "-f", str(tmp_path / "passwd"), "--scheme", "PLAIN",
            "--password-stdin", password="x\n")
    assert r.returncode == 2
    assert not (tmp_path / "passwd").exists()


def test_passwd_keeps_lock_and_app_passwords(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "carol", "first")
    add(pw, "carol", "app-secret", "--label", "phone")
    assert verify(pw, "carol", "app-secret") == 0
    r = run("passwd", "carol", "-f", str(pw), "--password-stdin", password=SECRET + "\n")
    assert r.returncode == 0, r.stderr
    assert verify(pw, "carol", "first") == 1
    assert verify(pw, "carol", SECRET) == 0
    assert verify(pw, "carol", "app-secret") == 0
    assert len(pw.read_text().splitlines()) == 2
    r = run("passwd", "nobody", "-f", str(pw), "--password-stdin", password="x\n")
    assert r.returncode == 1
    assert_no_secret(pw, r)


def test_lock_unlock(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "dave")
    assert run("lock", "dave", "-f", str(pw)).returncode == 0
    assert "locked=yes" in pw.read_text()
    assert verify(pw, "dave", SECRET) == 1
    assert run("unlock", "-f", str(pw), "dave").returncode == 0
    assert "locked" not in pw.read_text()
    assert verify(pw, "dave", SECRET) == 0
    assert run("lock", "nobody", "-f", str(pw)).returncode == 1


def test_del(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "erin")
    add(pw, "erin", "app", "--label", "laptop")
    add(pw, "frank")
    assert run("del", "erin", "-f", str(pw), "--label", "laptop").returncode == 0
    assert verify(pw, "erin", "app") == 1
    assert verify(pw, "erin", SECRET) == 0
    assert run("del", "erin", "-f", str(pw)).returncode == 0
    assert verify(pw, "erin", SECRET) == 1
    assert run("del", "erin", "-f", str(pw)).returncode == 1
    assert pw.read_text().startswith("frank:")
    assert sorted(os.listdir(tmp_path)) == ["passwd"]


def test_list_text_and_json(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "gina")
    add(pw, "gina", "app", "--label", "phone")
    add(pw, "hugo", SECRET, "--scheme", "SHA512-CRYPT")
    run("lock", "hugo", "-f", str(pw))
    r = run("list", "-f", str(pw))
    assert r.returncode == 0
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows.pop(0) == ["USER", "SCHEMES", "LABEL", "CREATED", "STATE", "EXPIRES",
                           "LAST-USE", "CLIENT"]
    assert [row[0] for row in rows] == ["gina", "gina", "hugo"]
    assert rows[0][1] == "SCRAM-SHA-256,SCRAM-SHA-1"
    assert rows[1][2] == "phone"
    assert rows[2][1] == "SHA512-CRYPT" and rows[2][4] == "locked"
    r = run("list", "--json", "-f", str(pw), "gina")
    doc = json.loads(r.stdout)
    creds = doc["credentials"]
    assert [c["label"] for c in creds] == [None, "phone"]
    assert creds[0]["schemes"] == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", creds[0]["created"])
    assert creds[0]["locked"] is False
    assert_no_secret(pw, r)


def test_file_mode_kept_and_preserved_fields(tmp_path):
    pw = tmp_path / "passwd"
    add(pw, "ivan")
    os.chmod(pw, 0o640)
    with open(pw, "a") as f:
        f.write("# a comment\njudy:{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
                ":1000:1000::/home/judy::future=1\n")
    assert run("lock", "ivan", "-f", str(pw)).returncode == 0
    assert stat.S_IMODE(os.stat(pw).st_mode) == 0o640
    text = pw.read_text()
    assert "# a comment\n" in text
    assert ":1000:1000::/home/judy::future=1\n" in text
    assert verify(pw, "judy", "U*U") == 0


def test_errors_and_help(tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text("broken line\n")
    r = run("list", "-f", str(pw))
    assert r.returncode == 2
    assert f"{pw}:1:" in r.stderr
    assert run("add", "x", password="y\n").returncode == 2  # no -f
    assert run("frob", "x", "-f", str(pw)).returncode == 2
    assert run("add", "bad:user", "-f", str(tmp_path / "p2"), "--password-stdin",
               password="y\n").returncode == 2
    assert run("verify", "-f", str(pw)).returncode == 2
    for sub in ("add", "passwd", "del", "list", "lock", "unlock", "verify"):
        r = run(sub, "--help")
        assert r.returncode == 0 and sub in r.stdout
    assert run("--help").returncode == 0


def test_empty_password_refused(tmp_path):
    pw = tmp_path / "passwd"
    r = run("add", "kim", "-f", str(pw), "--password-stdin", password="\n")
    assert r.returncode == 1
    assert not pw.exists()


def test_terminal_prompts_twice_without_echo(tmp_path):
    """Without --password-stdin on a terminal: echo off, asked twice."""
    pw = tmp_path / "passwd"
    master, slave = os.openpty()
    p = subprocess.Popen([SMTPGATE, "user", "add", "lena", "-f", str(pw)], stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    # the prompt switches echo off and discards typeahead (TCSAFLUSH): answer
    # each prompt once it is there, as a person would
    first = p.stderr.read(len("Password: "))
    os.write(master, (SECRET + "\n").encode())
    second = p.stderr.read(len("\nAgain: "))
    os.write(master, (SECRET + "\n").encode())
    out, err = p.communicate(timeout=60)
    err = first + second + err
    echoed = b""
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            echoed += chunk
    except OSError:
        pass
    os.close(master)
    assert p.returncode == 0, err
    assert b"Password: " in err and b"Again: " in err
    assert SECRET.encode() not in echoed + out + err
    assert verify(pw, "lena", SECRET) == 0
