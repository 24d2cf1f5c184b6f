from reid.metrics.distance import compute_distance_matrix
from reid.metrics.rank import evaluate_rank
from reid.metrics.rerank import re_ranking

__all__ = ["compute_distance_matrix", "evaluate_rank", "re_ranking"]
