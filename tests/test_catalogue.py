"""The experiment catalogue: every named configuration is valid and pins every param but the plot's."""

import pytest
import yaml

from experiments import catalogue
from stages.lib import schema
from tests.helpers import ROOT, committed_params

EXPERIMENTS = catalogue.load()


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_configuration_is_valid_and_pins_every_knob(name):
    changes = EXPERIMENTS[name]
    schema.parse(schema.override(committed_params(), changes))
    knobs = {key for key, _, _ in schema.leaf_fields(schema.Params) if not key.startswith("plot.")}
    assert knobs - set(changes) == set()  # so its results do not move with the defaults


def test_set_arguments_read_back_as_the_same_values():
    arguments = catalogue.set_arguments(
        {"model.hidden_units": [512, 512], "model.from_logits": True, "seed": 1}
    )
    assert arguments == [
        "-S",
        "model.hidden_units=[512, 512]",
        "-S",
        "model.from_logits=true",
        "-S",
        "seed=1",
    ]


def test_later_groups_and_the_experiments_own_keys_win():
    assert EXPERIMENTS["mlp-512"]["train.batch_size"] == 64  # its own key over plain's
    mlp = EXPERIMENTS["best-mnist-mlp"]  # plain, then dense_schedule, then its own keys
    assert (mlp["train.batch_size"], mlp["train.reduce_lr_patience"], mlp["model.dropout"]) == (128, 2, 0.3)
    cnn = EXPERIMENTS["cnn-2026-11"]
    assert (cnn["model.padding"], cnn["model.dropout"], cnn["train.label_smoothing"]) == ("valid", 0.3, 0.05)
    assert EXPERIMENTS["fashion-cnn-2026-11"]["epochs"] == 14


def test_the_fast_recipe_is_the_committed_default():
    fast = yaml.safe_load(catalogue.CATALOGUE.read_text())["shared"]["fast_recipe"]
    default = schema.load(ROOT / "params.yaml").model_dump()
    for key, value in fast.items():
        *sections, name = key.split(".")
        section = default
        for part in sections:
            section = section[part]
        assert section[name] == value, key
