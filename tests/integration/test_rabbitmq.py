"""
The RabbitMQ bridge (issue 5, DESIGN section 6 and 7) against a real
rabbitmq-server started for this module (rabbitutil.Broker), with pika as
the test's own client: SMTP in -> inbox JSON; a broker that is away when
mail arrives; outbox JSON -> delivery to the sink with results and
success; invalid JSON -> failure queue; 4xx -> retry queue -> delivered
after the TTL; two instances sharing one outbox.  Faults: the broker node
stopped and started during 1,000 messages each way (outbox -> sink and
SMTP -> inbox), a relay that goes silent (heartbeats), the 452 at
rabbitmq-spool-max, connection.blocked (a memory alarm); per-recipient
NOTIFY/ORCPT in the inbox JSON; a per-message smarthost given by JSON
winning over the global one (issue 4).

Each test uses its own queue names, so tests do not see each other's
messages on the shared broker.
"""

import json
import os
import pwd
import smtplib
import threading
import time

import pytest

import mtadtest
import spoolutil
from mtadtest import Mtad, SendError, make_message, send_mail, wait_until
from rabbitutil import Broker, Relay

SENDER = "sender@a.test"


@pytest.fixture(scope="module")
def broker():
    b = Broker().start()
    yield b
    b.stop()


def queues(tag):
    return {k: "%s-%s" % (tag, k) for k in
            ("inbox", "outbox", "results", "success", "failure", "retry")}


def mq_args(broker, q, url=None, **kw):
    args = {"rabbitmq-address": url or broker.url,
            "rabbitmq-inbox": q["inbox"],
            "rabbitmq-outbox": q["outbox"],
            "rabbitmq-results": q["results"],
            "rabbitmq-success": q["success"],
            "rabbitmq-failure": q["failure"],
            "rabbitmq-retry": q["retry"]}
    args.update(kw)
    return {k.replace("-", "_"): v for k, v in args.items()}


def outbox_json(rcpt, subject, **extra):
    mime = make_message(subject, rcpt=rcpt).decode()
    d = {"envelope": SENDER, "recipient": rcpt, "mime": mime}
    d.update(extra)
    return json.dumps(d).encode()


def test_smtp_to_inbox(broker, mtad_factory):
    q = queues("in")
    m = mtad_factory().start(**mq_args(broker, q))
    m.wait_log(r"rabbitmq: connected to amqp://127\.0\.0\.1:%d"
               % broker.port)
    data = make_message("to the inbox", rcpt="r1@b.test")
    data = b"x-mq-tag: campaign-7\r\n" + data
    qid, _ = send_mail(m.port, SENDER, ["r1@b.test", "r2@b.test"], data)
    bodies = [json.loads(b) for b in broker.get(q["inbox"], 2)]
    assert sorted(d["recipient"] for d in bodies) == ["r1@b.test",
                                                       "r2@b.test"]
    for d in bodies:
        assert d["envelope"] == SENDER
        assert "Subject: to the inbox" in d["mime"]
        assert "x-mq-tag" not in d["mime"].lower()
        assert d["ips"] == ["127.0.0.1"]
        assert "campaign-7" in json.dumps(d.get("tags"))
    # Confirmed: the spool copy is gone; nothing was delivered directly.
    m.wait_log(r"%s: removed|%s: released" % (qid, qid))
    assert not spoolutil.messages(m.spool)


def test_broker_away_at_receive_time(broker, mtad_factory):
    q = queues("away")
    relay = Relay(broker.port)
    url = "amqp://guest:guest@127.0.0.1:%d/" % relay.port
    try:
        m = mtad_factory().start(**mq_args(broker, q, url=url))
        m.wait_log(r"rabbitmq: .*connect")
        qid, _ = send_mail(m.port, SENDER, ["late@b.test"],
                           make_message("while away", rcpt="late@b.test"))
        assert spoolutil.envelope(m.spool, qid) is not None
        relay.start()
        body = json.loads(broker.get(q["inbox"], 1, timeout=20)[0])
        assert body["recipient"] == "late@b.test"
        m.wait_log(r"%s: removed" % qid)
    finally:
        relay.stop()


def test_outbox_delivered_with_results(broker, mtad_factory, sink):
    q = queues("out")
    m = mtad_factory().start(**mq_args(broker, q))
    broker.publish(q["outbox"], outbox_json("dest@b.test", "from the outbox",
                                             custom={"keep": [1, 2]}))
    got = sink.wait_match(b"Subject: from the outbox")
    assert got.mail_from == SENDER and got.rcpt_tos == ["dest@b.test"]
    res = json.loads(broker.get(q["results"], 1)[0])
    ok = json.loads(broker.get(q["success"], 1)[0])
    for d in (res, ok):
        assert "mime" not in d
        assert d["custom"] == {"keep": [1, 2]}
        assert d["recipient"] == "dest@b.test"
        assert len(d["results"]) == 1
        r = d["results"][0]
        assert r["result"] == "ok" and r["code"] == 250
        assert r["state"] == "data"
        assert r["status"].startswith("2.") and r["to"] == "127.0.0.1"
        assert {"state", "description", "from", "time"} <= set(r)
    # Acked: nothing left in the outbox, nothing redelivered.
    wait_until(lambda: broker.count(q["outbox"]) == 0, 5, "empty outbox")
    assert broker.count(q["failure"]) == 0


def test_invalid_json_to_failure(broker, mtad_factory, sink):
    q = queues("bad")
    m = mtad_factory().start(**mq_args(broker, q))
    m.wait_log(r"rabbitmq: connected")
    broker.publish(q["outbox"], b"this is { not json")
    broker.publish(q["outbox"], json.dumps({"mime": "x"}).encode())
    broker.publish(q["outbox"], json.dumps({"recipient": "a@b.test"})
                   .encode())
    got = sorted((json.loads(b)["reason"] for b in
                  broker.get(q["failure"], 3)))
    assert got == ["no mime", "no recipient", "not valid JSON"]
    wait_until(lambda: broker.count(q["outbox"]) == 0, 5, "empty outbox")
    assert not sink.messages


def test_deferred_goes_through_retry_queue(broker, mtad_factory, sink):
    q = queues("retry")
    sink.fail("rcpt", 1, "451 4.3.0 later please")
    m = mtad_factory().start(**mq_args(broker, q), retries="1")
    broker.publish(q["outbox"], outbox_json("again@b.test", "retried"))
    first = json.loads(broker.get(q["results"], 1)[0])
    assert first["results"][0]["result"] == "error"
    assert first["results"][0]["code"] == 451
    assert first["results"][0]["state"] == "rcptto"
    got = sink.wait_match(b"Subject: retried", timeout=20)
    assert got.rcpt_tos == ["again@b.test"]
    ok = json.loads(broker.get(q["success"], 1)[0])
    assert [r["result"] for r in ok["results"]] == ["error", "ok"]
    assert sink.attempts["rcpt"] == 2
    m.wait_log(r"attempt 2\)")


def test_permanent_failure_to_failure_queue(broker, mtad_factory, sink):
    q = queues("perm")
    sink.always("rcpt", "550 5.1.1 no such user")
    m = mtad_factory().start(**mq_args(broker, q))
    broker.publish(q["outbox"], outbox_json("nobody@b.test", "refused"))
    bad = json.loads(broker.get(q["failure"], 1)[0])
    assert bad["results"][-1]["result"] == "fatal"
    assert bad["results"][-1]["code"] == 550
    assert bad["results"][-1]["state"] == "rcptto"
    assert "reason" not in bad
    assert not sink.messages


def _instance(broker, q, sink, base, name):
    d = base / name
    d.mkdir()
    run_as = "nobody" if os.geteuid() == 0 else None
    if run_as:
        uid, gid = mtadtest.nobody_ids()
        os.chown(d, uid, gid)
    m = Mtad(d, sink_port=sink.port, run_as=run_as, name=name)
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(m.conf, pw.pw_uid, pw.pw_gid)
    return m


def test_two_instances_share_the_outbox(broker, sink, build, workdir):
    q = queues("two")
    n = 60
    made = []
    try:
        for name in ("a", "b"):
            m = _instance(broker, q, sink, workdir, name)
            made.append(m)
            m.start(**mq_args(broker, q, rabbitmq_prefetch=5))
            m.wait_log(r"rabbitmq: connected")
        for i in range(n):
            broker.publish(q["outbox"], outbox_json(
                "r%d@b.test" % i, "shared %d" % i), declare=(i == 0))
        msgs = sink.wait_for(n, timeout=30)
        subjects = [l for mm in msgs for l in mm.content.split(b"\r\n")
                    if l.startswith(b"Subject: shared")]
        assert len(subjects) == n and len(set(subjects)) == n
        broker.get(q["success"], n)
        for m in made:
            assert "nrcpt=1 (queue active, from rabbitmq" in m.log()
        assert broker.count(q["outbox"]) == 0
    finally:
        errors = []
        for m in made:
            m.cleanup()
            errors += m.sanitizer_reports()
        assert not errors, errors


def test_inbox_is_outbox_round_trip(broker, mtad_factory, sink):
    q = queues("loop")
    m = mtad_factory().start(**mq_args(broker, q, rabbitmq_inbox=""))
    qid, _ = send_mail(m.port, SENDER, ["loop@b.test"],
                       make_message("round trip", rcpt="loop@b.test"))
    got = sink.wait_match(b"Subject: round trip")
    assert got.rcpt_tos == ["loop@b.test"]
    ok = json.loads(broker.get(q["success"], 1)[0])
    assert ok["recipient"] == "loop@b.test" and ok["ips"] == ["127.0.0.1"]
    # Delivered through the broker, not from the spool.
    m.wait_log(r"%s: to=<loop@b\.test>, relay=rabbitmq, status=published"
               % qid)


# ---- faults ---------------------------------------------------------------

def _restart_when(broker, pred, what, timeout=30):
    """Once pred() holds, stop the broker node and start it again."""
    wait_until(pred, timeout, what)
    t0 = time.monotonic()
    broker.halt()
    time.sleep(0.3)
    broker.resume()
    return time.monotonic() - t0


def test_outbox_broker_restart_mid_run(broker, mtad_factory, servers):
    """
    1,000 JSON messages in the outbox; the broker node is stopped and
    started again (same port, same data) while they are delivered: every
    recipient reaches the sink, the outbox ends empty, every recipient is
    on the success queue; duplicates only for messages in flight (at most
    the prefetch window), counted and reported.  The sink answers after
    up to 0.1 s, so that the run lasts longer than the broker's stop.
    """
    from crashutil import RecordingSink
    sink = servers(RecordingSink(seed=5, max_delay=0.1))
    q = queues("fault-out")
    n, prefetch = 1000, 50
    m = mtad_factory(sink_port=sink.port).start(
        **mq_args(broker, q, rabbitmq_prefetch=prefetch), smtp_workers=4)
    m.wait_log(r"rabbitmq: connected")
    broker.publish_many(q["outbox"], [outbox_json(
        "f%d@b.test" % i, "fault %d" % i) for i in range(n)])
    down = _restart_when(broker, lambda: len(sink.messages) >= n // 10,
                         "a tenth delivered")
    assert len(sink.messages) < n, "the run ended before the broker stopped"
    want = {"f%d@b.test" % i for i in range(n)}

    def delivered():
        with sink._cond:
            return {r for mm in sink.messages for r in mm.rcpt_tos}
    wait_until(lambda: delivered() >= want, 40, "all %d delivered" % n,
               interval=0.2)
    wait_until(lambda: broker.count(q["outbox"]) == 0, 20, "empty outbox")
    m.wait_log(r"rabbitmq: connection lost")
    wait_until(lambda: m.log().count("rabbitmq: connected to") >= 2, 20,
               "a second connection")
    ok = [json.loads(b)["recipient"] for b in broker.drain(q["success"])]
    assert set(ok) == want
    dups = len(sink.messages) - n
    print("\noutbox restart: broker down %.1fs, %d delivered, %d duplicate(s)"
          ", %d success message(s)" % (down, len(sink.messages), dups,
                                      len(ok)))
    assert dups <= prefetch, "%d duplicates > prefetch %d" % (dups, prefetch)
    assert broker.count(q["failure"]) == 0


def _send_many(port, msgs):
    """Send (rcpt, data) pairs over one SMTP session; 4xx is retried."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                     timeout=10)
    try:
        s.ehlo()
        for rcpt, data in msgs:
            deadline = time.monotonic() + 20
            while True:
                try:
                    s.sendmail(SENDER, [rcpt], data)
                    break
                except (smtplib.SMTPRecipientsRefused,
                        smtplib.SMTPDataError,
                        smtplib.SMTPSenderRefused) as e:
                    assert time.monotonic() < deadline, repr(e)
                    s.rset()
                    time.sleep(0.2)
        s.quit()
    finally:
        s.close()


def test_inbox_broker_restart_mid_run(broker, mtad_factory):
    """
    1,000 messages received over SMTP while the broker node is stopped and
    started again: all of them end up in the inbox, none is left in the
    spool; duplicates (publishes whose confirm died with the connection)
    are counted and reported.
    """
    q = queues("fault-in")
    n, threads = 1000, 4
    m = mtad_factory().start(**mq_args(broker, q))
    m.wait_log(r"rabbitmq: connected")
    msgs = [("i%d@b.test" % i, make_message("in %d" % i, rcpt="i%d@b.test"
                                            % i)) for i in range(n)]
    errors = []

    def run(part):
        try:
            _send_many(m.port, part)
        except Exception as e:          # reported below
            errors.append(e)
    ts = [threading.Thread(target=run, args=(msgs[k::threads],))
          for k in range(threads)]
    for t in ts:
        t.start()
    down = _restart_when(broker, lambda: m.log().count(
        "status=published") >= n // 4, "a quarter published")
    for t in ts:
        t.join(40)
    assert not errors, errors
    assert not any(t.is_alive() for t in ts)
    want = {r for r, _ in msgs}
    got = []

    def all_in():
        got.extend(json.loads(b)["recipient"] for b in broker.drain(
            q["inbox"], quiet=0.3))
        return set(got) >= want
    wait_until(all_in, 40, "all %d in the inbox" % n, interval=0.2)
    wait_until(lambda: not spoolutil.messages(m.spool), 10,
               "an empty spool")
    m.wait_log(r"rabbitmq: connection lost")
    dups = len(got) - n
    print("\ninbox restart: broker down %.1fs, %d in the inbox, %d "
          "duplicate(s)" % (down, len(got), dups))
    assert dups <= 1000


def test_heartbeat_notices_silent_broker(broker, mtad_factory, sink):
    """
    The relay to the broker stops forwarding without closing TCP: with
    rabbitmq-heartbeat 2 the connection is declared dead within two
    intervals (plus a tick) and made again; the outbox works afterwards.
    """
    q = queues("hb")
    relay = Relay(broker.port).start()
    url = "amqp://guest:guest@127.0.0.1:%d/" % relay.port
    try:
        m = mtad_factory().start(**mq_args(broker, q, url=url),
                                 rabbitmq_heartbeat=2)
        m.wait_log(r"rabbitmq: connected to .*\(heartbeat 2 s\)")
        mark = m.mark()
        assert relay.freeze() == 1
        t0 = time.monotonic()
        m.wait_log(r"rabbitmq: connection lost: nothing from the broker",
                   timeout=10, since=mark)
        lost = time.monotonic() - t0
        m.wait_log(r"rabbitmq: connected to", timeout=10, since=mark)
        back = time.monotonic() - t0
        assert 3.0 <= lost <= 6.5, lost
        assert back <= 8.0, back
        broker.publish(q["outbox"], outbox_json("hb@b.test", "after hb"))
        sink.wait_match(b"Subject: after hb")
        print("\nheartbeat: dead after %.1fs, connected again after %.1fs"
              % (lost, back))
    finally:
        relay.stop()


def test_spool_max_answers_452(broker, mtad_factory):
    """
    The broker is away and rabbitmq-spool-max is 5: five messages are
    taken (250), the sixth gets 452 4.3.1; when the broker returns the
    five are published and leave the spool.
    """
    q = queues("full")
    relay = Relay(broker.port)
    url = "amqp://guest:guest@127.0.0.1:%d/" % relay.port
    try:
        m = mtad_factory().start(**mq_args(broker, q, url=url),
                                 rabbitmq_spool_max=5)
        m.wait_log(r"rabbitmq: .*connect")
        ids = [send_mail(m.port, SENDER, ["s%d@b.test" % i], make_message(
            "full %d" % i, rcpt="s%d@b.test" % i))[0] for i in range(5)]
        with pytest.raises(SendError) as e:
            send_mail(m.port, SENDER, ["s5@b.test"],
                      make_message("full 5", rcpt="s5@b.test"))
        assert e.value.code == 452, e.value
        assert b"4.3.1" in e.value.text, e.value
        assert sorted(spoolutil.messages(m.spool)) == sorted(ids)
        relay.start()
        got = [json.loads(b)["recipient"] for b in
               broker.get(q["inbox"], 5, timeout=20)]
        assert sorted(got) == ["s%d@b.test" % i for i in range(5)]
        for qid in ids:
            m.wait_log(r"%s: removed" % qid)
        wait_until(lambda: not spoolutil.messages(m.spool), 10,
                   "an empty spool")
        # Room again: the next message is taken.
        send_mail(m.port, SENDER, ["s6@b.test"],
                  make_message("full 6", rcpt="s6@b.test"))
        assert json.loads(broker.get(q["inbox"], 1)[0])["recipient"] == \
            "s6@b.test"
        assert broker.count(q["inbox"]) == 0
    finally:
        relay.stop()


def test_blocked_connection_holds_publishes(broker, mtad_factory):
    """
    A memory alarm (watermark 0) makes the broker block publishers:
    qmgr logs connection.blocked, holds its publishes, keeps taking mail
    (250, its loop not stuck on a write), and sends them all once the
    alarm is gone.
    """
    q = queues("blocked")
    m = mtad_factory().start(**mq_args(broker, q))
    m.wait_log(r"rabbitmq: connected")
    broker.ctl("set_vm_memory_high_watermark", "0")
    try:
        first = send_mail(m.port, SENDER, ["b0@b.test"],
                          make_message("blocked 0", rcpt="b0@b.test"))[0]
        m.wait_log(r"rabbitmq: connection blocked by the broker")
        ids = [first] + [send_mail(m.port, SENDER, ["b%d@b.test" % i],
                                   make_message("blocked %d" % i,
                                                rcpt="b%d@b.test" % i),
                                   timeout=5)[0] for i in range(1, 4)]
        assert broker.count(q["inbox"]) == 0
        assert sorted(spoolutil.messages(m.spool)) == sorted(ids)
    finally:
        broker.ctl("set_vm_memory_high_watermark", "0.4")
    m.wait_log(r"rabbitmq: connection unblocked", timeout=15)
    got = [json.loads(b)["recipient"] for b in broker.get(q["inbox"], 4)]
    assert sorted(got) == ["b%d@b.test" % i for i in range(4)]
    for qid in ids:
        m.wait_log(r"%s: removed" % qid)
    assert "connection lost" not in m.log()


def test_inbox_json_carries_rcpt_dsn(broker, mtad_factory):
    """NOTIFY and ORCPT of each recipient go into its inbox JSON's dsn."""
    q = queues("dsn")
    m = mtad_factory().start(**mq_args(broker, q))
    m.wait_log(r"rabbitmq: connected")
    with smtplib.SMTP("127.0.0.1", m.port, local_hostname="client.test",
                      timeout=10) as s:
        s.ehlo()
        s.sendmail(SENDER, ["d1@b.test", "d2@b.test"],
                   make_message("dsn", rcpt="d1@b.test"),
                   mail_options=["RET=HDRS", "ENVID=env-1"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                 "ORCPT=rfc822;orig@b.test"])
        s.sendmail(SENDER, ["d3@b.test"], make_message("no dsn",
                                                       rcpt="d3@b.test"))
    got = {d["recipient"]: d for d in
           (json.loads(b) for b in broker.get(q["inbox"], 3))}
    for r in ("d1@b.test", "d2@b.test"):
        dsn = got[r]["dsn"]
        assert dsn["orcpt"] == "rfc822;orig@b.test", dsn
        assert set(dsn["notify"].split(",")) == {"SUCCESS", "FAILURE"}
        assert dsn["ret"] == "HDRS" and dsn["envid"] == "env-1", dsn
    assert "dsn" not in got["d3@b.test"]


def test_outbox_json_smarthost_overrides_global(broker, mtad_factory, sink,
                                                servers, cert):
    """Issue 4 by JSON: the message's "smarthost" object (port as a
    string, with credentials) wins over the global smarthost; AUTH is
    done; the password is in no log line."""
    from routingutil import RSink
    user, password = "jsonuser", "Js0n-pa55word"
    relay = servers(RSink(tls=cert, users={user: password}))
    q = queues("jsonsh")
    m = mtad_factory().start(**mq_args(broker, q))   # global: the sink
    broker.publish(q["outbox"], outbox_json(
        "dest@b.test", "per-message smarthost by JSON",
        smarthost={"hostname": "127.0.0.1", "port": str(relay.port),
                   "username": user, "password": password}))
    got = relay.wait_for(1)[0]
    assert b"Subject: per-message smarthost by JSON" in got.content
    assert relay.auth_ok and relay.auth_ok[0][1] == user
    ok = json.loads(broker.get(q["success"], 1)[0])
    assert ok["results"][-1]["result"] == "ok"
    assert sink.messages == [], "the global smarthost got it"
    m.wait_log(r"to=<dest@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,"
               r".*status=sent" % relay.port)
    assert password not in m.log()
