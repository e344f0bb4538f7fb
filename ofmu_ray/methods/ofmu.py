"""OFMU (arXiv 2509.22483): bi-level unlearning by a penalty method.

Inner problem (forgetting has priority), maximised by T plain gradient-ascent steps:
    Phi(theta) = L_f(theta) - beta * Sim(g_f, g_r),   g_f = grad L_f, g_r = grad L_r
Outer problem, one gradient-descent step per outer iteration on the penalty reformulation
(the paper's Eq. 7), whose gradient is the paper's Eq. 9:
    F(theta) = L_r(theta) + rho * ||grad Phi(theta)||^2
    grad F   = grad L_r + 2 * rho * Hess(Phi) @ grad Phi,    rho_{k+1} = gamma_rho * rho_k
The outer step is taken where the inner loop ended (the inner loop warm-starts it).

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
    finite_diff  no double backward anywhere: every Hessian-vector product is a forward difference
                 of plain gradients, H u ~ (g(theta + eps u^) - g(theta)) * ||u|| / eps, reusing g(theta)
                 (inner: one extra forget and one extra retain gradient; outer: one extra grad Phi)
    finite_diff_forget  finite_diff inside, and the outer term of forget_only (one extra gradient)
Where the outer step is evaluated is not recoverable from the paper (its notes write the outer
gradient at the outer iterate, and call the inner loop a warm start). `outer_point` chooses:
    last_inner   at the last inner iterate, applied together with the last ascent step; it reuses
                 that step's gradients and graphs, so the outer step costs only its extra products
    after_inner  after the last ascent step, at a point of its own (one more grad Phi to compute)
Gradients are taken with `torch.autograd.grad` over all trainable parameters and averaged across
data-parallel ranks explicitly (`all_reduce_mean`), so a data-parallel run computes the same
numbers as one process on the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd import grad

from ofmu_ray.config import param
from ofmu_ray.methods.base import Method, MethodConfig, global_logs, unwrap
from ofmu_ray.methods.distributed import all_reduce_mean
from ofmu_ray.methods.losses import Batch, nll

DECORRELATIONS = ("signed", "squared", "abs", "none")
HESSIANS = ("exact", "no_third", "forget_only", "finite_diff", "finite_diff_forget")
OUTER_POINTS = ("last_inner", "after_inner")
FINITE_DIFF = ("finite_diff", "finite_diff_forget")
NORM_EPS = 1e-12  # keeps the cosine finite when a gradient vanishes


@dataclass(frozen=True)
class OFMUConfig(MethodConfig):
    beta: float = param(1.0, "weight of the similarity penalty in Phi (value not given in the paper)", low=0.0)
    rho0: float = param(0.1, "initial penalty weight rho_0 on ||grad Phi||^2", low=0.0)
    gamma_rho: float = param(1.1, "growth of the penalty per outer iteration, rho_{k+1} = gamma_rho * rho_k",
                             low=1.0)
    inner_steps: int = param(5, "T, gradient-ascent steps on Phi per outer iteration (paper: 5-10)",
                             low=1, high=100)
    outer_steps: int = param(0, "K, outer iterations; 0 runs as many as the step budget allows", low=0)
    eta_in: float = param(0.05, "inner (ascent) step size", low=0.0, high=10.0)
    eta_out: float = param(0.1, "outer (descent) step size", low=0.0, high=10.0)
    max_step_norm: float = param(1.0, "clip each update direction to this norm before the step size (the "
                                 "baselines' gradient clipping, HF's default 1.0); 0 = the paper's plain steps",
                                 low=0.0)
    decorrelation: str = param("signed", "Sim: signed = cos (the paper), squared = cos^2 (towards "
                               "orthogonality), abs = |cos|, none = no penalty (ablation)",
                               choices=DECORRELATIONS)
    hessian: str = param("exact", "how the Hessian-vector products are computed (see the module doc)",
                         choices=HESSIANS)
    outer_point: str = param("last_inner", "where the outer step is evaluated (see the module doc)",
                             choices=OUTER_POINTS)
    fd_eps: float = param(1e-3, "finite_diff: step along the unit direction", low=1e-8, high=1.0)


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
    g_f: tuple[torch.Tensor, ...]  # local gradients, with their graphs when asked for
    g_r: tuple[torch.Tensor, ...]
    hu: tuple[torch.Tensor, ...] | None  # local H_f u_f + H_r u_r


class OFMU(Method):
    """OFMU's two loops: inner ascent on Phi, then an outer penalty step (Hessian-vector products).

    Each `step` call is one inner ascent step on one forget batch; every T-th call ends with the
    outer step on the same batches.
    """

    name = "ofmu"
    Config = OFMUConfig
    ddp = False

    def __init__(self, model, cfg, reference=None):
        super().__init__(model, cfg, reference)
        # Fused SDPA kernels have no double backward; eager attention does (ray_stack.md, App. A).
        # finite_diff needs no double backward, so it keeps the faster fused kernels.
        if cfg.hessian not in FINITE_DIFF and hasattr(unwrap(model), "set_attn_implementation"):
            unwrap(model).set_attn_implementation("eager")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.rho = cfg.rho0
        self.inner_done = 0

    @property
    def max_steps(self) -> int | None:
        return self.cfg.outer_steps * self.cfg.inner_steps or None

    def state_dict(self) -> dict:
        return {"rho": self.rho, "inner_done": self.inner_done}

    def load_state_dict(self, state: dict) -> None:
        self.rho, self.inner_done = state["rho"], state["inner_done"]

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
            return _PhiGrad(loss_f, loss_r, a, b, a, 0.0, g_f, g_r, None)
        u_f, u_r = _sim_grad(a, b, self.cfg.decorrelation)
        if autograd_hvp:
            s = _dot(g_f, _split(u_f, self.params)) + _dot(g_r, _split(u_r, self.params))
            hu = grad(s, self.params, create_graph=graph_hu, retain_graph=graph_f or graph_r or graph_hu)
            hu_flat = all_reduce_mean(_flat(hu).detach())
        else:
            hu = None
            hu_flat = (self._directional(forget, u_f, a) + self._directional(retain, u_r, b))
        grad_phi = a - self.cfg.beta * hu_flat
        sim = similarity(a, b, self.cfg.decorrelation).item()
        return _PhiGrad(loss_f, loss_r, a, b, grad_phi, sim, g_f, g_r, hu)

    def _at_offset(self, direction: torch.Tensor, fn):
        """fn() evaluated at theta + fd_eps * direction / ||direction||; parameters restored after."""
        start = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_add_(self.params, _split(direction, self.params), alpha=self.cfg.fd_eps / direction.norm())
        try:
            return fn()
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, start)

    def _directional(self, batch: Batch, u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """H u for the loss on `batch`, by a forward difference of its gradient g (at theta)."""
        norm = u.norm()
        if norm == 0:
            return torch.zeros_like(u)
        g_moved = self._at_offset(u, lambda: all_reduce_mean(_flat(grad(nll(self.model, batch), self.params))))
        return (g_moved - g) * (norm / self.cfg.fd_eps)

    def hessian_phi_vector(self, forget: Batch, retain: Batch) -> tuple[_PhiGrad, torch.Tensor]:
        """grad Phi = v and Hess(Phi) v at the current parameters, as `cfg.hessian` says."""
        option = self.cfg.hessian
        if option == "finite_diff":
            state = self.grad_phi(forget, retain)
            return state, self._finite_diff_hvp(forget, retain, state.grad_phi)
        if option == "finite_diff_forget":
            state = self.grad_phi(forget, retain)
            return state, self._directional(forget, state.grad_phi, state.a)
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

    def _finite_diff_hvp(self, forget: Batch, retain: Batch, v: torch.Tensor) -> torch.Tensor:
        norm = v.norm()
        if norm == 0:
            return torch.zeros_like(v)
        moved = self._at_offset(v, lambda: self.grad_phi(forget, retain).grad_phi)
        return (moved - v) * (norm / self.cfg.fd_eps)

    def step(self, forget: Batch, retain: Batch) -> dict[str, float]:
        cfg = self.cfg
        self.inner_done += 1
        outer_now = self.inner_done == cfg.inner_steps
        if outer_now and cfg.outer_point == "last_inner":
            state, hv = self.hessian_phi_vector(forget, retain)
            self._move(state.grad_phi, cfg.eta_in)  # the last ascent step ...
            logs = self._outer_step(state, hv)  # ... and the outer step, both evaluated here
        else:
            state = self.grad_phi(forget, retain)
            self._move(state.grad_phi, cfg.eta_in)
            logs = self._outer_step(*self.hessian_phi_vector(forget, retain)) if outer_now else {}
        losses = global_logs({"loss_f": state.loss_f, "loss_r": state.loss_r})
        logs |= losses | {"cos": (state.a @ state.b / (state.a.norm() * state.b.norm() + NORM_EPS)).item(),
                          "phi": losses["loss_f"] - cfg.beta * state.sim,
                          "grad_phi_norm": state.grad_phi.norm().item(), "rho": self.rho}
        if outer_now:
            self.rho *= cfg.gamma_rho
            self.inner_done = 0
        return logs

    def _move(self, direction: torch.Tensor, scale: float) -> None:
        # At a sharp minimum the penalty gradient 2 rho Hess(Phi) grad Phi can be ~1e3 (measured on
        # the tiny target): a plain step then wrecks the model, so updates are clipped like the baselines'.
        norm, limit = direction.norm(), self.cfg.max_step_norm
        if limit and norm > limit:
            direction = direction * (limit / norm)
        if not torch.isfinite(norm):
            raise FloatingPointError("ofmu diverged (a non-finite update); lower eta_in / eta_out or rho0")
        with torch.no_grad():
            torch._foreach_add_(self.params, _split(direction, self.params), alpha=scale)

    def _outer_step(self, state: _PhiGrad, hv: torch.Tensor) -> dict[str, float]:
        grad_f = state.b + 2 * self.rho * hv  # Eq. 9
        self._move(grad_f, -self.cfg.eta_out)
        return {"outer_loss_r": all_reduce_mean(state.loss_r.detach()).item(),
                "penalty": state.grad_phi.norm().item() ** 2,
                "outer_grad_norm": grad_f.norm().item()}
