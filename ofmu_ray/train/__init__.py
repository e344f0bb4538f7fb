"""Training: fine-tuning the target and retain-oracle models."""

from ofmu_ray.train.finetune import FinetuneConfig, finetune, steps_for

__all__ = ["FinetuneConfig", "finetune", "steps_for"]
