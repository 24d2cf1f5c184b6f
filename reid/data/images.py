"""Decode a list of records once into one uint8 tensor, so training never touches the disk.

Market-1501 decodes to 12,936 x 3 x 128 x 64 bytes (318 MB): small enough to keep in memory,
or on the GPU, and augment there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
from tqdm import tqdm

from reid.data.datasets import DatasetError, Record


def read_image(path: str) -> np.ndarray:
    """BGR uint8 image, or a DatasetError naming the file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot decode image {path}: the file is missing, empty or corrupt; "
                           "replace it or remove it from the dataset")
    return image


def load_images(records: list[Record], size: tuple[int, int], desc: str = "decode",
                workers: int = 4) -> torch.Tensor:
    """N x 3 x H x W uint8 RGB tensor, each image resized to ``size`` (height, width)."""
    height, width = size
    out = np.empty((len(records), height, width, 3), dtype=np.uint8)

    def decode(i: int) -> None:
        image = read_image(records[i].path)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = image[:, :, ::-1]

    with ThreadPoolExecutor(workers) as pool:
        list(tqdm(pool.map(decode, range(len(records))), total=len(records), desc=desc,
                  leave=False, mininterval=2))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
