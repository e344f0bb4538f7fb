"""Reading TOFU-schema data back from a folder, and the hub path failing clearly offline."""

from __future__ import annotations

import json

import pytest

from ofmu_ray.errors import DataError
from ofmu_ray.families.tofu.generate import SynthTofuConfig, generate
from ofmu_ray.families.tofu.load import load_tofu
from ofmu_ray.splits import write_splits


def test_generator_output_round_trips_through_a_folder(tmp_path):
    data = generate(SynthTofuConfig(authors=20))
    loaded = load_tofu(write_splits(data, tmp_path / "tofu"))
    assert sorted(loaded) == sorted(data)
    for name in data:
        assert loaded[name] == data[name], name


def test_tofu_file_names_and_parquet_are_read(tmp_path):
    """A folder laid out like the TOFU hub repo: `_perturbed` eval files win over plain ones."""
    import datasets

    rows = generate(SynthTofuConfig(authors=20))["forget10"]
    plain = [{"question": r["question"], "answer": r["answer"]} for r in rows]
    tofu = [{k: r[k] for k in ("question", "answer", "paraphrased_answer", "perturbed_answer")} for r in rows]
    (tmp_path / "forget10.json").write_text("\n".join(json.dumps(r) for r in plain))
    datasets.Dataset.from_list(tofu).to_parquet(str(tmp_path / "forget10_perturbed.parquet"))
    datasets.Dataset.from_list(tofu[:5]).to_parquet(str(tmp_path / "real_authors_perturbed.parquet"))
    loaded = load_tofu(tmp_path)
    assert sorted(loaded) == ["forget10", "real_authors"]
    assert loaded["forget10"] == tofu
    assert loaded["real_authors"] == tofu[:5]


def test_missing_split_names_what_exists(tmp_path):
    data = load_tofu(write_splits(generate(SynthTofuConfig(authors=20)), tmp_path))
    with pytest.raises(DataError, match="no split 'forget01'.*forget05"):
        data["forget01"]


def test_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_tofu(tmp_path / "missing")
    with pytest.raises(DataError, match="no .json, .jsonl or .parquet"):
        load_tofu(tmp_path)
    (tmp_path / "forget10.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read .*forget10.json"):
        load_tofu(tmp_path)


def test_prepare_reads_a_tofu_folder_and_rejects_misplaced_data(tmp_path, capsys):
    from ofmu_ray.cli import main

    data = generate(SynthTofuConfig(authors=20))
    folder = write_splits(data, tmp_path / "tofu")
    assert main(["prepare", "--bench", "tofu", "--data", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["forget10"] == len(data["forget10"])
    assert main(["prepare", "--bench", "tofu"]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["prepare", "--bench", "synth-tofu", "--data", str(folder)]) == 2
    assert "--data: for --bench tofu" in capsys.readouterr().err
    assert main(["prepare", "--bench", "tofu", "--data", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_hub_without_network_is_one_line_with_alternatives(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no network here either way; fail fast
    with pytest.raises(DataError) as err:
        load_tofu("hf:locuslab/TOFU")
    message = str(err.value)
    assert "\n" not in message
    assert "locuslab/TOFU" in message and "--bench synth-tofu" in message and "--data DIR" in message
