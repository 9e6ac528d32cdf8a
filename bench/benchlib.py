"""
Plumbing for the benchmarks (bench/run.py): ports, processes tracked by
pid, CPU accounting through cgroup v1 cpuacct groups, memory from /proc,
and the two Postfix test tools: smtp-sink (the counting sink) and
smtp-source (the load).

A relay has not relayed a message until the sink has it, so every rate is
counted at the sink: smtp-sink -c prints "sess=S quit=Q mesg=M" after every
message; a reader thread follows that counter and notes when it reaches a
target.  Everything listens on and talks to 127.0.0.1 only.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
NOFILE = 65536                  # fd limit given to every server we start
CLIENT_HELO = "client.bench.test"
SENDER = "sender@client.bench.test"

_started = []                   # (pid, starttime) of every process we ran


# --- small utilities ---------------------------------------------------------

def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.02):
    """Poll pred() until true; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def greeting(port, timeout=1.0):
    """The first line a server on 127.0.0.1:port sends, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.settimeout(timeout)
            return s.recv(512).decode(errors="replace")
    except OSError:
        return None


def raise_nofile():
    """Raise our own fd limit (the idle client and the sinks inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else max(hard, NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- processes by pid --------------------------------------------------------

def proc_start(pid):
    """The start time of pid (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def track(pid):
    st = proc_start(pid)
    if st is not None:
        _started.append((pid, st))


def signal_pid(pid, sig):
    """Signal pid only if it is still the process we started."""
    for p, st in _started:
        if p == pid and proc_start(pid) == st:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            return True
    return False


def kill_all_started():
    """Last resort at exit: SIGKILL whatever we started that still runs."""
    for pid, st in _started:
        if proc_start(pid) == st:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def cpu_ticks(pid):
    """utime + stime of pid in seconds, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mem_kb(pid):
    """(rss, pss) of pid in KiB, (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


# --- CPU accounting ----------------------------------------------------------

class CpuGroup:
    """
    A cgroup v1 cpuacct group: every process started through wrap() and
    its descendants are charged to it, so the CPU of a whole MTA (Postfix
    forks per need) or of the load generator is read in one place.
    Without a writable cpuacct hierarchy, usage() is None.
    """

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, name):
        self.path = self.ROOT / ("mtadbench-%d-%s" % (os.getpid(), name))
        try:
            self.path.mkdir(exist_ok=True)
            self.ok = (self.path / "cgroup.procs").exists()
        except OSError:
            self.ok = False

    def wrap(self, argv, nofile=NOFILE):
        """argv run inside the group with a raised fd limit."""
        procs = str(self.path / "cgroup.procs") if self.ok else "/dev/null"
        return ["/bin/sh", "-c",
                'echo $$ > "$0" 2>/dev/null; ulimit -n %d 2>/dev/null; '
                'exec "$@"' % nofile, procs] + list(argv)

    def usage(self):
        """CPU seconds used by the group so far."""
        if not self.ok:
            return None
        try:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        except OSError:
            return None

    def pids(self):
        if not self.ok:
            return []
        try:
            return [int(x) for x in
                    (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self):
        if self.ok:
            try:
                self.path.rmdir()
            except OSError:
                pass

    @classmethod
    def remove_all(cls):
        """At exit: every group of this run that is empty by now."""
        for p in cls.ROOT.glob("mtadbench-%d-*" % os.getpid()):
            try:
                p.rmdir()
            except OSError:
                pass


# --- smtp-sink ---------------------------------------------------------------

class Sink:
    """
    smtp-sink on 127.0.0.1:port, discarding mail and counting it.  count
    is the number of messages received so far; first_at the monotonic
    time the first one arrived.
    """

    COUNTER = re.compile(rb"mesg=(\d+)")

    def __init__(self, port, cpu=None, concurrency=2048):
        self.port = port
        self.cpu = cpu
        self.concurrency = concurrency
        self.proc = None
        self.count = 0
        self.first_at = None
        self.cond = threading.Condition()

    def start(self):
        argv = [SMTP_SINK, "-u", "nobody", "-c", "-m", str(self.concurrency),
                "127.0.0.1:%d" % self.port, "4096"]
        if self.cpu:
            argv = self.cpu.wrap(argv)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        track(self.proc.pid)
        self.err = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_until(lambda: greeting(self.port) or self.proc.poll() is not None,
                   10, "smtp-sink on port %d" % self.port)
        if self.proc.poll() is not None:
            raise RuntimeError("smtp-sink exited: %r" % self.err[-300:])
        return self

    def _read(self):
        fd = self.proc.stdout.fileno()
        tail = b""
        while True:
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            tail = (tail + d)[-256:]
            if b"mesg=" not in d:
                self.err = tail
                continue
            n = int(self.COUNTER.findall(tail)[-1])
            with self.cond:
                if n > 0 and self.first_at is None:
                    self.first_at = time.monotonic()
                if n != self.count:
                    self.count = n
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, n, timeout):
        """Wait until n messages arrived: the monotonic time it happened."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError("sink has %d of %d messages after %.0fs"
                                       % (self.count, n, timeout))
                self.cond.wait(min(left, 0.5))
            return time.monotonic()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            signal_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                signal_pid(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


# --- smtp-source -------------------------------------------------------------

def source_argv(port, count, sessions, size, rcpt, reuse=False):
    """smtp-source sending count messages of size bytes to rcpt."""
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(count),
            "-l", str(size), "-M", CLIENT_HELO, "-f", SENDER, "-t", rcpt]
    if reuse:
        argv.insert(1, "-d")
    return argv + ["127.0.0.1:%d" % port]


class Load:
    """
    One or more smtp-source processes running at once (lanes).  Each lane
    is a shell loop of smtp-source calls, so that one run can spread its
    recipients over many domains (smtp-source has one recipient domain
    per call).
    """

    def __init__(self, cpu=None):
        self.cpu = cpu
        self.procs = []

    def start_simple(self, port, count, sessions, size, rcpt, reuse=False):
        self._spawn(source_argv(port, count, sessions, size, rcpt, reuse))

    def start_domains(self, port, count, lanes, size, domains, reuse=False):
        """count messages, one session per lane, to domains d0..dN-1."""
        per = count // domains
        assert per * domains == count, "count must be a multiple of domains"
        for lane in range(lanes):
            doms = range(lane, domains, lanes)
            calls = "\n".join(
                " ".join(source_argv(port, per, 1, size,
                                     "rcpt@d%d.bench.test" % d, reuse))
                + " || exit 1" for d in doms)
            self._spawn(["/bin/sh", "-c", calls])

    def _spawn(self, argv):
        if self.cpu:
            argv = self.cpu.wrap(argv)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        track(p.pid)
        self.procs.append(p)

    def failed(self):
        """The error text of a lane that exited non-zero, or None."""
        for p in self.procs:
            if p.poll() not in (None, 0):
                return (p.stderr.read() or b"").decode(errors="replace")[-500:]
        return None

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.wait(max(0.1, deadline - time.monotonic()))
        err = self.failed()
        if err is not None:
            raise RuntimeError("smtp-source failed: %s" % err.strip())

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                signal_pid(p.pid, signal.SIGKILL)
                p.wait(5)


# --- the machine -------------------------------------------------------------

def machine():
    """Cores, CPU model, memory, and the disk and filesystem of /tmp."""
    info = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        df = subprocess.run(["df", "-T", "/tmp"], capture_output=True,
                            text=True, timeout=10).stdout.splitlines()[1]
        dev, fstype = df.split()[:2]
        info["fs"] = "%s on %s" % (fstype, dev)
        name = os.path.basename(dev)
        rota = Path("/sys/block/%s/queue/rotational" % name)
        kind = ("rotational" if rota.read_text().strip() == "1"
                else "non-rotational") if rota.exists() else "?"
        model = Path("/sys/block/%s/device/model" % name)
        vendor = Path("/sys/block/%s/device/vendor" % name)
        desc = " ".join(x.read_text().strip() for x in (vendor, model)
                        if x.exists())
        if name.startswith("vd") or desc == "0x1af4":
            desc = "virtio-blk"
        info["disk"] = "%s (%s%s)" % (name, desc + ", " if desc else "",
                                      "kernel reports " + kind)
        if fstype in ("ext3", "ext4"):
            jbd = Path("/proc/fs/jbd2")
            has = jbd.is_dir() and any(e.name.startswith(name)
                                       for e in jbd.iterdir())
            info["fs"] += " (with a journal)" if has else " (no journal)"
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    info["kernel"] = os.uname().release
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype, opts = line.split()[:4]
                if dev == info.get("fs", "").split(" on ")[-1].split()[0]:
                    info["mount_opts"] = opts
                    break
    except (OSError, ValueError):
        pass
    return info


def tree():
    """The commit measured, and how many files differ from it."""
    def git(*a):
        return subprocess.run(["git", "-C", str(REPO)] + list(a),
                              capture_output=True, text=True,
                              timeout=30).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = len([x for x in git("status", "--porcelain",
                                    "--untracked-files=no").splitlines()
                     if x.strip()])
    except (OSError, subprocess.SubprocessError):
        return "?"
    return "%s%s" % (head, " + %d changed file(s)" % dirty if dirty else "")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def fsync_cost(directory, n=200):
    """Mean ms of write(4 KiB)+fsync and of rename+fsync(dir) here."""
    d = Path(directory) / "fsync-probe"
    d.mkdir(parents=True, exist_ok=True)
    data = b"x" * 4096
    t = time.monotonic()
    for i in range(n):
        fd = os.open(d / ("f%d" % i), os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    t1 = time.monotonic()
    dfd = os.open(d, os.O_RDONLY)
    for i in range(n):
        os.rename(d / ("f%d" % i), d / ("g%d" % i))
        os.fsync(dfd)
    os.close(dfd)
    t2 = time.monotonic()
    shutil.rmtree(d, ignore_errors=True)
    return (t1 - t) / n * 1000, (t2 - t1) / n * 1000
