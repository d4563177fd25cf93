"""Training across devices and machines with ``tf.distribute``, chosen by ``train.distribute``.

``none`` and ``mirrored`` train with Keras' ``model.fit``. ``multi_worker`` cannot: Keras 3's
``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so it runs
``custom_fit``, a ``tf.function`` step under ``strategy.run`` that drives the same model,
optimizer, loss and callbacks, in lockstep on every worker.
"""

import keras
import numpy as np
import tensorflow as tf

from stages.params import Params

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
    (``train.batch_size`` stays the global batch size). The loss is summed over a global
    batch and divided by its size, so the summed gradients equal one device's. Metrics are
    summed across workers, so every worker sees the same logs and early stopping and the
    learning-rate schedule decide the same on all of them. A last partial batch is dropped:
    with unequal parts the workers would wait on each other.
    """
    loss = model.loss  # the compiled loss, label smoothing included
    per_example_loss = type(loss)(**{**loss.get_config(), "reduction": None})

    def replica_step(x, y, training: bool, global_size: int):
        with tf.GradientTape() as tape:
            outputs = model(x, training=training)
            total = tf.nn.compute_average_loss(per_example_loss(y, outputs), global_batch_size=global_size)
        if training:
            variables = model.trainable_variables
            model.optimizer.apply(tape.gradient(total, variables), variables)
        correct = tf.reduce_sum(tf.cast(tf.argmax(outputs, 1) == tf.argmax(y, 1), tf.float32))
        return total, correct

    def distributed_step(training: bool, global_size: int):
        @tf.function
        def step(x, y):
            total, correct = strategy.run(replica_step, args=(x, y, training, global_size))
            return strategy.reduce("SUM", total, None), strategy.reduce("SUM", correct, None)

        return step

    def run_epoch(step, x, y, order, size) -> tuple[float, float]:
        """Mean loss and accuracy over the full global batches of ``order``."""
        steps = len(order) // size
        loss_sum = correct_sum = 0.0
        for index in range(steps):
            batch_loss, correct = step(
                *_replica_slices(strategy, x, y, order[index * size : (index + 1) * size])
            )
            loss_sum += float(batch_loss)
            correct_sum += float(correct)
        return loss_sum / steps, correct_sum / (steps * size)

    batch_size, val_size = params.train.batch_size, len(validation[0])
    train_step = distributed_step(training=True, global_size=batch_size)
    # The whole validation split is one global batch, split across the replicas.
    validation_step = distributed_step(training=False, global_size=val_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, model=model, epochs=params.epochs
    )
    rng = np.random.default_rng(params.seed)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(params.epochs):
        callback_list.on_epoch_begin(epoch)
        loss_value, accuracy = run_epoch(train_step, *train, rng.permutation(len(train[0])), batch_size)
        val_loss, val_accuracy = run_epoch(validation_step, *validation, np.arange(val_size), val_size)
        logs = {
            "loss": loss_value,
            "accuracy": accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        }
        print(f"Epoch {epoch + 1}/{params.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model.history
