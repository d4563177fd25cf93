"""The preprocessed data on disk: the contract between preprocess and later stages.

``<dir>/<split>_x.npy`` (N x 784 float32 in [0, 1]) and ``<dir>/<split>_y.npy``
(N x classes one-hot float32) for the splits train, val and test: plain ``.npy``
files, so they are memory-mapped instead of read and copied, and the same arrays
always give the same bytes (DVC then skips retraining when a rerun of preprocess
changed nothing). ``<dir>/dataset.json`` names the dataset and its classes in
label order.
"""

import json
from pathlib import Path

import numpy as np

from stages.lib.atomic import atomic_path, write_text
from stages.lib.errors import UserError

SPLITS = ("train", "val", "test")


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save``'s bytes, written through Python, which reports a full disk as ENOSPC (NumPy: no errno)."""
    array = np.ascontiguousarray(array)
    with atomic_path(path) as temporary, temporary.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, np.lib.format.header_data_from_array_1_0(array))
        file.write(array.data)


def save_split(directory: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    for name, array in (("x", x), ("y", y)):
        save_array(directory / f"{split}_{name}.npy", array)


def load_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read-only memory maps: pages are read only when used, and never copied up front."""
    arrays = []
    for name in ("x", "y"):
        path = directory / f"{split}_{name}.npy"
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except FileNotFoundError:
            raise UserError(f"{path}: not found (run the preprocess stage first)") from None
        except ValueError as error:  # e.g. pickled Python objects, which are never loaded
            raise UserError(f"{path}: not a plain numeric array ({error})") from None
    return arrays[0], arrays[1]


DATASET_FILE = "dataset.json"  # also saved beside the model, so predictions can be named


def save_dataset_info(directory: Path, name: str, class_names: tuple[str, ...]) -> None:
    info = {"name": name, "class_names": list(class_names)}
    write_text(directory / DATASET_FILE, json.dumps(info, indent=1) + "\n")


def load_dataset_info(directory: Path) -> dict:
    """``{"name": ..., "class_names": [...]}`` from a processed-data or model folder."""
    path = directory / DATASET_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run the pipeline first)") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(info, dict) or not isinstance(info.get("name"), str) or not info.get("class_names"):
        raise UserError(f'{path}: expected {{"name": ..., "class_names": [...]}}')
    return info


def load_classes(directory: Path) -> list[str]:
    return load_dataset_info(directory)["class_names"]
