"""`smtpgate dns` against a local authoritative DNS server.

An nsd instance on 127.0.0.1:<free port> serves one zone per case (good,
broken SPF, DMARC, DKIM, MX, MTA-STS, DNSSEC-signed and bogus zones), and
smtpgate is pointed at it with --resolver: libunbound forwards its
recursion-desired queries there and nsd answers them from its zones (no
recursive resolver in between). The signed zones are signed here with
ldns-signzone and their keys given with --trust-anchor, so validation runs
for real without the root; other zones are then simply "insecure".
"""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import SMTPGATE, free_port

pytestmark = pytest.mark.skipif(shutil.which("nsd") is None, reason="nsd not installed")

SOA = "@ IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 300\n@ IN NS ns.{z}.\nns IN A 127.0.0.1\n"


def _dkim_key(d, bits):
    """Public key of a fresh RSA key, base64 DER SubjectPublicKeyInfo,
    split into TXT strings of at most 200 characters."""
    key = d / f"dkim{bits}.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    f"rsa_keygen_bits:{bits}", "-out", str(key)], check=True,
                   capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    import base64
    b64 = base64.b64encode(der).decode()
    return " ".join(f'"{b64[i:i + 200]}"' for i in range(0, len(b64), 200))


def _zones(d):
    k2048 = _dkim_key(d, 2048)
    k512 = _dkim_key(d, 512)
    k1024 = _dkim_key(d, 1024)
    good_mail = """@ IN MX 10 mx
mx IN A 192.0.2.10
@ IN TXT "v=spf1 mx ip4:192.0.2.0/24 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@{z}"
"""
    zones = {
        "good.test": good_mail + 'sel1._domainkey IN TXT ( "v=DKIM1; k=rsa; p=" ' + k2048
        + " )\n"
        # a subdomain that exists (it has an address) but publishes no DMARC
        + "sub IN A 192.0.2.11\n",
        # 11 DNS-querying terms: mx + 5 includes + an "a" in each
        "badspf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx include:i1.{z} include:i2.{z} include:i3.{z} include:i4.{z} include:i5.{z} -all"
i1 IN TXT "v=spf1 a -all"
i2 IN TXT "v=spf1 a -all"
i3 IN TXT "v=spf1 a -all"
i4 IN TXT "v=spf1 a -all"
i5 IN TXT "v=spf1 a -all"
i1 IN A 192.0.2.1
i2 IN A 192.0.2.2
i3 IN A 192.0.2.3
i4 IN A 192.0.2.4
i5 IN A 192.0.2.5
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "voidspf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 a:gone1.{z} a:gone2.{z} include:gone3.{z} -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "synspf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 ip4:192.0.2.300 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "plusall.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 ptr +all"
@ IN TXT "some-other-verification=abc"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "twospf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "baddmarc.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 -all"
_dmarc IN TXT "v=DMARC1; p=reject; pct=150; rua=mailto:dmarc@{z}"
""",
        # TXT records plainly meant as SPF or DMARC that receivers do not
        # take for one: named for what is wrong, never "missing"
        "typospf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf2 mx -all"
@ IN TXT "google-site-verification=abc"
_dmarc IN TXT "p=reject; v=DMARC1; rua=mailto:dmarc@{z}"
""",
        "spacespf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
@ IN TXT " v=spf1 ip4:192.0.2.0/24 -all"
_dmarc IN TXT "v=dmarc1; p=reject; rua=mailto:dmarc@{z}"
""",
        "quotedspf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "\\"v=spf1 mx -all\\""
_dmarc IN TXT "v=DMARC 1; p=reject; rua=mailto:dmarc@{z}"
""",
        # two SPF records, one in capitals: still two (RFC 7208 4.5)
        "casespf.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
@ IN TXT "V=SPF1 ip4:192.0.2.0/24 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "policytypo.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
_dmarc IN TXT "v=DMARC1; p=rejected; rua=mailto:dmarc@{z}"
""",
        "noversion.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
_dmarc IN TXT "p=quarantine; rua=mailto:dmarc@{z}"
""",
        "dmarctypo.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx -all"
_dmarc IN TXT "v=DMARC2; p=reject; rua=mailto:dmarc@{z}"
""",
        "nonedmarc.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 mx ~all"
_dmarc IN TXT "v=DMARC1; p=none"
""",
        "weakdkim.test": good_mail
        + 'weak._domainkey IN TXT ( "v=DKIM1; k=rsa; p=" ' + k512 + " )\n"
        + 'short._domainkey IN TXT ( "v=DKIM1; t=y; p=" ' + k1024 + " )\n"
        + 'old._domainkey IN TXT "v=DKIM1; k=rsa; p="\n'
        + 'broken._domainkey IN TXT "v=DKIM1; k=dsa; p=AAAA"\n',
        "nomx.test": '@ IN TXT "v=spf1 -all"\n',
        "nullmx.test": """@ IN MX 0 .
@ IN TXT "v=spf1 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "badmx.test": """@ IN MX 10 alias
@ IN MX 20 192.0.2.1.
@ IN MX 30 noaddr
alias IN CNAME mx.good.test.
noaddr IN TXT "no address here"
@ IN TXT "v=spf1 -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        "mtasts.test": good_mail + """_mta-sts IN TXT "v=STSv1; id=20240101T000000;"
mta-sts IN A 127.0.0.1
_25._tcp.mx IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
""",
        # DMARC that applies to half of the failing mail, with a tag
        # nobody knows, and report addresses elsewhere: one authorized by
        # its domain, one not (RFC 7489 7.1)
        "halfdmarc.test": good_mail.replace(
            '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"',
            '_dmarc IN TXT "v=DMARC1; p=quarantine; pct=50; foo=bar; '
            'rua=mailto:d@good.test,mailto:d@reports.test"'),
        "reports.test": '@ IN TXT "v=spf1 -all"\n',
        # an MX host whose address has no PTR record
        "noptr.test": good_mail.replace("mx IN A 192.0.2.10", "mx IN A 192.0.2.77"),
        # an SPF include that comes back to the top
        "spfloop.test": """@ IN MX 10 mx.good.test.
@ IN TXT "v=spf1 include:inc.{z} -all"
inc IN TXT "v=spf1 ip4:192.0.2.1 include:spfloop.test -all"
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{z}"
""",
        # broken TXT records for TLS-RPT and MTA-STS, a TLSA record whose
        # digest is too short and one with a PKIX usage SMTP ignores
        "badrpt.test": good_mail.replace(
            '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@{z}"',
            '_smtp._tls IN TXT "v=TLSRPTv1; rua=ftp://tls.{z}/reports"')
        + '_mta-sts IN TXT "v=STSv1; id=not_an_id!;"\n'
        + "_25._tcp.mx IN TLSA 3 1 1 0123456789abcdef\n"
        + "_25._tcp.mx IN TLSA 1 1 1 "
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        # MTA-STS whose policy server is the test's HTTPS server
        "sts.test": good_mail + """_mta-sts IN TXT "v=STSv1; id=20250101T000000;"
mta-sts IN A 127.0.0.1
""",
        "2.0.192.in-addr.arpa": "10 IN PTR mx.good.test.\n",
    }
    zones["good.test"] += "halfdmarc.test._report._dmarc IN TXT \"v=DMARC1\"\n"
    signed = {
        "signed.test": good_mail + "_25._tcp.mx IN TLSA 3 1 1 "
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        "bogus.test": good_mail,
    }
    return zones, signed


def _sign(d, name, text, expired):
    zf = d / f"{name}.zone"
    zf.write_text(text)
    key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name], cwd=d,
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    args = ["ldns-signzone"]
    if expired:
        args += ["-i", "20200101000000", "-e", "20200201000000"]
    subprocess.run(args + [str(zf), key], cwd=d, check=True, capture_output=True, timeout=60)
    return f"{name}.zone.signed", (d / f"{key}.key").read_text()


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = tmp_path_factory.mktemp("nsd")
    port = free_port()
    zones, signed = _zones(d)
    conf = [
        "server:",
        f"  ip-address: 127.0.0.1@{port}",
        f"  zonesdir: \"{d}\"",
        f"  pidfile: \"{d}/nsd.pid\"",
        "  username: \"\"",
        "  database: \"\"",
        "  chroot: \"\"",
        f"  zonelistfile: \"{d}/zone.list\"",
        f"  xfrdfile: \"{d}/xfrd.state\"",
        f"  logfile: \"{d}/nsd.log\"",
        "  server-count: 1",
        "  verbosity: 1",
        "remote-control:",
        "  control-enable: no",
    ]
    for name, body in zones.items():
        (d / f"{name}.zone").write_text(f"$ORIGIN {name}.\n$TTL 300\n"
                                        + SOA.format(z=name) + body.format(z=name))
        conf += ["zone:", f"  name: {name}", f"  zonefile: {name}.zone"]
    anchors = []
    for name, body in signed.items():
        zf, dnskey = _sign(d, name, f"$ORIGIN {name}.\n$TTL 300\n" + SOA.format(z=name)
                           + body.format(z=name), expired=name.startswith("bogus"))
        anchors.append(dnskey)
        conf += ["zone:", f"  name: {name}", f"  zonefile: {zf}"]
    (d / "anchors.key").write_text("".join(anchors))
    (d / "nsd.conf").write_text("\n".join(conf) + "\n")
    proc = subprocess.Popen(["nsd", "-d", "-c", str(d / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError("nsd exited: " + (d / "nsd.log").read_text())
            r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port),
                                "@127.0.0.1", "good.test", "MX"],
                               capture_output=True, text=True, timeout=10)
            if "mx.good.test" in r.stdout:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("nsd did not answer: " + (d / "nsd.log").read_text())
            time.sleep(0.1)
        yield {"port": port, "anchors": d / "anchors.key"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_dns(dns, domain, *extra, anchors=True, text=False):
    args = [SMTPGATE, "dns", domain, "--resolver", f"127.0.0.1:{dns['port']}",
            "--timeout", "3"]
    args += ["--trust-anchor", str(dns["anchors"]) if anchors else "none"]
    if not text:
        args.append("--json")
    r = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=120)
    if text:
        return r, None
    assert r.stdout, r.stderr
    doc = json.loads(r.stdout)
    return r, doc


def ids(doc, severity=None):
    return {f["id"] for f in doc["findings"] if severity is None or f["severity"] == severity}


def test_good_zone_passes(dns):
    r, doc = run_dns(dns, "good.test", "--selector", "sel1")
    assert r.returncode == 0, doc["findings"]
    assert ids(doc, "error") == set()
    # only advice remains: no MTA-STS, an unsigned zone
    assert ids(doc) <= {"mta-sts-missing", "dnssec-unsigned"}, doc["findings"]
    assert doc["domain"] == "good.test"
    assert doc["mx"][0]["host"] == "mx.good.test."
    assert doc["mx"][0]["a"][0] == {"address": "192.0.2.10", "ptr": ["mx.good.test."]}
    assert doc["spf"]["lookups"] == 1 and doc["spf"]["all"] == "-"
    assert doc["dmarc"]["policy"] == "reject"
    assert doc["dkim"]["bits"] == 2048 and doc["dkim"]["key_type"] == "rsa"
    assert doc["tls_rpt"]["rua"] == ["mailto:tls@good.test"]
    assert doc["dnssec"]["status"] == "insecure"
    for f in doc["findings"]:
        assert f["cause"] and f["fix"] and f["severity"] in ("info", "warning", "error")


def test_good_zone_text_report(dns):
    r, _ = run_dns(dns, "good.test", "--selector", "sel1", text=True)
    assert r.returncode == 0
    assert "mx.good.test." in r.stdout and "v=spf1 mx" in r.stdout
    assert "rsa key, 2048 bits" in r.stdout


def test_no_trust_anchor_is_reported(dns):
    r, doc = run_dns(dns, "good.test", anchors=False)
    assert r.returncode == 0
    assert "dnssec-no-anchor" in ids(doc, "info")
    assert doc["dkim"] is None


def test_spf_too_many_lookups(dns):
    r, doc = run_dns(dns, "badspf.test")
    assert r.returncode == 1
    assert "spf-too-many-lookups" in ids(doc, "error")
    assert doc["spf"]["lookups"] == 11
    assert len(doc["spf"]["includes"]) == 5


def test_spf_void_lookups(dns):
    r, doc = run_dns(dns, "voidspf.test")
    assert r.returncode == 1
    assert {"spf-void-lookups", "spf-include-missing"} <= ids(doc, "error")
    assert doc["spf"]["void_lookups"] == 3
    ev = [f["evidence"] for f in doc["findings"] if f["id"] == "spf-void-lookups"][0]
    assert "gone1.voidspf.test" in ev and "gone3.voidspf.test" in ev


def test_spf_syntax(dns):
    r, doc = run_dns(dns, "synspf.test")
    assert r.returncode == 1
    ev = [f["evidence"] for f in doc["findings"] if f["id"] == "spf-syntax"]
    assert ev and "ip4:192.0.2.300" in ev[0]


def test_spf_permissive_all_and_ptr(dns):
    r, doc = run_dns(dns, "plusall.test")
    assert r.returncode == 1
    assert "spf-permissive-all" in ids(doc, "error")
    assert "spf-ptr" in ids(doc, "warning")


def test_spf_multiple(dns):
    r, doc = run_dns(dns, "twospf.test")
    assert r.returncode == 1
    assert "spf-multiple" in ids(doc, "error")


def test_spf_multiple_whatever_the_case(dns):
    r, doc = run_dns(dns, "casespf.test")
    assert r.returncode == 1
    ev = _evidence(doc, "spf-multiple")
    assert ev and "2 TXT records" in ev[0], doc["findings"]
    assert "spf-version-invalid" not in ids(doc)


def test_dmarc_invalid(dns):
    r, doc = run_dns(dns, "baddmarc.test")
    assert r.returncode == 1
    ev = [f["evidence"] for f in doc["findings"] if f["id"] == "dmarc-invalid"]
    assert ev and "pct=150" in ev[0]


def _evidence(doc, fid):
    return [f["evidence"] for f in doc["findings"] if f["id"] == fid]


@pytest.mark.parametrize("domain,spf_severity,spf_why,dmarc_why", [
    # a typo in the version, alone: the domain has no SPF; v=DMARC1 not first
    ("typospf.test", "error", "typo", "not the first tag"),
    # white space before the version, next to a valid record; wrong case
    ("spacespf.test", "warning", "white space before", "in capitals"),
    # quote characters typed into a DNS form; white space inside the version
    ("quotedspf.test", "error", "quote characters", "white space inside"),
])
def test_almost_spf_and_dmarc_are_named(dns, domain, spf_severity, spf_why, dmarc_why):
    r, doc = run_dns(dns, domain)
    assert r.returncode == 1, doc["findings"]
    found = ids(doc)
    assert "spf-missing" not in found and "dmarc-missing" not in found, doc["findings"]
    assert "spf-version-invalid" in ids(doc, spf_severity), doc["findings"]
    ev = _evidence(doc, "spf-version-invalid")
    assert len(ev) == 1 and spf_why in ev[0], ev
    ev = _evidence(doc, "dmarc-invalid")
    assert len(ev) == 1 and dmarc_why in ev[0] and f"_dmarc.{domain}" in ev[0], ev
    assert doc["dmarc"]["record"] is not None and "policy" not in doc["dmarc"]
    # a valid SPF record next to the near one is still used
    assert doc["spf"]["record"] == ("v=spf1 mx -all" if spf_severity == "warning" else None)


def test_almost_spf_text_report(dns):
    r, _ = run_dns(dns, "typospf.test", text=True)
    assert r.returncode == 1
    assert "[error] spf-version-invalid" in r.stdout, r.stdout
    assert "[error] dmarc-invalid" in r.stdout
    assert "spf-missing" not in r.stdout and "dmarc-missing" not in r.stdout


@pytest.mark.parametrize("domain,why", [
    ("policytypo.test", "\"p=\" must be none, quarantine or reject"),
    ("noversion.test", "does not start with \"v=DMARC1\""),
    ("dmarctypo.test", "typo"),
])
def test_malformed_dmarc_is_invalid_not_missing(dns, domain, why):
    r, doc = run_dns(dns, domain)
    assert r.returncode == 1, doc["findings"]
    assert "dmarc-missing" not in ids(doc)
    ev = _evidence(doc, "dmarc-invalid")
    assert len(ev) == 1 and why in ev[0], ev
    assert ids(doc, "error") == {"dmarc-invalid"}, doc["findings"]


def test_dmarc_policy_none(dns):
    r, doc = run_dns(dns, "nonedmarc.test")
    assert r.returncode == 0, doc["findings"]
    assert "dmarc-policy-none" in ids(doc, "warning")
    assert "dmarc-no-rua" in ids(doc, "info")
    # ~all without an enforcing DMARC policy is a warning
    assert "spf-softfail-all" in ids(doc, "warning")


def test_dmarc_missing_falls_back_to_parent(dns):
    # sub.good.test has no _dmarc record: the parent's is used
    r, doc = run_dns(dns, "sub.good.test")
    assert doc["dmarc"]["organizational_fallback"] is True
    assert doc["dmarc"]["policy"] == "reject"
    assert "dmarc-missing" not in ids(doc)
    # no MX but an address: senders fall back to it
    assert "mx-missing" in ids(doc, "warning")


@pytest.mark.parametrize("selector,finding,severity,code", [
    ("weak", "dkim-key-weak", "error", 1),
    ("short", "dkim-key-weak", "warning", 0),
    ("short", "dkim-testing", "warning", 0),
    ("old", "dkim-revoked", "warning", 0),
    ("broken", "dkim-invalid", "error", 1),
    ("nothere", "dkim-missing", "error", 1),
])
def test_dkim(dns, selector, finding, severity, code):
    r, doc = run_dns(dns, "weakdkim.test", "--selector", selector)
    assert finding in ids(doc, severity), doc["findings"]
    assert r.returncode == code


def test_dkim_weak_key_size(dns):
    _, doc = run_dns(dns, "weakdkim.test", "--selector", "weak")
    assert doc["dkim"]["bits"] == 512


def test_no_mx(dns):
    r, doc = run_dns(dns, "nomx.test")
    assert r.returncode == 1
    assert "mx-missing" in ids(doc, "error")
    assert "dmarc-missing" in ids(doc)


def test_null_mx(dns):
    r, doc = run_dns(dns, "nullmx.test")
    assert r.returncode == 0, doc["findings"]
    assert "mx-null" in ids(doc, "info")


def test_bad_mx_hosts(dns):
    r, doc = run_dns(dns, "badmx.test")
    assert r.returncode == 1
    assert {"mx-ip-literal", "mx-no-address"} <= ids(doc, "error")
    assert "mx-cname" in ids(doc, "warning")


def test_mta_sts_policy_unreachable_and_tlsa_without_dnssec(dns):
    r, doc = run_dns(dns, "mtasts.test")
    assert r.returncode == 1
    assert doc["mta_sts"]["id"] == "20240101T000000"
    assert "mta-sts-policy-unreachable" in ids(doc, "error")
    assert "tlsa-without-dnssec" in ids(doc, "warning")
    assert doc["tlsa"][0]["name"] == "_25._tcp.mx.mtasts.test"
    assert doc["tlsa"][0]["dnssec"] == "insecure"


def test_dmarc_pct_unknown_tag_and_unauthorized_report_address(dns):
    r, doc = run_dns(dns, "halfdmarc.test")
    assert {"dmarc-pct", "dmarc-unknown-tag"} <= ids(doc), doc["findings"]
    ev = {f["id"]: f["evidence"] for f in doc["findings"]}
    assert "pct=50" in ev["dmarc-pct"] and "foo" in ev["dmarc-unknown-tag"], ev
    # reports.test has not agreed to receive them; good.test has
    bad = [f["evidence"] for f in doc["findings"] if f["id"] == "dmarc-rua-unauthorized"]
    assert len(bad) == 1 and "d@reports.test" in bad[0], doc["findings"]
    assert "halfdmarc.test._report._dmarc.reports.test" in bad[0], bad


def test_mx_address_without_ptr(dns):
    r, doc = run_dns(dns, "noptr.test")
    found = [f for f in doc["findings"] if f["id"] == "mx-no-ptr"]
    assert len(found) == 1 and "192.0.2.77" in found[0]["evidence"], doc["findings"]
    # the good zone's MX has its PTR
    _, good = run_dns(dns, "good.test")
    assert "mx-no-ptr" not in ids(good)


def test_spf_include_loop(dns):
    r, doc = run_dns(dns, "spfloop.test")
    assert "spf-include-loop" in ids(doc, "error"), doc["findings"]
    assert r.returncode == 1


def test_broken_tls_rpt_mta_sts_and_tlsa_records(dns):
    r, doc = run_dns(dns, "badrpt.test")
    assert {"tls-rpt-invalid", "mta-sts-invalid"} <= ids(doc), doc["findings"]
    tlsa = [f for f in doc["findings"] if f["id"] == "tlsa-invalid"]
    # the short digest is an error, the PKIX usage a warning
    assert sorted(f["severity"] for f in tlsa) == ["error", "warning"], tlsa
    # an invalid TXT record means no policy: it is not fetched
    assert "mta-sts-policy-unreachable" not in ids(doc)
    assert r.returncode == 1


class PolicyServer:
    """https://mta-sts.sts.test/.well-known/mta-sts.txt on 127.0.0.1 (a
    high port), with a certificate from a test CA; the policy text is
    changed by the tests."""

    def __init__(self, d):
        import http.server
        import ssl
        import threading
        from zoo import ZooPKI

        self.pki = ZooPKI(d)
        leaf = self.pki.leaf("mta-sts", names=("mta-sts.sts.test",))
        self.body = b""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(leaf.chain), str(leaf.key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.t.join(5)


@pytest.fixture(scope="module")
def sts(tmp_path_factory):
    s = PolicyServer(tmp_path_factory.mktemp("sts"))
    yield s
    s.stop()


def run_sts(dns, sts, body):
    sts.body = body.encode()
    return run_dns(dns, "sts.test", "--cafile", sts.pki.root_pem,
                   "--mta-sts-port", str(sts.port))


def test_mta_sts_good_policy(dns, sts):
    r, doc = run_sts(dns, sts, "version: STSv1\nmode: enforce\nmx: mx.sts.test\n"
                     "max_age: 604800\n")
    assert doc["mta_sts"]["policy"] == {"mode": "enforce", "max_age": 604800,
                                        "mx": ["mx.sts.test"]}, doc["mta_sts"]
    assert not {i for i in ids(doc) if i.startswith("mta-sts")}, doc["findings"]


def test_mta_sts_policy_in_testing_mode_short_and_not_matching(dns, sts):
    r, doc = run_sts(dns, sts, "version: STSv1\nmode: testing\nmx: *.example.net\n"
                     "max_age: 3600\n")
    assert {"mta-sts-testing", "mta-sts-max-age-short"} <= ids(doc), doc["findings"]
    # in testing mode a mismatch is reported, not enforced: a warning
    assert "mta-sts-mx-mismatch" in ids(doc, "warning"), doc["findings"]


def test_mta_sts_enforced_policy_that_excludes_the_mx_is_an_error(dns, sts):
    r, doc = run_sts(dns, sts, "version: STSv1\nmode: enforce\nmx: *.example.net\n"
                     "max_age: 604800\n")
    assert "mta-sts-mx-mismatch" in ids(doc, "error"), doc["findings"]
    assert r.returncode == 1


def test_mta_sts_policy_that_does_not_parse(dns, sts):
    r, doc = run_sts(dns, sts, "version: STSv2\nmode: sometimes\n")
    assert "mta-sts-policy-invalid" in ids(doc, "error"), doc["findings"]
    assert "mta-sts-policy-unreachable" not in ids(doc)


def test_mta_sts_policy_server_with_untrusted_certificate(dns, sts):
    sts.body = b"version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 604800\n"
    # the system's roots do not know the test CA
    r, doc = run_dns(dns, "sts.test", "--mta-sts-port", str(sts.port))
    assert "mta-sts-policy-unreachable" in ids(doc, "error"), doc["findings"]


@pytest.mark.parametrize("args", [["--mta-sts-port", "0"], ["--mta-sts-port", "x"],
                                  ["--mta-sts-port", "70000"]])
def test_bad_mta_sts_port_is_a_usage_error(args):
    r = subprocess.run([SMTPGATE, "dns", "good.test", *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--mta-sts-port" in r.stderr, r.stderr


def test_signed_zone_is_secure(dns):
    r, doc = run_dns(dns, "signed.test")
    assert doc["dnssec"]["status"] == "secure", doc["findings"]
    assert doc["tlsa"][0]["dnssec"] == "secure"
    assert "tlsa-without-dnssec" not in ids(doc)
    assert "dnssec-unsigned" not in ids(doc)
    assert r.returncode == 0, doc["findings"]


def test_expired_signatures_are_bogus(dns):
    r, doc = run_dns(dns, "bogus.test")
    assert r.returncode == 1
    assert "dnssec-bogus" in ids(doc, "error")


def test_unreachable_resolver_times_out(dns):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    r = subprocess.run([SMTPGATE, "dns", "good.test", "--resolver", f"127.0.0.1:{port}",
                        "--timeout", "1", "--trust-anchor", "none", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 20
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert "dns-timeout" in ids(doc, "error") or "dns-servfail" in ids(doc, "error")


def _silent_resolver():
    """A UDP socket that reads nothing and answers nothing: a resolver that
    never replies (packets are not refused, they go unanswered)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_silent_resolver_one_timeout_finding(dns):
    """Every question times out: one dns-timeout naming them all, nothing
    reported as missing, and "unknown" (not "none") in the report."""
    with _silent_resolver() as s:
        port = s.getsockname()[1]
        base = [SMTPGATE, "dns", "good.test", "--resolver", f"127.0.0.1:{port}", "--timeout",
                "1", "--trust-anchor", "none", "--selector", "sel1"]
        r = subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=120)
        t = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and t.returncode == 1
    doc = json.loads(r.stdout)
    found = [f for f in doc["findings"] if f["id"] == "dns-timeout"]
    assert len(found) == 1, doc["findings"]
    ev = found[0]["evidence"]
    for q in ("good.test MX", "_dmarc.good.test TXT", "good.test TXT",
              "sel1._domainkey.good.test TXT", "_mta-sts.good.test TXT",
              "_smtp._tls.good.test TXT"):
        assert q in ev, ev
    # nothing is called missing for want of an answer
    assert ids(doc) <= {"dns-timeout", "dnssec-no-anchor"}, doc["findings"]
    assert doc["mx"] is None and doc["exists"] is None
    assert doc["spf"]["unknown"] and doc["dmarc"]["unknown"] and doc["dkim"]["unknown"]
    assert doc["dnssec"]["status"] == "unknown"
    assert t.stdout.count("[error] dns-timeout") == 1, t.stdout
    for line in ("MX:       unknown", "SPF:      unknown", "DMARC:    unknown",
                 "DKIM:     unknown", "MTA-STS:  unknown", "TLS-RPT:  unknown"):
        assert line in t.stdout, t.stdout
    assert "MX:       none" not in t.stdout


def test_refused_questions_one_servfail_finding(dns):
    """The server refuses every question (a zone it does not serve): one
    dns-servfail naming each question, nothing called missing."""
    r, doc = run_dns(dns, "notserved.example", anchors=False)
    assert r.returncode == 1
    found = [f for f in doc["findings"] if f["id"] == "dns-servfail"]
    assert len(found) == 1, doc["findings"]
    assert "notserved.example MX" in found[0]["evidence"]
    assert "_dmarc.notserved.example TXT" in found[0]["evidence"]
    assert ids(doc) <= {"dns-servfail", "dnssec-no-anchor"}, doc["findings"]
    assert doc["mx"] is None and doc["exists"] is None


def test_nonexistent_domain_is_said_once(dns):
    r, doc = run_dns(dns, "nosuch.good.test")
    assert r.returncode == 1
    assert [f["id"] for f in doc["findings"]] == ["domain-not-found"], doc["findings"]
    assert "NXDOMAIN" in doc["findings"][0]["evidence"]
    assert doc["exists"] is False
    t, _ = run_dns(dns, "nosuch.good.test", text=True)
    assert t.returncode == 1
    assert "does not exist" in t.stdout or "NXDOMAIN" in t.stdout
    assert t.stdout.count("[error]") == 1, t.stdout
    assert "publish" not in t.stdout.lower().split("[error] domain-not-found")[1].split(
        "cause:")[0]


def test_existing_domain_exists(dns):
    _, doc = run_dns(dns, "good.test")
    assert doc["exists"] is True


def test_root_anchor_through_a_resolver_without_the_root(dns):
    """The system's root key with a server that cannot answer for the root:
    validation cannot start; the domain is checked again without it."""
    root = "/usr/share/dns/root.key"
    if not os.path.exists(root):
        pytest.skip("no root trust anchor (dns-root-data)")
    r = subprocess.run([SMTPGATE, "dns", "good.test", "--resolver",
                        f"127.0.0.1:{dns['port']}", "--timeout", "3", "--trust-anchor", root,
                        "--json"], capture_output=True, text=True, timeout=120)
    doc = json.loads(r.stdout)
    assert "dnssec-anchor-failed" in ids(doc, "warning"), doc["findings"]
    assert "dnssec-bogus" not in ids(doc)
    assert doc["mx"][0]["host"] == "mx.good.test."
    assert r.returncode == 0, doc["findings"]


@pytest.mark.parametrize("args", [
    [], ["not a domain"], ["good.test", "--timeout", "0"], ["good.test", "--resolver", "bogus:x"],
    ["a", "b"], ["good.test", "--bogus"],
])
def test_usage_errors(args):
    r = subprocess.run([SMTPGATE, "dns", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr


def test_help():
    r = subprocess.run([SMTPGATE, "dns", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--selector" in r.stdout
