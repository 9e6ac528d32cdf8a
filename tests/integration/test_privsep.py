"""
Privilege separation, verified (issue 8), as root: the master stays root
and its children run as nobody (the uid/gid check itself is in
test_foundation.test_privilege_drop_as_root, the control socket's
refusal of other users in test_control).

- smtpd, smtp and resolver are chrooted to SPOOL/empty, which is empty,
  root-owned and not writable by them: the spool cannot be reached;
- secrets live only where they are needed, read straight out of each
  process's memory (/proc/PID/maps + /proc/PID/mem): the TLS private key
  (PEM body and DER) is in no process but smtpd, smtp-password in no
  process but smtpd and the master, smarthost-password in no process
  but smtp and the master.  (smtpd checks AUTH against a SHA-256 of the
  password, yet the clear text is still found in its memory after an
  AUTH: a residue of its configuration slice or of the decoded AUTH
  response, not wiped; noted, not asserted.)  The master
  parses the configuration and keeps it for reload, so it legitimately
  holds the passwords (conf_free() wipes them with xfreezero, but the
  live configuration is never freed): that is asserted nowhere;
- no password, and none of its base64 forms, appears in the log.

The secrets go in the configuration file (mode 0600), not on the command
line, where /proc/PID/cmdline would show them to every user.
"""

import base64
import os
import re

from mtadtest import CHILD_NAMES
from sessionutil import Client, b64, make_cert, plain_b64

SMTP_USER, SMTP_PW = "in-user", "Smtpd-Pw-7f3a9c21e5"
SH_USER, SH_PW = "out-user", "Smarthost-Pw-4b8d02e6aa"
REGION_MAX = 256 << 20      # skips ASan's shadow (terabytes, all zero)


def memory_has(pid, needles):
    """{needle: True/False}: found in a readable mapping of pid."""
    found = {n: False for n in needles}
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if f[1][0] != "r" or hi - lo > REGION_MAX or \
                    (len(f) > 5 and f[5] in ("[vvar]", "[vsyscall]",
                                             "[vvar_vclock]")):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for n in needles:
                if not found[n] and n in data:
                    found[n] = True
    return found


def test_chroot_and_secrets(mtad_factory, workdir, sink):
    assert os.geteuid() == 0, "privilege separation is tested as root"
    m = mtad_factory(run_as=None)
    cert, key = make_cert(workdir)
    pem = key.read_text()
    body = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
    der = base64.b64decode(body)
    conf = m.conf.read_text() + "".join(
        '%s = "%s";\n' % kv for kv in (
            ("smtp-certificate", cert), ("smtp-key", key),
            ("smtp-username", SMTP_USER), ("smtp-password", SMTP_PW),
            ("smarthost-username", SH_USER),
            ("smarthost-password", SH_PW)))
    m.conf.write_text(conf)
    m.conf.chmod(0o600)
    m.start(user="nobody")
    for pid in (m.proc.pid, *[p for ps in m.pids().values() for p in ps]):
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert SMTP_PW.encode() not in f.read()

    # Use both secrets: AUTH to smtpd (PLAIN and LOGIN, from loopback),
    # then a message the smtp worker takes to the smarthost.
    with Client(m.port) as c:
        c.ehlo()
        code, lines = c.cmd("AUTH PLAIN %s" % plain_b64(SMTP_USER, SMTP_PW))
        assert code == 235, lines
    with Client(m.port) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd(b64(SMTP_USER))[0] == 334
        assert c.cmd(b64(SMTP_PW))[0] == 235
        assert c.cmd("MAIL FROM:<s@a.test>")[0] == 250
        assert c.cmd("RCPT TO:<r@b.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: privsep\r\n\r\nx\r\n.\r\n")
        assert c.reply(timeout=15)[0] == 250
    # The sink offers no AUTH: the attempt ends, whatever its outcome.
    m.wait_log(r"mtad/smtp\[\d+\]: \w+: to=<r@b\.test>")

    # Chroots: SPOOL/empty, empty, root's, not writable by the children.
    empty = m.spool / "empty"
    st = empty.stat()
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0, oct(st.st_mode)
    assert os.listdir(empty) == []
    pids = m.pids()
    for name in ("smtpd", "smtp", "resolver"):
        for pid in pids[name]:
            assert os.readlink("/proc/%d/root" % pid) == str(empty), name
            # The spool, seen from inside the chroot, does not exist.
            inside = "/proc/%d/root%s" % (pid, m.spool / "slots")
            assert not os.path.exists(inside), name
    qroot = os.readlink("/proc/%d/root" % pids["qmgr"][0])

    key_needles = [der, body[:64].encode()]
    pw_needles = [SMTP_PW.encode(), SH_PW.encode()]
    seen = {}
    for name in CHILD_NAMES:
        for pid in pids[name]:
            seen[name] = memory_has(pid, key_needles + pw_needles)
    seen["master"] = memory_has(m.proc.pid, key_needles + pw_needles)
    print("secrets in memory: %r (qmgr root %s)" % (
        {n: [k[:12] for k, v in f.items() if v] for n, f in seen.items()},
        qroot))
    for name in ("qmgr", "smtp", "resolver", "master"):
        for n in key_needles:
            assert not seen[name][n], "TLS key in %s" % name
    for name in ("qmgr", "smtp", "resolver"):
        assert not seen[name][SMTP_PW.encode()], "smtp-password in %s" % name
    for name in ("smtpd", "qmgr", "resolver"):
        assert not seen[name][SH_PW.encode()], \
            "smarthost-password in %s" % name

    # No password in the log, in clear or in any base64 form.
    log = m.log()
    forms = []
    for user, pw in ((SMTP_USER, SMTP_PW), (SH_USER, SH_PW)):
        forms += [pw, b64(pw), plain_b64(user, pw), plain_b64(user, pw,
                                                              user)]
    for f in forms:
        assert f not in log, "secret %r in the log" % f[:8]
    assert re.search(r"AUTH \.\.\.", log)
