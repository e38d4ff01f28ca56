#!/usr/bin/env python3
"""The frozen-worker bound of issue 9, on a release build: 1 gateway + 3
workers on loopback (no gateway cache), 30 cached images, 6 client threads
asking for them in turn; after a 2 s baseline one worker (not the gossip
seed) is frozen with SIGSTOP for 6 s under the same load. Prints the slowest
request before and during the freeze, failures, a per-second timeline, and
which workers the gateway ejected (a healthy worker must not be).

  bench/frozen_worker.py [ROUNDS]     (IMG_PROXY_BIN: target/release/img-proxy)
"""

import http.client
import os
import re
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
THREADS = 6
URLS = 30


def start(name, role, env):
    gp = benchlib.free_port(benchlib.socket.SOCK_DGRAM)
    hp = benchlib.free_port()
    e = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_ADDR": f"127.0.0.1:{hp}",
        "GOSSIP_ADDR": f"127.0.0.1:{gp}",
        "NAME": name,
        "ALLOWED_SOURCE_NETWORKS": "127.0.0.0/8",
        "CLUSTER_SECRET": SECRET,
        "GOSSIP_INTERVAL": "200ms",
        "GATEWAY_CACHE_BYTES": "0",
        "RUST_LOG": "warn",
    }
    e.update(env)
    log = open(f"/tmp/frozen-worker-{name}.log", "w")
    import subprocess
    p = subprocess.Popen([benchlib.binary(), role], env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=log)
    return p, hp, gp, log.name


def get(conn_box, port, path):
    """One GET on the thread's keep-alive connection: (status, served_by)."""
    for attempt in range(2):
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn_box[0].request("GET", path)
            r = conn_box[0].getresponse()
            r.read()
            return r.status, r.getheader("x-served-by") or ""
        except (OSError, http.client.HTTPException):
            conn_box[0].close()
            conn_box[0] = None
            if attempt == 1:
                return 0, ""
    return 0, ""


def load(port, paths, seconds):
    """THREADS clients for `seconds`: list of (start, took, status, by)."""
    out = []
    lock = threading.Lock()
    t0 = time.time()

    def run(t):
        box = [None]
        i = t
        mine = []
        while time.time() - t0 < seconds:
            s = time.time()
            status, by = get(box, port, paths[i % len(paths)])
            mine.append((s - t0, time.time() - s, status, by))
            i += 7
        with lock:
            out.extend(mine)

    ts = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def one_round(origin_port):
    procs = []
    w0 = start("worker-0", "worker", {})
    seed = f"127.0.0.1:{w0[2]}"
    procs.append(w0)
    for i in (1, 2):
        procs.append(start(f"worker-{i}", "worker", {"KNOWN_HOSTS": seed}))
    gw = start("gateway", "gateway", {"KNOWN_HOSTS": seed})
    procs.append(gw)
    port = gw[1]
    try:
        paths = [
            "/image?url=" + urllib.parse.quote(f"http://127.0.0.2:{origin_port}/photo.jpg?n={i}", safe="")
            for i in range(URLS)
        ]
        deadline = time.time() + 60
        owners = {}
        box = [None]
        while time.time() < deadline:
            owners = {p: get(box, port, p)[1] for p in paths}
            if len(set(owners.values())) == 3 and all(owners.values()):
                break
            time.sleep(0.5)
        else:
            sys.exit(f"cluster did not form: {set(owners.values())}")
        base = load(port, paths, 2)
        victim_name = "worker-1"
        victim = procs[1][0]
        victim.send_signal(signal.SIGSTOP)
        try:
            frozen = load(port, paths, 6)
        finally:
            victim.send_signal(signal.SIGCONT)
        status, body, _ = benchlib.get("127.0.0.1", port, "/metrics", 5)
        metrics = body.decode()
        with open(gw[3]) as f:
            ejected = re.findall(r"worker ejected worker=(\S+)", f.read())
        return base, frozen, victim_name, metrics, ejected
    finally:
        for p, *_ in procs:
            p.send_signal(signal.SIGCONT)
            p.terminate()
        for p, *_ in procs:
            p.wait(10)


def metric(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    d = "/tmp/frozen-worker-origin"
    os.makedirs(d, exist_ok=True)
    photo = os.path.join(d, "photo.jpg")
    if not os.path.exists(photo):
        root = benchlib.ROOT
        import subprocess
        subprocess.run([benchlib.binary(), "transform", "-W", "900", "-q", "92", "-o", photo,
                        os.path.join(root, "docs/smart-crop/onestandsout-whole.jpg")], check=True)
    origin, oport = benchlib.start_origin(d, ["127.0.0.2"])
    try:
        for r in range(rounds):
            base, frozen, victim, metrics, ejected = one_round(oport)
            worst_base = max(t for _, t, _, _ in base)
            worst = max(t for _, t, _, _ in frozen)
            failed = sum(1 for *_, s, _ in frozen if s != 200)
            by_victim = sum(1 for *_, b in frozen if b == victim)
            slow = sorted(frozen, key=lambda x: -x[1])[:5]
            print(f"round {r + 1}: baseline {len(base)} requests, slowest {worst_base * 1000:.0f} ms; "
                  f"frozen {victim} 6 s: {len(frozen)} requests, slowest {worst * 1000:.0f} ms, "
                  f"failed {failed}, answered by the frozen worker {by_victim}; "
                  f"hedges {metric(metrics, 'img_proxy_gateway_hedges_total'):.0f}, "
                  f"ejected {ejected}; load {benchlib.loadavg()}")
            print("  slowest (start s, ms, status, by): "
                  + ", ".join(f"({s:.2f}, {t * 1000:.0f}, {st}, {b})" for s, t, st, b in slow))
            timeline = []
            for sec in range(6):
                in_sec = [t for s, t, _, _ in frozen if sec <= s < sec + 1]
                timeline.append(f"{sec}s: {len(in_sec)} req, max {max(in_sec, default=0) * 1000:.0f} ms")
            print("  timeline: " + "; ".join(timeline))
    finally:
        origin.kill()


if __name__ == "__main__":
    main()
