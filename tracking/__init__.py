"""Detection, tracking and multi-camera association (built on reid.inference)."""
