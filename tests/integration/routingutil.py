"""
Peers for the routing tests (test_routing.py), all on 127.0.0.x:

- make_cert(dir): a self-signed certificate and key made with openssl.
- RSink: the aiosmtpd Sink of mtadtest, optionally with STARTTLS
  (tls_context, require_starttls) and AUTH (an authenticator checking a
  user/password table), on any loopback address.  Each message records
  the client's (ip, port), the TLS version and the authenticated user;
  failed AUTH attempts are counted, and so are the connections that
  said EHLO (self.connections, with their client (ip, port) in
  self.conn_peers), whether they delivered mail or not.
- ScriptServer: a plain-socket SMTP server for what aiosmtpd will not do:
  a fixed greeting (e.g. 421) and close, or a STARTTLS that answers 220
  and then sends bytes that are not TLS.  It records every line it got
  and accepts mail in plaintext otherwise.

Every server thread is bounded by timeouts and stopped by the tests.
"""

import socket
import ssl
import subprocess
import threading
from pathlib import Path

from mtadtest import Received, Sink, _SinkHandler, wait_until


def make_cert(directory, cn="relay.test"):
    """(cert, key) paths of a fresh self-signed certificate for cn."""
    d = Path(directory)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=%s" % cn], check=True,
                   capture_output=True, timeout=30)
    return cert, key


def server_tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class _RHandler(_SinkHandler):
    """
    Records, with each message, its connection, TLS and AUTH user; counts
    connections at their first EHLO (the server object is the connection:
    it sees a second EHLO after STARTTLS; the Controller's own probe at
    start says nothing and is not counted).
    """

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        if not getattr(server, "_mtad_counted", False):
            server._mtad_counted = True
            self.sink._connected(tuple(session.peer[:2]))
        session.host_name = hostname    # what aiosmtpd leaves to the hook
        return responses

    async def handle_DATA(self, server, session, envelope):
        reply = self.sink._next_reply("data")
        if reply:
            return reply
        m = Received(envelope.mail_from, list(envelope.rcpt_tos),
                     bytes(envelope.original_content))
        m.peer = tuple(session.peer[:2]) if session.peer else None
        m.tls = None
        if session.ssl is not None and server.transport is not None:
            obj = server.transport.get_extra_info("ssl_object")
            m.tls = obj.version() if obj is not None else "?"
        m.user = None
        if session.authenticated and session.auth_data is not None:
            m.user = session.auth_data.login.decode(errors="replace")
        self.sink._record(m)
        return "250 2.0.0 Ok: stored"


class RSink(Sink):
    """
    An aiosmtpd server on host:port.  tls=(cert, key) offers STARTTLS;
    users={"name": "password"} enables AUTH (PLAIN and LOGIN unless
    mechanisms is given), over TLS only unless auth_plaintext.
    """

    def __init__(self, host="127.0.0.1", port=None, tls=None,
                 require_starttls=False, users=None, auth_plaintext=False,
                 mechanisms=None):
        super().__init__(port=port, host=host)
        self.tls = tls
        self.require_starttls = require_starttls
        self.users = users
        self.auth_plaintext = auth_plaintext
        self.mechanisms = mechanisms
        self.auth_ok = []           # (mechanism, user)
        self.auth_failed = 0
        self.connections = 0
        self.conn_peers = []        # (ip, port) of each connection

    def _authenticator(self, server, session, envelope, mechanism, data):
        from aiosmtpd.smtp import AuthResult
        user = data.login.decode(errors="replace")
        good = self.users.get(user) == data.password.decode(
            errors="replace")
        with self._cond:
            if good:
                self.auth_ok.append((mechanism, user))
            else:
                self.auth_failed += 1
            self._cond.notify_all()
        return AuthResult(success=good, handled=False, auth_data=data)

    def _connected(self, peer):
        with self._cond:
            self.connections += 1
            self.conn_peers.append(peer)
            self._cond.notify_all()

    def start(self):
        from aiosmtpd.controller import Controller
        assert self.controller is None
        kw = {}
        if self.tls:
            kw["tls_context"] = server_tls_context(*self.tls)
            kw["require_starttls"] = self.require_starttls
        if self.users is not None:
            kw["authenticator"] = self._authenticator
            kw["auth_require_tls"] = not self.auth_plaintext
            if self.mechanisms is not None:
                kw["auth_exclude_mechanism"] = [
                    m for m in ("PLAIN", "LOGIN")
                    if m not in self.mechanisms]
        self.controller = Controller(_RHandler(self), hostname=self.host,
                                     port=self.port, ready_timeout=5.0, **kw)
        self.controller.start()
        return self

    def peers(self):
        """The distinct client connections that delivered mail."""
        with self._cond:
            return {m.peer for m in self.messages}

    def wait_auth_failed(self, n=1, timeout=15):
        return self._wait(lambda: self.auth_failed >= n, timeout,
                          "%d failed AUTH" % n)


class ScriptServer:
    """
    A minimal SMTP server on host:port, one thread per connection.
    greeting: the first line; when it is not 2xx the connection closes
    after it.  starttls: "garbage" offers STARTTLS and, after its 220
    and the start of the client's hello, sends bytes that are not TLS and
    closes; "inject" sends a second reply with the 220 (CVE-2011-0411);
    None offers nothing.
    Mail is accepted in plaintext; self.lines holds every line received,
    self.connections counts connections, self.messages the DATA bodies.
    """

    def __init__(self, host="127.0.0.1", port=None, greeting="220 script",
                 starttls=None, auth=False):
        from mtadtest import free_port
        self.host = host
        self.port = port or free_port()
        self.greeting = greeting
        self.starttls = starttls
        self.auth = auth
        self.lines = []
        self.messages = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = None
        self._thread = None

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        f = c.makefile("rwb", buffering=0)
        try:
            self._session(c, f)
        except OSError:
            pass
        finally:
            f.close()
            c.close()

    def _send(self, f, text):
        f.write(text.encode() + b"\r\n")

    def _session(self, c, f):
        self._send(f, self.greeting)
        if not self.greeting.startswith("2"):
            return
        data = None
        while not self._stop.is_set():
            line = f.readline(1024)
            if not line:
                return
            if data is not None:
                if line in (b".\r\n", b".\n"):
                    with self._lock:
                        self.messages.append(b"".join(data))
                    data = None
                    self._send(f, "250 2.0.0 stored")
                else:
                    data.append(line)
                continue
            text = line.decode(errors="replace").rstrip("\r\n")
            with self._lock:
                self.lines.append(text)
            verb = text.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["250-script"]
                if self.starttls:
                    caps.append("250-STARTTLS")
                if self.auth:
                    caps.append("250-AUTH PLAIN LOGIN")
                caps.append("250 8BITMIME")
                f.write(("\r\n".join(caps) + "\r\n").encode())
            elif verb == "STARTTLS" and self.starttls == "garbage":
                self._send(f, "220 2.0.0 go ahead")
                f.read(5)           # the client's hello has begun
                f.write(b"this is not a TLS record at all\r\n" * 4)
                return
            elif verb == "STARTTLS" and self.starttls == "inject":
                f.write(b"220 2.0.0 go ahead\r\n250 injected\r\n")
                return
            elif verb == "AUTH":
                self._send(f, "235 2.7.0 ok")
            elif verb == "DATA":
                self._send(f, "354 go on")
                data = []
            elif verb == "QUIT":
                self._send(f, "221 bye")
                return
            else:
                self._send(f, "250 ok")

    def wait_connections(self, n, timeout=15):
        return wait_until(lambda: self.connections >= n, timeout,
                          "%d connection(s) to %s:%d"
                          % (n, self.host, self.port))



def xmq(headers, subject, rcpt, sender="sender@a.test"):
    """A message with x-mq-* header lines {"name": value} (no prefix)."""
    from mtadtest import make_message
    head = "".join("x-mq-%s: %s\r\n" % (k, v) for k, v in headers.items())
    return head.encode() + make_message(subject, sender=sender, rcpt=rcpt)


def send_many(port, mails, clients=4, host="127.0.0.1", timeout=60):
    """
    Send mails [(sender, [rcpt...], data)] over `clients` SMTP connections
    in parallel, each carrying many transactions; every one must get 250.
    Returns the queue ids.
    """
    import smtplib
    from mtadtest import CLIENT_HELO, QUEUED_RE
    ids, errors = [], []
    lock = threading.Lock()

    def worker(part):
        try:
            with smtplib.SMTP(host, port, local_hostname=CLIENT_HELO,
                              timeout=timeout) as s:
                s.ehlo()
                for sender, rcpts, data in part:
                    code, text = s.mail(sender)
                    assert code == 250, (code, text)
                    for r in rcpts:
                        code, text = s.rcpt(r)
                        assert code == 250, (code, text)
                    code, text = s.data(data)
                    assert code == 250, (code, text)
                    with lock:
                        ids.append(QUEUED_RE.search(text).group(1).decode())
        except Exception as e:          # reported by the caller
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(mails[i::clients],),
                                daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "senders still running"
    assert not errors, errors
    assert len(ids) == len(mails)
    return ids
