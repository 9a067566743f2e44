"""The readable report of `smtpgate probe`: the result line and the findings
come first and the transcript last (a working session is some 200 lines of
it), the result line again at the very end; -q/--quiet prints the findings
alone. Against smtpgate itself, working and with a wrong password.
"""
import json
import os
import re
import subprocess

from conftest import PASSWORD, SMTPGATE, USER

FINDING_HEAD = re.compile(r"^\[(error|warning|info)\] ([a-z0-9-]+)$")


def run_probe(*args, stdin=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SMTP")}
    r = subprocess.run([SMTPGATE, "probe", *[str(a) for a in args]], env=e, input=stdin,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def finding_ids(text):
    return [m.group(2) for line in text.splitlines() if (m := FINDING_HEAD.match(line))]


def only_findings(text):
    """True when every line belongs to a finding block of findings_print."""
    for line in text.splitlines():
        if line and not (FINDING_HEAD.match(line) or line.startswith(("  seen:", "  cause:",
                                                                       "  fix:"))):
            return False
    return True


def test_working_session_result_first_transcript_last(server, pki):
    rc, out, err = run_probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                             "--user", USER, "--password-stdin", "--from", USER,
                             "--to", "bob@example.test", stdin=PASSWORD + "\n")
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert lines[0].startswith(f"smtpgate probe 127.0.0.1 port {server.submission}"), lines[:3]
    assert lines[1] == "Result: no problems found", lines[:3]
    head = lines.index("Transcript (S: received, C: sent, *: what the probe did):")
    summary = "\n".join(lines[:head])
    # everything a reader wants is above the transcript
    assert "Banner: 220 " in summary and "TLS: TLSv1." in summary, summary
    assert "AUTH PLAIN: ok" in summary and "Test message: accepted" in summary, summary
    transcript = lines[head + 1:]
    assert len(transcript) > 20, transcript
    assert any(" C: STARTTLS" in t for t in transcript), transcript
    assert [t for t in transcript if t][-1] == "Result: no problems found"
    assert PASSWORD not in out


def test_quiet_working_session_says_only_that(server, pki):
    for flag in ("-q", "--quiet"):
        rc, out, err = run_probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root, flag,
                                 "--user", USER, "--password-stdin", stdin=PASSWORD + "\n")
        assert rc == 0, (out, err)
        assert out == "No problems found.\n", out
        assert err == ""


def test_quiet_prints_the_findings_alone(server, pki):
    args = (f"127.0.0.1:{server.submission}", "--cafile", pki.root, "--user", USER,
            "--password-stdin")
    rc, out, err = run_probe(*args, "--quiet", stdin="wrong\n")
    assert rc == 1, (out, err)
    assert only_findings(out), out
    assert "auth-credentials-invalid" in finding_ids(out), out
    assert "S: 220" not in out and "EHLO" not in out
    # the same findings, in the same order, as the full report and --json
    rc2, full, _ = run_probe(*args, stdin="wrong\n")
    assert rc2 == 1
    assert finding_ids(full) == finding_ids(out)
    rc3, js, _ = run_probe(*args, "--json", stdin="wrong\n")
    assert rc3 == 1
    assert {f["id"] for f in json.loads(js)["findings"]} == set(finding_ids(out))


def test_findings_and_result_above_the_transcript(server, pki):
    rc, out, err = run_probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                             "--user", USER, "--password-stdin", stdin="wrong\n")
    assert rc == 1, (out, err)
    lines = out.splitlines()
    assert re.match(r"^Result: 1 error\b.*\(auth-credentials-invalid\b", lines[1]), lines[:3]
    head = lines.index("Transcript (S: received, C: sent, *: what the probe did):")
    first_finding = next(i for i, line in enumerate(lines) if FINDING_HEAD.match(line))
    assert first_finding < head
    assert not any(FINDING_HEAD.match(line) for line in lines[head:])
    assert [t for t in lines if t][-1] == lines[1]


def test_quiet_does_not_change_json(server, pki):
    rc, out, err = run_probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root, "-q",
                             "--json")
    assert rc == 0, (out, err)
    doc = json.loads(out)
    assert doc["transcript"] and doc["findings"] == []
