import torch


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances; the clamp keeps sqrt's gradient finite at zero."""
    d2 = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2 * x @ y.t())
    return d2.clamp_min(1e-12).sqrt()
