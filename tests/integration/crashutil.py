"""
Helpers for the crash and fault tests (test_crash.py, test_diskfull.py,
test_spool_corrupt.py, test_supervise.py): a load of numbered messages
whose every copy can be checked, a sink that records them with the time
they arrived, a killer that logs what it killed and when, and the oracle
that compares what the clients were told with what arrived.

Every message is unique and self-checking:

    X-Seq: 17                   its number
    X-Body-SHA256: 9f86d0...    the SHA-256 of its body

so a copy that arrives truncated, merged with another or changed in any
octet is detected, and so is a copy nobody was told about.

Everything stays on 127.0.0.1; every wait has a deadline; processes are
signalled by pid (mtadtest.ProcRef), never by name.
"""

import asyncio
import hashlib
import os
import pwd
import random
import re
import signal
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, field

import mtadtest
from mtadtest import CLIENT_HELO, ProcRef, Received, Sink, _SinkHandler

SENDER = "load@a.test"
RECEIVED_RE = re.compile(rb"\AReceived:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*\Z")
SEQ_RE = re.compile(rb"^X-Seq: (\d+)\r$", re.M)
SUM_RE = re.compile(rb"^X-Body-SHA256: ([0-9a-f]{64})\r$", re.M)

# Outcomes of one message as its client saw it.
OK = "250"              # 250 to the final dot: must arrive
REFUSED = "refused"     # a 4xx/5xx reply to the final dot
UNKNOWN = "unknown"     # the connection died after the data was sent
UNSENT = "unsent"       # never got as far as sending the data


def rcpt_of(seq):
    return "rcpt-%d@b.test" % seq


def make_load_message(seq, rng, nlines=None):
    """A message with a random body and its checksum in a header."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
             "golf", "hotel", "india", "juliet", "kilo", "lima"]
    lines = []
    for _ in range(nlines or rng.randint(1, 12)):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(1, 14)))
        lines.append("%d %s" % (seq, line))
    body = ("\r\n".join(lines) + "\r\n").encode()
    head = [
        "From: Load <%s>" % SENDER,
        "To: <%s>" % rcpt_of(seq),
        "Subject: crash load %d" % seq,
        "Message-ID: <%d.%x@crash.test>" % (seq, rng.getrandbits(48)),
        "X-Seq: %d" % seq,
        "X-Body-SHA256: %s" % hashlib.sha256(body).hexdigest(),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def check_copy(content, expected):
    """
    Why a received copy is not exactly one whole expected message, or
    None when it is: one Received: header then the very bytes sent.
    """
    seqs = SEQ_RE.findall(content)
    if len(seqs) != 1:
        return "%d X-Seq headers (merged or mangled)" % len(seqs)
    sums = SUM_RE.findall(content)
    head, sep, body = content.partition(b"\r\n\r\n")
    if len(sums) != 1 or not sep:
        return "no checksum header or no body"
    if hashlib.sha256(body).hexdigest().encode() != sums[0]:
        return "body checksum mismatch (truncated or changed)"
    if not content.endswith(expected):
        return "content differs from what was sent"
    if not RECEIVED_RE.match(content[:-len(expected)]):
        return "unexpected prefix %r" % content[:-len(expected)][:200]
    return None


# --- the sink -----------------------------------------------------------------

class _SlowHandler(_SinkHandler):
    """Records the message, then waits a little before its 250."""

    async def handle_DATA(self, server, session, envelope):
        reply = self.sink._next_reply("data")
        if reply:
            return reply
        self.sink._record(Received(envelope.mail_from,
                                   list(envelope.rcpt_tos),
                                   bytes(envelope.original_content)))
        delay = self.sink.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return "250 2.0.0 Ok: stored"


class RecordingSink(Sink):
    """
    The smarthost of the load: records every message with its arrival
    time, and answers 250 only after a random delay of up to max_delay
    seconds, so that kills find deliveries in flight (the message stored
    by the sink, its 250 not yet read by mtad).
    """

    def __init__(self, seed, max_delay=0.02, **kw):
        super().__init__(**kw)
        self._rng = random.Random(seed)
        self.max_delay = max_delay

    def delay(self):
        with self._cond:
            return self._rng.uniform(0, self.max_delay)

    def start(self):
        from aiosmtpd.controller import Controller
        assert self.controller is None
        self.controller = Controller(_SlowHandler(self), hostname=self.host,
                                     port=self.port, ready_timeout=5.0)
        self.controller.start()
        return self

    def snapshot(self):
        with self._cond:
            return list(self.messages)


# --- the load -------------------------------------------------------------------

@dataclass
class Outcome:
    state: str = UNSENT
    code: int = 0
    text: str = ""
    queue_id: str = ""
    when: float = 0.0
    took: float = 0.0           # from its due time to its outcome


class Load:
    """
    nclients threads send messages 0..n-1 (client k: seq = k, k+nclients,
    ...), each at its scheduled time so that the load is spread over
    `seconds`.  A message is retried only while nothing of its data was
    sent (connection refused, 4xx to MAIL/RCPT/DATA); once the data went
    out it is never sent again, so each seq has one outcome.
    """

    def __init__(self, port, n, seed, nclients=8, seconds=10.0,
                 deadline=60.0):
        self.port = port
        self.n = n
        self.nclients = nclients
        self.seconds = seconds
        self.deadline = deadline
        rng = random.Random(seed)
        self.messages = [make_load_message(i, rng) for i in range(n)]
        self.outcomes = [Outcome() for _ in range(n)]
        self.errors = []
        self.threads = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()

    def start(self):
        self.t0 = time.monotonic()
        self.end = self.t0 + self.deadline
        for k in range(self.nclients):
            t = threading.Thread(target=self._client, args=(k,),
                                 name="load-%d" % k, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, "load clients still running: %r" % alive

    def done(self):
        return not any(t.is_alive() for t in self.threads)

    def _connect(self):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname=CLIENT_HELO,
                         timeout=10)
        code, _ = s.ehlo()
        if code != 250:
            s.close()
            raise smtplib.SMTPResponseException(code, "EHLO")
        return s

    def _send(self, s, seq):
        """One attempt: an outcome, or None when it may be retried."""
        data = self.messages[seq]
        code, text = s.mail(SENDER)
        if code != 250:
            return None
        code, text = s.rcpt(rcpt_of(seq))
        if code not in (250, 251):
            return None
        s.putcmd("data")
        code, text = s.getreply()
        if code != 354:
            return None
        # From here on the data is out: one outcome, whatever happens.
        try:
            s.send(data + b".\r\n")
            code, text = s.getreply()
        except (OSError, smtplib.SMTPServerDisconnected):
            return Outcome(UNKNOWN, 0, "connection lost after the data")
        text = text.decode(errors="replace")
        if code == 250:
            m = re.search(r"queued as ([A-Za-z0-9]+)", text)
            return Outcome(OK, code, text, m.group(1) if m else "")
        return Outcome(REFUSED, code, text)

    def _client(self, k):
        s = None
        seqs = list(range(k, self.n, self.nclients))
        per = self.seconds / max(1, len(seqs))
        try:
            for i, seq in enumerate(seqs):
                due = self.t0 + i * per
                while time.monotonic() < due and not self.stop_flag.is_set():
                    time.sleep(min(0.05, due - time.monotonic()))
                out = None
                while out is None and time.monotonic() < self.end and \
                        not self.stop_flag.is_set():
                    try:
                        if s is None:
                            s = self._connect()
                        out = self._send(s, seq)
                        if out is None:
                            s.rset()
                    except (OSError, smtplib.SMTPException):
                        out = None
                        if s is not None:
                            try:
                                s.close()
                            except OSError:
                                pass
                        s = None
                    if out is None:
                        time.sleep(0.05)
                    elif out.state == UNKNOWN:
                        try:
                            s.close()
                        except OSError:
                            pass
                        s = None
                if out is not None:
                    out.when = time.monotonic()
                    out.took = out.when - due
                    with self.lock:
                        self.outcomes[seq] = out
        except Exception as e:          # a bug in the harness: report it
            with self.lock:
                self.errors.append("client %d: %r" % (k, e))
        finally:
            if s is not None:
                try:
                    s.quit()
                except (OSError, smtplib.SMTPException):
                    pass

    def count(self, state):
        with self.lock:
            return sum(1 for o in self.outcomes if o.state == state)

    def seqs(self, state):
        with self.lock:
            return [i for i, o in enumerate(self.outcomes) if o.state == state]


# --- killing ----------------------------------------------------------------------

@dataclass
class Kill:
    when: float
    what: str
    pids: list = field(default_factory=list)


DELIVERY_PATH = ("qmgr", "smtp", "master", "all", "stop")


def oldest(mtad, name):
    """The pid of the longest-running child called name, or None."""
    pids = mtad.pids().get(name, [])
    refs = [r for r in (ProcRef.of(p) for p in pids) if r is not None]
    if not refs:
        return None
    return min(refs, key=lambda r: r.start).pid


def children_of(pid):
    return [r for r in (ProcRef.of(p) for p in mtadtest.proc_children(pid))
            if r is not None]


def wait_gone(refs, timeout, what):
    mtadtest.wait_until(lambda: not any(r.alive() for r in refs), timeout,
                        what + " (alive: %r)" % [r for r in refs if r.alive()])


def port_free(port):
    """Can the port be bound again (no listener left on it)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            return True
        except OSError:
            return False


class Killer:
    """SIGKILLs mtad's processes by pid and notes what and when."""

    def __init__(self, mtad, start_args):
        self.mtad = mtad
        self.start_args = start_args
        self.kills = []

    def kill_child(self, name):
        pid = oldest(self.mtad, name)
        if pid is None:
            return None
        ref = self.mtad.seen.get(pid) or ProcRef.of(pid)
        self.kills.append(Kill(time.monotonic(), name, [pid]))
        ref.signal(signal.SIGKILL)
        wait_gone([ref], 5, "%s[%d] to die" % (name, pid))
        return pid

    def kill_master(self, restart=True):
        """SIGKILL the master alone: its children must exit by themselves."""
        m = self.mtad
        kids = children_of(m.proc.pid)
        self.kills.append(Kill(time.monotonic(), "master", [m.proc.pid]))
        m.master.signal(signal.SIGKILL)
        m.proc.wait(timeout=5)
        wait_gone(kids, 10, "children of the killed master to exit")
        if restart:
            self.restart()
        return kids

    def kill_all(self, restart=True):
        self.kills.append(Kill(time.monotonic(), "all", []))
        refs = self.mtad.kill_all()
        self.kills[-1].pids = [r.pid for r in refs]
        if restart:
            self.restart()

    def stop(self):
        """A clean stop (SIGTERM), noted: deliveries may be in flight."""
        self.kills.append(Kill(time.monotonic(), "stop", []))
        return self.mtad.stop(timeout=20)

    def restart(self):
        mtadtest.wait_until(lambda: port_free(self.mtad.port), 10,
                            "port %d free again" % self.mtad.port)
        self.mtad.start(timeout=20, **self.start_args)

    def wait_child(self, name, old_pid, timeout=15):
        return self.mtad.wait_new_child(name, old_pid, timeout)

    def delivery_kills(self):
        return [k for k in self.kills if k.what in DELIVERY_PATH]


# --- more instances --------------------------------------------------------------

class Instances:
    """
    Extra mtad instances, each in its own subdirectory of the test's
    workdir (mtad_factory puts its instances in the workdir itself, so
    they share a spool and a pid file).  cleanup() stops them and returns
    their sanitizer reports.
    """

    def __init__(self, workdir, sink_port):
        self.workdir = workdir
        self.sink_port = sink_port
        self.made = []

    def make(self, name, run_as="nobody"):
        d = self.workdir / name
        d.mkdir(mode=0o755)
        if os.geteuid() == 0 and run_as:
            pw = pwd.getpwnam(run_as)
            uid, gid = mtadtest.nobody_ids() if run_as == "nobody" \
                else (pw.pw_uid, pw.pw_gid)
            os.chown(d, uid, gid)
        m = mtadtest.Mtad(d, sink_port=self.sink_port, run_as=run_as,
                          name=name)
        if os.geteuid() == 0 and run_as:
            os.chown(m.conf, uid, gid)
        self.made.append(m)
        return m

    def cleanup(self):
        reports = []
        for m in self.made:
            m.cleanup()
            reports += ["%s: %s" % (m.name, r)
                        for r in m.sanitizer_reports()]
        return reports


# --- the oracle ----------------------------------------------------------------------

@dataclass
class Verdict:
    arrived: dict               # seq -> [Received, ...]
    bad: list                   # (index, why) of copies not whole
    strangers: list             # copies of no known seq
    missing: list               # 250 but never arrived
    twice_unsure: list          # no 250, arrived more than once
    duplicates: dict            # seq -> number of copies, when > 1
    unexplained: list           # duplicates with no kill to explain them


def judge(load, received, kills, window=5.0):
    """Compare the clients' outcomes with what the sink got."""
    arrived, bad, strangers = {}, [], []
    for i, m in enumerate(received):
        seqs = SEQ_RE.findall(m.content)
        if len(seqs) != 1 or int(seqs[0]) >= load.n:
            strangers.append((i, m.content[:300]))
            continue
        seq = int(seqs[0])
        why = check_copy(m.content, load.messages[seq])
        if why is None and (m.mail_from != SENDER or
                            m.rcpt_tos != [rcpt_of(seq)]):
            why = "envelope %r -> %r" % (m.mail_from, m.rcpt_tos)
        if why is not None:
            bad.append((seq, why))
        arrived.setdefault(seq, []).append(m)
    missing = [s for s in load.seqs(OK) if s not in arrived]
    twice_unsure = [s for s, c in arrived.items()
                    if load.outcomes[s].state != OK and len(c) > 1]
    duplicates = {s: len(c) for s, c in arrived.items() if len(c) > 1}
    unexplained = []
    for s in duplicates:
        first = arrived[s][0].when
        if not any(first - 0.5 <= k.when <= first + window for k in kills):
            unexplained.append(s)
    return Verdict(arrived, bad, strangers, missing, twice_unsure,
                   duplicates, unexplained)
