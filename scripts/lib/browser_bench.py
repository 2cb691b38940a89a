"""Shared by the browser benchmarks (scripts/bench-browser, scripts/bench-shopper): the
repository served over HTTP (gzip, as a CDN serves it), cross-origin isolated (COOP + COEP, so performance.now() has 5 us
resolution, not 100 us), and headless Chromium driven through chromedriver with the WebDriver
protocol (python3 stdlib only). Each `Browser.page` call is a new WebDriver session, that is a
fresh browser profile: nothing cached, nothing compiled."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

_SERVER = """
import gzip, http.server, os, sys, time
RTT_S = float(sys.argv[2]) / 1000
# Text and wasm go out gzip-compressed (compressed once per file and kept), as a CDN or the
# sessionrank server sends them: a page is timed on the bytes a shopper downloads, not on
# this Python server copying 3.5 MB of uncompressed wasm.
COMPRESSIBLE = (".wasm", ".js", ".json", ".html", ".css", ".svg")
CACHE = {}
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()
    def do_GET(self):
        # A network's round trip before every answer (Browser(rtt_ms=...)); 0: localhost.
        if RTT_S > 0:
            time.sleep(RTT_S)
        path = self.translate_path(self.path)
        gz = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (gz and path.endswith(COMPRESSIBLE) and os.path.isfile(path)):
            return super().do_GET()
        key = (path, os.stat(path).st_mtime_ns)
        if key not in CACHE:
            with open(path, "rb") as f:
                CACHE[key] = gzip.compress(f.read(), 6)
        body = CACHE[key]
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
# The package compressed before the first page (a CDN's copy is compressed already).
for root, _, names in os.walk("web/pkg"):
    for n in names:
        p = os.path.abspath(os.path.join(root, n))
        if p.endswith(COMPRESSIBLE):
            with open(p, "rb") as f:
                CACHE[(p, os.stat(p).st_mtime_ns)] = gzip.compress(f.read(), 6)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """The HTTP server and chromedriver, for a `with` block."""

    def __init__(self, rtt_ms=0):
        # Every HTTP answer waits this long first: a CDN's round trip (0 = localhost).
        self.rtt_ms = rtt_ms

    def __enter__(self):
        self.http_port, self.wd_port = free_port(), free_port()
        self.procs = [
            subprocess.Popen([sys.executable, "-c", _SERVER, str(self.http_port), str(self.rtt_ms)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen(["/usr/bin/chromedriver", f"--port={self.wd_port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        time.sleep(1.5)
        self.caps = json.load(open("crates/wasm/webdriver.json"))
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()

    def wd(self, method, path, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.wd_port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.load(r)["value"]

    def page(self, path, seconds):
        """Open `path` (from the repository root) in a fresh profile and wait up to `seconds`
        for `window.benchResult`; returns (result or None, the browser's user agent)."""
        caps = {"browserName": "chrome", **self.caps}
        session = self.wd("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        try:
            url = f"http://127.0.0.1:{self.http_port}{path}"
            self.wd("POST", f"/session/{session}/url", {"url": url})
            deadline, result = time.time() + seconds, None
            script = {"script": "return window.benchResult ?? null", "args": []}
            while result is None and time.time() < deadline:
                time.sleep(1)
                result = self.wd("POST", f"/session/{session}/execute/sync", script)
            agent = self.wd("POST", f"/session/{session}/execute/sync",
                            {"script": "return navigator.userAgent", "args": []})
            return result, agent
        finally:
            self.wd("DELETE", f"/session/{session}")
