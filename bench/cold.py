#!/usr/bin/env python3
"""Part 2 of the suite (bench/suite.py): cold thumbnails over HTTP.

Twelve real photos (bench/thumbnails.sh's: eight 2560x1600 and four
5120x2880 JPEGs) to 300 px wide JPEG q80, every request a miss: each asks
for a source URL never asked before (/n<i>/photo.jpg, which the origin, an
nginx with one worker, maps back to the photo), so every system fetches
the photo from the origin, decodes, resizes and encodes it. Two client
threads, each with a kept-alive connection, share COLD_REPEAT x 12
requests per round; rounds are interleaved over the systems. Per system:
images/s as a ratio to img-proxy standalone in the same round (median and
range; "img-proxy Nx" is the inverse), median latency, CPU per image of
the server's processes, and their peak RSS (VmHWM).

Systems: img-proxy standalone (`/image?url=...&w=300`, default q 80);
thumbor 7.8 (PIL engine, no storage, QUALITY 80, `/unsafe/300x0/...`) as
one process and as two (`--processes 2`); nginx `image_filter resize 300
-` (libgd, quality 80, one worker); libvips through pyvips in-process,
no HTTP: `thumbnail_buffer(bytes, 300)` + `jpegsave_buffer(Q=80)` from two
threads on photos already in memory (libvips' operation cache off).

Usage: bench/cold.py        (or `bench/suite.py cold`)
Env:   ROUNDS (3), COLD_REPEAT (2), IMG_PROXY_BIN
"""

import http.client
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
REPEAT = int(os.environ.get("COLD_REPEAT", "2"))
THREADS = 2
WIDTH = 300
UNIQUE = itertools.count()


def drive(port, paths):
    """GETs `paths` from 2 client threads; (seconds, latencies_ms, failures).
    An answer counts if it is a 200 JPEG (bytes FF D8)."""
    todo, lock = list(paths), threading.Lock()
    lat, failures = [], []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not todo:
                    break
                path = todo.pop()
            t0 = time.perf_counter()
            try:
                c.request("GET", path)
                r = c.getresponse()
                body = r.read()
                ok = r.status == 200 and body[:2] == b"\xff\xd8"
                miss = r.getheader("X-Cache") in (None, "MISS")
                if not (ok and miss):
                    failures.append(f"{r.status} X-Cache {r.getheader('X-Cache')} {body[:80]!r}")
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"{type(e).__name__}: {e}")
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            lat.append((time.perf_counter() - t0) * 1000)
        c.close()

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, failures


class HttpSystem:
    def __init__(self, name, port, path_for, pid):
        self.name, self.port, self.path_for, self.pid = name, port, path_for, pid
        self.runs = []

    def round(self, names):
        paths = [self.path_for(f"/n{next(UNIQUE)}/{n}") for n in names]
        cpu0 = benchlib.tree_cpu(self.pid)
        secs, lat, failures = drive(self.port, paths)
        cpu = benchlib.tree_cpu(self.pid) - cpu0
        if failures:
            raise RuntimeError(f"{self.name}: {len(failures)} failures, e.g. {failures[:3]}")
        return {"rate": len(paths) / secs, "lat": lat, "cpu": cpu / len(paths)}

    def rss(self):
        return f"{benchlib.tree_hwm(self.pid):.0f} MiB"


class VipsSystem:
    """libvips in a child process (the venv's python running this file as
    `cold.py vips ...`), which times itself and reports its own CPU and
    peak RSS."""

    name = "libvips in-process (pyvips, no HTTP)"

    def __init__(self, photos):
        self.photos, self.runs, self.hwm = photos, [], 0.0

    def round(self, names):
        out = subprocess.run([benchlib.venv_python(), os.path.abspath(__file__), "vips",
                              self.photos, *names], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"pyvips child failed: {out.stderr[-2000:]}")
        r = json.loads(out.stdout)
        self.hwm = max(self.hwm, r["hwm"])
        return {"rate": len(names) / r["seconds"], "lat": r["lat"], "cpu": r["cpu"] / len(names)}

    def rss(self):
        return f"{self.hwm:.0f} MiB (python + libvips)"


def vips_child(photos, names):
    import pyvips
    pyvips.cache_set_max(0)
    data = {n: open(os.path.join(photos, n), "rb").read() for n in set(names)}
    todo, lock, lat = list(names), threading.Lock(), []

    def work():
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop()
            t0 = time.perf_counter()
            # Every photo is landscape, so a 300 px box is 300 px wide.
            out = pyvips.Image.thumbnail_buffer(data[n], WIDTH).jpegsave_buffer(Q=80)
            assert out[:2] == b"\xff\xd8"
            lat.append((time.perf_counter() - t0) * 1000)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"seconds": secs, "cpu": cpu, "lat": lat, "hwm": cpu1.ru_maxrss / 1024}))


def thumbor(venv_bin, origin_port, processes):
    port = benchlib.free_port()
    conf = tempfile.NamedTemporaryFile("w", prefix="img-proxy-bench-thumbor-", suffix=".conf", delete=False)
    conf.write("STORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\n"
               "QUALITY = 80\nALLOW_UNSAFE_URL = True\n")
    conf.close()
    p = benchlib.spawn([os.path.join(venv_bin, "thumbor"), "-i", "127.0.0.1", "-p", str(port),
                        "-c", conf.name, "-l", "error", "--processes", str(processes)],
                       f"thumbor-{processes}")
    benchlib.wait_port(port, "thumbor", p)
    name = f"thumbor 7.8 (PIL), {processes} process{'es' if processes > 1 else ''}"
    return HttpSystem(name, port, lambda path: f"/unsafe/{WIDTH}x0/127.0.0.1:{origin_port}{path}", p.pid)


def start_systems(photos):
    benchlib.ensure_debs({"nginx": "nginx",
                          benchlib.Nginx.IMAGE_FILTER: "libnginx-mod-http-image-filter"})
    venv_bin = os.path.dirname(benchlib.venv_python())
    unique = r"rewrite ^/n\d+/(.*)$ /$1 break;"
    origin = benchlib.Nginx("cold-origin", f"sendfile on; server {{ listen 127.0.0.1:{{port}}; "
                            f"location / {{ {unique} root {photos}; }} }}")
    node = benchlib.Node("cold")
    quote = lambda s: urllib.parse.quote(s, safe="")
    ours = HttpSystem("img-proxy standalone", node.port,
                      lambda path: f"/image?url={quote(f'http://127.0.0.1:{origin.port}{path}')}&w={WIDTH}",
                      node.proc.pid)
    nginx = benchlib.Nginx("image-filter", f"""
    image_filter_buffer 32M;
    image_filter_jpeg_quality 80;
    server {{ listen 127.0.0.1:{{port}};
        location / {{ {unique} root {photos}; image_filter resize {WIDTH} -; }} }}""",
                           modules=[benchlib.Nginx.IMAGE_FILTER])
    return [ours, thumbor(venv_bin, origin.port, 1), thumbor(venv_bin, origin.port, 2),
            HttpSystem("nginx image_filter (libgd, 1 worker)", nginx.port, lambda p: p, nginx.proc.pid),
            VipsSystem(photos)]


def rows(systems):
    ref = systems[0]
    out = []
    for s in systems:
        rate = [a["rate"] / b["rate"] for a, b in zip(s.runs, ref.runs)]
        cpu = [a["cpu"] / b["cpu"] for a, b in zip(s.runs, ref.runs)]
        m = benchlib.median(rate)
        ratio = f"{m:.2f} ({min(rate):.2f}-{max(rate):.2f})"
        if s is not ref:
            ratio += f"; img-proxy {1 / m:.2f}x"
        lat = sorted(x for r in s.runs for x in r["lat"])
        out.append({
            "part": "2 cold thumbnails",
            "system": s.name,
            "rate": f"{benchlib.median([r['rate'] for r in s.runs]):.1f} img/s",
            "ratio": ratio,
            "latency": f"median {benchlib.median(lat):.0f} ms",
            "cpu_us": f"{benchlib.median([r['cpu'] for r in s.runs]) * 1e3:.1f} ms",
            "cpu_ratio": f"{benchlib.median(cpu):.2f}",
            "failures": "0",  # a round with a failure stops the run
            "rss": s.rss(),
        })
    return out


def run():
    """Runs part 2; returns its rows for the suite's table."""
    photos = benchlib.photos()
    names = sorted(f for f in os.listdir(photos) if f.endswith(".jpg"))[:12]
    print(f"part 2: cold thumbnails, {len(names)} photos x {REPEAT} per round, {THREADS} client "
          f"threads, {ROUNDS} interleaved rounds; load {benchlib.loadavg()}", file=sys.stderr)
    systems = start_systems(photos)
    try:
        for s in systems:
            s.round(names)  # warm-up: imports, first connections, page cache
        for r in range(ROUNDS):
            for s in systems:
                s.runs.append(s.round(names * REPEAT))
            print(f"  round {r + 1}/{ROUNDS} done, load {benchlib.loadavg()}", file=sys.stderr)
        return rows(systems)
    finally:
        benchlib.stop_all()


if __name__ == "__main__":
    if sys.argv[1:2] == ["vips"]:
        vips_child(sys.argv[2], sys.argv[3:])
    else:
        benchlib.install_cleanup()
        import suite
        suite.print_table(run())
