"""Delay-warning DSNs (RFC 3464 Action: delayed): `delay_warning` in [relay].

The relay routes every domain to one aiosmtpd sink (test_delivery.Sink), so
a DSN to the sender arrives at the sink too, from the null sender. The sink
answers 451 to the recipients of `busy`; schedules are compressed
(retry_min = retry_max = 1s, delay_warning = 2s, expire = 1h).
"""
import email
import email.policy
import email.utils
import math
import subprocess
import time

from conftest import SMTPGATE, free_port, queue_show, wait_for
from test_delivery import SENDER, Sink, deliveries, message, relay_conf, submit, submit_plain

BUSY = "451 4.2.1 mailbox busy"


def schedule(delay_warning):
    line = f"delay_warning = {delay_warning}\n" if delay_warning is not None else ""
    return f"retry_min = 1s\nretry_max = 1s\nexpire = 1h\n{line}"


def attempts(server, qid):
    """The attempt numbers logged for qid so far."""
    return {e["attempt"] for e in deliveries(server, queue_id=qid)}


def wait_attempts(server, qid, n, timeout=30):
    wait_for(lambda: len(attempts(server, qid)) >= n, timeout=timeout,
             what=f"{n} attempts of {qid}")


def dsn_events(server, action=None):
    return [e for e in server.events("dsn") if action is None or e.get("action") == action]


def test_one_delay_warning_then_delivery_without_failure_dsn(make_server, pki):
    rcpts = ["bob@example.net", "carol@example.net"]
    sink = Sink(pki, rcpt_script={r: BUSY for r in rcpts})
    try:
        s = make_server(extra=relay_conf(sink.port, pki, retry=schedule("2s"))).start()
        before = time.time()
        submit(s, rcpts, message("delay1"))
        qid = s.wait_event("accepted")["queue_id"]
        # the warning: once the message has been queued for 2s (attempts every ~1s).
        # The arrival time is kept in whole seconds (spool.md), so the earliest
        # moment allowed is 2 s after the second the message arrived in.
        wait_for(lambda: sink.messages, timeout=20, what="the delay warning")
        assert time.time() >= math.floor(before) + 2
        assert len(sink.messages) == 1
        _, mail_from, to, data = sink.messages[0]
        assert mail_from in ("", "<>") and to == [SENDER]
        m = email.message_from_bytes(data, policy=email.policy.default)
        assert m["Subject"] == "Delayed Mail (still being retried)"
        assert m["Auto-Submitted"] == "auto-replied"
        assert m.get_content_type() == "multipart/report"
        assert m.get_param("report-type") == "delivery-status"
        parts = list(m.iter_parts())
        assert [p.get_content_type() for p in parts] == [
            "text/plain", "message/delivery-status", "text/rfc822-headers"]
        text = parts[0].get_content()
        assert "NOT failed" in text and "nothing needs doing now" in text
        assert "could not be delivered" not in text
        ds = parts[1].get_payload()  # [per-message, per-recipient...]
        assert len(ds) == 3  # one warning covers both delayed recipients
        arrival = email.utils.parsedate_to_datetime(ds[0]["Arrival-Date"])
        for group, rcpt in zip(ds[1:], rcpts):
            assert group["Final-Recipient"] == f"rfc822; {rcpt}"
            assert group["Action"] == "delayed"
            assert group["Status"] == "4.2.1"
            assert group["Diagnostic-Code"] == "smtp; 451 4.2.1 mailbox busy"
            assert group["Remote-MTA"] == f"dns; 127.0.0.1:{sink.port}"
            until = email.utils.parsedate_to_datetime(group["Will-Retry-Until"])
            assert (until - arrival).total_seconds() == 3600  # arrival + expire
            assert f"<{rcpt}>: still trying until {group['Will-Retry-Until']}" in text
        assert "delay1@client.example.test" in str(parts[2])
        ev = dsn_events(s)
        assert len(ev) == 1 and ev[0]["action"] == "delayed"
        assert ev[0]["queue_id"] == qid and ev[0]["to"] == SENDER and ev[0]["recipients"] == 2
        # the marker is in the spool envelope
        assert queue_show(s, qid)["warned"] is not None
        # several more retries, and a restart (the marker is read back from
        # the spool): no second warning
        n = len(attempts(s, qid))
        wait_attempts(s, qid, n + 3)
        assert s.stop() == 0
        s.start()
        wait_attempts(s, qid, n + 6)
        assert len(sink.messages) == 1 and len(dsn_events(s)) == 1
        assert s.queued()[0]["id"] == qid
        # the mailboxes come back: delivered, and no failure DSN follows
        sink.rcpt_script.clear()
        wait_for(lambda: len(sink.messages) >= 2, timeout=20, what="the delivery")
        wait_for(lambda: not s.queued(), what="the queue to empty")
        time.sleep(1.5)
        assert len(sink.messages) == 2
        _, mail_from, to, data = sink.messages[1]
        assert mail_from == SENDER and sorted(to) == rcpts
        assert b"hello delay1" in data
        assert dsn_events(s, "failed") == [] and len(dsn_events(s)) == 1
        results = [e["result"] for e in deliveries(s, queue_id=qid)]
        assert results.count("sent") == 2 and "bounced" not in results
    finally:
        sink.stop()


def test_null_sender_gets_no_delay_warning(make_server, pki):
    sink = Sink(pki, rcpt_script={"bob@example.test": BUSY})
    try:
        s = make_server(extra=relay_conf(sink.port, pki, retry=schedule("2s"))).start()
        submit_plain(s, ["bob@example.test"], message("delaynull", to="bob@example.test"),
                     sender="")
        qid = s.wait_event("accepted")["queue_id"]
        accepted = time.time()
        wait_attempts(s, qid, 5)
        assert time.time() - accepted > 3  # well past delay_warning
        assert sink.messages == [] and dsn_events(s) == []
        assert queue_show(s, qid)["warned"] is None
        sink.rcpt_script.clear()
        wait_for(lambda: sink.messages, timeout=20, what="the delivery")
        wait_for(lambda: not s.queued(), what="the queue to empty")
        assert len(sink.messages) == 1 and sink.messages[0][2] == ["bob@example.test"]
        assert dsn_events(s) == []
    finally:
        sink.stop()


def test_delay_warning_off_by_default_and_with_zero(make_server, pki):
    sink = Sink(pki, rcpt_script={"bob@example.net": BUSY})
    try:
        for i, dw in enumerate((None, "0")):
            s = make_server(extra=relay_conf(sink.port, pki, retry=schedule(dw))).start()
            submit(s, ["bob@example.net"], message(f"delayoff{i}"))
            qid = s.wait_event("accepted")["queue_id"]
            accepted = time.time()
            wait_attempts(s, qid, 5)
            assert time.time() - accepted > 3
            assert sink.messages == [] and dsn_events(s) == [], dw
            assert queue_show(s, qid)["warned"] is None
            assert s.stop() == 0
    finally:
        sink.stop()


def test_delay_warning_not_shorter_than_expire_is_a_config_error(make_server, pki):
    s = make_server(extra=relay_conf(free_port(), pki,
                                     retry="expire = 4h\ndelay_warning = 4h"))
    r = subprocess.run([SMTPGATE, "serve", "-c", str(s.conf), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "[relay] delay_warning (14400s) is not shorter than expire (14400s)" in r.stderr
