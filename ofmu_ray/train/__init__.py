"""Training: fine-tuning the target and retain-oracle models, and running unlearning methods."""

from ofmu_ray.train.finetune import finetune, steps_for
from ofmu_ray.train.unlearn import batches, unlearn

__all__ = ["batches", "finetune", "steps_for", "unlearn"]
