"""SimPy's side of the hold-model comparison.

N processes, each `while True: yield env.timeout(expovariate(1))`: N
pending timeouts, each fired timeout resumes its process, which draws a
new Exp(1 s) delay and schedules the next. After a warm-up of N events,
the run goes on for about EVENTS more; prints JSON with the wall time per
fired timeout (the draw included, as on gridtwin's side).

    python hold.py N EVENTS
"""

import json
import random
import sys
import time

import simpy


def main():
    n, events = int(sys.argv[1]), int(sys.argv[2])
    env = simpy.Environment()
    rnd = random.Random(1)
    count = [0]

    def proc():
        while True:
            yield env.timeout(rnd.expovariate(1.0))
            count[0] += 1

    for _ in range(n):
        env.process(proc())
    # Warm-up: about n events (n processes at rate 1/s for 1 s), then
    # about `events` more.
    env.run(until=1.0)
    start_count = count[0]
    t0 = time.perf_counter()
    env.run(until=1.0 + events / n)
    wall = time.perf_counter() - t0
    fired = count[0] - start_count
    print(json.dumps({
        "n": n, "events": fired, "wall_s": wall,
        "ns_per_event": wall * 1e9 / fired, "simpy": simpy.__version__,
    }))


if __name__ == "__main__":
    main()
