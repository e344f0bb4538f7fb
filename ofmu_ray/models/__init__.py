"""Models: the causal-LM and tokenizer factory (`factory`, `tokenizer`), prompt formats (`prompt`) and
their tensors (`batch`), LoRA adapters (`lora`), image classifiers (`vision`).

Import from the modules: this package imports nothing, so that `models.prompt` (what the CLI lists)
loads without torch.
"""
