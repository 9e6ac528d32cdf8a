"""
smtpd limits and hostile input, each with its reply, no crash and no
message queued that should not be:

- EHLO capabilities (DSN, SMTPUTF8, SIZE ...);
- SIZE refused at MAIL and during DATA (the whole message discarded);
- the recipients cap; command lines of 512 and 513 octets, text lines of
  1000 and 1001; NUL octets; commands out of order; unknown commands;
- SMTP smuggling: a bare LF or CR around a dot never ends DATA, so the
  second transaction hidden in the message is never queued;
- pipelined transactions;
- address lengths, RCPT TO:<>, 8-bit addresses without SMTPUTF8, DSN
  parameter syntax;
- connections per client IP, the idle timeout and the session time limit;
- back-pressure: qmgr gone during DATA gives 4xx, never 250.
"""

import socket
import time

import pytest

from mtadtest import wait_until
import spoolutil
from sessionutil import Client, queued_id, spool_envelope

SENDER = "sender@a.test"
RCPT = "rcpt@b.test"


def msg(subject, body=b"Hello.\r\n"):
    return b"Subject: " + subject.encode() + b"\r\n\r\n" + body


def begin(c, rcpts=(RCPT,), mail=SENDER, params=""):
    c.ehlo()
    code, lines = c.cmd("MAIL FROM:<%s>%s" % (mail, params))
    assert code == 250, lines
    for r in rcpts:
        code, lines = c.cmd("RCPT TO:<%s>" % r)
        assert code == 250, lines
    code, lines = c.cmd("DATA")
    assert code == 354, lines


def spool_messages(m):
    """The ids of the messages queued in the spool."""
    return sorted(spoolutil.messages(m.spool))


@pytest.fixture
def small(mtad):
    """An mtad with small limits, for the tests that share them."""
    mtad.start(smtp_maxsize=4096, smtp_max_recipients=3)
    return mtad


def test_ehlo_capabilities(small):
    with Client(small.port) as c:
        caps = c.ehlo()
    for cap in ("PIPELINING", "SIZE 4096", "8BITMIME", "DSN", "SMTPUTF8",
                "ENHANCEDSTATUSCODES"):
        assert cap in caps, caps


def test_size_at_mail_and_in_data(small, sink):
    with Client(small.port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<%s> SIZE=4097" % SENDER)
        assert code == 552 and "5.3.4" in lines[0], lines
        code, lines = c.cmd("MAIL FROM:<%s> SIZE=4096" % SENDER)
        assert code == 250, lines
        c.cmd("RSET")
        # No SIZE given, the message is too big: refused at the dot.
        code, lines = c.cmd("MAIL FROM:<%s>" % SENDER)
        assert code == 250
        assert c.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(msg("too big", b"x" * 70 + b"\r\n") * 1 +
               (b"y" * 70 + b"\r\n") * 80 + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 552 and "5.3.4" in lines[0], lines
        # The session goes on: a small message is fine.
        code, lines = c.cmd("MAIL FROM:<%s>" % SENDER)
        assert code == 250, lines
        assert c.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(msg("small enough") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
    got = sink.wait_for(1)
    assert len(got) == 1 and b"small enough" in got[0].content
    small.wait_log(r"reject: END-OF-MESSAGE .*552 5\.3\.4")


def test_recipient_cap(small, sink):
    with Client(small.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        for i in range(3):
            assert c.cmd("RCPT TO:<r%d@b.test>" % i)[0] == 250
        code, lines = c.cmd("RCPT TO:<r3@b.test>")
        assert code == 452 and "4.5.3" in lines[0], lines
        assert c.cmd("DATA")[0] == 354
        c.send(msg("three") + b".\r\n")
        assert c.reply(timeout=15)[0] == 250
    [got] = sink.wait_for(1)
    assert sorted(got.rcpt_tos) == ["r0@b.test", "r1@b.test", "r2@b.test"]


def test_line_lengths(small, sink):
    with Client(small.port) as c:
        c.ehlo()
        # 512 octets with CRLF: the longest command line.
        code, lines = c.cmd("NOOP " + "x" * 505)
        assert code == 250, lines
        code, lines = c.cmd("NOOP " + "x" * 506)
        assert code == 500 and "5.5.2" in lines[0], lines
        code, lines = c.cmd("NOOP " + "x" * 100000)
        assert code == 500, lines
        assert c.cmd("NOOP")[0] == 250
        # 1000 octets with CRLF: the longest text line.
        begin(c)
        c.send(msg("long line 1000", b"a" * 998 + b"\r\n") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
        begin(c)
        c.send(msg("long line 1001", b"a" * 999 + b"\r\n") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 554 and "5.6.0" in lines[0], lines
    got = sink.wait_for(1)
    time.sleep(0.3)
    assert [b"long line 1000" in x.content for x in sink.messages] == [True]


def test_nul_bytes(small, sink):
    with Client(small.port) as c:
        c.ehlo()
        code, lines = c.cmd("NOOP a\0b")
        assert code == 500 and "5.5.2" in lines[0], lines
        begin(c)
        c.send(msg("nul", b"a\0b\r\n") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 554 and "NUL" in lines[0], lines
        assert c.cmd("QUIT")[0] == 221
    time.sleep(0.3)
    assert sink.messages == []


@pytest.mark.parametrize("seq", [b"\n.\n", b"\n.\r\n", b"\r.\r",
                                 b"\r\n.\n"], ids=["LF.LF", "LF.CRLF",
                                                   "CR.CR", "CRLF.LF"])
def test_smuggling(small, sink, seq):
    smuggled = (b"MAIL FROM:<evil@a.test>\r\nRCPT TO:<victim@b.test>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
    with Client(small.port) as c:
        begin(c)
        c.send(b"Subject: cover\r\n\r\ntext" + seq + smuggled +
               b".\r\nQUIT\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 554 and "bare CR or LF" in lines[0], lines
        # The next reply answers our QUIT: nothing was smuggled in.
        code, lines = c.reply(timeout=5)
        assert code == 221, lines
    time.sleep(0.5)
    assert sink.messages == []
    assert spool_messages(small) == []


def test_pipelining(small, sink):
    with Client(small.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<a@b.test>\r\nRCPT TO:<b@b.test>"
               "\r\nDATA\r\n" % SENDER)
        assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        c.send(msg("pipe one") + b".\r\nMAIL FROM:<%s>\r\n"
               b"RCPT TO:<c@b.test>\r\nDATA\r\n" % SENDER.encode())
        codes = [c.reply(timeout=15)[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354], codes
        c.send(msg("pipe two") + b".\r\nQUIT\r\n")
        assert c.reply(timeout=15)[0] == 250
        assert c.reply()[0] == 221
    got = sink.wait_for(2)
    subjects = sorted(x.content.split(b"Subject: ")[1][:8] for x in got)
    assert subjects == [b"pipe one", b"pipe two"]


def test_order_and_unknown_commands(small):
    with Client(small.port) as c:
        code, lines = c.cmd("MAIL FROM:<%s>" % SENDER)
        assert code == 503, lines
        c.ehlo()
        assert c.cmd("RCPT TO:<%s>" % RCPT)[0] == 503
        assert c.cmd("DATA")[0] == 503
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 503
        assert c.cmd("DATA")[0] == 503
        # Errors are counted (5 so far): the 20th one ends the session.
        c.send("".join("XYZZY %d\r\n" % i for i in range(15)))
        codes = [c.reply()[0] for _ in range(15)]
        assert codes == [500] * 15, codes
        code, lines = c.reply()
        assert code == 421 and "too many errors" in lines[0], lines
        assert c.closed_within(5)


def test_address_checks(small):
    with Client(small.port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<%s@a.test>" % ("l" * 65))
        assert code == 501, lines
        code, lines = c.cmd("MAIL FROM:<%s@%s.%s.%s.test>" % (
            "l" * 64, "d" * 63, "d" * 63, "d" * 57))
        assert code == 501, lines          # a 255-octet path
        code, lines = c.cmd("MAIL FROM:<j\u00f8rn@a.test>")
        assert code == 553 and "5.6.7" in lines[0], lines
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        code, lines = c.cmd("RCPT TO:<>")
        assert code == 501, lines
        code, lines = c.cmd("RCPT TO:<r\u00e9@b.test>")
        assert code == 553 and "5.6.7" in lines[0], lines
        code, lines = c.cmd("RCPT TO:<%s> NOTIFY=SOMETIMES" % RCPT)
        assert code == 501 and "5.5.4" in lines[0], lines
        # (An ORCPT over 500 octets cannot fit a 512-octet line: unit test.)
        code, lines = c.cmd("RCPT TO:<%s> ORCPT=%s" % (RCPT, RCPT))
        assert code == 501 and "ORCPT" in lines[0], lines
        c.cmd("RSET")
        code, lines = c.cmd("MAIL FROM:<%s> RET=SOME" % SENDER)
        assert code == 501 and "5.5.4" in lines[0], lines
        code, lines = c.cmd("MAIL FROM:<%s> ENVID=%s" % (SENDER, "e" * 101))
        assert code == 501 and "ENVID" in lines[0], lines
        code, lines = c.cmd("MAIL FROM:<%s> SMTPUTF8 BODY=8BITMIME"
                            % "j\u00f8rn@a.test")
        assert code == 250, lines
        code, lines = c.cmd("RCPT TO:<r\u00e9@b.test>")
        assert code == 250, lines
        c.send(b"RCPT TO:<r\xff@b.test>\r\n")     # not UTF-8
        code, lines = c.reply()
        assert code == 553 and "UTF-8" in lines[0], lines


def test_utf8_message_is_queued(mtad, sink):
    sink.always("rcpt", "451 4.3.0 keep it queued")
    mtad.start()
    with Client(mtad.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<j\u00f8rn@a.test> SMTPUTF8\r\n".encode())
        assert c.reply()[0] == 250
        c.send("RCPT TO:<r\u00e9@b.test>\r\n".encode())
        assert c.reply()[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(msg("utf8") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
    env = spool_envelope(mtad.spool, queued_id(lines))
    assert env["envelope"] == "j\u00f8rn@a.test"
    assert env["recipients"][0]["address"] == "r\u00e9@b.test"


def test_connections_per_ip(mtad):
    mtad.start(smtp_max_connections_per_ip=2)
    a, b = Client(mtad.port), Client(mtad.port)
    try:
        assert a.greeting[0] == 220 and b.greeting[0] == 220
        with Client(mtad.port) as c:
            assert c.greeting[0] == 421, c.greeting
            assert "4.7.0" in c.greeting[1][0]
            assert c.closed_within(5)
        # Another client address has its own count.
        with Client(mtad.port, source="127.0.0.2") as d:
            assert d.greeting[0] == 220
        a.cmd("QUIT")
        a.close()

        def third():
            with Client(mtad.port) as e:
                return e.greeting[0] == 220
        wait_until(third, 5, "a slot freed by QUIT")
    finally:
        a.close()
        b.close()
    mtad.wait_log(r"reject: CONNECT from unknown\[127\.0\.0\.1\]: 421 4\.7\.0")


def test_idle_and_session_timeouts(mtad):
    mtad.start(smtp_timeout=1, smtp_session_timeout=3)
    t0 = time.monotonic()
    with Client(mtad.port) as idle:
        code, lines = idle.reply(timeout=5)
        assert code == 421 and "4.4.2" in lines[0], lines
        assert idle.closed_within(3)
    assert time.monotonic() - t0 < 4
    # A busy client is stopped by the session limit all the same.
    t0 = time.monotonic()
    with Client(mtad.port) as busy:
        busy.ehlo()
        while True:
            code, lines = busy.cmd("NOOP", timeout=5)
            if code != 250:
                break
            assert time.monotonic() - t0 < 6, "no session time limit"
            time.sleep(0.4)
        assert code == 421 and "session time limit" in lines[0], lines
        assert busy.closed_within(3)
    assert time.monotonic() - t0 >= 2.5
    mtad.wait_log(r"session time limit after NOOP from unknown\[127\.0\.0\.1\]")


def test_qmgr_gone_during_data_is_4xx(mtad, sink):
    mtad.start()
    with Client(mtad.port) as c:
        begin(c)
        c.send(b"Subject: half\r\n\r\nfirst part\r\n")
        time.sleep(0.2)
        mtad.kill9("qmgr")
        c.send(b"second part\r\n.\r\n")
        code, lines = c.reply(timeout=15)
        assert 400 <= code < 500, lines
    time.sleep(0.5)
    assert sink.messages == []


def test_spool_refusal_is_4xx(mtad, sink):
    """qmgr cannot create a slot file: 4xx at DATA, never 250."""
    mtad.start()
    incoming = mtad.spool / "slots"    # empty: every slot must be made
    assert not list(incoming.iterdir())
    mode = incoming.stat().st_mode
    with Client(mtad.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert c.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        incoming.chmod(0o555)
        try:
            code, lines = c.cmd("DATA", timeout=10)
        finally:
            incoming.chmod(mode & 0o7777)
        assert code == 451 and "4.3.0" in lines[0], lines
        # The transaction stays: DATA again once the spool is back.
        assert c.cmd("DATA")[0] == 354
        c.send(msg("after refusal") + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
    got = sink.wait_for(1)
    assert len(got) == 1 and b"after refusal" in got[0].content
