"""Training across devices and machines with ``tf.distribute``, chosen by ``train.distribute``.

``none`` and ``mirrored`` train with Keras' ``model.fit``. ``multi_worker`` cannot: Keras 3's
``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so it runs
``custom_fit``, a ``tf.function`` step under ``strategy.run`` that drives the same model,
optimizer, loss and callbacks, in lockstep on every worker. Unlike ``fit`` it runs one
step per call, without XLA and without batch-level callbacks, and shuffles with NumPy.
"""

import keras
import numpy as np
import tensorflow as tf

from stages.lib.errors import UserError
from stages.lib.models import INFERENCE_BATCH_SIZE
from stages.lib.schema import Params

# Without GPUs, `mirrored` splits the CPU into this many logical devices: the smallest real
# replication, for trying the distributed path; it is not faster than one device on a CPU.
CPU_REPLICAS = 2


def make_strategy(distribute: str) -> tf.distribute.Strategy:
    """The strategy to build and train the model under; call before any other TensorFlow work."""
    if distribute == "multi_worker":
        # Reads the cluster and this worker's place in it from the TF_CONFIG variable.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if distribute == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS
        )
        return tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(CPU_REPLICAS)])
    return tf.distribute.get_strategy()  # the default: one device, no replication


def _replica_slices(strategy, x: np.ndarray, y: np.ndarray, indices: np.ndarray):
    """One global batch, split into consecutive parts, one per replica across all workers."""

    def part(context: tf.distribute.experimental.ValueContext):
        mine = np.array_split(indices, context.num_replicas_in_sync)[context.replica_id_in_sync_group]
        return x[mine], y[mine]

    return strategy.experimental_distribute_values_from_function(part)


def _check_same_data(strategy: tf.distribute.Strategy, sizes: tuple[int, int]) -> None:
    """Workers with different data would wait on each other forever; stop them instead."""
    local = tf.constant(sizes, tf.float32)
    mean = strategy.reduce("MEAN", strategy.run(lambda: tf.identity(local)), None)
    if not np.array_equal(mean.numpy(), local.numpy()):
        raise UserError(f"train/val sizes {sizes} differ between workers: give every worker the same data")


def custom_fit(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    params: Params,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    callbacks: list[keras.callbacks.Callback],
) -> keras.callbacks.History:
    """``model.fit`` for ``multi_worker``: the same epochs, logs, callbacks and returned history.

    Every worker shuffles with the same seed and takes its own part of each global batch
    (``train.batch_size`` stays the global batch size). Each part's loss is summed and
    divided by the global batch's size, so the gradients summed across replicas equal one
    device's. Metrics are summed across workers too, so every worker sees the same logs, and
    early stopping and the learning-rate schedule decide the same on all of them.
    """
    _check_same_data(strategy, (len(train[0]), len(validation[0])))
    loss = model.loss  # the compiled loss, label smoothing included
    per_example_loss = type(loss)(**{**loss.get_config(), "reduction": None})

    def replica_step(x, y, training: bool, global_size: int):
        with tf.GradientTape(watch_accessed_variables=training) as tape:  # validation records nothing
            outputs = model(x, training=training)
            total = tf.nn.compute_average_loss(per_example_loss(y, outputs), global_batch_size=global_size)
            scaled = model.optimizer.scale_loss(total)  # mixed precision's loss scale; else unchanged
        if training:
            variables = model.trainable_variables
            model.optimizer.apply(tape.gradient(scaled, variables), variables)
        correct = tf.reduce_sum(tf.cast(tf.argmax(outputs, 1) == tf.argmax(y, 1), tf.float32))
        return total, correct

    def distributed_step(training: bool):
        @tf.function
        def step(x, y, global_size: int):
            total, correct = strategy.run(replica_step, args=(x, y, training, global_size))
            return strategy.reduce("SUM", total, None), strategy.reduce("SUM", correct, None)

        return step

    def run_epoch(step, x, y, order, size) -> tuple[float, float]:
        """Mean loss and accuracy over ``order``, in global batches of ``size`` (the last one smaller)."""
        loss_sum = correct_sum = 0.0
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            batch_loss, correct = step(*_replica_slices(strategy, x, y, batch), len(batch))
            loss_sum += float(batch_loss) * len(batch)
            correct_sum += float(correct)
        return loss_sum / len(order), correct_sum / len(order)

    train_step, validation_step = distributed_step(training=True), distributed_step(training=False)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, model=model, epochs=params.epochs
    )
    rng = np.random.default_rng(params.seed)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(params.epochs):
        callback_list.on_epoch_begin(epoch)
        order = rng.permutation(len(train[0]))
        loss_value, accuracy = run_epoch(train_step, *train, order, params.train.batch_size)
        val_order = np.arange(len(validation[0]))
        val_loss, val_accuracy = run_epoch(validation_step, *validation, val_order, INFERENCE_BATCH_SIZE)
        logs = {
            "loss": loss_value,
            "accuracy": accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        print(f"Epoch {epoch + 1}/{params.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model.history
