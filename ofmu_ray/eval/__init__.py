"""Evaluation: answer accuracy, TOFU metrics, privacy attacks and the hard in-scope splits."""

from ofmu_ray.eval.accuracy import answer_accuracy, chance_accuracy, contains_value, greedy_answers
from ofmu_ray.eval.tofu import evaluate_model, summarize

__all__ = ["answer_accuracy", "chance_accuracy", "contains_value", "evaluate_model", "greedy_answers", "summarize"]
