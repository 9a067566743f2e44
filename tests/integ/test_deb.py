"""The Debian package (`make deb`, debian/): built once for this module,
checked with lintian, installed on this machine with `dpkg -i`, used, then
removed and purged.

It installs into /usr and /etc of the test machine: the module fixture
purges the package whatever happens, and takes away the snakeoil
certificate if the installation made it. The live submission uses a copy
of the installed configuration whose listeners are free loopback ports, so
that it never clashes with other tests; the installed spool, passwd file
and log are the ones used. There is no running systemd here: the binary is
started the way the unit starts it (its ExecStart line, $NOTIFY_SOCKET a
datagram socket of the test).
"""
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import ROOT, free_port

# the same helper the unit's own test uses
from test_systemd import NotifySocket

PKG = "smtpgate"
CONF = pathlib.Path("/etc/smtpgate/smtpgate.conf")
PASSWD = pathlib.Path("/etc/smtpgate/passwd")
SPOOL = pathlib.Path("/var/spool/smtpgate")
LOGDIR = pathlib.Path("/var/log/smtpgate")
UNIT = pathlib.Path("/lib/systemd/system/smtpgate.service")
SNAKEOIL = [pathlib.Path("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
            pathlib.Path("/etc/ssl/private/ssl-cert-snakeoil.key")]
USER = "deb-test@example.org"
PASSWORD = "package test password 7"


def _installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG], capture_output=True,
                       text=True)
    return r.returncode == 0 and "installed" in r.stdout.split()


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root"),
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None or
                       shutil.which("dh") is None, reason="debhelper is not installed"),
]


def _version():
    m = re.search(r"project\(smtpgate VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text())
    return m.group(1)


def _prebuilt(build):
    """The package `make check` builds beside the tests (it writes deb.rc,
    `make deb`'s exit status, when done): waited for, bounded."""
    rc = build / "deb.rc"
    deadline = time.monotonic() + 1800
    while not rc.exists():
        assert time.monotonic() < deadline, "make deb (started by make check) did not end"
        time.sleep(1)
    log = (build / "deb.log").read_text(errors="replace") if (build / "deb.log").exists() else ""
    assert rc.read_text().strip() == "0", log[-6000:]


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """`make deb` into a build folder of this module's own, or the one that
    `make check` built meanwhile (SMTPGATE_DEB_PREBUILT: its BUILD folder)."""
    pre = os.environ.get("SMTPGATE_DEB_PREBUILT")
    if pre:
        build = pathlib.Path(pre)
        _prebuilt(build)
    else:
        build = tmp_path_factory.mktemp("debbuild")
        r = subprocess.run(["make", "--no-print-directory", "deb", f"BUILD={build}", "JOBS=2"],
                           cwd=ROOT, capture_output=True, text=True, timeout=3600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    debs = sorted((build / "deb").glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


def _purge():
    return subprocess.run(["dpkg", "--purge", PKG], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def installed(deb):
    if _installed():
        pytest.skip("smtpgate is installed on this machine already: not touched")
    made = [p for p in SNAKEOIL if not p.exists()]
    try:
        r = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert r.returncode == 0, r.stdout + r.stderr
        yield deb
    finally:
        if _installed() or subprocess.run(["dpkg", "-s", PKG],
                                          capture_output=True).returncode == 0:
            _purge()
        # the snakeoil pair belongs to ssl-cert: gone again only if this made it
        if made:
            for p in SNAKEOIL:
                p.unlink(missing_ok=True)
            subprocess.run(["openssl", "rehash", "/etc/ssl/certs"], capture_output=True)


def test_package_is_named_with_version_and_architecture(deb):
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert deb.name == f"smtpgate_{_version()}_{arch}.deb"
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"],
                          capture_output=True, text=True, check=True).stdout
    assert f"Version: {_version()}" in info
    assert "ssl-cert" in info and "adduser" in info and "libsystemd0" in info


def test_lintian_reports_no_error(deb):
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed")
    r = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)], capture_output=True,
                       text=True, timeout=600)
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E:")]
    assert errors == [], r.stdout
    # lintian exits 0 without errors (warnings do not fail it)
    assert r.returncode == 0, r.stdout + r.stderr


def _mode(p):
    st = p.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name


def test_install_makes_user_files_and_unit(installed):
    pw = pwd.getpwnam("smtpgate")
    assert pw.pw_uid < 1000 and pw.pw_shell == "/usr/sbin/nologin"
    assert _mode(SPOOL) == (0o700, "smtpgate")
    assert _mode(PASSWD) == (0o600, "root") and PASSWD.read_text() == ""
    assert _mode(CONF) == (0o644, "root")
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", PKG],
                               capture_output=True, text=True, check=True).stdout
    assert str(CONF) in conffiles and "/etc/logrotate.d/smtpgate" in conffiles
    assert CONF.read_bytes() == (ROOT / "debian" / "smtpgate.conf").read_bytes()
    assert UNIT.read_bytes() == (ROOT / "contrib" / "systemd" / "smtpgate.service").read_bytes()
    # enabled (deb-systemd-helper does it without a running systemd)
    assert pathlib.Path("/etc/systemd/system/multi-user.target.wants/smtpgate.service").exists()
    for page in ("man8/smtpgate.8.gz", "man5/smtpgate.conf.5.gz", "man5/smtpgate-passwd.5.gz"):
        assert (pathlib.Path("/usr/share/man") / page).is_file(), page
    assert all(p.exists() for p in SNAKEOIL)


def test_logrotate_rule_parses_and_names_the_log(installed):
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed")
    r = subprocess.run(["logrotate", "-d", "/etc/logrotate.d/smtpgate"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr
    log = re.search(r"^log\s*=\s*(\S+)", CONF.read_text(), re.M).group(1)
    assert pathlib.Path(log).parent == LOGDIR and "/var/log/smtpgate/*.log" in r.stderr


def test_installed_config_passes_check(installed):
    r = subprocess.run(["/usr/sbin/smtpgate", "serve", "-c", str(CONF), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout


def test_installed_unit_verifies_and_may_write_where_the_config_writes(installed):
    r = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    unit = UNIT.read_text()
    writable = re.search(r"^ReadWritePaths=(.*)$", unit, re.M).group(1).split()
    writable += ["/var/log/" + d for d in re.findall(r"^LogsDirectory=(\S+)", unit, re.M)]
    conf = CONF.read_text()
    for path in (re.search(r"^spool\s*=\s*(\S+)", conf, re.M).group(1),
                 re.search(r"^log\s*=\s*(\S+)", conf, re.M).group(1),
                 re.search(r"^backend\s*=\s*file:(\S+)", conf, re.M).group(1)):
        assert any(path == w or path.startswith(w + "/") for w in writable), path


def _swaks(port, password):
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "-tls",
                           "--auth", "PLAIN", "--auth-user", USER, "--auth-password",
                           password, "--from", USER, "--to", "someone@example.net",
                           "--header", "Subject: from the package test"],
                          capture_output=True, text=True, timeout=120)


def test_installed_server_takes_a_message(installed, tmp_path):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    r = subprocess.run(["/usr/sbin/smtpgate", "user", "add", USER, "-f", str(PASSWD),
                        "--password-stdin"], input=PASSWORD + "\n", text=True,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert _mode(PASSWD) == (0o600, "root")
    # the installed configuration, on loopback ports of this test
    ports = {"587": free_port(), "465": free_port()}
    conf = re.sub(r"^address = \*:(587|465)$", lambda m: f"address = 127.0.0.1:{ports[m.group(1)]}",
                  CONF.read_text(), flags=re.M)
    assert conf.count("127.0.0.1:") == 2
    copy = tmp_path / "smtpgate.conf"
    copy.write_text(conf)
    unit = UNIT.read_text()
    pre, start = (shlex.split(re.search(rf"^{k}=(.*)$", unit, re.M).group(1))
                  for k in ("ExecStartPre", "ExecStart"))
    pre = [str(copy) if a == str(CONF) else a for a in pre]
    start = [str(copy) if a == str(CONF) else a for a in start]
    assert start[0] == "/usr/sbin/smtpgate" and str(copy) in start
    notify = NotifySocket(tmp_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    r = subprocess.run(pre, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(start, env=env, stdout=err, stderr=subprocess.STDOUT)
    try:
        got = notify.recv(60)
        assert got is not None and got[1].get("READY") == "1", (tmp_path / "stderr.txt").read_text()
        bad = _swaks(ports["587"], "not the password")
        assert bad.returncode != 0 and "535" in bad.stdout, bad.stdout[-1500:]
        ok = _swaks(ports["587"], PASSWORD)
        assert ok.returncode == 0, ok.stdout[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert notify.recv(60)[1].get("STOPPING") == "1"
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    # in the installed spool, the smtpgate user's
    queued = [p for p in (SPOOL / "queue").iterdir() if not p.name.startswith(".")]
    assert len(queued) == 1 and _mode(queued[0]) == (0o600, "smtpgate")
    assert b"from the package test" in queued[0].read_bytes()
    listed = subprocess.run(["/usr/sbin/smtpgate", "queue", "list", "-c", str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and queued[0].name in listed.stdout, listed.stdout


def test_remove_keeps_data_purge_removes_it(installed):
    r = subprocess.run(["dpkg", "--remove", PKG], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not pathlib.Path("/usr/sbin/smtpgate").exists()
    assert SPOOL.is_dir() and PASSWD.is_file() and CONF.is_file()
    pwd.getpwnam("smtpgate")
    r = _purge()
    assert r.returncode == 0, r.stdout + r.stderr
    assert not SPOOL.exists() and not PASSWD.exists() and not CONF.exists()
    assert not LOGDIR.exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("smtpgate")
    assert not pathlib.Path("/etc/systemd/system/multi-user.target.wants/smtpgate.service").exists()
