"""
Peers and helpers for the delivery-queue tests (test_queue.py):

- QSink: the aiosmtpd Sink of mtadtest with per-recipient answers (a
  function address -> reply, e.g. "550 5.1.1 ..." for one address and
  None to accept), an optional delay before answering DATA (a slow
  server), and counts of the transactions in progress at once (MAIL
  to the end of DATA or RSET/QUIT) and of the connections open at once.
- dsns(sink): the delivery status notifications it received (MAIL FROM
  <>), parsed with Python's email package; dsn_fields() gives the
  per-message and per-recipient field blocks of the delivery-status part.
- write_spool_message(): a committed message written straight into a
  stopped mtad's spool in the older format (queue/ID and queue/ID.env),
  which recovery imports: the path through which per-message properties
  are tested end to end.

Everything listens on 127.0.0.1 only; every wait is bounded.
"""

import asyncio
import email
import email.policy
import json
import os
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mtadtest import Received, Sink


class _QHandler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        self.sink._txn(session, +1)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.sink._rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        # aiosmtpd keeps the null sender as "<>": recorded as "".
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.sink._record(Received(mail_from,
                                   list(envelope.rcpt_tos),
                                   bytes(envelope.original_content)))
        self.sink._txn(session, -1)
        return "250 2.0.0 Ok: stored"

    async def handle_RSET(self, server, session, envelope):
        self.sink._txn(session, -1)
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, server, session, envelope):
        self.sink._txn(session, -1)
        return "221 2.0.0 Bye"


class _CountingSMTP(SMTP):
    """An aiosmtpd SMTP that counts its open connections."""

    def __init__(self, handler, sink, **kw):
        super().__init__(handler, **kw)
        self._qsink = sink

    def connection_made(self, transport):
        self._qsink._conn(+1)
        super().connection_made(transport)

    def connection_lost(self, exc):
        self._qsink._conn(-1)
        if self.session is not None:
            self._qsink._txn(self.session, -1)
        super().connection_lost(exc)


class _QController(Controller):
    def __init__(self, sink, **kw):
        self._qsink = sink
        super().__init__(_QHandler(sink), **kw)

    def factory(self):
        return _CountingSMTP(self.handler, self._qsink, **self.SMTP_kwargs)


class QSink(Sink):
    """
    rule(address) -> reply or None (accept), for each RCPT.  data_delay:
    seconds to wait before answering DATA.  Counts: rcpt_seen[address],
    txn_now/txn_max (transactions in progress), conn_now/conn_max.
    """

    def __init__(self, port=None, rule=None, data_delay=0.0):
        super().__init__(port=port)
        self.rule = rule or (lambda addr: None)
        self.data_delay = data_delay
        self.rcpt_seen = {}
        self.txn_now = self.txn_max = 0
        self.conn_now = self.conn_max = self.conn_total = 0
        self._in_txn = set()

    def start(self):
        assert self.controller is None
        self.controller = _QController(self, hostname=self.host,
                                       port=self.port, ready_timeout=5.0)
        self.controller.start()
        return self

    def _rcpt_reply(self, address):
        with self._cond:
            self.rcpt_seen[address] = self.rcpt_seen.get(address, 0) + 1
            self._cond.notify_all()
        return self.rule(address)

    def _txn(self, session, delta):
        with self._cond:
            key = id(session)
            if delta > 0 and key not in self._in_txn:
                self._in_txn.add(key)
                self.txn_now += 1
                self.txn_max = max(self.txn_max, self.txn_now)
            elif delta < 0 and key in self._in_txn:
                self._in_txn.discard(key)
                self.txn_now -= 1

    def _conn(self, delta):
        with self._cond:
            self.conn_now += delta
            if delta > 0:
                self.conn_total += 1
            self.conn_max = max(self.conn_max, self.conn_now)

    def seen(self, address):
        with self._cond:
            return self.rcpt_seen.get(address, 0)

    def wait_seen(self, address, count, timeout=15):
        return self._wait(lambda: self.rcpt_seen.get(address, 0) >= count,
                          timeout, "%d RCPT for %s" % (count, address))

    def dsns(self):
        """Messages from <> received so far, parsed."""
        with self._cond:
            got = [m for m in self.messages if m.mail_from == ""]
        return [parse(m) for m in got]

    def wait_dsns(self, count, timeout=15):
        self._wait(lambda: len([m for m in self.messages
                                if m.mail_from == ""]) >= count,
                   timeout, "%d DSN(s)" % count)
        return self.dsns()

    def originals(self):
        with self._cond:
            return [m for m in self.messages if m.mail_from != ""]


def parse(received):
    """An email.message.EmailMessage of a Received, with .envelope set."""
    msg = email.message_from_bytes(received.content,
                                   policy=email.policy.default)
    msg.envelope = received
    return msg


def dsn_fields(msg):
    """
    (per-message fields, [per-recipient fields]) of a multipart/report
    DSN, each a dict of field name (lowercase) -> value.
    """
    assert msg.get_content_type() == "multipart/report", \
        msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    status = [p for p in parts
              if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, [p.get_content_type() for p in parts]
    blocks = status[0].get_payload()
    assert len(blocks) >= 2, "no per-recipient block"

    def fields(block):
        return {k.lower(): str(v) for k, v in block.items()}
    return fields(blocks[0]), [fields(b) for b in blocks[1:]]


def dsn_original(msg):
    """(content type, bytes) of the returned original (third part)."""
    parts = list(msg.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    p = parts[2]
    if p.get_content_type() == "message/rfc822":
        inner = p.get_payload()[0]
        return p.get_content_type(), inner.as_bytes(
            policy=email.policy.SMTP)
    return p.get_content_type(), p.get_payload(decode=True)


# --- the spool, for the recovery path -------------------------------------

def new_msgid(n):
    """A 12-hex-digit queue id, distinct per n, in the past."""
    return "%012X" % ((int(time.time() - 3600) << 20 | n) & ((1 << 48) - 1))


def write_spool_message(spool, msgid, sender, rcpts, data, properties,
                        received=None, owner=None):
    """
    Write queue/ID and queue/ID.env as qmgr commits them.  rcpts: a list
    of addresses or of dicts with "address" and envelope recipient
    members (notify, orcpt...).  owner: (uid, gid) to chown to.
    """
    queue = os.path.join(str(spool), "queue")
    os.makedirs(queue, exist_ok=True)
    now = int(time.time()) if received is None else received
    recipients = []
    for r in rcpts:
        if isinstance(r, str):
            r = {"address": r}
        e = {"address": r["address"], "state": "queued", "attempts": 0,
             "next": now, "last": ""}
        e.update({k: v for k, v in r.items() if k != "address"})
        recipients.append(e)
    env = {"id": msgid, "envelope": sender, "received": now,
           "client": "client.test[127.0.0.1]", "local-ip": "127.0.0.1",
           "helo": "client.test", "size": len(data),
           "properties": properties, "recipients": recipients}
    paths = [os.path.join(queue, msgid), os.path.join(queue, msgid + ".env")]
    with open(paths[0], "wb") as f:
        f.write(data)
    with open(paths[1], "w") as f:
        f.write(json.dumps(env) + "\n")
    for p in paths:
        os.chmod(p, 0o600)
        if owner is not None:
            os.chown(p, *owner)
    for d in (str(spool), queue):
        os.chmod(d, 0o700)
        if owner is not None:
            os.chown(d, *owner)
    return paths
