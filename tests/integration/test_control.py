"""
mtactl and the control socket (issue 6): every command in human and JSON
form against a running mtad with mail queued in several queues, the
effect of hold/release/flush/remove on delivery, refusal of other users,
qmgr away, reload of the smarthost, make install/uninstall and the man
pages.

Mail stays queued by itself: with no smarthost and the resolver pointed
at 127.0.0.1:9 every MX lookup fails (per-domain queues, deferred); a sink
answering 451 keeps smarthost mail deferred; retries of an hour mean no
retry happens during a test unless mtactl asks for one.
"""

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import mtadtest
import spoolutil
from ctlutil import (MTACTL, column_aligned, ctl_fail, ctl_json, ctl_ok,
                     inject, mtactl, queues, wait_queues)
from mtadtest import Sink, make_message, send_mail, wait_until

INJECTED = "000000000A01"       # a queue id older than any qmgr issues


def _send(m, tag, rcpts, sender="sender@a.test"):
    return send_mail(m.port, sender, rcpts,
                     make_message(tag, sender=sender, rcpt=rcpts[0]))[0]


def test_every_command_human_and_json(mtad_factory):
    """Per-domain and per-message smarthost queues, every command."""
    s451 = Sink().start()
    try:
        s451.always("rcpt", "451 4.3.0 try later")
        m = mtad_factory()
        inject(m, INJECTED, "inj@a.test", ["far@c.test"],
               properties={"smarthost": {"hostname": "127.0.0.1",
                                         "port": s451.port,
                                         "username": "u",
                                         "password": "s3cret"}},
               received=int(time.time()) - 120)
        m.start(smarthost=None, smarthost_port=None, retries=3600)
        a1 = _send(m, "a1", ["x@a.test"])
        a2 = _send(m, "a2", ["y@a.test"])
        b1 = _send(m, "b1", ["p@b.test", "q@b.test"])
        ab = _send(m, "ab", ["z@a.test", "r@b.test"])
        sh = "(smarthost) 127.0.0.1:%d" % s451.port

        # queue: one row per queue, every recipient deferred once.
        q = wait_queues(m, lambda q: set(q) == {"a.test", "b.test", sh} and
                        all(r["deferred"] == r["recipients"]
                            for r in q.values()),
                        what="three queues, all deferred")
        assert (q["a.test"]["messages"], q["a.test"]["recipients"]) == (3, 3)
        assert (q["b.test"]["messages"], q["b.test"]["recipients"]) == (2, 3)
        assert (q[sh]["messages"], q[sh]["recipients"]) == (1, 1)
        assert q[sh]["age"] >= 120 and q[sh]["oldest"] < time.time() - 100
        for r in q.values():
            assert r["held"] == 0 and r["active"] == 0
            assert r["next-attempt"] > time.time() + 3000
        whole = ctl_json(m, "queue")
        assert whole["totals"] == {"queues": 3, "messages": 6,
                                   "recipients": 7, "active": 0,
                                   "deferred": 7, "held": 0}
        # Most messages first.
        assert [r["queue"] for r in whole["queues"]] == ["a.test", "b.test",
                                                         sh]
        out = ctl_ok(m, "queue")
        assert out.splitlines()[0].split() == [
            "QUEUE", "MESSAGES", "RECIPIENTS", "ACTIVE", "DEFERRED", "HELD",
            "OLDEST", "NEXT", "STATE"]
        assert sh in out and "total: 3 queues, 6 messages, 7 recipients" \
            in out
        assert column_aligned(out, "MESSAGES", "a.test")
        assert column_aligned(out, "RECIPIENTS", "b.test")
        assert re.search(r"^a\.test\s+3\s+3\s+0\s+3\s+0\s+\S+\s+in \S+",
                         out, re.M), out

        # list: everything oldest first, one queue, pages.
        lst = ctl_json(m, "list")
        assert [r["id"] for r in lst["messages"]] == [INJECTED, a1, a2, b1,
                                                      ab]
        assert lst["total"] == 5 and not lst["truncated"]
        row = lst["messages"][3]
        assert (row["recipients"], row["deferred"], row["state"],
                row["to"]) == (2, 2, "deferred", ["p@b.test", "q@b.test"])
        assert row["sender"] == "sender@a.test" and row["size"] > 100
        la = ctl_json(m, "list", "a.test")
        assert [r["id"] for r in la["messages"]] == [a1, a2, ab]
        assert la["messages"][2]["to"] == ["z@a.test"]
        page = ctl_json(m, "list", "--limit", "2", "--offset", "2")
        assert [r["id"] for r in page["messages"]] == [a2, b1]
        assert (page["total"], page["shown"]) == (5, 2)
        out = ctl_ok(m, "list", "--limit=2")
        assert out.splitlines()[0].split() == [
            "ID", "SIZE", "ARRIVAL", "SENDER", "RCPTS", "STATE", "TO"]
        assert INJECTED in out and a1 in out and a2 not in out
        assert "(showing 1-2 of 5 messages" in out
        out = ctl_ok(m, "list", sh)
        assert INJECTED in out and "<inj@a.test>" in out and a1 not in out

        # show: envelope and recipients; the smarthost password masked.
        sj = ctl_json(m, "show", INJECTED)
        assert sj["properties"]["smarthost"]["password"] == "********"
        assert sj["recipients"][0]["queue"] == sh
        assert sj["recipients"][0]["state"] == "deferred"
        assert sj["recipients"][0]["attempts"] == 1
        assert "451" in sj["recipients"][0]["last"]
        out = ctl_ok(m, "show", INJECTED)
        assert "s3cret" not in out and "far@c.test" in out
        sb = ctl_json(m, "show", b1)
        assert [r["address"] for r in sb["recipients"]] == ["p@b.test",
                                                             "q@b.test"]
        assert sb["pending"] == 2 and sb["client"] and sb["size"] > 100
        out = ctl_ok(m, "show", b1)
        assert re.search(r"^q@b\.test\s+deferred\s+b\.test\s+1\s+in ",
                         out, re.M), out

        # status and stats: processes and counters.
        st = ctl_json(m, "status")
        names = sorted(p["name"] for p in st["processes"])
        assert names == ["qmgr", "resolver", "smtp", "smtpd"]
        assert all(p["ready"] and p["pid"] > 0 for p in st["processes"])
        assert st["counters"]["received"] == 4
        out = ctl_ok(m, "status")
        assert "PROCESS" in out and "qmgr" in out and "received" in out
        stats = ctl_json(m, "stats")
        assert stats["received"] == 4 and stats["missing"] == []
        assert stats["deferred"] >= 7 and stats["delivered"] == 0
        assert stats["connections-in"] >= 4
        assert stats["connections-out"] >= 1      # to the 451 smarthost
        out = ctl_ok(m, "stats")
        assert re.search(r"^received\s+4$", out, re.M), out

        # hold and release a queue; flush a queue; remove a message.
        h = ctl_json(m, "hold", "b.test")
        assert (h["held"], h["messages"]) == (3, 2)
        q = queues(m)
        assert q["b.test"]["held"] == 3 and q["b.test"]["next-attempt"] \
            is None and q["a.test"]["held"] == 0
        assert ctl_json(m, "list", "b.test")["messages"][0]["state"] == \
            "held"
        assert "held 0 recipients in 0 messages" in ctl_ok(m, "hold",
                                                           "b.test")
        assert "released 3 recipients in 2 messages" in \
            ctl_ok(m, "release", "b.test")
        f = ctl_json(m, "flush", "a.test")
        assert (f["flushed"], f["messages"]) == (3, 3)
        wait_until(lambda: ctl_json(m, "show", a1)["recipients"][0]
                   ["attempts"] >= 2, 10, "a1 tried again after flush")
        assert ctl_json(m, "show", b1)["recipients"][0]["attempts"] >= 1
        r = ctl_json(m, "remove", a2)
        assert r["removed"] and r["id"] == a2
        assert spoolutil.envelope(m.spool, a2) is None
        assert "no such message" in ctl_fail(m, "show", a2)
        assert "%s: removed" % ab in ctl_ok(m, "remove", ab)
        q = queues(m)
        assert q["a.test"]["messages"] == 1 and q["b.test"]["messages"] == 1
        assert "configuration reloaded" in ctl_ok(m, "reload")
        assert ctl_json(m, "reload") == {"reloaded": True,
                                         "restart-needed": []}

        # Refusals: exit 1 with one line; usage: exit 2 with one line.
        assert "no such message or queue" in ctl_fail(m, "hold", "nowhere.test")
        assert "no such queue" in ctl_fail(m, "list", "nowhere.test")
        assert "--bounce" in ctl_fail(m, "show", a1, "--bounce", status=2)
        ctl_fail(m, "list", "--limit", "0", status=2)
        ctl_fail(m, "frobnicate", status=2)
        ctl_fail(m, "status", "extra", status=2)
        ctl_fail(m, "hold", status=2)
        ctl_fail(m, "--nope", "status", status=2)
        assert "is mtad running?" in ctl_fail(
            m, "queue", "-s", str(m.workdir / "nothing.sock"))
    finally:
        s451.stop()


def test_hold_release_flush_remove_change_delivery(mtad, sink):
    """The (smarthost) queue; what each command does to delivery."""
    sink.always("rcpt", "451 4.3.0 try later")
    mtad.start(retries=3600)
    ids = [_send(mtad, "tag-%d" % i, ["rcpt%d@b.test" % i])
           for i in range(4)]
    m1, m2, m3, m4 = ids
    q = wait_queues(mtad, lambda q: q.get("(smarthost)", {}).get(
        "deferred") == 4, what="4 deferred in (smarthost)")
    assert list(q) == ["(smarthost)"]
    assert "(smarthost)" in ctl_ok(mtad, "queue")

    # A held message stays held across a restart (kept in its envelope).
    assert ctl_json(mtad, "hold", m1)["held"] == 1
    assert '"held":true' in json.dumps(
        spoolutil.envelope(mtad.spool, m1)).replace(" ", "")
    mtad.stop()
    mtad.start(retries=3600)
    assert queues(mtad)["(smarthost)"]["held"] == 1
    assert ctl_json(mtad, "show", m1)["recipients"][0]["state"] == "held"

    # flush ID: that message goes now, the others wait for their hour.
    sink.accept()
    assert ctl_json(mtad, "flush", m2)["flushed"] == 1
    sink.wait_match(b"tag-1")
    assert ctl_json(mtad, "show", m3)["recipients"][0]["attempts"] == 1

    # remove: gone from the spool, never delivered.
    assert ctl_json(mtad, "remove", m3)["removed"]
    assert spoolutil.envelope(mtad.spool, m3) is None
    mtad.wait_log(r"%s: removed by mtactl" % m3)

    # flush everything: m4 goes, the held m1 does not.
    assert ctl_json(mtad, "flush")["flushed"] == 1
    sink.wait_match(b"tag-3")
    assert ctl_json(mtad, "show", m1)["recipients"][0]["state"] == "held"
    assert not sink.matching(b"tag-0")

    # release: delivered at once.
    assert ctl_json(mtad, "release", m1)["released"] == 1
    sink.wait_match(b"tag-0")
    wait_until(lambda: ctl_json(mtad, "queue")["totals"]["messages"] == 0,
               10, "an empty queue")
    assert not sink.matching(b"tag-2")
    assert len(sink.messages) == 3
    stats = ctl_json(mtad, "stats")
    assert (stats["received"], stats["delivered"]) == (0, 3)


def test_in_flight_hold_and_remove_and_bounce(mtad, sink):
    """Hold and remove reach recipients whose attempt is under way."""
    sink.always("rcpt", "451 4.3.0 try later")
    mtad.start(retries=3600)
    held = _send(mtad, "held-in-flight", ["h@b.test"])
    gone = _send(mtad, "removed-in-flight", ["g@b.test"])
    wait_queues(mtad, lambda q: q.get("(smarthost)", {}).get("deferred")
                == 2, what="2 deferred")
    # The worker is stopped: a flushed job stays in flight.
    smtp = mtad.seen[mtad.child("smtp")]
    smtp.signal(signal.SIGSTOP)
    try:
        assert ctl_json(mtad, "flush")["flushed"] == 2
        wait_until(lambda: queues(mtad)["(smarthost)"]["active"] == 2, 10,
                   "2 recipients in flight")
        assert ctl_json(mtad, "hold", held)["held"] == 1
        r = ctl_json(mtad, "remove", gone)
        assert (r["removed"], r["in-flight"]) == (False, 1)
        assert "removed when its 1 recipient in flight comes back" in \
            ctl_ok(mtad, "remove", gone)
    finally:
        smtp.signal(signal.SIGCONT)
    # Back deferred: one parked as held, the other removed for good.
    mtad.wait_log(r"%s: removed$" % gone)
    assert spoolutil.envelope(mtad.spool, gone) is None
    wait_until(lambda: ctl_json(mtad, "show", held)["recipients"][0]
               ["state"] == "held", 10, "held after its attempt")
    assert queues(mtad)["(smarthost)"]["messages"] == 1

    # remove --bounce: the sender gets a non-delivery report.
    sink.accept()
    assert ctl_json(mtad, "remove", held, "--bounce")["bounced"]
    dsn = sink.wait_match(b"removed by the postmaster")
    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == ["sender@a.test"]
    assert b"h@b.test" in dsn.content
    assert not [m for m in sink.messages if "h@b.test" in m.rcpt_tos]
    null = _send(mtad, "from-null", ["n@b.test"], sender="")
    sink.wait_match(b"Subject: from-null")
    assert "no such message" in ctl_fail(mtad, "remove", null, "--bounce")


def test_unauthorized_uid_refused(mtad_factory, sink):
    """Root and `user` are served; anybody else is refused."""
    m = mtad_factory(run_as=None)        # the master runs as root
    m.start()
    st = os.stat(m.ctlsock)
    nobody = pwd.getpwnam("nobody")
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == (0, nobody.pw_gid)
    # Group access lets it connect; the master checks the peer's uid.
    why = ctl_fail(m, "status", uid=65533, gid=nobody.pw_gid)
    assert "permission denied" in why
    m.wait_log(r"control: refused a client with uid 65533")
    assert ctl_json(m, "status", uid=nobody.pw_uid, gid=nobody.pw_gid)
    assert ctl_json(m, "queue")["totals"]["messages"] == 0


def test_qmgr_unavailable(mtad, sink):
    """A request qmgr cannot answer fails with exit 1, and mtad goes on."""
    mtad.start()
    qmgr = mtad.seen[mtad.child("qmgr")]
    qmgr.signal(signal.SIGSTOP)
    mark = mtad.mark()
    p = subprocess.Popen([str(MTACTL), "-s", str(mtad.ctlsock), "queue"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=mtadtest.mtad_env())
    try:
        mtad.wait_log(r"control: request \d+: queue to qmgr", since=mark)
        qmgr.signal(signal.SIGKILL)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1 and out == ""
    assert err.strip() == "mtactl: queue: qmgr unavailable"
    mtad.wait_new_child("qmgr", qmgr.pid)
    wait_until(lambda: mtactl(mtad, "queue").returncode == 0, 10,
               "qmgr back")
    assert ctl_json(mtad, "status")["counters"]["missing"] == []


def test_reload_changes_smarthost(mtad_factory, sink):
    """Queued for A; the file now names B; reload, flush: B gets it."""
    a = Sink().start()
    try:
        a.always("rcpt", "451 4.3.0 try later")
        m = mtad_factory()
        m.conf.write_text('smarthost = "127.0.0.1";\nsmarthost-port = %d;\n'
                          'smtp-workers = 1;\n' % a.port)
        m.start(smarthost=None, smarthost_port=None, smtp_workers=None,
                retries=3600)
        mid = _send(m, "to-b", ["rcpt@b.test"])
        a.wait_attempts("rcpt", 1)
        wait_queues(m, lambda q: q.get("(smarthost)", {}).get("deferred")
                    == 1, what="deferred at A")
        # B is the default sink; a restart-only key changes too.
        m.conf.write_text('smarthost = "127.0.0.1";\nsmarthost-port = %d;\n'
                          'smtp-workers = 2;\n' % sink.port)
        r = ctl_json(m, "reload")
        assert r == {"reloaded": True, "restart-needed": ["smtp-workers"]}
        m.wait_log(r"reload: smtp-workers changed: kept as running")
        assert ctl_json(m, "flush", mid)["flushed"] == 1
        got = sink.wait_match(b"to-b")
        assert got.rcpt_tos == ["rcpt@b.test"]
        assert a.attempts["rcpt"] == 1
        # Still one smtp worker: the restart-only key kept its value.
        assert len(m.pids().get("smtp", [])) == 1
        # A file that does not load is refused and the old config stays.
        m.conf.write_text("smarthost-port = \"nope\";\n")
        why = ctl_fail(m, "reload")
        assert "reload: " in why and "smarthost-port" in why
        assert ctl_json(m, "status")["counters"]["missing"] == []
    finally:
        a.stop()


def test_install_and_uninstall(build):
    """make install DESTDIR=... PREFIX=/usr, then make uninstall."""
    dest = Path(tempfile.mkdtemp(prefix="mtad-install-"))
    try:
        make = ["make", "-s", "-C", str(mtadtest.REPO),
                "BUILD=%s" % build, "DESTDIR=%s" % dest, "PREFIX=/usr"]
        # Install the binaries under test as they are: never rebuild them.
        for b in [mtadtest.MTAD, MTACTL] + mtadtest.CHILD_BINS:
            make += ["-o", str(b)]
        subprocess.run(make + ["install"], check=True, timeout=300,
                       capture_output=True)
        want = ["usr/sbin/mtad", "usr/sbin/mtactl",
                "usr/libexec/mtad/smtpd", "usr/libexec/mtad/qmgr",
                "usr/libexec/mtad/smtp", "usr/libexec/mtad/resolver",
                "usr/share/man/man8/mtad.8", "usr/share/man/man8/mtactl.8",
                "usr/share/man/man8/mtad-qmgr.8",
                "usr/share/man/man5/mtad.conf.5",
                "usr/lib/systemd/system/mtad.service",
                "etc/mtad/mtad.conf"]
        for f in want:
            assert (dest / f).is_file(), f
        assert os.access(dest / "usr/sbin/mtactl", os.X_OK)
        svc = (dest / "usr/lib/systemd/system/mtad.service").read_text()
        assert "ExecStart=/usr/sbin/mtad -d -f /etc/mtad/mtad.conf" in svc
        if shutil.which("systemd-analyze"):
            v = subprocess.run(["systemd-analyze", "verify", str(
                dest / "usr/lib/systemd/system/mtad.service")],
                capture_output=True, text=True, timeout=60)
            bad = [l for l in (v.stdout + v.stderr).splitlines()
                   if re.search(r"[Uu]nknown|[Ii]nvalid|[Ff]ailed to parse",
                                l)]
            assert not bad, bad
        # An existing config is never overwritten.
        (dest / "etc/mtad/mtad.conf").write_text("# mine\n")
        subprocess.run(make + ["install"], check=True, timeout=300,
                       capture_output=True)
        assert (dest / "etc/mtad/mtad.conf").read_text() == "# mine\n"
        subprocess.run(make + ["uninstall"], check=True, timeout=60,
                       capture_output=True)
        for f in want[:-1]:
            assert not (dest / f).exists(), f
        assert (dest / "etc/mtad/mtad.conf").read_text() == "# mine\n"
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_man_pages_lint_and_document_every_key(build):
    """mandoc -T lint is clean; mtad.conf.5 and conf/mtad.conf agree."""
    repo = mtadtest.REPO
    p = subprocess.run(["/usr/bin/python3", str(repo / "tests" /
                                                "check_conf_doc.py"),
                        str(build / "sbin" / "mtad"),
                        str(repo / "man" / "mtad.conf.5"),
                        str(repo / "conf" / "mtad.conf")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for page in ("mtactl.8", "mtad.8"):
        text = (repo / "man" / page).read_text()
        for cmd in ("status", "stats", "queue", "list", "show", "flush",
                    "hold", "release", "remove", "reload"):
            if page == "mtactl.8":
                assert ".It Cm %s" % cmd in text, (page, cmd)
