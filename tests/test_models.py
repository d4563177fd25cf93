import typing

import numpy as np
import pytest

from stages.lib import schema
from stages.lib.errors import UserError
from stages.lib.models import USES, build_model, load_model, with_probabilities
from stages.lib.schema import ModelParams
from tests.helpers import make_params


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def build(**changes):
    """The committed params with dotted keys changed, built for 784 pixels and 10 classes."""
    return build_model(make_params(**changes).model, 784, 10)


def build_mlp(**changes):
    return build(**{"model.type": "mlp", **changes})


def test_mlp_layers_and_parameter_count():
    model = build_mlp(**{"model.hidden_units": [128, 64], "model.dropout": 0.2})
    assert layer_types(model) == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.count_params() == (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_mlp_512_reference_parameter_count():
    model = build_mlp(**{"model.hidden_units": [512]})
    assert model.count_params() == 784 * 512 + 512 + 512 * 10 + 10


def test_no_dropout_layer_when_dropout_is_zero():
    model = build_mlp(**{"model.dropout": 0.0, "model.hidden_units": [64]})
    assert layer_types(model) == ["Dense", "Dense"]


def test_linear_is_softmax_regression_and_notes_ignored_params(capsys):
    model = build(**{"model.type": "linear"})
    assert layer_types(model) == ["Dense"]
    assert model.count_params() == 784 * 10 + 10
    note = capsys.readouterr().out
    assert "model.type linear ignores model.hidden_units, model.activation, model.dropout" in note
    assert "model.from_logits" not in note


def test_mlp_notes_the_convolution_params_it_ignores(capsys):
    build_mlp()
    assert (
        "model.type mlp ignores model.conv_filters, model.kernel_size, model.pool_size"
        in capsys.readouterr().out
    )


def test_batch_norm_after_each_hidden_layer():
    model = build_mlp(**{"model.hidden_units": [64, 32], "model.batch_norm": True, "model.dropout": 0.3})
    assert layer_types(model) == [
        "Dense",
        "BatchNormalization",
        "Dropout",
        "Dense",
        "BatchNormalization",
        "Dropout",
        "Dense",
    ]
    dense = (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
    assert model.count_params() == dense + 4 * (64 + 32)  # gamma, beta, moving mean and variance


def test_cnn_matches_the_fashion_cnn_reference(capsys):
    changes = {
        "model.type": "cnn",
        "model.padding": "same",
        "model.hidden_units": [128],
        "model.dropout": 0.25,
        "model.from_logits": True,
    }
    model = build(**changes)
    assert layer_types(model) == [
        "Reshape",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    conv = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
    assert model.count_params() == conv + (7 * 7 * 64 * 128 + 128) + (128 * 10 + 10)
    assert model.layers[-1].activation.__name__ == "linear"  # logits
    assert "ignores" not in capsys.readouterr().out  # a cnn reads every model param


def test_valid_padding_crops_each_convolution():
    changes = {"model.type": "cnn", "model.padding": "valid", "model.hidden_units": [128]}
    model = build(**changes)
    conv1, pool1, conv2, pool2 = model.layers[1:5]
    assert [layer.output.shape[1:] for layer in (conv1, pool1, conv2, pool2)] == [
        (26, 26, 32),
        (13, 13, 32),
        (11, 11, 64),
        (6, 6, 64),  # pooling pads: 11 -> 6
    ]
    conv = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
    assert model.count_params() == conv + (6 * 6 * 64 * 128 + 128) + (128 * 10 + 10)


def test_cnn_options_shape_the_network():
    changes = {"model.type": "cnn", "model.conv_filters": [8], "model.kernel_size": 5, "model.pool_size": 4}
    changes |= {
        "model.padding": "same",
        "model.batch_norm": True,
        "model.dropout": 0.0,
        "model.hidden_units": [16],
    }
    model = build(**changes)
    assert layer_types(model) == [
        "Reshape",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "BatchNormalization",
        "Dense",
    ]
    assert model.layers[1].kernel.shape == (5, 5, 1, 8)
    assert model.layers[4].output.shape == (None, 7 * 7 * 8)


def test_fashion_tutorial_parameter_count():
    changes = {"model.hidden_units": [128], "model.dropout": 0.0, "model.from_logits": True}
    assert build_mlp(**changes).count_params() == 101_770


@pytest.mark.parametrize("model_type", ["linear", "mlp", "cnn"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_saved_model_returns_probabilities(tmp_path, model_type, from_logits):
    changes = {"model.type": model_type, "model.from_logits": from_logits, "model.batch_norm": True}
    model = build(**changes)
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    raw = model.predict(x, verbose=0)
    assert np.allclose(raw.sum(axis=1), 1, atol=1e-5) != from_logits  # logits do not sum to 1
    path = tmp_path / "model.keras"
    with_probabilities(model, from_logits).save(path)
    probabilities = load_model(path).predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert probabilities.min() >= 0
    np.testing.assert_array_equal(probabilities.argmax(axis=1), raw.argmax(axis=1))


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "absent.keras")


@pytest.mark.parametrize(
    "changes",
    [
        {"model.type": "linear"},
        {"model.type": "mlp", "model.hidden_units": [64, 32], "model.batch_norm": True},
        {
            "model.padding": "valid",
            "model.kernel_size": 5,
            "model.conv_filters": [8, 16],
            "model.pool_size": 3,
        },
        {
            "model.padding": "same",
            "model.conv_filters": [4],
            "model.batch_norm": True,
            "model.hidden_units": [16],
        },
    ],
    ids=["linear", "mlp-batch-norm", "cnn-valid", "cnn-same-batch-norm"],
)
def test_the_schema_counts_the_weights_keras_builds(changes):
    """The memory bound of params.yaml rests on this count: it must be the model's own."""
    assert schema.model_size(make_params(**changes).model, 10)[0] == build(**changes).count_params()


def test_every_model_type_the_schema_allows_is_built():
    allowed = typing.get_args(ModelParams.model_fields["type"].annotation)
    assert set(USES) == set(allowed)
    for model_type in allowed:
        assert build(**{"model.type": model_type}).name == model_type


def test_deep_cnn_never_pools_to_nothing():
    changes = {
        "model.type": "cnn",
        "model.padding": "same",
        "model.conv_filters": [4, 4, 4, 4, 4],
        "model.pool_size": 4,
    }
    model = build(**changes)
    flatten = next(layer for layer in model.layers if type(layer).__name__ == "Flatten")
    assert flatten.output.shape[1:] == (4,)  # 28 -> 7 -> 2 -> 1 -> 1 -> 1: a 1x1x4 map


def saved_model_bytes(tmp_path) -> bytes:
    build(**{"model.type": "linear"}).save(tmp_path / "saved.keras")
    return (tmp_path / "saved.keras").read_bytes()


@pytest.mark.parametrize("damage", ["not-a-zip", "zip-header-only", "truncated"])
def test_corrupt_model_file_is_one_clear_error_that_is_not_file_not_found(tmp_path, damage):
    """It used to say "File not found" about a file that exists."""
    content = {
        "not-a-zip": b"not a zip",
        "zip-header-only": b"PK\x03\x04broken",
        "truncated": saved_model_bytes(tmp_path)[:-100],  # a copy cut short
    }[damage]
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(UserError) as failure:
        load_model(path)
    assert str(failure.value) == (
        f"{path}: corrupt: not the zip archive a .keras model is (cut short or overwritten?); "
        f"`dvc checkout {path}` or the train stage restores it"
    )


def test_kernel_size_per_block_and_pooling_before_the_activation():
    changes = {"model.type": "cnn", "model.kernel_size": [5, 3], "model.pool_before_activation": True}
    changes |= {"model.padding": "valid"}
    model = build(**changes, **{"model.conv_filters": [24, 32], "model.dropout": 0.0})
    assert layer_types(model)[:8] == [
        "Reshape",
        "Conv2D",
        "MaxPooling2D",
        "Activation",
        "Conv2D",
        "MaxPooling2D",
        "Activation",
        "Flatten",
    ]
    first, second = model.layers[1], model.layers[4]
    assert first.kernel.shape == (5, 5, 1, 24) and second.kernel.shape == (3, 3, 24, 32)
    assert first.activation.__name__ == "linear" and model.layers[3].activation.__name__ == "relu"
    assert [layer.output.shape[1:] for layer in model.layers[1:7]] == [
        (24, 24, 24),  # valid 5x5: 28 -> 24
        (12, 12, 24),
        (12, 12, 24),
        (10, 10, 32),
        (5, 5, 32),
        (5, 5, 32),
    ]


@pytest.mark.parametrize("model_type", ["mlp", "cnn"])
def test_augmentation_changes_training_inputs_only(model_type):
    params = make_params(**{"model.type": model_type, "model.dropout": 0.0})  # only augmentation is random
    model = build_model(params.model, 784, 10, translate=0.2, flip=True)
    names = layer_types(model)
    assert names[:3] == ["Reshape", "RandomFlip", "RandomTranslation"]
    assert (names[3] == "Flatten") is (model_type == "mlp")  # dense layers take the flat image back
    x = np.random.default_rng(0).random((8, 784), dtype=np.float32)
    predicted = model.predict(x, verbose=0)
    np.testing.assert_array_equal(predicted, model(x, training=False).numpy())  # inference: no augmentation
    assert not np.allclose(predicted, model(x, training=True).numpy())  # training: shifted, mirrored inputs
