"""The fashion-128x2 write-up's own training, as plain Keras, once per seed.

It trains on all 60,000 images and validates on the test set (the write-up's flaw, kept
on purpose), so its figures say whether the write-up's measured 88.37% is a typical run.
Not part of the pipeline.

    python experiments/reference_fashion_128x2.py ../shared/datasets/fashion_mnist 1 2 3 4
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.errors import UserError
from stages.idx import read_images_and_labels


def load(folder: Path, prefix: str):
    images, labels = read_images_and_labels(
        folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz", 10
    )
    return images.reshape(-1, 784).astype("float32") / 255, keras.utils.to_categorical(labels, 10)


def run(folder: Path, seed: int) -> float:
    keras.utils.set_random_seed(seed)
    x_train, y_train = load(folder, "train")
    x_test, y_test = load(folder, "t10k")
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
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    per_epoch = " ".join(f"{value:.4f}" for value in history.history["val_accuracy"])
    print(
        f"seed {seed}: test accuracy {accuracy:.4f}, fit {time.perf_counter() - started:.0f} s, "
        f"per epoch {per_epoch}",
        flush=True,
    )
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="holds the four Fashion-MNIST .gz files")
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args()
    try:
        accuracies = [run(args.folder, seed) for seed in args.seeds]
    except UserError as error:
        sys.exit(f"error: {error}")
    print(f"mean {statistics.mean(accuracies):.4f} over {len(accuracies)} seeds (write-up measured 0.8837)")


if __name__ == "__main__":
    main()
