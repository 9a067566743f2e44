"""The one rule of every `--json` document (smtpgate(8), "JSON output"):
numbers are JSON numbers, never strings of digits; times are RFC 3339 UTC
strings ("2026-12-07T11:05:20Z") or null, never epoch numbers. Checked over
the output of each command that has --json: queue (list, show, hold,
release, del), user list, ban (list, add, del; on the state file and through
a running server), probe, dns and audit."""
import json
import re
import smtplib
import subprocess

from conftest import PASSWORD, SMTPGATE, USER, free_port, wait_for
from test_dns import dns, run_dns  # noqa: F401 (the nsd fixture)

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
DIGITS = re.compile(r"-?\d+(\.\d+)?")
TIME_KEYS = {"arrival", "next_try", "warned", "when", "until", "last", "created", "expires",
             "time", "not_before", "not_after"}
NUMBER_KEYS = {"port", "size", "code", "attempts", "seconds", "offences", "line", "ms", "bits",
               "max_age", "server_pid", "depth", "preference"}
# strings that are a peer's or a file's own text, digits or not
TEXT_KEYS = {"text", "value", "reason", "banner", "evidence", "id", "subject", "issuer",
             "names", "record", "error", "label", "arg"}


def violations(doc, path="$"):
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{path}.{k}"
            if k in TIME_KEYS and not (v is None or (isinstance(v, str) and RFC3339.fullmatch(v))):
                out.append(f"{p}: {v!r} is not an RFC 3339 UTC time or null")
            if k in NUMBER_KEYS and v is not None and (
                    isinstance(v, bool) or not isinstance(v, (int, float))):
                out.append(f"{p}: {v!r} is not a number")
            if isinstance(v, str) and k not in TEXT_KEYS and DIGITS.fullmatch(v):
                out.append(f"{p}: {v!r} is a number written as a string")
            out += violations(v, p)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += violations(v, f"{path}[{i}]")
    return out


def json_of(*args, input=None, ok=(0, 1)):
    r = subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=120,
                       input=input)
    assert r.returncode in ok, (args, r.returncode, r.stderr)
    return json.loads(r.stdout)


def assert_contract(doc, what):
    v = violations(doc)
    assert not v, f"{what}:\n" + "\n".join(v)


def test_the_checker_catches_both_kinds():
    """The rule's own check fails on the old forms, so the tests below can."""
    assert violations({"port": "3999"}) and violations({"until": 1700000000})
    assert violations({"created": "1700000000"}) and violations({"nested": [{"seconds": "5"}]})
    assert not violations({"port": 587, "until": "2026-12-07T11:05:20Z", "expires": None})


def test_queue_user_ban_audit_and_probe(make_server, pki, tmp_path):
    admin = free_port()
    s = make_server(extra=f"[admin]\naddress = 127.0.0.1:{admin}\n").start()
    conf = str(s.conf)
    # a queued message, an app password with an expiry and a last use
    with smtplib.SMTP("127.0.0.1", s.mx, timeout=10) as c:
        c.sendmail("a@example.net", ["bob@example.test"], "Subject: j\r\n\r\nbody\r\n")
    subprocess.run([SMTPGATE, "user", "app-password", "add", USER, "phone", "-f",
                    str(s.users), "--expires", "2099-12-31"],
                   capture_output=True, text=True, check=True, timeout=30)

    docs = {}
    docs["queue list"] = json_of("queue", "list", "-c", conf, "--json")
    qid = docs["queue list"]["messages"][0]["id"]
    assert RFC3339.fullmatch(docs["queue list"]["messages"][0]["arrival"])
    docs["queue show"] = json_of("queue", "show", qid, "-c", conf, "--json")
    assert isinstance(docs["queue show"]["waits_for_flush"], bool)
    docs["queue hold"] = json_of("queue", "hold", qid, "-c", conf, "--json")
    docs["queue release"] = json_of("queue", "release", qid, "-c", conf, "--json")
    # bans through the running server
    docs["ban add (server)"] = json_of("ban", "add", "192.0.2.1", "-c", conf, "--json")
    assert docs["ban add (server)"]["source"] == "server"
    docs["ban list (server)"] = json_of("ban", "list", "-c", conf, "--json")
    ban = docs["ban list (server)"]["bans"][0]
    assert RFC3339.fullmatch(ban["until"]) and isinstance(ban["seconds"], int)
    docs["ban del (server)"] = json_of("ban", "del", "192.0.2.1", "-c", conf, "--json")
    docs["audit"] = json_of("audit", "-c", conf, "--json")
    docs["probe"] = json_of("probe", f"127.0.0.1:{s.submission}", "--starttls", "--cafile",
                            str(pki.root), "--user", USER, "--password-stdin", "--json",
                            input=PASSWORD + "\n")
    assert docs["probe"]["port"] == s.submission
    chain = docs["probe"]["tls"]["chain"]
    assert chain and all(RFC3339.fullmatch(c["not_after"]) for c in chain)
    # the probe logged in with the main password: its last use is recorded
    def listed():
        doc = json_of("user", "list", "-f", str(s.users), "--json")
        main = [c for c in doc["credentials"] if c["label"] is None][0]
        return doc if main["last_use"] is not None else None
    docs["user list"] = wait_for(listed, timeout=15, what="a last use")
    creds = {c["label"]: c for c in docs["user list"]["credentials"]}
    assert creds["phone"]["expires"] == "2100-01-01T00:00:00Z"
    assert RFC3339.fullmatch(creds["phone"]["created"])
    assert RFC3339.fullmatch(creds[None]["last_use"]["time"])
    docs["queue del"] = json_of("queue", "del", qid, "-c", conf, "--json")
    # bans on the state file, the server stopped
    assert s.stop() == 0
    docs["ban add (file)"] = json_of("ban", "add", "192.0.2.0/24", "-c", conf, "--json")
    assert docs["ban add (file)"]["source"] == "state_file"
    assert RFC3339.fullmatch(docs["ban add (file)"]["until"])
    docs["ban list (file)"] = json_of("ban", "list", "-c", conf, "--all", "--json")
    assert RFC3339.fullmatch(docs["ban list (file)"]["bans"][0]["last"])
    docs["ban del (file)"] = json_of("ban", "del", "192.0.2.0/24", "-c", conf, "--json")
    for what, doc in docs.items():
        assert_contract(doc, what)


def test_dns(dns):  # noqa: F811
    for domain in ("good.test", "mtasts.test", "signed.test", "nomx.test"):
        _, doc = run_dns(dns, domain)
        assert_contract(doc, f"dns {domain}")
