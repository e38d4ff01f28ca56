#!/usr/bin/env python3
"""Slow-header attack benchmark against a release build. Not a CI gate.

Issue 11's bound: with 2,000 slow-header connections (each sends half a
request, then one header line every 2 s, and reconnects whenever it is
cut) against a node limited to 1,024 descriptors, /health and cached
images answer within 100 ms. tests/edge_connections.rs checks a looser
form on a debug build; this measures the release binary over many probes
and reports the distribution, with the machine's load, the node's and
the attacker's CPU, and the node's shedding counters.

The attacker runs in its own process (asyncio), the prober in another
(one fresh connection per probe, every 50 ms, /health and a cached image
in turn), so neither delays the other.

Usage: bench/slow_headers.py [ATTACKERS] [SECONDS]   (default 2000, 30)
Env:   IMG_PROXY_BIN (default target/release/img-proxy), NOFILE (1024),
       NODE_ENV: extra NAME=VALUE,... for the node (e.g. MAX_CONNECTIONS=900)
"""

import asyncio
import os
import re
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


async def connect(port):
    """A connection without the resolver (open_connection would send each
    of 2,000 clients through getaddrinfo in a small thread pool)."""
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), 0.5)
        return await asyncio.open_connection(sock=s)
    except BaseException:
        s.close()
        raise


async def slow_client(port, until, counts):
    """Half a request, then a header line every 2 s; reconnects when cut."""
    while time.time() < until:
        try:
            r, w = await connect(port)
        except (OSError, asyncio.TimeoutError):
            counts["failed"] += 1
            await asyncio.sleep(0.01)
            continue
        counts["connects"] += 1
        try:
            w.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            while time.time() < until:
                try:
                    got = await asyncio.wait_for(r.read(64), 2)
                    if not got:
                        break
                except asyncio.TimeoutError:
                    w.write(b"X-Slow: 1\r\n")
                    await w.drain()
        except OSError:
            pass
        w.close()


def attacker_main(port, n, seconds):
    # The attacker needs a descriptor per client (and the node must not).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = {"connects": 0, "failed": 0}
    until = time.time() + seconds

    async def all_clients():
        await asyncio.gather(*(slow_client(port, until, counts) for _ in range(n)))

    asyncio.run(all_clients())
    print(f"{counts['connects']} {counts['failed']}")


def metric(text, name):
    m = re.search(r"^" + re.escape(name) + r" ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main():
    attackers = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    nofile = int(os.environ.get("NOFILE", "1024"))
    extra = dict(kv.split("=", 1) for kv in os.environ.get("NODE_ENV", "").split(",") if kv)
    photos = os.environ.get("PHOTOS", "/work/wt/photos")
    photo = sorted(f for f in os.listdir(photos) if f.endswith(".jpg"))[0]
    origin, oport = benchlib.start_origin(photos, ["127.0.0.1"])
    node = benchlib.Node("besieged", env=extra, nofile=nofile)
    try:
        run(node, oport, photo, attackers, seconds, nofile)
    finally:
        node.stop()
        origin.kill()


def run(node, oport, photo, attackers, seconds, nofile):
    from urllib.parse import quote
    hit = f"/image?url={quote(f'http://127.0.0.1:{oport}/{photo}', safe='')}&w=300"
    assert benchlib.get("127.0.0.1", node.port, hit, 60)[0] == 200
    print(f"machine: {os.cpu_count()} cores, load average {benchlib.loadavg()}; node nofile {nofile}; "
          f"binary {benchlib.binary()}")
    # Baseline without the attack, same prober.
    base = benchlib.start_prober(5, [node.url("/health"), node.url(hit)])()
    for url, r in base.items():
        print(f"  baseline {'health' if 'health' in url else 'hit'}: {benchlib.summary(r['ms'])}")
    cpu0 = benchlib.cpu_seconds(node.proc.pid)
    attacker = subprocess.Popen([sys.executable, __file__, "attack", str(node.port), str(attackers),
                                 str(seconds + 3)], stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    probes = benchlib.start_prober(seconds, [node.url("/health"), node.url(hit)])()
    load = benchlib.loadavg()
    t_attacker = benchlib.cpu_seconds(attacker.pid)
    out, _ = attacker.communicate()
    connects, failed = out.split()
    cpu = benchlib.cpu_seconds(node.proc.pid) - cpu0
    text = node.metrics()
    closed = lambda r: metric(text, f'img_proxy_client_connections_closed_total{{reason="{r}"}}')
    print(f"attack: {attackers} slow clients for {seconds:g} s: {connects} connections "
          f"({failed} connect failures); load average {load}")
    print(f"  node CPU {cpu:.1f} s, attacker CPU {t_attacker:.1f} s over {seconds + 3:g} s; "
          f"closed: shed {closed('shed'):.0f}, refused {closed('refused'):.0f}, "
          f"header_timeout {closed('header_timeout'):.0f}")
    for url, r in probes.items():
        print(f"  under attack {'health' if 'health' in url else 'hit'}: {benchlib.summary(r['ms'])}; "
              f"over 100 ms: {sum(1 for m in r['ms'] if m > 100)}; failures {len(r['failures'])} {r['failures'][:3]}")
    with open(node.log.name) as f:
        emfile = f.read().count("Too many open files")
    print(f"  'Too many open files' in the node's log: {emfile}; node alive: {node.alive()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "attack":
        attacker_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
