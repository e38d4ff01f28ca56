#!/usr/bin/env python3
"""Part 4 of the suite (bench/suite.py): a frozen worker under load.

1 gateway + 3 workers on loopback, FROZEN_KEYS source URLs (a ~44 KB
JPEG under distinct paths on an nginx origin). Keys are told apart by
their owner (the `X-Served-By` of their cached variant before the run,
i.e. the rendezvous owner with all three workers up): the frozen worker's
keys, whose requests must go elsewhere, and the other workers' keys,
which should not notice the freeze at all. FROZEN_CLIENTS client threads,
each with a kept-alive connection, ask the gateway: a third of them (at
least one) for the frozen worker's keys, the others for the other
workers' keys, so that a request stuck on the frozen worker never holds
up a client of the other keys (the clients are closed-loop). Half the
requests are for a cached variant (w=200, cached before the run), half
for a new variant (w=201, 202, ... of the same source, every one a miss:
fetch, resize, encode). After FREEZE_AT seconds the worker is frozen
(SIGSTOP) for FREEZE_FOR seconds, then resumed (SIGCONT); the run lasts
FROZEN_SECONDS. A request fails if it is not a 200 within 30 s (or its
connection fails).

Printed, for each class of keys, cached and uncached apart: the rate
(requests sent) during the freeze against the rate before it, the slowest
request of the whole run and the slowest before the freeze (sent after
the first second, answered before the freeze: the baseline), p99 and
median of the requests in flight at some time of the freeze, and
failures; then a per-second timeline by class (requests, max latency,
failures, by the second a request was sent) with the number of workers
the gateway lists as live (its /health, polled every 250 ms).

The gateway cache is off by default (FROZEN_GATEWAY_CACHE=0): with it,
cached keys would be answered by the gateway without asking any worker,
which would hide what a freeze does to the forwarding path.

Usage: bench/frozen.py      (or `bench/suite.py frozen`)
Env:   FROZEN_CLIENTS (6; a third on the frozen worker's keys), FROZEN_KEYS (60), FROZEN_SECONDS (20),
       FREEZE_AT (5), FREEZE_FOR (6), FROZEN_GATEWAY_CACHE (0; e.g. 64MiB),
       IMG_PROXY_BIN
"""

import http.client
import os
import random
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import hits  # noqa: E402

CLIENTS = int(os.environ.get("FROZEN_CLIENTS", "6"))
KEYS = int(os.environ.get("FROZEN_KEYS", "60"))
SECONDS = float(os.environ.get("FROZEN_SECONDS", "20"))
FREEZE_AT = float(os.environ.get("FREEZE_AT", "5"))
FREEZE_FOR = float(os.environ.get("FREEZE_FOR", "6"))
GATEWAY_CACHE = os.environ.get("FROZEN_GATEWAY_CACHE", "0")
TIMEOUT = 30


def image(origin_port, j, width):
    source = f"http://127.0.0.1:{origin_port}/k{j}/hit.jpg"
    return f"/image?url={urllib.parse.quote(source, safe='')}&w={width}"


def owners(gateway, origin_port):
    """Caches every key's w=200 variant; returns each key's owner."""
    out = []
    for j in range(KEYS):
        for _ in range(2):
            status, _, h = benchlib.get("127.0.0.1", gateway.port, image(origin_port, j, 200), 30)
            if status != 200:
                raise RuntimeError(f"warming key {j}: {status}")
        out.append(h["x-served-by"])
    return out


class Load:
    """The client threads and what they saw: one record per request,
    (sent at, latency ms, ok, owner, cached)."""

    def __init__(self, port, origin_port, owner):
        self.port, self.origin_port, self.owner = port, origin_port, owner
        self.records, self.lock = [], threading.Lock()
        self.next_width = [201] * KEYS
        self.t0 = time.perf_counter()

    def path(self, rnd, keys):
        j = rnd.choice(keys)
        if rnd.random() < 0.5:
            return j, True, image(self.origin_port, j, 200)
        with self.lock:
            w = self.next_width[j]
            self.next_width[j] += 1
        return j, False, image(self.origin_port, j, w)

    def client(self, seed, keys):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        while time.perf_counter() - self.t0 < SECONDS:
            j, cached, path = self.path(rnd, keys)
            sent = time.perf_counter()
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            done = time.perf_counter()
            with self.lock:
                self.records.append((sent - self.t0, (done - sent) * 1000, ok, self.owner[j], cached))
        conn.close()

    def watch_members(self, gateway):
        """Every 250 ms, (time, workers the gateway lists as live), from
        its /health: shows when gossip drops and readmits the frozen one."""
        self.views = []
        while time.perf_counter() - self.t0 < SECONDS:
            try:
                n = sum(1 for m in gateway.health().get("members", []) if m.get("role") == "worker")
            except OSError:
                n = None
            self.views.append((time.perf_counter() - self.t0, n))
            time.sleep(0.25)


def freeze_under_load(cluster, origin_port, owner, frozen):
    """Returns the requests' records and the gateway's views of its workers."""
    load = Load(cluster.gateway.port, origin_port, owner)
    theirs = [j for j in range(KEYS) if owner[j] == frozen.name]
    others = [j for j in range(KEYS) if owner[j] != frozen.name]
    n_theirs = max(1, CLIENTS // 3)
    threads = [threading.Thread(target=load.client, args=(i, theirs if i < n_theirs else others),
                                daemon=True) for i in range(CLIENTS)]
    threads.append(threading.Thread(target=load.watch_members, args=(cluster.gateway,), daemon=True))
    for t in threads:
        t.start()
    pid = frozen.proc.pid
    try:
        time.sleep(max(0.0, FREEZE_AT - (time.perf_counter() - load.t0)))
        os.kill(pid, signal.SIGSTOP)
        time.sleep(FREEZE_FOR)
    finally:
        os.kill(pid, signal.SIGCONT)
    for t in threads:
        t.join()
    return load.records, load.views


def timeline(records, views, frozen):
    lines = [f"Frozen worker ({frozen}) timeline: SIGSTOP at {FREEZE_AT:g} s, SIGCONT at "
             f"{FREEZE_AT + FREEZE_FOR:g} s; requests by the second they were sent; live workers "
             "as the gateway's /health lists them (fewest in that second)",
             "",
             "| second | other workers' keys: requests | max ms | failures "
             f"| {frozen}'s keys: requests | max ms | failures | live workers |",
             "|---|---|---|---|---|---|---|---|"]
    for sec in range(int(SECONDS + 0.999)):
        cells = []
        for mine in (False, True):
            rs = [r for r in records if int(r[0]) == sec and (r[3] == frozen) == mine]
            worst = max((r[1] for r in rs), default=0)
            cells += [str(len(rs)), f"{worst:.0f}", str(sum(1 for r in rs if not r[2]))]
        seen = [n for t, n in views if int(t) == sec and n is not None]
        cells.append(str(min(seen)) if seen else "?")
        mark = " (frozen)" if FREEZE_AT <= sec < FREEZE_AT + FREEZE_FOR else ""
        lines.append(f"| {sec}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(records, frozen, rss):
    out = []
    for mine, label in ((False, "other workers' keys"), (True, "the frozen worker's keys")):
        for cached in (True, False):
            rs = [r for r in records if (r[3] == frozen) == mine and r[4] == cached]
            # Before: sent after the first second and answered before the
            # freeze; during: in flight at some time of the freeze.
            before = [r for r in rs if 1.0 <= r[0] and r[0] + r[1] / 1000 < FREEZE_AT]
            during = [r for r in rs if r[0] < FREEZE_AT + FREEZE_FOR and r[0] + r[1] / 1000 >= FREEZE_AT]
            rate_before = len(before) / (FREEZE_AT - 1.0)
            rate_during = sum(1 for r in rs if FREEZE_AT <= r[0] < FREEZE_AT + FREEZE_FOR) / FREEZE_FOR
            lat = sorted(r[1] for r in during)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
            out.append({
                "part": "4 frozen worker",
                "system": f"1 gateway + 3 workers (gateway cache {GATEWAY_CACHE}), {label}, "
                          + ("cached" if cached else "uncached (misses)"),
                "rate": f"{rate_during:.0f} req/s during the freeze ({rate_before:.0f} before)",
                "ratio": f"{rate_during / rate_before:.2f} of the rate before" if rate_before else "",
                "latency": f"max {max((r[1] for r in rs), default=0):.0f} ms "
                           f"(before the freeze {max((r[1] for r in before), default=0):.0f}); "
                           f"during the freeze p99 {p99:.0f}, median {benchlib.median(lat):.0f} "
                           f"(before {benchlib.median([r[1] for r in before]):.0f})",
                "failures": str(sum(1 for r in rs if not r[2])),
                "rss": "" if out else rss,
            })
    return out


def run():
    """Runs part 4; returns (rows for the suite's table, the timeline)."""
    data = tempfile.mkdtemp(prefix="img-proxy-bench-frozen-")
    hits.make_asset(data)
    print(f"part 4: frozen worker, {CLIENTS} clients over {KEYS} keys for {SECONDS:g} s, "
          f"SIGSTOP at {FREEZE_AT:g} s for {FREEZE_FOR:g} s; load {benchlib.loadavg()}", file=sys.stderr)
    try:
        origin = benchlib.Nginx("frozen-origin", r"sendfile on; server { listen 127.0.0.1:{port}; "
                                r"location / { rewrite ^/k\d+/(.*)$ /$1 break; root " + data + "; } }")
        cluster = benchlib.Cluster(3, gateway_env={"GATEWAY_CACHE_BYTES": GATEWAY_CACHE})
        owner = owners(cluster.gateway, origin.port)
        frozen = cluster.workers[1]
        print(f"  keys per owner: { {w.name: owner.count(w.name) for w in cluster.workers} }; "
              f"freezing {frozen.name}", file=sys.stderr)
        records, views = freeze_under_load(cluster, origin.port, owner, frozen)
        rss = " + ".join(f"{n.name} {benchlib.tree_hwm(n.proc.pid):.0f}" for n in cluster.nodes()) + " MiB"
        return summary(records, frozen.name, rss), timeline(records, views, frozen.name)
    finally:
        benchlib.stop_all()


if __name__ == "__main__":
    benchlib.install_cleanup()
    import suite
    rows, table = run()
    suite.print_table(rows)
    print("\n" + table)
