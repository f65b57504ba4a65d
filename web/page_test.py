#!/usr/bin/env python3
"""Loads the page (web/index.html, built by web/build.sh) in headless Chromium through
chromedriver, lets it train and run the trained model (?autorun=1), and checks that the loss
fell below the task's persistence baseline and that the GPU output is within tolerance of the
CPU path's. Prints the page's figures as JSON; --screenshot PATH saves the page as PNG.

Only the standard library: the W3C WebDriver protocol over HTTP to chromedriver, and a static
file server on 127.0.0.1 in a thread."""

import argparse
import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

WEB = os.path.dirname(os.path.abspath(__file__))
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1040,1420",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript"}

    def log_message(self, *args):
        pass


def webdriver(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["value"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", help="save the finished page here (PNG)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the page")
    parser.add_argument("--chromedriver", default=os.environ.get("CHROMEDRIVER", "chromedriver"))
    args = parser.parse_args()

    if not os.path.exists(os.path.join(WEB, "pkg", "lstm_wgpu_web.js")):
        sys.exit("error: web/pkg/lstm_wgpu_web.js is missing: run `bash web/build.sh` first")
    server = serve(WEB)
    port = free_port()
    driver = subprocess.Popen([args.chromedriver, f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="lstm-wgpu-page-")
    session = None
    try:
        for _ in range(100):
            try:
                webdriver(port, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": CHROME_ARGS + [f"--user-data-dir={profile}"]}}}}
        session = webdriver(port, "POST", "/session", caps)["sessionId"]
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html?autorun=1"
        webdriver(port, "POST", f"/session/{session}/url", {"url": url})
        deadline = time.time() + args.timeout
        result = None
        while time.time() < deadline:
            result = webdriver(port, "POST", f"/session/{session}/execute/sync",
                               {"script": "return window.pageResult || null", "args": []})
            if result:
                break
            time.sleep(1)
        if args.screenshot and result:
            png = base64.b64decode(webdriver(port, "GET", f"/session/{session}/screenshot"))
            tmp = args.screenshot + ".part"
            with open(tmp, "wb") as f:
                f.write(png)
            os.replace(tmp, args.screenshot)
    finally:
        if session:
            try:
                webdriver(port, "DELETE", f"/session/{session}")
            except OSError:
                pass
        driver.terminate()
        server.shutdown()

    if not result:
        sys.exit(f"error: the page left no result within {args.timeout:.0f} s")
    print(json.dumps(result, indent=1))
    problems = []
    if "error" in result:
        problems.append(result["error"])
    else:
        if not result["lastLoss"] < 0.5 * result["baseline"]:
            problems.append(f"loss {result['lastLoss']} is not below half the persistence "
                            f"baseline {result['baseline']}")
        if not result["lastLoss"] < result["firstLoss"]:
            problems.append(f"loss did not fall: {result['firstLoss']} -> {result['lastLoss']}")
        if not result["withinTolerance"]:
            problems.append(f"GPU vs CPU difference {result['maxAbsDifference']} is outside "
                            "the tolerance")
        if result["backend"] != "BrowserWebGpu":
            problems.append(f"backend {result['backend']}, not the browser's WebGPU")
    if problems:
        sys.exit("error: " + "; ".join(problems))
    print("page: ok")


if __name__ == "__main__":
    main()
