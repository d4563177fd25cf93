"""Stage 2: IDX files -> flat, normalised, one-hot train/val/test arrays.

The validation split is held out of the training set, stratified by class and
seeded; the test set is passed through untouched.
"""

from pathlib import Path

import numpy as np

from stages.lib import cli, processed, schema
from stages.lib.atomic import atomic_folder
from stages.lib.datasets import DATASETS
from stages.lib.errors import UserError
from stages.lib.idx import read_dataset


def flatten_and_normalise(images: np.ndarray) -> np.ndarray:
    """(N, side, side) uint8 -> (N, side * side) float32 in [0, 1]."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat /= 255.0  # in place: no second full-size copy
    return flat


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[labels]


def stratified_sample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample holding ``fraction`` of each class (rounded)."""
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(members, size=round(len(members) * fraction), replace=False)
        for members in (np.flatnonzero(labels == label) for label in np.unique(labels))
    ]
    return np.sort(np.concatenate(picked))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (train, val): each class contributes ``val_fraction`` of its samples to val."""
    val_index = stratified_sample(labels, val_fraction, seed)
    train_index = np.setdiff1d(np.arange(len(labels)), val_index, assume_unique=True)
    if len(train_index) == 0 or len(val_index) == 0:
        raise UserError(
            f"data.val_fraction = {val_fraction} leaves an empty split of {len(labels)} training samples"
        )
    return train_index, val_index


def train_subset(
    labels: np.ndarray, train_index: np.ndarray, fraction: float, seed: int, class_names: tuple[str, ...]
) -> np.ndarray:
    """``train_index`` cut to ``fraction`` of each class; an error if a class would have no sample left."""
    subset = train_index[stratified_sample(labels[train_index], fraction, seed)]
    kept = np.bincount(labels[subset], minlength=len(class_names))
    lost = [class_names[label] for label in np.flatnonzero(kept == 0)]
    if lost:
        # round() takes a class of n samples to none below a fraction of 0.5 / n (0.5 itself included).
        counts = np.bincount(labels[train_index], minlength=len(class_names))
        smallest = int(counts[counts > 0].min())
        raise UserError(
            f"data.train_fraction = {fraction} leaves no training samples of class{'es' if len(lost) > 1 else ''} "
            f"{', '.join(lost)} (the smallest class has {smallest} samples before it); raise it to at least "
            f"{(50 // smallest + 1) / 100}"
        )
    return subset


def preprocess(
    raw_dir: Path,
    out_dir: Path,
    dataset_name: str,
    val_fraction: float,
    seed: int,
    train_fraction: float = 1.0,
) -> None:
    dataset = DATASETS[dataset_name]
    n_classes = len(dataset.class_names)
    (train_images, train_labels), (test_images, test_labels) = read_dataset(raw_dir / dataset_name, dataset)
    train_index, val_index = stratified_split(train_labels, val_fraction, seed)
    if train_fraction < 1:
        train_index = train_subset(train_labels, train_index, train_fraction, seed, dataset.class_names)
    with atomic_folder(out_dir) as folder:  # whole or not at all: a full disk stops it midway
        # Split the uint8 images before converting: a quarter of the memory per copy.
        for split, images, labels in (
            ("train", train_images[train_index], train_labels[train_index]),
            ("val", train_images[val_index], train_labels[val_index]),
            ("test", test_images, test_labels),
        ):
            processed.save_split(folder, split, flatten_and_normalise(images), one_hot(labels, n_classes))
            print(f"{split}: {len(labels)} samples")
        processed.save_dataset_info(folder, dataset_name, dataset.class_names)


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("raw_dir", type=Path, help="holds <dataset>/*.gz, e.g. data/raw")
    parser.add_argument("out_dir", type=Path, help="e.g. data/processed")
    args = parser.parse_args()
    params = schema.load()
    data = params.data
    preprocess(args.raw_dir, args.out_dir, data.dataset, data.val_fraction, params.seed, data.train_fraction)


if __name__ == "__main__":
    cli.run(main)
