"""Stage 3: train the classifier on the train split, watching the validation split.

Logs per-epoch loss and accuracy with DVCLive, writes the training summary
(epochs run, best validation accuracy, parameter count, fit seconds) and saves
the model in the native ``.keras`` format, returning probabilities.
"""

import argparse
import time
from pathlib import Path

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages import params as params_schema
from stages import processed
from stages.atomic import atomic_path
from stages.errors import run
from stages.models import build_model, with_probabilities
from stages.params import Params, TrainParams

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}
WITH_MOMENTUM = {"rmsprop", "sgd"}


def make_deterministic(seed: int, jit_compile: bool | str) -> None:
    """Same params, same data, same machine: the same weights, bit for bit."""
    keras.utils.set_random_seed(seed)
    # Keras silently turns XLA off under op determinism, so forcing XLA skips it;
    # XLA's CPU kernels gave bit-identical weights run to run here (tests/test_train.py checks).
    if jit_compile is not True:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(params: TrainParams) -> keras.optimizers.Optimizer:
    optimizer = OPTIMIZERS[params.optimizer]
    if params.optimizer in WITH_MOMENTUM:
        return optimizer(learning_rate=params.learning_rate, momentum=params.momentum)
    if params.momentum:
        print(f"note: train.optimizer {params.optimizer} ignores train.momentum")
    return optimizer(learning_rate=params.learning_rate)


def compile_model(model: keras.Model, params: TrainParams, from_logits: bool) -> None:
    model.compile(
        jit_compile=params.jit_compile,  # "auto": Keras' choice, XLA on GPUs only
        optimizer=make_optimizer(params),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=params.label_smoothing
        ),
        metrics=["accuracy"],
    )


def make_callbacks(params: TrainParams, live: Live) -> list[keras.callbacks.Callback]:
    """Logging always; early stopping and learning-rate decay on the validation loss when enabled."""
    callbacks: list[keras.callbacks.Callback] = []
    if params.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=params.reduce_lr_factor,
                patience=params.reduce_lr_patience,
                verbose=1,
            )
        )
    if params.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=params.early_stopping_patience,
                restore_best_weights=True,
                verbose=1,
            )
        )
    # Last, so it also logs the learning rate ReduceLROnPlateau adds to the epoch's logs.
    callbacks.append(DVCLiveCallback(live=live))
    return callbacks


def train(params: Params, data_dir: Path, live: Live) -> tuple[keras.Model, dict]:
    """Build and fit the model; return it and the training summary."""
    make_deterministic(params.seed, params.train.jit_compile)
    x_train, y_train = processed.load_split(data_dir, "train")
    validation = processed.load_split(data_dir, "val")
    model = build_model(params.model, x_train.shape[1], y_train.shape[1])
    compile_model(model, params.train, params.model.from_logits)
    model.summary()
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=validation,
        epochs=params.epochs,
        batch_size=params.train.batch_size,
        callbacks=make_callbacks(params.train, live),
        verbose=2,
    )
    summary = {
        "epochs_run": len(history.epoch),
        "best_val_accuracy": max(history.history["val_accuracy"]),
        "params": model.count_params(),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    return model, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="preprocessed splits, e.g. data/processed")
    parser.add_argument("model_path", type=Path, help="where the .keras model goes")
    parser.add_argument("live_dir", type=Path, help="DVCLive's folder for curves and summary")
    args = parser.parse_args()
    params = params_schema.load()
    with Live(str(args.live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        model, summary = train(params, args.data_dir, live)
        for name, value in summary.items():
            live.log_metric(name, value, plot=False)
    with atomic_path(args.model_path) as temporary:
        with_probabilities(model, params.model.from_logits).save(temporary)
    # The class names travel with the model, for whoever uses it next (stages.predict).
    info = processed.load_dataset_info(args.data_dir)
    processed.save_dataset_info(args.model_path.parent, info["name"], info["class_names"])
    print(", ".join(f"{name} {value}" for name, value in summary.items()))


if __name__ == "__main__":
    run(main)
