"""
Foundation: mtad accepts mail over SMTP, keeps it safe across crashes and
relays it to a smarthost (a real aiosmtpd on loopback), with the process
layout, privilege handling and command line of DESIGN.md sections 1, 3, 8,
9.  Every test runs its own mtad on a private spool; --retries=1 makes a
deferred message come back after one second.
"""

import os
import re
import signal
import subprocess
import time

import pytest

import mtadtest
from mtadtest import (CHILD_NAMES, make_message, nobody_ids, proc_ids,
                      send_mail, send_mail_retry, wait_until)

SENDER = "sender@a.test"
RCPT = "rcpt@b.test"

# One Received: header (possibly folded), as mtad prepends it.
RECEIVED_RE = re.compile(rb"\AReceived:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*\Z")


def relayed(msgid, rcpt, port):
    """The smtp log line for a recipient delivered to 127.0.0.1:port."""
    return (r"mtad/smtp\[\d+\]: %s: to=<%s>, relay=\S*\[127\.0\.0\.1\]:%d, "
            r".*status=sent" % (msgid, re.escape(rcpt), port))


def delivered_once(sink, needle):
    got = sink.matching(needle)
    assert len(got) == 1, "%d copies of %r" % (len(got), needle)
    return got[0]


# (1) ------------------------------------------------------------------------

def test_relay_exact_body(mtad, sink):
    """The smarthost gets the exact bytes, after one Received: header."""
    mtad.start()
    body = [
        "First line.",
        ".A line starting with a dot",
        "..Two dots",
        ".",
        " . space then dot",
        "x" * 998,
        "trailing spaces   ",
        "\ttab first",
        "Last line.",
    ]
    data = make_message("foundation exact body", SENDER, RCPT, body)
    msgid, reply = send_mail(mtad.port, SENDER, [RCPT], data)
    assert re.fullmatch(r"2\.0\.0 Ok: queued as %s" % msgid, reply), reply

    [m] = sink.wait_for(1, timeout=15)
    assert m.mail_from == SENDER
    assert m.rcpt_tos == [RCPT]
    assert m.content.endswith(data), "message body changed in transit"
    prefix = m.content[:-len(data)]
    assert RECEIVED_RE.match(prefix), "expected one Received: header " \
        "before the original message, got %r" % prefix[:300]
    for line in (b"From: Sender <sender@a.test>",
                 b"Subject: foundation exact body",
                 b"\r\n.\r\n", b"\r\n..Two dots\r\n", b"x" * 998 + b"\r\n"):
        assert line in m.content

    mtad.wait_log(r"mtad/qmgr\[\d+\]: %s: from=<%s>, size=\d+, nrcpt=1 "
                  r"\(queue active\)" % (msgid, re.escape(SENDER)))
    mtad.wait_log(relayed(msgid, RCPT, sink.port))
    mtad.wait_log(r"mtad/qmgr\[\d+\]: %s: removed" % msgid)


# (2) ------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["data", "rcpt"])
def test_tempfail_then_retry(mtad, sink, cmd):
    """A 4xx from the smarthost defers; the retry after 1 s delivers."""
    sink.fail(cmd, 1, "451 4.3.0 try later")
    mtad.start()
    data = make_message("retry after 451 at %s" % cmd)
    msgid, _ = send_mail(mtad.port, SENDER, [RCPT], data)
    [m] = sink.wait_for(1, timeout=15)
    assert m.content.endswith(data)
    assert sink.attempts[cmd] == 2, sink.attempts
    deferred = mtad.wait_log(r"mtad/smtp\[\d+\]: %s: to=<%s>, .*"
                             r"status=deferred" % (msgid, re.escape(RCPT)))
    sent = mtad.wait_log(relayed(msgid, RCPT, sink.port))
    assert deferred.start() < sent.start()
    mtad.wait_log(r"%s: removed" % msgid)


# (3), (4) --------------------------------------------------------------------

@pytest.mark.parametrize("victim", ["qmgr", "smtp"])
def test_child_killed_is_restarted(mtad, sink, victim):
    """kill -9 of a child: the master restarts it, no mail is lost."""
    sink.always("data", "451 4.3.0 try later")
    mtad.start()
    before = make_message("sent before killing %s" % victim)
    id1, _ = send_mail(mtad.port, SENDER, [RCPT], before)
    sink.wait_attempts("data", 1, timeout=10)   # queued, tried, deferred

    old = mtad.kill9(victim)
    new = mtad.wait_new_child(victim, old, timeout=10)
    assert new != old
    mtad.wait_log(r"(?i)\b%s\b.*\b(signal 9|sigkill|killed)" % victim,
                  timeout=5)

    sink.accept()
    after = make_message("sent after killing %s" % victim)
    id2, _ = send_mail_retry(mtad.port, SENDER, [RCPT], after, timeout=10)
    assert id1 != id2
    sink.wait_match(b"Subject: sent before killing", timeout=15)
    sink.wait_match(b"Subject: sent after killing", timeout=15)
    mtad.wait_log(r"%s: removed" % id1)
    mtad.wait_log(r"%s: removed" % id2)
    assert delivered_once(sink, before).content.endswith(before)
    assert delivered_once(sink, after).content.endswith(after)
    assert mtad.running()


# (5) ------------------------------------------------------------------------

def test_kill_everything_then_restart(mtad, sink):
    """SIGKILL of the whole tree after a 250: the restart delivers it."""
    sink.stop()                     # smarthost down: connection refused
    mtad.start()
    data = make_message("survives kill -9 of everything")
    msgid, _ = send_mail(mtad.port, SENDER, [RCPT], data)
    refs = mtad.kill_all()
    assert len(refs) >= 1 + len(CHILD_NAMES), refs

    sink.start()                    # same port
    mtad.start()                    # same spool, same port, stale pid file
    m = sink.wait_match(b"Subject: survives kill -9", timeout=15)
    assert m.content.endswith(data)
    assert (m.mail_from, m.rcpt_tos) == (SENDER, [RCPT])
    mtad.wait_log(r"%s: removed" % msgid)
    assert len(sink.messages) == 1


# (6) ------------------------------------------------------------------------

def test_smarthost_by_name_through_resolver(mtad_factory, sink, dnsmasq):
    """--smarthost=relay.test is resolved through dnsmasq, then used."""
    mtad = mtad_factory(dns="127.0.0.1:%d" % dnsmasq.port)
    mtad.start(smarthost="relay.test")
    data = make_message("smarthost by name")
    msgid, _ = send_mail(mtad.port, SENDER, [RCPT], data)
    [m] = sink.wait_for(1, timeout=15)
    assert m.content.endswith(data)
    dnsmasq.wait_log(r"query\[(A|AAAA)\] relay\.test from 127\.0\.0\.1",
                     timeout=5)
    mtad.wait_log(r"mtad/smtp\[\d+\]: %s: to=<%s>, "
                  r"relay=relay\.test\[127\.0\.0\.1\]:%d, .*status=sent"
                  % (msgid, re.escape(RCPT), sink.port))


# (7) ------------------------------------------------------------------------

def test_privilege_drop_as_root(mtad_factory, sink):
    """As root: children run as nobody (smtpd/smtp/resolver chrooted)."""
    assert os.geteuid() == 0, \
        "the privilege drop is tested as root, as make check runs"
    mtad = mtad_factory(run_as=None)
    uid, gid = nobody_ids()
    mtad.start(user="nobody")
    send_mail(mtad.port, SENDER, [RCPT], make_message("as root"))
    sink.wait_for(1, timeout=15)

    uids, gids, _ = proc_ids(mtad.proc.pid)
    assert uids == [0, 0, 0, 0], "master uids %r" % uids
    pids = mtad.pids()
    for name in CHILD_NAMES:
        for pid in pids[name]:
            uids, gids, groups = proc_ids(pid)
            assert uids == [uid] * 4, "%s[%d] uids %r" % (name, pid, uids)
            assert gids == [gid] * 4, "%s[%d] gids %r" % (name, pid, gids)
            assert set(groups) <= {gid}, "%s[%d] supplementary groups %r" \
                % (name, pid, groups)
            if name != "qmgr":
                root = os.readlink("/proc/%d/root" % pid)
                assert root != "/", "%s[%d] is not chrooted" % (name, pid)
    slots = mtad.spool / "slots"
    assert slots.stat().st_uid == uid


# (8) ------------------------------------------------------------------------

def test_runs_as_ordinary_user(mtad_factory, workdir, sink):
    """Started by an ordinary user: the drop is skipped, mail flows."""
    if os.geteuid() == 0:
        uid, gid = nobody_ids()
        os.chown(workdir, uid, gid)
        mtad = mtad_factory(run_as="nobody")
        os.chown(mtad.conf, uid, gid)
    else:
        uid = os.geteuid()
        mtad = mtad_factory()
    mtad.start()
    assert proc_ids(mtad.proc.pid)[0] == [uid] * 4
    for name in CHILD_NAMES:
        for pid in mtad.pids()[name]:
            assert proc_ids(pid)[0] == [uid] * 4
    mtad.wait_log(r"(?i)(skip\w*.*(privilege|drop|chroot|root)"
                  r"|(privilege|drop|chroot|root).*skip)", timeout=5)
    data = make_message("as an ordinary user")
    msgid, _ = send_mail(mtad.port, SENDER, [RCPT], data)
    [m] = sink.wait_for(1, timeout=15)
    assert m.content.endswith(data)
    mtad.wait_log(r"%s: removed" % msgid)
    assert mtad.spool.stat().st_uid == uid


# (9) ------------------------------------------------------------------------

BAD_CONFIGS = {
    # name: (text, bad line, a word the message must contain)
    "syntax": ('# broken\nsmarthost = "relay.test";\nsmtp-port = = 25;\n'
               'retries = [1];\n', 3, None),
    "unknown-key": ('smarthost = "relay.test";\nno-such-key = 1;\n', 2,
                    "no-such-key"),
    "wrong-type-int": ('# types\nsmtp-workers = "four";\n', 2,
                       "smtp-workers"),
    "wrong-type-bool": ('smtp-mq-headers = 5;\n', 1, "smtp-mq-headers"),
    "out-of-range": ('\n\nsmarthost-port = 70000;\n', 3, "smarthost-port"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_config_refuses_bad_file(build, workdir, case):
    text, line, word = BAD_CONFIGS[case]
    conf = workdir / ("%s.conf" % case)
    conf.write_text(text)
    r = mtadtest.run_check(conf)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "configuration OK" not in out
    m = re.search(r"^\S*%s:%d: .+$" % (re.escape(conf.name), line),
                  r.stderr, re.M)
    assert m, "no '%s:%d: reason' on stderr:\n%s" % (conf, line, r.stderr)
    if word:
        assert word in m.group(0), m.group(0)
    assert not mtadtest.sanitizer_lines(out), out


def test_check_config_good_file_and_overrides(build, workdir):
    conf = workdir / "good.conf"
    conf.write_text(
        "# a good file\n"
        "smtp-port = 2525;\n"
        "smtp-ip: \"127.0.0.1\"\n"
        "smarthost = \"relay.test\";\n"
        "smarthost-port = 2526;\n"
        "retries = [60, 300];\n"
        "user = \"nobody\";\n"
        "spool-dir = \"%s\";\n"
        "resolver-nameservers = [\"127.0.0.1:9\"];\n" % (workdir / "spool"))
    r = mtadtest.run_check(conf)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "configuration OK" in out
    assert not (workdir / "spool").exists(), "-n must not create the spool"

    r = mtadtest.run_check(conf, "--smtp-workers=two")
    assert r.returncode != 0 and "--smtp-workers" in r.stderr, \
        r.stdout + r.stderr
    r = mtadtest.run_check(conf, "--no-such-key=1")
    assert r.returncode != 0 and "no-such-key" in r.stderr, \
        r.stdout + r.stderr
    r = mtadtest.run_check(conf, "--smarthost-port=2527")
    assert r.returncode == 0, r.stdout + r.stderr


# (10) -----------------------------------------------------------------------

def test_swaks_readme_example(mtad, sink):
    mtad.start()
    cmd = ["swaks", "--server", "127.0.0.1:%d" % mtad.port,
           "--to", "a@b.test", "--from", "c@d.test", "--timeout", "10"]
    if os.geteuid() == 0 and not _hostname_in_hosts():
        # swaks resolves the local hostname: keep that lookup off DNS.
        cmd = ["unshare", "--uts", "sh", "-c",
               'hostname localhost && exec "$@"', "sh"] + cmd
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, errors="replace", timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"<- {1,2}250 2\.0\.0 Ok: queued as \w+", r.stdout), \
        r.stdout
    [m] = sink.wait_for(1, timeout=15)
    assert (m.mail_from, m.rcpt_tos) == ("c@d.test", ["a@b.test"])
    assert b"X-Mailer: swaks" in m.content
    assert b"This is a test mailing" in m.content


def _hostname_in_hosts():
    import socket
    h = socket.gethostname()
    try:
        with open("/etc/hosts") as f:
            return any(h in line.split()[1:] for line in f
                       if not line.lstrip().startswith("#"))
    except OSError:
        return False


# (11) -----------------------------------------------------------------------

def test_sigterm_stops_everything(mtad, sink):
    mtad.start()
    assert int(mtad.pidfile.read_text().split()[0]) == mtad.proc.pid
    send_mail(mtad.port, SENDER, [RCPT], make_message("before SIGTERM"))
    sink.wait_for(1, timeout=15)
    kids = [mtad.seen[p] for ps in mtad.pids().values() for p in ps]
    assert len(kids) >= len(CHILD_NAMES)

    t0 = time.monotonic()
    mtad.proc.send_signal(signal.SIGTERM)
    try:
        rc = mtad.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("master still running 10 s after SIGTERM")
    wait_until(lambda: not any(k.alive() for k in kids), 5,
               "children to exit after SIGTERM: %r"
               % [k for k in kids if k.alive()])
    assert rc == 0, "master exit status %r" % rc
    assert not mtad.pidfile.exists(), "pid file left behind"
    assert time.monotonic() - t0 < 10
