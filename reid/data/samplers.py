"""P x K identity batches: the batch-hard losses need K images of each of P people."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np


class PKSampler:
    """Yields lists of P*K indices: P distinct identities, K images of each.

    An identity with fewer than K images is topped up by repetition. The order depends only
    on (seed, epoch), so a resumed run replays the same batches, and every DDP rank can
    compute the same list and take its own share.
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0):
        self.p, self.k, self.seed = p, k, seed
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            self.by_pid[int(pid)].append(i)
        if len(self.by_pid) < p:
            raise ValueError(f"P={p} identities per batch but the data has only "
                             f"{len(self.by_pid)}; lower sampler.p")

    def batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        chunks: dict[int, list[list[int]]] = {}
        for pid, idx in self.by_pid.items():
            idx = list(rng.permutation(idx))
            if len(idx) < self.k:
                idx += list(rng.choice(idx, self.k - len(idx), replace=True))
            usable = len(idx) - len(idx) % self.k
            chunks[pid] = [idx[i:i + self.k] for i in range(0, usable, self.k)]
        out = []
        while True:
            alive = [pid for pid, c in chunks.items() if c]
            if len(alive) < self.p:
                return out
            chosen = rng.choice(alive, self.p, replace=False)
            out.append([int(i) for pid in chosen for i in chunks[int(pid)].pop()])

    def __len__(self) -> int:
        return len(self.batches(0))

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(0))
