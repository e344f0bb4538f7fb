"""Family-free evaluation maths: the formulas, pure functions of per-item numbers (`formulas`); the
model passes that produce those numbers (`scoring`); answer accuracy (`accuracy`). A family composes
them into its metrics (`families/<family>/evaluate.py`).
"""
