"""
smtpd message properties (DESIGN section 7) and DSN parameters:

- x-mq-* header fields are removed from the stored message, everything
  else arrives byte for byte (folded fields, look-alikes, the body);
- x-mq-smarthost-* sends the message to a second sink, with its AUTH
  credentials, from the x-mq-ip source address; the password never
  appears in a log;
- the other x-mq-* headers and RET/ENVID/NOTIFY/ORCPT reach qmgr: the
  envelope file in the spool (the sink answers 451, so it stays queued);
- x-mq-envelope replaces the envelope sender;
- smtp-mq-headers: false leaves the fields in the message, unread;
- hostile header sections: a 1 MiB header line, a 1 MiB folded x-mq field,
  100,000 header fields, a mail loop (too many Received: fields).

The rule that x-mq-* is honoured only from clients that may relay cannot
be reached over SMTP: every client that may give MAIL may relay (inside
smtp-range, or authenticated).  The check in smtpd stays as a safeguard.
"""

import re
import time

import mtadtest
from mtadtest import wait_until
from routingutil import RSink
from sessionutil import Client, queued_id, spool_envelope

SENDER = "sender@a.test"
RCPT = "rcpt@b.test"
USER, PASSWORD = "mq-user", "Pa55-w0rd-never-logged"


def without_received(content):
    """The delivered message minus the Received: field mtad put first."""
    lines = content.split(b"\r\n")
    assert lines[0].startswith(b"Received: from "), lines[0]
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


def send_raw(port, data, sender=SENDER, rcpts=(RCPT,), mail_params="",
             rcpt_params=""):
    """One transaction with DATA already CRLF-ended and dot-stuffed."""
    with Client(port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))
        assert code == 250, lines
        for r in rcpts:
            code, lines = c.cmd("RCPT TO:<%s>%s" % (r, rcpt_params))
            assert code == 250, lines
        code, lines = c.cmd("DATA")
        assert code == 354, lines
        c.send(data + b".\r\n")
        code, lines = c.reply(timeout=20)
        c.cmd("QUIT")
        return code, lines


def test_xmq_stripped_and_routed(mtad_factory, sink, workdir):
    sink2 = RSink(users={USER: PASSWORD}, auth_plaintext=True).start()
    try:
        m = mtad_factory()
        m.start()
        kept = (b"From: <sender@a.test>\r\n"
                b"To: <rcpt@b.test>\r\n"
                b"Subject: folded\r\n\tsubject line\r\n"
                b"X-Mqtag: a look-alike stays\r\n"
                b"X-Mailer: x-mq-tag: in a value stays\r\n")
        data = (b"X-MQ-Smarthost-Hostname: 127.0.0.1\r\n" + kept[:23] +
                b"x-mq-smarthost-port: %d\r\n" % sink2.port +
                b"x-mq-smarthost-username: " + USER.encode() + b"\r\n" +
                b"X-Mq-Smarthost-Password:\r\n " + PASSWORD.encode() +
                b"\r\n" + kept[23:] +
                b"x-mq-ip: 127.0.0.2\r\n"
                b"x-mq-tag: t1\r\nx-mq-tag:\r\n\tt2\r\n"
                b"\r\n"
                b"Body line.\r\n"
                b"x-mq-tag: a body line stays\r\n"
                b"..leading dot\r\n")
        want = kept + (b"\r\nBody line.\r\nx-mq-tag: a body line stays\r\n"
                       b".leading dot\r\n")
        code, lines = send_raw(m.port, data)
        assert code == 250, lines
        msgid = queued_id(lines)

        [got] = sink2.wait_for(1, timeout=15)
        assert without_received(got.content) == want
        assert got.mail_from == SENDER and got.rcpt_tos == [RCPT]
        # The smarthost's credentials were used.  (x-mq-ip reaches qmgr
        # as properties.ips, see below; the source address it names is
        # not chosen by delivery yet.)
        assert sink2.auth_ok and sink2.auth_ok[0][1] == USER
        assert sink.messages == [], "went to the global smarthost"
        m.wait_log(r"%s: properties from x-mq headers: smarthost ips tags"
                   % msgid)
        m.wait_log(r"mtad/qmgr\[\d+\]: %s: removed" % msgid)
        assert PASSWORD not in m.log()
    finally:
        sink2.stop()


def test_properties_and_dsn_reach_qmgr(mtad, sink):
    sink.always("rcpt", "451 4.3.0 keep it queued")
    mtad.start()
    data = (b"Subject: properties\r\n"
            b"x-mq-maxattempts: 9\r\n"
            b"x-mq-retries: 3600, 7200\r\n"
            b"x-mq-maxdelivertime: 2030-01-02 03:04:05\r\n"
            b"x-mq-dsn-notify: delay\r\n"
            b"x-mq-dsn-ret: FULL\r\n"
            b"x-mq-dsn-envid: from-header\r\n"
            b"x-mq-tag: campaign-7\r\n"
            b"X-MQ-Campaign-Id: c7\r\n"
            b"x-mq-smarthost-port: 99999\r\n"
            b"x-mq-envelope: <bounce@a.test>\r\n"
            b"x-mq-ip: 127.0.0.2\r\nx-mq-ip: ::1\r\n"
            b"\r\nbody\r\n")
    code, lines = send_raw(mtad.port, data, rcpts=(RCPT, "second@b.test"),
                           mail_params=" RET=HDRS ENVID=env+2Bid",
                           rcpt_params=" NOTIFY=SUCCESS,FAILURE "
                           "ORCPT=rfc822;orig+2Brcpt@b.test")
    assert code == 250, lines
    msgid = queued_id(lines)
    env = spool_envelope(mtad.spool, msgid)
    props = env["properties"]
    assert props["maxattempts"] == 9
    assert props["retries"] == [3600, 7200]
    assert props["maxdelivertime"] == "2030-01-02 03:04:05"
    assert props["tags"] == ["campaign-7"]
    assert props["ips"] == ["127.0.0.2", "::1"]
    assert props["campaign-id"] == "c7"
    # RET and ENVID from MAIL win over the x-mq-dsn-* headers.
    assert props["dsn"] == {"notify": "DELAY", "ret": "HDRS",
                            "envid": "env+id"}
    assert "smarthost" not in props, "a bad port must not be kept"
    assert env["envelope"] == "bounce@a.test"
    r = {x["address"]: x for x in env["recipients"]}
    assert r[RCPT]["notify"] == "SUCCESS,FAILURE"
    assert r[RCPT]["orcpt"] == "rfc822;orig+rcpt@b.test"
    assert r["second@b.test"]["notify"] == "SUCCESS,FAILURE"
    mtad.wait_log(r"%s: x-mq headers: x-mq-smarthost-port: not a port "
                  r"number, ignored" % msgid)
    mtad.wait_log(r"%s: envelope sender <bounce@a\.test> from "
                  r"x-mq-envelope" % msgid)


def test_dsn_parameters_without_headers(mtad, sink):
    sink.always("rcpt", "451 4.3.0 keep it queued")
    mtad.start()
    code, lines = send_raw(mtad.port, b"Subject: dsn only\r\n\r\nx\r\n",
                           mail_params=" RET=FULL", rcpt_params=" NOTIFY=NEVER")
    assert code == 250, lines
    env = spool_envelope(mtad.spool, queued_id(lines))
    assert env["properties"] == {"dsn": {"ret": "FULL"}}
    assert env["recipients"][0]["notify"] == "NEVER"
    assert env["recipients"][0]["orcpt"] == ""
    assert env["envelope"] == SENDER


def test_mq_headers_off_keeps_them(mtad, sink):
    mtad.start(smtp_mq_headers="false")
    data = (b"Subject: off\r\n"
            b"x-mq-smarthost-hostname: 127.0.0.1\r\n"
            b"x-mq-smarthost-port: 9\r\n"
            b"X-MQ-Tag: t\r\n"
            b"\r\nbody\r\n")
    code, lines = send_raw(mtad.port, data)
    assert code == 250, lines
    [got] = sink.wait_for(1)
    assert without_received(got.content) == data
    msgid = queued_id(lines)
    assert not re.search(r"%s: properties from x-mq" % msgid, mtad.log())


def test_hostile_header_sections(mtad, sink):
    mtad.start()
    pid = mtad.child("smtpd")
    rss0 = int(mtadtest.proc_status(pid)["VmRSS"].split()[0])

    # A 1 MiB header line: over the 1000-octet text line limit.
    t0 = time.monotonic()
    code, lines = send_raw(mtad.port, b"Subject: " + b"v" * (1 << 20) +
                           b"\r\n\r\nbody\r\n")
    assert code == 554 and "5.6.0" in lines[0], lines

    # A folded x-mq field of 1 MiB: removed, ignored, the rest intact.
    folded = b"x-mq-tag: a\r\n" + b" b\r\n" * (1 << 18)
    code, lines = send_raw(mtad.port, b"Subject: big fold\r\n" + folded +
                           b"To: <rcpt@b.test>\r\n\r\nbody\r\n")
    assert code == 250, lines
    mtad.wait_log(r"%s: x-mq headers: x-mq-tag: too long"
                  % queued_id(lines))

    # 100,000 header fields, every other one x-mq.
    many = b"".join((b"x-mq-k%d: v\r\n" if i % 2 else b"X-H%d: v\r\n") % i
                    for i in range(100000))
    code, lines = send_raw(mtad.port, b"Subject: many\r\n" + many +
                           b"\r\nbody\r\n")
    assert code == 250, lines
    msgs = sink.wait_for(2, timeout=30)
    big = [x for x in msgs if b"Subject: many" in x.content][0]
    assert b"x-mq-" not in big.content
    assert big.content.count(b"\r\nX-H") == 50000
    fold = [x for x in msgs if b"Subject: big fold" in x.content][0]
    assert without_received(fold.content) == \
        b"Subject: big fold\r\nTo: <rcpt@b.test>\r\n\r\nbody\r\n"
    assert time.monotonic() - t0 < 30
    rss1 = int(mtadtest.proc_status(pid)["VmRSS"].split()[0])
    assert rss1 - rss0 < 64 * 1024, "smtpd grew by %d kB" % (rss1 - rss0)


def test_mail_loop(mtad, sink):
    mtad.start()
    hops = b"".join(b"Received: from h%d.test by h%d.test; x\r\n" % (i, i)
                    for i in range(51))
    code, lines = send_raw(mtad.port, hops + b"Subject: loop\r\n\r\nx\r\n")
    assert code == 554 and "5.4.6" in lines[0], lines
    # 50 is still fine: with ours it makes 51.
    code, lines = send_raw(mtad.port, hops[hops.index(b"\r\n") + 2:] +
                           b"Subject: not a loop\r\n\r\nx\r\n")
    assert code == 250, lines
    got = sink.wait_for(1)
    assert len(got) == 1 and b"Subject: not a loop" in got[0].content
