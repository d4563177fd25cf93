"""The experiment catalogue: every named configuration is valid and pins every param but the plot's."""

import pytest

from experiments import catalogue
from stages.lib import schema
from tests.helpers import committed_params

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
