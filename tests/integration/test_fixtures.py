"""
Self-tests of the test peers (no mtad involved): the aiosmtpd smarthost
and dnsmasq behave as the mtad tests assume.
"""

import smtplib

import pytest

from mtadtest import CLIENT_HELO, Sink, dns_query, make_message


def _send(port, data, rcpt="r@b.test"):
    with smtplib.SMTP("127.0.0.1", port, local_hostname=CLIENT_HELO,
                      timeout=5) as s:
        return s.sendmail("s@a.test", [rcpt], data)


def test_sink_records_exact_bytes(sink):
    body = [".dot", "..dots", ".", "x" * 998, "end"]
    data = make_message("sink self-test", body_lines=body)
    _send(sink.port, data)
    [m] = sink.wait_for(1, timeout=5)
    assert m.mail_from == "s@a.test"
    assert m.rcpt_tos == ["r@b.test"]
    assert m.content == data


def test_sink_scripted_failures(sink):
    sink.fail("data", 1)
    with pytest.raises(smtplib.SMTPDataError) as e:
        _send(sink.port, make_message("one"))
    assert e.value.smtp_code == 451
    _send(sink.port, make_message("two"))
    assert sink.attempts["data"] == 2
    assert len(sink.wait_for(1, timeout=5)) == 1

    sink.fail("rcpt", 1, "450 4.2.0 busy")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send(sink.port, make_message("three"))
    sink.always("data", "550 5.7.1 no")
    with pytest.raises(smtplib.SMTPDataError) as e:
        _send(sink.port, make_message("four"))
    assert e.value.smtp_code == 550
    sink.accept()
    _send(sink.port, make_message("five"))
    assert len(sink.wait_for(2, timeout=5)) == 2


def test_sink_stop_start_same_port():
    s = Sink().start()
    try:
        port = s.port
        s.stop()
        with pytest.raises(OSError):
            _send(port, make_message("down"))
        s.start()
        _send(port, make_message("up again"))
        assert len(s.wait_for(1, timeout=5)) == 1
    finally:
        s.stop()


def test_dnsmasq_answers_test_names_only(dnsmasq):
    rcode, ans = dns_query("relay.test", 1, port=dnsmasq.port)
    assert (rcode, ans) == (0, [(1, "127.0.0.1")])
    rcode, ans = dns_query("mx.test", 15, port=dnsmasq.port)
    assert (rcode, ans) == (0, [(15, (10, "relay.test"))])
    rcode, ans = dns_query("nothing.test", 1, port=dnsmasq.port)
    assert rcode == 3 and ans == []         # NXDOMAIN, not forwarded
    dnsmasq.wait_log(r"query\[A\] relay\.test", timeout=2)
    # A name outside .test is never forwarded: no upstream is configured.
    rcode, ans = dns_query("example.com", 1, port=dnsmasq.port)
    assert ans == [] and rcode in (2, 5)    # SERVFAIL or REFUSED
