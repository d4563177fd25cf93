"""The fashion-128x2 write-up's own training, as plain Keras, once per seed.

It trains on all 60,000 images and validates on the test set (the write-up's flaw, kept
on purpose), so its figures say whether the write-up's measured 88.37% is a typical run.
Standalone like benchmarks/reference_mlp512.py: TensorFlow's defaults, not the pipeline's.

    python experiments/reference_fashion_128x2.py ../shared/datasets/fashion_mnist 1 2 3 4
"""

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def read(path: Path, header_bytes: int) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read(), np.uint8, offset=header_bytes)


def load(folder: Path) -> tuple[np.ndarray, ...]:
    """x_train, y_train, x_test, y_test: flat float32 images in [0, 1], one-hot labels."""
    images = [read(folder / name, 16).reshape(-1, 784).astype("float32") / 255 for name in FILES[0::2]]
    labels = [keras.utils.to_categorical(read(folder / name, 8), 10) for name in FILES[1::2]]
    return images[0], labels[0], images[1], labels[1]


def run(data: tuple[np.ndarray, ...], seed: int) -> float:
    x_train, y_train, x_test, y_test = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(
        x_train, y_train, epochs=10, batch_size=10, validation_data=(x_test, y_test), verbose=0
    )
    per_epoch = history.history["val_accuracy"]  # the test set, as the write-up validated
    print(
        f"seed {seed}: test accuracy {per_epoch[-1]:.4f}, fit {time.perf_counter() - started:.0f} s, "
        f"per epoch {' '.join(f'{value:.4f}' for value in per_epoch)}",
        flush=True,
    )
    return per_epoch[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="holds the four Fashion-MNIST .gz files")
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args()
    missing = [name for name in FILES if not (args.folder / name).is_file()]
    if missing:
        sys.exit(
            f"error: {args.folder} lacks {', '.join(missing)}: expected a folder with the four Fashion-MNIST .gz files"
        )
    data = load(args.folder)
    accuracies = [run(data, seed) for seed in args.seeds]
    print(
        f"mean {statistics.mean(accuracies):.4f} over {len(accuracies)} seeds (the write-up measured 0.8837)"
    )


if __name__ == "__main__":
    main()
