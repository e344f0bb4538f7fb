"""Unlearning methods: registry and configs, losses against hand computations, OFMU's derivatives
against finite differences in float64, and the decorrelation ablation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.autograd import grad
from toy_lm import ToyLM, toy_batch

from ofmu_ray.cli import main
from ofmu_ray.methods import METHODS, build_config, describe_methods, get_method, methods_for
from ofmu_ray.methods.losses import nll, npo_loss, sequence_nll, simnpo_loss
from ofmu_ray.methods.ofmu import HESSIANS, OFMU, _flat, similarity
from ofmu_ray.methods.rmu import masked_mse

FORGET = toy_batch([[1, 2, 3, 4, 5], [1, 6, 3, 7, 8], [2, 2, 9, 4, 1]], answer_from=2)
RETAIN = toy_batch([[1, 9, 3, 2, 2], [3, 6, 3, 10, 8]], answer_from=2)


def test_registry_lists_every_method_with_its_parameters(capsys):
    assert sorted(METHODS) == ["ft", "gradascent", "graddiff", "npo", "ofmu", "rl", "rmu", "simnpo"]
    assert all(get_method(name).name == name for name in METHODS)  # each class under the name it answers to
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == json.loads(json.dumps(describe_methods()))
    ofmu = {p["name"]: p for p in listed["ofmu"]["params"]}
    assert {"beta", "rho0", "gamma_rho", "inner_steps", "outer_steps", "eta_in", "eta_out",
            "decorrelation", "hessian"} <= set(ofmu)
    assert ofmu["decorrelation"]["choices"] == ["signed", "squared", "abs", "none"]
    assert {p["name"]: p["default"] for p in listed["npo"]["params"]}["beta"] == 0.1
    assert main(["methods"]) == 0
    assert "ofmu" in capsys.readouterr().out


@pytest.mark.parametrize("name, overrides, message", [
    ("nope", {}, "unknown method 'nope'; choose from: gradascent"),
    ("ofmu", {"betta": 1}, "no field 'betta'; did you mean 'beta'"),
    ("ofmu", {"decorrelation": "cubic"}, "OFMUConfig.decorrelation must be one of signed"),
    ("npo", {"beta": "-1"}, "NPOConfig.beta must be >= "),
    ("ofmu", {"inner_steps": "2.5"}, "OFMUConfig.inner_steps must be int"),
])
def test_bad_method_configs_name_the_field(name, overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build_config(name, overrides)


def test_nll_is_the_token_mean_over_answer_tokens():
    model = ToyLM()
    logp = torch.log_softmax(model(FORGET["input_ids"]).logits, -1)
    picks = [-logp[b, t - 1, FORGET["input_ids"][b, t]] for b in range(3) for t in range(2, 5)]
    assert nll(model, FORGET).item() == pytest.approx(sum(picks).item() / 9, rel=1e-12)
    seq, lengths = sequence_nll(model, FORGET)
    assert lengths.tolist() == [3, 3, 3]
    assert seq.sum().item() == pytest.approx(sum(picks).item(), rel=1e-12)


def test_npo_and_simnpo_match_their_formulas():
    s_model, s_ref = torch.tensor([2.0, 5.0]), torch.tensor([3.0, 4.0])
    beta = 0.1  # log(1 + (p/p_ref)^beta) with p/p_ref = exp(s_ref - s_model)
    expected = (2 / beta) * sum(math.log1p(math.exp(beta * (r - m))) for m, r in zip([2, 5], [3, 4], strict=True))
    assert npo_loss(s_model, s_ref, beta).item() == pytest.approx(expected / 2, rel=1e-6)
    lengths, beta, delta = torch.tensor([4, 5]), 4.5, 0.2
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(2 / beta) * sum(math.log(sig(beta * (s / n - delta))) for s, n in zip([2, 5], [4, 5], strict=True))
    assert simnpo_loss(s_model, lengths, beta, delta).item() == pytest.approx(expected / 2, rel=1e-6)


def test_rmu_distance_is_a_per_token_mean_over_answer_positions():
    h = torch.tensor([[[1.0, 1.0], [3.0, 1.0]], [[0.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    target = torch.tensor([1.0, 0.0])
    # seq 0: tokens (0+1)/2, (4+1)/2 -> mean 1.5; seq 1: (1+0)/2 -> 0.5
    assert masked_mse(h, target, mask).item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(set(methods_for("text")) - {"rmu"}))  # rmu needs Llama layers: below
def test_every_method_steps_and_logs_finite_numbers(name):
    model, reference = ToyLM(), ToyLM().requires_grad_(False)
    cls = get_method(name)
    before = _flat(p.detach() for p in model.parameters()).clone()
    method = cls(model, build_config(name, {"inner_steps": 1} if name == "ofmu" else {}), reference)
    logs = method.step(FORGET, RETAIN)
    assert logs and all(math.isfinite(v) for v in logs.values())
    assert not torch.equal(before, _flat(p.detach() for p in model.parameters()))


@pytest.mark.parametrize("deco", ["signed", "squared", "abs"])
def test_closed_form_similarity_gradient_matches_autograd(deco):
    from ofmu_ray.methods.ofmu import _sim_grad

    a, b = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    expected = torch.func.grad(similarity, argnums=(0, 1))(a, b, deco)
    for got, want in zip(_sim_grad(a, b, deco), expected, strict=True):
        torch.testing.assert_close(got, want)


def _phi(model, method, deco, beta):
    lf, lr = nll(model, FORGET), nll(model, RETAIN)
    if deco == "none":
        return lf
    gf = _flat(grad(lf, method.params, create_graph=True))
    gr = _flat(grad(lr, method.params, create_graph=True))
    return lf - beta * similarity(gf, gr, deco)


def _central(method, direction, fn, eps=1e-6):
    def at(sign):
        with torch.no_grad():
            torch._foreach_add_(method.params, direction, alpha=sign * eps)
        out = fn()
        with torch.no_grad():
            torch._foreach_add_(method.params, direction, alpha=-sign * eps)
        return out
    return (at(1) - at(-1)) / (2 * eps)


@pytest.mark.parametrize("deco", ["signed", "squared", "abs", "none"])
def test_ofmu_grad_phi_and_exact_hvp_match_finite_differences(deco):
    model, beta = ToyLM(seed=1), 0.7
    method = OFMU(model, build_config("ofmu", {"decorrelation": deco, "beta": beta}))
    torch.manual_seed(0)
    d = [torch.randn_like(p) for p in method.params]
    state, hv = method.hessian_phi_vector(FORGET, RETAIN)
    numeric = _central(method, d, lambda: _phi(model, method, deco, beta).item())
    assert (state.grad_phi @ _flat(d)).item() == pytest.approx(numeric, rel=1e-6)
    v = state.grad_phi
    numeric_hv = _central(method, d, lambda: (method.grad_phi(FORGET, RETAIN).grad_phi @ v).item())
    assert (hv @ _flat(d)).item() == pytest.approx(numeric_hv, rel=1e-6)


# Measured on the toy problem (relative error of Hess(Phi) v against `exact`): the dropped terms
# are not small there, which is what a user choosing an approximation should know.
HESSIAN_TOLERANCE = {"exact": 1e-12, "finite_diff": 1e-3, "no_third": 0.6, "forget_only": 0.9,
                     "finite_diff_forget": 0.9}


@pytest.mark.parametrize("option", HESSIANS)
def test_each_hessian_option_is_within_its_stated_tolerance_of_exact(option):
    def hv(hessian):
        model = ToyLM(seed=2)
        method = OFMU(model, build_config("ofmu", {"hessian": hessian, "beta": 0.7, "fd_eps": 1e-6}))
        return method.hessian_phi_vector(FORGET, RETAIN)[1]
    exact, approx = hv("exact"), hv(option)
    error = ((approx - exact).norm() / exact.norm()).item()
    print(f"hessian={option}: relative error {error:.2e}")
    assert error <= HESSIAN_TOLERANCE[option]
    if option == "finite_diff_forget":  # the same maths as forget_only, by finite differences
        forget_only = hv("forget_only")
        assert ((approx - forget_only).norm() / forget_only.norm()).item() <= 1e-3


@pytest.mark.parametrize("outer_point", ["last_inner", "after_inner"])
def test_outer_step_follows_eq_9_at_its_point(outer_point):
    """One outer iteration with T = 1, recomputed by hand from the method's own pieces."""
    cfg = {"inner_steps": 1, "outer_point": outer_point, "eta_in": 0.1, "eta_out": 0.05, "rho0": 0.3,
           "max_step_norm": 0}  # the paper's plain steps
    model, twin = ToyLM(seed=4), ToyLM(seed=4)
    OFMU(model, build_config("ofmu", cfg)).step(FORGET, RETAIN)
    manual = OFMU(twin, build_config("ofmu", cfg))
    start = _flat(p.detach() for p in manual.params).clone()
    ascent = manual.grad_phi(FORGET, RETAIN).grad_phi
    if outer_point == "after_inner":
        manual._move(ascent, 0.1)
    state, hv = manual.hessian_phi_vector(FORGET, RETAIN)
    expected = start + 0.1 * ascent - 0.05 * (state.b + 2 * 0.3 * hv)
    torch.testing.assert_close(_flat(p.detach() for p in model.parameters()), expected)


def test_squared_decorrelation_drives_the_gradients_towards_orthogonal():
    def final_cos(deco):
        model = ToyLM(seed=3)
        method = OFMU(model, build_config("ofmu", {"decorrelation": deco, "beta": 5.0, "eta_in": 0.5,
                                                   "inner_steps": 30}))
        for _ in range(29):  # the inner loop only
            method.step(FORGET, RETAIN)
        state = method.grad_phi(FORGET, RETAIN)
        return (state.a @ state.b / (state.a.norm() * state.b.norm())).item()
    assert abs(final_cos("squared")) < abs(final_cos("none"))


def test_rmu_trains_only_the_mlp_output_projections_up_to_its_layer():
    from ofmu_ray.config import TinyLlamaSpec
    from ofmu_ray.models.batch import collate
    from ofmu_ray.models.factory import build_tiny_llama
    from ofmu_ray.models.prompt import encode_example
    from ofmu_ray.models.tokenizer import train_word_tokenizer

    tok = train_word_tokenizer(["Where was Ana born ? Ana was born in Porto . Question: Answer:"])
    spec = TinyLlamaSpec(layers=6, hidden=16, intermediate=32, heads=2)
    model, reference = build_tiny_llama(spec, tok), build_tiny_llama(spec, tok).requires_grad_(False)
    batch = collate([encode_example(tok, "Where was Ana born?", "Ana was born in Porto.")] * 2, tok.pad_token_id)
    method = get_method("rmu")(model, build_config("rmu", {"layer": "0.6"}), reference)  # layer 3 of 0..5
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs = method.step(batch, batch)
    assert logs["forget_mse"] > 0 and logs["retain_mse"] == 0  # model == reference at the start
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {f"model.layers.{i}.mlp.down_proj.weight" for i in (1, 2, 3)}


def test_unlearn_stops_when_ofmu_has_done_its_outer_iterations():
    from itertools import repeat

    from ofmu_ray.train.loop import unlearn

    method = OFMU(ToyLM(), build_config("ofmu", {"inner_steps": 3, "outer_steps": 2, "rho0": 0.5}))
    history = unlearn(method, repeat(FORGET), repeat(RETAIN), steps=100)
    assert len(history) == 6
    assert ["penalty" in h for h in history] == [False, False, True] * 2  # outer step every T-th call
    assert history[-1]["rho"] == pytest.approx(0.5 * 1.1)  # grown once before the second iteration


def test_ofmu_clips_each_update_to_max_step_norm():
    model = ToyLM(seed=5)
    start = _flat(p.detach() for p in model.parameters()).clone()
    cfg = {"inner_steps": 2, "eta_in": 1.0, "max_step_norm": 1e-3}
    OFMU(model, build_config("ofmu", cfg)).step(FORGET, RETAIN)  # one inner step, no outer step yet
    moved = (_flat(p.detach() for p in model.parameters()) - start).norm().item()
    assert moved == pytest.approx(1e-3, rel=1e-6)
