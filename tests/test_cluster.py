"""Beyond one machine: cluster.yaml against the schema Ray ships, and a real two-node Ray cluster on
this machine running a sweep whose trials land on both nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]


def _on_premise(text: str) -> dict:
    """The commented on-premise block at the end of cluster.yaml, uncommented."""
    block = text.split("# --- on-premise variant ---\n")[1]
    return yaml.safe_load("\n".join(line.removeprefix("# ") for line in block.splitlines()))


@pytest.mark.parametrize("variant", ["aws", "on-premise"])
def test_cluster_yaml_is_a_valid_ray_cluster_config(variant):
    from ray.autoscaler._private.util import validate_config

    text = (REPO / "cluster.yaml").read_text()
    config = yaml.safe_load(text)
    if variant == "on-premise":
        config = {k: v for k, v in config.items() if k not in ("provider", "auth", "available_node_types",
                                                                 "head_node_type")} | _on_premise(text)
    validate_config(config)  # Ray's own ray-schema.json: raises on an unknown or mistyped field
    assert config["head_node_type"] in config["available_node_types"]
    setup = " ".join(config["setup_commands"])
    assert "torch==2.13.0" in setup and "pip install --quiet -e ~/ofmu-ray" in setup
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    for starts in ("head_start_ray_commands", "worker_start_ray_commands"):  # token authentication on
        assert any("RAY_AUTH_MODE=token" in c and "ray start" in c for c in config[starts])
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    if variant == "aws":
        assert config["available_node_types"]["gpu_worker"]["node_config"]["InstanceType"].startswith("g5.")
        assert "--host 127.0.0.1" in " ".join(config["head_start_ray_commands"])  # the MLflow server


def test_the_local_ray_a_sweep_starts_keeps_token_authentication_on(tmp_path):
    """Ray >= 2.59 turns token authentication on for a local cluster; nothing here turns it off."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"} | {"HOME": str(tmp_path)}
    probe = ("from ofmu_ray.train.launch import start_ray\n"
             "from ray._private.authentication.authentication_utils import is_token_auth_enabled\n"
             "start_ray()\nprint(is_token_auth_enabled())")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"
    assert (tmp_path / ".ray" / "auth_token").stat().st_size > 0  # the token the cluster checks


TWO_NODES = """
import json, sys
from ray.cluster_utils import Cluster
from ofmu_ray.cli import main

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"node_a": 1},
                                                        "include_dashboard": False})
cluster.add_node(num_cpus=1, resources={"node_b": 1})
cluster.wait_for_nodes()
try:
    status = main(["sweep", "--address", cluster.address, *sys.argv[2:]])
    import ray

    nodes = {n["NodeID"]: [r for r in n["Resources"] if r.startswith("node_")] for n in ray.nodes() if n["Alive"]}
    with open(sys.argv[1], "w") as f:
        json.dump({"status": status, "nodes": nodes}, f)
finally:
    import ray

    ray.shutdown()
    cluster.shutdown()
"""


def test_a_sweep_on_a_two_node_cluster_places_trials_on_both_nodes(tiny, cache_dir, mlflow_uri, tmp_path):
    """A real Ray cluster of two nodes (one CPU each, marked node_a and node_b) in a child process:
    two concurrent trials must land on different nodes; results and MLflow runs reach the driver, and
    checkpoints go to the shared --storage-path."""
    uri = mlflow_uri
    argv = ["--cache-dir", cache_dir, "--methods", "gradascent", "--trials", "2", "--steps", "2",
            "--concurrency", "2", "--tracking-uri", uri, "--sweeps-dir", str(tmp_path / "sweeps"),
            "--storage-path", str(tmp_path / "shared"), "--name", "two-nodes"]
    script = tmp_path / "two_nodes.py"
    script.write_text(TWO_NODES)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "nodes.json"), *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((tmp_path / "nodes.json").read_text())
    assert found["status"] == 0 and sorted(sum(found["nodes"].values(), [])) == ["node_a", "node_b"]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("synth-tofu/forget10").experiment_id
    trials = client.search_runs([experiment], "tags.`ofmu.kind` = 'trial'")
    assert len(trials) == 2 and all("model_utility" in t.data.metrics for t in trials)
    placed = {found["nodes"][t.data.tags["ray.node_id"]][0] for t in trials}
    assert placed == {"node_a", "node_b"}  # one trial on each node
    checkpoints = list((tmp_path / "shared" / "two-nodes" / "runs").glob("*/*/checkpoint_*/metrics.json"))
    assert len(checkpoints) == 2 and (tmp_path / "sweeps" / "two-nodes" / "sweep.json").is_file()
