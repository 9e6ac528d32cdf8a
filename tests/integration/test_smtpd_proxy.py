"""
smtpd PROXY protocol (HAProxy v1 and v2) and the addresses a session
records.

smtp-proxy is 127.0.0.2/32: a test client bound to source 127.0.0.2 is
"the proxy" and must send a header before it is greeted; a client from
127.0.0.1 is not, and a header from it is never trusted.  smtp-ip is
empty (every address, IPv4 and IPv6), so a connection to 127.0.0.2
records 127.0.0.2 as the local IP of its message.

To look at the stored envelope (client, local-ip), the sink defers every
recipient: the message stays in the spool.
"""

import os
import re

from mtadtest import free_port
from sessionutil import (Client, make_cert, proxy_v1, proxy_v2, queued_id,
                         spool_envelope)

RANGE = "127.0.0.0/8;::1/128;192.0.2.0/24;2001:db8:1::/48"


def proxy_mtad(mtad_factory, workdir, **kw):
    run_as = "nobody" if os.geteuid() == 0 else None
    cert, key = make_cert(workdir, run_as)
    m = mtad_factory()
    m.secure_port = free_port()
    m.start(smtp_ip="", smtp_proxy="127.0.0.2/32", smtp_range=RANGE,
            smtp_hostname="mx.test", smtp_timeout=2,
            smtp_certificate=cert, smtp_key=key,
            smtp_secure_port=m.secure_port, **kw)
    return m


def proxied(m, header, **kw):
    return Client(m.port, source="127.0.0.2", proxy=header, **kw)


def test_proxy_v1_and_v2_give_the_client_address(mtad_factory, workdir,
                                                  sink):
    m = proxy_mtad(mtad_factory, workdir)
    # Destination 127.0.0.9: it is also the source address of the
    # delivery to the sink, so it must be one of this machine's.
    with proxied(m, proxy_v1("192.0.2.10", "127.0.0.9", 40000,
                             25)) as c:
        assert c.greeting[0] == 220, c.greeting
        c.ehlo()
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test",
                                  "proxy v1")
        assert code == 250, lines
    # v2, with TLVs (ALPN, NOOP) that are skipped.
    hdr = proxy_v2("2001:db8:1::5", "2001:db8:2::25", 1234, 587,
                   tlvs=b"\x01\x00\x02h2\x04\x00\x00")
    with proxied(m, hdr) as c:
        assert c.greeting[0] == 220, c.greeting
        c.ehlo()
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test",
                                  "proxy v2")
        assert code == 250, lines
    # v2 LOCAL (a health check): the connection's own addresses.
    with proxied(m, proxy_v2(local=True)) as c:
        assert c.greeting[0] == 220
        assert c.cmd("QUIT")[0] == 221
    head = sink.wait_match(b"Subject: proxy v1").content.split(
        b"\r\n\r\n")[0]
    assert b"(unknown [192.0.2.10])" in head, head
    head = sink.wait_match(b"Subject: proxy v2").content.split(
        b"\r\n\r\n")[0]
    assert b"(unknown [IPv6:2001:db8:1::5])" in head, head
    m.wait_log(r"PROXY v1 from \[127\.0\.0\.2\]: client \[192\.0\.2\.10\]:"
               r"40000, server \[127\.0\.0\.9\]:25")
    m.wait_log(r"^mtad/smtpd\[\d+\]: connect from unknown\[192\.0\.2\.10\]")
    m.wait_log(r": client=unknown\[192\.0\.2\.10\]")
    m.wait_log(r"PROXY v2 from \[127\.0\.0\.2\]: client \[2001:db8:1::5\]:"
               r"1234, server \[2001:db8:2::25\]:587")
    m.wait_log(r"PROXY v2 from \[127\.0\.0\.2\]: no addresses, keeping")


def test_proxy_with_implicit_tls(mtad_factory, workdir, sink):
    m = proxy_mtad(mtad_factory, workdir)
    # The header is plaintext, then TLS starts with the very next octet.
    hdr = proxy_v2("192.0.2.20", "127.0.0.9", 5555, 465)
    with Client(m.secure_port, source="127.0.0.2", proxy=hdr,
                tls=True) as c:
        assert c.greeting[0] == 220
        c.ehlo()
        assert c.send_mail("sender@a.test", "rcpt@b.test",
                           "proxy tls")[0] == 250
    msg = sink.wait_match(b"Subject: proxy tls")
    assert b"(unknown [192.0.2.20])" in msg.content
    assert b"with ESMTPS id" in msg.content


def test_proxy_source_outside_range_is_refused(mtad_factory, workdir):
    m = proxy_mtad(mtad_factory, workdir)
    with proxied(m, proxy_v1("203.0.113.9", "198.51.100.7")) as c:
        assert c.greeting[0] == 554, c.greeting
        assert c.closed_within(3)
    m.wait_log(r"NOQUEUE: reject: CONNECT from unknown\[203\.0\.113\.9\]: "
               r"554 5\.7\.1 Access denied")


def test_proxy_malformed_or_missing_header_drops(mtad_factory, workdir):
    m = proxy_mtad(mtad_factory, workdir)
    cases = [
        (b"EHLO client.test\r\n", "no PROXY signature"),
        (b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n", "v1: header too long"),
        (b"PROXY TCP4 192.0.2.10 198.51.100.7 99999 25\r\n", "v1: bad port"),
        (b"PROXY TCP4 192.0.2.10 198.51.100.7 1 25\n", "v1: line does not"),
        (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", "v2: header too long"),
        (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x05abcde",
         "v2: address block too short"),
    ]
    for data, why in cases:
        with proxied(m, data, greet=False) as c:
            assert c.closed_within(3), "not dropped: %r" % data
            assert c.buf == b"", "answered %r to %r" % (c.buf, data)
        m.wait_log(r"PROXY header from \[127\.0\.0\.2\] refused: %s"
                   % re.escape(why))
    # Nothing at all: dropped after the header timeout (smtp-timeout 2).
    with proxied(m, b"", greet=False) as c:
        assert c.nothing_within(1.0)
        assert c.closed_within(4)
    m.wait_log(r"PROXY header from \[127\.0\.0\.2\] refused: timeout")
    # A truncated header then EOF.
    with proxied(m, b"PROXY TCP4 192.0.2.", greet=False) as c:
        c.sock.shutdown(1)
        assert c.closed_within(3)
    m.wait_log(r"refused: connection closed before the header")


def test_proxy_header_from_non_proxy_client_not_trusted(mtad_factory,
                                                         workdir, sink):
    m = proxy_mtad(mtad_factory, workdir)
    with Client(m.port, source="127.0.0.1") as c:
        assert c.greeting[0] == 220
        code, lines = c.cmd("PROXY TCP4 192.0.2.99 198.51.100.7 1 25")
        assert code == 500, lines
        c.ehlo()
        assert c.send_mail("sender@a.test", "rcpt@b.test",
                           "not proxied")[0] == 250
    msg = sink.wait_match(b"Subject: not proxied")
    assert b"192.0.2.99" not in msg.content
    assert b"(unknown [127.0.0.1])" in msg.content
    # v2's binary signature: lines sent without waiting for replies and
    # without EHLO, so the session ends at once (554 5.5.0, pipelining
    # not allowed) or at the QUIT it contains.
    with Client(m.port, source="127.0.0.1") as c:
        c.send(proxy_v2("192.0.2.98", "198.51.100.7"))
        assert c.closed_within(3)
        assert b"221" in c.buf or b"554 5.5.0" in c.buf, c.buf
    assert "192.0.2.98" not in m.log()
    assert "192.0.2.99]" not in m.log()


def test_local_ip_recorded(mtad_factory, workdir, sink):
    sink.always("rcpt", "451 4.3.0 try later")
    m = proxy_mtad(mtad_factory, workdir)
    # Listening on every address: connect to 127.0.0.2 from 127.0.0.1.
    with Client(m.port, host="127.0.0.2", source="127.0.0.1") as c:
        c.ehlo()
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test", "local")
        assert code == 250, lines
        direct = queued_id(lines)
    with proxied(m, proxy_v1("192.0.2.10", "198.51.100.7")) as c:
        c.ehlo()
        code, lines = c.send_mail("sender@a.test", "rcpt@b.test", "via")
        assert code == 250, lines
        via = queued_id(lines)
    env = spool_envelope(m.spool, direct)
    assert env["local-ip"] == "127.0.0.2", env
    assert "127.0.0.1" in env["client"], env
    env = spool_envelope(m.spool, via)
    assert env["local-ip"] == "198.51.100.7", env
    assert "192.0.2.10" in env["client"], env
