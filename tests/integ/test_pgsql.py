"""[auth] backend = pgsql:CONNINFO against a real PostgreSQL (initdb in a
temporary folder, run as the postgres system user as PostgreSQL requires)
shared by two smtpgate nodes: rows inserted, changed, locked and deleted
count at the next AUTH on every node; PostgreSQL down gives 454 4.7.0, and
AUTH works again once it is back, without restarting smtpgate.

The schema and query are those of doc/pgsql.md.
"""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import SMTPGATE, free_port

PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")
DB_PASSWORD = "db-Secret-4711"
MECHS = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN"
USER = "dora@example.test"
PASSWORD = "dora's long password"
AUTH_OK = "235 2.7.0"
AUTH_INVALID = "535 5.7.8"
AUTH_TEMP = "454 4.7.0"

SCHEMA = """
CREATE TABLE credentials (
    id         bigserial PRIMARY KEY,
    login      text NOT NULL,
    credential text NOT NULL,
    label      text,
    senders    text,
    locked     boolean NOT NULL DEFAULT false,
    expires    timestamptz,
    created    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credentials_login ON credentials (login);
CREATE ROLE smtpgate LOGIN PASSWORD '%s';
GRANT SELECT ON credentials TO smtpgate;
""" % DB_PASSWORD

QUERY = ("SELECT login, credential, label, senders, locked, "
         "extract(epoch FROM expires) AS expires, extract(epoch FROM created) AS created "
         "FROM credentials WHERE login = $1 ORDER BY label NULLS FIRST, id")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (PGBIN / "initdb").exists(),
    reason="needs root (to run PostgreSQL as postgres) and PostgreSQL 15")


class Postgres:
    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sg-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")

    def as_pg(self, *cmd, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                              capture_output=True, text=True, timeout=60, **kw)

    def init(self):
        self.as_pg(str(PGBIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8")
        self.start()
        self.as_pg(str(PGBIN / "createdb"), "-h", str(self.dir), "-p", str(self.port), "mail")
        self.sql(SCHEMA)

    def start(self):
        self.as_pg(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                   str(self.dir / "pg.log"), "start", "-o",
                   f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")

    def stop(self):
        self.as_pg(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def sql(self, text):
        return self.as_pg(str(PGBIN / "psql"), "-h", str(self.dir), "-p", str(self.port),
                          "-d", "mail", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", text).stdout

    def conninfo(self, port=None):
        return f"host=127.0.0.1 port={port or self.port} dbname=mail user=smtpgate"


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    p.init()
    yield p
    try:
        p.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(p.dir, ignore_errors=True)


def sql_section(d, query=QUERY):
    pwfile = d / "db-password"
    pwfile.write_text(DB_PASSWORD + "\n")
    pwfile.chmod(0o600)
    return f"\n[sql]\nquery = {query}\npassword_file = {pwfile}\ntimeout = 3s\n"


@pytest.fixture
def nodes(make_server, pg, tmp_path):
    out = []
    for i in range(2):
        d = tmp_path / f"pw{i}"
        d.mkdir()
        s = make_server(backend="pgsql:" + pg.conninfo(), users=[], mechanisms=MECHS,
                        extra=sql_section(d))
        out.append(s.start())
    yield out
    for s in out:
        text = s.log.read_text() + s.stderr_text()
        assert DB_PASSWORD not in text, "the database password reached a log"


def user_hash(password, scheme=None):
    cmd = [SMTPGATE, "user", "hash", "--password-stdin"]
    if scheme:
        cmd += ["--scheme", scheme]
    r = subprocess.run(cmd, input=password + "\n", capture_output=True, text=True, check=True)
    return r.stdout.strip().splitlines()[-1]


def insert(pg, login, password, scheme=None, extra_cols="", extra_vals=""):
    cred = user_hash(password, scheme)
    assert "'" not in cred
    return pg.sql(f"INSERT INTO credentials (login, credential{extra_cols}) "
                  f"VALUES ('{login}', '{cred}'{extra_vals}) RETURNING id").strip()


def plain(srv, user, password, mech="PLAIN", sender=None):
    cmd = ["swaks", "--server", f"127.0.0.1:{srv.submission}", "--tls",
           "--auth", mech, "--auth-user", user, "--auth-password", password,
           "--timeout", "20"]
    if sender:
        cmd += ["--from", sender, "--to", "rcpt@example.test", "--quit-after", "MAIL"]
    else:
        cmd += ["--quit-after", "AUTH"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
    return r.stdout + r.stderr


def scram_plus(srv, user, password):
    cmd = ["gsasl", "--client", "--smtp", "--mechanism", "SCRAM-SHA-256-PLUS",
           "--connect", f"127.0.0.1:{srv.submission}", "-a", user, "-p", password,
           "--quiet", "--starttls", "--x509-ca-file", str(srv.pki.root)]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)


def test_inserted_user_logs_in_on_every_node(pg, nodes):
    insert(pg, USER, PASSWORD, extra_cols=", senders",
           extra_vals=", 'dora@other.test, @dora.test'")
    for n in nodes:
        r = scram_plus(n, USER, PASSWORD)
        assert r.returncode == 0, r.stdout + r.stderr
        ev = n.wait_event("auth", lambda e: e.get("result") == "ok" and
                          e.get("mechanism") == "SCRAM-SHA-256-PLUS")
        assert ev["user"] == USER
        assert AUTH_OK in plain(n, USER, PASSWORD)
        assert AUTH_OK in plain(n, USER, PASSWORD, mech="LOGIN")
        # the senders column: another address the user may send as
        out = plain(n, USER, PASSWORD, sender="x@dora.test")
        assert "250 2.1.0" in out, out
        out = plain(n, USER, PASSWORD, sender="x@elsewhere.test")
        assert "553 5.7.1" in out, out
        # wrong passwords and unknown users: 535, never 454
        assert AUTH_INVALID in plain(n, USER, "wrong password")
        assert AUTH_INVALID in plain(n, "nobody@example.test", PASSWORD)
        r = scram_plus(n, USER, "wrong password")
        assert r.returncode != 0
    # a changed row counts at the next AUTH, on every node
    pg.sql(f"UPDATE credentials SET credential = '{user_hash('a new one')}' "
           f"WHERE login = '{USER}'")
    for n in nodes:
        assert AUTH_INVALID in plain(n, USER, PASSWORD)
        assert AUTH_OK in plain(n, USER, "a new one")
        assert scram_plus(n, USER, "a new one").returncode == 0


def test_app_password_row_revoked_at_next_auth(pg, nodes):
    login = "erin@example.test"
    insert(pg, login, "main password")
    app = insert(pg, login, "phone app password", extra_cols=", label",
                 extra_vals=", 'phone'")
    a, b = nodes
    assert AUTH_OK in plain(a, login, "phone app password")
    ev = a.wait_event("auth", lambda e: e.get("result") == "ok" and e.get("user") == login)
    assert ev["user"] == login
    assert AUTH_OK in plain(b, login, "main password")
    # locked on one node's behalf: refused at the next AUTH on the other
    pg.sql(f"UPDATE credentials SET locked = true WHERE id = {app}")
    assert AUTH_INVALID in plain(b, login, "phone app password")
    assert AUTH_OK in plain(b, login, "main password")
    pg.sql(f"UPDATE credentials SET locked = false WHERE id = {app}")
    assert AUTH_OK in plain(a, login, "phone app password")
    # expired
    pg.sql(f"UPDATE credentials SET expires = now() - interval '1 minute' WHERE id = {app}")
    assert AUTH_INVALID in plain(a, login, "phone app password")
    pg.sql(f"UPDATE credentials SET expires = now() + interval '1 day' WHERE id = {app}")
    assert AUTH_OK in plain(b, login, "phone app password")
    # deleted
    pg.sql(f"DELETE FROM credentials WHERE id = {app}")
    assert AUTH_INVALID in plain(a, login, "phone app password")
    assert AUTH_INVALID in plain(b, login, "phone app password")
    assert AUTH_OK in plain(a, login, "main password")


@pytest.mark.parametrize("scheme", ["SCRAM-SHA-256", "ARGON2ID", "SHA512-CRYPT", "BLF-CRYPT"])
def test_user_hash_output_works_for_each_scheme(pg, make_server, tmp_path, scheme):
    login = f"{scheme.lower()}@example.test"
    insert(pg, login, "pw of " + scheme, scheme=scheme)
    s = make_server(backend="pgsql:" + pg.conninfo(), users=[], mechanisms=MECHS,
                    extra=sql_section(tmp_path)).start()
    assert AUTH_OK in plain(s, login, "pw of " + scheme)
    assert AUTH_INVALID in plain(s, login, "not the pw")


def test_postgres_down_gives_454_then_recovers(pg, nodes):
    login = "fred@example.test"
    insert(pg, login, PASSWORD)
    a, b = nodes
    assert AUTH_OK in plain(a, login, PASSWORD)
    pg.stop()
    try:
        for n in nodes:
            out = plain(n, login, PASSWORD)
            assert AUTH_TEMP in out and AUTH_INVALID not in out, out
            out = plain(n, login, "wrong password")
            assert AUTH_TEMP in out and AUTH_INVALID not in out, out
            r = scram_plus(n, login, PASSWORD)
            assert r.returncode != 0
            n.wait_event("auth", lambda e: e.get("mechanism") == "SCRAM-SHA-256-PLUS" and
                         e.get("user") == login and e.get("code") == 454)
        down = a.wait_event("pgsql_down")
        # where, without the password (which is in password_file anyway)
        assert down["conninfo"] == pg.conninfo()
    finally:
        pg.start()
    deadline = time.monotonic() + 20
    for n in nodes:
        while True:
            out = plain(n, login, PASSWORD)
            if AUTH_OK in out or time.monotonic() > deadline:
                break
            assert AUTH_INVALID not in out, out
            time.sleep(0.5)
        assert AUTH_OK in out, out
        assert scram_plus(n, login, PASSWORD).returncode == 0
    a.wait_event("pgsql_up")


def run_check(conf, *args):
    return subprocess.run([SMTPGATE, *args, "-c", str(conf)], capture_output=True,
                          text=True, timeout=60)


def test_serve_check_rejects_query_without_dollar_one(pg, make_server, tmp_path):
    s = make_server(backend="pgsql:" + pg.conninfo(), users=[], mechanisms=MECHS,
                    extra=sql_section(tmp_path, "SELECT credential FROM credentials "
                                      "WHERE login = 'x'"))
    r = run_check(s.conf, "serve", "--check")
    assert r.returncode == 2
    assert "[sql] query: the query must take the login as $1" in r.stderr
    text = s.conf.read_text().replace("login = 'x'", "login = $1 OR login = $2")
    s.conf.write_text(text)
    r = run_check(s.conf, "serve", "--check")
    assert r.returncode == 2 and "may only use $1" in r.stderr
    # '$2' in a string is not a parameter
    s.conf.write_text(text.replace("OR login = $2", "OR login = '$2'"))
    r = run_check(s.conf, "serve", "--check")
    assert r.returncode == 0, r.stderr
    # the backend's syntax; the message never shows the conninfo
    s.conf.write_text(text.replace("backend = pgsql:", "backend = postgresql:"))
    r = run_check(s.conf, "serve", "--check")
    assert r.returncode == 2 and "pgsql:CONNINFO" in r.stderr
    assert "dbname=mail" not in r.stderr


def test_audit_findings(pg, make_server, tmp_path):
    def audit(backend, query=QUERY):
        d = tmp_path / f"a{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        s = make_server(backend=backend, users=[], mechanisms=MECHS,
                        extra=sql_section(d, query))
        r = run_check(s.conf, "audit", "--json")
        return r.stdout + r.stderr

    out = audit("pgsql:" + pg.conninfo())
    assert "auth-pgsql" not in out, out
    out = audit("pgsql:" + pg.conninfo(port=free_port()))
    assert "auth-pgsql-unreachable" in out
    out = audit("pgsql:" + pg.conninfo(), "SELECT credential FROM nosuchtable WHERE x = $1")
    assert "auth-pgsql-query-invalid" in out and "nosuchtable" in out
    out = audit("pgsql:" + pg.conninfo(),
                "SELECT credential AS password FROM credentials WHERE login = $1")
    assert "auth-pgsql-no-credential-column" in out
    out = audit(f"pgsql:{pg.conninfo()} password={DB_PASSWORD}")
    assert "auth-pgsql-password-in-config" in out
    assert DB_PASSWORD not in out
