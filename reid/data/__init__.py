from reid.data.datasets import (
    DatasetError,
    Record,
    ReidDataset,
    build_dataset,
    csv_records,
    image_folder,
    market1501,
)
from reid.data.images import load_images, read_image
from reid.data.samplers import PKSampler
from reid.data.transforms import AugmentConfig, augment, normalize

__all__ = [
    "DatasetError", "Record", "ReidDataset", "build_dataset", "csv_records", "image_folder",
    "market1501", "load_images", "read_image", "PKSampler", "AugmentConfig", "augment",
    "normalize",
]
