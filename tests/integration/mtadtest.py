"""
Helpers for mtad's integration tests: real peers, loopback only.

- free_port(): a free TCP (and optionally UDP) port on 127.0.0.1.
- Sink: an aiosmtpd smarthost that records every message and can be told
  to answer 4xx/5xx to the next N RCPT or DATA commands, or always.
- Dnsmasq: dnsmasq on 127.0.0.1:PORT serving fixed *.test records, with
  its query log captured.
- Mtad: one mtad instance (master + children) on a private spool, started
  in the foreground with its stderr captured to a file; kill and restart
  helpers; the whole process tree is cleaned up by pid.

Nothing here talks to anything but 127.0.0.1/::1.  Every wait has a
deadline.  Processes are tracked as (pid, start time) so that a recycled
pid is never signalled.
"""

import atexit
import collections
import os
import pwd
import grp
import random
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MTAD_BUILD") or (REPO / "build")).resolve()
MTAD = BUILD / "sbin" / "mtad"
CHILD_NAMES = ("smtpd", "qmgr", "smtp", "resolver")
CHILD_BINS = [BUILD / "libexec" / "mtad" / n for n in CHILD_NAMES]

# A DNS server nobody listens on: mtad must never fall back to resolv.conf.
DEAD_DNS = "127.0.0.1:9"

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    # LSan/ASan failing to run (e.g. no /proc in a chroot) hides leaks.
    "Sanitizer has encountered a fatal error",
    "Sanitizer:DEADLYSIGNAL",
)

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

CLIENT_HELO = "client.test"     # never let smtplib call getfqdn()


# --- small utilities -------------------------------------------------------

def free_port(udp=False, host="127.0.0.1"):
    """A port free for TCP (and UDP when udp=True) on host."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not udp:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def wait_until(pred, timeout, what="condition", interval=0.05):
    """Poll pred() until it returns a true value; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def default_user():
    """The --user value: nobody as root, else the current user."""
    if os.geteuid() == 0:
        return "nobody"
    return pwd.getpwuid(os.geteuid()).pw_name


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    try:
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        gid = pw.pw_gid
    return pw.pw_uid, gid


def tail(text, n=100):
    return "\n".join(text.splitlines()[-n:])


def sanitizer_lines(text):
    return [l for l in text.splitlines()
            if any(p in l for p in SANITIZER_PATTERNS)]


def sanitizer_blocks(text, most=3, lines=60):
    """The first lines of each sanitizer report in text (the stack that
    explains it), at most `most` reports."""
    out, rows = [], text.splitlines()
    for i, l in enumerate(rows):
        if any(p in l for p in SANITIZER_PATTERNS):
            out.append("\n".join(rows[i:i + lines]))
            if len(out) == most:
                break
    return out


# --- /proc -------------------------------------------------------------------

def proc_stat(pid):
    """(comm, state, ppid, starttime) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    lp, rp = s.index("("), s.rindex(")")
    comm = s[lp + 1:rp]
    rest = s[rp + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[19])


def proc_children(pid):
    """Direct children of pid, over all its threads."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            pass
    return out


def proc_status(pid):
    """/proc/N/status as a dict of strings."""
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return d


def proc_ids(pid):
    """(uids[4], gids[4], groups) of pid."""
    st = proc_status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    groups = [int(x) for x in st.get("Groups", "").split()]
    return uids, gids, groups


@dataclass(frozen=True)
class ProcRef:
    """A process by pid and start time: never signals a recycled pid."""
    pid: int
    start: int
    comm: str

    @classmethod
    def of(cls, pid):
        st = proc_stat(pid)
        if st is None:
            return None
        return cls(pid, st[3], st[0])

    def alive(self):
        st = proc_stat(self.pid)
        return st is not None and st[3] == self.start and st[1] != "Z"

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


_all_procs = set()      # every ProcRef started or seen, for the atexit net


def _atexit_kill():
    for r in list(_all_procs):
        r.signal(signal.SIGKILL)


atexit.register(_atexit_kill)


def kill_refs(refs, term_timeout=5.0, sig=signal.SIGTERM):
    """Send sig to refs; SIGKILL whatever is left after term_timeout."""
    refs = [r for r in refs if r is not None]
    for r in refs:
        r.signal(sig)
    deadline = time.monotonic() + term_timeout
    while time.monotonic() < deadline and any(r.alive() for r in refs):
        time.sleep(0.02)
    left = [r for r in refs if r.alive()]
    for r in left:
        r.signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(r.alive() for r in left):
        time.sleep(0.02)
    return left


# --- SMTP client ---------------------------------------------------------------

QUEUED_RE = re.compile(rb"queued as ([A-Za-z0-9]+)")


class SendError(Exception):
    def __init__(self, stage, code, text):
        super().__init__("%s: %s %s" % (stage, code, text))
        self.stage, self.code, self.text = stage, code, text


def send_mail(port, sender, rcpts, data, host="127.0.0.1", timeout=10):
    """
    Send one message with smtplib; return (queue id, 250 text).  data is
    bytes with CRLF line ends; smtplib dot-stuffs it.  Raises SendError on
    any non-2xx answer.
    """
    with smtplib.SMTP(host, port, local_hostname=CLIENT_HELO,
                      timeout=timeout) as s:
        code, text = s.ehlo()
        if code != 250:
            raise SendError("EHLO", code, text)
        code, text = s.mail(sender)
        if code != 250:
            raise SendError("MAIL", code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            if code not in (250, 251):
                raise SendError("RCPT", code, text)
        try:
            code, text = s.data(data)
        except smtplib.SMTPDataError as e:
            raise SendError("DATA", e.smtp_code, e.smtp_error)
        if code != 250:
            raise SendError("DATA", code, text)
        m = QUEUED_RE.search(text)
        if not m:
            raise SendError("DATA", code, text + b" (no 'queued as ID')")
        try:
            s.quit()
        except smtplib.SMTPException:
            pass
        return m.group(1).decode(), text.decode(errors="replace")


def send_mail_retry(port, sender, rcpts, data, timeout=10, **kw):
    """send_mail, retrying 4xx and connection errors until timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return send_mail(port, sender, rcpts, data, **kw)
        except SendError as e:
            if not (400 <= int(e.code) < 500):
                raise
            last = e
        except (OSError, smtplib.SMTPServerDisconnected,
                smtplib.SMTPConnectError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("could not send within %.0fs: %r" % (timeout, last))


def make_message(subject, sender="sender@a.test", rcpt="rcpt@b.test",
                 body_lines=("Hello.",)):
    """A small RFC 5322 message as bytes with CRLF line ends."""
    tag = "%x.%x" % (int(time.time() * 1000), random.getrandbits(32))
    head = [
        "From: Sender <%s>" % sender,
        "To: Rcpt <%s>" % rcpt,
        "Subject: %s" % subject,
        "Date: Sat, 22 Nov 2025 00:00:00 +0000",
        "Message-ID: <%s@client.test>" % tag,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    lines = head + [""] + list(body_lines)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def smtp_greeting(port, host="127.0.0.1", timeout=2.0):
    """The first line the server sends, or None if it cannot be had."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            buf = b""
            while b"\n" not in buf and len(buf) < 4096:
                chunk = s.recv(1024)
                if not chunk:
                    break
                buf += chunk
            if buf.startswith(b"220"):
                try:
                    s.sendall(b"QUIT\r\n")
                    s.recv(1024)
                except OSError:
                    pass
            return buf.split(b"\n")[0].decode(errors="replace")
    except OSError:
        return None


# --- the smarthost --------------------------------------------------------------

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    content: bytes
    when: float = field(default_factory=time.monotonic)


class _SinkHandler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.sink._next_reply("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        reply = self.sink._next_reply("data")
        if reply:
            return reply
        self.sink._record(Received(envelope.mail_from,
                                   list(envelope.rcpt_tos),
                                   bytes(envelope.original_content)))
        return "250 2.0.0 Ok: stored"


class Sink:
    """
    A real SMTP server (aiosmtpd) on 127.0.0.1 standing in for the
    smarthost.  Behaviour per command ("rcpt" or "data"): a plan of replies
    used for the next commands, then a default (None = accept).
    """

    def __init__(self, port=None, host="127.0.0.1"):
        self.host = host
        self.port = port or free_port()
        self.messages = []
        self.attempts = {"rcpt": 0, "data": 0}
        self._plan = {"rcpt": collections.deque(),
                      "data": collections.deque()}
        self._default = {"rcpt": None, "data": None}
        self._cond = threading.Condition()
        self.controller = None

    # lifecycle
    def start(self):
        from aiosmtpd.controller import Controller
        assert self.controller is None
        self.controller = Controller(_SinkHandler(self), hostname=self.host,
                                     port=self.port, ready_timeout=5.0)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            c, self.controller = self.controller, None
            c.stop()

    @property
    def running(self):
        return self.controller is not None

    # behaviour
    def fail(self, cmd, n, reply="451 4.3.0 try later"):
        """Answer reply to the next n commands cmd ("rcpt"/"data")."""
        with self._cond:
            self._plan[cmd].extend([reply] * n)

    def always(self, cmd, reply):
        """Answer reply to every cmd from now on (None: accept)."""
        with self._cond:
            self._plan[cmd].clear()
            self._default[cmd] = reply

    def accept(self):
        with self._cond:
            for k in self._plan:
                self._plan[k].clear()
                self._default[k] = None

    def _next_reply(self, cmd):
        with self._cond:
            self.attempts[cmd] += 1
            self._cond.notify_all()
            if self._plan[cmd]:
                return self._plan[cmd].popleft()
            return self._default[cmd]

    def _record(self, msg):
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    # observation
    def _wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "sink: timed out after %.1fs waiting for %s "
                        "(messages=%d, attempts=%r)"
                        % (timeout, what, len(self.messages), self.attempts))
                self._cond.wait(left)

    def wait_for(self, count, timeout=15):
        """Wait until count messages arrived; return a copy of the list."""
        return self._wait(lambda: list(self.messages)
                          if len(self.messages) >= count else None,
                          timeout, "%d message(s)" % count)

    def wait_attempts(self, cmd, count, timeout=15):
        return self._wait(lambda: self.attempts[cmd] >= count, timeout,
                          "%d %s attempt(s)" % (count, cmd))

    def matching(self, needle):
        with self._cond:
            return [m for m in self.messages if needle in m.content]

    def wait_match(self, needle, timeout=15):
        """Wait for a message whose content contains needle; return it."""
        found = self._wait(lambda: [m for m in self.messages
                                    if needle in m.content],
                           timeout, "a message containing %r" % needle)
        return found[0]


# --- DNS ---------------------------------------------------------------------------

def _dns_name(pkt, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = pkt[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | pkt[off + 1]
            jumped = True
            continue
        off += 1
        if n == 0:
            break
        labels.append(pkt[off:off + n].decode())
        off += n
    return ".".join(labels), (end if jumped else off)


def dns_query(name, qtype=1, port=53, host="127.0.0.1", timeout=1.0):
    """
    One UDP query to host:port.  Returns (rcode, answers) where answers is
    a list of (type, value): an address string for A/AAAA, (pref, host)
    for MX.  Raises socket.timeout when nothing answers.
    """
    qid = random.getrandbits(16)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (host, port))
        while True:
            pkt, _ = s.recvfrom(4096)
            if len(pkt) >= 12 and struct.unpack(">H", pkt[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", pkt[:12])
    off = 12
    for _ in range(qd):
        _, off = _dns_name(pkt, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = _dns_name(pkt, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", pkt[off:off + 10])
        off += 10
        rd = pkt[off:off + rdlen]
        if rtype == 1:
            answers.append((1, socket.inet_ntop(socket.AF_INET, rd)))
        elif rtype == 28:
            answers.append((28, socket.inet_ntop(socket.AF_INET6, rd)))
        elif rtype == 15:
            pref = struct.unpack(">H", rd[:2])[0]
            answers.append((15, (pref, _dns_name(pkt, off + 2)[0])))
        else:
            answers.append((rtype, rd))
        off += rdlen
    return flags & 0xF, answers


def dnsmasq_binary():
    return shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)


class Dnsmasq:
    """
    dnsmasq on 127.0.0.1:port answering only for *.test: addresses maps a
    name (and its subdomains) to an IP, mx is a list of (domain, host,
    preference).  Everything else under .test is NXDOMAIN; nothing is
    forwarded anywhere (--no-resolv, no --server).  extra: more dnsmasq
    options, e.g. "--host-record=name,ip" (A only, NODATA for other
    types) or "--dns-rr=name,15,000000" (a null MX).
    """

    def __init__(self, workdir, addresses=None, mx=(), extra=()):
        self.workdir = Path(workdir)
        self.port = free_port(udp=True)
        self.addresses = dict(addresses or {"relay.test": "127.0.0.1"})
        self.mx = list(mx)
        self.extra = list(extra)
        self.logpath = self.workdir / "dnsmasq.log"
        self.proc = None
        self.ref = None

    def start(self, timeout=5.0):
        binary = dnsmasq_binary()
        assert binary, "dnsmasq not installed (apt-get install dnsmasq-base)"
        cmd = [binary, "--no-daemon", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--port=%d" % self.port,
               "--listen-address=127.0.0.1", "--bind-interfaces",
               "--local=/test/", "--log-queries", "--log-facility=-"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        for name, ip in self.addresses.items():
            cmd.append("--address=/%s/%s" % (name, ip))
        for dom, host, pref in self.mx:
            cmd.append("--mx-host=%s,%s,%d" % (dom, host, pref))
        cmd += self.extra
        self.cmd = cmd
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         cwd=self.workdir)
        self.ref = ProcRef.of(self.proc.pid)
        if self.ref:
            _all_procs.add(self.ref)
        deadline = time.monotonic() + timeout
        probe = next(iter(self.addresses), "relay.test")
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited (%s):\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                rcode, _ = dns_query(probe, 1, port=self.port, timeout=0.3)
                return self
            except (socket.timeout, ConnectionRefusedError):
                pass
            if time.monotonic() >= deadline:
                raise AssertionError("dnsmasq not answering on port %d:\n%s"
                                     % (self.port, self.log()))
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        kill_refs([self.ref], term_timeout=3)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _all_procs.discard(self.ref)
        self.proc = None
        self.log()

    def log(self):
        """The captured log; the last copy read once the file is gone."""
        try:
            self._log_cache = self.logpath.read_text(errors="replace")
        except FileNotFoundError:
            pass
        return getattr(self, "_log_cache", "")

    def wait_log(self, regex, timeout=10):
        r = re.compile(regex, re.M)
        return wait_until(lambda: r.search(self.log()), timeout,
                          "dnsmasq log /%s/" % regex)


# --- mtad ------------------------------------------------------------------------

def missing_binaries():
    return [str(p) for p in [MTAD] + CHILD_BINS
            if not os.access(p, os.X_OK)]


def mtad_env():
    env = dict(os.environ)
    env.update(SAN_ENV)
    return env


def run_check(conf, *args, timeout=20):
    """mtad -n -f conf [args]: CompletedProcess with text output."""
    return subprocess.run([str(MTAD), "-n", "-f", str(conf), *args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout,
                          env=mtad_env())


class Mtad:
    """
    One mtad instance on a private directory:
        WORKDIR/mtad.conf   minimal config (the overrides do the work)
        WORKDIR/mtad.log    the master's and children's stderr (-d)
        WORKDIR/spool, mtad.pid, control.sock
    start() may be called again after stop() or kill_all(): same spool,
    same SMTP port, log appended.
    """

    def __init__(self, workdir, sink_port=None, dns=DEAD_DNS, run_as=None,
                 name="mtad"):
        self.workdir = Path(workdir)
        self.name = name
        self.port = free_port()
        self.sink_port = sink_port
        self.dns = dns
        self.run_as = run_as        # user name to start the master as
        self.conf = self.workdir / "mtad.conf"
        self.logpath = self.workdir / ("%s.log" % name)
        self.spool = self.workdir / "spool"
        self.pidfile = self.workdir / "mtad.pid"
        self.ctlsock = self.workdir / "control.sock"
        if not self.conf.exists():
            self.conf.write_text("# mtad integration test: settings are "
                                 "given as --KEY=VALUE\n")
            self.conf.chmod(0o644)
        self.proc = None
        self.master = None
        self.seen = {}              # pid -> ProcRef of children ever seen
        self.starts = 0

    # lifecycle ------------------------------------------------------------
    def args(self, **overrides):
        opts = {
            "smtp-ip": "127.0.0.1",
            "smtp-port": str(self.port),
            "spool-dir": str(self.spool),
            "pid-file": str(self.pidfile),
            "control-socket": str(self.ctlsock),
            "user": self.run_as or default_user(),
            "smarthost": "127.0.0.1",
            "smarthost-port": str(self.sink_port) if self.sink_port else None,
            "retries": "1",
            "resolver-nameservers": self.dns,
            "smtp-workers": "1",
            "log-level": "debug",
        }
        for k, v in overrides.items():
            opts[k.replace("_", "-")] = None if v is None else str(v)
        argv = [str(MTAD), "-d", "-f", str(self.conf)]
        argv += ["--%s=%s" % (k, v) for k, v in opts.items() if v is not None]
        return argv

    def start(self, wait=True, timeout=10.0, **overrides):
        assert self.proc is None or self.proc.poll() is not None, \
            "already running"
        missing = missing_binaries()
        assert not missing, "not built: %s" % ", ".join(missing)
        self.argv = self.args(**overrides)
        kw = {}
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            gid = nobody_ids()[1] if self.run_as == "nobody" else pw.pw_gid
            if os.geteuid() == 0:
                kw = dict(user=pw.pw_uid, group=gid, extra_groups=[])
        with open(self.logpath, "ab") as log:
            log.write(("### test: start #%d: %s\n"
                       % (self.starts + 1, " ".join(self.argv))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         cwd=self.workdir, env=mtad_env(),
                                         start_new_session=True, **kw)
        self.starts += 1
        self.master = ProcRef.of(self.proc.pid)
        if self.master:
            _all_procs.add(self.master)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """The SMTP port greets with 220 and all four children run."""
        deadline = time.monotonic() + timeout
        greeting = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "mtad exited with status %s before it was ready\n"
                    "--- last log lines ---\n%s"
                    % (self.proc.returncode, self.tail(40)))
            greeting = smtp_greeting(self.port, timeout=1.0)
            if greeting and greeting.startswith("220"):
                break
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "mtad not ready in %.0fs (greeting %r)\n"
                    "--- last log lines ---\n%s"
                    % (timeout, greeting, self.tail(40)))
            time.sleep(0.05)
        left = max(0.5, deadline - time.monotonic())
        wait_until(lambda: all(self.pids().get(n) for n in CHILD_NAMES),
                   left, "children %s (have %r)" % (CHILD_NAMES, self.pids()))
        self.greeting = greeting
        return greeting

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """{comm: [pid, ...]} of the master's live children."""
        out = {}
        if not self.running():
            return out
        for pid in proc_children(self.proc.pid):
            ref = ProcRef.of(pid)
            if ref is None or not ref.alive():
                continue
            self.seen[pid] = ref
            _all_procs.add(ref)
            out.setdefault(ref.comm, []).append(pid)
        return out

    def child(self, name):
        """The pid of the one child called name."""
        p = self.pids().get(name, [])
        assert len(p) == 1, "expected one %s child, have %r" % (name,
                                                              self.pids())
        return p[0]

    def kill9(self, name):
        """SIGKILL the child called name; return its pid."""
        pid = self.child(name)
        self.seen[pid].signal(signal.SIGKILL)
        wait_until(lambda: not self.seen[pid].alive(), 5,
                   "%s[%d] to die" % (name, pid))
        return pid

    def wait_new_child(self, name, old_pid, timeout=10):
        """Wait for the master to start a new name child; return its pid."""
        def new():
            p = [x for x in self.pids().get(name, []) if x != old_pid]
            return p[0] if p else None
        return wait_until(new, timeout, "a new %s child (old pid %d)"
                          % (name, old_pid))

    def stop(self, timeout=10.0):
        """SIGTERM the master, SIGKILL after timeout; return its status."""
        if self.proc is None:
            return None
        kids = [self.seen.get(p) or ProcRef.of(p)
                for p in proc_children(self.proc.pid)] \
            if self.running() else []
        kids = [k for k in kids if k]
        if self.running():
            self.master.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.master.signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        kill_refs(kids + list(self.seen.values()), term_timeout=3)
        return self.proc.returncode

    def kill_all(self):
        """SIGKILL the master and every child at once; wait until gone."""
        refs = [self.master] + [ProcRef.of(p)
                                for p in proc_children(self.proc.pid)]
        refs = [r for r in refs if r]
        for r in refs:
            r.signal(signal.SIGKILL)
        self.proc.wait(timeout=5)
        left = kill_refs(refs + list(self.seen.values()), term_timeout=5,
                         sig=signal.SIGKILL)
        assert not left, "still alive after SIGKILL: %r" % left
        return refs

    def cleanup(self):
        """Teardown: stop whatever still runs, quickly."""
        try:
            self.stop(timeout=5)
        finally:
            kill_refs(list(self.seen.values()) + [self.master],
                      term_timeout=1)
            self.log()

    # logs ---------------------------------------------------------------------
    def log(self):
        """The captured log; the last copy read once the file is gone."""
        try:
            self._log_cache = self.logpath.read_text(errors="replace")
        except FileNotFoundError:
            pass
        return getattr(self, "_log_cache", "")

    def mark(self):
        """Current log length: pass as since= to wait_log()."""
        return len(self.log())

    def tail(self, n=100):
        return tail(self.log(), n)

    def wait_log(self, regex, timeout=10, since=0):
        """Wait until regex (multiline) matches the log after since."""
        r = re.compile(regex, re.M)

        def find():
            if self.proc is not None and self.proc.poll() is not None:
                m = r.search(self.log(), since)
                if m:
                    return m
                raise AssertionError("mtad exited (%s) while waiting for "
                                     "/%s/" % (self.proc.returncode, regex))
            return r.search(self.log(), since)
        return wait_until(find, timeout, "log /%s/" % regex)

    def sanitizer_reports(self):
        return sanitizer_lines(self.log())
