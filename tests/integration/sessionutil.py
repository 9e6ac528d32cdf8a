"""
Helpers for the smtpd session tests (TLS, AUTH, PROXY):

- make_cert(): a self-signed certificate and key made with openssl,
  readable by the user mtad runs as.
- Client: a raw SMTP client on a socket (optionally from a given source
  address, e.g. 127.0.0.2 to come from a proxy), with STARTTLS and
  implicit TLS through Python's ssl module, reply parsing with deadlines.
- proxy_v1() / proxy_v2(): PROXY protocol headers.
- swaks(): run swaks as a second, independent client.
- spool_envelope(): the queued envelope JSON of a message id.

Everything talks to 127.0.0.0/8 only; every wait is bounded.
"""

import base64
import ipaddress
import os
import pwd
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import spoolutil

CLIENT_HELO = "client.test"


def make_cert(workdir, run_as=None, name="mx.test"):
    """(cert, key) paths of a fresh P-256 self-signed certificate."""
    d = Path(workdir) / "tls"
    d.mkdir(exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=%s" % name],
                   check=True, capture_output=True, timeout=20)
    # The key is read by smtpd as the user the test runs mtad as.
    if os.geteuid() == 0 and run_as:
        pw = pwd.getpwnam(run_as)
        for p in (d, cert, key):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


def client_tls_context(maximum=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class Client:
    """A line-oriented SMTP client on a raw socket."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=5.0,
                 tls=False, proxy=None, greet=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        if proxy is not None:
            self.sock.sendall(proxy)
        if tls:
            self.sock = client_tls_context().wrap_socket(self.sock)
        self.greeting = self.reply() if greet else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no reply in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed; buffered %r"
                                  % self.buf)
        self.buf += chunk

    def line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self, timeout=None):
        """(code, [lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            l = self.line(timeout)
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), lines

    def cmd(self, text, timeout=None):
        self.send(text + "\r\n")
        return self.reply(timeout)

    def ehlo(self, name=CLIENT_HELO):
        code, lines = self.cmd("EHLO %s" % name)
        assert code == 250, lines
        return [l[4:].upper() for l in lines[1:]]

    def starttls(self):
        code, lines = self.cmd("STARTTLS")
        assert code == 220, lines
        assert self.buf == b"", "data after the 220: %r" % self.buf
        self.sock = client_tls_context().wrap_socket(self.sock)
        return self.sock

    def nothing_within(self, seconds):
        """True when the server sends nothing (and keeps open) for s."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(4096)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        self.buf += chunk
        return False

    def closed_within(self, seconds):
        """True when the server closes the connection within s."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return False
            except (ConnectionResetError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def send_mail(self, sender, rcpt, subject, extra_headers=()):
        """MAIL, RCPT, DATA; return the final (code, lines)."""
        code, lines = self.cmd("MAIL FROM:<%s>" % sender)
        if code != 250:
            return code, lines
        code, lines = self.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            return code, lines
        code, lines = self.cmd("DATA")
        assert code == 354, lines
        body = ["From: <%s>" % sender, "To: <%s>" % rcpt,
                "Subject: %s" % subject] + list(extra_headers) + \
            ["", "Hello."]
        self.send("\r\n".join(body) + "\r\n.\r\n")
        return self.reply(timeout=15)


def plain_b64(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password))
                            .encode()).decode()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def proxy_v1(src, dst, sport=40000, dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport,
                                          dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src=None, dst=None, sport=40000, dport=25, local=False,
             tlvs=b""):
    """A v2 header: PROXY over TCP with src/dst, or LOCAL."""
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def swaks(port, *args, timeout=30, sender="sender@a.test",
          rcpt="rcpt@b.test", server="127.0.0.1"):
    """Run swaks; CompletedProcess with text output."""
    cmd = ["swaks", "--server", server, "--port", str(port),
           "--from", sender, "--to", rcpt, "--helo", CLIENT_HELO,
           "--timeout", "10"] + list(args)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout)


def spool_envelope(spool, msgid, timeout=10):
    """The envelope JSON of msgid from the spool (waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        env = spoolutil.envelope(spool, msgid)
        if env is not None:
            return env
        if time.monotonic() >= deadline:
            raise AssertionError("no envelope for %s under %s"
                                 % (msgid, spool))
        time.sleep(0.05)


def queued_id(lines):
    for l in lines:
        if "queued as " in l:
            return l.rsplit("queued as ", 1)[1].strip()
    raise AssertionError("no queue id in %r" % lines)
