"""RMU (Li et al. 2024, the WMDP paper): steer the forget data's hidden state at layer l towards a
fixed random direction; keep the retain data's hidden state equal to the frozen model's.

Only the MLP output projections of layers l-2..l are trained, as in the released code. The layer
is a fraction of depth so that the same config works on a 4-layer model and on Zephyr-7B
(layer 7 of 32 ~ 7/31).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ofmu_ray.config import param
from ofmu_ray.methods.base import TEXT, LossMethod, OptimizerConfig, unwrap
from ofmu_ray.methods.distributed import global_mean
from ofmu_ray.methods.losses import Batch, at_least_fp32
from ofmu_ray.models.prompt import IGNORE

_DOWN_PROJ = re.compile(r"layers\.(\d+)\.mlp\.down_proj\.weight$")


@dataclass(frozen=True)
class RMUConfig(OptimizerConfig):
    lr: float = param(1e-2, "learning rate for the tiny embedded models, of which RMU trains a few matrices "
                      "(WMDP release on Zephyr-7B: 5e-5)", low=0.0, high=1.0)
    layer: float = param(7 / 31, "steered layer as a fraction of depth (WMDP release: layer 7 of 32)",
                         low=0.0, high=1.0)
    steering_coeff: float = param(20.0, "c, the norm of the control vector (OpenUnlearning's RMU default; "
                                  "WMDP release: 6.5 at Zephyr's activation scale)", low=0.0)
    alpha: float = param(1.0, "weight of the retain activation-matching term (OpenUnlearning TOFU: 1; "
                         "WMDP release: 1200)", low=0.0)
    seed: int = param(0, "seed of the random control direction")


def _layer(model: torch.nn.Module, cfg: RMUConfig) -> int:
    return round(cfg.layer * (model.config.num_hidden_layers - 1))


def masked_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over sequences of (1/T_b) sum_{t in answer} (1/d) ||h_t - target_t||^2; h is (B, T, d)."""
    per_token = ((h - target) ** 2).mean(-1) * mask
    per_seq = per_token.sum(1) / mask.sum(1).clamp_min(1)
    return global_mean(per_seq.sum(), len(per_seq))


class RMU(LossMethod):
    """L = ||h_l(forget) - c*u||^2 + alpha * ||h_l(retain) - h_l^ref(retain)||^2 (per-token means)."""

    name = "rmu"
    paper = "Li et al. 2024, The WMDP Benchmark (ICML 2024, arXiv 2403.03218)"
    modalities = TEXT
    Config = RMUConfig
    needs_reference = True

    @staticmethod
    def prepare_model(model, cfg):
        layer = _layer(model, cfg)
        keep = {str(i) for i in range(max(0, layer - 2), layer + 1)}
        found = False
        for name, p in model.named_parameters():
            match = _DOWN_PROJ.search(name)
            p.requires_grad_(bool(match and match.group(1) in keep))
            found |= bool(match)
        if not found:
            raise ValueError("rmu needs a model with layers.<i>.mlp.down_proj (Llama, Mistral, Zephyr...)")

    def __init__(self, model, cfg, reference=None, budget=None):
        if unwrap(model) is model:  # under DDP the caller froze the model before wrapping it
            self.prepare_model(model, cfg)
        super().__init__(model, cfg, reference, budget)
        self.layer = _layer(unwrap(model), cfg)
        hidden = unwrap(model).config.hidden_size
        direction = torch.rand(hidden, generator=torch.Generator().manual_seed(cfg.seed))
        self.control = (cfg.steering_coeff * direction / direction.norm()).to(self.params[0].device)

    def _hidden(self, model, batch: Batch) -> torch.Tensor:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    output_hidden_states=True)
        hidden = out.hidden_states[self.layer + 1]  # [0] is the embedding output
        return hidden.to(at_least_fp32(hidden.dtype))

    def loss(self, forget, retain):
        forget_mask = forget["labels"] != IGNORE
        forget_loss = masked_mse(self._hidden(self.model, forget), self.control, forget_mask)
        retain_mask = retain["labels"] != IGNORE
        with torch.no_grad():
            target = self._hidden(self.reference, retain)
        retain_loss = masked_mse(self._hidden(self.model, retain), target, retain_mask)
        loss = forget_loss + self.cfg.alpha * retain_loss
        return loss, {"forget_mse": forget_loss, "retain_mse": retain_loss}
