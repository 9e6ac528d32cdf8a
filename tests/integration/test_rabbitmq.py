"""
The RabbitMQ bridge (issue 5, DESIGN section 6 and 7) against a real
rabbitmq-server started for this module (rabbitutil.Broker), with pika as
the test's own client: SMTP in -> inbox JSON; a broker that is away when
mail arrives; outbox JSON -> delivery to the sink with results and
success; invalid JSON -> failure queue; 4xx -> retry queue -> delivered
after the TTL; two instances sharing one outbox.

Each test uses its own queue names, so tests do not see each other's
messages on the shared broker.
"""

import json
import os
import pwd

import pytest

import mtadtest
from mtadtest import Mtad, make_message, send_mail, wait_until
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
    assert not list((m.spool / "queue").iterdir())


def test_broker_away_at_receive_time(broker, mtad_factory):
    q = queues("away")
    relay = Relay(broker.port)
    url = "amqp://guest:guest@127.0.0.1:%d/" % relay.port
    try:
        m = mtad_factory().start(**mq_args(broker, q, url=url))
        m.wait_log(r"rabbitmq: .*connect")
        qid, _ = send_mail(m.port, SENDER, ["late@b.test"],
                           make_message("while away", rcpt="late@b.test"))
        assert (m.spool / "queue" / qid).exists()
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
