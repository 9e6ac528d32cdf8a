"""
Helpers for the mtactl tests (test_control.py).

- mtactl(m, *args): run the built mtactl against Mtad m's control socket,
  as root or as another uid; returns the CompletedProcess, checked for
  sanitizer reports.
- ctl_json(m, *args): the same with --json, exit 0 required, parsed.
- inject(spool, ...): write a message and its envelope into a stopped
  mtad's spool in the older format (queue/ID + queue/ID.env, the JSON of
  common/envelope.h), which recovery imports: how a per-message
  smarthost ("(smarthost) HOST:PORT") queue is made without x-mq headers.
"""

import json
import os
import pwd
import subprocess
import time

import mtadtest
from mtadtest import BUILD, sanitizer_lines, wait_until

MTACTL = BUILD / "sbin" / "mtactl"


def mtactl(m, *args, uid=None, gid=None, timeout=20):
    """mtactl -s SOCKET args..., optionally as uid:gid."""
    kw = {}
    if uid is not None:
        kw = dict(user=uid, group=gid if gid is not None else uid,
                  extra_groups=[])
    p = subprocess.run([str(MTACTL), "-s", str(m.ctlsock), *args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, errors="replace", timeout=timeout,
                       env=mtadtest.mtad_env(), **kw)
    bad = sanitizer_lines(p.stderr)
    assert not bad, "sanitizer report from mtactl %r:\n%s" % (args,
                                                             p.stderr)
    return p


def ctl_ok(m, *args, **kw):
    """mtactl that must succeed: its stdout."""
    p = mtactl(m, *args, **kw)
    assert p.returncode == 0, "mtactl %r exited %d: %s" % (
        args, p.returncode, p.stderr)
    assert p.stderr == "", p.stderr
    return p.stdout


def ctl_json(m, *args, **kw):
    """mtactl --json that must succeed: the answer, parsed."""
    out = ctl_ok(m, "--json", *args, **kw)
    assert out.count("\n") == 1, "one line of JSON expected: %r" % out
    return json.loads(out)


def ctl_fail(m, *args, status=1, **kw):
    """mtactl that must fail with status: its one-line reason."""
    p = mtactl(m, *args, **kw)
    assert p.returncode == status, "mtactl %r exited %d (want %d): %s%s" % (
        args, p.returncode, status, p.stdout, p.stderr)
    assert p.stdout == "", p.stdout
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtactl: "), p.stderr
    return lines[0]


def queues(m):
    """{queue key: row} from mtactl queue --json."""
    return {r["queue"]: r for r in ctl_json(m, "queue")["queues"]}


def wait_queues(m, pred, timeout=15, what="queue state"):
    """Poll mtactl queue until pred(rows) is true; return the rows."""
    return wait_until(lambda: (lambda q: q if pred(q) else None)(queues(m)),
                      timeout, what, interval=0.1)


def column_aligned(text, header, row_key):
    """
    In a table printed by mtactl, the right-aligned column `header` ends
    at the same place on the header line and on the row starting with
    row_key.
    """
    lines = text.splitlines()
    head = [l for l in lines if header in l][0]
    end = head.index(header) + len(header)
    row = [l for l in lines if l.startswith(row_key + " ")][0]
    return row[end - 1].isdigit() and (len(row) == end or row[end] == " ")


def inject(m, msgid, sender, rcpts, properties=None, received=None,
           body=b"Subject: injected\r\n\r\nInjected into the spool.\r\n"):
    """Write queue/ID and queue/ID.env for mtad m (stopped)."""
    queue = m.spool / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    now = int(time.time()) if received is None else received
    env = {
        "id": msgid, "envelope": sender, "received": now,
        "client": "localhost[127.0.0.1]", "local-ip": "127.0.0.1",
        "helo": "client.test", "size": len(body),
        "properties": properties or {},
        "recipients": [{"address": r, "state": "queued", "attempts": 0,
                        "next": now, "last": ""} for r in rcpts],
    }
    (queue / msgid).write_bytes(body)
    (queue / (msgid + ".env")).write_text(json.dumps(env) + "\n")
    user = m.run_as or mtadtest.default_user()
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        for p in (m.spool, queue, queue / msgid, queue / (msgid + ".env")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    for p in (m.spool, queue):
        p.chmod(0o700)
