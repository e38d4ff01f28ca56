#!/usr/bin/env python3
"""Overload benchmark: cache misses for large photos at a multiple of the
rate a node sustains, against a release build. Not a CI gate.

What it shows (issue 11, "Overload and slow peers"): while far more misses
arrive than the node can transform, it keeps answering /health and cache
hits quickly, its memory stays bounded, it does not crash, and it refuses
the excess at once with 503 + Retry-After instead of queueing it.

Steps:
 1. capacity: unique misses (a 5120x2880 or 2560x1600 JPEG resized to
    w=800, as WebP) from 4 closed-loop clients for CAPACITY_SECONDS; the
    sustainable rate R is the 200s per second;
 2. overload: unique misses arrive open-loop at FACTOR x R for
    OVERLOAD_SECONDS, each on its own connection, while a prober process
    alternates /health and a cached image (must be an X-Cache HIT) on fresh
    connections every 50 ms, and the node's RSS is sampled every 50 ms.

Usage: bench/overload.py [FACTOR]            (default 10)
Env:   IMG_PROXY_BIN   release binary (default target/release/img-proxy)
       PHOTOS          directory of JPEG photos (default /work/wt/photos;
                       Debian's plasma-workspace-wallpapers, extracted with
                       `apt-get download plasma-workspace-wallpapers` and
                       `dpkg -x`, has 2560x1600 and 5120x2880 ones)
       NODE_ENV: extra NAME=VALUE,... for the node (e.g. MAX_QUEUE=8)
       CAPACITY_SECONDS (20), OVERLOAD_SECONDS (30), ORIGIN_HOSTS (8):
       the origin listens on 127.0.0.1..N, one origin host each, so the
       per-host fetch limit (MAX_FETCHES_PER_HOST) is not the only one hit.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

FACTOR = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
PHOTOS = os.environ.get("PHOTOS", "/work/wt/photos")
CAPACITY_SECONDS = float(os.environ.get("CAPACITY_SECONDS", "20"))
OVERLOAD_SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "30"))
HOSTS = [f"127.0.0.{i}" for i in range(1, int(os.environ.get("ORIGIN_HOSTS", "8")) + 1)]


async def fetch(port, path, timeout):
    """One request on its own connection: (status, retry_after, seconds)."""
    t0 = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        w.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        await w.drain()
        data = await asyncio.wait_for(r.read(), timeout)
        w.close()
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        retry = any(h.lower().startswith("retry-after:") for h in head[1:])
        return status, retry, time.perf_counter() - t0
    except (OSError, asyncio.TimeoutError, IndexError, ValueError) as e:
        return type(e).__name__, False, time.perf_counter() - t0


class Misses:
    """Unique source URLs over the photos and origin hosts."""

    def __init__(self, origin_port, photos):
        self.port, self.photos, self.n = origin_port, photos, 0

    def next(self):
        self.n += 1
        host = HOSTS[self.n % len(HOSTS)]
        photo = self.photos[self.n % len(self.photos)]
        return image_path(f"http://{host}:{self.port}/{photo}?n={self.n}")


def image_path(source):
    from urllib.parse import quote
    return f"/image?url={quote(source, safe='')}&w=800&format=webp"


async def capacity(node, misses):
    until = time.time() + CAPACITY_SECONDS
    done = []

    async def client():
        while time.time() < until:
            status, _, secs = await fetch(node.port, misses.next(), 60)
            if status == 200:
                done.append(secs)

    t0 = time.time()
    await asyncio.gather(*(client() for _ in range(4)))
    elapsed = time.time() - t0
    return len(done) / elapsed, done


async def overload(node, misses, rate):
    results = []
    tasks = []
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < OVERLOAD_SECONDS:
        due = t0 + i / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        i += 1
        tasks.append(asyncio.create_task(fetch(node.port, misses.next(), 60)))
    results = await asyncio.gather(*tasks)
    return i, results, time.perf_counter() - t0


def report_statuses(results):
    counts = {}
    for status, retry, _ in results:
        key = f"{status}" + (" +Retry-After" if retry else "")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str))


def main():
    photos = sorted(f for f in os.listdir(PHOTOS) if f.endswith(".jpg"))
    if not photos:
        sys.exit(f"no JPEG photos in {PHOTOS}")
    origin, oport = benchlib.start_origin(PHOTOS, HOSTS)
    extra = dict(kv.split("=", 1) for kv in os.environ.get("NODE_ENV", "").split(",") if kv)
    node = benchlib.Node("overload", env=extra)
    try:
        run(node, origin, oport, photos)
    finally:
        node.stop()
        origin.kill()


def run(node, origin, oport, photos):
    misses = Misses(oport, photos)
    print(f"machine: {os.cpu_count()} cores, load average {benchlib.loadavg()}; "
          f"{len(photos)} photos from {PHOTOS}; binary {benchlib.binary()}; "
          f"node env {os.environ.get('NODE_ENV', '')}")
    rate, secs = asyncio.run(capacity(node, misses))
    print(f"capacity: {rate:.2f} misses/s sustained by 4 clients "
          f"(w=800 WebP; miss latency {benchlib.summary([s * 1000 for s in secs])})")
    hit = image_path(f"http://{HOSTS[0]}:{oport}/{photos[0]}?hit")
    assert benchlib.get("127.0.0.1", node.port, hit, 60)[0] == 200
    rss_before = benchlib.RssSampler(node.proc.pid).field("VmRSS")
    sampler = benchlib.RssSampler(node.proc.pid)
    sampler.start()
    cpu0 = benchlib.cpu_seconds(node.proc.pid)
    offered_rate = max(rate * FACTOR, 1.0)
    finish = benchlib.start_prober(OVERLOAD_SECONDS, [node.url("/health"), node.url(hit)])
    sent, results, elapsed = asyncio.run(overload(node, misses, offered_rate))
    probes = finish()
    peak = sampler.stop()
    cpu = benchlib.cpu_seconds(node.proc.pid) - cpu0
    print(f"overload: {sent} misses offered at {offered_rate:.1f}/s ({FACTOR:g}x) for "
          f"{OVERLOAD_SECONDS:g} s; all answered within {elapsed:.1f} s; load average {benchlib.loadavg()}")
    print(f"  statuses: {report_statuses(results)}")
    ok = [s * 1000 for st, _, s in results if st == 200]
    shed = [s * 1000 for st, _, s in results if st == 503]
    print(f"  200 latency: {benchlib.summary(ok)}")
    print(f"  503 latency: {benchlib.summary(shed)}")
    for url, r in probes.items():
        what = "/health" if "/health" in url else "cache hit"
        print(f"  probe {what}: {benchlib.summary(r['ms'])}; failures {len(r['failures'])} {r['failures'][:3]}")
    print(f"  node RSS: {rss_before:.0f} MiB before, peak {peak:.0f} MiB; "
          f"node CPU {cpu:.1f} s in {elapsed:.1f} s; node alive: {node.alive()}")


if __name__ == "__main__":
    main()
