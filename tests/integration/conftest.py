"""
Fixtures for mtad's integration tests (see mtadtest.py for the helpers).

Every test gets a private directory under /tmp (mode 0755 so that the
unprivileged children can reach the spool), removed afterwards.  Processes
started by a test are stopped by pid at teardown.  When a test fails, the
last 100 lines of each mtad log (and the dnsmasq log) are attached to the
report.  A sanitizer report in any mtad log fails the test at teardown.
"""

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

import mtadtest
from mtadtest import Dnsmasq, Mtad, Sink
from queueutil import QSink


def pytest_report_header(config):
    return "mtad build: %s" % mtadtest.BUILD


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for title, text in getattr(item, "_mtad_diag", []):
        try:
            body = text()
        except Exception as e:          # diagnostics must not hide the error
            body = "(unavailable: %r)" % e
        rep.sections.append((title, body or "(empty)"))


def _diag(request, title, fn):
    request.node.__dict__.setdefault("_mtad_diag", []).append((title, fn))


@pytest.fixture(scope="session")
def build():
    """The build tree under test; missing binaries fail, never skip."""
    missing = mtadtest.missing_binaries()
    if missing:
        pytest.fail("mtad binaries missing (run make or make SAN=1): "
                    + ", ".join(missing), pytrace=False)
    return mtadtest.BUILD


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="mtad-it-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sink():
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def dnsmasq(request, workdir):
    d = Dnsmasq(workdir, addresses={"relay.test": "127.0.0.1"},
                mx=[("mx.test", "relay.test", 10)])
    _diag(request, "dnsmasq log (last 100 lines)",
          lambda: mtadtest.tail(d.log()))
    d.start()
    yield d
    d.stop()


@pytest.fixture
def mtad_factory(request, build, workdir, sink):
    """mtad_factory(**kw) -> a new Mtad (not started) on workdir."""
    made = []

    def make(**kw):
        kw.setdefault("sink_port", sink.port)
        # As root, mtad runs as nobody unless a test asks for root
        # (run_as=None): only unprivileged processes are outside a
        # chroot, where LeakSanitizer can check them at exit.
        if "run_as" not in kw and os.geteuid() == 0:
            kw["run_as"] = "nobody"
            uid, gid = mtadtest.nobody_ids()
            os.chown(workdir, uid, gid)
        kw.setdefault("name", "mtad%d" % len(made) if made else "mtad")
        m = Mtad(workdir, **kw)
        if m.run_as and os.geteuid() == 0:
            pw = pwd.getpwnam(m.run_as)
            os.chown(m.conf, pw.pw_uid, pw.pw_gid)
        made.append(m)
        _diag(request, "%s log (last 100 lines)" % m.name, m.tail)
        return m

    yield make
    errors = []
    for m in made:
        try:
            m.cleanup()
        except Exception as e:
            errors.append("%s: cleanup failed: %r" % (m.name, e))
        reports = m.sanitizer_reports()
        if reports:
            errors.append("%s: sanitizer report(s):\n  %s\n--- the reports "
                          "---\n%s\n--- last 100 log lines ---\n%s"
                          % (m.name, "\n  ".join(reports),
                             "\n...\n".join(mtadtest.sanitizer_blocks(
                                 m.log())), m.tail(100)))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def mtad(mtad_factory):
    """An Mtad relaying to the sink, not started yet."""
    return mtad_factory()


@pytest.fixture
def qsinks():
    """qsinks(**kw) -> a started QSink (queueutil.py); all are stopped at
    teardown."""
    made = []

    def make(**kw):
        s = QSink(**kw).start()
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def servers():
    """Peer servers a test starts (anything with start/stop), stopped at
    teardown in reverse order."""
    started = []

    def add(server):
        started.append(server)
        return server.start()
    yield add
    for s in reversed(started):
        s.stop()


@pytest.fixture
def cert(workdir):
    """A self-signed certificate and key made with openssl in workdir."""
    from routingutil import make_cert
    return make_cert(workdir)
