from __future__ import annotations

import numpy as np
import torch


def compute_distance_matrix(qf: torch.Tensor | np.ndarray, gf: torch.Tensor | np.ndarray,
                            metric: str = "cosine") -> np.ndarray:
    """Query x gallery distances; cosine distance is 1 - cosine similarity."""
    qf, gf = torch.as_tensor(qf).float(), torch.as_tensor(gf).float()
    if metric == "cosine":
        qf = torch.nn.functional.normalize(qf, dim=1)
        gf = torch.nn.functional.normalize(gf, dim=1)
        return (1 - qf @ gf.t()).numpy()
    if metric == "euclidean":
        return torch.cdist(qf, gf).numpy()
    raise ValueError(f"unknown metric {metric!r}; choose cosine or euclidean")
