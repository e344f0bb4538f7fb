"""`ofmu-ray ui`: the MLflow UI comes up, and listens on 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _listening_on(port: int) -> set[str]:
    """The addresses with a socket listening on `port`, from the kernel's table (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                if len(address) == 8:  # IPv4, little-endian
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(f"ipv6:{address}")
    return found


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
        assert _listening_on(port) == {"127.0.0.1"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)


def test_a_host_other_than_loopback_is_warned_about(tmp_path, capsys, monkeypatch):
    """The warning comes before the server starts (here the server's start is recorded, not run)."""
    from ofmu_ray.cli import main

    started = []
    monkeypatch.setattr(subprocess, "call", lambda command: started.append(command) or 0)
    assert main(["ui", "--host", "0.0.0.0", "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}"]) == 0
    assert "warning: --host 0.0.0.0 serves every run" in capsys.readouterr().err
    assert started[0][started[0].index("--host") + 1] == "0.0.0.0"
    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}"]) == 0
    assert "warning" not in capsys.readouterr().err and started[1][started[1].index("--host") + 1] == "127.0.0.1"
