"""The preprocessed data on disk: the contract between preprocess and later stages.

``<dir>/{train,val,test}.npz`` hold ``x`` (N x 784 float32 in [0, 1]) and ``y``
(N x classes one-hot float32), uncompressed so they load in well under a
second; ``<dir>/dataset.json`` names the dataset and its classes in label order.
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


DATASET_FILE = "dataset.json"  # also saved beside the model, so predictions can be named


def save_dataset_info(directory: Path, name: str, class_names: tuple[str, ...]) -> None:
    info = {"name": name, "class_names": list(class_names)}
    write_text(directory / DATASET_FILE, json.dumps(info, indent=1) + "\n")


def load_dataset_info(directory: Path) -> dict:
    """``{"name": ..., "class_names": [...]}`` from a processed-data or model folder."""
    path = directory / DATASET_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run the pipeline first)") from None


def load_classes(directory: Path) -> list[str]:
    return load_dataset_info(directory)["class_names"]
