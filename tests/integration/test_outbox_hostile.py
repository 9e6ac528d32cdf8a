"""
Hostile RabbitMQ outbox messages (issue 8, "the JSON message reader";
DESIGN section 6 and 7), found with fuzz/fuzz_envelope.c and checked end
to end against a real rabbitmq-server (rabbitutil.Broker) and the sink:

  - number forms that JSON does not have (1. 073634446 NaN): what mtad
    publishes to the results, success and failure queues must be JSON a
    strict reader takes (common/json_strict.c);
  - a message whose "smarthost" names no usable host (a hostname of 300
    octets) is refused with the reason and never delivered through
    another host.
"""

import json

import pytest

from mtadtest import make_message, wait_until
from rabbitutil import Broker

SENDER = "sender@a.test"


@pytest.fixture(scope="module")
def broker():
    b = Broker().start()
    yield b
    b.stop()


def mq_args(broker, tag):
    q = {k: "%s-%s" % (tag, k) for k in
         ("inbox", "outbox", "results", "success", "failure", "retry")}
    args = {"rabbitmq_address": broker.url}
    args.update({"rabbitmq_" + k: v for k, v in q.items()})
    return q, args


def strict_json(body):
    """json.loads that refuses NaN and Infinity as well."""
    def no_constant(name):
        raise ValueError("not JSON: %s" % name)
    return json.loads(body, parse_constant=no_constant)


def test_outbox_numbers_stay_json(broker, mtad_factory, sink):
    q, args = mq_args(broker, "numbers")
    m = mtad_factory().start(**args)
    mime = json.dumps(make_message("odd numbers").decode())
    body = ('{"envelope": "%s", "recipient": "n@b.test", "mime": %s, '
            '"a": 1., "b": 073634446, "c": NaN}' % (SENDER, mime)).encode()
    broker.publish(q["outbox"], body)
    # Taken (delivered) or refused (failure queue): either way, what mtad
    # publishes is JSON.
    wait_until(lambda: broker.count(q["success"]) + broker.count(
        q["failure"]) > 0, 15, "a success or failure message")
    out = broker.get(q["success"], 1, timeout=1) \
        if broker.count(q["success"]) else broker.get(q["failure"], 1)
    strict_json(out[0])
    if broker.count(q["results"]):
        strict_json(broker.get(q["results"], 1)[0])
    assert m.running()


def test_outbox_bad_smarthost_not_sent_elsewhere(broker, mtad_factory,
                                                 sink):
    """A smarthost mtad cannot use (a 300-octet name) is refused to the
    failure queue with the reason, never sent through another host."""
    q, args = mq_args(broker, "longhost")
    m = mtad_factory().start(**args)
    host = "h" * 300 + ".test"
    body = json.dumps({"envelope": SENDER, "recipient": "l@b.test",
                       "mime": make_message("long smarthost").decode(),
                       "smarthost": {"hostname": host}}).encode()
    broker.publish(q["outbox"], body)
    out = strict_json(broker.get(q["failure"], 1)[0])
    assert "smarthost" in out["reason"], out["reason"]
    wait_until(lambda: broker.count(q["outbox"]) == 0, 5, "acked")
    assert not sink.matching(b"Subject: long smarthost"), \
        "sent through the global smarthost, not the one it names"
    assert m.running()
