"""The README's "Quick start by hand" runs as written.

The commands are taken from the fenced block after the `quick-start` marker
in README.md, in a temporary folder. Three things are substituted: the
binary under test for `build/smtpgate` (`make` is skipped: it is built), the
password on stdin for the prompt of `user add`, and, for `init`, free
loopback ports for 587 and 465 through the options the README names for
that. Then a message goes through each listener with swaks and is queued.
"""
import json
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess

import pytest

from conftest import ROOT, SMTPGATE, free_port, wait_port

PASSWORD = "quick start password"


def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- quick-start:[^>]*-->\n```sh\n(.*?)\n```\n<!-- end of quick-start -->",
                  readme, re.S)
    assert m, "README.md: no quick-start block between the markers"
    return [shlex.split(line, comments=True) for line in m.group(1).splitlines()
            if shlex.split(line, comments=True)]


def test_quickstart_block_is_what_the_test_expects():
    """The README's block has the shape this test knows how to run: a build,
    then init, user add, serve --check and serve, all with build/smtpgate."""
    cmds = quickstart_commands()
    assert cmds[0] == ["make"]
    assert cmds[1][0] == "useradd" and cmds[1][-1] == "smtpgate"
    cmds = cmds[1:]
    assert [c[0] for c in cmds[1:]] == ["build/smtpgate"] * 4
    assert [c[1] for c in cmds[1:]] == ["init", "user", "serve", "serve"]
    assert "--check" in cmds[3] and "--check" not in cmds[4]
    readme = (ROOT / "README.md").read_text()
    for opt in ("--submission-port", "--smtps-port", "--listen"):
        assert opt in readme, f"the README no longer tells non-root users about {opt}"


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_quickstart_runs_as_written(tmp_path):
    sub, smtps = free_port(), free_port()
    useradd, *cmds = quickstart_commands()[1:]
    run = lambda argv, **kw: subprocess.run(  # noqa: E731
        [SMTPGATE, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=60, **kw)

    # the user, as written, where the test may make one (removed after)
    made_user = False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("smtpgate")
        except KeyError:
            subprocess.run(useradd, check=True)
            made_user = True
        # the folder must be reachable by that user (pytest makes it 0700)
        for d in [tmp_path, *tmp_path.parents][:-1]:
            os.chmod(d, os.stat(d).st_mode | 0o111)
    try:
        quickstart_run(tmp_path, cmds, run, sub, smtps)
    finally:
        if made_user:
            subprocess.run(["userdel", "smtpgate"], check=True)


def quickstart_run(tmp_path, cmds, run, sub, smtps):
    init, add, check, serve = cmds
    r = run(init + ["--listen", "127.0.0.1", "--submission-port", str(sub),
                    "--smtps-port", str(smtps)])
    assert r.returncode == 0, r.stderr
    # it names the next three commands: add a user, check, run
    nxt = [ln.split("#")[0].split() for ln in r.stdout.split("Next:\n", 1)[1].splitlines()]
    assert [c[1:3] for c in nxt if c] == [["user", "add"], ["serve", "-c"], ["serve", "-c"]]

    user = add[add.index("add") + 1]
    r = run(add, input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr

    r = run(check)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[error]" not in r.stdout
    assert "tls-cert-self-signed" in r.stdout  # a warning, named

    conf = pathlib.Path(tmp_path, serve[serve.index("-c") + 1])
    proc = subprocess.Popen([SMTPGATE, *serve[1:]], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_port(sub, proc=proc)
        wait_port(smtps, proc=proc)
        # the certificate init made verifies for the host name it was made for
        ctx = ssl.create_default_context(cafile=str(conf.parent / "cert.pem"))
        with socket.create_connection(("127.0.0.1", smtps), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="mail.example.test") as t:
                assert t.recv(512).startswith(b"220 mail.example.test")
        ids = []
        for port, flag in ((sub, "--tls"), (smtps, "--tlsc")):
            r = subprocess.run(
                ["swaks", "--server", "127.0.0.1", "--port", str(port), flag,
                 "--auth", "PLAIN", "--auth-user", user, "--auth-password", PASSWORD,
                 "--from", user, "--to", "bob@example.net", "--helo", "client.example.test",
                 "--header", f"Subject: quick start {port}", "--timeout", "30"],
                capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            ids.append(re.search(r"<~\s+250 2\.0\.0 OK: queued as (\S+)", r.stdout).group(1))
        r = run(["smtpgate", "queue", "list", "-c", str(conf), "--json"])
        assert r.returncode == 0, r.stderr
        assert sorted(m["id"] for m in json.loads(r.stdout)["messages"]) == sorted(ids)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # the log went where the generated configuration says: inside the folder
    assert (conf.parent / "smtpgate.log").stat().st_size > 0
