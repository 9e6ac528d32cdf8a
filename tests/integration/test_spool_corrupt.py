"""
Corrupt spool files (issue 8; the recovery rules at the top of
qmgr/qmgr_spool.c): at start, whatever in queue/ cannot be used is moved
to spool/corrupt/ with a log line naming it and why; qmgr does not
crash-loop on it, and every good message is still delivered, once.

The spool is made by mtad itself (messages queued while the smarthost
is down), stopped cleanly, then damaged by the test in every way it can
be: garbage and truncated envelopes beside good data, an envelope
without data, an envelope naming another message, an envelope that is
a directory or has no recipients, data without an envelope, a stray
temporary file and a file of no known name.
"""

import json
import os
import re
import shutil
import time

from mtadtest import make_message, send_mail

SENDER = "sender@a.test"


def chown_like(path, ref):
    st = ref.stat()
    os.chown(path, st.st_uid, st.st_gid)


def test_corrupt_files_moved_aside(mtad_factory, sink):
    sink.stop()                 # everything stays queued
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    ids = {}
    data = {}
    for name in ("garbage", "truncated", "nodata", "otherid", "good",
                 "norcpt"):
        data[name] = make_message("corrupt test %s" % name)
        ids[name], _ = send_mail(m.port, SENDER, ["r-%s@b.test" % name],
                                 data[name])
    assert m.stop() == 0
    q = m.spool / "queue"
    for i in ids.values():
        assert (q / i).is_file() and (q / (i + ".env")).is_file()

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
    sink.start()
    m.start(**{"log-level": "info"})
    corrupt = m.spool / "corrupt"
    moved = r"mtad/qmgr\[\d+\]: warning: %s: %s: moved to %s/corrupt/"
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

    # No crash loop: one qmgr all along, and it still takes mail.
    qmgr = m.child("qmgr")
    after = make_message("corrupt test after")
    send_mail(m.port, SENDER, ["r@b.test"], after)
    assert sink.wait_match(b"corrupt test after").content.endswith(after)
    time.sleep(0.5)
    assert m.child("qmgr") == qmgr
    assert not re.search(r"restarting qmgr|qmgr .*(killed|exited)",
                         m.log()[mark:]), m.tail(40)
    for name in ("garbage", "truncated", "nodata", "otherid", "norcpt"):
        assert not sink.matching(b"Subject: corrupt test %s\r\n"
                                 % name.encode()), name
    assert len(sink.messages) == 2

    # A second start finds nothing more to move.
    mark = m.mark()
    assert m.stop() == 0
    m.start(**{"log-level": "info"})
    m.wait_log(r"spool %s: 0 messages in the queue" % sp, since=mark)
    assert "moved to" not in m.log()[mark:]
    assert sorted(p.name for p in corrupt.iterdir()) == want
    shutil.rmtree(corrupt)


def test_envelope_not_a_file_keeps_data(mtad_factory, sink):
    """An envelope that is not a regular file: both go to corrupt/."""
    sink.stop()
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    msgid, _ = send_mail(m.port, SENDER, ["r@b.test"],
                         make_message("envelope is a directory"))
    assert m.stop() == 0
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
