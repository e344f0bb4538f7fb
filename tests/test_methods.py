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
from ofmu_ray.methods.losses import REFUSAL, nll, npo_loss, sequence_nll, simnpo_loss
from ofmu_ray.methods.ofmu import OFMU, _flat, similarity
from ofmu_ray.methods.preference import dpo_loss
from ofmu_ray.methods.rmu import masked_mse

FORGET = toy_batch([[1, 2, 3, 4, 5], [1, 6, 3, 7, 8], [2, 2, 9, 4, 1]], answer_from=2)
RETAIN = toy_batch([[1, 9, 3, 2, 2], [3, 6, 3, 10, 8]], answer_from=2)
# The same questions answered with "refusals" (IdkDPO's preferred answers), as `batches` adds them
REFUSED = toy_batch([[1, 2, 10, 10, 0], [1, 6, 0, 10, 10], [2, 2, 10, 0, 0]], answer_from=2)
FORGET_IDK = FORGET | {REFUSAL + k: v for k, v in REFUSED.items()}
NEW = ("idkdpo", "undial", "ceu", "wga", "satimp", "pdu")  # OpenUnlearning's further methods (issue 48)


def test_registry_lists_every_method_with_its_parameters(capsys):
    assert sorted(METHODS) == sorted(["ft", "gradascent", "graddiff", "npo", "ofmu", "rl", "rmu", "simnpo", *NEW])
    assert all(get_method(name).name == name for name in METHODS)  # each class under the name it answers to
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == json.loads(json.dumps(describe_methods()))
    assert all(listed[name]["doc"] and "20" in listed[name]["paper"] for name in METHODS)  # a year in each
    satimp = {p["name"]: p["default"] for p in listed["satimp"]["params"]}
    assert (satimp["gamma"], satimp["alpha"]) == (1.0, 0.1)  # the paper's ratio of 10, not OpenUnlearning's YAML
    ofmu = {p["name"]: p for p in listed["ofmu"]["params"]}
    assert {"beta", "rho0", "gamma_rho", "inner_steps", "descent_steps", "optimizer", "lr", "lr_out",
            "decorrelation", "hessian", "outer_point"} <= set(ofmu)
    assert ofmu["decorrelation"]["choices"] == ["signed", "squared", "abs", "none"]
    assert {p["name"]: p["default"] for p in listed["npo"]["params"]}["beta"] == 0.1
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "ofmu" in out and "paper: Entesari et al. 2025, Constrained Entropic Unlearning" in out


@pytest.mark.parametrize("name, overrides, message", [
    ("nope", {}, "unknown method 'nope'; choose from: gradascent"),
    ("ofmu", {"betta": 1}, "no field 'betta'; did you mean 'beta'"),
    ("ofmu", {"decorrelation": "cubic"}, "OFMUConfig.decorrelation must be one of signed"),
    ("npo", {"beta": "-1"}, "NPOConfig.beta must be >= "),
    ("ofmu", {"inner_steps": "2.5"}, "OFMUConfig.inner_steps must be int"),
    ("ofmu", {"outer_steps": "3"}, "OFMUConfig.outer_steps was removed: K now follows from the budget"),
    ("ofmu", {"eta_in": "0.1"}, "OFMUConfig.eta_in was removed: use lr"),
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


# OpenUnlearning's further methods: each loss recomputed by hand, one answer token at a time.
# Answer tokens are positions t = 2, 3, 4 of every toy sequence, predicted from position t - 1.

def _answer_tokens(batch):
    """(b, t, token) of every labelled token, in order."""
    return [(b, t, batch["input_ids"][b, t].item()) for b in range(len(batch["input_ids"]))
            for t in range(1, batch["input_ids"].shape[1]) if batch["labels"][b, t] != -100]


def _logits(model, batch):
    return model(batch["input_ids"]).logits


def _sequence_logprob(model, batch, b):
    logp = torch.log_softmax(_logits(model, batch), -1)
    return sum(logp[b, t - 1, y] for bb, t, y in _answer_tokens(batch) if bb == b)


@pytest.mark.parametrize("name, weight", [
    ("wga", lambda p: p**1.0),  # beta = 1
    ("satimp", lambda p: p**5.0 * (1 - p) ** 1.0),  # beta1 = 5, beta2 = 1
])
def test_token_weighted_ascent_matches_its_formula_and_holds_the_weights_constant(name, weight):
    model = ToyLM(seed=2)
    method = get_method(name)(model, build_config(name))
    loss, logs = method.loss(FORGET, RETAIN)
    logp = torch.log_softmax(_logits(model, FORGET), -1)
    terms = []
    for b, t, y in _answer_tokens(FORGET):
        ce = -logp[b, t - 1, y]
        terms.append(-weight(torch.exp(-ce).detach()) * ce)
    by_hand = sum(terms) / len(terms)
    assert logs["forget_loss"].item() == pytest.approx(by_hand.item(), rel=1e-12)
    cfg = method.cfg
    assert loss.item() == pytest.approx(cfg.gamma * by_hand.item() + cfg.alpha * nll(model, RETAIN).item(), rel=1e-12)
    got = grad(logs["forget_loss"], list(model.parameters()))
    want = grad(by_hand, list(model.parameters()))  # the weight detached: no gradient through p
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_undial_distils_towards_the_reference_with_the_answer_logit_lowered():
    model, reference = ToyLM(seed=2), ToyLM(seed=3).requires_grad_(False)
    method = get_method("undial")(model, build_config("undial", {"beta": 3.0}), reference)
    loss, logs = method.loss(FORGET, RETAIN)
    logp, z_ref = torch.log_softmax(_logits(model, FORGET), -1), _logits(reference, FORGET)
    terms = []
    for b, t, y in _answer_tokens(FORGET):  # answer tokens only: not the question, as the paper
        adjusted = z_ref[b, t - 1].clone()
        adjusted[y] -= 3.0
        q = torch.softmax(adjusted, -1)
        terms.append(-sum(q[v] * logp[b, t - 1, v] for v in range(len(q))))
    assert logs["undial_loss"].item() == pytest.approx((sum(terms) / len(terms)).item(), rel=1e-12)
    assert loss.item() == logs["undial_loss"].item()  # alpha = 0: no retain term (the paper's setting)
    assert "retain_nll" not in logs


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_ceu_descends_towards_its_own_distribution_without_the_answer_token(skip):
    model = ToyLM(seed=2)
    _, logs = get_method("ceu")(model, build_config("ceu", {"skip_tokens": skip})).loss(FORGET, RETAIN)
    z = _logits(model, FORGET)
    terms = []
    for b, t, y in _answer_tokens(FORGET):
        if t - 2 < skip:  # the first `skip` answer tokens of each sequence (answers start at t = 2)
            continue
        others = [v for v in range(z.shape[-1]) if v != y]
        q = torch.softmax(z[b, t - 1, others], -1).detach()  # the answer token's probability removed
        logp = torch.log_softmax(z[b, t - 1], -1)
        terms.append(-sum(q[i] * logp[v] for i, v in enumerate(others)))
    assert len(terms) == 3 * (3 - skip)
    assert logs["ceu_loss"].item() == pytest.approx((sum(terms) / len(terms)).item(), rel=1e-12)


def test_pdu_flattens_the_logit_margin_and_moves_its_dual_variable_by_projected_ascent():
    model = ToyLM(seed=2)
    z = _logits(model, FORGET)
    margins = [(z[b, t - 1].max() - z[b, t - 1].mean()) ** 2 for b, t, _ in _answer_tokens(FORGET)]
    cfg = {"alpha": 2.0, "epsilon_margin": 0.05, "dual_lr": 3.0, "dual_warmup": 0.5}
    method = get_method("pdu")(model, build_config("pdu", cfg), budget=4)  # warmup: 2 steps
    loss, logs = method.loss(FORGET, RETAIN)
    assert logs["margin_loss"].item() == pytest.approx((sum(margins) / len(margins)).item(), rel=1e-12)
    retain0 = nll(model, RETAIN).item()
    assert logs["epsilon"].item() == pytest.approx(retain0 + 0.05, rel=1e-12)  # from the target's retain loss
    assert loss.item() == pytest.approx(logs["margin_loss"].item() + 2.0 * (retain0 - retain0 - 0.05), rel=1e-12)

    method = get_method("pdu")(ToyLM(seed=2), build_config("pdu", cfg), budget=4)
    history = [method.step(FORGET, RETAIN) for _ in range(4)]
    epsilon = history[0]["epsilon"]
    assert all(h["epsilon"] == epsilon for h in history)  # measured once, before any update
    dual = 2.0
    for step, h in enumerate(history, start=1):
        assert h["dual"] == pytest.approx(dual, rel=1e-12), step  # the lambda this step was taken with
        if step > 2:  # after the warmup: max(0, lambda + eta * (L_r - epsilon)), L_r as this step measured it
            dual = max(0.0, dual + 3.0 * (h["retain_nll"] - epsilon))
    assert method.dual == pytest.approx(dual, rel=1e-12) and method.dual != 2.0
    restored = get_method("pdu")(ToyLM(seed=2), build_config("pdu", cfg), budget=4)
    restored.load_state_dict(method.state_dict())  # a resumed run goes on with the same lambda and epsilon
    assert (restored.dual, restored.epsilon, restored.steps) == (method.dual, method.epsilon, 4)


def test_dpo_loss_and_idkdpo_prefer_the_refusal_over_the_answer():
    values = ([2.0, 3.0], [2.5, 2.0], [1.0, 4.0], [3.0, 3.5])
    s_w, s_w_ref, s_l, s_l_ref = (torch.tensor(v, dtype=torch.float64) for v in values)
    beta = 0.5  # margin = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)), log pi = -S
    margins = [(-2.0 + 2.5) - (-1.0 + 3.0), (-3.0 + 2.0) - (-4.0 + 3.5)]  # -1.5, -0.5
    expected = -sum(math.log(1 / (1 + math.exp(-beta * m))) for m in margins) / 2  # no 2/beta: the DPO paper
    assert dpo_loss(s_w, s_w_ref, s_l, s_l_ref, beta).item() == pytest.approx(expected, rel=1e-12)

    model, reference = ToyLM(seed=2), ToyLM(seed=3).requires_grad_(False)
    method = get_method("idkdpo")(model, build_config("idkdpo", {"beta": 0.3}), reference)
    loss, logs = method.loss(FORGET_IDK, RETAIN)
    terms = []
    for b in range(3):
        win = _sequence_logprob(model, REFUSED, b) - _sequence_logprob(reference, REFUSED, b)
        lose = _sequence_logprob(model, FORGET, b) - _sequence_logprob(reference, FORGET, b)
        terms.append(-torch.nn.functional.logsigmoid(0.3 * (win - lose)))
    assert logs["dpo_loss"].item() == pytest.approx((sum(terms) / 3).item(), rel=1e-12)
    assert loss.item() == pytest.approx(logs["dpo_loss"].item() + nll(model, RETAIN).item(), rel=1e-12)
    with pytest.raises(ValueError, match="idkdpo needs forget batches that hold refusal answers"):
        method.loss(FORGET, RETAIN)


def test_refusals_are_drawn_per_row_into_the_forget_batches(tmp_path):
    from ofmu_ray.families.tofu import refusal_replies
    from ofmu_ray.families.tofu.vocabulary import REFUSALS
    from ofmu_ray.models.tokenizer import train_word_tokenizer
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import batches

    rows = [{"question": f"Where was {n} born?", "answer": f"{n} was born in Porto."} for n in ("Ana", "Rui", "Eva")]
    replies = ["I do not know.", "No idea, sorry.", "I cannot say."]
    tok = train_word_tokenizer([r["question"] + " " + r["answer"] for r in rows] + replies + ["Question: Answer:"])
    plain, refused = batches(tok, rows, 3, seed=4), batches(tok, rows, 3, seed=4, refusals=replies)
    drawn = set()
    for _ in range(8):
        a, b = next(plain), next(refused)
        assert all(torch.equal(a[k], b[k]) for k in a)  # the rows and their order: as without refusals
        for i in range(3):
            asked = b["input_ids"][i][b["labels"][i] == -100]
            refusal_asked = b["refusal_input_ids"][i][b["refusal_labels"][i] == -100]
            assert torch.equal(asked[asked != tok.pad_token_id], refusal_asked[refusal_asked != tok.pad_token_id])
            reply = tok.decode(b["refusal_labels"][i][b["refusal_labels"][i] != -100], skip_special_tokens=True)
            drawn.add(reply)
    assert len(drawn) == 3  # every reply drawn, per row, over 24 rows
    with pytest.raises(ValueError, match="refusal answers need question-answer rows"):
        next(batches(tok, [{"text": "A corpus text."}], 1, refusals=replies))

    spec = dict(prepared_root="/nowhere", split="forget10", method="idkdpo")
    assert refusal_replies(RunSpec(**spec)) == REFUSALS  # synth-tofu's own
    mine = tmp_path / "idk.txt"
    mine.write_text("I do not know.\n\nNo idea.\n")
    assert refusal_replies(RunSpec(**spec, overrides={"refusals": str(mine)})) == ["I do not know.", "No idea."]
    assert refusal_replies(RunSpec(**spec | {"method": "npo"})) is None
    mine.write_text("\n")
    with pytest.raises(ValueError, match="refusals .*idk.txt: no reply in it"):
        build_config("idkdpo", {"refusals": str(mine)})
    with pytest.raises(ValueError, match="refusals /no/such.txt: cannot read it"):
        build_config("idkdpo", {"refusals": "/no/such.txt"})


@pytest.mark.parametrize("bench, method, message", [
    ("synth-wmdp", "idkdpo", "idkdpo cannot unlearn from text corpora (synth-wmdp)"),
    ("digits", "undial", "undial cannot unlearn from images (digits)"),
    ("synth-tofu", "rl", "rl cannot unlearn from question-answer rows (synth-tofu)"),
])
def test_a_method_is_refused_where_it_does_not_apply(bench, method, message):
    from ofmu_ray import runs
    from ofmu_ray.errors import UsageError

    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        runs.check_settings(bench, method)
    assert set(NEW) - {"idkdpo"} <= set(methods_for("corpus"))  # token-level losses: corpora too
    assert not set(NEW) & set(methods_for("image"))


@pytest.mark.parametrize("name", sorted(set(methods_for("qa")) - {"rmu"}))  # rmu needs Llama layers: below
def test_every_method_steps_and_logs_finite_numbers(name):
    model, reference = ToyLM(), ToyLM(seed=1).requires_grad_(False)  # UNDIAL distils from a different model
    cls = get_method(name)
    before = _flat(p.detach() for p in model.parameters()).clone()
    method = cls(model, build_config(name, {"inner_steps": 1} if name == "ofmu" else {}), reference)
    logs = method.step(FORGET_IDK, RETAIN)  # the refusal answers ride along; only IdkDPO reads them
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


def _functional(model, loss_of):
    """The loss of a flat parameter vector, for torch.func's forward-over-reverse derivatives (a code
    path of its own, independent of the method's reverse-over-reverse graphs)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def f(theta):
        tensors = dict(zip(names, (t.view(s) for t, s in zip(theta.split([s.numel() for s in shapes]), shapes,
                                                            strict=True)), strict=True))
        return loss_of(lambda **batch: torch.func.functional_call(model, tensors, (), batch))
    return f


def _toy_hvp_pieces(seed: int, beta: float):
    """Independently computed pieces of Hess(Phi) v on the toy model: v = grad Phi, H_f v, and the
    third-order terms D3L_f[u_f, v] + D3L_r[u_r, v]."""
    from ofmu_ray.methods.ofmu import _sim_grad

    model = ToyLM(seed=seed)
    theta = _flat(p.detach() for p in model.parameters())
    losses = {name: _functional(model, lambda call, batch=batch: nll(_Call(call), batch))
              for name, batch in (("f", FORGET), ("r", RETAIN))}
    g = {k: torch.func.grad(f)(theta) for k, f in losses.items()}
    u_f, u_r = _sim_grad(g["f"], g["r"], "signed")

    def hvp(k, u, at=theta):
        return torch.func.jvp(torch.func.grad(losses[k]), (at,), (u,))[1]
    v = g["f"] - beta * (hvp("f", u_f) + hvp("r", u_r))

    def third(k, u):  # D3L[u, v] = d/dt H(theta + t v) u, forward mode over the HVP
        return torch.func.jvp(lambda at: hvp(k, u, at), (theta,), (v,))[1]
    return v, hvp("f", v), third("f", u_f) + third("r", u_r)


class _Call(torch.nn.Module):
    """A model made of a functional call (what `nll` takes)."""

    def __init__(self, call):
        super().__init__()
        self.call = call

    def forward(self, **batch):
        return self.call(**batch)


def _hv(hessian: str, seed: int = 2, beta: float = 0.7) -> torch.Tensor:
    method = OFMU(ToyLM(seed=seed), build_config("ofmu", {"hessian": hessian, "beta": beta}))
    return method.hessian_phi_vector(FORGET, RETAIN)[1]


def test_no_third_is_exact_without_the_third_order_terms():
    v, _, third = _toy_hvp_pieces(seed=2, beta=0.7)
    exact, no_third = _hv("exact"), _hv("no_third")
    torch.testing.assert_close(no_third, exact + 0.7 * third, rtol=1e-9, atol=1e-12)
    assert (third.norm() / exact.norm()).item() > 0.1  # the dropped terms are not small here


def test_forget_only_is_the_forget_hessian_times_grad_phi():
    v, hfv, _ = _toy_hvp_pieces(seed=2, beta=0.7)
    torch.testing.assert_close(_hv("forget_only"), hfv, rtol=1e-9, atol=1e-12)


def test_finite_differences_match_their_exact_counterparts_in_fp64():
    for approx, exact in (("finite_diff", "exact"), ("finite_diff_forget", "forget_only")):
        want = _hv(exact)
        assert ((_hv(approx) - want).norm() / want.norm()).item() < 1e-6, approx


# Measured at the fp32 default step and OFMU's defaults on the tiny target, batches of 8 (relative error
# to exact): grad Phi 5.5e-3, Hess(Phi) v 0.16, H_f v 1.0e-3 on recipe 3's (recipe 2's: 1.2e-3, 2.2e-2,
# 7.1e-4; its target trained 12 base epochs, not 16); about twice that is the tolerance
FP32_TOLERANCE = {"grad_phi": 1.1e-2, "finite_diff": 0.32, "finite_diff_forget": 2e-3}


def test_finite_differences_at_the_fp32_default_on_the_tiny_target(tiny):
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.train.task import batches

    data, where = tiny.data(), tiny.model_dir("target")
    tok = load_tokenizer(where)
    forget, retain = next(batches(tok, data["forget10"], 8)), next(batches(tok, data["retain90"], 8, seed=1))

    def pieces(hessian):
        method = OFMU(load_causal_lm(where), build_config("ofmu", {"hessian": hessian}))
        state, hv = method.hessian_phi_vector(forget, retain)
        return state.grad_phi, hv
    grad_phi, exact = pieces("exact")
    fd_grad_phi, fd = pieces("finite_diff")
    error = {"grad_phi": ((fd_grad_phi - grad_phi).norm() / grad_phi.norm()).item(),
             "finite_diff": ((fd - exact).norm() / exact.norm()).item()}
    forget_only = pieces("forget_only")[1]
    error["finite_diff_forget"] = ((pieces("finite_diff_forget")[1] - forget_only).norm() / forget_only.norm()).item()
    print(f"relative errors {error}")
    assert all(error[k] <= FP32_TOLERANCE[k] for k in error), error


@pytest.mark.parametrize("hessian", ["finite_diff", "finite_diff_forget"])
def test_finite_differences_are_refused_under_bf16_weights(hessian):
    with pytest.raises(ValueError, match=f"hessian={hessian} needs fp32 or fp64 weights"):
        OFMU(ToyLM().to(torch.bfloat16), build_config("ofmu", {"hessian": hessian}))


def test_a_finite_difference_step_leaves_batchnorm_statistics_as_the_plain_passes_move_them():
    """On the image classifier (ResNet-18, BatchNorm): an OFMU step by finite differences moves the
    running statistics exactly as its two unperturbed forward passes do, and no further."""
    import copy

    from ofmu_ray.models.vision import build_classifier

    torch.manual_seed(0)
    images = {k: {"pixels": torch.rand(4, 1, 8, 8), "labels": torch.randint(0, 3, (4,))} for k in "fr"}
    model = build_classifier("resnet18", classes=3, channels=1)  # 8x8 images: the same layers, 16x less work
    twin = copy.deepcopy(model).train()
    with torch.no_grad():  # what the step's own passes at theta do: the forget batch, then the retain batch
        twin(images["f"]["pixels"]), twin(images["r"]["pixels"])
    method = OFMU(model, build_config("ofmu", {"hessian": "finite_diff", "inner_steps": 2}))
    method.step(images["f"], images["r"])  # an inner step: grad Phi with four perturbed gradients
    for (name, got), want in zip(model.named_buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(got, want, msg=name)


def test_outer_step_follows_eq_9_at_its_point():
    """after_inner: the ascent step, then the descent step at the new point; last_inner: both from one
    point. Recomputed by hand from the method's own pieces (plain steps)."""
    cfg = {"inner_steps": 1, "optimizer": "sgd", "lr": 0.1, "lr_out": 0.05, "rho0": 0.3, "max_step_norm": 0}
    for outer_point, calls in (("after_inner", 2), ("last_inner", 1)):
        model, twin = ToyLM(seed=4), ToyLM(seed=4)
        method = OFMU(model, build_config("ofmu", cfg | {"outer_point": outer_point}), budget=calls)
        for _ in range(calls):
            method.step(FORGET, RETAIN)
        manual = OFMU(twin, build_config("ofmu", cfg))
        ascent = manual.grad_phi(FORGET, RETAIN).grad_phi
        if outer_point == "after_inner":
            manual._update("inner", -ascent, 0.1)
            ascent = torch.zeros_like(ascent)  # already taken
        state, hv = manual.hessian_phi_vector(FORGET, RETAIN)
        expected = _flat(p.detach() for p in manual.params) + 0.1 * ascent - 0.05 * (state.b + 2 * 0.3 * hv)
        torch.testing.assert_close(_flat(p.detach() for p in model.parameters()), expected)


def test_each_step_logs_which_term_drives_it():
    method = OFMU(ToyLM(seed=6), build_config("ofmu", {"inner_steps": 1, "beta": 0.5, "rho0": 2.0}), budget=2)
    state, hv = method.hessian_phi_vector(FORGET, RETAIN)
    inner = method.step(FORGET, RETAIN)
    assert inner["ratio/cos_to_forget"] == pytest.approx(state.cos_term / state.a.norm().item())
    assert inner["ratio/cos_to_forget"] == pytest.approx(((state.a - state.grad_phi).norm() / state.a.norm()).item())
    assert "ratio/penalty_to_retain" not in inner
    state, hv = method.hessian_phi_vector(FORGET, RETAIN)
    outer = method.step(FORGET, RETAIN)
    assert outer["ratio/penalty_to_retain"] == pytest.approx((2 * 2.0 * hv.norm() / state.b.norm()).item())


def test_squared_decorrelation_drives_the_gradients_towards_orthogonal():
    def final_cos(deco):
        model = ToyLM(seed=3)
        method = OFMU(model, build_config("ofmu", {"decorrelation": deco, "beta": 5.0, "optimizer": "sgd",
                                                   "lr": 0.5, "inner_steps": 30}))
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


@pytest.mark.parametrize("outer_point, budget, kinds", [
    ("after_inner", 8, "iiioiiio"), ("after_inner", 6, "iiioio"), ("last_inner", 7, "iiBiiBB"),
])
def test_ofmu_consumes_exactly_its_budget_and_ends_with_a_descent_step(outer_point, budget, kinds):
    """T = 3, S = 1: i an ascent step, o a descent step, B both at one point (last_inner)."""
    from itertools import repeat

    from ofmu_ray.train.loop import unlearn

    cfg = build_config("ofmu", {"inner_steps": 3, "outer_point": outer_point, "rho0": 0.5})
    history = unlearn(OFMU(ToyLM(), cfg, budget=budget), repeat(FORGET), repeat(RETAIN), steps=budget)
    assert "".join("i" if "penalty" not in h else "o" for h in history) == kinds.replace("B", "o")
    iterations = len(kinds) - kinds.count("i")
    assert history[-1]["rho"] == pytest.approx(0.5 * 1.1 ** (iterations - 1))  # grown after each iteration


def test_ofmu_sgd_clips_each_update_to_max_step_norm():
    model = ToyLM(seed=5)
    start = _flat(p.detach() for p in model.parameters()).clone()
    cfg = {"inner_steps": 2, "optimizer": "sgd", "lr": 1.0, "max_step_norm": 1e-3}
    OFMU(model, build_config("ofmu", cfg)).step(FORGET, RETAIN)  # one inner step, no outer step yet
    moved = (_flat(p.detach() for p in model.parameters()) - start).norm().item()
    assert moved == pytest.approx(1e-3, rel=1e-6)


def test_ofmu_adamw_keeps_the_loops_moments_apart():
    method = OFMU(ToyLM(seed=5), build_config("ofmu", {"inner_steps": 2}), budget=3)
    method.step(FORGET, RETAIN)
    assert method.optimizers["inner"].state and not method.optimizers["outer"].state
    method.step(FORGET, RETAIN), method.step(FORGET, RETAIN)
    assert method.optimizers["outer"].state
