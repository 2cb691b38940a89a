"""Shared by the browser benchmarks (scripts/bench-browser, scripts/bench-shopper): the
repository served over HTTP, cross-origin isolated (COOP + COEP, so performance.now() has 5 us
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
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """The HTTP server and chromedriver, for a `with` block."""

    def __enter__(self):
        self.http_port, self.wd_port = free_port(), free_port()
        self.procs = [
            subprocess.Popen([sys.executable, "-c", _SERVER, str(self.http_port)],
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
