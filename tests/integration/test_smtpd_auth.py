"""
smtpd AUTH (RFC 4954): PLAIN and LOGIN for smtp-username/smtp-password.

- Good credentials: 235, mail flows, Received: says ESMTPA/ESMTPSA.
- Bad credentials: 535 5.7.8 after a delay; the third failure gets 421
  and the connection is closed.  The password never reaches the log.
- AUTH is offered and accepted over plaintext only to loopback clients.
  The test client cannot leave loopback, so a PROXY header from
  127.0.0.2 (in smtp-proxy) makes it 192.0.2.10: no AUTH in EHLO, 538 to
  AUTH, 530 to MAIL; after STARTTLS it may AUTH and send.
- Inside smtp-range no AUTH is needed; outside it AUTH is (530).
- swaks is the second client: --auth PLAIN and LOGIN over --tls.
"""

import os
import time

from sessionutil import (Client, b64, make_cert, plain_b64, proxy_v1,
                         swaks)

USER = "relayuser"
PASSWORD = "S3cret-Pa55word"


def auth_mtad(mtad_factory, workdir, **kw):
    run_as = "nobody" if os.geteuid() == 0 else None
    cert, key = make_cert(workdir, run_as)
    m = mtad_factory()
    m.start(smtp_certificate=cert, smtp_key=key, smtp_hostname="mx.test",
            smtp_username=USER, smtp_password=PASSWORD,
            smtp_proxy="127.0.0.2/32", **kw)
    return m


def assert_no_secret(m):
    # The test's own "### test: start ... --smtp-password=..." lines aside.
    log = "\n".join(l for l in m.log().splitlines()
                    if not l.startswith("### test:"))
    assert PASSWORD not in log
    assert plain_b64(USER, PASSWORD) not in log
    assert b64(PASSWORD) not in log


def test_auth_plain_and_login_good(mtad_factory, workdir, sink):
    m = auth_mtad(mtad_factory, workdir)
    with Client(m.port) as c:
        # Loopback: offered without TLS.
        assert "AUTH PLAIN LOGIN" in c.ehlo()
        code, lines = c.cmd("AUTH PLAIN %s" % plain_b64(USER, PASSWORD))
        assert code == 235, lines
        assert c.cmd("AUTH PLAIN %s" % plain_b64(USER, PASSWORD))[0] == 503
        # AUTH=<> on MAIL is accepted (RFC 4954 5).
        code, lines = c.cmd("MAIL FROM:<sender@a.test> AUTH=<>")
        assert code == 250, lines
        assert c.cmd("RCPT TO:<rcpt@b.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: auth plain\r\n\r\nHi.\r\n.\r\n")
        assert c.reply(timeout=15)[0] == 250
    with Client(m.port) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN") == (334, ["334 VXNlcm5hbWU6"])
        assert c.cmd(b64(USER)) == (334, ["334 UGFzc3dvcmQ6"])
        code, lines = c.cmd(b64(PASSWORD))
        assert code == 235, lines
    with Client(m.port) as c:
        c.ehlo()
        # PLAIN without an initial response, and LOGIN with one.
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd(plain_b64(USER, PASSWORD, authzid=USER))[0] == 235
    with Client(m.port) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN %s" % b64(USER)) == \
            (334, ["334 UGFzc3dvcmQ6"])
        assert c.cmd(b64(PASSWORD))[0] == 235
    msg = sink.wait_match(b"Subject: auth plain")
    assert b"with ESMTPA id" in msg.content
    m.wait_log(r"unknown\[127\.0\.0\.1\]: sasl_method=PLAIN, "
               r"sasl_username=relayuser")
    m.wait_log(r"sasl_method=LOGIN, sasl_username=relayuser")
    m.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 "
               r"rcpt=1 data=1 auth=1/2 commands=5/6")
    assert_no_secret(m)


def test_auth_bad_is_delayed_and_dropped_after_three(mtad_factory, workdir):
    m = auth_mtad(mtad_factory, workdir)
    with Client(m.port) as c:
        c.ehlo()
        t0 = time.monotonic()
        code, lines = c.cmd("AUTH PLAIN %s" % plain_b64(USER, "wrong"),
                            timeout=5)
        assert code == 535 and lines[0].startswith("535 5.7.8"), lines
        assert time.monotonic() - t0 >= 0.9
        # Cancelled and undecodable exchanges are not failures.
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd("*")[0] == 501
        assert c.cmd("AUTH PLAIN !!!!")[0] == 501
        assert c.cmd("AUTH CRAM-MD5")[0] == 504
        # A wrong user with the right password fails the same way.
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd(b64("nobody"))[0] == 334
        t0 = time.monotonic()
        assert c.cmd(b64(PASSWORD), timeout=5)[0] == 535
        assert time.monotonic() - t0 >= 0.9
        # Meanwhile the session still works.
        assert c.cmd("NOOP")[0] == 250
        code, lines = c.cmd("AUTH PLAIN %s" % plain_b64(USER, "wrong2"),
                            timeout=5)
        assert code == 421, lines
        assert c.closed_within(3)
    m.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN "
               r"authentication failed \(1 of 3\)")
    m.wait_log(r"too many AUTH failures from unknown\[127\.0\.0\.1\]")
    assert_no_secret(m)


def test_auth_overlong_response_line(mtad_factory, workdir):
    m = auth_mtad(mtad_factory, workdir)
    with Client(m.port) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN")[0] == 334
        code, lines = c.cmd("A" * 13000)
        assert code == 500 and "5.5.6" in lines[0], lines
        assert c.cmd("NOOP")[0] == 250
        # A response as long as RFC 4954 allows is read and judged.
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd("A" * 12288, timeout=5)[0] == 535


def test_auth_only_over_tls_for_non_loopback(mtad_factory, workdir, sink):
    m = auth_mtad(mtad_factory, workdir)
    # The header's destination becomes the source of the delivery to the
    # sink: an address of this machine.
    hdr = proxy_v1("192.0.2.10", "127.0.0.9")
    with Client(m.port, source="127.0.0.2", proxy=hdr) as c:
        # Outside smtp-range, but it may AUTH after STARTTLS: greeted.
        assert c.greeting[0] == 220, c.greeting
        caps = c.ehlo()
        assert "STARTTLS" in caps
        assert not any(x.startswith("AUTH") for x in caps), caps
        code, lines = c.cmd("MAIL FROM:<sender@a.test>")
        assert code == 530 and "STARTTLS" in lines[0], lines
        code, lines = c.cmd("AUTH PLAIN %s" % plain_b64(USER, PASSWORD))
        assert code == 538, lines
        c.starttls()
        assert "AUTH PLAIN LOGIN" in c.ehlo()
        code, lines = c.cmd("MAIL FROM:<sender@a.test>")
        assert code == 530 and lines[0].startswith("530 5.7.0"), lines
        assert c.cmd("AUTH PLAIN %s" % plain_b64(USER, PASSWORD))[0] == 235
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test",
                                  "auth over proxy and tls")
        assert code == 250, lines
    msg = sink.wait_match(b"Subject: auth over proxy and tls")
    head = msg.content.split(b"\r\n\r\n")[0]
    assert b"[192.0.2.10]" in head
    assert b"with ESMTPSA id" in head
    # Inside smtp-range (loopback), MAIL needs no AUTH.
    with Client(m.port) as c:
        c.ehlo()
        assert c.send_mail("sender@a.test", "rcpt@b.test",
                           "no auth in range")[0] == 250
    assert_no_secret(m)


def test_swaks_auth_plain_and_login(mtad_factory, workdir, sink):
    m = auth_mtad(mtad_factory, workdir)
    for mech in ("PLAIN", "LOGIN"):
        r = swaks(m.port, "--tls", "--auth", mech, "--auth-user", USER,
                  "--auth-password", PASSWORD,
                  "--header", "Subject: swaks auth %s" % mech)
        assert r.returncode == 0, r.stdout + r.stderr
        msg = sink.wait_match(("Subject: swaks auth %s" % mech).encode())
        assert b"with ESMTPSA id" in msg.content
    r = swaks(m.port, "--tls", "--auth", "PLAIN", "--auth-user", USER,
              "--auth-password", "not-it", "--header", "Subject: bad")
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout, r.stdout
    assert_no_secret(m)


def test_open_relay_range_is_logged(mtad):
    mtad.start(smtp_range="127.0.0.0/8;0.0.0.0/0")
    mtad.wait_log(r"warning: smtp-range lets the world relay without AUTH "
                  r"\(it holds 1\.1\.1\.1\): this is an open relay")


def test_auth_line_never_logged(mtad_factory, workdir):
    """At debug level, an AUTH line is logged as "AUTH ..." whatever blank
    follows the verb: a tab makes it an unknown command, still carrying
    credentials."""
    m = auth_mtad(mtad_factory, workdir, log_level="debug")
    with Client(m.port) as c:
        c.ehlo()
        code, _ = c.cmd("AUTH\tPLAIN %s" % plain_b64(USER, PASSWORD))
        assert code == 500
        assert c.cmd("auth PLAIN %s" % plain_b64(USER, PASSWORD))[0] == 235
        c.cmd("QUIT")
    m.wait_log(r"< 127\.0\.0\.1: AUTH \.\.\.")
    assert_no_secret(m)
