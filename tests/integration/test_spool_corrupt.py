"""
Corrupt spool files (issue 8; the recovery rules at the top of
qmgr/qmgr_spool.c and in common/spool_slot.h): at start, whatever cannot
be used is moved to spool/corrupt/ with a log line naming it and why;
qmgr does not crash-loop on it, and every good message is still
delivered, once.

test_corrupt_slots_moved_aside: the spool is made by mtad itself
(messages queued while the smarthost is down), stopped cleanly, then its
slot files are damaged in every way a disk or a person can: both header
copies garbled, every envelope's bytes changed (checksum mismatch), an
envelope with a right checksum that is not JSON, that names another
message or has no recipients, a symlink and a file of no known name.
The newest envelope alone changed is a torn update: the previous state
is used and the message delivered.

test_corrupt_legacy_moved_aside: the same for a spool of the older
format (queue/ID + queue/ID.env), which is imported at start: garbage
and truncated envelopes beside good data, an envelope without data, an
envelope naming another message or with no recipients, data without an
envelope, a stray temporary file and a file of no known name.
"""

import json
import os
import re
import shutil
import time

import mtadtest
import spoolutil
from mtadtest import make_message, send_mail
from queueutil import new_msgid, write_spool_message

SENDER = "sender@a.test"


def chown_like(path, ref):
    st = ref.stat()
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)


def no_crash_loop(m, sink, mark, n_delivered):
    """One qmgr all along, and it still takes mail."""
    qmgr = m.child("qmgr")
    after = make_message("corrupt test after")
    send_mail(m.port, SENDER, ["r@b.test"], after)
    assert sink.wait_match(b"corrupt test after").content.endswith(after)
    time.sleep(0.5)
    assert m.child("qmgr") == qmgr
    assert not re.search(r"restarting qmgr|qmgr .*(killed|exited)",
                         m.log()[mark:]), m.tail(40)
    assert len(sink.messages) == n_delivered + 1


def second_start_finds_nothing(m, corrupt, want):
    """A second start moves nothing more and finds nothing queued."""
    mark = m.mark()
    assert m.stop() == 0
    m.start(**{"log-level": "info"})
    m.wait_log(r"spool %s: 0 messages in the queue"
               % re.escape(str(m.spool)), since=mark)
    assert "moved to" not in m.log()[mark:]
    assert sorted(p.name for p in corrupt.iterdir()) == want
    shutil.rmtree(corrupt)


def test_corrupt_slots_moved_aside(mtad_factory, sink):
    sink.stop()                 # everything stays queued
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    ids, data = {}, {}
    names = ("headers", "envboth", "notjson", "otherid", "norcpt", "torn",
             "good")
    bad = names[:5]
    for name in names:
        data[name] = make_message("corrupt test %s" % name)
        ids[name], _ = send_mail(m.port, SENDER, ["r-%s@b.test" % name],
                                 data[name])
    assert m.stop() == 0
    sd = m.spool / "slots"
    slot = {s.id: s.path for s in spoolutil.slots(m.spool).values()
            if s.state == "msg"}
    assert sorted(slot) == sorted(ids.values())

    def path(name):
        return slot[ids[name]]

    spoolutil.corrupt_slot_header(path("headers"))
    # Every envelope after the data, and only the newest one.
    data_len = len(spoolutil.data(m.spool, ids["envboth"]))
    with open(path("envboth"), "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(spoolutil.DATA_OFF + data_len)
        f.write(b"X" * (end - f.tell()))
    assert spoolutil.envelope(m.spool, ids["torn"])["recipients"][0][
        "attempts"] >= 1, "no update to tear: the queue was not tried"
    with open(path("torn"), "r+b") as f:
        f.seek(-5, os.SEEK_END)         # inside the newest envelope
        f.write(b"XXXXX")
    spoolutil.rewrite_envelope(path("notjson"), b"\x00\xffnot json {{{")
    good = spoolutil.envelope(m.spool, ids["good"])
    spoolutil.rewrite_envelope(path("otherid"), json.dumps(good).encode())
    j = spoolutil.envelope(m.spool, ids["norcpt"])
    j["recipients"] = []
    spoolutil.rewrite_envelope(path("norcpt"), json.dumps(j).encode())
    (sd / "junk").write_bytes(b"what is this")
    os.symlink("/etc/passwd", sd / "999")
    for p in sd.iterdir():
        chown_like(p, sd)

    mark = m.mark()
    sink.start()
    m.start(**{"log-level": "info"})
    sp = re.escape(str(m.spool))

    def moved(name, why):
        m.wait_log(r"mtad/qmgr\[\d+\]: warning: slots/%s: %s: moved to "
                   r"%s/corrupt/slot-%s" % (name, why, sp, name), since=mark)

    moved(path("headers").name, "no valid header")
    moved(path("envboth").name, "its envelope does not match its checksum")
    moved(path("notjson").name, r"%s: corrupt envelope \(not a JSON object\)"
          % ids["notjson"])
    moved(path("otherid").name, r"%s: corrupt envelope \(its envelope names "
          r"another id\)" % ids["otherid"])
    moved(path("norcpt").name, r"%s: corrupt envelope \(\"recipients\" "
          r"missing[^)]*\)" % ids["norcpt"])
    moved("junk", "unexpected file")
    moved("999", "not a file")
    m.wait_log(r"spool %s: 2 messages in the queue" % sp, since=mark)

    for name in ("good", "torn"):
        got = sink.wait_match(b"Subject: corrupt test %s" % name.encode(),
                              timeout=15)
        assert got.content.endswith(data[name])
        m.wait_log(r"%s: removed" % ids[name], since=mark)
    want = sorted(["slot-" + path(n).name for n in bad] +
                  ["slot-999", "slot-junk"])
    corrupt = m.spool / "corrupt"
    assert sorted(p.name for p in corrupt.iterdir()) == want
    no_crash_loop(m, sink, mark, 2)
    for name in bad:
        assert not sink.matching(b"Subject: corrupt test %s\r\n"
                                 % name.encode()), name

    second_start_finds_nothing(m, corrupt, want)


def _owner(m):
    return mtadtest.nobody_ids() if m.run_as == "nobody" else None


def test_corrupt_legacy_moved_aside(mtad_factory, sink):
    m = mtad_factory()
    q = m.spool / "queue"
    own = _owner(m)
    ids, data = {}, {}
    names = ("garbage", "truncated", "nodata", "otherid", "good", "norcpt")
    for n, name in enumerate(names):
        data[name] = make_message("corrupt test %s" % name)
        ids[name] = new_msgid(n + 1)
        write_spool_message(m.spool, ids[name], SENDER,
                            ["r-%s@b.test" % name], data[name], {},
                            owner=own)

    def env(name):
        return q / (ids[name] + ".env")

    good_env = env("good").read_bytes()
    env("garbage").write_bytes(b"\x00\xffnot json at all {{{\n")
    t = env("truncated").read_bytes()
    env("truncated").write_bytes(t[:len(t) // 2])
    (q / ids["nodata"]).unlink()
    env("otherid").write_bytes(good_env)        # names "good"'s id
    j = json.loads(env("norcpt").read_text())
    j["recipients"] = []
    env("norcpt").write_text(json.dumps(j))
    orphan = "0123456789AB"
    (q / orphan).write_bytes(b"Subject: orphan data\r\n\r\nx\r\n")
    stray = ids["good"] + ".env.tmp"
    (q / stray).write_bytes(b"{\"half\":")
    (q / "junk").write_bytes(b"what is this")
    for p in q.iterdir():
        chown_like(p, q)

    mark = m.mark()
    m.start(**{"log-level": "info"})
    corrupt = m.spool / "corrupt"
    moved = r"mtad/qmgr\[\d+\]: warning: queue/%s: %s: moved to %s/corrupt/"
    sp = re.escape(str(m.spool))
    for name in ("garbage", "truncated", "otherid", "norcpt"):
        m.wait_log(moved % (re.escape(ids[name] + ".env"),
                            r"corrupt envelope \([^)]+\)", sp), since=mark)
        m.wait_log(moved % (ids[name], "its envelope is corrupt", sp),
                   since=mark)
    m.wait_log(moved % (re.escape(ids["nodata"] + ".env"),
                        "envelope without a data file", sp), since=mark)
    m.wait_log(moved % ("junk", "unexpected file", sp), since=mark)
    m.wait_log(r"%s: discarding a data file without an envelope" % orphan,
               since=mark)
    m.wait_log(r"%s: imported from %s/queue/" % (ids["good"], sp),
               since=mark)
    m.wait_log(r"spool %s: 1 message in the queue" % sp, since=mark)
    m.wait_log(r"%s\.env: corrupt envelope \(it names another id\)"
               % ids["otherid"], since=mark)
    m.wait_log(r"%s\.env: corrupt envelope \(\"recipients\" missing"
               % ids["norcpt"], since=mark)

    got = sink.wait_match(b"Subject: corrupt test good", timeout=15)
    assert got.content.endswith(data["good"])
    m.wait_log(r"%s: removed" % ids["good"], since=mark)

    want = sorted([ids[n] for n in ("garbage", "truncated", "otherid",
                                    "norcpt")] +
                  [ids[n] + ".env" for n in ("garbage", "truncated",
                                             "nodata", "otherid",
                                             "norcpt")] + ["junk"])
    assert sorted(p.name for p in corrupt.iterdir()) == want
    assert sorted(p.name for p in q.iterdir()) == []
    no_crash_loop(m, sink, mark, 1)
    for name in ("garbage", "truncated", "nodata", "otherid", "norcpt"):
        assert not sink.matching(b"Subject: corrupt test %s\r\n"
                                 % name.encode()), name

    second_start_finds_nothing(m, corrupt, want)


def test_legacy_envelope_not_a_file_keeps_data(mtad_factory, sink):
    """An envelope that is not a regular file: both go to corrupt/."""
    m = mtad_factory()
    msgid = new_msgid(1)
    write_spool_message(m.spool, msgid, SENDER, ["r@b.test"],
                        make_message("envelope is a directory"), {},
                        owner=_owner(m))
    q = m.spool / "queue"
    (q / (msgid + ".env")).unlink()
    (q / (msgid + ".env")).mkdir()
    chown_like(q / (msgid + ".env"), q)
    mark = m.mark()
    m.start(**{"log-level": "info"})
    m.wait_log(r"spool %s: 0 messages in the queue"
               % re.escape(str(m.spool)), since=mark)
    assert not re.search(r"%s: discarding" % msgid, m.log()[mark:])
    assert sorted(p.name for p in (m.spool / "corrupt").iterdir()) == \
        sorted([msgid, msgid + ".env"]), "the data file was not kept"


def test_legacy_spool_imported(mtad_factory, sink):
    """Messages of the older format are delivered once, from slots."""
    m = mtad_factory()
    sent = {}
    for n in range(5):
        msgid = new_msgid(10 + n)
        sent[msgid] = make_message("legacy %d" % n)
        write_spool_message(m.spool, msgid, SENDER, ["r%d@b.test" % n],
                            sent[msgid], {}, owner=_owner(m))
    m.start(**{"log-level": "info"})
    for msgid, data in sent.items():
        m.wait_log(r"%s: imported from" % msgid)
        m.wait_log(r"%s: removed" % msgid)
    for n, data in enumerate(sent.values()):
        got = sink.wait_match(b"legacy %d" % n)
        assert got.content.endswith(data)
    assert len(sink.messages) == 5
    assert not list((m.spool / "queue").iterdir())
    assert not spoolutil.messages(m.spool)
