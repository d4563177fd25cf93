"""Training: the optimizer, callbacks, compilation and the fit, from the params; the summary.

Call ``stages.lib.tensorflow_env.configure()`` before importing this module.
"""

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages.lib import cli, distributed, processed
from stages.lib.errors import UserError
from stages.lib.models import INFERENCE_BATCH_SIZE, build_model
from stages.lib.schema import Params, TrainParams

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}
BETAS = (0.9, 0.999)  # Adam's defaults: set otherwise, they are worth a note for the others
# `jit_compile: auto` on CPUs. XLA fuses the many small element-wise ops of a dense step
# but made convolutions several times slower.
XLA_ON_CPU = {"linear": True, "mlp": True, "cnn": False}
# Train steps per call into the compiled graph: per-step Python overhead dominated small
# dense steps. The arithmetic, and so the weights, stay those of one step per call.
# One device only: under MirroredStrategy Keras 3.15's multi-step loop fails to run.
STEPS_PER_EXECUTION = 100


def use_xla(params: Params, replicas: int) -> bool:
    if params.train.distribute == "multi_worker":
        if params.train.jit_compile is True:
            print(
                "note: train.distribute multi_worker ignores train.jit_compile (its step is not XLA-compiled)"
            )
        return False
    if params.train.translate or params.train.flip:
        # Keras compiles no model holding random layers with XLA (and would say so in a warning).
        if params.train.jit_compile is True:
            print("note: train.translate and train.flip rule out XLA; training without train.jit_compile")
        return False
    gpus = bool(tf.config.list_physical_devices("GPU"))
    if replicas > 1 and not gpus:
        # XLA cannot reach variables on another logical CPU device.
        if params.train.jit_compile is True:
            raise UserError(
                "train.jit_compile = True: XLA cannot run across logical CPUs (distribute mirrored)"
            )
        return False
    if params.train.jit_compile != "auto":
        return params.train.jit_compile
    return gpus or XLA_ON_CPU[params.model.type]


def make_deterministic(seed: int, xla: bool) -> None:
    """Same params, same data, same machine: the same weights, bit for bit."""
    keras.utils.set_random_seed(seed)
    # Keras silently turns XLA off under op determinism, so XLA runs skip it; XLA's CPU
    # kernels gave bit-identical weights run to run here (tests/test_train.py checks).
    if not xla:
        tf.config.experimental.enable_op_determinism()


def set_precision(mixed: bool) -> None:
    if not mixed:
        return
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    else:
        print("note: train.mixed_precision is for GPUs; training in float32 on this CPU")


def learning_rate(
    params: TrainParams, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate, or its schedule over the run's ``total_steps`` (all epochs)."""
    if params.lr_schedule == "plateau":
        if params.warmup_fraction:
            print("note: train.lr_schedule plateau ignores train.warmup_fraction")
        return params.learning_rate  # ReduceLROnPlateau, a callback, lowers it
    if params.reduce_lr_patience:
        print("note: train.lr_schedule warmup_cosine ignores train.reduce_lr_patience and reduce_lr_factor")
    warmup = round(params.warmup_fraction * total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=params.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(1, total_steps - warmup),
    )


def make_optimizer(params: TrainParams, total_steps: int) -> keras.optimizers.Optimizer:
    rate = learning_rate(params, total_steps)
    if params.optimizer == "adam":
        if params.momentum:
            print("note: train.optimizer adam ignores train.momentum")
        return keras.optimizers.Adam(learning_rate=rate, beta_1=params.beta_1, beta_2=params.beta_2)
    if (params.beta_1, params.beta_2) != BETAS:
        print(f"note: train.optimizer {params.optimizer} ignores train.beta_1 and train.beta_2")
    return OPTIMIZERS[params.optimizer](learning_rate=rate, momentum=params.momentum)


def compile_model(
    model: keras.Model, params: TrainParams, from_logits: bool, xla: bool, replicas: int, total_steps: int
) -> None:
    model.compile(
        jit_compile=xla,
        steps_per_execution=STEPS_PER_EXECUTION if replicas == 1 else 1,
        optimizer=make_optimizer(params, total_steps),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=params.label_smoothing
        ),
        metrics=["accuracy"],
    )


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """End the run at the first NaN or infinite loss: those weights are lost, and no metric may hold it."""

    def __init__(self, learning_rate: float):
        super().__init__()
        self.learning_rate, self.epoch = learning_rate, 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check(logs, "loss")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(logs, "loss", "val_loss")  # the multi_worker loop reports only here

    def _check(self, logs: dict | None, *names: str) -> None:
        for name in names:
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(value):
                raise UserError(
                    f"training diverged: the {name.replace('val_', 'validation ')} became {float(value)} in "
                    f"epoch {self.epoch}; lower train.learning_rate (now {self.learning_rate})"
                )


class StopOnInterruption(keras.callbacks.Callback):
    """Ends the fit between steps when a deferred Ctrl-C or SIGTERM came in."""

    def __init__(self, check: Callable[[], None]):
        super().__init__()
        self.check = check

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.check()  # the multi_worker loop calls no batch-level callbacks


def make_callbacks(params: TrainParams, live: Live) -> list[keras.callbacks.Callback]:
    """Logging always; early stopping and learning-rate decay on the validation loss when enabled."""
    # First, so no callback after it (logging included) ever sees a non-finite loss.
    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss(params.learning_rate), ElapsedAndRate()]
    if params.lr_schedule == "plateau" and params.reduce_lr_patience:
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
    # Last, so it also logs what the others add to the epoch's logs (seconds, learning rate).
    callbacks.append(DVCLiveCallback(live=live))
    return callbacks


class ElapsedAndRate(keras.callbacks.Callback):
    """Adds to each epoch's logs the seconds since training began (for time to an accuracy) and
    the learning rate, which Keras logs only when a callback changes it."""

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["elapsed_seconds"] = time.perf_counter() - self.started
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def train(params: Params, data_dir: Path, live: Live) -> tuple[keras.Model, dict]:
    """Build and fit the model; return it and the training summary."""
    strategy = distributed.make_strategy(params.train.distribute)
    xla = use_xla(params, strategy.num_replicas_in_sync)
    make_deterministic(params.seed, xla)
    set_precision(params.train.mixed_precision)
    x_train, y_train = processed.load_split(data_dir, "train")
    validation = processed.load_split(data_dir, "val")
    with strategy.scope():
        replicas = strategy.num_replicas_in_sync
        model = build_model(
            params.model,
            x_train.shape[1],
            y_train.shape[1],
            replicas,
            params.train.translate,
            params.train.flip,
        )
        steps = params.epochs * -(-len(x_train) // params.train.batch_size)
        compile_model(model, params.train, params.model.from_logits, xla, replicas, steps)
    model.summary()
    print(f"training on {strategy.num_replicas_in_sync} replicas, XLA {'on' if xla else 'off'}")
    started = time.perf_counter()
    with cli.interruptions_deferred() as check:
        callbacks = [StopOnInterruption(check), *make_callbacks(params.train, live)]
        if params.train.distribute == "multi_worker":
            history = distributed.custom_fit(
                model, strategy, params, (x_train, y_train), validation, callbacks
            )
        else:
            history = model.fit(
                x_train,
                y_train,
                validation_data=validation,
                validation_batch_size=INFERENCE_BATCH_SIZE,
                epochs=params.epochs,
                batch_size=params.train.batch_size,
                callbacks=callbacks,
                verbose=2,
            )
    fit_seconds = round(time.perf_counter() - started, 2)
    kept = kept_epoch(callbacks, len(history.epoch))
    summary = {
        "epochs_run": len(history.epoch),
        "restored_epoch": kept + 1,
        # Of the weights kept and saved: the last epoch's, or those early stopping restored.
        "val_accuracy": history.history["val_accuracy"][kept],
        "val_loss": history.history["val_loss"][kept],
        # The parameter count is in the log (model.summary()): `dvc metrics show` keeps to 120 columns.
        "fit_seconds": fit_seconds,
    }
    return model, summary


def kept_epoch(callbacks: list[keras.callbacks.Callback], epochs_run: int) -> int:
    """The epoch (from 0) whose weights the model ends with."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.EarlyStopping) and callback.best_weights is not None:
            return callback.best_epoch  # restored at the end of training
    return epochs_run - 1
