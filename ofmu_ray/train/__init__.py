"""Training: fine-tuning the target and retain-oracle models (`finetune`, `classifier`), and the
unlearning run: what it unlearns (`task`), its loop (`loop`), its checkpoints (`checkpoint`), and
where it runs, in this process or on Ray Train workers (`launch`).

Import from the modules: this package imports nothing.
"""
