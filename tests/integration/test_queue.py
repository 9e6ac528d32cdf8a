"""
The delivery queue end to end (issue 4, queue part): bounces (RFC 3464
DSNs through the smarthost back to the sender), expiry, delay warnings,
per-message retries/maxattempts/maxdelivertime and DSN parameters (via
the spool recovery path), queue back-off, and the concurrency caps.

Every test relays through the global smarthost, a QSink (queueutil.py)
on 127.0.0.1 that answers per recipient and counts what it sees, so a
bounce arrives at the same sink as a message from <>.
"""

import email.utils
import re
import time

import pytest

import mtadtest
from mtadtest import free_port, make_message, send_mail
from queueutil import (dsn_fields, dsn_original, new_msgid,
                       write_spool_message)

SENDER = "sender@a.test"


def reply_by_prefix(table):
    """A QSink rule: the reply of the first prefix the local part has."""
    def rule(addr):
        for prefix, reply in table.items():
            if addr.startswith(prefix):
                return reply
        return None
    return rule


def qid_of(m, pattern):
    return m.wait_log(pattern).group(1)


def test_bounce_on_permanent_failure(mtad_factory, qsinks):
    sink = qsinks(rule=reply_by_prefix(
        {"bad": "550 5.1.1 no such user here"}))
    m = mtad_factory(sink_port=sink.port).start()
    data = make_message("bounce me", sender=SENDER, rcpt="bad@b.test")
    qid, _ = send_mail(m.port, SENDER, ["bad@b.test", "good@b.test"], data)

    dsn = sink.wait_dsns(1)[0]
    bid = qid_of(m, r"%s: sender non-delivery notification: ([0-9A-F]{12})"
                 % qid)
    m.wait_log(r"%s: from=<>, size=\d+, nrcpt=1 \(queue active\)" % bid)
    m.wait_log(r"%s: removed" % qid)
    m.wait_log(r"%s: removed" % bid)

    # The bounce went through the smarthost, from <> to the sender.
    assert dsn.envelope.mail_from == ""
    assert dsn.envelope.rcpt_tos == [SENDER]
    assert SENDER in dsn["To"]
    assert "MAILER-DAEMON@" in dsn["From"]
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    assert dsn["Auto-Submitted"] == "auto-replied"
    parts = list(dsn.iter_parts())
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "message/rfc822"]
    assert "<bad@b.test>: 550 5.1.1 no such user here" in \
        parts[0].get_content()

    msgf, rcpts = dsn_fields(dsn)
    assert msgf["reporting-mta"].startswith("dns; ")
    assert msgf["x-mtad-queue-id"] == qid
    arrival = email.utils.parsedate_to_datetime(msgf["arrival-date"])
    assert abs(arrival.timestamp() - time.time()) < 60
    assert "original-envelope-id" not in msgf
    # Only the recipient that failed; the good one was delivered.
    assert len(rcpts) == 1
    r = rcpts[0]
    assert r["final-recipient"] == "rfc822; bad@b.test"
    assert r["action"] == "failed"
    assert r["status"] == "5.1.1"
    assert r["diagnostic-code"] == "smtp; 550 5.1.1 no such user here"
    assert r["remote-mta"] == "dns; 127.0.0.1"
    assert "last-attempt-date" in r

    # The whole original (small, no RET=HDRS) is returned.
    ctype, orig = dsn_original(dsn)
    assert ctype == "message/rfc822"
    assert b"Subject: bounce me" in orig
    assert b"Hello." in orig
    assert b"Received: from" in orig

    originals = sink.originals()
    assert len(originals) == 1 and originals[0].rcpt_tos == ["good@b.test"]
    assert len(sink.dsns()) == 1


def test_no_bounce_for_null_sender(mtad_factory, qsinks):
    sink = qsinks(rule=reply_by_prefix({"bad": "550 5.1.1 no such user"}))
    m = mtad_factory(sink_port=sink.port).start()
    data = make_message("a bounce itself", sender="MAILER-DAEMON@a.test",
                        rcpt="bad@b.test")
    qid, _ = send_mail(m.port, "", ["bad@b.test"], data)
    m.wait_log(r"%s: to=<bad@b.test>: no non-delivery notification "
               r"\(null sender\)" % qid)
    m.wait_log(r"%s: removed" % qid)
    # A bounce would be queued before the removal: none may follow.
    time.sleep(0.5)
    assert sink.seen("bad@b.test") == 1
    assert sink.dsns() == []
    assert "sender non-delivery notification" not in m.log()
    # The only message from <> is the one sent.
    assert len(re.findall(r"from=<>, size=\d+, nrcpt=1 \(queue",
                          m.log())) == 1


def test_expiry_bounces_once(mtad_factory, qsinks):
    sink = qsinks(rule=reply_by_prefix({"slow": "451 4.3.0 try later"}))
    m = mtad_factory(sink_port=sink.port).start(
        max_delivery_time=2, retries=1)
    data = make_message("will expire", sender=SENDER, rcpt="slow@b.test")
    qid, _ = send_mail(m.port, SENDER, ["slow@b.test"], data)

    dsn = sink.wait_dsns(1, timeout=15)[0]
    m.wait_log(r"%s: to=<slow@b.test>, dsn=4\.4\.7, status=expired "
               r"\(maximum delivery time reached after \d+ attempts\)" % qid)
    m.wait_log(r"%s: removed" % qid)
    assert sink.seen("slow@b.test") >= 2
    msgf, rcpts = dsn_fields(dsn)
    assert len(rcpts) == 1
    assert rcpts[0]["final-recipient"] == "rfc822; slow@b.test"
    assert rcpts[0]["action"] == "failed"
    assert rcpts[0]["status"] == "4.4.7"
    assert rcpts[0]["diagnostic-code"] == "smtp; 451 4.3.0 try later"
    assert "delivery time expired; last error: 451 4.3.0 try later" in \
        list(dsn.iter_parts())[0].get_content()
    # Exactly one DSN for the message, then nothing more.
    time.sleep(1.5)
    assert len(sink.dsns()) == 1
    assert sink.originals() == []


def test_delay_warning_once(mtad_factory, qsinks):
    state = {"reply": "451 4.2.0 mailbox busy"}
    sink = qsinks(rule=lambda a: state["reply"] if a == "busy@b.test"
                  else None)
    m = mtad_factory(sink_port=sink.port).start(
        delay_warning_time=1, retries=1, max_delivery_time=60)
    data = make_message("late", sender=SENDER, rcpt="busy@b.test")
    qid, _ = send_mail(m.port, SENDER, ["busy@b.test"], data)

    dsn = sink.wait_dsns(1, timeout=15)[0]
    m.wait_log(r"%s: sender delay notification: [0-9A-F]{12}" % qid)
    assert dsn.envelope.rcpt_tos == [SENDER]
    assert dsn["Subject"] == "Delayed Mail (still being retried)"
    msgf, rcpts = dsn_fields(dsn)
    assert rcpts[0]["action"] == "delayed"
    assert rcpts[0]["status"] == "4.2.0"
    assert rcpts[0]["diagnostic-code"] == "smtp; 451 4.2.0 mailbox busy"
    until = email.utils.parsedate_to_datetime(rcpts[0]["will-retry-until"])
    assert 50 < until.timestamp() - time.time() < 61
    # A warning returns the header only.
    ctype, orig = dsn_original(dsn)
    assert ctype == "text/rfc822-headers"
    assert b"Subject: late" in orig and b"Hello." not in orig

    # More deferrals: still one warning.
    n = sink.seen("busy@b.test")
    sink.wait_seen("busy@b.test", n + 2, timeout=10)
    assert len(sink.dsns()) == 1
    state["reply"] = None
    sink.wait_for(2, timeout=10)
    m.wait_log(r"%s: removed" % qid)
    assert len(sink.dsns()) == 1
    assert [o.rcpt_tos for o in sink.originals()] == [["busy@b.test"]]


def _owner(m):
    """(uid, gid) the spool must belong to: the user mtad runs as."""
    if m.run_as == "nobody":
        return mtadtest.nobody_ids()
    return None


def _fmt_utc(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def test_message_retries_maxattempts_maxdelivertime(mtad_factory, qsinks):
    """
    Per-message properties override the config's retries (600 s here)
    and max-delivery-time: written as committed messages into a stopped
    mtad's spool, picked up by recovery.
    """
    sink = qsinks(rule=reply_by_prefix({"a451": "451 4.3.0 later",
                                        "b451": "451 4.3.0 later"}))
    m = mtad_factory(sink_port=sink.port)
    own = _owner(m)
    ida, idb, idc = new_msgid(1), new_msgid(2), new_msgid(3)
    data = make_message("props", sender=SENDER)
    write_spool_message(m.spool, ida, SENDER, ["a451@b.test"], data,
                        {"retries": [1], "maxattempts": 2}, owner=own)
    write_spool_message(m.spool, idb, SENDER, ["b451@b.test"], data,
                        {"retries": "1",
                         "maxdelivertime": _fmt_utc(time.time() + 3)},
                        owner=own)
    write_spool_message(m.spool, idc, SENDER, ["c@b.test"], data,
                        {"retries": "soon", "maxattempts": "lots",
                         "maxdelivertime": "2026-02-30",
                         "dsn": {"notify": "SOMETIMES"}}, owner=own)
    m.start(retries=600)
    m.wait_log(r"spool .*: 3 messages in the queue")

    # Bad values: logged and ignored; the message is delivered anyway.
    line = m.wait_log(r"%s: ignoring bad properties: (.*)$" % idc).group(1)
    for what in ("retries", "maxattempts", "maxdelivertime", "dsn.notify"):
        assert what in line
    m.wait_log(r"%s: removed" % idc)

    # maxattempts=2 with retries=[1]: two attempts a second apart.
    m.wait_log(r"%s: to=<a451@b.test>, dsn=4\.4\.7, status=expired "
               r"\(maximum number of attempts reached after 2 attempts\)"
               % ida, timeout=10)
    # maxdelivertime in 3 s, retried every second: expired by then.
    m.wait_log(r"%s: to=<b451@b.test>, dsn=4\.4\.7, status=expired "
               r"\(maximum delivery time reached" % idb, timeout=10)
    dsns = sink.wait_dsns(2)
    assert sink.seen("a451@b.test") == 2
    assert 2 <= sink.seen("b451@b.test") <= 6
    by_id = {dsn_fields(d)[0]["x-mtad-queue-id"]: d for d in dsns}
    assert set(by_id) == {ida, idb}
    assert "maximum number of delivery attempts reached" in \
        list(by_id[ida].iter_parts())[0].get_content()
    for d in dsns:
        assert dsn_fields(d)[1][0]["status"] == "4.4.7"
    assert [o.rcpt_tos for o in sink.originals()] == [["c@b.test"]]


def test_dsn_parameters(mtad_factory, qsinks):
    """NOTIFY, ORCPT per recipient; RET and ENVID per message."""
    sink = qsinks(rule=reply_by_prefix({"x550": "550 5.7.1 refused"}))
    m = mtad_factory(sink_port=sink.port)
    own = _owner(m)
    ids = [new_msgid(10 + i) for i in range(4)]
    data = make_message("dsn params", sender=SENDER,
                        body_lines=("Secret body.",))
    # RET=HDRS, ENVID, ORCPT: a bounce with the header only.
    write_spool_message(m.spool, ids[0], SENDER,
                        [{"address": "x550-d@b.test",
                          "orcpt": "rfc822;X550-D@B.test"}], data,
                        {"dsn": {"ret": "HDRS", "envid": "env-77"}},
                        owner=own)
    # NOTIFY=NEVER on the recipient: no bounce.
    write_spool_message(m.spool, ids[1], SENDER,
                        [{"address": "x550-e@b.test", "notify": "NEVER"}],
                        data, {}, owner=own)
    # NOTIFY=SUCCESS for the message: a delivered DSN, and no bounce
    # for the recipient that fails.
    write_spool_message(m.spool, ids[2], SENDER,
                        ["f@b.test", "x550-g@b.test"], data,
                        {"dsn": {"notify": "SUCCESS"}}, owner=own)
    # The recipient's own NOTIFY wins over the message's.
    write_spool_message(m.spool, ids[3], SENDER,
                        [{"address": "x550-h@b.test",
                          "notify": "FAILURE,DELAY"}], data,
                        {"dsn": {"notify": "NEVER"}}, owner=own)
    m.start()
    for i in ids:
        m.wait_log(r"%s: removed" % i)
    dsns = sink.wait_dsns(3)
    time.sleep(0.5)
    assert len(sink.dsns()) == 3
    by_id = {}
    for d in dsns:
        f, r = dsn_fields(d)
        by_id.setdefault(f["x-mtad-queue-id"], []).append((d, f, r))
    assert sorted(by_id) == sorted([ids[0], ids[2], ids[3]])

    d, f, r = by_id[ids[0]][0]
    assert f["original-envelope-id"] == "env-77"
    assert r[0]["original-recipient"] == "rfc822;X550-D@B.test"
    assert r[0]["action"] == "failed" and r[0]["status"] == "5.7.1"
    ctype, orig = dsn_original(d)
    assert ctype == "text/rfc822-headers"
    assert b"Subject: dsn params" in orig
    assert b"Secret body." not in orig

    m.wait_log(r"%s: to=<x550-e@b.test>: no non-delivery notification "
               r"\(NOTIFY excludes FAILURE\)" % ids[1])
    m.wait_log(r"%s: to=<x550-g@b.test>: no non-delivery notification "
               r"\(NOTIFY excludes FAILURE\)" % ids[2])
    d, f, r = by_id[ids[2]][0]
    assert d["Subject"] == "Successful Mail Delivery Report"
    assert [x["final-recipient"] for x in r] == ["rfc822; f@b.test"]
    assert r[0]["action"] == "delivered" and r[0]["status"] == "2.0.0"
    m.wait_log(r"%s: sender delivery status notification: " % ids[2])

    d, f, r = by_id[ids[3]][0]
    assert r[0]["final-recipient"] == "rfc822; x550-h@b.test"
    assert r[0]["action"] == "failed"


# smtp worker lines of a deferral without a server: connection attempts.
CONN_FAIL = re.compile(r"mtad/smtp\[\d+\]: [0-9A-F]{12}: to=<[^>]*>, "
                       r"relay=none, .*status=deferred", re.M)


def test_queue_backoff(mtad_factory, qsinks):
    port = free_port()              # nobody listens here yet
    m = mtad_factory(sink_port=port).start(retries=2)
    first = [send_mail(m.port, SENDER, ["r%d@b.test" % i],
                       make_message("down %d" % i))[0] for i in range(3)]
    m.wait_log(r"queue \(smarthost\): 3 connection failures in a row, "
               r"backed off for 2s: ")
    # While suspended, new mail is deferred without a connection.
    later = [send_mail(m.port, SENDER, ["s%d@b.test" % i],
                       make_message("still down %d" % i))[0]
             for i in range(5)]
    for qid in later:
        m.wait_log(r"mtad/qmgr\[\d+\]: %s: to=<s\d@b\.test>, relay=none, "
                   r"delay=\d+, dsn=4\.4\.1, status=deferred \(delivery "
                   r"temporarily suspended: " % qid)
    log = m.log()
    probes = log.count("back-off over, probing with one delivery")
    assert len(CONN_FAIL.findall(log)) <= 3 + probes
    assert len(CONN_FAIL.findall(log)) < 3 + len(later)

    # The destination comes up: a probe gets through, the queue resumes.
    sink = qsinks(port=port)
    sink.wait_for(len(first) + len(later), timeout=20)
    m.wait_log(r"queue \(smarthost\): resumed")
    for qid in first + later:
        m.wait_log(r"%s: removed" % qid)
    assert sink.dsns() == []


@pytest.mark.parametrize("per_queue,total,want", [(2, 1000, 2), (20, 1, 1)])
def test_concurrency_caps(mtad_factory, qsinks, per_queue, total, want):
    sink = qsinks(data_delay=0.4)
    m = mtad_factory(sink_port=sink.port).start(
        max_connections_per_queue=per_queue, max_connections=total,
        smtp_workers=2)
    n = 8
    for i in range(n):
        send_mail(m.port, SENDER, ["c%d@b.test" % i],
                  make_message("cap %d" % i))
    sink.wait_for(n, timeout=30)
    # Transactions in progress at the sink at once: the cap, reached.
    assert sink.txn_max == want, (sink.txn_max, sink.conn_max)
