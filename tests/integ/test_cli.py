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


def test_every_command_help_has_exit_status():
    """Each command's --help says what its exit statuses mean, as the
    contract (0 / 1 / 2) does."""
    main = run("--help").stdout
    cmds = [line.split()[0] for line in main.splitlines()
            if line.startswith("  ") and len(line.split()) > 1]
    assert {"serve", "user", "queue", "ban", "probe", "dns", "audit"} <= set(cmds), main
    for cmd in cmds:
        r = run(cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert "\nExit status: 0 " in r.stdout, (cmd, r.stdout)
