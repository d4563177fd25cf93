import numpy as np
import pytest

from stages.errors import UserError
from stages.models import build_model, load_model, with_probabilities
from tests.conftest import make_params


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_mlp_layers_and_parameter_count():
    model = build_model(make_params(**{"model.hidden_units": [128, 64], "model.dropout": 0.2}).model, 784, 10)
    assert layer_types(model) == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.count_params() == (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_default_mlp_matches_the_mlp_512_reference():
    model = build_model(make_params().model, 784, 10)
    assert model.count_params() == 784 * 512 + 512 + 512 * 10 + 10


def test_no_dropout_layer_when_dropout_is_zero():
    model = build_model(make_params(**{"model.dropout": 0.0}).model, 784, 10)
    assert layer_types(model) == ["Dense", "Dense"]


def test_linear_is_softmax_regression_and_notes_ignored_params(capsys):
    model = build_model(make_params(**{"model.type": "linear"}).model, 784, 10)
    assert layer_types(model) == ["Dense"]
    assert model.count_params() == 784 * 10 + 10
    assert "ignoring hidden_units" in capsys.readouterr().out


@pytest.mark.parametrize("from_logits", [False, True])
def test_saved_model_returns_probabilities(tmp_path, from_logits):
    model = build_model(make_params(**{"model.from_logits": from_logits}).model, 784, 10)
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
