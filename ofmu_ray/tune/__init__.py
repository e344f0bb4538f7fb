"""Sweeps: what a sweep runs (`config`), search spaces (`spaces`), the Ray Tune + Optuna glue (`tuner`),
the MLflow record of each trial (`trial_logger`), Pareto fronts and hypervolume (`pareto`), a sweep's
results read back from MLflow (`results`), and the sweep itself (`sweep`).

Import from the modules: this package imports nothing, so that the CLI reads `config` without Ray.
"""
