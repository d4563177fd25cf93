"""The preprocessed data on disk: the contract between preprocess and later stages.

``<dir>/{train,val,test}.npz`` hold ``x`` (N x 784 float32 in [0, 1]) and ``y``
(N x classes one-hot float32), uncompressed so they load in well under a
second; ``<dir>/classes.json`` lists the class names in label order.
"""

import json
from pathlib import Path

import numpy as np

from stages.atomic import atomic_path, write_text
from stages.errors import UserError

SPLITS = ("train", "val", "test")


def save_split(directory: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    with atomic_path(directory / f"{split}.npz") as temporary:
        np.savez(temporary, x=x, y=y)


def load_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    path = directory / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays["x"], arrays["y"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run the preprocess stage first)") from None


def save_classes(directory: Path, class_names: tuple[str, ...]) -> None:
    write_text(directory / "classes.json", json.dumps(list(class_names), indent=1) + "\n")


def load_classes(directory: Path) -> list[str]:
    path = directory / "classes.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run the preprocess stage first)") from None
