"""
The MTAs under test (bench/run.py), each started in a private directory
with its CPU charged to its own cgroup:

- Mtad: the built mtad (BUILD/sbin/mtad) on a temp spool, relaying to the
  sink as smarthost or in sink mode, logging at info to mtad.log.
- Postfix: Debian's postfix with its own config directory, queue and data
  directory, listening on 127.0.0.1:PORT only, relayhost = the sink,
  default durability, no local delivery, logging to maillog (postlogd).
- Broker: a private rabbitmq-server for the bridge scenario, on spare
  loopback ports with its own epmd, data and logs in a temp dir.

Every process is stopped by its pid (or Postfix's own stop command, then
the pids left in its cgroup); nothing is found or killed by name.
"""

import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from benchlib import (CpuGroup, children, comm, cpu_ticks, free_port,
                      greeting, mem_kb, signal_pid, track, wait_until)

DEAD_DNS = "127.0.0.1:9"        # no DNS query ever leaves the machine


def run_user():
    return "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())[0]


class Mtad:
    """One mtad instance: master + smtpd, qmgr, smtp workers, resolver."""

    name = "mtad"

    def __init__(self, build, workdir, sink_port, mode="smarthost",
                 extra=None, tag="mtad"):
        self.build = Path(build)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.sink_port = sink_port
        self.mode = mode
        self.extra = dict(extra or {})
        self.cpu = CpuGroup(tag)
        self.proc = None
        self.conf = self.dir / "mtad.conf"
        self.conf.write_text("# mtad benchmark: settings are given as "
                             "--KEY=VALUE\n")
        self.conf.chmod(0o644)
        self.spool = self.dir / "spool"
        self.ctl = self.dir / "control.sock"
        self.log = self.dir / "mtad.log"

    def argv(self):
        opts = {
            "smtp-ip": "127.0.0.1",
            "smtp-port": self.port,
            "spool-dir": self.spool,
            "pid-file": self.dir / "mtad.pid",
            "control-socket": self.ctl,
            "user": run_user(),
            "resolver-nameservers": DEAD_DNS,
            "log-level": "info",
        }
        if self.mode == "smarthost":
            opts["smarthost"] = "127.0.0.1"
            opts["smarthost-port"] = self.sink_port
        elif self.mode == "sink":
            opts["smtp-sink-address"] = "127.0.0.1"
            opts["smtp-sink-port"] = self.sink_port
        opts.update(self.extra)
        return ([str(self.build / "sbin" / "mtad"), "-d", "-f",
                 str(self.conf)] +
                ["--%s=%s" % (k, v) for k, v in opts.items()
                 if v is not None])

    def start(self, timeout=30):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cpu.wrap(self.argv()),
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         cwd=self.dir,
                                         start_new_session=True)
        self.started_at = time.monotonic()
        track(self.proc.pid)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("mtad exited (%s): %s" % (
                    self.proc.returncode, self.tail()))
            g = greeting(self.port)
            if not (g and g.startswith("220")):
                return False
            names = {comm(p) for p in children(self.proc.pid)}
            return {"smtpd", "qmgr", "smtp", "resolver"} <= names
        wait_until(ready, timeout, "mtad to greet with 220")
        for p in self.pids():
            track(p)
        return self

    def pids(self):
        """{pid: comm} of the master and its children."""
        if self.proc is None or self.proc.poll() is not None:
            return {}
        out = {self.proc.pid: "master"}
        for p in children(self.proc.pid):
            out[p] = comm(p)
        return out

    def cpu_by_process(self):
        """{comm: CPU seconds} summed over processes of the same name."""
        out = {}
        for pid, name in self.pids().items():
            t = cpu_ticks(pid)
            if t is not None:
                out[name] = out.get(name, 0.0) + t
        return out

    def memory(self):
        """{comm: (rss KiB, pss KiB)} summed by name, and 'total'."""
        out = {}
        tr = tp = 0
        for pid, name in self.pids().items():
            r, p = mem_kb(pid)
            a, b = out.get(name, (0, 0))
            out[name] = (a + r, b + p)
            tr += r
            tp += p
        out["total"] = (tr, tp)
        return out

    def mtactl(self, *args, timeout=120):
        return subprocess.run([str(self.build / "sbin" / "mtactl"), "-s",
                               str(self.ctl)] + list(args),
                              capture_output=True, text=True,
                              timeout=timeout)

    def tail(self, n=20):
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout=30):
        if self.proc is None:
            return
        kids = list(self.pids())
        if self.proc.poll() is None:
            signal_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_pid(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for p in kids:
            signal_pid(p, signal.SIGKILL)
        self.proc = None

    def cleanup(self):
        self.stop()
        self.cpu.remove()
        shutil.rmtree(self.dir, ignore_errors=True)


class Postfix:
    """
    Postfix as the peer: config in DIR/etc, queue in DIR/queue, data in
    DIR/data, smtpd on 127.0.0.1:PORT, every mail to relayhost
    [127.0.0.1]:SINK.  Nothing of the system's /etc/postfix is changed.
    """

    name = "postfix"

    def __init__(self, workdir, sink_port, extra=None, tag="postfix"):
        self.dir = Path(workdir)
        self.etc = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        self.maillog = self.dir / "maillog"
        for d in (self.etc, self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.sink_port = sink_port
        self.extra = dict(extra or {})
        self.cpu = CpuGroup(tag)
        self.running = False
        self.setup()

    def postconf(self, *args):
        subprocess.run(["postconf", "-c", str(self.etc)] + list(args),
                       check=True, capture_output=True, timeout=30)

    def setup(self):
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_transport": "error:local delivery is disabled",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": "[127.0.0.1]:%d" % self.sink_port,
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": "%s/" % self.dir,
            "biff": "no",
        }
        main.update(self.extra)
        (self.etc / "main.cf").write_text(
            "# Postfix as the benchmark peer (bench/peers.py)\n" +
            "".join("%s = %s\n" % kv for kv in main.items()))
        shutil.copy("/etc/postfix/master.cf", self.etc / "master.cf")
        # No chroot (it needs copies of /etc files); no port 25.
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-MX", "smtp/inet")
        svc = "127.0.0.1:%d" % self.port
        self.postconf("-M", "%s/inet=%s inet n - n - - smtpd" % (svc, svc))
        subprocess.run(["postfix", "-c", str(self.etc), "set-permissions"],
                       capture_output=True, timeout=60)

    def start(self, timeout=30):
        r = subprocess.run(self.cpu.wrap(["postfix", "-c", str(self.etc),
                                          "start"]),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: %s %s" % (
                r.stdout + r.stderr, self.tail()))
        self.running = True
        self.started_at = time.monotonic()
        wait_until(lambda: (greeting(self.port) or "").startswith("220"),
                   timeout, "postfix to greet with 220")
        return self

    def master_pid(self):
        try:
            return int((self.queue / "pid" / "master.pid").read_text())
        except (OSError, ValueError):
            return None

    def pids(self):
        """{pid: comm} of Postfix's processes (those in its cgroup)."""
        pids = self.cpu.pids()
        if not pids and self.master_pid():
            m = self.master_pid()
            pids = [m] + children(m)
        return {p: comm(p) for p in pids}

    def cpu_by_process(self):
        out = {}
        for pid, name in self.pids().items():
            t = cpu_ticks(pid)
            if t is not None:
                out[name] = out.get(name, 0.0) + t
        return out

    def memory(self):
        out = {}
        tr = tp = 0
        for pid, name in self.pids().items():
            r, p = mem_kb(pid)
            a, b = out.get(name, (0, 0))
            out[name] = (a + r, b + p)
            tr += r
            tp += p
        out["total"] = (tr, tp)
        return out

    def postqueue(self, *args, timeout=300):
        return subprocess.run(["postqueue", "-c", str(self.etc)] + list(args),
                              capture_output=True, text=True,
                              timeout=timeout)

    def tail(self, n=20):
        try:
            lines = self.maillog.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout=30):
        if not self.running:
            return
        pids = list(self.pids())
        subprocess.run(["postfix", "-c", str(self.etc), "stop"],
                       capture_output=True, timeout=60)
        try:
            wait_until(lambda: not self.cpu.pids() if self.cpu.ok else
                       not any(os.path.exists("/proc/%d" % p) for p in pids),
                       timeout, "postfix to stop")
        except TimeoutError:
            for p in self.cpu.pids() or pids:
                try:
                    os.kill(p, signal.SIGKILL)   # ours: in our cgroup
                except ProcessLookupError:
                    pass
        self.running = False

    def cleanup(self):
        self.stop()
        self.cpu.remove()
        shutil.rmtree(self.dir, ignore_errors=True)


class Broker:
    """A private rabbitmq-server on spare loopback ports (scenario 7)."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = "mtadbench%d@localhost" % self.port
        self.proc = None

    @staticmethod
    def available():
        return (importlib.util.find_spec("pika") is not None and
                os.path.exists(Broker.SERVER))

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def env(self):
        d = self.dir
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(d),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        }

    def start(self, timeout=90):
        pw = pwd.getpwnam("rabbitmq")
        d = self.dir
        for sub in ("mnesia", "log"):
            (d / sub).mkdir(exist_ok=True)
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text("loopback_users = none\n")
        (d / "advanced.config").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")
        for p in [d] + list(d.rglob("*")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.out = open(d / "server.out", "wb")
        self.proc = subprocess.Popen([self.SERVER], env=self.env(), cwd=d,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     user=pw.pw_uid, group=pw.pw_gid,
                                     extra_groups=[],
                                     start_new_session=True)
        track(self.proc.pid)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited")
            try:
                self.connection().close()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.3)

    def connection(self):
        import pika
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=self.port,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, socket_timeout=5,
            blocked_connection_timeout=30))

    def fill(self, queue, count, size):
        """
        Publish count persistent JSON messages with a size-byte mime.  No
        confirms (the fill is not timed, and a passive declare on the same
        channel, ordered after the publishes, counts them).
        """
        import pika
        conn = self.connection()
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        body = "x" * size
        props = pika.BasicProperties(delivery_mode=2)
        for i in range(count):
            msg = {"envelope": "sender@client.bench.test",
                   "recipient": "rcpt%d@dest.bench.test" % i,
                   "mime": "From: <sender@client.bench.test>\r\n"
                           "To: <rcpt%d@dest.bench.test>\r\n"
                           "Subject: bench %d\r\n\r\n%s\r\n" % (i, i, body)}
            ch.basic_publish("", queue, json.dumps(msg).encode(), props)
        n = ch.queue_declare(queue, durable=True,
                             passive=True).method.message_count
        conn.close()
        return n

    def count(self, queue):
        conn = self.connection()
        try:
            return conn.channel().queue_declare(
                queue, durable=True, passive=True).method.message_count
        finally:
            conn.close()

    def delete(self, *queues):
        conn = self.connection()
        ch = conn.channel()
        for q in queues:
            ch.queue_delete(q)
        conn.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            # The server's session leader is the process we started.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"],
                       env=self.env(), capture_output=True, timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
