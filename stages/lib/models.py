"""Model builders: one Keras model per ``model.type``, built from params."""

import zipfile
from pathlib import Path

import keras
import numpy as np

from stages.lib.datasets import IMAGE_SIDE
from stages.lib.errors import UserError
from stages.lib.schema import ModelParams, kernel_sizes

# Predicting only (validation, evaluation): large batches are faster and give the same numbers.
INFERENCE_BATCH_SIZE = 1024

# The model params each type reads; the others are ignored with a note.
USES = {
    "linear": {"type", "from_logits"},
    "mlp": {"type", "from_logits", "hidden_units", "activation", "dropout", "batch_norm"},
    "cnn": set(ModelParams.model_fields),
}


def ignored_params(params: ModelParams) -> list[str]:
    return [name for name in ModelParams.model_fields if name not in USES[params.type]]


def _batch_norm(replicas: int) -> keras.Layer:
    # Across replicas, statistics over the whole global batch, so every replica keeps the same.
    return keras.layers.BatchNormalization(synchronized=replicas > 1)


def _dense_layers(params: ModelParams, replicas: int) -> list[keras.Layer]:
    """Hidden Dense layers, each followed by batch normalisation and dropout if enabled."""
    layers = []
    for units in params.hidden_units:
        layers.append(keras.layers.Dense(units, activation=params.activation))
        if params.batch_norm:
            layers.append(_batch_norm(replicas))
        if params.dropout:
            layers.append(keras.layers.Dropout(params.dropout))
    return layers


def _augmentation(translate: float, flip: bool) -> list[keras.Layer]:
    """Random shifts and mirrors of the image, drawn from the global seed; active in training only."""
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    if translate:
        # The background is 0: what a shift uncovers must look like background, not smeared strokes.
        layers.append(
            keras.layers.RandomTranslation(translate, translate, fill_mode="constant", fill_value=0.0)
        )
    return layers


def _conv_layers(params: ModelParams, replicas: int) -> list[keras.Layer]:
    """Convolution blocks: Conv2D, batch norm, max pooling, the activation before or after pooling."""
    layers: list[keras.Layer] = []
    for filters, kernel in zip(
        params.conv_filters, kernel_sizes(params.kernel_size, len(params.conv_filters)), strict=True
    ):
        late = params.pool_before_activation
        layers.append(
            keras.layers.Conv2D(
                filters, kernel, padding=params.padding, activation=None if late else params.activation
            )
        )
        if params.batch_norm:
            layers.append(_batch_norm(replicas))
        # Pooling pads ("same"), so it keeps at least a 1x1 map: never a crash.
        layers.append(keras.layers.MaxPooling2D(params.pool_size, padding="same"))
        if late:
            layers.append(keras.layers.Activation(params.activation))
    layers.append(keras.layers.Flatten())
    if params.dropout:
        layers.append(keras.layers.Dropout(params.dropout))
    return layers


def build_model(
    params: ModelParams,
    n_inputs: int,
    n_classes: int,
    replicas: int = 1,
    translate: float = 0.0,
    flip: bool = False,
) -> keras.Sequential:
    """The model to train, on flat inputs: ends in softmax, or in logits when ``from_logits`` is set.

    ``translate`` and ``flip`` (``train.*``) augment the images as they come in, in training only.
    """
    ignored = ignored_params(params)
    if ignored:
        print(f"note: model.type {params.type} ignores model.{', model.'.join(ignored)}")
    layers: list[keras.Layer] = [keras.Input((n_inputs,))]
    augmentation = _augmentation(translate, flip)
    if params.type == "cnn" or augmentation:
        layers.append(keras.layers.Reshape((IMAGE_SIDE, IMAGE_SIDE, 1)))
        layers += augmentation
    if params.type == "cnn":
        layers += _conv_layers(params, replicas)
    elif augmentation:
        layers.append(keras.layers.Flatten())
    if params.type in ("mlp", "cnn"):
        layers += _dense_layers(params, replicas)
    # float32 even under mixed precision: a float16 softmax or loss loses small probabilities.
    output = keras.layers.Dense(
        n_classes, activation=None if params.from_logits else "softmax", dtype="float32"
    )
    layers.append(output)
    return keras.Sequential(layers, name=params.type)


def with_probabilities(model: keras.Model, from_logits: bool) -> keras.Model:
    """The model to save: whatever it was trained on, it returns class probabilities."""
    if not from_logits:
        return model
    return keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_probabilities")


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x, batch_size=INFERENCE_BATCH_SIZE, verbose=0)


def load_model(path: Path) -> keras.Model:
    """Load a saved model; safe mode refuses code embedded in the file."""
    if not path.exists():
        raise UserError(f"{path}: not found (run the train stage first)")
    # Keras reports a damaged archive as "File not found": say what it is.
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path}: corrupt: not the zip archive a .keras model is (cut short or overwritten?); "
            f"`dvc checkout {path}` or the train stage restores it"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: not a loadable .keras model ({str(error).splitlines()[0]})") from None
