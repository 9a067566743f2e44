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


def test_serve_check_refuses_a_readable_or_empty_redis_password_file(tmp_path):
    """[cluster] redis_password_file goes through the same secret-file reader as
    [admin] token_file: readable by others or without a password on its first
    line, `serve --check` refuses it, naming file, line and mode, never the
    password; mode 0600 with a password passes."""
    import os
    pw = tmp_path / "redis.pw"
    pw.write_text("s3cret-redis-pw\n")
    conf = tmp_path / "smtpgate.conf"
    conf.write_text(f"[server]\nhostname = ok.test\nuser = nobody\nspool = {tmp_path / 'spool'}\n"
                    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
                    f"[cluster]\nredis = redis://127.0.0.1:1\nredis_password_file = {pw}\n")
    os.chmod(pw, 0o644)
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2, r.stderr
    assert (f"{conf}:12: [cluster] redis_password_file: {pw} must be a regular file of mode "
            f"0600 or stricter (it is 0644): chmod 600 {pw}") in r.stderr, r.stderr
    assert "s3cret" not in r.stderr
    os.chmod(pw, 0o600)
    pw.write_text("\nsecond line\n")
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2, r.stderr
    assert "expected the password on the first line" in r.stderr, r.stderr
    pw.write_text("s3cret-redis-pw\n")
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 0, r.stderr
