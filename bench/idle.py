#!/usr/bin/python3
"""
Idle inbound sessions for scenario 5: open COUNT connections to
127.0.0.1:PORT, read each greeting, send EHLO, read the reply, and then
stay idle.  Prints "ready N" (N sessions that got 250 to EHLO) once every
connection has been tried, then holds them until stdin closes.

    idle.py PORT COUNT [CONCURRENCY]

Connections are opened at most CONCURRENCY (default 200) at a time, so the
server's listen backlog is never the limit.  Every step has a deadline.
"""

import asyncio
import resource
import sys

STEP_TIMEOUT = 30


async def one(port, sem, held):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), STEP_TIMEOUT)
            line = await asyncio.wait_for(r.readline(), STEP_TIMEOUT)
            if not line.startswith(b"220"):
                w.close()
                return
            # A multi-line greeting ends with "220 "; read to the end.
            while line[3:4] == b"-":
                line = await asyncio.wait_for(r.readline(), STEP_TIMEOUT)
            w.write(b"EHLO idle.bench.test\r\n")
            while True:
                line = await asyncio.wait_for(r.readline(), STEP_TIMEOUT)
                if not line.startswith(b"250"):
                    w.close()
                    return
                if line[3:4] != b"-":
                    break
            held.append((r, w))
        except (OSError, asyncio.TimeoutError):
            return


async def main(port, count, concurrency):
    held = []
    sem = asyncio.Semaphore(concurrency)
    await asyncio.gather(*(one(port, sem, held) for _ in range(count)))
    print("ready %d" % len(held), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for _, w in held:
        w.close()


if __name__ == "__main__":
    port, count = int(sys.argv[1]), int(sys.argv[2])
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(count + 100, soft)
    if hard != resource.RLIM_INFINITY and want > hard:
        want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    asyncio.run(main(port, count, conc))
