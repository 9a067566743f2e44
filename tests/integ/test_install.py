"""make install and cmake --install: the files, their modes, the man pages.

The build tree of the binary under test (SMTPGATE_BIN's folder) is installed
into a temporary DESTDIR, with the Makefile's default PREFIX and with another
one, and the installed man pages are rendered the way man(1) shows them.
"""
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from conftest import ROOT, SMTPGATE

BUILD = pathlib.Path(SMTPGATE).resolve().parent

# (path under PREFIX, mode, the source it comes from or None)
FILES = [
    ("sbin/smtpgate", 0o755, None),
    ("share/man/man8/smtpgate.8", 0o644, None),
    ("share/man/man5/smtpgate.conf.5", 0o644, None),
    ("share/man/man5/smtpgate-passwd.5", 0o644, None),
    ("share/smtpgate/smtpgate.conf.example", 0o644, "contrib/smtpgate.conf.example"),
    ("share/smtpgate/fail2ban/filter.d/smtpgate.conf", 0o644,
     "contrib/fail2ban/filter.d/smtpgate.conf"),
    ("share/smtpgate/fail2ban/jail.d/smtpgate.conf", 0o644,
     "contrib/fail2ban/jail.d/smtpgate.conf"),
    ("share/smtpgate/smtpgate.service", 0o644, None),
]

# installed page -> its Markdown source in doc/
PAGES = {
    "share/man/man8/smtpgate.8": "doc/smtpgate.8.md",
    "share/man/man5/smtpgate.conf.5": "doc/smtpgate.conf.5.md",
    "share/man/man5/smtpgate-passwd.5": "doc/passwd.5.md",
}


def _need_build_tree():
    if not (BUILD / "CMakeCache.txt").exists():
        pytest.skip(f"{BUILD} is not a CMake build tree (SMTPGATE_BIN={SMTPGATE})")


@pytest.fixture(scope="module")
def make_installed(tmp_path_factory):
    """`make install DESTDIR=...` with the default PREFIX."""
    _need_build_tree()
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "--no-print-directory", "install", f"BUILD={BUILD}",
                        f"DESTDIR={dest}", "JOBS=2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest / "usr" / "local"


def test_make_install_puts_each_file_with_its_mode(make_installed):
    for rel, mode, src in FILES:
        p = make_installed / rel
        assert p.is_file(), f"{rel} not installed"
        assert stat.S_IMODE(p.stat().st_mode) == mode, f"{rel}: mode {p.stat().st_mode:o}"
        if src is not None:
            assert p.read_bytes() == (ROOT / src).read_bytes(), rel


def test_installed_binary_runs(make_installed):
    exe = make_installed / "sbin" / "smtpgate"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert "serve" in r.stdout and "init" in r.stdout
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("smtpgate ")


def test_installed_unit_names_the_installed_binary(make_installed):
    unit = (make_installed / "share" / "smtpgate" / "smtpgate.service").read_text()
    assert "ExecStart=/usr/local/sbin/smtpgate serve -c /etc/smtpgate/smtpgate.conf\n" in unit
    assert "/usr/sbin/smtpgate" not in unit
    src = (ROOT / "contrib" / "systemd" / "smtpgate.service").read_text()
    assert unit == src.replace("/usr/sbin/smtpgate", "/usr/local/sbin/smtpgate")


def _man(page, *extra):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", *extra, "-l", str(page)], capture_output=True, text=True,
                       env=env, timeout=60)
    # bold and underline are overstrikes (X BACKSPACE X) in a pipe
    r.stdout = re.sub(".\b", "", r.stdout)
    return r


@pytest.mark.parametrize("rel", sorted(PAGES))
def test_man_page_renders_without_warning(make_installed, rel):
    page = make_installed / rel
    r = _man(page, "--warnings")
    assert r.returncode == 0
    assert r.stderr == "", f"{rel}:\n{r.stderr}"
    # the page is the one of its Markdown source: same NAME line, and every
    # section of the Markdown is a section of the page
    md = (ROOT / PAGES[rel]).read_text()
    name_line = re.search(r"^## NAME\n+(.+)$", md, re.M).group(1)
    text = re.sub(r"\s+", " ", r.stdout.replace("\u2010\n", "").replace("-\n", "-"))
    assert re.sub(r"[`]", "", name_line.split("—")[0]).strip() in text
    for h in re.findall(r"^## (.+)$", md, re.M):
        assert re.search(rf"^{re.escape(h)}$", r.stdout, re.M), f"{rel}: section {h}"
    # what man shows first is NAME(SECTION)
    title = pathlib.Path(rel).name
    stem, section = title.rsplit(".", 1)
    assert r.stdout.lstrip().startswith(f"{stem}({section})")


@pytest.mark.parametrize("rel", sorted(PAGES))
def test_man_page_passes_mandoc_lint(make_installed, rel):
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc not installed (make deps)")
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(make_installed / rel)],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout + r.stderr == ""


def test_cmake_install_honours_prefix_and_destdir(tmp_path):
    _need_build_tree()
    env = dict(os.environ, DESTDIR=str(tmp_path))
    r = subprocess.run(["cmake", "--install", str(BUILD), "--prefix", "/opt/smtpgate"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for rel, mode, _ in FILES:
        p = tmp_path / "opt" / "smtpgate" / rel
        assert p.is_file(), rel
        assert stat.S_IMODE(p.stat().st_mode) == mode
    assert not (tmp_path / "usr").exists()
