"""OFMU (arXiv 2509.22483): bi-level unlearning by a penalty method.

Inner problem (forgetting has priority), T gradient-ascent steps per outer iteration:
    Phi(theta) = L_f(theta) - beta * Sim(g_f, g_r),   g_f = grad L_f, g_r = grad L_r
Outer problem, S descent steps per outer iteration (the paper: one) on the penalty reformulation
(the paper's Eq. 7), whose gradient is the paper's Eq. 9:
    F(theta) = L_r(theta) + rho * ||grad Phi(theta)||^2
    grad F   = grad L_r + 2 * rho * Hess(Phi) @ grad Phi,    rho_{k+1} = gamma_rho * rho_k

Every derivative of Sim goes through the flat gradient vectors a = g_f, b = g_r, writing
u = (u_f, u_r) = d Sim / d(a, b) (cheap vector maths, see `similarity`):
    grad Phi          = a - beta * (H_f u_f + H_r u_r)                       2 Hessian-vector products
    Hess(Phi) v       = H_f v - beta * (D3L_f[u_f, v] + D3L_r[u_r, v] + H_f du_f + H_r du_r)
    du = J_u(a, b) @ (H_f v, H_r v)
Since u enters H_f u_f + H_r u_r only as chain-rule coefficients, it is detached there (exact).
The outer Hessian is computed as the `hessian` option says:
    exact        every term above (third-order derivatives through a double-backward graph)
    no_third     drops the D3 terms (curvature of the curvature)
    forget_only  H_f v alone (drops the beta-term of the Hessian)
    finite_diff  no double backward anywhere: every Hessian-vector product is a central difference
                 of plain gradients, H u ~ ||u|| (g(theta + h u^) - g(theta - h u^)) / 2h
                 (inner: four extra gradients; outer: two extra grad Phi, each with its own four)
    finite_diff_forget  finite_diff inside, and the outer term of forget_only
The step h is `fd_eps * ||theta||`, by default `FD_STEP` of the weights' dtype: the step that
balanced rounding against truncation in the nested difference (finite_diff's Hess(Phi) v), measured
on the memorised tiny target in fp32 and on the test suite's toy model in fp64. Under bf16 weights no
step is both small and resolvable (measured: errors of ~1e4), so finite differences are refused there.

What one step is. Every step takes one forget batch and one retain batch, as every baseline's update
does, so a budget of B forget batches is B steps for every method. One outer iteration is T ascent
steps, then S descent steps, each at its own point (`outer_point: after_inner`, the reading in which
the inner loop warm-starts the outer step). `last_inner` instead takes the first descent step at the
last ascent step's point, from the same gradients and graphs (cheaper: one grad Phi fewer), so its
iteration is T + S - 1 steps. K, the number of outer iterations, follows from the budget: a budget
that is not a whole number of iterations ends with a shortened one that keeps its descent steps, so
no run ends on uncorrected ascent steps.

How a step moves the weights (`optimizer`). `adamw`, the default, steps both loops the way the
baselines step (OpenUnlearning's stack): the update direction is clipped to norm 1 (HF's default),
then AdamW with the baselines' weight decay. Each loop has its own moment estimates: the inner loop
ascends Phi and the outer descends F, and one Adam's running averages would carry the ascent
direction into the descent steps. One learning rate `lr` serves both loops (the paper names one);
`lr_out` sets the outer one apart. `sgd` is the literal reading, theta += lr * clip(grad Phi) and
theta -= lr_out * clip(grad F), clipped to `max_step_norm`.

The defaults of beta and rho0 balance the terms (measured on the calibrated `tiny` target, 25
steps = 10 epochs of forget10, logs `ratio/*`): at beta = 0.1, ||beta H u|| is 0.36 of
||grad L_f||, and at rho0 = 1e-3, ||2 rho Hess(Phi) grad Phi|| is 0.97 of ||grad L_r||. At
beta = rho0 = 1e-2 the penalty was 4.2x the retain gradient; at 1e-3 the cosine term was 0.3 % of
the forget gradient (it did nothing).

Gradients are taken with `torch.autograd.grad` over all trainable parameters and averaged across
data-parallel ranks explicitly (`all_reduce_mean`), so a data-parallel run computes the same
numbers as one process on the global batch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch.autograd import grad

from ofmu_ray.config import param
from ofmu_ray.methods.base import MAX_GRAD_NORM, WEIGHT_DECAY, Method, MethodConfig, global_logs, unwrap
from ofmu_ray.methods.distributed import all_reduce_mean
from ofmu_ray.methods.losses import Batch, nll

DECORRELATIONS = ("signed", "squared", "abs", "none")
HESSIANS = ("exact", "no_third", "forget_only", "finite_diff", "finite_diff_forget")
OUTER_POINTS = ("after_inner", "last_inner")
OPTIMIZERS = ("adamw", "sgd")
FINITE_DIFF = ("finite_diff", "finite_diff_forget")
NORM_EPS = 1e-12  # keeps the cosine finite when a gradient vanishes
# fd_eps 0: the relative step per dtype. fp32, tiny target: at 3e-5 grad Phi is within 0.2 % and
# Hess(Phi) v within 2 % of exact; 10x larger or smaller steps are 5-35x worse
FD_STEP = {torch.float32: 3e-5, torch.float64: 1e-5}
INNER, OUTER, BOTH = "inner", "outer", "inner+outer"  # what one step does (BOTH: last_inner's shared point)


@dataclass(frozen=True)
class OFMUConfig(MethodConfig):
    beta: float = param(1e-1, "weight of the similarity penalty in Phi (not given in the paper; the default balances "
                        "its term against the forget gradient, see the module doc)", low=0.0)
    rho0: float = param(1e-3, "initial penalty weight rho_0 on ||grad Phi||^2 (the default balances its term "
                        "against the retain gradient)", low=0.0)
    gamma_rho: float = param(1.1, "growth of the penalty per outer iteration, rho_{k+1} = gamma_rho * rho_k",
                             low=1.0)
    inner_steps: int = param(5, "T, gradient-ascent steps on Phi per outer iteration (paper: 5-10)",
                             low=1, high=100)
    descent_steps: int = param(1, "S, descent steps on the penalty objective per outer iteration (paper: 1)",
                               low=1, high=100)
    optimizer: str = param("adamw", "adamw: clip at 1.0 then AdamW, as the baselines step; sgd: plain clipped "
                           "steps (the literal reading)", choices=OPTIMIZERS)
    lr: float = param(1e-4, "step size of both loops (the paper has one): AdamW's learning rate, or sgd's "
                      "multiplier", low=0.0, high=10.0)
    lr_out: float = param(0.0, "step size of the outer loop alone; 0 = lr", low=0.0, high=10.0)
    max_step_norm: float = param(1.0, "sgd: clip each update direction to this norm before the step size "
                                 "(0 = unclipped); adamw always clips at 1.0, as the baselines", low=0.0)
    decorrelation: str = param("signed", "Sim: signed = cos (the paper), squared = cos^2 (towards "
                               "orthogonality), abs = |cos|, none = no penalty (ablation)",
                               choices=DECORRELATIONS)
    hessian: str = param("exact", "how the Hessian-vector products are computed (see the module doc)",
                         choices=HESSIANS)
    outer_point: str = param("after_inner", "where the first descent step of an iteration is taken (see the "
                             "module doc)", choices=OUTER_POINTS)
    fd_eps: float = param(0.0, "finite_diff: the difference step relative to ||theta||; 0 = chosen from the "
                          "weights' dtype (FD_STEP)", low=0.0, high=1.0)

    removed = {"outer_steps": "K now follows from the budget; descent_steps is S, the descent steps per "
                              "outer iteration",
               "eta_in": "use lr (one step size for both loops, as the paper)",
               "eta_out": "use lr_out (0 = lr)"}


def similarity(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Sim(a, b) for a decorrelation variant (`none` has no Sim: callers skip it)."""
    cos = a @ b / (a.norm() * b.norm() + NORM_EPS)
    return {"signed": cos, "squared": cos * cos, "abs": cos.abs()}[kind]


def _sim_grad(a: torch.Tensor, b: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(dSim/da, dSim/db) in closed form: Sim'(cos) * (b/(|a||b|) - cos a/|a|^2, a/(|a||b|) - cos b/|b|^2).

    Written out rather than left to autograd because it runs on every inner step; `test_methods`
    checks it against autograd. Differentiable, so the exact outer step can take its JVP.
    """
    na, nb = a.norm(), b.norm()
    inv = 1 / (na * nb + NORM_EPS)
    cos = (a @ b) * inv
    scale = {"signed": torch.ones_like(cos), "squared": 2 * cos, "abs": torch.sign(cos)}[kind]
    return scale * (b * inv - cos * a / (na * na + NORM_EPS)), scale * (a * inv - cos * b / (nb * nb + NORM_EPS))


def iteration(steps: int, descent: int, shared: bool) -> list[str]:
    """What each of an outer iteration's `steps` steps does; a shortened iteration keeps its descent steps.

        >>> iteration(4, descent=1, shared=False), iteration(3, descent=1, shared=True)
        (['inner', 'inner', 'inner', 'outer'], ['inner', 'inner', 'inner+outer'])
        >>> iteration(2, descent=2, shared=False)  # the budget ends inside an iteration
        ['outer', 'outer']
    """
    if not shared:
        outer = min(descent, steps)
        return [INNER] * (steps - outer) + [OUTER] * outer
    if steps < descent:  # too short for an ascent step that takes the first descent step with it
        return [OUTER] * steps
    return [INNER] * (steps - descent) + [BOTH] + [OUTER] * (descent - 1)


def plan(budget: int | None, inner: int, descent: int, shared: bool):
    """The kinds of every step of a run of `budget` steps (endless when None), iteration after
    iteration; each item is (kind, whether it ends its iteration)."""
    period = inner + descent - (1 if shared else 0)
    for start in itertools.count(0, period):
        if budget is not None and start >= budget:
            return
        steps = period if budget is None else min(period, budget - start)
        kinds = iteration(steps, descent, shared)
        yield from ((kind, i == len(kinds) - 1) for i, kind in enumerate(kinds))


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _split(vector: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    return [v.view_as(p) for v, p in zip(vector.split([p.numel() for p in like]), like, strict=True)]


def _dot(tensors, others) -> torch.Tensor:
    return sum((t * o).sum() for t, o in zip(tensors, others, strict=True))


@dataclass
class _PhiGrad:
    """grad Phi at one point, with what the outer step may differentiate further."""

    loss_f: torch.Tensor
    loss_r: torch.Tensor
    a: torch.Tensor  # global forget gradient, flat, detached
    b: torch.Tensor  # global retain gradient
    grad_phi: torch.Tensor  # flat, detached
    sim: float
    cos_term: float  # ||beta (H_f u_f + H_r u_r)||: how hard the penalty pulls against ||a||
    g_f: tuple[torch.Tensor, ...]  # local gradients, with their graphs when asked for
    g_r: tuple[torch.Tensor, ...]
    hu: tuple[torch.Tensor, ...] | None  # local H_f u_f + H_r u_r


class OFMU(Method):
    """OFMU's two loops: inner ascent on Phi, then descent on the penalty objective (Hessian-vector products).

    Each `step` call takes one forget and one retain batch; `iteration` says what the step does.
    """

    name = "ofmu"
    paper = "Asif & Amiri 2025, OFMU: Optimization-Driven Framework for Machine Unlearning (arXiv 2509.22483)"
    Config = OFMUConfig
    ddp = False

    def __init__(self, model, cfg, reference=None, budget: int | None = None):
        super().__init__(model, cfg, reference, budget)
        bare = unwrap(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if cfg.hessian in FINITE_DIFF and self.params[0].dtype not in (torch.float32, torch.float64):
            raise ValueError(f"ofmu hessian={cfg.hessian} needs fp32 or fp64 weights, got {self.params[0].dtype}: "
                             "a finite difference cannot resolve a step in 8 mantissa bits; use hessian=exact, "
                             "no_third or forget_only")
        # Fused SDPA kernels have no double backward; eager attention does. finite_diff needs no
        # double backward, so it keeps the faster fused kernels.
        if cfg.hessian not in FINITE_DIFF and hasattr(bare, "set_attn_implementation"):
            bare.set_attn_implementation("eager")
        self.rho = cfg.rho0
        self.done = 0  # steps taken, what a resumed run skips in the plan
        self.plan = plan(budget, cfg.inner_steps, cfg.descent_steps, cfg.outer_point == "last_inner")
        lr_out = cfg.lr_out or cfg.lr
        self.optimizers = ({"inner": torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=WEIGHT_DECAY),
                            "outer": torch.optim.AdamW(self.params, lr=lr_out, weight_decay=WEIGHT_DECAY)}
                           if cfg.optimizer == "adamw" else {})

    @property
    def cycle(self) -> int:
        return self.cfg.inner_steps + self.cfg.descent_steps - (self.cfg.outer_point == "last_inner")

    def state_dict(self) -> dict:
        return {"rho": self.rho, "done": self.done} | {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        self.rho = state["rho"]
        for _ in range(state["done"]):  # the resumed run goes on where the plan was
            next(self.plan)
        self.done = state["done"]
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[key])

    def grad_phi(self, forget: Batch, retain: Batch, graph_f: bool = False, graph_r: bool = False,
                 graph_hu: bool = False) -> _PhiGrad:
        """grad Phi at the current parameters; `graph_*` keep graphs for the outer Hessian."""
        decorrelate = self.cfg.decorrelation != "none"
        autograd_hvp = decorrelate and self.cfg.hessian not in FINITE_DIFF
        loss_f, loss_r = nll(self.model, forget), nll(self.model, retain)
        g_f = grad(loss_f, self.params, create_graph=autograd_hvp or graph_f)
        g_r = grad(loss_r, self.params, create_graph=autograd_hvp or graph_r)
        a, b = all_reduce_mean(_flat(g_f).detach()), all_reduce_mean(_flat(g_r).detach())
        if not decorrelate:
            return _PhiGrad(loss_f, loss_r, a, b, a, 0.0, 0.0, g_f, g_r, None)
        u_f, u_r = _sim_grad(a, b, self.cfg.decorrelation)
        if autograd_hvp:
            s = _dot(g_f, _split(u_f, self.params)) + _dot(g_r, _split(u_r, self.params))
            hu = grad(s, self.params, create_graph=graph_hu, retain_graph=graph_f or graph_r or graph_hu)
            hu_flat = all_reduce_mean(_flat(hu).detach())
        else:
            hu = None
            hu_flat = self._directional(forget, u_f) + self._directional(retain, u_r)
        grad_phi = a - self.cfg.beta * hu_flat
        sim = similarity(a, b, self.cfg.decorrelation).item()
        cos_term = self.cfg.beta * hu_flat.norm().item()
        return _PhiGrad(loss_f, loss_r, a, b, grad_phi, sim, cos_term, g_f, g_r, hu)

    def _step_size(self) -> float:
        """h of the central differences: fd_eps (or the dtype's FD_STEP) times ||theta||."""
        rel = self.cfg.fd_eps or FD_STEP[self.params[0].dtype]
        return rel * max(_flat(p.detach() for p in self.params).norm().item(), 1.0)

    def _at_offset(self, direction: torch.Tensor, step: float, fn):
        """fn() evaluated at theta + step * direction / ||direction||; parameters and buffers restored
        after (a perturbed forward pass in train mode moves BatchNorm's running statistics)."""
        start = [p.detach().clone() for p in self.params]
        buffers = [b.detach().clone() for b in unwrap(self.model).buffers()]
        with torch.no_grad():
            torch._foreach_add_(self.params, _split(direction, self.params), alpha=step / direction.norm().item())
        try:
            return fn()
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, start)
                for buffer, saved in zip(unwrap(self.model).buffers(), buffers, strict=True):
                    buffer.copy_(saved)

    def _central(self, direction: torch.Tensor, fn) -> torch.Tensor:
        """The derivative of fn() (a flat vector) along `direction`, by a central difference."""
        norm = direction.norm()
        if norm == 0:
            return torch.zeros_like(direction)
        h = self._step_size()
        return (self._at_offset(direction, h, fn) - self._at_offset(-direction, h, fn)) * (norm / (2 * h))

    def _directional(self, batch: Batch, u: torch.Tensor) -> torch.Tensor:
        """H u for the loss on `batch`: the central difference of its gradient along u."""
        return self._central(u, lambda: all_reduce_mean(_flat(grad(nll(self.model, batch), self.params))))

    def hessian_phi_vector(self, forget: Batch, retain: Batch) -> tuple[_PhiGrad, torch.Tensor]:
        """grad Phi = v and Hess(Phi) v at the current parameters, as `cfg.hessian` says."""
        option = self.cfg.hessian
        if option == "finite_diff":
            state = self.grad_phi(forget, retain)
            return state, self._central(state.grad_phi, lambda: self.grad_phi(forget, retain).grad_phi)
        if option == "finite_diff_forget":
            state = self.grad_phi(forget, retain)
            return state, self._directional(forget, state.grad_phi)
        decorrelate = self.cfg.decorrelation != "none"
        both = decorrelate and option != "forget_only"
        state = self.grad_phi(forget, retain, graph_f=True, graph_r=both, graph_hu=both and option == "exact")
        v = _split(state.grad_phi, self.params)
        hfv = all_reduce_mean(_flat(grad(_dot(state.g_f, v), self.params, retain_graph=both)))
        if not both:
            return state, hfv
        hrv = all_reduce_mean(_flat(grad(_dot(state.g_r, v), self.params, retain_graph=True)))
        jvp = torch.func.jvp(lambda a, b: _sim_grad(a, b, self.cfg.decorrelation),
                             (state.a, state.b), (hfv, hrv))[1]
        du_f, du_r = (_split(d, self.params) for d in jvp)
        scalar = _dot(state.g_f, du_f) + _dot(state.g_r, du_r)
        if option == "exact":
            scalar = scalar + _dot(state.hu, v)
        w = all_reduce_mean(_flat(grad(scalar, self.params)))
        return state, hfv - self.cfg.beta * w

    def step(self, forget: Batch, retain: Batch) -> dict[str, float]:
        self.model.train()
        kind, ends_iteration = next(self.plan)
        self.done += 1
        logs = {}
        if kind == INNER:
            state = self.grad_phi(forget, retain)
        else:
            state, hv = self.hessian_phi_vector(forget, retain)
        if kind in (INNER, BOTH):
            self._update("inner", -state.grad_phi, self.cfg.lr)  # ascent on Phi
        if kind in (OUTER, BOTH):
            logs = self._outer_step(state, hv)
        losses = global_logs({"loss_f": state.loss_f, "loss_r": state.loss_r})
        logs |= losses | {"cos": (state.a @ state.b / (state.a.norm() * state.b.norm() + NORM_EPS)).item(),
                          "phi": losses["loss_f"] - self.cfg.beta * state.sim,
                          "grad_phi_norm": state.grad_phi.norm().item(), "rho": self.rho,
                          "ratio/cos_to_forget": state.cos_term / (state.a.norm().item() + NORM_EPS)}
        if ends_iteration:
            self.rho *= self.cfg.gamma_rho
        return logs

    def _outer_step(self, state: _PhiGrad, hv: torch.Tensor) -> dict[str, float]:
        penalty_grad = 2 * self.rho * hv
        grad_f = state.b + penalty_grad  # Eq. 9
        logs = {"penalty": state.grad_phi.norm().item() ** 2, "outer_grad_norm": grad_f.norm().item(),
                "ratio/penalty_to_retain": penalty_grad.norm().item() / (state.b.norm().item() + NORM_EPS)}
        self._update("outer", grad_f, self.cfg.lr_out or self.cfg.lr)
        return logs

    def _update(self, loop: str, direction: torch.Tensor, lr: float) -> None:
        """One step down `direction` (a flat gradient): clipped AdamW of that loop, or a clipped plain step.

        A non-finite direction is stepped as it is: the weights turn non-finite and the run loop
        stops the run there as diverged."""
        if self.cfg.optimizer == "sgd":
            norm, limit = direction.norm(), self.cfg.max_step_norm
            if limit and norm > limit:
                direction = direction * (limit / norm)
            with torch.no_grad():
                torch._foreach_add_(self.params, _split(direction, self.params), alpha=-lr)
            return
        for p, g in zip(self.params, _split(direction, self.params), strict=True):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizers[loop].step()
        for p in self.params:
            p.grad = None
