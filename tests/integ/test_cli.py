"""Command-line contract: exit statuses, --help, config errors naming file:line."""
import subprocess

from conftest import SMTPGATE


def run(*args, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=30, **kw)


def test_help_exits_zero():
    r = run("--help")
    assert r.returncode == 0
    assert "serve" in r.stdout


def test_unknown_command_is_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2
    assert "unknown command" in r.stderr


def test_serve_check_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nhostname = ok.test\nbogus = 1\n")
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2
    assert f"{conf}:3: unknown key \"bogus\" in [server]" in r.stderr


def test_serve_check_missing_file(tmp_path):
    r = run("serve", "-c", str(tmp_path / "nope.conf"), "--check")
    assert r.returncode == 2
    assert "cannot read" in r.stderr
