"""`smtpgate audit` (and `serve --check`) on [cluster] set-ups, against a
real redis-server, real nodes and a real HAProxy (the fixtures of
test_cluster.py): nothing reported on a good cluster; Redis unreachable,
a wrong or missing password, a node name held by another live node, a
key_prefix no other node uses and a balancer missing from proxy_from
each reported with its id.
"""
import json
import os
import subprocess

import pytest

from conftest import SMTPGATE, free_port, wait_for, wait_port
from test_cluster import HAPROXY, REDIS, Cluster, greeting, resp_session

pytestmark = pytest.mark.skipif(
    not (os.path.exists(HAPROXY) and os.path.exists(REDIS)),
    reason="haproxy and redis-server are needed")


def audit(conf):
    r = subprocess.run([SMTPGATE, "audit", "-c", str(conf), "--json"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)["findings"], r.stdout + r.stderr


def cluster_ids(findings):
    return sorted(f["id"] for f in findings if f["id"].startswith("cluster-"))


def one(findings, fid):
    got = [f for f in findings if f["id"] == fid]
    assert len(got) == 1, findings
    return got[0]


def check(conf):
    r = subprocess.run([SMTPGATE, "serve", "-c", str(conf), "--check"], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def haproxy(tmp_path, name, backend_port):
    """A second balancer, in front of one node: its port and process."""
    front = free_port()
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(f"""\
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f
    bind 127.0.0.1:{front}
    default_backend b
backend b
    server n 127.0.0.1:{backend_port} send-proxy-v2
""")
    p = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_port(front, proc=p)
    return front, p


def test_audit_of_a_cluster_good_and_misconfigured(make_server, tmp_path):
    c = Cluster(make_server, tmp_path)
    hap = None
    try:
        redis = f"redis://127.0.0.1:{c.redis.port}"
        # the balancer gets through to every node: no finding on any node
        for i in range(3):
            assert greeting(c.front, f"127.0.0.{2 + i}").startswith("220")
        for s in c.nodes:
            rc, findings, _ = audit(s.conf)
            assert rc == 0 and cluster_ids(findings) == [], findings
        rc, out, err = check(c.nodes[0].conf)
        assert rc == 0 and "cluster-" not in out, (out, err)

        def conf(name, cluster, proxy_from="127.0.0.1", start=False):
            s = make_server(
                submission_extra=f"proxy_protocol = yes\nproxy_from = {proxy_from}\n",
                extra=f"[cluster]\n{cluster}\nnode = {name}\n")
            return s.start() if start else s

        # node2's name on another configuration (not started): held by node2
        twin = conf("node2", f"redis = {redis}")
        rc, findings, _ = audit(twin.conf)
        f = one(findings, "cluster-node-name-clash")
        assert f["severity"] == "warning" and rc == 0, f
        assert os.path.realpath(c.nodes[1].conf) in f["evidence"], f
        assert cluster_ids(findings) == ["cluster-node-name-clash"], findings
        rc, out, err = check(twin.conf)
        assert rc == 0 and "[warning] cluster-node-name-clash" in out, (out, err)

        # a typo in key_prefix: nodes are registered under smtpgate: only
        typo = conf("node5", f"redis = {redis}\nkey_prefix = smtpgat:")
        rc, findings, _ = audit(typo.conf)
        f = one(findings, "cluster-prefix-not-shared")
        assert '"smtpgate:"' in f["evidence"] and "3 are" in f["evidence"], f
        assert f["severity"] == "warning" and rc == 0, f
        # the same prefix written out is shared: nothing
        same = conf("node6", f"redis = {redis}\nkey_prefix = smtpgate:")
        assert cluster_ids(audit(same.conf)[1]) == []

        # nothing listens: a warning (the node would start on its own state)
        down = conf("node7", f"redis = redis://127.0.0.1:{free_port()}")
        rc, findings, _ = audit(down.conf)
        f = one(findings, "cluster-redis-unreachable")
        assert f["severity"] == "warning" and rc == 0 and "127.0.0.1" in f["evidence"], f
        rc, out, err = check(down.conf)
        assert rc == 0 and "[warning] cluster-redis-unreachable" in out, (out, err)

        # a node whose proxy_from misses the balancer (which connects from
        # 127.0.0.1): its refusals reach Redis, and the audit names them
        lone = conf("node8", f"redis = {redis}", proxy_from="127.0.0.9", start=True)
        lone.wait_event("cluster", lambda e: e.get("state") == "up")
        front, hap = haproxy(tmp_path, "hap8", lone.submission)
        assert greeting(front, "127.0.0.5") is None
        lone.wait_event("proxy_reject", lambda e: e.get("client") == "127.0.0.1")
        wait_for(lambda: c.redis.cmd("HGETALL", "smtpgate:proxy:node8"), timeout=10)
        rc, findings, _ = audit(lone.conf)
        f = one(findings, "cluster-proxy-from-missing")
        assert "127.0.0.1" in f["evidence"] and "submission" in f["evidence"], f
        assert f["severity"] == "warning" and rc == 0, f
        # proxy_from fixed (this configuration lets the balancer in): not reported
        fixed = conf("node8", f"redis = {redis}")
        assert "cluster-proxy-from-missing" not in cluster_ids(audit(fixed.conf)[1])
        # the other nodes refused nothing
        assert cluster_ids(audit(c.nodes[2].conf)[1]) == []
    finally:
        if hap is not None:
            hap.kill()
            hap.wait()
        c.close()


def test_audit_redis_password_and_clash_set(make_server, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--save", "", "--requirepass", "s3cret-pw"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
        good.write_text("s3cret-pw\n")
        bad.write_text("not-the-password\n")
        good.chmod(0o600)
        bad.chmod(0o600)
        url = f"redis://127.0.0.1:{port}"

        def node(name, pw="", start=False):
            s = make_server(extra=f"[cluster]\nredis = {url}\n{pw}node = {name}\n")
            return s.start() if start else s

        # a wrong password: an error, and serve --check fails, saying why
        wrong = node("wrong", f"redis_password_file = {bad}\n")
        rc, findings, text = audit(wrong.conf)
        f = one(findings, "cluster-redis-auth-failed")
        assert f["severity"] == "error" and rc == 1, f
        assert "WRONGPASS" in f["evidence"] or "invalid" in f["evidence"], f
        assert "not-the-password" not in text and "s3cret" not in text
        rc, out, err = check(wrong.conf)
        assert rc == 2 and "[error] cluster-redis-auth-failed" in out, (out, err)
        assert "the audit found errors" in err
        assert "not-the-password" not in out + err
        # no password where Redis wants one (NOAUTH): the same
        rc, findings, _ = audit(node("nopw").conf)
        f = one(findings, "cluster-redis-auth-failed")
        assert "NOAUTH" in f["evidence"] and "no redis_password_file" in f["evidence"], f

        # one live node with the right password: nothing to report
        solo = node("solo", f"redis_password_file = {good}\n", start=True)
        solo.wait_event("cluster", lambda e: e.get("state") == "up")
        rc, findings, _ = audit(solo.conf)
        assert rc == 0 and cluster_ids(findings) == [], findings
        # two live nodes with one name: the clash set names it
        a = node("twin", f"redis_password_file = {good}\n", start=True)
        a.wait_event("cluster", lambda e: e.get("state") == "up")
        b = node("twin", f"redis_password_file = {good}\n", start=True)
        b.wait_event("cluster", lambda e: e.get("error") == "node_name_clash")
        assert resp_session(port, ("AUTH", "s3cret-pw"),
                            ("SISMEMBER", "smtpgate:clash", "twin")) == 1
        for s in (a, b):
            rc, findings, _ = audit(s.conf)
            f = one(findings, "cluster-node-name-clash")
            assert rc == 0 and "twin" in f["evidence"], f
    finally:
        proc.kill()
        proc.wait()
