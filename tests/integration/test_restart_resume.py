"""
Delivery resumes by itself once a destination is back (benchmark issue 7,
scenario 6), without waiting out retry times that only said "down":

- after a restart, each queue probes its destination with one message;
  when that is delivered, the recipients that were deferred without an
  SMTP reply (connection refused, "delivery temporarily suspended") are
  released at once;
- the same release follows any delivery in a queue, e.g. when a queue
  that the back-off suspended comes back;
- a recipient deferred by a real 4xx reply keeps its schedule.

The smarthost is a QSink (queueutil.py) on a 127.0.0.1 port that nobody
listens on until the test starts it.  Retry times are an hour, so that
anything delivered within the test's bounds was released, not retried;
nothing here runs mtactl flush.
"""

import re
import time

from ctlutil import wait_queues
from mtadtest import free_port, make_message, send_mail

SENDER = "sender@a.test"
KEY = "(smarthost)"


def deferred_noreply(m, qid):
    """Wait for qid's deferral without a server (worker or sweep line)."""
    m.wait_log(r"%s: to=<[^>]*>, relay=none, .*status=deferred" % qid)


def wait_deferred(m, n):
    """Wait until mtactl counts n deferred recipients in the queue: their
    envelopes (next attempt in an hour) are saved by then."""
    wait_queues(m, lambda q: q.get(KEY, {}).get("deferred") == n,
                what="%d deferred in %s" % (n, KEY))


def with_retries(data, retries):
    """data with an x-mq-retries header: the message's own schedule."""
    return b"x-mq-retries: %d\r\n" % retries + data


def test_restart_probe_resumes_delivery(mtad_factory, qsinks):
    """Scenario 6 in small: queued while the smarthost was down, then a
    stop, the smarthost up, a start: everything arrives within seconds."""
    n = 40
    port = free_port()                  # nobody listens here yet
    m = mtad_factory(sink_port=port).start(retries=3600)
    qids = [send_mail(m.port, SENDER, ["r%d@b.test" % i],
                      make_message("down %d" % i))[0] for i in range(n)]
    for qid in qids:
        deferred_noreply(m, qid)
    # Three refused connections back the queue off; the rest is swept.
    m.wait_log(r"queue \(smarthost\): 3 connection failures in a row, "
               r"backed off for 3600s")
    wait_deferred(m, n)
    assert m.stop() == 0

    sink = qsinks(port=port)
    mark = m.mark()
    t0 = time.monotonic()
    m.start(retries=3600)
    m.wait_log(r"mtad/qmgr\[\d+\]: queue \(smarthost\): restart probe with "
               r"1 message, %d waiting" % (n - 1), since=mark)
    sink.wait_for(n, timeout=10)
    elapsed = time.monotonic() - t0
    assert elapsed < 8, "took %.1fs after the start" % elapsed
    m.wait_log(r"queue \(smarthost\): delivery succeeded, releasing %d "
               r"recipients deferred without a reply" % (n - 1), since=mark)
    for qid in qids:
        m.wait_log(r"%s: removed" % qid, since=mark)
    got = sorted(r for msg in sink.originals() for r in msg.rcpt_tos)
    assert got == sorted("r%d@b.test" % i for i in range(n))
    assert sink.dsns() == []
    log = m.log()[mark:]
    assert "mtactl flush" not in log
    # One probe per queue, one release.
    assert len(re.findall(r"restart probe with", log)) == 1
    assert len(re.findall(r"releasing \d+ recipients?", log)) == 1


def test_restart_probe_that_fails_keeps_schedule(mtad_factory, qsinks):
    """Still down after the restart: one attempt for the probe message,
    none for the others, and no release."""
    port = free_port()
    m = mtad_factory(sink_port=port).start(retries=3600)
    qids = [send_mail(m.port, SENDER, ["d%d@b.test" % i],
                      make_message("down %d" % i))[0] for i in range(5)]
    for qid in qids:
        deferred_noreply(m, qid)
    wait_deferred(m, 5)
    assert m.stop() == 0

    mark = m.mark()
    m.start(retries=3600)
    m.wait_log(r"queue \(smarthost\): restart probe with 1 message, "
               r"4 waiting", since=mark)
    m.wait_log(r"mtad/smtp\[\d+\]: [0-9A-F]{12}: to=<d\d@b\.test>, "
               r"relay=none, .*status=deferred", since=mark)
    wait_deferred(m, 5)
    time.sleep(1.0)
    log = m.log()[mark:]
    assert len(re.findall(r"mtad/smtp\[\d+\]: [0-9A-F]{12}: to=<",
                          log)) == 1
    assert "releasing" not in log
    for qid in qids:
        assert "%s: removed" % qid not in log


def test_4xx_deferral_keeps_schedule(mtad_factory, qsinks):
    """A delivery releases the recipient that met a closed port, not the
    one a reachable server answered 451."""
    port = free_port()
    m = mtad_factory(sink_port=port).start(retries=3600)
    down, _ = send_mail(m.port, SENDER, ["down@b.test"],
                        make_message("while down"))
    deferred_noreply(m, down)
    wait_deferred(m, 1)

    sink = qsinks(port=port, rule=lambda a: "451 4.7.1 greylisted, later"
                  if a.startswith("grey") else None)
    grey, _ = send_mail(m.port, SENDER, ["grey@b.test"],
                        make_message("greylisted"))
    m.wait_log(r"%s: to=<grey@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
               r":%d, .*status=deferred \(host .* said: 451 4\.7\.1 "
               r"greylisted"
               % (grey, port))
    wait_deferred(m, 2)
    assert "releasing" not in m.log()       # a 451 is no delivery

    ok, _ = send_mail(m.port, SENDER, ["ok@b.test"], make_message("fine"))
    m.wait_log(r"queue \(smarthost\): delivery succeeded, releasing 1 "
               r"recipient deferred without a reply")
    sink.wait_for(2, timeout=10)
    m.wait_log(r"%s: removed" % ok)
    m.wait_log(r"%s: removed" % down)
    # The greylisted recipient waits for its hour.
    time.sleep(2.0)
    assert sink.seen("grey@b.test") == 1
    assert "%s: removed" % grey not in m.log()
    assert sorted(r for msg in sink.originals() for r in msg.rcpt_tos) == \
        ["down@b.test", "ok@b.test"]
    wait_deferred(m, 1)


def test_suspended_queue_released_on_success(mtad_factory, qsinks):
    """The back-off suspends the queue (2 s) and sweeps its mail onto the
    messages' own hour-long schedule; the first delivery once the
    destination is back releases all of it."""
    n = 8
    port = free_port()
    m = mtad_factory(sink_port=port).start(retries=2)
    qids = [send_mail(m.port, SENDER, ["s%d@b.test" % i],
                      with_retries(make_message("down %d" % i), 3600))[0]
            for i in range(n)]
    m.wait_log(r"queue \(smarthost\): 3 connection failures in a row, "
               r"backed off for 2s")
    for qid in qids:
        deferred_noreply(m, qid)
    wait_deferred(m, n)
    swept = re.findall(r"status=deferred \(delivery temporarily suspended",
                       m.log())
    assert swept, "nothing was deferred by the suspension"

    # The destination is back; new mail (the config's 2 s schedule) gets
    # through when the back-off is over, and the rest follows at once.
    # (Without early release, the rest would wait for its hour.)
    sink = qsinks(port=port)
    t0 = time.monotonic()
    new, _ = send_mail(m.port, SENDER, ["new@b.test"],
                       make_message("after the outage"))
    sink.wait_for(n + 1, timeout=15)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, "took %.1fs" % elapsed
    m.wait_log(r"queue \(smarthost\): resumed")
    # The first delivery (the new mail, or the back-off's own probe with
    # one of the others) releases the rest.
    m.wait_log(r"queue \(smarthost\): delivery succeeded, releasing "
               r"(%d|%d) recipients deferred without a reply" % (n, n - 1))
    for qid in qids + [new]:
        m.wait_log(r"%s: removed" % qid)
    assert sink.dsns() == []


def test_own_failure_not_released(mtad_factory, qsinks):
    """A message whose source address cannot be bound (x-mq-ip not on
    this machine) is deferred without a reply too, but for a reason of
    its own (4.4.0): deliveries of other mail must not retry it each
    time."""
    sink = qsinks()
    m = mtad_factory(sink_port=sink.port).start(retries=3600)
    bad, _ = send_mail(m.port, SENDER, ["bad@b.test"],
                       b"x-mq-ip: 192.0.2.1\r\n" + make_message("not ours"))
    m.wait_log(r"%s: to=<bad@b\.test>, relay=none, .*dsn=4\.4\.0, "
               r"status=deferred \(cannot bind source address 192\.0\.2\.1"
               % bad)
    wait_deferred(m, 1)
    for i in range(4):
        send_mail(m.port, SENDER, ["ok%d@b.test" % i],
                  make_message("fine %d" % i))
        sink.wait_for(i + 1, timeout=10)
    time.sleep(1.0)
    log = m.log()
    assert len(re.findall(r"mtad/smtp\[\d+\]: %s: to=<bad@b\.test>" % bad,
                          log)) == 1
    assert "releasing" not in log
    wait_deferred(m, 1)


def test_suspended_queue_probes_by_itself(mtad_factory, qsinks):
    """All mail waits for an hour-long retry; when the back-off is over,
    the queue probes with one of those recipients anyway, and its
    delivery releases the others: no new mail needed."""
    n = 6
    port = free_port()
    m = mtad_factory(sink_port=port).start(retries=2)
    qids = [send_mail(m.port, SENDER, ["p%d@b.test" % i],
                      with_retries(make_message("down %d" % i), 3600))[0]
            for i in range(n)]
    for qid in qids:
        deferred_noreply(m, qid)
    wait_deferred(m, n)
    # Still down: each probe costs one connection, not one per message.
    mark = m.mark()
    m.wait_log(r"queue \(smarthost\): probe failed, backed off for 2s",
               since=mark)
    sink = qsinks(port=port)
    sink.wait_for(n, timeout=15)
    m.wait_log(r"queue \(smarthost\): resumed")
    m.wait_log(r"queue \(smarthost\): delivery succeeded, releasing %d "
               r"recipients deferred without a reply" % (n - 1))
    for qid in qids:
        m.wait_log(r"%s: removed" % qid)
