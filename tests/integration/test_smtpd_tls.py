"""
smtpd TLS: STARTTLS (RFC 3207) and implicit TLS (smtp-secure-port), with
a certificate made by openssl in the test; swaks as a second client.

- STARTTLS is offered only with a certificate and only before TLS; after
  it the session starts over (EHLO again, no MAIL before it).
- Plaintext pipelined after STARTTLS is dropped, never answered
  (CVE-2011-0411 class).
- The Received: header says ESMTPS with the TLS version and cipher; the
  log names them.
- smtp-ciphers narrows the TLS 1.2 cipher list; TLS 1.2 is the minimum.
"""

import os
import re
import ssl

import mtadtest
from mtadtest import free_port
from sessionutil import Client, make_cert, swaks, client_tls_context


def tls_mtad(mtad_factory, workdir, **kw):
    run_as = "nobody" if os.geteuid() == 0 else None
    cert, key = make_cert(workdir, run_as)
    m = mtad_factory()
    m.secure_port = free_port()
    m.start(smtp_certificate=cert, smtp_key=key,
            smtp_secure_port=m.secure_port, smtp_hostname="mx.test", **kw)
    return m


def test_starttls_session_restarts_and_mail_arrives(mtad_factory, workdir,
                                                     sink):
    m = tls_mtad(mtad_factory, workdir)
    with Client(m.port) as c:
        caps = c.ehlo()
        assert "STARTTLS" in caps
        # A transaction before STARTTLS is forgotten by it.
        assert c.cmd("MAIL FROM:<early@a.test>")[0] == 250
        c.starttls()
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        # RFC 3207 4.2: no HELO and no transaction after the handshake.
        code, lines = c.cmd("MAIL FROM:<sender@a.test>")
        assert code == 503, lines
        caps = c.ehlo()
        assert "STARTTLS" not in caps
        assert "PIPELINING" in caps
        code, lines = c.cmd("STARTTLS")
        assert code == 554, lines
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test",
                                  "over starttls")
        assert code == 250, lines
        c.cmd("QUIT")
    msg = sink.wait_match(b"Subject: over starttls")
    head = msg.content.split(b"\r\n\r\n")[0].decode()
    assert re.search(r"with ESMTPS id", head), head
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+", head), head
    m.wait_log(r"TLS connection established from unknown\[127\.0\.0\.1\]: "
               r"TLSv1\.[23] with cipher \S+")


def test_starttls_pipelined_plaintext_is_discarded(mtad_factory, workdir):
    m = tls_mtad(mtad_factory, workdir)
    with Client(m.port) as c:
        c.ehlo()
        # One packet: the NOOP must be answered neither in plaintext nor
        # after the handshake.
        c.send(b"STARTTLS\r\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 220, lines
        assert c.buf == b"", "plaintext after the 220: %r" % c.buf
        c.sock = client_tls_context().wrap_socket(c.sock)
        assert c.nothing_within(0.5), "answered after TLS: %r" % c.buf
        code, lines = c.cmd("EHLO %s" % "client.test")
        assert code == 250 and lines[0] == "250-mx.test", lines
        assert c.cmd("QUIT")[0] == 221
    m.wait_log(r"unknown\[127\.0\.0\.1\]: 6 octets pipelined after "
               r"STARTTLS discarded")


def test_implicit_tls_port(mtad_factory, workdir, sink):
    m = tls_mtad(mtad_factory, workdir)
    with Client(m.secure_port, tls=True) as c:
        assert c.greeting[0] == 220, c.greeting
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        caps = c.ehlo()
        assert "STARTTLS" not in caps
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test",
                                  "implicit tls")
        assert code == 250, lines
    msg = sink.wait_match(b"Subject: implicit tls")
    assert b"with ESMTPS id" in msg.content
    # A plaintext client on the TLS port gets no greeting in clear.
    with Client(m.secure_port, greet=False) as c:
        assert c.nothing_within(0.3)


def test_swaks_starttls_and_implicit(mtad_factory, workdir, sink):
    m = tls_mtad(mtad_factory, workdir)
    r = swaks(m.port, "--tls", "--header", "Subject: swaks starttls")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TLS started" in r.stdout, r.stdout
    r = swaks(m.secure_port, "--tlsc", "--header", "Subject: swaks tlsc")
    assert r.returncode == 0, r.stdout + r.stderr
    sink.wait_match(b"Subject: swaks starttls")
    msg = sink.wait_match(b"Subject: swaks tlsc")
    assert b"with ESMTPS id" in msg.content


def test_no_certificate_no_starttls(mtad):
    mtad.start()
    with Client(mtad.port) as c:
        assert "STARTTLS" not in c.ehlo()
        code, lines = c.cmd("STARTTLS")
        assert code == 502, lines
        assert c.cmd("NOOP")[0] == 250


def test_ciphers_and_minimum_version(mtad_factory, workdir):
    m = tls_mtad(mtad_factory, workdir,
                 smtp_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    with Client(m.port) as c:
        c.ehlo()
        code, _ = c.cmd("STARTTLS")
        assert code == 220
        c.sock = client_tls_context(ssl.TLSVersion.TLSv1_2).wrap_socket(
            c.sock)
        assert c.sock.version() == "TLSv1.2"
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        c.ehlo()
    # TLS 1.1 and older are refused (openssl s_client, its own check).
    r = mtadtest.subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % m.secure_port,
         "-tls1_1", "-cipher", "ALL:@SECLEVEL=0"],
        stdin=mtadtest.subprocess.DEVNULL, capture_output=True, text=True,
        timeout=20)
    assert r.returncode != 0
    assert "220 mx.test" not in r.stdout


def test_large_pipelined_message_over_tls(mtad_factory, workdir, sink):
    """
    MAIL, RCPT, DATA and a 2 MB body sent at once over TLS: smtpd stops
    reading while it waits for its spool file, so OpenSSL holds decrypted
    input the socket no longer signals; the session must still go on.
    """
    m = tls_mtad(mtad_factory, workdir)
    line = "x" * 76 + "\r\n"
    body = ("Subject: big over tls\r\n\r\n" + line * 26000 + ".\r\n")
    with Client(m.secure_port, tls=True, timeout=30) as c:
        c.ehlo()
        c.send("MAIL FROM:<sender@a.test>\r\nRCPT TO:<rcpt@b.test>\r\n"
               "DATA\r\n" + body)
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 354
        code, lines = c.reply(timeout=30)
        assert code == 250, lines
    msg = sink.wait_match(b"Subject: big over tls", timeout=30)
    assert msg.content.count(line.encode()) == 26000
