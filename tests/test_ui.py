"""`ofmu-ray ui`: the MLflow UI comes up, listens on 127.0.0.1 only, and shows a sweep in a real browser."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
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
def _serve(command: list[str], health: str, cwd: Path):
    """An `ofmu-ray` server command on a free port of 127.0.0.1 (`--port` is added), up and answering
    on `health`; yields (the port, what it printed to stderr so far)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = cwd / f"{command[0]}-{port}.log"
    with log.open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "ofmu_ray.cli", *command, "--port", str(port)], cwd=cwd,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=5) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert server.poll() is None and time.time() < deadline, f"{command[0]} did not come up: " + \
                    log.read_text()[-2000:]
                time.sleep(1)
        yield port, log.read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@contextlib.contextmanager
def _chromium():
    """Headless Chromium through Debian's chromedriver (scripts/setup installs both), quit at the end:
    closing its window alone leaves chromedriver running."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and browser, "the browser test needs Debian's chromium and chromium-driver (scripts/setup)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]  # the IHDR chunk's width


GENAI_NAVIGATION = ("Sessions", "Judges", "Prompts", "Agent versions", "AI Gateway")  # MLflow 3's GenAI layout


@pytest.mark.browser
def test_a_person_finds_each_methods_front_in_the_ui_and_the_optuna_dashboard(request, tmp_path):
    """What a person looks for, from the address `ofmu-ray ui --sweep` prints: the training layout (no
    GenAI navigation), the sweep's runs with both objectives as columns in view and the method runs
    ranked by their headline (forget quality at kept utility), a trial's objectives on its page, the
    comparison run's front table and Pareto plot (the artifact, drawn) on its overview, and each
    method's Pareto front in optuna-dashboard, served on 127.0.0.1 only like the UI.

    The screenshots land in the test's folder. `OFMU_RAY_SCREENSHOTS=DIR` browses the sweep run in DIR
    instead (its `mlruns.db` and `sweeps/`, e.g. the demo's) and writes them to docs/ for the README."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ofmu_ray.tracking.browse import run_address
    from ofmu_ray.tune.studies import STORAGE_FILE

    real = os.environ.get("OFMU_RAY_SCREENSHOTS")
    where = Path(real).resolve() if real else Path(request.getfixturevalue("swept")[len("sqlite:///"):]).parent
    shots = Path(__file__).resolve().parents[1] / "docs" if real else tmp_path
    uri = f"sqlite:///{where / 'mlruns.db'}"
    client = MlflowClient(uri)
    (experiment,) = [e.experiment_id for e in client.search_experiments() if e.name.endswith("/forget10")]
    runs = client.search_runs([experiment], "tags.`ofmu.kind` = 'method'")
    sweep = max(runs, key=lambda r: r.info.start_time).data.tags["ofmu.sweep"]
    mine = client.search_runs([experiment], f"tags.`ofmu.sweep` = '{sweep}'")
    parents = sorted((r for r in mine if r.data.tags["ofmu.kind"] == "method"),
                     key=lambda r: -r.data.metrics.get("fq_at_kept_utility", -math.inf))
    trial = next(r for r in mine if r.data.tags["ofmu.kind"] == "trial")
    (comparison,) = [r for r in mine if r.data.tags["ofmu.kind"] == "comparison"]
    plot = Path(client.download_artifacts(comparison.info.run_id, "pareto/front.png", str(tmp_path)))
    fq, mu = parents[0].data.tags["objectives"].split(",")

    with _serve(["ui", "--tracking-uri", uri, "--sweep", sweep], "/health", tmp_path) as (port, printed), \
            _chromium() as browser:
        assert _listening_on(port) == {"127.0.0.1"}  # reachable from this machine only
        wait, base = WebDriverWait(browser, 90), f"http://127.0.0.1:{port}"

        def shows(text: str) -> bool:
            return text in browser.find_element(By.TAG_NAME, "body").text

        def close_assistant() -> None:
            """MLflow 3.17 opens its Assistant panel on a new browser and has no setting against it:
            close it as a person would (the browser remembers)."""
            close = "[data-component-id='mlflow.assistant.chat_panel.close']"
            for button in browser.find_elements(By.CSS_SELECTOR, close):
                button.click()

        address = printed.split(f"sweep {sweep}: ")[1].split()[0]  # what the person is told to open
        assert address.endswith("workflowType=machine_learning")
        browser.get(address)
        wait.until(lambda _: shows(f"{len(mine)} matching runs"), "the sweep's runs are not listed")
        close_assistant()
        assert shows("Model training") and shows("Model registry")
        assert not [name for name in GENAI_NAVIGATION if shows(name)], "the GenAI navigation is shown"
        width = browser.execute_script("return window.innerWidth")

        def in_view(name: str) -> bool:
            header = f"//*[@role='columnheader'][.//*[normalize-space(text())='{name}']]"
            return any(h.is_displayed() and 0 <= h.rect["x"] and h.rect["x"] + h.rect["width"] <= width
                       for h in browser.find_elements(By.XPATH, header))

        wait.until(lambda _: in_view(fq) and in_view(mu) and in_view("fq_at_kept_utility"),
                   "an objective or the headline is not in view")
        names = [r.info.run_name for r in parents]
        wait.until(lambda _: all(shows(n) for n in names), "the method runs are not listed")
        body = browser.find_element(By.TAG_NAME, "body").text
        ranked = [r.info.run_name for r in parents if "fq_at_kept_utility" in r.data.metrics]
        assert sorted(ranked, key=body.index) == ranked  # best headline first (a method with none has no value)
        browser.save_screenshot(str(shots / "mlflow-sweep-runs.png"))

        browser.get(run_address(experiment, trial.info.run_id, base))
        objectives = [f"{name}\n{_as_the_ui_shows(trial.data.metrics[name])}" for name in (fq, mu)]
        wait.until(lambda _: all(shows(row) for row in objectives), "the trial's objectives are not in its metrics")

        browser.get(run_address(experiment, comparison.info.run_id, base))
        table = "//table[.//th[normalize-space(.)='hypervolume']]"
        wait.until(lambda _: browser.find_elements(By.XPATH, table), "no front table in the comparison run's overview")
        for more in browser.find_elements(By.XPATH, "//*[normalize-space(text())='Show more']"):
            more.click()  # the description is folded after a few lines
        rows = browser.find_element(By.XPATH, table).text
        assert all(p.data.tags["method"] in rows for p in parents)
        natural = "return arguments[0].complete ? arguments[0].naturalWidth : 0"
        drawn = "img[src*='front.png']"
        wait.until(lambda _: _png_width(plot) in [browser.execute_script(natural, i)  # the artifact, at its size
                                                  for i in browser.find_elements(By.CSS_SELECTOR, drawn)],
                   "the Pareto plot is not drawn in the description")
        first = browser.find_element(By.XPATH, "//table[.//th[normalize-space(.)='forget']]")  # headline per split
        browser.execute_script("arguments[0].scrollIntoView()", first)
        browser.save_screenshot(str(shots / "mlflow-comparison-fronts.png"))

        assert (where / "sweeps" / sweep / STORAGE_FILE).is_file()
        with _serve(["dashboard", "--sweeps-dir", str(where / "sweeps"), "--sweep", sweep], "/", tmp_path) as (
                dashboard, listed):
            assert _listening_on(dashboard) == {"127.0.0.1"}
            first = next(line for line in listed.splitlines() if "/dashboard/studies/" in line)
            finished = int(first.split(": ")[1].split()[0])
            browser.get(first.split()[-1])
            points = ("//*[normalize-space(text())='Pareto Front']/ancestor::*[.//*[contains(@class,'js-plotly-plot')]]"
                      "[1]//*[contains(@class,'scatterlayer')]//*[contains(@class,'point')]")
            wait.until(lambda _: len(browser.find_elements(By.XPATH, points)) >= finished >= 2,
                       "the study's trials are not drawn on a Pareto front")
            assert shows(fq) and shows(mu)  # the study's objectives by name
            browser.save_screenshot(str(shots / "optuna-dashboard-pareto.png"))


def _as_the_ui_shows(value: float) -> str:
    """A metric as the UI prints it (JavaScript's number to string): 0.0 is "0"."""
    return str(int(value)) if value.is_integer() else repr(value)


def test_ui_and_dashboard_refuse_a_sweep_that_is_not_there(mlflow_uri, tmp_path, capsys):
    """Before any server starts: exit status 2 and one line naming the sweep."""
    from ofmu_ray.cli import main

    assert main(["ui", "--tracking-uri", mlflow_uri, "--sweep", "nope"]) == 2
    assert "--sweep nope: no run" in capsys.readouterr().err
    assert main(["dashboard", "--sweeps-dir", str(tmp_path), "--sweep", "nope"]) == 2
    assert "is not a sweep folder" in capsys.readouterr().err
    assert main(["dashboard", "--sweeps-dir", str(tmp_path)]) == 2
    assert "no sweep in" in capsys.readouterr().err


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
