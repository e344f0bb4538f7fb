"""Training: fine-tuning the target and retain-oracle models."""

from ofmu_ray.train.finetune import finetune, steps_for

__all__ = ["finetune", "steps_for"]
