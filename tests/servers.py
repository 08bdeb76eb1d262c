"""Servers started for real by the tests that need them: uvicorn on 127.0.0.1 at a free port,
in a thread of the test process or as a `semhash serve` process, stopped by the test."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url, timeout=10):
    """(status, body as JSON or bytes) of a GET, 4xx and 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        status, body, kind = error.code, error.read(), error.headers.get_content_type()
    return status, json.loads(body) if kind == "application/json" else body


@contextlib.contextmanager
def threaded_server(app):
    """uvicorn serving `app` in a thread; yields the base URL, and stops the server after."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def serve_process(*folders):
    """`semhash serve FOLDERS --port P` as a process; yields the base URL once it answers, and
    ends the process after."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "semhash.cli", "serve", *map(str, folders), "--port", str(port),
                                "--quiet"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"{url}/indexes", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"semhash serve did not start: {process.communicate(timeout=10)}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
