"""The `mlp-512` reference system of SEEDS.md as the plain Keras script a user would write.

Timed as a whole process by benchmarks/run.py; prints its fit time and test accuracy.
Usage: python benchmarks/reference_mlp512.py <folder with the four MNIST .gz files>
"""

import gzip
import sys
import time

import numpy as np
from tensorflow import keras


def load(path, offset):
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read(), np.uint8, offset=offset)


folder = sys.argv[1]
x_train = load(f"{folder}/train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
y_train = load(f"{folder}/train-labels-idx1-ubyte.gz", 8)
x_test = load(f"{folder}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)
y_test = load(f"{folder}/t10k-labels-idx1-ubyte.gz", 8)

x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)

model = keras.Sequential(
    [
        keras.Input((784,)),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
started = time.perf_counter()
model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.2, verbose=2)
fit_seconds = time.perf_counter() - started
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"fit_seconds={fit_seconds:.2f} test_accuracy={accuracy:.4f}")
