"""
Crash consistency (issue 8; RFC 5321 section 6.1, DESIGN.md section 3,
"Crash rule"): once mtad answers 250 the message is not lost, whatever
is killed and when.

test_crash_consistency sends 2,000 self-checking messages (crashutil.py)
over 8 clients while SIGKILL hits every kind of process at random
moments: smtpd, qmgr, each smtp worker, the resolver, the master alone
(its children must go by themselves) and everything at once; then a
clean restart on the same spool.  It proves:

  - every message that got 250 arrives at least once;
  - a message that did not get 250 arrives at most once;
  - no copy is truncated, merged or changed (checksums, exact bytes);
  - duplicates happen only for deliveries in flight: each one is printed
    with the kill that explains it (the copy arrived, then a process on
    the delivery path died before the result was saved);
  - no message is left in the spool, and nothing is moved to corrupt/.

test_half_written_never_delivered leaves messages half written in slot
files (never committed), kills everything, restarts, and checks that the
slots are taken as free at start and the halves never delivered, while a
committed message is.

The random moments come from a seeded RNG: the seed is printed, and
MTAD_CRASH_SEED=N replays a run (MTAD_CRASH_LOG=FILE keeps mtad's log).
"""

import os
import random
import re
import smtplib
import time

import crashutil
import spoolutil
from crashutil import (OK, REFUSED, UNKNOWN, UNSENT, Killer, Load,
                       RecordingSink, judge, make_load_message, rcpt_of)
from mtadtest import CLIENT_HELO, send_mail, wait_until

NMSG = 2000
LOAD_SECONDS = 12.0


def seed_of():
    env = os.environ.get("MTAD_CRASH_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


def spool_files(spool, sub):
    d = spool / sub
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def half_written(spool):
    """Slots that hold data but were never committed."""
    return sorted(n for n, s in spoolutil.slots(spool).items()
                  if s.state == "free" and
                  s.path.stat().st_size > spoolutil.DATA_OFF)


def test_crash_consistency(mtad_factory, dnsmasq):
    seed = seed_of()
    print("\nMTAD_CRASH_SEED=%d" % seed)
    rng = random.Random(seed)
    sink = RecordingSink(seed).start()
    try:
        run_crash(mtad_factory, dnsmasq, sink, rng, seed)
    finally:
        sink.stop()


def run_crash(mtad_factory, dnsmasq, sink, rng, seed):
    # The smarthost by name: every delivery asks the resolver (dnsmasq
    # answers with TTL 0), so killing the resolver matters too.
    args = {"smtp-workers": 2, "retries": 1, "log-level": "info",
            "smarthost": "relay.test"}
    m = mtad_factory(sink_port=sink.port,
                     dns="127.0.0.1:%d" % dnsmasq.port)
    m.start(**args)
    killer = Killer(m, args)
    load = Load(m.port, NMSG, seed, nclients=8, seconds=LOAD_SECONDS,
                deadline=LOAD_SECONDS + 25).start()

    # Every kind of victim once (smtp twice: each worker), in a random
    # order, at random moments of the load; then a few more at random.
    kinds = ["smtpd", "qmgr", "smtp", "smtp", "resolver", "master", "all"]
    rng.shuffle(kinds)
    kinds += [rng.choice(["smtpd", "qmgr", "smtp", "resolver"])
              for _ in range(2)]
    gap = (LOAD_SECONDS - 1.0) / len(kinds)
    for kind in kinds:
        time.sleep(rng.uniform(0.2, gap))
        if kind == "master":
            killer.kill_master()
        elif kind == "all":
            killer.kill_all()
        else:
            old = killer.kill_child(kind)
            if old is not None:
                killer.wait_child(kind, old)
    load.join(LOAD_SECONDS + 40)
    assert not load.errors, load.errors
    slow = sorted(((o.took, i) for i, o in enumerate(load.outcomes)),
                  reverse=True)[:5]
    print("load done at %.1fs; slowest: %s" % (
        time.monotonic() - load.t0, ", ".join(
            "seq %d %.1fs (%s, at %.1fs)" % (i, t, load.outcomes[i].state,
                                             load.outcomes[i].when - load.t0)
            for t, i in slow)))

    # A clean restart on the same spool, then everything must drain.
    killer.stop()
    killer.restart()
    oks = load.seqs(OK)
    want = set(oks)

    def all_ok_arrived():
        got = {int(s) for msg in sink.snapshot()
               for s in crashutil.SEQ_RE.findall(msg.content)}
        return want <= got
    try:
        wait_until(all_ok_arrived, 40, "every accepted message delivered")
        wait_until(lambda: not spoolutil.messages(m.spool), 20,
                   "the queue to drain")
    except AssertionError:
        pass                    # the verdict below says what is missing
    time.sleep(0.5)             # late duplicates, if any, land now

    if os.environ.get("MTAD_CRASH_LOG"):
        with open(os.environ["MTAD_CRASH_LOG"], "w") as f:
            f.write(m.log())
    v = judge(load, sink.snapshot(), killer.delivery_kills())
    print("seed %d: %d sent: %d got 250, %d refused, %d unknown, %d unsent;"
          " %d copies received" % (seed, NMSG, len(oks), load.count(REFUSED),
                                   load.count(UNKNOWN), load.count(UNSENT),
                                   len(sink.snapshot())))
    print("kills: " + ", ".join("%s@%.1fs" % (k.what, k.when - load.t0)
                                for k in killer.kills))
    refused_arrived = [s for s in load.seqs(REFUSED) if s in v.arrived]
    unknown_arrived = [s for s in load.seqs(UNKNOWN) if s in v.arrived]
    print("not 250 but delivered (committed, reply lost): %d refused, "
          "%d unknown" % (len(refused_arrived), len(unknown_arrived)))
    print("duplicates: %d, by the first kill after the first copy:"
          % len(v.duplicates))
    by_kill = {}
    for s, n in sorted(v.duplicates.items()):
        first = v.arrived[s][0].when
        near = [k for k in killer.delivery_kills()
                if first - 0.5 <= k.when <= first + 5]
        key = "%s@%.1fs" % (near[0].what, near[0].when - load.t0) \
            if near else "NONE"
        by_kill.setdefault(key, []).append("%d%s(%d)" % (
            s, "" if load.outcomes[s].state == OK else "*", n))
    for key, seqs in by_kill.items():
        print("  %s: %s" % (key, " ".join(seqs)))
    print("  (* = the client did not get 250; (n) = copies)")

    assert load.count(OK) > NMSG // 2, "too few messages accepted to " \
        "mean anything: %d" % load.count(OK)
    assert not v.bad, "copies not whole: %r" % v.bad[:20]
    assert not v.strangers, "copies of no message sent: %r" % v.strangers[:5]
    assert not v.missing, "accepted with 250 but never delivered: %r " \
        "(queue ids %r)" % (v.missing[:20], [load.outcomes[s].queue_id
                                             for s in v.missing[:20]])
    assert not v.unexplained, "duplicates with no delivery in flight " \
        "to explain them: %r (not 250: %r)" % (v.unexplained,
                                              v.twice_unsure)
    assert not spoolutil.messages(m.spool), spoolutil.messages(m.spool)
    assert not spool_files(m.spool, "corrupt"), \
        "a crash left a file that recovery found corrupt: %r" \
        % spool_files(m.spool, "corrupt")


def test_half_written_never_delivered(mtad_factory, sink):
    """Files of messages being received are dropped at start, never sent."""
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    rng = random.Random(7)
    # Over smtpd's 64 KiB write buffer: half of it reaches the file.
    halves = [make_load_message(90000 + i, rng, nlines=3000)
              for i in range(3)]
    whole = make_load_message(90100, rng)
    msgid, _ = send_mail(m.port, crashutil.SENDER, [rcpt_of(90100)], whole)
    sink.wait_for(1)
    sink.stop()                 # what is committed now stays queued

    late = make_load_message(90200, rng)
    late_id, _ = send_mail(m.port, crashutil.SENDER, [rcpt_of(90200)], late)
    conns = []
    for i, data in enumerate(halves):
        s = smtplib.SMTP("127.0.0.1", m.port, local_hostname=CLIENT_HELO,
                         timeout=10)
        s.ehlo()
        assert s.mail(crashutil.SENDER)[0] == 250
        assert s.rcpt(rcpt_of(90000 + i))[0] == 250
        s.putcmd("data")
        assert s.getreply()[0] == 354
        s.send(data[:len(data) // 2])
        conns.append(s)
    wait_until(lambda: len(half_written(m.spool)) == 3, 10,
               "smtpd to write the halves into three slots")

    mark = m.mark()
    m.kill_all()
    for s in conns:
        s.close()
    halves_at = half_written(m.spool)
    assert len(halves_at) == 3
    assert list(spoolutil.messages(m.spool)) == [late_id]
    sink.start()
    m.start(**{"log-level": "info"})
    # The three halves, and the empty slots made with them, are free.
    m.wait_log(r"mtad/qmgr\[\d+\]: spool .*: 1 message in the queue, "
               r"([3-9]|[1-9]\d+) free slots to delete", since=mark)
    got = sink.wait_match(b"X-Seq: 90200", timeout=15)
    assert crashutil.check_copy(got.content, late) is None
    m.wait_log(r"%s: removed" % late_id)
    assert not spoolutil.messages(m.spool)
    wait_until(lambda: not set(halves_at) & set(half_written(m.spool)), 5,
               "the slots found free at start to be deleted")
    time.sleep(1.5)             # a retry would have come by now
    for i in range(3):
        assert not sink.matching(b"X-Seq: %d" % (90000 + i)), \
            "a half-written message was delivered"
    assert len(sink.matching(b"X-Seq: 90200")) == 1
    assert not re.search(r"corrupt", m.log()[mark:]), m.tail(30)
