"""Search-space files: every method has one that fits its config; bad files name file and key."""

from __future__ import annotations

import pytest

from ofmu_ray.methods import METHODS
from ofmu_ray.tune.spaces import SPACES_DIR, SpaceError, held_settings, load_space, searched_dims
from ofmu_ray.tune.tuner import defaults_in, tune_domain


def test_every_method_has_a_valid_space():
    assert sorted(p.stem for p in SPACES_DIR.glob("*.yaml")) == sorted(METHODS)
    space = load_space("ofmu")
    assert set(space) == {"lr", "beta", "rho0", "gamma_rho", "inner_steps", "descent_steps"}
    assert space["inner_steps"].kind == "int" and space["beta"].values == (1e-4, 1.0)
    assert space["lr"] == load_space("graddiff")["lr"]  # the same learning-rate range as the baselines'
    assert "decorrelation" not in space  # the paper's signed cosine; the variants are ablations


@pytest.mark.parametrize("text, message", [
    ("betta: {uniform: [0.1, 1.0]}", "'betta' is not a ofmu hyper-parameter; did you mean 'beta'"),
    ("beta: {normal: [0.1, 1.0]}", "beta: unknown distribution 'normal'"),
    ("beta: {uniform: [1.0, 0.1]}", "beta: bad range"),
    ("beta: {loguniform: [0.0, 1.0]}", "beta: bad range"),
    ("gamma_rho: {uniform: [0.5, 2.0]}", "gamma_rho: [0.5, 2.0] leaves the field's range"),
    ("decorrelation: {choice: [signed, cubic]}", "decorrelation: ['cubic'] not allowed"),
    ("hessian: {choice: [finite_diff]}", "hessian: ['finite_diff'] leaves out the default 'exact', which every sweep"),
    ("outer_steps: {int: [0, 10]}", "outer_steps: no longer a ofmu hyper-parameter: K now follows"),
    ("beta: {int: [1, 3]}", "beta is a float field; int does not fit it"),
    ("inner_steps: {uniform: [1, 3]}", "inner_steps is a int field; uniform does not fit it"),
    ("hessian: {fixed: cubic}", "hessian: 'cubic' is not a value of this str field; choose from"),
    ("inner_steps: {fixed: 2.5}", "inner_steps: 2.5 is not a value of this int field"),
    ("gamma_rho: {fixed: 0.5}", "gamma_rho: 0.5 is not a value of this float field"),
    ("beta: [0.1, 1.0]", "beta: expected one distribution"),
    ("beta: {uniform: [0.1, 1.0]", "cannot read it as YAML"),
])
def test_bad_space_files_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as err:
        load_space("ofmu", path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_held_setting_is_in_every_trial_and_not_searched(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("beta: {loguniform: [0.01, 1.0]}\nhessian: {fixed: finite_diff}\nrho0: {fixed: 1}\n")
    space = load_space("ofmu", path)
    assert list(searched_dims(space)) == ["beta"] and held_settings(space) == {"hessian": "finite_diff", "rho0": 1.0}
    assert isinstance(held_settings(space)["rho0"], float)  # typed as its field
    # Tune passes a constant to every trial, the defaults trial too; Optuna is asked about the rest only
    assert tune_domain(space["hessian"]) == "finite_diff" and list(defaults_in("ofmu", space)) == ["beta"]
    smol = load_space("ofmu", SPACES_DIR / "smol" / "ofmu.yaml")  # the OFMU sweep on SmolLM2 in docs/smollm2.md
    assert searched_dims(smol) == load_space("ofmu") and held_settings(smol) == {"hessian": "finite_diff"}
