"""Shared parts of the load benchmarks (bench/overload.py,
bench/slow_headers.py): a node process with a descriptor limit, a local
origin, a peak-RSS sampler and a latency prober that runs in its own
process so that the load generator's work never delays a probe.

Run as a script, it is one of the helper processes:
  benchlib.py origin DIR PORT ADDR...        serve DIR on ADDR:PORT, quietly
  benchlib.py probe OUT SECONDS URL...       probe the URLs in turn, one
                                             fresh connection each, every
                                             50 ms; latencies to OUT (JSON)
"""

import http.client
import http.server
import json
import os
import resource
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def binary():
    """The release binary: IMG_PROXY_BIN, or target/release/img-proxy."""
    b = os.environ.get("IMG_PROXY_BIN") or os.path.join(ROOT, "target/release/img-proxy")
    if not os.access(b, os.X_OK):
        sys.exit(f"no release binary at {b}: build one (cargo build --release) or set IMG_PROXY_BIN")
    return b


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A standalone node on loopback, optionally limited to `nofile`
    descriptors (as `ulimit -n` would)."""

    def __init__(self, name, env=None, nofile=None):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"img-proxy-bench-{name}-", suffix=".log", delete=False)
        e = {
            "PATH": os.environ.get("PATH", ""),
            "HTTP_ADDR": f"127.0.0.1:{self.port}",
            "GOSSIP_ADDR": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
            "NAME": name,
            "ALLOWED_SOURCE_NETWORKS": "127.0.0.0/8",
            "RUST_LOG": "warn",
        }
        e.update(env or {})

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([binary()], env=e, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=limit)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if get("127.0.0.1", self.port, "/health", 1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit(f"node {name} did not come up; log: {self.log.name}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def alive(self):
        return self.proc.poll() is None

    def metrics(self):
        status, body, _ = get("127.0.0.1", self.port, "/metrics", 5)
        return body.decode() if status == 200 else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def get(host, port, path, timeout):
    """GET on a fresh connection: (status, body, headers)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read()
        return r.status, body, dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        c.close()


class RssSampler(threading.Thread):
    """Samples a process's resident set every 50 ms; `peak` in MiB (also
    checked against the kernel's own high-water mark, VmHWM)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def field(self, name):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(name + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.field("VmRSS"))
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.join()
        return max(self.peak, self.field("VmHWM"))


def cpu_seconds(pid):
    """User + system CPU seconds of a process (and its reaped children)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tick


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def summary(ms):
    """median / p95 / p99 / worst of a list of milliseconds."""
    if not ms:
        return "no samples"
    s = sorted(ms)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return (f"n={len(s)} median {statistics.median(s):.1f} ms, p95 {pick(0.95):.1f} ms, "
            f"p99 {pick(0.99):.1f} ms, worst {s[-1]:.1f} ms")


def start_prober(seconds, urls):
    """Starts the prober process; `finish()` returns {url: (latencies_ms, failures)}."""
    out = tempfile.NamedTemporaryFile(prefix="img-proxy-probe-", suffix=".json", delete=False).name
    p = subprocess.Popen([sys.executable, __file__, "probe", out, str(seconds), *urls])

    def finish():
        p.wait()
        with open(out) as f:
            data = json.load(f)
        os.unlink(out)
        return data

    return finish


def probe_main(out, seconds, urls):
    """Probes `urls` in turn until `seconds` pass. A probe fails if it is
    not a 200 (and, for /image, an X-Cache HIT) within 5 s."""
    results = {u: {"ms": [], "failures": []} for u in urls}
    until = time.time() + float(seconds)
    i = 0
    while time.time() < until:
        u = urls[i % len(urls)]
        i += 1
        p = urllib.parse.urlsplit(u)
        path = p.path + ("?" + p.query if p.query else "")
        t0 = time.perf_counter()
        try:
            status, _, headers = get(p.hostname, p.port, path, 5)
            ms = (time.perf_counter() - t0) * 1000
            ok = status == 200 and (not p.path.startswith("/image") or headers.get("x-cache") == "HIT")
            if ok:
                results[u]["ms"].append(ms)
            else:
                results[u]["failures"].append(f"{status} {headers.get('x-cache')} after {ms:.0f} ms")
        except OSError as e:
            results[u]["failures"].append(f"{type(e).__name__}: {e}")
        time.sleep(0.05)
    with open(out, "w") as f:
        json.dump(results, f)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def origin_main(directory, port, addrs):
    """Serves `directory` on every ADDR:PORT (query strings are ignored,
    so `?n=1` makes a new cache key for the same photo)."""

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    handler = lambda *a, **k: QuietHandler(*a, directory=directory, **k)
    servers = [Server((a, int(port)), handler) for a in addrs]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


def start_origin(directory, addrs):
    """A local origin serving `directory` on `addrs` (loopback addresses,
    one origin host each); returns (process, port)."""
    port = free_port()
    p = subprocess.Popen([sys.executable, __file__, "origin", directory, str(port), *addrs])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection((addrs[-1], port), 1).close()
            return p, port
        except OSError:
            time.sleep(0.1)
    p.kill()
    sys.exit("origin did not come up")


if __name__ == "__main__":
    if sys.argv[1] == "origin":
        origin_main(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "probe":
        probe_main(sys.argv[2], sys.argv[3], sys.argv[4:])
