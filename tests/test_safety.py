"""Nothing the pipeline reads can run code: no pickles, safe model loading, no shell interpolation."""

import re

import keras
import numpy as np
import pytest
import yaml

from stages.lib import processed
from stages.lib.errors import UserError
from stages.lib.models import load_model
from tests.helpers import ROOT


def test_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "train_x.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "train_y.npy", np.zeros((1, 10)))
    with pytest.raises(UserError, match=r"train_x\.npy: not a plain numeric array"):
        processed.load_split(tmp_path, "train")


def test_models_with_embedded_code_are_refused(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(UserError, match=r"lambda\.keras: not a loadable \.keras model .*unsafe"):
        load_model(tmp_path / "lambda.keras")


def test_stage_commands_interpolate_nothing():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert not re.search(r"[$`;|&<>]", stage["cmd"]), name
        assert stage["cmd"].startswith(f"python -m stages.{name} "), name
