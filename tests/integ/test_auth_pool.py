"""The verification pool under pressure: when every worker is busy and the
queue is full, AUTH gets 454 4.7.0 at once (never a hang), other sessions
are not stalled, and the same session can retry and succeed."""
import concurrent.futures
import time

from conftest import USER, PASSWORD
from smtpclient import SMTPClient, client_context, plain_ir

TEMPFAIL = "454 4.7.0 Temporary authentication failure"
AUTH_OK = "235 2.7.0 Authentication successful"


def saturated_server(make_server):
    # Argon2id makes each check take long enough that 24 simultaneous
    # AUTHs cannot all be queued behind one worker with a queue of one.
    s = make_server(users=[])
    s.add_user(USER, PASSWORD, "--scheme", "ARGON2ID")
    text = s.conf.read_text().replace("[auth]\n", "[auth]\nworkers = 1\nqueue = 1\n", 1)
    s.conf.write_text(text)
    return s.start()


def ready(server):
    c = SMTPClient(server.submission)
    c.ehlo()
    c.starttls(ctx=client_context(server.pki.root))
    c.ehlo()
    return c


def test_saturated_pool_answers_454_not_a_hang(make_server):
    server = saturated_server(make_server)
    clients = [ready(server) for _ in range(24)]
    try:
        # every AUTH leaves at once; each must be answered within the deadline
        for c in clients:
            c.send(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}\r\n")
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(clients)) as ex:
            replies = list(ex.map(lambda c: c.reply(timeout=60).last, clients))
        assert set(replies) <= {TEMPFAIL, AUTH_OK}, replies
        assert replies.count(TEMPFAIL) >= 1, replies
        assert replies.count(AUTH_OK) >= 1, replies
        assert time.monotonic() - t0 < 60
        # a session that got 454 may retry once the pool has room
        retry = clients[replies.index(TEMPFAIL)]
        deadline = time.monotonic() + 30
        while True:
            r = retry.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}", timeout=30).last
            if r == AUTH_OK:
                break
            assert r == TEMPFAIL and time.monotonic() < deadline, r
            time.sleep(0.2)
        tempfails = [e for e in server.events("auth") if e.get("result") == "tempfail"]
        assert tempfails and all(e["code"] == 454 for e in tempfails)
    finally:
        for c in clients:
            c.close()
