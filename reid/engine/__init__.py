"""Training and evaluation loops; import submodules directly (trainer, evaluator, ...)."""
