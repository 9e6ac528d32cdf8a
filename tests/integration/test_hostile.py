"""
Hostile SMTP clients (issue 8), one test per case, each with the reply
it expects.  What test_smtpd_limits / _headers / _tls / _auth / _proxy
cover already is not repeated here (out-of-order 503, error caps, line
and address lengths, 8-bit addresses, RCPT TO:<>, recipients, SIZE,
header abuse, loops, per-IP limit, plain idle/session timeouts).

Behaviours decided here (documented in mtad-smtpd(8)/mtad.conf(5)):
- data before the greeting (smtp-greet-delay): 554 5.5.0 and disconnect,
  the early input never read as commands;
- pipelining without EHLO: 554 5.5.0 and disconnect (Postfix 3.9's
  smtpd_forbid_unauth_pipelining); after EHLO it is allowed;
- HTTP verbs and header lines as commands: 221 2.7.0 and disconnect
  (Postfix's smtpd_forbidden_commands);
- source routes: accepted and stripped (RFC 5321 4.1.1.3 / C), the
  message goes to the final mailbox only, never through the route.
"""

import socket
import threading
import time

from mtadtest import smtp_greeting, wait_until, CHILD_NAMES
from sessionutil import Client, queued_id, spool_envelope

SENDER = "sender@a.test"
RCPT = "rcpt@b.test"
SYNC = "554 5.5.0 Error: SMTP protocol synchronization"


def start_slow_greeter(m, **kw):
    """Start m with a greeting delay; wait_ready's 1 s probe is too short."""
    m.start(wait=False, **kw)
    wait_until(lambda: (smtp_greeting(m.port, timeout=4) or "")
               .startswith("220"), 15, "a 220 greeting")
    wait_until(lambda: all(m.pids().get(n) for n in CHILD_NAMES), 10,
               "children")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def transaction(c, sender=SENDER, rcpts=(RCPT,), subject="x",
                mail_params="", extra=b""):
    """MAIL/RCPT/DATA with replies checked; the final reply."""
    code, lines = c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))
    assert code == 250, lines
    for r in rcpts:
        code, lines = c.cmd("RCPT TO:<%s>" % r)
        assert code == 250, lines
    code, lines = c.cmd("DATA")
    assert code == 354, lines
    c.send(b"Subject: " + subject.encode() + b"\r\n" + extra +
           b"\r\nHello.\r\n.\r\n")
    return c.reply(timeout=15)


# --- sequencing -------------------------------------------------------------

def test_data_before_greeting_is_dropped(mtad, sink):
    start_slow_greeter(mtad, smtp_greet_delay=1)
    mark = mtad.mark()
    with Client(mtad.port, greet=False) as c:
        c.send("EHLO client.test\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
               "DATA\r\nSubject: pregreet\r\n\r\nx\r\n.\r\n" % (SENDER, RCPT))
        code, lines = c.reply(timeout=5)
        assert code == 554 and lines[0] == SYNC, lines
        assert c.closed_within(3)
    mtad.wait_log(r"reject: CONNECT from unknown\[127\.0\.0\.1\]: 554 5\.5\.0"
                  r".*pre-greet", since=mark)
    # The polite client waits for the 220, then is served as always.
    t0 = time.monotonic()
    with Client(mtad.port) as c:
        assert c.greeting[0] == 220
        assert time.monotonic() - t0 >= 0.8
        c.ehlo()
        code, lines = transaction(c, subject="after wait")
        assert code == 250, lines
    sink.wait_for(1)
    time.sleep(0.5)
    # The early transaction was never run: only the polite one arrived.
    assert [b"after wait" in m.content for m in sink.messages] == [True]


def test_pipelining_without_ehlo_is_dropped(mtad, sink):
    mtad.start()
    # HELO, then a pipelined group: the first command is answered, the
    # client that did not wait is dropped and nothing is queued.
    with Client(mtad.port) as c:
        assert c.cmd("HELO client.test")[0] == 250
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert c.reply()[0] == 250
        code, lines = c.reply()
        assert code == 554 and lines[0] == SYNC, lines
        assert c.closed_within(3)
    # Before any HELO as well.
    with Client(mtad.port) as c:
        c.send("NOOP\r\nNOOP\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 554
        assert c.closed_within(3)
    mtad.wait_log(r"improper command pipelining after MAIL from "
                  r"unknown\[127\.0\.0\.1\]")
    # A HELO client that waits for each reply is served.
    with Client(mtad.port) as c:
        assert c.cmd("HELO client.test")[0] == 250
        code, lines = transaction(c, subject="helo lockstep")
        assert code == 250, lines
    sink.wait_for(1)
    time.sleep(0.5)
    assert [b"helo lockstep" in m.content for m in sink.messages] == [True]


def test_http_verbs_disconnect(mtad):
    mtad.start()
    for req in ("GET / HTTP/1.1\r\nHost: mx.test\r\n\r\n",
                "POST /form HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
                "CONNECT 127.0.0.1:25 HTTP/1.1\r\n\r\n",
                "Host: mx.test\r\n",
                "get /lower HTTP/1.0\r\n"):
        with Client(mtad.port) as c:
            if req.startswith("POST"):
                c.ehlo()        # after EHLO as well
            c.send(req)
            code, lines = c.reply()
            assert code == 221 and "2.7.0" in lines[0], (req, lines)
            assert c.closed_within(3), req
    mtad.wait_log(r"non-SMTP command from unknown\[127\.0\.0\.1\]: GET / "
                  r"HTTP/1\.1")
    mtad.wait_log(r"non-SMTP command from unknown\[127\.0\.0\.1\]: Host: ")


def test_rset_clears_every_transaction_value(mtad, sink):
    sink.always("rcpt", "451 4.3.0 keep it queued")
    mtad.start(smtp_maxsize=2000)
    with Client(mtad.port) as c:
        c.ehlo()
        # 1: x-mq properties and DSN/SIZE/BODY parameters, then refused
        # at the final dot (too big).
        code, lines = c.cmd("MAIL FROM:<leak@a.test> SIZE=1500 "
                            "BODY=8BITMIME RET=HDRS ENVID=leak-envid")
        assert code == 250, lines
        code, lines = c.cmd("RCPT TO:<leak@b.test> NOTIFY=SUCCESS "
                            "ORCPT=rfc822;leak-orcpt@b.test")
        assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send(b"x-mq-tag: leaked-tag\r\nx-mq-maxattempts: 7\r\n"
               b"x-mq-dsn-notify: delay\r\nx-mq-envelope: <x@a.test>\r\n"
               b"Subject: big\r\n\r\n" + b"a" * 80 + b"\r\n" * 0 +
               (b"b" * 70 + b"\r\n") * 40 + b".\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 552, lines
        assert c.cmd("RSET")[0] == 250
        # 2: the same parameters, aborted by RSET before DATA.
        assert c.cmd("MAIL FROM:<leak2@a.test> RET=FULL ENVID=zzenvid2 "
                     "SMTPUTF8")[0] == 250
        assert c.cmd("RCPT TO:<leak2@b.test> NOTIFY=NEVER")[0] == 250
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("DATA")[0] == 503      # no transaction left
        assert c.cmd("RCPT TO:<x@b.test>")[0] == 503
        # 3: a plain transaction carries nothing of 1 and 2.
        code, lines = transaction(c, sender="clean@a.test",
                                  rcpts=("clean@b.test",), subject="clean")
        assert code == 250, lines
    env = spool_envelope(mtad.spool, queued_id(lines))
    assert env["envelope"] == "clean@a.test", env
    assert env["properties"] == {}, env
    assert [r["address"] for r in env["recipients"]] == ["clean@b.test"]
    r = env["recipients"][0]
    assert not r.get("notify") and not r.get("orcpt"), env
    text = repr(env).lower()
    for leak in ("leak", "hdrs", "full", "8bit", "utf8", "zzenvid2", "never",
                 "success", "delay", "x@a.test"):
        assert leak not in text, (leak, env)


# --- addresses and parameters -----------------------------------------------

def test_shell_metacharacters_are_opaque(mtad, sink, workdir):
    mtad.start()
    marker = workdir / "pwned"
    rcpts = [
        '"$(touch %s)"@b.test' % marker,
        "${IFS}`touch${IFS}%s`@b.test" % str(marker).replace("/", "+"),
        "${HOME}$PATH|cat&x@b.test",
        '"a;rm -rf /;b"@b.test',
        "'single'!#%^*{}~@b.test",
    ]
    sender = "`id`$(id)${USER}@a.test".replace("(", "").replace(")", "")
    with Client(mtad.port) as c:
        c.ehlo()
        code, lines = transaction(c, sender=sender, rcpts=rcpts,
                                  subject="metachars")
        assert code == 250, lines
    got = sink.wait_for(1)
    assert got[0].mail_from == sender
    assert sorted(got[0].rcpt_tos) == sorted(rcpts), got[0].rcpt_tos
    assert not marker.exists()
    assert not (workdir / "pwned").exists()


def test_quoted_local_parts_kept_exact(mtad, sink):
    mtad.start()
    rcpts = ['"a b"@x.test', '"a\\"b"@x.test', '"a@b"@x.test',
             '"a\\\\b"@x.test']
    with Client(mtad.port) as c:
        c.ehlo()
        code, lines = transaction(c, sender='"s p"@a.test', rcpts=rcpts,
                                  subject="quoted")
        assert code == 250, lines
    got = sink.wait_for(1)
    assert got[0].mail_from == '"s p"@a.test'
    assert sorted(got[0].rcpt_tos) == sorted(rcpts), got[0].rcpt_tos


def test_source_routes_are_stripped(mtad, sink):
    mtad.start()
    with Client(mtad.port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<@relay.a.test:s@a.test>")
        assert code == 250, lines
        code, lines = c.cmd("RCPT TO:<@a.test,@b.test:u@c.test>")
        assert code == 250, lines
        code, lines = c.cmd("RCPT TO:<@a.test u@c.test>")   # no colon
        assert code == 501, lines
        code, lines = c.cmd("RCPT TO:<@a.test,@b.test:>")    # no mailbox
        assert code == 501, lines
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: route\r\n\r\nx\r\n.\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
    got = sink.wait_for(1)
    assert got[0].mail_from == "s@a.test"
    assert got[0].rcpt_tos == ["u@c.test"]
    assert "@a.test,@b.test" not in mtad.log().split("RCPT TO:<@a.test,")[-1]


def test_bad_parameters_are_501(mtad, sink):
    mtad.start(smtp_maxsize=100000)
    with Client(mtad.port) as c:
        c.ehlo()
        for p in ("SIZE=99999999999999999999999", "SIZE=-1", "SIZE=abc",
                  "SIZE=", "SIZE", "SIZE=18446744073709551616",
                  "SIZE=1 SIZE=2", "AUTH=", "AUTH", "AUTH=u+ZZa.test",
                  "AUTH=a+00b", "BODY=BINARYMIME=1",
                  "RET=", "ENVID=a+"):
            code, lines = c.cmd("MAIL FROM:<%s> %s" % (SENDER, p))
            assert code == 501 and "5.5.4" in lines[0], (p, lines)
        # The largest SIZE parses (no overflow), and is too big.
        code, lines = c.cmd("MAIL FROM:<%s> SIZE=18446744073709551615"
                            % SENDER)
        assert code == 552, lines
    # A new session: the error cap (20) must not end this one early.
    with Client(mtad.port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<%s> AUTH=<> SIZE=10" % SENDER)
        assert code == 250, lines
        for p in ("ORCPT=rfc822", "ORCPT=;a@b.test", "ORCPT=rfc822;",
                  "ORCPT=rfc822;a+ZZ@b.test", "ORCPT=rfc822;a+00@b.test",
                  "NOTIFY=", "NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,,DELAY"):
            code, lines = c.cmd("RCPT TO:<%s> %s" % (RCPT, p))
            assert code == 501 and "5.5.4" in lines[0], (p, lines)
        code, lines = c.cmd("RCPT TO:<%s> NOTIFY=SUCCESS,DELAY "
                            "ORCPT=rfc822;o+2Bk@b.test" % RCPT)
        assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: params\r\n\r\nx\r\n.\r\n")
        code, lines = c.reply(timeout=15)
        assert code == 250, lines
    sink.wait_for(1)


# --- denial of service ------------------------------------------------------

def trickle(c, data, stop, interval=0.5):
    """Send data one octet per interval until stop is set or it fails."""
    for b in data:
        if stop.is_set():
            return
        try:
            c.sock.sendall(bytes([b]))
        except OSError:
            return
        stop.wait(interval)


def test_slowloris_frees_the_slot(mtad, sink):
    mtad.start(smtp_timeout=2, smtp_session_timeout=4,
               smtp_max_connections=2)
    stop = threading.Event()
    slow_cmd = Client(mtad.port)
    slow_data = Client(mtad.port)
    threads = []
    try:
        slow_data.ehlo()
        assert slow_data.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert slow_data.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        assert slow_data.cmd("DATA")[0] == 354
        t0 = time.monotonic()
        for c, data in ((slow_cmd, b"NOOP " + b"x" * 400),
                        (slow_data, b"Subject: slow\r\n\r\n" + b"y" * 400)):
            t = threading.Thread(target=trickle, args=(c, data, stop),
                                 daemon=True)
            t.start()
            threads.append(t)
        # Both slots are taken: a third client is refused meanwhile.
        with Client(mtad.port) as c:
            assert c.greeting[0] == 421, c.greeting
        # One octet every 0.5 s beats the 2 s idle timeout, not the 4 s
        # session limit.
        for c in (slow_cmd, slow_data):
            code, lines = c.reply(timeout=10)
            assert code == 421 and "4.4.2" in lines[0], lines
            assert c.closed_within(5)
        took = time.monotonic() - t0
        assert 2.5 <= took < 12, took
        stop.set()

        def fresh():
            with Client(mtad.port) as c:
                return c.greeting[0] == 220
        wait_until(fresh, 10, "a slot freed after the slow clients")
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        slow_cmd.close()
        slow_data.close()
    # An idle client in DATA is cut by the idle timeout, nothing queued.
    with Client(mtad.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert c.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: stalled\r\n\r\nhalf")
        code, lines = c.reply(timeout=6)
        assert code == 421 and "4.4.2" in lines[0], lines
    mtad.wait_log(r"timeout after DATA \(\d+ bytes\) from "
                  r"unknown\[127\.0\.0\.1\]")
    time.sleep(0.5)
    assert sink.messages == []


def test_connection_flood_spares_established_sessions(mtad, sink):
    mtad.start(smtp_max_connections=6, smtp_max_connections_per_ip=3)
    est = Client(mtad.port)
    flood = []
    try:
        est.ehlo()
        assert est.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert est.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
        codes = {}
        for i in range(60):
            src = "127.0.0.%d" % (1 + i % 3)
            try:
                c = Client(mtad.port, source=src, timeout=5)
            except (ConnectionError, OSError):
                codes.setdefault(src, []).append("reset")
                continue
            flood.append(c)
            codes.setdefault(src, []).append(c.greeting[0])
        ok = {s: v.count(220) for s, v in codes.items()}
        # 127.0.0.1 already has one session: 2 more; the others 3 each,
        # but no more than 6 in all.
        assert ok["127.0.0.1"] <= 2, codes
        assert all(n <= 3 for n in ok.values()), codes
        assert sum(ok.values()) + 1 <= 6, codes
        assert all(x in (220, 421) for v in codes.values() for x in v)
        assert sum(v.count(421) for v in codes.values()) >= 50, codes
        # The established session goes on as if nothing happened.
        assert est.cmd("DATA")[0] == 354
        est.send(b"Subject: during flood\r\n\r\nx\r\n.\r\n")
        code, lines = est.reply(timeout=15)
        assert code == 250, lines
        assert est.cmd("QUIT")[0] == 221
    finally:
        est.close()
        for c in flood:
            c.close()
    got = sink.wait_for(1)
    assert b"during flood" in got[0].content
    mtad.wait_log(r"reject: CONNECT from unknown\[127\.0\.0\.\d\]: 421 4\.7\.0 "
                  r"Too many connections, try again later")

    def fresh():
        with Client(mtad.port) as c:
            return c.greeting[0] == 220
    wait_until(fresh, 10, "service after the flood")


def test_client_that_never_reads(mtad):
    mtad.start(smtp_timeout=2, smtp_session_timeout=0)
    pid = mtad.child("smtpd")
    before = rss_kb(pid)
    s = socket.create_connection(("127.0.0.1", mtad.port), timeout=5)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert s.recv(512).startswith(b"220")
        s.sendall(b"EHLO client.test\r\n")
        s.setblocking(False)
        chunk = b"NOOP\r\n" * 10000
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 3 and sent < 256 << 20:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                break
        # smtpd stopped reading long before 3 s: bounded buffers.
        assert sent < 64 << 20, sent
        grown = rss_kb(pid) - before
        assert grown < 50 * 1024, "smtpd grew by %d kB" % grown
        # Others are served meanwhile.
        with Client(mtad.port) as c:
            assert c.greeting[0] == 220
            assert c.cmd("NOOP")[0] == 250
        # The stuck session is cut by the idle timeout and freed.
        mtad.wait_log(r"(timeout after \w+|output overflow, closing) "
                      r"(from )?unknown\[127\.0\.0\.1\]", timeout=10)
        mtad.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 "
                      r"noop=\d+", timeout=10)
    finally:
        s.close()
    assert rss_kb(pid) - before < 50 * 1024
