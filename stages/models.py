"""Model builders: one Keras model per ``model.type``, built from params."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow C++ start-up noise; Python errors still show

import keras

from stages.errors import UserError
from stages.params import ModelParams


def build_model(params: ModelParams, n_inputs: int, n_classes: int) -> keras.Sequential:
    """The model to train: ends in softmax, or in logits when ``from_logits`` is set."""
    layers: list[keras.Layer] = [keras.Input((n_inputs,))]
    if params.type == "mlp":
        for units in params.hidden_units:
            layers.append(keras.layers.Dense(units, activation=params.activation))
            if params.dropout:
                layers.append(keras.layers.Dropout(params.dropout))
    else:
        print(
            f"note: model.type {params.type} has no hidden layers; ignoring hidden_units, activation, dropout"
        )
    layers.append(keras.layers.Dense(n_classes, activation=None if params.from_logits else "softmax"))
    return keras.Sequential(layers, name=params.type)


def with_probabilities(model: keras.Model, from_logits: bool) -> keras.Model:
    """The model to save: whatever it was trained on, it returns class probabilities."""
    if not from_logits:
        return model
    return keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_probabilities")


def load_model(path: Path) -> keras.Model:
    """Load a saved model; safe mode refuses code embedded in the file."""
    if not path.exists():
        raise UserError(f"{path}: not found (run the train stage first)")
    return keras.saving.load_model(path, safe_mode=True)
