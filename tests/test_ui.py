"""`ofmu-ray ui`: the MLflow UI comes up, listens on 127.0.0.1 only, and shows a sweep in a real browser."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


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


@contextlib.contextmanager
def _ui(uri: str, cwd: Path):
    """`ofmu-ray ui` on a free port of 127.0.0.1, up and answering; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([sys.executable, "-m", "ofmu_ray.cli", "ui", "--port", str(port), "--tracking-uri", uri],
                          cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        yield port
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)


def _chromium():
    """Headless Chromium through Debian's chromedriver (scripts/setup installs both)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and browser, "the browser test needs Debian's chromium and chromium-driver (scripts/setup)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]  # the IHDR chunk's width


@pytest.mark.browser
def test_a_person_finds_the_sweeps_runs_and_its_pareto_plot_in_the_ui(swept, tmp_path):
    """The UI listens on 127.0.0.1 only and shows what a person looks for: the experiment's runs
    filtered on both objectives, a trial's page with its metrics, and the comparison run's Pareto plot
    rendered from its artifact. Screenshots are kept in the test's folder (the README shows one)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    client = MlflowClient(swept)
    experiment = client.get_experiment_by_name("synth-tofu/forget10").experiment_id
    both = "metrics.log10_forget_quality > -1000 and metrics.model_utility >= 0"
    scored = client.search_runs([experiment], both)
    trial = next(r for r in scored if r.data.tags["ofmu.kind"] == "trial")
    (comparison,) = client.search_runs([experiment], "tags.`ofmu.kind` = 'comparison'")
    plot = Path(client.download_artifacts(comparison.info.run_id, "pareto/front.png", str(tmp_path)))

    with _ui(swept, tmp_path) as port, contextlib.closing(_chromium()) as browser:
        assert _listening_on(port) == {"127.0.0.1"}  # reachable from this machine only
        base, wait = f"http://127.0.0.1:{port}/#/experiments/{experiment}", WebDriverWait(browser, 60)

        def shows(text: str) -> bool:
            return text in browser.find_element(By.TAG_NAME, "body").text

        browser.get(f"{base}/runs?searchFilter={urllib.parse.quote(both)}")
        parents = {r.data.tags["mlflow.parentRunId"] for r in scored}  # the UI lists them with their trials
        wait.until(lambda _: shows(f"{len(scored) + len(parents)} matching runs"), "the filtered runs are not listed")
        assert shows("graddiff (tiny-llama-4l)") and shows("ofmu (tiny-llama-4l)")  # the parents of the trials
        browser.save_screenshot(str(tmp_path / "runs.png"))

        browser.get(f"{base}/runs/{trial.info.run_id}")
        objectives = [f"{name}\n{trial.data.metrics[name]}" for name in ("log10_forget_quality", "model_utility")]
        wait.until(lambda _: all(shows(row) for row in objectives), "the trial's objectives are not in its metrics")
        browser.save_screenshot(str(tmp_path / "trial.png"))

        browser.get(f"{base}/runs/{comparison.info.run_id}/artifacts")
        for name in ("pareto", "front.png"):
            wait.until(lambda _, name=name: browser.find_elements(By.XPATH, f"//*[normalize-space(text())='{name}']"))
            browser.find_element(By.XPATH, f"//*[normalize-space(text())='{name}']").click()
        width = "return arguments[0].complete ? arguments[0].naturalWidth : 0"
        wait.until(lambda _: _png_width(plot) in [browser.execute_script(width, i)  # the artifact, at its size
                                                  for i in browser.find_elements(By.TAG_NAME, "img")],
                   "the Pareto plot artifact was not drawn")
        browser.save_screenshot(str(tmp_path / "pareto.png"))


def test_a_host_other_than_loopback_is_warned_about(mlflow_uri, capsys, monkeypatch):
    """The warning comes before the server starts (here the server's start is recorded, not run)."""
    from ofmu_ray.cli import main

    started = []
    monkeypatch.setattr(subprocess, "call", lambda command: started.append(command) or 0)
    assert main(["ui", "--host", "0.0.0.0", "--tracking-uri", mlflow_uri]) == 0
    assert "warning: --host 0.0.0.0 serves every run" in capsys.readouterr().err
    assert started[0][started[0].index("--host") + 1] == "0.0.0.0"
    assert main(["ui", "--tracking-uri", mlflow_uri]) == 0
    assert "warning" not in capsys.readouterr().err and started[1][started[1].index("--host") + 1] == "127.0.0.1"
