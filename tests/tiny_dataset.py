"""A tiny, learnable dataset in the real IDX format, and its registry entry.

Each class lights a different 7x7 block of the 28x28 image; the rest is noise.
A small model learns it in a few epochs, so the whole pipeline can run in seconds.
"""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from stages.lib.datasets import Dataset, IdxFile

CLASS_NAMES = ("north", "east", "south", "west")
BLOCKS = ((0, 10), (10, 20), (20, 10), (10, 0))  # top-left corner of each class's block


def images_for(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        row, col = BLOCKS[label]
        images[index, row : row + 7, col : col + 7] = rng.integers(180, 256, size=(7, 7))
    return images


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, content: bytes) -> IdxFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content, mtime=0))
    return IdxFile(path.name.removesuffix(".gz"), len(content), hashlib.sha256(content).hexdigest())


def write_tiny_dataset(directory: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Dataset:
    """Write the four IDX files into ``directory`` and return the matching registry entry."""
    rng = np.random.default_rng(seed)
    entries = {}
    for split, count, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        labels = np.arange(count, dtype=np.uint8) % len(CLASS_NAMES)
        rng.shuffle(labels)
        entries[f"{split}_images"] = write_gz(
            directory / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images_for(labels, rng))
        )
        entries[f"{split}_labels"] = write_gz(directory / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels))
    return Dataset(class_names=CLASS_NAMES, **entries)
