"""smtpgate queue list|show|del|hold|release on spool files written by a
Python writer that follows doc/spool.md (so these tests also check the doc)."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import SMTPGATE

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def run(*args, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, timeout=30, **kw)


def b32(v, n):
    return "".join(ALPHABET[(v >> (5 * (n - 1 - i))) & 31] for i in range(n))


def make_id(usec, counter=0, rnd=12345):
    return b32(usec, 11) + b32(counter, 3) + b32(rnd, 4)


def esc(v: bytes) -> bytes:
    out = bytearray()
    for c in v:
        if c < 0x20 or c == 0x7F or c == ord("%"):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def message_file(qid, body: bytes, sender=b"alice@example.test", rcpts=(b"bob@example.net",),
                 auth_user=b"alice", client=b"203.0.113.5", helo=b"laptop.example.test",
                 smtputf8=False, eightbit=False, arrival=1700000000, extra=()):
    fields = [(b"smtpgate-envelope", b"1"), (b"id", qid.encode()),
              (b"arrival", str(arrival).encode()), (b"sender", sender)]
    fields += [(b"rcpt", r) for r in rcpts]
    if auth_user is not None:
        fields.append((b"auth-user", auth_user))
    fields += [(b"client-addr", client), (b"helo", helo),
               (b"smtputf8", b"yes" if smtputf8 else b"no"),
               (b"body", b"8bitmime" if eightbit else b"7bit")]
    fields += list(extra)
    env = b"".join(k + b": " + esc(v) + b"\n" for k, v in fields)
    prefix = b"%%%%smtpgate 1 body=%016x env=%08x sha256=" % (len(body), len(env))
    assert len(prefix) == 55
    digest = hashlib.sha256(body + env + prefix).hexdigest().encode()
    data = body + env + prefix + digest + b"\n"
    assert len(data) == len(body) + len(env) + 120
    return data


@pytest.fixture
def spool(tmp_path):
    sp = tmp_path / "spool"
    conf = tmp_path / "smtpgate.conf"
    conf.write_text("[server]\nhostname = mx.example.test\nspool = spool\n"
                    "[listen a]\naddress = 127.0.0.1:2525\ntls = none\nauth = off\n"
                    "relay = local\n")
    return sp, str(conf)


def put(sp, folder, qid, data):
    (sp / folder).mkdir(parents=True, exist_ok=True)
    (sp / folder / qid).write_bytes(data)


BODY = (b"Subject: hello\r\nFrom: Alice <alice@example.test>\r\n"
        b"X-Folded: one\r\n two\r\n\r\nbody line\r\n")


def test_list_empty_spool_never_started(spool):
    sp, conf = spool
    r = run("queue", "list", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert b"empty" in r.stdout
    r = run("queue", "list", "-c", conf, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"messages": []}


def test_list_and_json(spool):
    sp, conf = spool
    a, b = make_id(1700000000000000), make_id(1700000001000000, 1)
    put(sp, "queue", b, message_file(b, BODY, sender=b"", rcpts=(b"x@y.test", b"z@w.test"),
                                     arrival=1700000001))
    put(sp, "hold", a, message_file(a, BODY))
    put(sp, "queue", "not-an-id.tmp", b"junk")
    r = run("queue", "list", "-c", conf)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.index(a) < out.index(b)  # oldest first
    assert "<> -> x@y.test z@w.test" in out
    assert "2 messages" in out
    r = run("queue", "list", "-c", conf, "--json")
    doc = json.loads(r.stdout)
    assert doc["messages"] == [
        {"id": a, "state": "held", "arrival": "2023-11-14T22:13:20Z", "size": len(BODY),
         "sender": "alice@example.test", "recipients": ["bob@example.net"]},
        {"id": b, "state": "queued", "arrival": "2023-11-14T22:13:21Z", "size": len(BODY),
         "sender": "", "recipients": ["x@y.test", "z@w.test"]},
    ]


def test_list_skips_unreadable_file(spool):
    sp, conf = spool
    good, bad = make_id(1700000000000000), make_id(1700000000000001)
    put(sp, "queue", good, message_file(good, BODY))
    put(sp, "queue", bad, message_file(bad, BODY)[:-1])  # truncated trailer
    r = run("queue", "list", "-c", conf, "--json")
    assert r.returncode == 0
    assert [m["id"] for m in json.loads(r.stdout)["messages"]] == [good]
    assert bad.encode() in r.stderr


def test_show_text_and_json(spool):
    sp, conf = spool
    qid = make_id(1700000000000000)
    # CR/LF in HELO are escaped in the file and cannot add envelope lines
    helo = b"evil\r\nrcpt: injected@example.test"
    put(sp, "queue", qid, message_file(qid, BODY, helo=helo, eightbit=True, smtputf8=True,
                                       sender="j\u00f6rg@example.test".encode(),
                                       extra=[(b"attempts", b"2")]))
    r = run("queue", "show", qid, "-c", conf)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"id: {qid}\n" in out
    assert "sender: j\u00f6rg@example.test\n" in out
    assert out.count("recipient: ") == 1
    assert "helo: evil??rcpt: injected@example.test\n" in out
    assert "Subject: hello\n" in out and "body line" not in out
    r = run("queue", "show", "-c", conf, "--json", qid)
    doc = json.loads(r.stdout)
    assert doc["id"] == qid and doc["state"] == "queued" and doc["size"] == len(BODY)
    assert doc["recipients"] == ["bob@example.net"]
    assert doc["helo"] == helo.decode()
    assert doc["auth_user"] == "alice" and doc["client_addr"] == "203.0.113.5"
    assert doc["smtputf8"] is True and doc["body"] == "8bitmime"
    assert doc["headers"] == [
        {"name": "Subject", "value": "hello"},
        {"name": "From", "value": "Alice <alice@example.test>"},
        {"name": "X-Folded", "value": "one two"},
    ]


def test_show_json_with_invalid_utf8_stays_valid(spool):
    sp, conf = spool
    qid = make_id(1700000000000000)
    put(sp, "queue", qid, message_file(qid, b"Subject: \xff\xfe\r\n\r\n", sender=b"\xc3@x.test",
                                       auth_user=None))
    r = run("queue", "show", qid, "-c", conf, "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["sender"] == "\ufffd@x.test"
    assert doc["auth_user"] is None
    assert doc["headers"] == [{"name": "Subject", "value": "\ufffd\ufffd"}]


@pytest.mark.parametrize("action", ["show", "del", "hold", "release"])
def test_no_such_message(spool, action):
    sp, conf = spool
    for qid in (make_id(1), "../smtpgate.conf", "x"):
        r = run("queue", action, qid, "-c", conf)
        assert r.returncode == 1, (qid, r)
        assert b"no such message" in r.stderr
    r = run("queue", action, make_id(1), "-c", conf, "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"] == "no such message"


def test_del(spool):
    sp, conf = spool
    qid = make_id(1700000000000000)
    put(sp, "queue", qid, message_file(qid, BODY))
    r = run("queue", "del", qid, "-c", conf, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": qid, "result": "deleted"}
    assert not (sp / "queue" / qid).exists()
    assert run("queue", "del", qid, "-c", conf).returncode == 1


def test_hold_and_release(spool):
    sp, conf = spool
    qid = make_id(1700000000000000)
    put(sp, "queue", qid, message_file(qid, BODY))
    (sp / "hold").mkdir()
    r = run("queue", "hold", qid, "-c", conf)
    assert r.returncode == 0, r.stderr
    assert (sp / "hold" / qid).exists() and not (sp / "queue" / qid).exists()
    assert run("queue", "hold", qid, "-c", conf).returncode == 0  # already held
    doc = json.loads(run("queue", "list", "-c", conf, "--json").stdout)
    assert doc["messages"][0]["state"] == "held"
    r = run("queue", "release", qid, "-c", conf, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"id": qid, "result": "queued"}
    assert (sp / "queue" / qid).exists() and not (sp / "hold" / qid).exists()


def test_usage_and_config_errors(spool, tmp_path):
    sp, conf = spool
    r = run("queue", "--help")
    assert r.returncode == 0 and b"usage" in r.stdout
    assert run("queue").returncode == 2
    assert run("queue", "list").returncode == 2  # no -c
    assert run("queue", "frob", "-c", conf).returncode == 2
    assert run("queue", "show", "-c", conf).returncode == 2  # no id
    assert run("queue", "list", "extra", "-c", conf).returncode == 2
    r = run("queue", "list", "-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 2
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nbogus = 1\n")
    r = run("queue", "list", "-c", str(bad))
    assert r.returncode == 2 and b"bad.conf:2" in r.stderr


def test_doc_example_lengths():
    """The example in doc/spool.md: body 0x15 bytes, envelope 0xcd bytes."""
    qid = "1k0x4xx88tqwka93rq"
    data = message_file(qid, b"Subject: x\r\n\r\nhello\r\n")
    assert b"body=0000000000000015 env=000000cd sha256=" in data


def verify_file(path, qid):
    """doc/spool.md "Message file": whole iff all of these hold."""
    data = path.read_bytes()
    assert len(data) >= 120
    t = data[-120:]
    assert t.startswith(b"%%smtpgate 1 body=") and t.endswith(b"\n")
    body_len, env_len = int(t[18:34], 16), int(t[39:47], 16)
    assert body_len + env_len + 120 == len(data)
    assert hashlib.sha256(data[:-65]).hexdigest().encode() == t[55:119]
    env = data[body_len:body_len + env_len].decode()
    lines = env.split("\n")
    assert lines[-1] == "" and lines[0] == "smtpgate-envelope: 1"
    fields = [ln.split(": ", 1) for ln in lines[:-1]]
    assert ["id", qid] in fields
    return data[:body_len], fields


def test_server_spool_matches_doc_and_recovery(server):
    import smtplib
    with smtplib.SMTP("127.0.0.1", server.mx, timeout=10) as c:
        c.ehlo("client.example.test")
        c.sendmail("sender@remote.test", ["bob@example.test"],
                   b"Subject: e2e\r\n\r\nhello\r\n")
    msgs = server.queued()
    assert len(msgs) == 1
    qid = msgs[0]["id"]
    body, fields = verify_file(server.spool / "queue" / qid, qid)
    assert b"Subject: e2e\r\n" in body and body.endswith(b"hello\r\n")
    assert ["sender", "sender@remote.test"] in fields
    assert ["rcpt", "bob@example.test"] in fields
    assert ["helo", "client.example.test"] in fields
    assert msgs[0]["size"] == len(body)
    doc = json.loads(run("queue", "show", qid, "-c", str(server.conf), "--json").stdout)
    assert doc["headers"][-1] == {"name": "Subject", "value": "e2e"}

    # after a crash: a Python-written whole file is kept, a torn one and
    # anything in incoming/ are cleaned at start-up
    assert server.kill() is not None
    ours, torn, partial = (make_id(1700000000000000 + i) for i in range(3))
    put(server.spool, "queue", ours, message_file(ours, BODY))
    put(server.spool, "queue", torn, message_file(torn, BODY)[:-30] + b"\0" * 30)
    put(server.spool, "incoming", partial, BODY)
    server.start()
    rec = server.wait_event("queue_recover", lambda r: r.get("incoming_removed") == 1)
    assert rec["corrupt_moved"] == 1 and rec["queued"] == 2
    assert (server.spool / "corrupt" / torn).exists()
    assert not (server.spool / "incoming" / partial).exists()
    assert sorted(m["id"] for m in server.queued()) == sorted([qid, ours])
