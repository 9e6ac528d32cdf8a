"""
Storage faults (issue 8; DESIGN.md section 3, "Commit"): a failed write
or fsync never yields 250, nothing half-written is queued or delivered,
and service resumes by itself once the fault is gone.

test_disk_full: a full disk.
The spool is a 2 MiB tmpfs mounted by the test (we run as root) and
filled by a filler file to an exact number of free pages.  A first
message is delivered, so its slot file (a header page and a data page)
is free for reuse.  Then:

  - no page free, a message bigger than that slot: refused at the final
    dot with 4xx (smtpd's write fails);
  - a few pages free, a message bigger than that: refused with 4xx (the
    write fails half way);
  - a fresh mtad on a spool with no slot, one page free, a small
    message: its data fits in that page, the slot's header does not: the
    commit fails and the reply is 4xx;
  - no page free, a small message that fits the free slot: accepted and
    delivered, since the spool writes it over space it already has;

each time no slot holds a refused message.  Then the filler goes and
the next message gets 250 and is delivered; none of the refused ones
ever is.  mtad does not check free space before the data (no 452 at
MAIL): the MAIL reply is recorded and printed, and what the test
requires is that the transaction ends in 4xx, never 250.

test_commit_syscall_fails: strace injects EIO into each system call of
qmgr's commit in turn (the write of the envelope, the first fdatasync,
the write of the header, the second fdatasync): each time the client
gets 4xx, no slot holds the message, and it never arrives; with strace
gone the next message is taken and delivered.
"""

import os
import signal
import smtplib
import subprocess
import time

import pytest

import spoolutil
from mtadtest import (CLIENT_HELO, make_message, nobody_ids, proc_status,
                      send_mail, wait_until)

PAGE = 4096


@pytest.fixture
def tmpfs_spool(workdir):
    """workdir/spool as a 2 MiB tmpfs; unmounted at teardown."""
    spool = workdir / "spool"
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755",
                        "mtad-test-tmpfs", str(spool)],
                       capture_output=True, text=True)
    assert r.returncode == 0, "mount tmpfs (needs root): %s" % r.stderr
    try:
        if os.geteuid() == 0:
            os.chown(spool, *nobody_ids())
        yield spool
    finally:
        r = subprocess.run(["umount", str(spool)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(spool)], check=False)


def free_pages(spool):
    st = os.statvfs(spool)
    return st.f_bavail * st.f_frsize // PAGE


def fill(spool, leave):
    """Grow spool/filler until exactly `leave` pages are free."""
    with open(spool / "filler", "ab") as f:
        f.write(b"\0" * ((free_pages(spool) - leave) * PAGE))
    assert free_pages(spool) == leave, free_pages(spool)


def queued(spool):
    """The ids of the messages the spool holds."""
    return sorted(spoolutil.messages(spool))


def attempt(port, data):
    """One transaction: (MAIL reply code, final reply code, text)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=CLIENT_HELO,
                      timeout=10) as s:
        s.ehlo()
        mail = s.mail("s@a.test")[0]
        if mail != 250:
            return mail, mail, "refused at MAIL"
        code, text = s.rcpt("r@b.test")
        if code != 250:
            return mail, code, text
        try:
            code, text = s.data(data)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return mail, code, text.decode(errors="replace")


def test_disk_full(tmpfs_spool, mtad_factory, sink):
    spool = tmpfs_spool
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    qmgr = m.child("qmgr")
    before = make_message("disk full: before")
    msgid, _ = send_mail(m.port, "s@a.test", ["r@b.test"], before)
    sink.wait_match(b"disk full: before")
    m.wait_log(r"%s: removed" % msgid)     # its pages are free again

    big = make_message("disk full: big", body_lines=["y" * 70] * 3000)
    medium = make_message("disk full: medium", body_lines=["y" * 70] * 200)
    cases = [(0, medium, "no page free, 14 KB"),
             (8, big, "8 pages free, 200 KB")]
    for leave, data, what in cases:
        fill(spool, leave)
        mail, code, text = attempt(m.port, data)
        print("%s: MAIL %s, end %s %s" % (what, mail, code, text))
        assert 400 <= code < 500, "%s: %s %s" % (what, code, text)
        assert queued(spool) == [], what
        os.unlink(spool / "filler")
    m.wait_log(r"mtad/smtpd\[\d+\]: .*spool write", timeout=5)

    # No page free, but the message fits a free slot: taken.
    fill(spool, 0)
    fits = make_message("disk full: fits the free slot")
    msgid, _ = send_mail(m.port, "s@a.test", ["r@b.test"], fits)
    assert sink.wait_match(b"fits the free slot").content.endswith(fits)
    m.wait_log(r"%s: removed" % msgid)
    os.unlink(spool / "filler")

    # A spool with no slot: the data fits one free page, the header not.
    m.stop()
    for p in (spool / "slots").iterdir():
        p.unlink()
    m.start(**{"log-level": "info"})
    qmgr = m.child("qmgr")
    fill(spool, 1)
    small = make_message("disk full: small")
    mail, code, text = attempt(m.port, small)
    print("one page free: MAIL %s, end %s %s" % (mail, code, text))
    assert 400 <= code < 500, "one page free: %s %s" % (code, text)
    assert queued(spool) == []
    m.wait_log(r"mtad/qmgr\[\d+\]: .*commit failed: No space left",
               timeout=5)
    os.unlink(spool / "filler")

    # Space is back: the next message is taken and delivered.
    after = make_message("disk full: after")
    msgid, _ = send_mail(m.port, "s@a.test", ["r@b.test"], after)
    assert sink.wait_match(b"disk full: after").content.endswith(after)
    m.wait_log(r"%s: removed" % msgid)
    assert not sink.matching(b"disk full: big")
    assert not sink.matching(b"disk full: medium")
    assert not sink.matching(b"disk full: small")
    assert len(sink.messages) == 3
    assert m.child("qmgr") == qmgr, "qmgr restarted"


class Inject:
    """strace -f -p PID (every thread: the commit runs on qmgr's sync
    threads) failing the nth call of syscall with EIO."""

    def __init__(self, pid, syscall, nth, out):
        self.pid = pid
        self.proc = subprocess.Popen(
            ["strace", "-qq", "-f", "-p", str(pid), "-e", "trace=" + syscall,
             "-e", "inject=%s:error=EIO:when=%d" % (syscall, nth),
             "-o", str(out)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: self.tracer() == self.proc.pid, 5,
                   "strace to attach to %d" % pid)

    def tracer(self):
        return int(proc_status(self.pid)["TracerPid"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        wait_until(lambda: self.tracer() == 0, 5, "strace to detach")


MARK = {"the envelope": '"{\\"id\\"', "the header": '"MTADSLT1'}


@pytest.mark.parametrize("syscall,nth,what", [
    ("pwrite64", 1, "the envelope"), ("fdatasync", 1, "data and envelope"),
    ("pwrite64", 2, "the header"), ("fdatasync", 2, "the header")])
def test_commit_syscall_fails(mtad_factory, sink, workdir, syscall, nth,
                              what):
    m = mtad_factory()
    m.start(**{"log-level": "info"})
    qmgr = m.child("qmgr")
    data = make_message("commit fault: %s %s" % (syscall, what))
    inj = Inject(qmgr, syscall, nth, workdir / "strace.out")
    try:
        mail, code, text = attempt(m.port, data)
    finally:
        inj.stop()
    print("%s of %s fails: %s %s" % (syscall, what, code, text))
    trace = (workdir / "strace.out").read_text()
    # strace counts calls per thread: the commit's call fails first, and
    # the release of its slot on another thread may fail too (the slot is
    # then deleted, not reused).
    hit = [line for line in trace.splitlines() if "(INJECTED)" in line]
    assert hit, trace
    if syscall == "pwrite64":
        assert MARK[what] in hit[0], trace
    assert 400 <= code < 500, (code, text)
    m.wait_log(r"mtad/qmgr\[\d+\]: .*commit failed: Input/output error")
    assert queued(m.spool) == []

    after = make_message("commit fault: after")
    msgid, _ = send_mail(m.port, "s@a.test", ["r@b.test"], after)
    assert sink.wait_match(b"commit fault: after").content.endswith(after)
    m.wait_log(r"%s: removed" % msgid)
    time.sleep(0.3)
    assert not sink.matching(b"commit fault: %s" % syscall.encode())
    assert m.child("qmgr") == qmgr
