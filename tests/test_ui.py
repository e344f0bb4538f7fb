"""`ofmu-ray ui`: the MLflow UI comes up, and listens on 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil


def test_ui_serves_mlflow_on_loopback_only(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([sys.executable, "-m", "ofmu_ray.cli", "ui", "--port", str(port), "--tracking-uri",
                           f"sqlite:///{tmp_path / 'mlruns.db'}"], cwd=tmp_path, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert ui.poll() is None and time.time() < deadline, "the UI did not come up"
                time.sleep(1)
        listening = {c.laddr.ip for c in psutil.net_connections("inet") if c.laddr.port == port
                     and c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)
