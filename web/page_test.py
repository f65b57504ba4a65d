#!/usr/bin/env python3
"""Loads the page (web/index.html, built by web/build.sh) in headless Chromium through
chromedriver, lets it train and run the trained model (?autorun=1), and checks that the loss
fell below the task's persistence baseline and that the GPU output is within tolerance of the
CPU path's; then chooses a PyTorch-made `.safetensors` file in the page's file input (--model,
tests/fixtures/cli/bf_model.safetensors by default), runs it, and checks that result too. Prints the page's
figures as JSON; --screenshot PATH saves the finished page as PNG.

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
FIXTURE = os.path.join(WEB, "..", "tests", "fixtures", "cli", "bf_model.safetensors")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key
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


def run_user_model(port, session, model, deadline):
    """Chooses `model` in the file input and runs it twice: on the page's random input, then
    on a pasted one (T=2, B=1: 2 × 1 × input_size numbers). Returns what the page reports."""
    def script(js, *args):
        return webdriver(port, "POST", f"/session/{session}/execute/sync",
                         {"script": js, "args": list(args)})

    def run():
        script("window.lastRun = null; document.getElementById('run').click()")
        while time.time() < deadline:
            ran = script("return window.lastRun || window.pageResult.error || null")
            if ran:
                return ran
            time.sleep(0.5)
        return {"error": f"no result for {model}"}

    found = webdriver(port, "POST", f"/session/{session}/element",
                      {"using": "css selector", "value": "#file"})
    webdriver(port, "POST", f"/session/{session}/element/{found[ELEMENT]}/value",
              {"text": model})
    while time.time() < deadline and script("return document.getElementById('run').disabled"):
        time.sleep(0.2)
    random_input = run()
    if "error" in random_input:
        return random_input
    inputs = random_input["input_shape"][2]
    pasted = " ".join(f"{0.1 * (i % 7) - 0.3:.1f}" for i in range(2 * inputs))
    script("document.getElementById('seq').value = 2; document.getElementById('batch').value = 1;"
           "document.getElementById('input').value = arguments[0]", pasted)
    pasted_run = run()
    if pasted_run.get("output_shape", [None])[:2] != [2, 1]:
        return {"error": f"pasted input gave {pasted_run}"}
    ok = random_input["within_tolerance"] and pasted_run["within_tolerance"]
    return {**random_input, "within_tolerance": ok,
            "pasted_max_abs_difference": pasted_run["max_abs_difference"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", help="save the finished page here (PNG)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the page")
    parser.add_argument("--model", default=FIXTURE, help="a .safetensors file to run in the page")
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
        if result and "error" not in result:
            result["userModel"] = run_user_model(port, session, os.path.abspath(args.model),
                                                 deadline)
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
        user = result.get("userModel", {})
        if not isinstance(user, dict) or not user.get("within_tolerance"):
            problems.append(f"the chosen model's run: {user}")
        if result["backend"] != "BrowserWebGpu":
            problems.append(f"backend {result['backend']}, not the browser's WebGPU")
    if problems:
        sys.exit("error: " + "; ".join(problems))
    print("page: ok")


if __name__ == "__main__":
    main()
