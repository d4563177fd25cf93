"""Reading gzipped IDX files, the format MNIST-style datasets ship in."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from stages.lib.datasets import IMAGE_SIDE, Dataset
from stages.lib.errors import UserError

UBYTE = 0x08  # the only element type these datasets use


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in a gzipped IDX file, checking its header."""
    try:
        with gzip.open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the download stage first)") from None
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{path}: not a readable gzip file ({error})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != UBYTE:
        raise UserError(f"{path}: bad IDX magic number {data[:4].hex()}, expected 000008xx")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise UserError(f"{path}: bad IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) + header
    if len(data) != expected:
        raise UserError(
            f"{path}: payload is {len(data)} bytes, but the header's shape {shape} needs {expected}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_images_and_labels(
    images_path: Path, labels_path: Path, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images/labels pair: (N, side, side) uint8 images and N labels < n_classes."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise UserError(
            f"{images_path}: images have shape {images.shape}, expected (N, {IMAGE_SIDE}, {IMAGE_SIDE})"
        )
    if labels.ndim != 1:
        raise UserError(f"{labels_path}: labels have shape {labels.shape}, expected (N,)")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= n_classes:
        raise UserError(
            f"{labels_path}: label {labels.max()} is outside the {n_classes} classes (0-{n_classes - 1})"
        )
    return images, labels


def read_dataset(folder: Path, dataset: Dataset) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """((train images, labels), (test images, labels)) from a folder holding the dataset's .gz files."""
    n_classes = len(dataset.class_names)
    return (
        read_images_and_labels(
            folder / f"{dataset.train_images.name}.gz", folder / f"{dataset.train_labels.name}.gz", n_classes
        ),
        read_images_and_labels(
            folder / f"{dataset.test_images.name}.gz", folder / f"{dataset.test_labels.name}.gz", n_classes
        ),
    )
