"""
The benchmark scenarios of issue 7 (bench/run.py runs them).

Rate scenarios (1-4): smtp-source -> MTA -> smtp-sink, the MTAs run
alternately (no MTA, Postfix, mtad; the order of the two MTAs swapped on
every repetition), each on a fresh spool/queue, after a short warm-up
whose messages are not counted.  The clock starts when the load starts and
stops when the sink has the last message.  CPU is read from each
program's cgroup, so it includes every process the MTA forks.

Scenario 5: idle inbound sessions, resident memory.  Scenario 6: a big
queue while the destination is down: qmgr memory, `mtactl queue` time,
restart-to-first-delivery.  Scenario 7: the RabbitMQ bridge, outbox to
sink, one and two instances.
"""

import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (CpuGroup, Load, Sink, free_port, loadavg, signal_pid,
                      track, wait_until)
from peers import Broker, Mtad, Postfix

BENCH = Path(__file__).resolve().parent
SENDER_RCPT = "rcpt@dest.bench.test"

# The load comes from one address standing for many clients.  Postfix
# exempts $mynetworks from its per-client limits by default
# (smtpd_client_event_limit_exceptions); mtad's per-address limit (20)
# would answer 421 to the 21st session, which smtp-source's 20 sessions
# reach when a new connection is accepted before the old one's close is
# read.  So the limit is off for mtad, as it is for Postfix.
MTAD_RATE_EXTRA = {"smtp-max-connections-per-ip": 0}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_timeout(count):
    """Seconds to wait for count messages before calling a run failed."""
    return 120 + count / 40


# --- rate scenarios ----------------------------------------------------------

def make_peer(ctx, kind, sink_port, mode, extra=None, tag=None):
    wd = ctx.tmp / ("%s-%d" % (tag or kind, ctx.next_id()))
    if kind == "mtad":
        return Mtad(ctx.build, wd, sink_port, mode=mode, extra=extra,
                    tag=tag or "mtad")
    return Postfix(wd, sink_port, extra=extra, tag=tag or "postfix")


def start_load(load, sc, port, count):
    if sc.get("domains"):
        load.start_domains(port, count, sc["sessions"], sc["size"],
                           sc["domains"])
    else:
        load.start_simple(port, count, sc["sessions"], sc["size"],
                          SENDER_RCPT)


def rate_run(ctx, sc, kind, perf=False):
    """One measured run of a rate scenario: a result dict."""
    n, warm = sc["count"], sc["warmup"]
    sink_cpu, load_cpu = CpuGroup("sink"), CpuGroup("load")
    sink = Sink(free_port(), cpu=sink_cpu)
    peer = None
    res = {"kind": kind, "load_before": loadavg()}
    try:
        sink.start()
        port = sink.port
        if kind != "none":
            peer = make_peer(ctx, kind, sink.port, sc["mode"],
                             extra=MTAD_RATE_EXTRA if kind == "mtad" else None)
            peer.start()
            port = peer.port
        if warm:
            w = Load()
            w.start_simple(port, warm, min(sc["sessions"], 20), sc["size"],
                           "warm@d0.bench.test")
            sink.wait_for(warm, run_timeout(warm))
            w.wait(30)
        base = sink.count
        load = Load(cpu=load_cpu)
        c0 = (peer.cpu.usage() if peer else None, sink_cpu.usage(),
              load_cpu.usage())
        p0 = peer.cpu_by_process() if peer else {}
        prof = start_perf(ctx, peer, sc) if perf and peer else None
        t0 = time.monotonic()
        start_load(load, sc, port, n)
        try:
            t1 = sink.wait_for(base + n, run_timeout(n))
        except TimeoutError as e:
            err = load.failed()
            raise RuntimeError("%s%s" % (e, "; smtp-source: " + err.strip()
                                         if err else ""))
        c1 = (peer.cpu.usage() if peer else None, sink_cpu.usage(),
              load_cpu.usage())
        p1 = peer.cpu_by_process() if peer else {}
        if prof:
            res["perf"] = stop_perf(ctx, prof, sc, kind)
        load.wait(60)
        secs = t1 - t0
        res.update(rate=n / secs, secs=secs)
        per = lambda a, b: None if a is None or b is None \
            else (b - a) * 1000 / n
        res["cpu_ms"] = per(c0[0], c1[0])
        res["sink_ms"] = per(c0[1], c1[1])
        res["source_ms"] = per(c0[2], c1[2])
        res["proc_ms"] = {k: (v - p0.get(k, 0.0)) * 1000 / n
                          for k, v in p1.items()}
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as e:
        res["error"] = str(e)
        if peer:
            res["error"] += " | " + peer.tail(5).replace("\n", " / ")
            res["log"] = keep_log(ctx, peer, sc)
        log("  %s FAILED: %s" % (kind, res["error"][:400]))
    finally:
        if peer:
            peer.cleanup()
        sink.stop()
        for g in (sink_cpu, load_cpu):
            g.remove()
    return res


def keep_log(ctx, peer, sc):
    """Copy a failed run's MTA log next to the results: its path."""
    src = peer.log if isinstance(peer, Mtad) else peer.maillog
    dst = ctx.out / ("failed-%s-%s-%d.log" % (sc["id"], peer.name,
                                              ctx.next_id()))
    try:
        shutil.copy(src, dst)
    except OSError:
        return None
    return str(dst)


def rate_scenario(ctx, sid, sc):
    runs = {"none": [], "postfix": [], "mtad": []}
    reps = sc.get("reps", ctx.reps)
    for rep in range(reps):
        order = ["none", "postfix", "mtad"] if rep % 2 == 0 else \
            ["none", "mtad", "postfix"]
        for kind in order:
            if kind not in ctx.mtas:
                continue
            r = rate_run(ctx, sc, kind)
            runs[kind].append(r)
            if "rate" in r:
                log("  scenario %s rep %d %-7s %8.0f msg/s  (%.1f s, "
                    "MTA CPU %s ms/msg)" % (
                        sid, rep + 1, kind, r["rate"], r["secs"],
                        "%.2f" % r["cpu_ms"] if r.get("cpu_ms") is not None
                        else "n/a"))
    out = {"runs": runs, "median": {}, "cpu_ms": {}, "proc_ms": {}}
    if ctx.perf and sid in ctx.perf_scenarios:
        # Profiled runs come after the measured ones and are not counted:
        # perf slows what it watches.
        out["perf_runs"] = [rate_run(ctx, sc, k, perf=True)
                            for k in ("mtad", "postfix") if k in ctx.mtas]
        for r in out["perf_runs"]:
            log("  scenario %s %s under perf: %s" % (
                sid, r["kind"], r.get("perf") or r.get("error")))
    for kind, rs in runs.items():
        ok = [r for r in rs if "rate" in r]
        out["median"][kind] = median([r["rate"] for r in ok])
        out["cpu_ms"][kind] = median([r.get("cpu_ms") for r in ok])
        out["sink_ms"] = median([r.get("sink_ms") for r in ok]) \
            if kind == "none" else out.get("sink_ms")
        out["source_ms"] = median([r.get("source_ms") for r in ok]) \
            if kind == "none" else out.get("source_ms")
        if ok:
            names = set().union(*(r["proc_ms"] for r in ok))
            out["proc_ms"][kind] = {k: median([r["proc_ms"].get(k)
                                               for r in ok]) for k in names}
        errs = [r["error"] for r in rs if "error" in r]
        if errs:
            out.setdefault("errors", {})[kind] = errs
    m = out["median"]
    out["ratio"] = (m["mtad"] / m["postfix"]) if m.get("mtad") and \
        m.get("postfix") else None
    return out


# --- perf --------------------------------------------------------------------

def start_perf(ctx, peer, sc):
    """
    perf record -g on the MTA's processes while the run lasts (Postfix's
    master included, so that the daemons it forks later are followed).
    """
    pids = ",".join(str(p) for p in peer.pids())
    out = ctx.out / ("perf-%s-%s.data" % (peer.name, sc["id"]))
    p = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "999",
                          "-o", str(out), "-p", pids],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    track(p.pid)
    return p, out


def stop_perf(ctx, prof, sc, kind):
    p, data = prof
    signal_pid(p.pid, signal.SIGINT)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        signal_pid(p.pid, signal.SIGKILL)
        return None
    txt = ctx.out / ("perf-%s-%s.txt" % (kind, sc["id"]))
    rep = ["perf", "report", "-i", str(data), "--stdio", "--no-children"]
    with open(txt, "w") as f:
        for args in (["--sort", "comm,dso", "-g", "none"],
                     ["--sort", "comm,dso,symbol", "--percent-limit", "0.5",
                      "-g", "caller,0.5,callee,function,percent",
                      "--max-stack", "12"]):
            f.flush()
            subprocess.run(rep + args, stdout=f, stderr=subprocess.DEVNULL,
                           timeout=300)
    return str(txt)


# --- scenario 5: idle sessions -----------------------------------------------

def idle_run(ctx, kind, count, extra):
    peer = make_peer(ctx, kind, free_port(), "smarthost", extra=extra)
    res = {"kind": kind, "sessions": count}
    cli = None
    try:
        peer.start()
        time.sleep(0.5)
        before = peer.memory()
        cli = subprocess.Popen([sys.executable, str(BENCH / "idle.py"),
                                str(peer.port), str(count)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
        track(cli.pid)
        line = cli.stdout.readline().split()
        held = int(line[1]) if len(line) == 2 and line[0] == "ready" else 0
        time.sleep(1.0)
        after = peer.memory()
        res["held"] = held
        res["before"] = before
        res["after"] = after
        if kind == "mtad":
            res["smtpd_rss_kb"] = after.get("smtpd", (0, 0))[0]
        res["total_rss_kb"] = after["total"][0]
        res["total_pss_kb"] = after["total"][1]
        if held:
            res["pss_per_session_kb"] = (after["total"][1] -
                                         before["total"][1]) / held
        if held < count:
            res["error"] = "only %d of %d sessions held" % (held, count)
    except (RuntimeError, TimeoutError, OSError, ValueError) as e:
        res["error"] = str(e)
    finally:
        if cli:
            try:
                cli.stdin.close()
                cli.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                signal_pid(cli.pid, signal.SIGKILL)
        peer.cleanup()
    if "error" in res:
        log("  %s idle: %s" % (kind, res["error"]))
    return res


def idle_scenario(ctx, sid, sc):
    out = {}
    if "mtad" in ctx.mtas:
        out["mtad"] = idle_run(ctx, "mtad", sc["sessions"], {
            "smtp-max-connections": max(10000, sc["sessions"] * 2),
            "smtp-max-connections-per-ip": 0,
            "smtp-timeout": 3600})
        log("  mtad: %d idle sessions: smtpd RSS %.1f MB, total RSS %.1f MB,"
            " PSS %.1f MB" % (out["mtad"].get("held", 0),
                              out["mtad"].get("smtpd_rss_kb", 0) / 1024,
                              out["mtad"].get("total_rss_kb", 0) / 1024,
                              out["mtad"].get("total_pss_kb", 0) / 1024))
    if "postfix" in ctx.mtas:
        # One smtpd process per session, at most default_process_limit.
        out["postfix"] = idle_run(ctx, "postfix", sc["postfix_sessions"], {})
        log("  postfix: %d idle sessions: total PSS %.1f MB" % (
            out["postfix"].get("held", 0),
            out["postfix"].get("total_pss_kb", 0) / 1024))
    return out


# --- scenario 6: a big queue, destination down -------------------------------

def queued_run(ctx, kind, sc):
    n = sc["count"]
    sink_port = free_port()          # nothing listens there yet
    extra = {"retries": 3600} if kind == "mtad" else {}
    peer = make_peer(ctx, kind, sink_port, "smarthost", extra=extra)
    res = {"kind": kind, "count": n, "resume_timeout": sc["resume_timeout"]}
    sink = None
    try:
        peer.start()
        load = Load()
        t0 = time.monotonic()
        load.start_simple(peer.port, n, 20, sc["size"], SENDER_RCPT)
        load.wait(run_timeout(n) * 2)
        res["intake_rate"] = n / (time.monotonic() - t0)
        log("  %s: %d messages queued at %.0f msg/s" % (
            kind, n, res["intake_rate"]))
        time.sleep(3)                # let deferrals settle
        mem = peer.memory()
        res["memory"] = mem
        mgr = "qmgr"
        res["qmgr_rss_kb"] = mem.get(mgr, (0, 0))[0]
        res["total_rss_kb"] = mem["total"][0]
        times = []
        for _ in range(3):
            t = time.monotonic()
            r = peer.mtactl("queue") if kind == "mtad" else \
                peer.postqueue("-p")
            times.append(time.monotonic() - t)
            if r.returncode != 0:
                raise RuntimeError("queue listing failed: %s" %
                                   r.stderr.strip()[:200])
        res["queue_cmd_s"] = median(times)
        res["queue_cmd"] = "mtactl queue" if kind == "mtad" else \
            "postqueue -p"
        res["queue_out_lines"] = len(r.stdout.splitlines())
        if kind == "postfix":
            t = time.monotonic()
            r = subprocess.run(["qshape", "-c", str(peer.etc), "deferred"],
                               capture_output=True, text=True, timeout=600)
            res["qshape_s"] = time.monotonic() - t
        t = time.monotonic()
        peer.stop()
        res["stop_s"] = time.monotonic() - t
        sink = Sink(sink_port).start()
        t = time.monotonic()
        peer.start(timeout=120)
        res["ready_s"] = time.monotonic() - t
        if kind == "mtad":
            # mtad greets while qmgr still reads the spool: until when?
            # (Delivery may already have resumed: count the sink too.)
            wait_until(lambda: queued_count(peer) + sink.count >= n, 300,
                       "qmgr to recover %d messages" % n, interval=0.1)
            res["recovered_s"] = time.monotonic() - t
            res["qmgr_rss_restart_kb"] = peer.memory().get("qmgr",
                                                           (0, 0))[0]
        try:
            if kind == "postfix":
                raise TimeoutError("Postfix is always flushed")
            # Does mtad resume by itself?  Its recipients wait for their
            # next retry (retries=3600) unless recovery makes them due.
            left = sc["resume_timeout"] - (time.monotonic() - t)
            wait_until(lambda: sink.first_at, max(0.1, left),
                       "the first delivery after the restart")
            res["resume_s"] = sink.first_at - t
            tf = t
        except TimeoutError:
            res["resume_s"] = None
            # Ask for the queue to be run now: postqueue -f / mtactl flush.
            tf = time.monotonic()
            r = peer.postqueue("-f") if kind == "postfix" else \
                peer.mtactl("flush")
            if r.returncode != 0:
                raise RuntimeError("flush failed: %s" % r.stderr.strip())
            wait_until(lambda: sink.first_at, 60,
                       "the first delivery after the flush")
            res["flush_resume_s"] = sink.first_at - tf
            res["flush_restart_s"] = sink.first_at - t
        t1 = sink.wait_for(min(1000, n), 120)
        res["first_1000_s"] = t1 - tf   # from the restart or the flush
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as e:
        res["error"] = str(e) + " | " + peer.tail(5).replace("\n", " / ")
    finally:
        peer.cleanup()
        if sink:
            sink.stop()
    if "error" in res:
        log("  %s queued: %s" % (kind, res["error"][:300]))
    else:
        log("  %s: qmgr RSS %.1f MB, %s %.2f s, restart: ready in %.2f s, "
            "first delivery %s" % (
                kind, res["qmgr_rss_kb"] / 1024, res["queue_cmd"],
                res["queue_cmd_s"], res["ready_s"],
                "after %.2f s" % res["resume_s"] if res["resume_s"]
                is not None else "%.2f s after a flush" %
                res["flush_resume_s"]))
    return res


def queued_count(peer):
    """Messages in mtad's queue as `mtactl queue` counts them, or -1."""
    r = peer.mtactl("queue", timeout=30)
    for line in r.stdout.splitlines():
        if line.startswith("total:"):
            # total: 1 queues, 2000 messages, 2000 recipients (...)
            try:
                return int(line.split(",")[1].split()[0])
            except (IndexError, ValueError):
                return -1
    return -1


def queued_scenario(ctx, sid, sc):
    out = {}
    for kind in ("mtad", "postfix"):
        if kind in ctx.mtas and (kind == "mtad" or sc.get("postfix", True)):
            out[kind] = queued_run(ctx, kind, sc)
    return out


# --- scenario 7: the RabbitMQ bridge -----------------------------------------

def bridge_present(ctx):
    """Why the bridge cannot be measured, or None when it can."""
    if not Broker.available():
        return "rabbitmq-server or python3-pika is not installed"
    conf = ctx.tmp / "check.conf"
    conf.write_text("# check\n")
    r = subprocess.run([str(ctx.build / "sbin" / "mtad"), "-n", "-f",
                        str(conf), "--rabbitmq-address=amqp://guest:guest@"
                        "127.0.0.1:5672/", "--spool-dir=%s" % ctx.tmp,
                        "--user=nobody"], capture_output=True, text=True,
                       timeout=30)
    text = r.stdout + r.stderr
    if r.returncode != 0:
        return "mtad -n refuses the bridge settings: %s" % text.strip()
    return None


def bridge_run(ctx, broker, sc, instances):
    n = sc["count"]
    broker.delete("outbox", "results", "retry", "failure")
    filled = broker.fill("outbox", n, sc["size"])
    res = {"instances": instances, "count": n, "filled": filled}
    sink = Sink(free_port()).start()
    peers = []
    try:
        for i in range(instances):
            p = make_peer(ctx, "mtad", sink.port, "sink", tag="mtadmq%d" % i,
                          extra={"rabbitmq-address": broker.url,
                                 "rabbitmq-outbox": "outbox",
                                 "rabbitmq-results": "results",
                                 "rabbitmq-failure": "failure",
                                 "rabbitmq-retry": "retry"})
            peers.append(p)
        cpu0 = None
        for p in peers:
            p.start()
        wait_until(lambda: sink.first_at, 60, "the first bridged message")
        t0 = sink.first_at
        cpu0 = sum(p.cpu.usage() or 0 for p in peers)
        t1 = sink.wait_for(n, run_timeout(n))
        cpu1 = sum(p.cpu.usage() or 0 for p in peers)
        res["rate"] = (n - 1) / (t1 - t0)
        res["cpu_ms"] = (cpu1 - cpu0) * 1000 / (n - 1)
        wait_until(lambda: broker.count("results") >= n, 60,
                   "a result for every message")
        res["results"] = broker.count("results")
        log("  bridge, %d instance(s): %.0f msg/s" % (instances,
                                                      res["rate"]))
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as e:
        res["error"] = str(e) + " | " + " / ".join(p.tail(3) for p in peers)
        log("  bridge, %d instance(s) FAILED: %s" % (instances,
                                                     res["error"][:300]))
    finally:
        for p in peers:
            p.cleanup()
        sink.stop()
    return res


def bridge_scenario(ctx, sid, sc):
    why = bridge_present(ctx)
    if why:
        log("  not measured: %s" % why)
        return {"not_measured": why}
    broker = Broker(ctx.tmp / "broker")
    out = {"runs": []}
    try:
        broker.start()
        for inst in sc["instances"]:
            out["runs"].append(bridge_run(ctx, broker, sc, inst))
    except Exception as e:      # the broker itself failed: say so
        out["error"] = "broker: %r" % e
        log("  bridge scenario failed: %r" % e)
    finally:
        broker.stop()
    return out


KINDS = {"rate": rate_scenario, "idle": idle_scenario,
         "queued": queued_scenario, "bridge": bridge_scenario}
