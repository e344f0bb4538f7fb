"""MLflow: the layout of runs and sweeps, and their writing (`mlflow_log`); Pareto plots (`plots`).

It receives finished numbers and files only. Import from the modules: this package imports nothing.
"""
