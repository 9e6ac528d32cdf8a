"""
A private rabbitmq-server for the RabbitMQ bridge tests (test_rabbitmq.py),
and a TCP relay that can stand in for a broker that is away.

Broker: Debian's rabbitmq-server started as the `rabbitmq` user on spare
ports (AMQP, distribution, and its own epmd bound to 127.0.0.1 on a spare
port, so that no system epmd or broker is touched), with its data, logs,
cookie and an empty plugin list in a temporary directory owned by that
user.  stop() ends the broker by its process group (the session the test
started) and its epmd with `epmd -kill` on that epmd's own port.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pika

from mtadtest import free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class Broker:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mtad-rabbit-"))
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = "mtadtest%d_%d@localhost" % (os.getpid(), self.port)
        self.proc = None

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def _env(self):
        d = self.dir
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(d),
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
        return env

    def start(self, timeout=60.0):
        pw = pwd.getpwnam("rabbitmq")
        d = self.dir
        (d / "mnesia").mkdir()
        (d / "log").mkdir()
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text("loopback_users = none\n")
        (d / "advanced.config").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")
        for p in [d] + list(d.rglob("*")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.out = open(d / "server.out", "ab")
        return self._spawn(timeout)

    def _spawn(self, timeout):
        pw = pwd.getpwnam("rabbitmq")
        self.proc = subprocess.Popen(
            [SERVER], env=self._env(), cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, user=pw.pw_uid, group=pw.pw_gid,
            extra_groups=[], start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("rabbitmq-server exited: %s"
                                     % self.log_tail())
            try:
                self.channel().connection.close()
                return self
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("rabbitmq-server not up after %.0fs: %s"
                                     % (timeout, self.log_tail()))
            time.sleep(0.2)

    def halt(self):
        """Stop the node (its process group), keeping data, port, epmd."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def resume(self, timeout=60.0):
        """Start the halted node again: same port, same data dir."""
        return self._spawn(timeout)

    def log_tail(self, n=40):
        try:
            text = (self.dir / "server.out").read_text(errors="replace")
        except OSError:
            text = ""
        return "\n".join(text.splitlines()[-n:])

    def stop(self):
        self.halt()
        # The epmd that the node started, on its own port.
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"],
                       env=self._env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
        self.proc = None
        if getattr(self, "out", None):
            self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, timeout=30):
        """rabbitmqctl against this node (its own cookie), as rabbitmq."""
        pw = pwd.getpwnam("rabbitmq")
        cookie = (self.dir / ".erlang.cookie").read_text().strip()
        r = subprocess.run(
            ["/usr/sbin/rabbitmqctl", "-n", self.node, "--erlang-cookie",
             cookie] + list(args), env=self._env(), cwd=self.dir,
            user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("rabbitmqctl %s: %s" % (
                " ".join(args), r.stderr.decode(errors="replace")[-500:]))
        return r.stdout.decode(errors="replace")

    # client side ----------------------------------------------------------
    def channel(self):
        params = pika.ConnectionParameters(
            host="127.0.0.1", port=self.port,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, socket_timeout=2,
            blocked_connection_timeout=5)
        conn = pika.BlockingConnection(params)
        return conn.channel()

    def purge(self, *queues):
        ch = self.channel()
        for q in queues:
            ch.queue_delete(q)
        ch.connection.close()

    def publish(self, queue, body, declare=True):
        ch = self.channel()
        if declare:
            ch.queue_declare(queue, durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", queue, body,
                         pika.BasicProperties(delivery_mode=2))
        ch.connection.close()

    def get(self, queue, count=1, timeout=15.0):
        """Wait until count messages could be taken from queue: bodies."""
        ch = self.channel()
        out = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < count:
                try:
                    method, props, body = ch.basic_get(queue, auto_ack=True)
                except pika.exceptions.ChannelClosedByBroker:
                    ch = ch.connection.channel()
                    method = None
                if method is None:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            "queue %s: %d of %d message(s) after %.0fs"
                            % (queue, len(out), count, timeout))
                    time.sleep(0.1)
                    continue
                out.append(body)
        finally:
            ch.connection.close()
        return out

    def publish_many(self, queue, bodies):
        """Publish bodies (persistent) on one channel with confirms."""
        ch = self.channel()
        ch.queue_declare(queue, durable=True)
        ch.confirm_delivery()
        for body in bodies:
            ch.basic_publish("", queue, body,
                             pika.BasicProperties(delivery_mode=2))
        ch.connection.close()

    def drain(self, queue, quiet=1.0, timeout=30.0):
        """Take messages from queue until none came for quiet s: bodies."""
        ch = self.channel()
        out = []
        last = time.monotonic()
        deadline = last + timeout
        try:
            while time.monotonic() - last < quiet:
                if time.monotonic() > deadline:
                    raise AssertionError("queue %s still busy after %.0fs"
                                         % (queue, timeout))
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    time.sleep(0.05)
                    continue
                out.append(body)
                last = time.monotonic()
        finally:
            ch.connection.close()
        return out

    def count(self, queue):
        ch = self.channel()
        try:
            return ch.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        finally:
            if ch.connection.is_open:
                ch.connection.close()


class Relay:
    """
    A TCP relay 127.0.0.1:port -> target port, off until started.
    freeze() turns the connections open now into black holes: still open,
    everything read from either side is thrown away, as when a broker
    vanishes without closing TCP; new connections are relayed as usual.
    """

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.sock = None
        self.conns = []
        self.frozen = set()
        self.thread = None

    def freeze(self):
        self.frozen.update(id(c) for c in self.conns)
        return len(self.conns) // 2

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.sock = s
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b),
                                 daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if id(a) not in self.frozen:
                    b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns = []
