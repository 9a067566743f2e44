"""`make run` (contrib/demo.sh): the banner comes last, once the server
listens, and says that mail is only queued and how to add a [relay];
run/local.conf is kept and appended; a server that cannot start gets no
banner; Ctrl-C (SIGINT to the terminal's process group) stops the server."""
import os
import pathlib
import select
import signal
import socket
import subprocess
import time

from conftest import SMTPGATE, free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
LAST_LINE = "Stop with Ctrl-C."


def start_demo(d, sub=None):
    env = dict(os.environ, SMTPGATE_DEMO_DIR=str(d),
               SMTPGATE_DEMO_SUBMISSION=str(sub or free_port()),
               SMTPGATE_DEMO_SMTPS=str(free_port()))
    # its own session and process group, as a terminal would give it
    return subprocess.Popen(["sh", str(REPO / "contrib" / "demo.sh"), SMTPGATE], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def read_until(p, marker, timeout=60.0):
    """What p printed up to marker (or until it ended or timeout)."""
    out = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in out and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    return out.decode()


def read_more(p, seconds):
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    return out.decode()


def stop_with_ctrl_c(p):
    os.killpg(p.pid, signal.SIGINT)
    p.wait(timeout=30)
    p.stdout.close()


def test_banner_is_last_and_says_mail_is_only_queued(tmp_path):
    d = tmp_path / "run"
    p = start_demo(d)
    try:
        out = read_until(p, LAST_LINE)
        assert out.rstrip().endswith(LAST_LINE), out
        # printed once the server listens: the log has its start event
        assert '"event":"start"' in (d / "smtpgate.log").read_text()
        assert "Mail is queued, NOT delivered" in out, out
        assert f"put a [relay] section in {d}/local.conf" in out, out
        assert "route = smarthost" in out, out
        # the server's log goes to its file, not under the banner
        assert read_more(p, 1.5) == ""
    finally:
        stop_with_ctrl_c(p)
    assert p.returncode == 0
    assert '"event":"stop"' in (d / "smtpgate.log").read_text()


def test_local_conf_relay_is_kept_and_named(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "local.conf").write_text(
        f"[relay]\nroute = smarthost 127.0.0.1:{free_port()}\nverify = none\n")
    p = start_demo(d)
    try:
        out = read_until(p, LAST_LINE)
        assert out.rstrip().endswith(LAST_LINE), out
        assert f"Mail is delivered by the [relay] of {d}/local.conf." in out, out
        assert "NOT delivered" not in out
        conf = (d / "smtpgate.conf").read_text()
        assert conf.count("[relay]") == 1 and "verify = none" in conf
    finally:
        stop_with_ctrl_c(p)
    assert p.returncode == 0


def test_server_that_cannot_start_gets_no_banner(tmp_path):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        p = start_demo(tmp_path / "run", sub=port)
        out, _ = p.communicate(timeout=60)
    out = out.decode()
    assert p.returncode == 2, out
    assert "is already in use" in out, out
    assert "the server did not start" in out, out
    assert LAST_LINE not in out and "demo server is running" not in out, out
