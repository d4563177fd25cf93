"""Two reference systems as the plain Keras their write-ups ran: no pipeline, TensorFlow's defaults.

    python experiments/plain_keras.py mlp-512 ../shared/datasets [--seed N]
    python experiments/plain_keras.py fashion-128x2 ../shared/datasets [--seed N]

`mlp-512` holds out 20% for validation, as its write-up did; benchmarks/run.py times it as a
whole process. `fashion-128x2` trains on all 60,000 images and validates on the test set (its
write-up's flaw, kept on purpose), so its figures say how typical the published 88.37% is.
Prints `fit_seconds=... test_accuracy=...` after Keras' line per epoch (whose val_accuracy is
the test set's, for fashion-128x2).
"""

import argparse
import time
from pathlib import Path

from tensorflow import keras

from stages.lib.datasets import DATASETS
from stages.lib.idx import read_dataset

SYSTEMS = {
    "mlp-512": {"dataset": "mnist", "hidden": [512], "optimizer": "rmsprop", "batch_size": 64},
    "fashion-128x2": {
        "dataset": "fashion_mnist",
        "hidden": [128, 128],
        "optimizer": "adam",
        "batch_size": 10,
    },
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("system", choices=SYSTEMS)
parser.add_argument("mirror", type=Path, help="holds <dataset>/<file>.gz, e.g. ../shared/datasets")
parser.add_argument("--seed", type=int, help="without it, unseeded, as the write-ups ran")
args = parser.parse_args()
system = SYSTEMS[args.system]
if args.seed is not None:
    keras.utils.set_random_seed(args.seed)

dataset = system["dataset"]
(x_train, y_train), (x_test, y_test) = read_dataset(args.mirror / dataset, DATASETS[dataset])
x_train = x_train.reshape(-1, 784).astype("float32") / 255
x_test = x_test.reshape(-1, 784).astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)

model = keras.Sequential(
    [keras.Input((784,))]
    + [keras.layers.Dense(units, activation="relu") for units in system["hidden"]]
    + [keras.layers.Dense(10, activation="softmax")]
)
model.compile(optimizer=system["optimizer"], loss="categorical_crossentropy", metrics=["accuracy"])
validation = {"validation_split": 0.2} if args.system == "mlp-512" else {"validation_data": (x_test, y_test)}
started = time.perf_counter()
model.fit(x_train, y_train, epochs=10, batch_size=system["batch_size"], verbose=2, **validation)
fit_seconds = time.perf_counter() - started
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"fit_seconds={fit_seconds:.2f} test_accuracy={accuracy:.4f}")
