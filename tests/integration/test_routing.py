"""
Routing of outbound mail (issue 4, routing part), end to end against real
peers on 127.0.0.x: aiosmtpd servers with STARTTLS and AUTH, scripted
servers for broken greetings and handshakes, and dnsmasq for MX records.

  STARTTLS + AUTH     opportunistic TLS, EHLO again, PLAIN and LOGIN,
                      535 deferred, TLS failure with/without credentials,
                      plaintext AUTH to loopback, reused TLS connections
  smarthosts          weights, backups, hosts marked down
  routes              fixed next hop per domain, case-insensitive
  MX                  preference, fallback on refused connection and on
                      a 4xx greeting, implicit MX, null MX, NXDOMAIN,
                      resolver timeout
  sink                per-domain queues kept, no DNS, sink credentials,
                      sink + smarthost

  per message          x-mq-smarthost-* headers override the global
                      smarthost, with AUTH only when a username is given

The reading of the "smarthost" property itself (JSON: port as a number or
a string, credentials) is unit-tested in tests/unit/test_routing.c; here
the properties come from x-mq-* headers, which smtpd turns into them.
"""

import base64
import re

import pytest

import mtadtest
from mtadtest import DEAD_DNS, Dnsmasq, free_port, make_message, send_mail
from routingutil import RSink, ScriptServer

PASSWORD = "s3cret-Pa55"
USER = "relayuser"


def sent_re(rcpt, relay=r"\S+"):
    return (r"mtad/smtp\[\d+\]: \w+: to=<%s>, relay=%s, .*dsn=2\.0\.0, "
            r"status=sent" % (re.escape(rcpt), relay))


def status_re(rcpt, status, dsn):
    """The outcome line of rcpt, whole: group(1) is the text."""
    return (r"mtad/smtp\[\d+\]: \w+: to=<%s>, relay=\S+, .*dsn=%s, "
            r"status=%s \((.*)\)(?: stage=\w+)?$"
            % (re.escape(rcpt), re.escape(dsn), status))


def assert_no_password(mtad, *extra):
    """Neither the password nor its base64 forms are in mtad's lines."""
    log = "\n".join(l for l in mtad.log().splitlines()
                    if not l.startswith("### test:"))    # our argv
    forms = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
             base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
             .decode()] + list(extra)
    for f in forms:
        assert f not in log, "secret %r found in the log" % f


def start(mtad_factory, **kw):
    """An mtad without the default smarthost unless one is given."""
    kw.setdefault("smarthost", None)
    m = mtad_factory()
    return m.start(**kw)


def send(m, rcpt, subject="routing test", sender="sender@a.test"):
    return send_mail(m.port, sender, [rcpt], make_message(subject,
                     sender=sender, rcpt=rcpt))


# --- STARTTLS and AUTH ------------------------------------------------------

def test_starttls_auth_plain_reused(mtad_factory, servers, cert):
    """STARTTLS, EHLO again, AUTH PLAIN; two messages share the session."""
    sink = servers(RSink(tls=cert, require_starttls=True,
                         users={USER: PASSWORD}))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=sink.port,
              smarthost_username=USER, smarthost_password=PASSWORD)
    send(m, "one@b.test", "first")
    sink.wait_for(1)
    m.wait_log(sent_re("one@b.test"))
    # A big second message: partial TLS writes, dot-stuffing through TLS.
    big = make_message("second", rcpt="two@b.test", body_lines=[
        ("." if i % 7 == 0 else "") + "line %06d " % i + "x" * 60
        for i in range(20000)])
    send_mail(m.port, "sender@a.test", ["two@b.test"], big)
    got = sink.wait_for(2)
    assert len(big) > 1000000 and got[1].content.endswith(big)
    assert all(x.tls in ("TLSv1.2", "TLSv1.3") for x in got)
    assert all(x.user == USER for x in got)
    assert sink.auth_ok == [("PLAIN", USER)]
    assert len(sink.peers()) == 1, "the second message reused the session"
    m.wait_log(sent_re("two@b.test", r"127\.0\.0\.1\[127\.0\.0\.1\]:%d"
                       % sink.port))
    m.wait_log(r"Untrusted TLS connection established to "
               r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: TLSv1\.[23] with cipher"
               % sink.port)
    log = m.log()
    assert re.search(r"> AUTH PLAIN \*{8}$", log, re.M)
    assert len(re.findall(r"> EHLO ", log)) == 2, "EHLO before and after TLS"
    assert_no_password(m)
    assert all(PASSWORD.encode() not in x.content for x in got)


def test_auth_login_when_no_plain(mtad_factory, servers, cert):
    """A server offering only LOGIN gets LOGIN."""
    sink = servers(RSink(tls=cert, users={USER: PASSWORD},
                         mechanisms=["LOGIN"]))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=sink.port,
              smarthost_username=USER, smarthost_password=PASSWORD)
    send(m, "rcpt@b.test")
    got = sink.wait_for(1)
    assert got[0].user == USER and got[0].tls is not None
    assert sink.auth_ok == [("LOGIN", USER)]
    m.wait_log(sent_re("rcpt@b.test"))
    assert_no_password(m, base64.b64encode(USER.encode()).decode())


def test_auth_failure_defers(mtad_factory, servers, cert):
    """535 defers the recipients (4.7.0); nothing is sent; no password."""
    sink = servers(RSink(tls=cert, users={USER: "another"}))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=sink.port,
              smarthost_username=USER, smarthost_password=PASSWORD,
              retries=600)
    send(m, "rcpt@b.test")
    line = m.wait_log(status_re("rcpt@b.test", "deferred", "4.7.0"))
    assert "SASL authentication failed" in line.group(0)
    assert "535" in line.group(0)
    assert line.group(0).endswith(" stage=auth"), line.group(0)
    assert sink.auth_failed == 1 and sink.messages == []
    assert sink.attempts["rcpt"] == 0
    assert_no_password(m)


def test_auth_plaintext_to_loopback(mtad_factory, servers):
    """Without STARTTLS on offer, AUTH in plaintext is allowed to 127/8."""
    sink = servers(RSink(users={USER: PASSWORD}, auth_plaintext=True))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=sink.port,
              smarthost_username=USER, smarthost_password=PASSWORD)
    send(m, "rcpt@b.test")
    got = sink.wait_for(1)
    assert got[0].tls is None and got[0].user == USER
    m.wait_log(sent_re("rcpt@b.test"))
    assert_no_password(m)


def test_tls_failure_with_auth_defers(mtad_factory, servers):
    """A failed handshake never falls back to plaintext with credentials."""
    srv = servers(ScriptServer(starttls="garbage", auth=True))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=srv.port,
              smarthost_username=USER, smarthost_password=PASSWORD,
              retries=600)
    send(m, "rcpt@b.test")
    line = m.wait_log(status_re("rcpt@b.test", "deferred", "4.7.0"))
    assert "TLS handshake" in line.group(0)
    assert srv.connections == 1
    verbs = [l.split(" ")[0].upper() for l in srv.lines]
    assert "AUTH" not in verbs and "MAIL" not in verbs, srv.lines
    assert_no_password(m)


def test_starttls_injection(mtad_factory, servers):
    """Plaintext sent after STARTTLS's 220 ends the session (4.7.0)."""
    srv = servers(ScriptServer(starttls="inject"))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=srv.port,
              retries=600)
    send(m, "rcpt@b.test")
    line = m.wait_log(status_re("rcpt@b.test", "deferred", "4.7.0"))
    assert "sent data after its reply to STARTTLS" in line.group(1)
    assert "MAIL" not in [l.split(" ")[0].upper() for l in srv.lines]


def test_tls_failure_without_auth_falls_back(mtad_factory, servers):
    """Opportunistic TLS: without credentials, plaintext on a new session."""
    srv = servers(ScriptServer(starttls="garbage"))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=srv.port)
    send(m, "rcpt@b.test")
    m.wait_log(sent_re("rcpt@b.test"))
    assert srv.connections == 2
    assert [l.split(" ")[0] for l in srv.lines].count("STARTTLS") == 1
    assert len(srv.messages) == 1
    assert "trying again without TLS" in m.log()


def test_starttls_without_auth_mx_style(mtad_factory, servers, cert):
    """STARTTLS is used whenever offered, credentials or not."""
    sink = servers(RSink(tls=cert))
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=sink.port)
    send(m, "rcpt@b.test")
    assert sink.wait_for(1)[0].tls in ("TLSv1.2", "TLSv1.3")


# --- per-message smarthost -----------------------------------------------------

def xmq_message(subject, rcpt, port, user=None, password=None):
    head = ["x-mq-smarthost-hostname: 127.0.0.1",
            "X-MQ-Smarthost-Port: %d" % port]
    if user is not None:
        head += ["x-mq-smarthost-username: %s" % user,
                 "x-mq-smarthost-password: %s" % password]
    return ("\r\n".join(head) + "\r\n").encode() + make_message(
        subject, rcpt=rcpt)


def test_per_message_smarthost(mtad_factory, servers):
    """
    The message's own smarthost wins over the global one, in its own
    queue; AUTH only when it names a username; no secret in the log or
    in the mail delivered.
    """
    glob = servers(RSink())
    authed = servers(RSink(users={USER: PASSWORD}, auth_plaintext=True))
    plain = servers(RSink())
    m = start(mtad_factory, smarthost="127.0.0.1", smarthost_port=glob.port,
              smarthost_username="globaluser",
              smarthost_password="global-secret")
    send_mail(m.port, "sender@a.test", ["one@b.test"],
              xmq_message("own smarthost", "one@b.test", authed.port, USER,
                          PASSWORD))
    send_mail(m.port, "sender@a.test", ["two@b.test"],
              xmq_message("own, no auth", "two@b.test", plain.port))
    got = authed.wait_for(1)
    assert got[0].rcpt_tos == ["one@b.test"] and got[0].user == USER
    assert plain.wait_for(1)[0].user is None
    assert glob.messages == []
    for x in got + plain.messages:
        assert b"x-mq-" not in x.content.lower()
        assert PASSWORD.encode() not in x.content
        assert b"global-secret" not in x.content
    log = m.log()
    for p in (authed.port, plain.port):
        assert re.search(r"queue \(smarthost\) 127\.0\.0\.1:%d," % p, log)
    m.wait_log(sent_re("two@b.test", r"127\.0\.0\.1\[127\.0\.0\.1\]:%d"
                       % plain.port))
    assert_no_password(m, "global-secret")


# --- the smarthosts list ----------------------------------------------------

def smarthosts(*entries):
    """The libconfig text of a smarthosts list: (port, weight, backup)."""
    return "( %s )" % ", ".join(
        '{ hostname = "127.0.0.1"; port = %d; weight = %d; backup = %s; }'
        % (p, w, "true" if b else "false") for p, w, b in entries)


def test_smarthosts_weights_and_backup(mtad_factory, servers):
    """Weights 1:3 share the mail; the backup gets none while they work."""
    a, b, c = (servers(RSink()) for _ in range(3))
    m = start(mtad_factory, smarthosts=smarthosts(
        (a.port, 1, False), (b.port, 3, False), (c.port, 5, True)))
    n = 40
    for i in range(n):
        send(m, "r%d@b.test" % i, "weight %d" % i)
    mtadtest.wait_until(lambda: len(a.messages) + len(b.messages) >= n,
                        30, "%d messages at the primaries" % n)
    na, nb = len(a.messages), len(b.messages)
    assert na + nb == n and c.messages == []
    # Expected 10:30; 2..20 fails by chance about once in 10^4 runs.
    assert 2 <= na <= 20, (na, nb)
    log = m.log()
    for s in (a, b):
        assert "relay=127.0.0.1[127.0.0.1]:%d," % s.port in log
    # qmgr keeps the one queue of a global smarthost for the list too.
    assert len(re.findall(r"job \d+ to smtp worker \d+: queue "
                          r"\(smarthost\),", log)) == n


def test_smarthosts_backup_when_primaries_down(mtad_factory, servers):
    """Both primaries refuse connections: the backup, within the job."""
    backup = servers(RSink())
    dead1, dead2 = free_port(), free_port()
    m = start(mtad_factory, smarthosts=smarthosts(
        (dead1, 1, False), (dead2, 1, False), (backup.port, 1, True)),
        retries=600)
    for i in range(3):
        send(m, "r%d@b.test" % i)
    backup.wait_for(3)
    for i in range(3):
        m.wait_log(sent_re("r%d@b.test" % i, r"127\.0\.0\.1\[127\.0\.0\.1\]"
                           r":%d" % backup.port))
    log = m.log()
    assert "status=deferred" not in log
    for p in (dead1, dead2):
        assert len(re.findall(r"smarthost 127\.0\.0\.1:%d marked down for "
                              r"60s" % p, log)) == 1


def test_smarthost_marked_down(mtad_factory, servers):
    """A dead host and a 421 greeting are tried once, then passed over."""
    good = servers(RSink())
    greet = servers(ScriptServer(greeting="421 4.3.2 busy, go away"))
    dead = free_port()
    m = start(mtad_factory, smarthosts=smarthosts(
        (dead, 1000, False), (greet.port, 1000, False), (good.port, 1, False)),
        retries=600)
    for i in range(5):
        send(m, "r%d@b.test" % i)
        good.wait_for(i + 1)
    log = m.log()
    assert "status=deferred" not in log
    assert greet.connections == 1
    assert len(re.findall(r"debug: \w+: connect to 127\.0\.0\.1\[127\.0\.0"
                          r"\.1\]:%d: Connection refused" % dead, log)) == 1
    assert "smarthost 127.0.0.1:%d marked down" % dead in log
    assert "smarthost 127.0.0.1:%d marked down" % greet.port in log


# --- routes and MX ------------------------------------------------------------

def test_routes(mtad_factory, servers):
    """
    Routes send a domain (any case) to a fixed host, with or without a
    port and credentials; an unrouted domain needs the DNS, which times
    out here (127.0.0.1:9): deferred 4.4.3.
    """
    port = free_port()
    plain = servers(RSink(host="127.0.0.3", port=port))
    authed = servers(RSink(users={USER: PASSWORD}, auth_plaintext=True))
    routes = ('( { domain = "Routed.TEST"; host = "127.0.0.3"; }, '
              '{ domain = "auth.test"; host = "127.0.0.1"; port = %d; '
              'username = "%s"; password = "%s"; } )'
              % (authed.port, USER, PASSWORD))
    m = start(mtad_factory, routes=routes, smtp_mx_port=port, retries=600)
    send(m, "user@routed.Test")
    send(m, "other@auth.test")
    send(m, "nobody@unrouted.test")
    assert plain.wait_for(1)[0].rcpt_tos == ["user@routed.Test"]
    got = authed.wait_for(1)
    assert got[0].rcpt_tos == ["other@auth.test"] and got[0].user == USER
    assert PASSWORD.encode() not in got[0].content
    m.wait_log(sent_re("user@routed.Test",
                       r"127\.0\.0\.3\[127\.0\.0\.3\]:%d" % port))
    line = m.wait_log(status_re("nobody@unrouted.test", "deferred", "4.4.3"),
                      timeout=20)
    assert "type=MX" in line.group(1)
    assert_no_password(m)


@pytest.fixture
def mxdns(request, workdir):
    """MX records for the MX tests; hosts on 127.0.0.2 to 127.0.0.6."""
    mx = [("pref.test", "a.mx.test", 10), ("pref.test", "b.mx.test", 20),
          ("down.test", "c.mx.test", 10), ("down.test", "b.mx.test", 20),
          ("greet.test", "d.mx.test", 10), ("greet.test", "b.mx.test", 20)]
    extra = ["--host-record=a.mx.test,127.0.0.2",
             "--host-record=b.mx.test,127.0.0.3",
             "--host-record=c.mx.test,127.0.0.4",
             "--host-record=d.mx.test,127.0.0.5",
             "--host-record=implicit.test,127.0.0.6",
             "--dns-rr=nullmx.test,15,000000"]
    d = Dnsmasq(workdir, mx=mx, extra=extra)
    d.start()
    yield d
    d.stop()


def test_mx(mtad_factory, servers, mxdns):
    """
    MX by preference; the next MX when the first refuses the connection
    or greets 421; the domain's A when it has no MX; null MX and NXDOMAIN
    bounce at once.
    """
    port = free_port()
    first = servers(RSink(host="127.0.0.2", port=port))
    second = servers(RSink(host="127.0.0.3", port=port))
    implicit = servers(RSink(host="127.0.0.6", port=port))
    greet = servers(ScriptServer(host="127.0.0.5", port=port,
                                 greeting="421 4.7.0 not now"))
    m = start(mtad_factory, resolver_nameservers="127.0.0.1:%d" % mxdns.port,
              smtp_mx_port=port, retries=600)
    for d in ("pref", "down", "greet", "implicit"):
        send(m, "r@%s.test" % d)
    for d in ("nullmx", "nx"):
        send(m, "r@%s.test" % d, sender="")
    assert [x.rcpt_tos for x in first.wait_for(1)] == [["r@pref.test"]]
    assert sorted(x.rcpt_tos[0] for x in second.wait_for(2)) == \
        ["r@down.test", "r@greet.test"]
    assert implicit.wait_for(1)[0].rcpt_tos == ["r@implicit.test"]
    m.wait_log(sent_re("r@pref.test", r"a\.mx\.test\[127\.0\.0\.2\]:%d"
                       % port))
    m.wait_log(sent_re("r@down.test", r"b\.mx\.test\[127\.0\.0\.3\]:%d"
                       % port))
    m.wait_log(sent_re("r@implicit.test",
                       r"implicit\.test\[127\.0\.0\.6\]:%d" % port))
    line = m.wait_log(status_re("r@nullmx.test", "bounced", "5.1.10"))
    assert "nullMX" in line.group(1)
    line = m.wait_log(status_re("r@nx.test", "bounced", "5.1.2"))
    assert "Host not found" in line.group(1)
    assert greet.connections == 1
    assert len(first.messages) == 1 and "status=deferred" not in m.log()


# --- the sink -------------------------------------------------------------------

def test_sink_keeps_domain_queues(mtad_factory, servers, workdir):
    """
    With a sink named in the DNS, mail for two domains keeps its two
    queues and reaches the sink; the only DNS query is for the sink.
    """
    sink = servers(RSink())
    dns = Dnsmasq(workdir, addresses={"sink.test": "127.0.0.1"})
    dns.start()
    try:
        m = start(mtad_factory, smtp_sink_address="sink.test",
                  smtp_sink_port=sink.port,
                  resolver_nameservers="127.0.0.1:%d" % dns.port)
        send_mail(m.port, "sender@a.test", ["a@one.test", "b@two.test"],
                  make_message("two domains"))
        got = sink.wait_for(2)
        assert sorted(x.rcpt_tos[0] for x in got) == ["a@one.test",
                                                      "b@two.test"]
        assert all(len(x.rcpt_tos) == 1 for x in got), "one job per queue"
        for r in ("a@one.test", "b@two.test"):
            m.wait_log(sent_re(r, r"sink\[127\.0\.0\.1\]:%d" % sink.port))
        log = m.log()
        assert re.search(r"qmgr\[\d+\]: debug: \w+: job \d+ .*queue one\.test",
                         log)
        assert re.search(r"qmgr\[\d+\]: debug: \w+: job \d+ .*queue two\.test",
                         log)
        queries = re.findall(r"query\[\w+\] (\S+)", dns.log())
        assert "sink.test" in queries
        assert set(queries) - {"relay.test", "sink.test"} == set(), queries
    finally:
        dns.stop()


def test_sink_with_smarthost_and_credentials(mtad_factory, servers):
    """A smarthost and a sink: one (smarthost) queue, the sink's login."""
    sink = servers(RSink(users={"sinkuser": PASSWORD}, auth_plaintext=True))
    m = start(mtad_factory, smarthost="relay.test", smarthost_port=2525,
              smarthost_username=USER, smarthost_password="other-secret",
              smtp_sink_ip="127.0.0.1", smtp_sink_port=sink.port,
              smtp_sink_username="sinkuser", smtp_sink_password=PASSWORD,
              resolver_nameservers=DEAD_DNS)
    send_mail(m.port, "sender@a.test", ["a@one.test", "b@two.test"],
              make_message("smarthost and sink"))
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["a@one.test", "b@two.test"]
    assert got[0].user == "sinkuser" and sink.auth_ok == [("PLAIN",
                                                           "sinkuser")]
    m.wait_log(sent_re("b@two.test", r"sink\[127\.0\.0\.1\]:%d" % sink.port))
    assert re.search(r"queue \(smarthost\), 2 recipients", m.log())
    assert_no_password(m, "other-secret")
    for secret in (PASSWORD, "other-secret"):
        assert secret.encode() not in got[0].content


def test_sink_resolved_late(mtad_factory, servers, workdir):
    """The DNS is not there at start: the sink's lookup is retried."""
    sink = servers(RSink())
    dns = Dnsmasq(workdir, addresses={"sink.test": "127.0.0.1"})
    try:
        m = start(mtad_factory, smtp_sink_address="sink.test",
                  smtp_sink_port=sink.port,
                  resolver_nameservers="127.0.0.1:%d" % dns.port)
        m.wait_log(r"sink sink\.test: name service error, try again; "
                   r"trying again in 1s")
        send(m, "r@late.test")
        dns.start()
        sink.wait_for(1)
        m.wait_log(sent_re("r@late.test", r"sink\[127\.0\.0\.1\]:%d"
                           % sink.port))
        assert "status=deferred" not in m.log()
    finally:
        dns.stop()


def test_sink_unresolvable_defers(mtad_factory, servers, mxdns):
    """A sink name without an address: jobs wait, then defer (4.4.3)."""
    m = start(mtad_factory, smtp_sink_address="nosink.test",
              resolver_nameservers="127.0.0.1:%d" % mxdns.port, retries=600)
    send(m, "r@pref.test")
    line = m.wait_log(status_re("r@pref.test", "deferred", "4.4.3"),
                      timeout=20)
    assert "sink nosink.test: no address for this name" in line.group(1)
    assert not re.search(r"query\[MX\]", mxdns.log())
