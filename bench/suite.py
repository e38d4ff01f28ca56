#!/usr/bin/env python3
"""The benchmark suite (issue 9): img-proxy side by side with what users
run instead, on loopback, one table of ratios from one run.

Parts (each also runs on its own as bench/<part>.py):
  hits    cache hits of a ~44 KB JPEG: nginx static file = 1.00, nginx
          proxy_cache, varnish, img-proxy standalone, 1 gateway + 1 worker
          without and with the gateway cache (bench/hits.py)
  cold    cold thumbnails over HTTP, 12 real photos to 300 px JPEG, every
          request a miss: img-proxy standalone = 1.00, thumbor (one and two
          processes), nginx image_filter, libvips in-process through pyvips
          (bench/cold.py)
  frozen  1 gateway + 3 workers under load, one worker frozen (SIGSTOP)
          for 6 s: latency and failures, per second (bench/frozen.py)
Peak RSS (VmHWM) of every system is a column of the table.

Peers are installed on first use: nginx, varnish, wrk and
libnginx-mod-http-image-filter from Debian (apt-get), thumbor and pyvips
(with libvips from its binary wheel) from PyPI into target/bench-venv; the
photos are Debian's plasma-workspace-wallpapers (apt-get download).

Usage: bench/suite.py [PART ...]          (default: hits cold frozen)
Env:   IMG_PROXY_BIN (default target/release/img-proxy), ROUNDS (3; the
       interleaved rounds of hits and cold), and each part's own settings
       (see its file). The table is also written to target/bench-out/.
Every process a run starts is stopped at its end, also on Ctrl-C.
"""

import datetime
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

PARTS = ("hits", "cold", "frozen")
COLUMNS = [("part", "part"), ("system", "system"), ("rate", "rate"),
           ("ratio", "rate vs part's reference"), ("latency", "latency"),
           ("failures", "failures"), ("cpu_us", "CPU per request"),
           ("cpu_ratio", "CPU/request vs reference"), ("rss", "peak RSS (VmHWM)")]


def print_table(rows, out=sys.stdout):
    print("| " + " | ".join(h for _, h in COLUMNS) + " |", file=out)
    print("|" + "---|" * len(COLUMNS), file=out)
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k, _ in COLUMNS) + " |", file=out)


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.machine())
    try:
        version = subprocess.run([benchlib.binary(), "--version"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "?"
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}; "
            f"binary {benchlib.binary()} ({version}); "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(parts):
    benchlib.install_cleanup()
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; parts: {' '.join(PARTS)}")
    header = [f"machine: {machine()}"]
    rows, extra = [], []
    for part in parts:
        header.append(f"{part}: before: {uptime()}")
        print(f"--- {part} ({header[-1]})", file=sys.stderr)
        if part == "hits":
            import hits
            rows += hits.run()
        elif part == "cold":
            import cold
            rows += cold.run()
        else:
            import frozen
            r, timeline = frozen.run()
            rows += r
            extra.append(timeline)
        header.append(f"{part}: after: {uptime()}")
    os.makedirs(os.path.join(benchlib.ROOT, "target", "bench-out"), exist_ok=True)
    path = os.path.join(benchlib.ROOT, "target", "bench-out",
                        f"suite-{datetime.datetime.now():%Y%m%d-%H%M%S}.md")
    with open(path, "w") as f:
        for out in (sys.stdout, f):
            print("\n".join(header) + "\n", file=out)
            print_table(rows, out)
            for t in extra:
                print("\n" + t, file=out)
    print(f"\n(written to {path})", file=sys.stderr)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:]]
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        sys.exit(0)
    main(args or list(PARTS))
