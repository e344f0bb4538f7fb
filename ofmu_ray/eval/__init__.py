"""Evaluation metrics."""

from ofmu_ray.eval.accuracy import answer_accuracy, chance_accuracy, contains_value, greedy_answers

__all__ = ["answer_accuracy", "chance_accuracy", "contains_value", "greedy_answers"]
