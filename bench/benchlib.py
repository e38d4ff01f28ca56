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

import atexit
import http.client
import http.server
import json
import os
import resource
import shutil
import signal
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
    """A node on loopback: standalone (`role` None), "gateway" or "worker";
    optionally limited to `nofile` descriptors (as `ulimit -n` would). It
    is registered for clean-up (see `spawn`)."""

    def __init__(self, name, env=None, nofile=None, role=None, gossip_port=None):
        self.name = name
        self.port = free_port()
        self.gossip_port = gossip_port or free_port(socket.SOCK_DGRAM)
        self.log = tempfile.NamedTemporaryFile(prefix=f"img-proxy-bench-{name}-", suffix=".log", delete=False)
        e = {
            "PATH": os.environ.get("PATH", ""),
            "HTTP_ADDR": f"127.0.0.1:{self.port}",
            "GOSSIP_ADDR": f"127.0.0.1:{self.gossip_port}",
            "NAME": name,
            "ALLOWED_SOURCE_NETWORKS": "127.0.0.0/8",
            "RUST_LOG": "warn",
        }
        e.update(env or {})

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([binary()] + ([role] if role else []), env=e,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=limit, start_new_session=True)
        _RUNNING.append(self.proc)
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

    def health(self):
        status, body, _ = get("127.0.0.1", self.port, "/health", 5)
        return json.loads(body) if status == 200 else {}

    def stop(self):
        stop(self.proc)


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


# --- processes: every one started is stopped, also on Ctrl-C ---------------

_RUNNING = []


def spawn(cmd, name, env=None, cwd=None):
    """Starts `cmd` in its own process group (so that its children, e.g.
    nginx's workers or thumbor's forks, are stopped with it), stderr and
    stdout to a log file; registered for `stop_all`."""
    log = tempfile.NamedTemporaryFile(prefix=f"img-proxy-bench-{name}-", suffix=".log", delete=False)
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    p.log = log.name
    _RUNNING.append(p)
    return p


def stop(p):
    """SIGCONT (a frozen process cannot act on SIGTERM), SIGTERM to its
    whole group, SIGKILL after 10 s."""
    if p.poll() is not None:
        return
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def stop_all():
    while _RUNNING:
        stop(_RUNNING.pop())


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def install_cleanup():
    """Ctrl-C, SIGTERM and SIGHUP unwind the script (finally blocks run),
    and whatever was started is stopped at exit in any case."""
    atexit.register(stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def wait_port(port, what, proc=None, within=30):
    deadline = time.time() + within
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    log = getattr(proc, "log", None)
    tail = open(log).read()[-2000:] if log else ""
    raise RuntimeError(f"{what} did not come up on port {port}\n{tail}")


# --- per-process accounting --------------------------------------------------

def tree(pid):
    """`pid` and all its descendants (from /proc, at the time of the call)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def tree_cpu(pid):
    """CPU seconds (utime + stime) of a process and its live descendants."""
    total = 0.0
    for p in tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def tree_hwm(pid):
    """Peak resident set (VmHWM) in MiB, summed over a process and its live
    descendants (each process's own peak, so an upper bound of the whole's)."""
    return sum(RssSampler(p).field("VmHWM") for p in tree(pid))


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --- peers: installed from Debian and PyPI on first use ----------------------

def ensure_debs(commands):
    """`commands` maps a file that must exist (a command on PATH or an
    absolute path) to the Debian package that provides it."""
    missing = sorted({pkg for f, pkg in commands.items()
                      if not (os.path.exists(f) if f.startswith("/") else shutil.which(f))})
    if not missing:
        return
    print(f"installing {' '.join(missing)} (apt-get) ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run = lambda: subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                                 env=env, stdout=subprocess.DEVNULL).returncode
    if run() != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=True)
        if run() != 0:
            sys.exit(f"could not install {missing}")


VENV = os.path.join(ROOT, "target", "bench-venv")
PYPI = ["thumbor==7.8.0", "pyvips[binary]==3.2.0"]


def venv_python():
    """A virtualenv under target/ with thumbor and pyvips (with libvips
    from its binary wheel), so the system's site-packages stay untouched."""
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, "bin", "thumbor")) or subprocess.run(
            [py, "-c", "import pyvips"], capture_output=True).returncode != 0:
        print(f"installing {' '.join(PYPI)} into {VENV} (pip) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *PYPI], check=True)
    return py


# --- photos --------------------------------------------------------------------

def photos():
    """The dozen real photos bench/thumbnails.sh uses (Debian's
    plasma-workspace-wallpapers: eight 2560x1600 and four 5120x2880
    JPEGs), fetched once into BENCH_CACHE (~/.cache/img-proxy-bench)."""
    cache = os.environ.get("BENCH_CACHE") or os.path.expanduser("~/.cache/img-proxy-bench")
    out = os.path.join(cache, "photos")
    if os.path.isdir(out) and len([f for f in os.listdir(out) if f.endswith(".jpg")]) >= 12:
        return out
    print("fetching plasma-workspace-wallpapers (apt-get download) ...", file=sys.stderr)
    os.makedirs(cache, exist_ok=True)
    for f in os.listdir(cache):
        if f.startswith("plasma-workspace-wallpapers_"):
            os.unlink(os.path.join(cache, f))
    subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=cache,
                   check=True, stdout=subprocess.DEVNULL)
    deb = [f for f in os.listdir(cache) if f.startswith("plasma-workspace-wallpapers_")][0]
    pkg = os.path.join(cache, "pkg")
    shutil.rmtree(pkg, ignore_errors=True)
    subprocess.run(["dpkg", "-x", os.path.join(cache, deb), pkg], check=True)
    os.makedirs(out, exist_ok=True)
    for size, n in (("2560x1600", 8), ("5120x2880", 4)):
        found = sorted(os.path.join(d, f) for d, _, fs in os.walk(pkg) for f in fs
                       if f == f"{size}.jpg" and d.endswith("/images"))
        for f in found[:n]:
            name = f.split("/")[-4]
            shutil.copy(f, os.path.join(out, f"{name}_{size}.jpg"))
    return out


# --- nginx, wrk, clusters --------------------------------------------------------

class Nginx:
    """nginx in the foreground with one worker and its own prefix directory;
    `http` is the body of its http {} block, `{port}` filled in."""

    IMAGE_FILTER = "/usr/lib/nginx/modules/ngx_http_image_filter_module.so"

    def __init__(self, name, http, modules=()):
        ensure_debs({"nginx": "nginx"})
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"img-proxy-bench-{name}-")
        conf = "\n".join(f"load_module {m};" for m in modules) + f"""
worker_processes 1;
{'user root;' if os.geteuid() == 0 else ''}
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    default_type application/octet-stream;
    types {{ image/jpeg jpg; }}
    keepalive_requests 1000000;
    {http.replace('{port}', str(self.port)).replace('{dir}', self.dir)}
}}
"""
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = spawn(["nginx", "-p", self.dir, "-c", path, "-g", "daemon off;"], name)
        wait_port(self.port, f"nginx {name}", self.proc)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def wrk(url, seconds=5, conns=32, threads=1):
    """One wrk run: {'rps', 'p99_ms', 'requests', 'errors'}."""
    ensure_debs({"wrk": "wrk"})
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
    r = {"errors": 0}
    for line in out.splitlines():
        w = line.split()
        if w[:1] == ["99%"]:
            v = w[1]
            num = v.rstrip("usm")
            r["p99_ms"] = float(num) * unit[v[len(num):]]
        elif w[:1] == ["Requests/sec:"]:
            r["rps"] = float(w[1])
        elif len(w) > 4 and w[1:3] == ["requests", "in"]:
            r["requests"] = int(w[0])
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            r["errors"] += sum(int(x.strip(",")) for x in w if x.strip(",").isdigit())
    if "rps" not in r:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return r


SECRET = "img-proxy-bench-cluster-secret"


class Cluster:
    """One gateway and `workers` workers on loopback, the first worker
    being the gossip seed; waits until the gateway sees every worker."""

    def __init__(self, workers, gateway_env=None, env=None):
        seed = free_port(socket.SOCK_DGRAM)
        common = {"CLUSTER_SECRET": SECRET, "KNOWN_HOSTS": f"127.0.0.1:{seed}"}
        common.update(env or {})
        self.workers = [Node(f"worker-{i}", env=common, role="worker",
                             gossip_port=seed if i == 0 else None) for i in range(workers)]
        self.gateway = Node("gateway", env={**common, **(gateway_env or {})}, role="gateway")
        want = sorted(w.name for w in self.workers)
        deadline = time.time() + 30
        while time.time() < deadline:
            seen = sorted(m["name"] for m in self.gateway.health().get("members", [])
                          if m.get("role") == "worker")
            if seen == want:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the gateway sees {seen}, not {want}")

    def nodes(self):
        return [self.gateway, *self.workers]

    def stop(self):
        for n in self.nodes():
            n.stop()


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
