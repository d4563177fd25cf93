"""Model builders: one Keras model per ``model.type``, built from params."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of logs

import keras  # noqa: E402

from stages.params import ModelParams  # noqa: E402


def build_model(params: ModelParams, n_inputs: int, n_classes: int) -> keras.Sequential:
    """The model to train: ends in softmax, or in logits when ``from_logits`` is set."""
    layers: list[keras.Layer] = [keras.Input((n_inputs,))]
    if params.type == "mlp":
        for units in params.hidden_units:
            layers.append(keras.layers.Dense(units, activation=params.activation))
            if params.dropout:
                layers.append(keras.layers.Dropout(params.dropout))
    else:
        print(f"note: model.type {params.type} has no hidden layers; ignoring hidden_units, activation, dropout")
    layers.append(keras.layers.Dense(n_classes, activation=None if params.from_logits else "softmax"))
    return keras.Sequential(layers, name=params.type)


def with_probabilities(model: keras.Model, from_logits: bool) -> keras.Model:
    """The model to save: whatever it was trained on, it returns class probabilities."""
    if not from_logits:
        return model
    return keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_probabilities")
