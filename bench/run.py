#!/usr/bin/python3
"""
mtad benchmarks (issue 7): mtad against Postfix on the same machine, in
the same run, with Postfix's smtp-source as the load and smtp-sink as the
destination.  `make bench` runs the full set and rewrites the generated
part of BENCHMARKS.md; see that file for what each scenario measures.

    bench/run.py [--quick] [--reps N] [--only 1,2,...] [--mtas mtad,postfix]
                 [--perf 1,...] [--build DIR] [--out DIR] [--report FILE]

--quick    small sizes, one repetition (for development; the report is
           only written when --report is given)
--only     run these scenarios only
--perf     after the measured runs of these rate scenarios, one more run
           of each MTA under perf record -g (not counted); the reports
           land in OUT/perf-MTA-N.txt
Results: OUT/results.json for a full run, OUT/results-partial.json for
--quick or --only (default OUT: BUILD/bench/).  Must run as root
(Postfix and smtp-sink need it; mtad drops to nobody).
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib                                        # noqa: E402
import report                                          # noqa: E402
from scenarios import KINDS, log                       # noqa: E402

REPO = benchlib.REPO

# Issue 7's sizes.  warmup: messages sent before the clock starts.
FULL = {
    "1": dict(kind="rate", mode="smarthost", count=20000, sessions=20,
              size=4096, warmup=1000,
              title="20 sessions, 4 KiB, 1 rcpt, one smarthost queue"),
    "2": dict(kind="rate", mode="sink", count=20000, sessions=20, size=4096,
              domains=1000, warmup=1000,
              title="same, sink mode, recipients over 1,000 domains"),
    "3": dict(kind="rate", mode="smarthost", count=2000, sessions=1,
              size=4096, warmup=100, title="one session (latency)"),
    "4": dict(kind="rate", mode="smarthost", count=5000, sessions=20,
              size=102400, warmup=200, title="20 sessions, 100 KiB"),
    "5": dict(kind="idle", sessions=5000, postfix_sessions=100,
              title="5,000 idle inbound sessions"),
    "6": dict(kind="queued", count=100000, size=4096, resume_timeout=15,
              title="100,000 queued, destination down, restart"),
    "7": dict(kind="bridge", count=10000, size=4096, instances=[1, 2],
              title="RabbitMQ bridge, outbox to sink"),
}

QUICK = {"1": dict(count=2000, warmup=200), "2": dict(count=2000, warmup=200),
         "3": dict(count=300, warmup=20), "4": dict(count=500, warmup=50),
         "5": dict(sessions=500, postfix_sessions=50),
         "6": dict(count=5000, resume_timeout=5),
         "7": dict(count=1000)}


class Ctx:
    def __init__(self, args):
        self.build = Path(args.build).resolve()
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="mtad-bench-", dir="/tmp"))
        os.chmod(self.tmp, 0o755)   # mtad (nobody) needs to reach its spool
        self.reps = args.reps
        self.mtas = {"none"} | set(args.mtas.split(","))
        self.perf = bool(args.perf)
        self.perf_scenarios = set(args.perf.split(",")) if args.perf else set()
        self._id = 0

    def next_id(self):
        self._id += 1
        return self._id


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--mtas", default="mtad,postfix")
    ap.add_argument("--perf", default="")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", default=None,
                    help="markdown file to update (default: BENCHMARKS.md "
                    "for a full run of every scenario, none otherwise)")
    a = ap.parse_args()
    if a.reps is None:
        a.reps = 1 if a.quick else 3
    if a.out is None:
        a.out = str(Path(a.build) / "bench")
    if a.report is None and not a.quick and not a.only:
        a.report = str(REPO / "BENCHMARKS.md")
    return a


def preflight(ctx):
    if os.geteuid() != 0:
        sys.exit("bench: run as root (Postfix and smtp-sink need it)")
    for p in [benchlib.SMTP_SINK, benchlib.SMTP_SOURCE, "/usr/sbin/postfix",
              ctx.build / "sbin" / "mtad", ctx.build / "sbin" / "mtactl"]:
        if not os.access(p, os.X_OK):
            sys.exit("bench: %s missing (make bench installs postfix and "
                     "builds mtad)" % p)


def main():
    args = parse()
    ctx = Ctx(args)
    preflight(ctx)
    benchlib.raise_nofile()
    atexit.register(lambda: shutil.rmtree(ctx.tmp, ignore_errors=True))
    atexit.register(benchlib.CpuGroup.remove_all)
    atexit.register(benchlib.kill_all_started)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

    wanted = [s for s in args.only.split(",") if s] or list(FULL)
    results = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": args.quick, "reps": ctx.reps,
        "machine": benchlib.machine(),
        "tree": benchlib.tree(),
        "load_start": benchlib.loadavg(),
        "scenarios": {},
    }
    fs = benchlib.fsync_cost(ctx.tmp)
    results["machine"]["fsync_ms"] = fs
    log("machine: %s; fsync %.3f ms, dir fsync %.3f ms" % (
        results["machine"], fs[0], fs[1]))
    # A partial or quick run does not replace the last full run's file.
    name = "results.json" if args.report else "results-partial.json"
    t_all = time.monotonic()
    for sid in wanted:
        sc = dict(FULL[sid], id=sid)
        if args.quick:
            sc.update(QUICK.get(sid, {}))
        log("scenario %s: %s" % (sid, sc["title"]))
        t = time.monotonic()
        r = KINDS[sc["kind"]](ctx, sid, sc)
        r.update(params=sc, seconds=time.monotonic() - t)
        results["scenarios"][sid] = r
        (ctx.out / name).write_text(json.dumps(results, indent=1))
    results["seconds"] = time.monotonic() - t_all
    results["load_end"] = benchlib.loadavg()
    (ctx.out / name).write_text(json.dumps(results, indent=1))
    print(report.summary(results))
    log("results in %s/%s (%.0f s)" % (ctx.out, name, results["seconds"]))
    if args.report:
        report.update(Path(args.report), results)
        log("updated %s" % args.report)


if __name__ == "__main__":
    main()
