#!/usr/bin/env python3
"""The dashboard in headless Chromium against a real 1 gateway + 2 worker
cluster on loopback (see deploy/test-dashboard.sh).

Usage: dashboard_browser.py IMG_PROXY_BINARY SCREENSHOT.png

Starts an origin (Python's http.server on 127.0.0.2 serving generated
PNGs), two workers and a gateway, sends traffic through the gateway,
then loads /dashboard and checks: both workers' rows, their hash-space
and request bars drawn with a non-zero width, the members table, no
console error, no CSP violation, no request to another origin. Every
process it started is stopped at the end, pass or fail.
"""
import functools
import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

SECRET = "dashboard-test-secret-0123456789"
ORIGIN_IP = "127.0.0.2"
URLS = 30
REPEATS = 10


def png(seed, w=24, h=16):
    """A small RGB PNG whose colour depends on `seed`."""
    raw = b"".join(
        b"\x00" + bytes((seed * 37 + x) % 256 for x in range(w) for _ in range(3))
        for _ in range(h)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_origin(directory):
    for i in range(URLS):
        with open(os.path.join(directory, f"p{i}.png"), "wb") as f:
            f.write(png(i))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer((ORIGIN_IP, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_node(binary, role, name, seed, logdir, http_port, gossip_port):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_ADDR": f"127.0.0.1:{http_port}",
        "GOSSIP_ADDR": f"127.0.0.1:{gossip_port}",
        "NAME": name,
        "CLUSTER_SECRET": SECRET,
        "KNOWN_HOSTS": seed,
        "GOSSIP_INTERVAL": "200ms",
        "ALLOWED_SOURCE_NETWORKS": f"{ORIGIN_IP}/32",
        "RUST_LOG": "info",
    }
    log = open(os.path.join(logdir, f"{name}.log"), "wb")
    return subprocess.Popen([binary, role], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(base, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            status, body = get(base + "/dashboard.json", timeout=2)
            live = [w for w in json.loads(body)["workers"]]
            if status == 200 and len(live) == 2:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("FAIL: the gateway did not see two workers within 30 s")


def traffic(base, origin_port):
    for i in range(URLS):
        src = f"http://{ORIGIN_IP}:{origin_port}/p{i}.png"
        status, _ = get(base + "/image?" + urllib.parse.urlencode({"url": src}))
        assert status == 200, (src, status)
    for i in range(REPEATS):  # hits, so the hit ratios are not all zero
        src = f"http://{ORIGIN_IP}:{origin_port}/p{i}.png"
        status, _ = get(base + "/image?" + urllib.parse.urlencode({"url": src}))
        assert status == 200, (src, status)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    # Runs before the page's own script, outside its CSP.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")})
    return driver


def bar_width(driver, worker, kind):
    sel = f'svg.bar[data-worker="{worker}"][data-kind="{kind}"] rect.fill'
    found = driver.find_elements(By.CSS_SELECTOR, sel)
    return float(found[0].get_attribute("width")) if found else None


def wait_for(what, cond, limit=15):
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def check_page(driver, base, screenshot):
    driver.get(base + "/dashboard")
    wait_for("the first report", lambda: driver.find_element(
        By.TAG_NAME, "body").get_attribute("data-loaded") == "true")
    for w in ("worker-0", "worker-1"):
        wait_for(f"{w}'s row", lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-worker="{w}"]'))
        wait_for(f"{w}'s request bar", lambda: (bar_width(driver, w, "req") or 0) > 0)
        hash_w = bar_width(driver, w, "hash")
        assert hash_w and 40 < hash_w < 120, f"{w}'s hash-space bar is {hash_w} of 160 px"
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-worker="{w}"]').text
        assert "127.0.0.1:" in row, row
    for m in ("gateway-0", "worker-0", "worker-1"):
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-member="{m}"]').text
        assert "live" in row, row
    rate = driver.find_element(By.ID, "rate").text
    total = driver.find_element(By.ID, "total").text
    assert total == str(URLS + REPEATS), f"requests answered shows {total!r}"
    driver.save_screenshot(screenshot)
    print(f"test-dashboard: rows and bars for both workers, rate {rate}, screenshot {screenshot}")


def check_clean(driver, base):
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"console errors: {errors}"
    violations = driver.execute_script("return window.__csp")
    assert violations == [], f"CSP violations: {violations}"
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    foreign = [u for u in urls if not (u.startswith(base + "/") or u.startswith("data:"))]
    assert urls and not foreign, f"requests to other origins: {foreign}"


def main():
    binary, screenshot = os.path.abspath(sys.argv[1]), sys.argv[2]
    procs, driver = [], None
    with tempfile.TemporaryDirectory() as tmp:
        origin = start_origin(tmp)
        try:
            seed_gossip = free_port(socket.SOCK_DGRAM)
            seed = f"127.0.0.1:{seed_gossip}"
            gw_port = free_port()
            for i in range(2):
                gossip = seed_gossip if i == 0 else free_port(socket.SOCK_DGRAM)
                procs.append(start_node(binary, "worker", f"worker-{i}", seed, tmp, free_port(), gossip))
            procs.append(start_node(binary, "gateway", "gateway-0", seed, tmp,
                                    gw_port, free_port(socket.SOCK_DGRAM)))
            base = f"http://127.0.0.1:{gw_port}"
            wait_ready(base)
            traffic(base, origin.server_address[1])
            driver = browser()
            check_page(driver, base, screenshot)
            check_clean(driver, base)
            print("test-dashboard: 1 passed, 0 failed")
        except BaseException:
            for name in sorted(os.listdir(tmp)):
                if name.endswith(".log"):
                    sys.stderr.write(f"--- {name}\n" + open(os.path.join(tmp, name)).read()[-3000:])
            raise
        finally:
            if driver is not None:
                driver.quit()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
            origin.shutdown()


if __name__ == "__main__":
    main()
