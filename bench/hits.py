#!/usr/bin/env python3
"""Part 1 of the suite (bench/suite.py): cache hits for one ~44 KB JPEG,
img-proxy against the servers users put in front of images instead.

Every system serves the same bytes from its cache (or, for nginx static,
from a file), measured with `wrk -t1 -c32 -d5s` in interleaved rounds
(each round runs every system once, in turn), so that drift in machine
load hits all alike. Per system: requests/s and CPU per request (utime +
stime of the server's processes from /proc, divided by the requests wrk
completed), both as a ratio to nginx static in the same round (median and
range over the rounds), wrk's p99, and the processes' peak RSS (VmHWM).

Systems: nginx static file (sendfile, 1 worker) = 1.00; nginx
`proxy_cache` and varnish (malloc storage), each in front of an nginx
origin; img-proxy standalone; img-proxy 1 gateway + 1 worker with
GATEWAY_CACHE_BYTES=0 (every hit crosses to the worker) and with the
default gateway cache (64MiB), whose CPU is given for both processes and
for the gateway alone.

The img-proxy nodes run with IO_THREADS=1, as nginx runs one worker
process: on this 2-core machine wrk takes a core, and a second runtime
thread competing with it for the other costs more CPU per request than
it serves (its wake-ups); one more row shows a standalone node with the
default (one thread per CPU), so the difference is in every table.

Usage: bench/hits.py        (or `bench/suite.py hits`)
Env:   ROUNDS (3), HIT_SECONDS (5), IMG_PROXY_BIN, IO_THREADS (1, for the
       img-proxy nodes)
"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = float(os.environ.get("HIT_SECONDS", "5"))
IO_THREADS = os.environ.get("IO_THREADS", "1")
TARGET_BYTES = 44_000


def make_asset(directory):
    """hit.jpg: the first photo scaled (by libvips, from the venv) to the
    widest JPEG q80 of at most ~44 KB, the size issue 9 measured with."""
    path = os.path.join(directory, "hit.jpg")
    script = f"""
import pyvips
src = pyvips.Image.new_from_file({os.path.join(benchlib.photos(), 'Autumn_2560x1600.jpg')!r})
for w in range(1200, 100, -10):
    data = src.thumbnail_image(w).jpegsave_buffer(Q=80, strip=True)
    if len(data) <= {TARGET_BYTES}:
        break
open({path!r}, "wb").write(data)
"""
    subprocess.run([benchlib.venv_python(), "-c", script], check=True)
    return path


class System:
    """A server under test: the `url` to load and its processes as
    (label, pid); CPU and RSS count each process with its children. For a
    gateway + worker, the gateway is also counted alone."""

    def __init__(self, name, url, procs):
        self.name, self.url, self.procs = name, url, procs
        self.runs = []

    def cpu(self):
        """(CPU seconds of all processes, of the gateway alone)."""
        each = {label: benchlib.tree_cpu(pid) for label, pid in self.procs}
        return sum(each.values()), each.get("gateway", 0.0)

    def has_gateway(self):
        return any(label == "gateway" for label, _ in self.procs)

    def rss(self):
        return " + ".join(f"{label} {benchlib.tree_hwm(pid):.0f}".strip()
                          for label, pid in self.procs) + " MiB"


def start_systems(data):
    """Starts every system; returns them in the order they are measured."""
    benchlib.ensure_debs({"nginx": "nginx", "varnishd": "varnish", "wrk": "wrk"})
    origin = benchlib.Nginx("origin", f"sendfile on; server {{ listen 127.0.0.1:{{port}}; root {data}; }}")
    static = benchlib.Nginx("static", f"sendfile on; server {{ listen 127.0.0.1:{{port}}; root {data}; }}")
    proxy = benchlib.Nginx("proxy-cache", f"""
    sendfile on;
    proxy_cache_path {{dir}}/cache keys_zone=img:10m max_size=256m;
    upstream origin {{ server 127.0.0.1:{origin.port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache img;
            proxy_cache_valid 200 1h;
        }}
    }}""")
    vport = benchlib.free_port()
    vdir = tempfile.mkdtemp(prefix="img-proxy-bench-varnish-")
    os.chmod(vdir, 0o755)  # varnishd drops to its own users to compile VCL
    varnish = benchlib.spawn(["varnishd", "-F", "-n", vdir, "-a", f"127.0.0.1:{vport}",
                              "-b", f"127.0.0.1:{origin.port}", "-s", "malloc,256m",
                              "-p", "default_ttl=3600"], "varnish")
    benchlib.wait_port(vport, "varnish", varnish)
    source = f"http://127.0.0.1:{origin.port}/hit.jpg"
    image = "/image?url=" + urllib.parse.quote(source, safe="")
    threads = {"IO_THREADS": IO_THREADS}
    standalone = benchlib.Node("standalone", env=threads)
    default_threads = benchlib.Node("standalone-default-threads")
    bare = benchlib.Cluster(1, gateway_env={"GATEWAY_CACHE_BYTES": "0"}, env=threads)
    cached = benchlib.Cluster(1, env=threads)
    systems = [
        System("nginx static file (sendfile, 1 worker)", static.url("/hit.jpg"), [("", static.proc.pid)]),
        System("nginx proxy_cache in front of an origin", proxy.url("/hit.jpg"), [("", proxy.proc.pid)]),
        System("varnish (malloc)", f"http://127.0.0.1:{vport}/hit.jpg", [("", varnish.pid)]),
        System(f"img-proxy standalone, IO_THREADS={IO_THREADS}", standalone.url(image),
               [("", standalone.proc.pid)]),
        System(f"img-proxy standalone, IO_THREADS default ({os.cpu_count()}, one per CPU)",
               default_threads.url(image), [("", default_threads.proc.pid)]),
    ]
    for label, c in (("GATEWAY_CACHE_BYTES=0", bare), ("gateway cache 64MiB", cached)):
        systems.append(System(f"img-proxy 1 gateway + 1 worker, IO_THREADS={IO_THREADS}, {label}",
                              c.gateway.url(image),
                              [("gateway", c.gateway.proc.pid), ("worker", c.workers[0].proc.pid)]))
    return systems


def warm(s, size):
    """A few requests until the answer is the asset and a cache hit."""
    for _ in range(5):
        u = urllib.parse.urlsplit(s.url)
        path = u.path + ("?" + u.query if u.query else "")
        status, body, headers = benchlib.get(u.hostname, u.port, path, 30)
        if status != 200 or len(body) != size:
            raise RuntimeError(f"{s.name}: {status}, {len(body)} bytes, expected {size}")
    benchlib.wrk(s.url, seconds=1)
    return headers


def measure(systems, rounds=ROUNDS, seconds=SECONDS):
    for r in range(rounds):
        for s in systems:
            cpu0, gw0 = s.cpu()
            w = benchlib.wrk(s.url, seconds=seconds)
            cpu1, gw1 = s.cpu()
            n = max(w["requests"], 1)
            s.runs.append({"rps": w["rps"], "p99": w["p99_ms"], "errors": w["errors"],
                           "cpu": (cpu1 - cpu0) / n, "gateway": (gw1 - gw0) / n})
        print(f"  round {r + 1}/{rounds} done, load {benchlib.loadavg()}", file=sys.stderr)


def ratios(s, ref, key):
    xs = [a[key] / b[key] if b[key] else float("nan") for a, b in zip(s.runs, ref.runs)]
    return benchlib.median(xs), min(xs), max(xs)


def fmt_range(m, lo, hi):
    return f"{m:.2f} ({lo:.2f}-{hi:.2f})"


def rows(systems):
    """The table rows; CPU of the gateway alone is also given against nginx
    static and against the standalone node (issue 9's goal: at most 2x)."""
    ref, standalone = systems[0], systems[3]
    out = []
    for s in systems:
        cpu = fmt_range(*ratios(s, ref, "cpu"))
        us = f"{benchlib.median([r['cpu'] for r in s.runs]) * 1e6:.0f} us"
        if s.has_gateway():
            alone = [a["gateway"] / b["cpu"] for a, b in zip(s.runs, ref.runs)]
            vs_one = [a["gateway"] / b["cpu"] for a, b in zip(s.runs, standalone.runs)]
            cpu += (f"; gateway alone {benchlib.median(alone):.2f} "
                    f"({benchlib.median(vs_one):.2f}x standalone's)")
            us += f" (gateway alone {benchlib.median([r['gateway'] for r in s.runs]) * 1e6:.0f} us)"
        out.append({
            "part": "1 cache hits",
            "system": s.name,
            "rate": f"{benchlib.median([r['rps'] for r in s.runs]):.0f} req/s",
            "ratio": fmt_range(*ratios(s, ref, "rps")),
            "latency": f"p99 {benchlib.median([r['p99'] for r in s.runs]):.1f} ms",
            "failures": str(sum(r["errors"] for r in s.runs)),
            "cpu_us": us,
            "cpu_ratio": cpu,
            "rss": s.rss(),
        })
    return out


def run():
    """Runs part 1; returns its rows for the suite's table."""
    data = tempfile.mkdtemp(prefix="img-proxy-bench-hits-")
    size = os.path.getsize(make_asset(data))
    print(f"part 1: cache hits of a {size / 1000:.1f} KB JPEG, wrk -t1 -c32 -d{SECONDS:g}s, "
          f"{ROUNDS} interleaved rounds; load {benchlib.loadavg()}", file=sys.stderr)
    systems = start_systems(data)
    try:
        for s in systems:
            h = warm(s, size)
            if "image?" in s.url and h.get("x-cache") != "HIT":
                raise RuntimeError(f"{s.name}: not a cache hit after warming: {h}")
            if "gateway cache" in s.name and h.get("x-cache-tier") != "gateway":
                raise RuntimeError(f"{s.name}: not served by the gateway cache: {h}")
        time.sleep(1)
        measure(systems)
        return rows(systems)
    finally:
        benchlib.stop_all()


if __name__ == "__main__":
    benchlib.install_cleanup()
    import suite
    suite.print_table(run())
