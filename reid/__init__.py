"""mcreid appearance model: data, models, losses, engine, metrics, inference."""

__version__ = "0.1.0"
