"""
Supervision (issue 8, DESIGN.md section 1): the master restarts a child
that died with a back-off that grows while the child keeps dying soon
after its start (0.5 s, doubling, up to 60 s) and starts again from
0.5 s once a child has stayed up (30 s, RESTART_STABLE in
master/master_child.c); and when the master itself dies, its children
go too, so nothing orphaned keeps the SMTP port.

The back-off reset needs a child that lived 30 s: that wait is used to
run the master-death checks on two more instances (as the unprivileged
user, and as root, where the children chroot and drop privileges, which
clears PR_SET_PDEATHSIG: the EOF on the master's channel must do it).

A child killed by a signal before it finished its first setup (here
qmgr, slowed by a spool of 3,000 messages to recover) is restarted like
any other; only a child that exits then (a config error) stops mtad.
"""

import json
import os
import re
import signal
import time


import spoolutil
from crashutil import Instances, children_of, port_free, wait_gone
from mtadtest import ProcRef, make_message, proc_stat, send_mail, wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")
BOOT = time.time() - float(open("/proc/uptime").read().split()[0])


def started_at(pid):
    """A process's start as time.time(), from /proc (tick precision)."""
    return BOOT + proc_stat(pid)[3] / CLK_TCK


def kill_and_time(m, name):
    """SIGKILL child name: (logged delay, seconds until the new one ran)."""
    mark = m.mark()
    t = time.time()
    old = m.kill9(name)
    line = m.wait_log(r"mtad/master\[\d+\]: restarting %s in (\d+\.\d) s"
                      % name, timeout=5, since=mark)
    new = m.wait_new_child(name, old, timeout=90)
    return float(line.group(1)), started_at(new) - t, new


def master_death(m):
    """SIGKILL the master: its children exit, the port is free."""
    kids = children_of(m.proc.pid)
    assert len(kids) >= 4, kids
    t = time.monotonic()
    m.master.signal(signal.SIGKILL)
    m.proc.wait(timeout=5)
    wait_gone(kids, 5, "the children of a dead master to exit")
    took = time.monotonic() - t
    wait_until(lambda: port_free(m.port), 5, "port %d free" % m.port)
    assert m.wait_log(r"master went away, exiting", timeout=2)
    return took


def test_backoff_grows_then_resets(mtad_factory, sink, workdir):
    m = mtad_factory()
    m.start(**{"log-level": "info"})

    delays = []
    for _ in range(3):
        logged, took, pid = kill_and_time(m, "qmgr")
        delays.append(logged)
        # The restart waited (ticks are 10 ms; fork+exec adds a little).
        assert took >= logged - 0.05, (logged, took)
    assert delays == [0.5, 1.0, 2.0], delays
    stable_from = started_at(pid)

    # The restarted qmgr works: it took its peers back.
    data = make_message("after three qmgr restarts")
    send_mail(m.port, "s@a.test", ["r@b.test"], data)
    assert sink.wait_match(b"after three qmgr restarts").content \
        .endswith(data)

    # Meanwhile: children go when their master dies, root or not.
    others = Instances(workdir, sink.port)
    try:
        for run_as in ("nobody", None):
            other = others.make("mtad-%s" % (run_as or "root"), run_as)
            other.start(**{"log-level": "info"})
            took = master_death(other)
            print("master SIGKILL (%s): children gone in %.2f s"
                  % (run_as or "root", took))
    finally:
        reports = others.cleanup()
    assert not reports, reports

    # 30 s up: the next death restarts after 0.5 s again.
    left = stable_from + 30.5 - time.time()
    if left > 0:
        time.sleep(left)
    logged, took, _ = kill_and_time(m, "qmgr")
    assert logged == 0.5, "back-off not reset after 30 s up: %s s" % logged
    assert took < 2.0
    assert m.running()


def test_kill_during_first_setup_restarts(mtad_factory, sink):
    """kill -9 of qmgr before its first MSG_SETUP_READY: restarted."""
    m = mtad_factory()
    sink.stop()
    m.start(**{"log-level": "info"})
    msgid, _ = send_mail(m.port, "s@a.test", ["r@b.test"],
                         make_message("first setup kill"))
    assert m.stop() == 0
    # 3,000 delivered messages in the older spool format make qmgr's
    # recovery (before it says ready) long enough to be hit reliably; it
    # removes them all.
    env = spoolutil.envelope(m.spool, msgid)
    data = spoolutil.data(m.spool, msgid)
    st = (m.spool / "slots").stat()
    q = m.spool / "queue"
    q.mkdir(mode=0o700)
    os.chown(q, st.st_uid, st.st_gid)
    for i in range(3000):
        mid = "%012X" % (0xA00000000000 + i)
        env["id"] = mid
        env["recipients"][0]["state"] = "delivered"
        (q / mid).write_bytes(data)
        (q / (mid + ".env")).write_text(json.dumps(env))
        os.chown(q / mid, st.st_uid, st.st_gid)
        os.chown(q / (mid + ".env"), st.st_uid, st.st_gid)

    sink.start()
    mark = m.mark()
    m.start(wait=False, **{"log-level": "debug"})
    victim = wait_until(lambda: m.pids().get("qmgr"), 10, "qmgr to start",
                        interval=0.001)[0]
    ProcRef.of(victim).signal(signal.SIGKILL)
    m.wait_log(r"mtad/master\[\d+\]: warning: qmgr \(pid %d\) killed by "
               r"signal 9" % victim, since=mark)
    assert not re.search(r"qmgr \(pid %d\) ready" % victim,
                         m.log()[mark:]), "qmgr was ready before the kill: " \
        "the test did not hit the first setup"
    m.wait_log(r"mtad/master\[\d+\]: restarting qmgr in 0\.5 s",
               since=mark)
    m.wait_ready(timeout=20)
    assert sink.wait_match(b"first setup kill").content
    assert not re.search(r"failed during its first setup", m.log()[mark:])
