import json

import numpy as np
import pandas as pd
import pytest
from dvclive import Live

from stages.train import train
from tests.conftest import make_params

SMALL = {"epochs": 4, "model.hidden_units": [16], "train.batch_size": 32}


def fit(processed_dir, live_dir, **changes):
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        return train(make_params(**{**SMALL, **changes}), processed_dir, live)


def curve(live_dir, split, metric) -> np.ndarray:
    return pd.read_csv(live_dir / "plots/metrics" / split / f"{metric}.tsv", sep="\t")[metric].to_numpy()


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path, monkeypatch):
    # DVCLive looks for a DVC repo from the working directory; keep it away from the project's.
    monkeypatch.chdir(tmp_path)


def test_training_learns_and_logs_curves(tiny_processed, tmp_path):
    model, summary = fit(tiny_processed, tmp_path / "live")
    assert summary["epochs_run"] == 4
    assert summary["params"] == model.count_params() == 784 * 16 + 16 + 16 * 4 + 4
    assert summary["best_val_accuracy"] > 0.9  # the tiny dataset is easy
    assert summary["fit_seconds"] > 0
    loss = curve(tmp_path / "live", "train", "loss")
    val_accuracy = curve(tmp_path / "live", "eval", "accuracy")
    assert len(loss) == len(val_accuracy) == 4
    assert loss[-1] < loss[0]
    logged = json.loads((tmp_path / "live/metrics.json").read_text())
    assert logged["eval"]["accuracy"] == pytest.approx(val_accuracy[-1])


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_each_optimizer_reduces_the_loss(tiny_processed, tmp_path, optimizer):
    fit(tiny_processed, tmp_path / "live", **{"train.optimizer": optimizer, "train.learning_rate": 0.01})
    loss = curve(tmp_path / "live", "train", "loss")
    assert loss[-1] < loss[0]


def test_same_seed_same_weights_other_seed_other_weights(tiny_processed, tmp_path):
    first, _ = fit(tiny_processed, tmp_path / "a", epochs=2)
    again, _ = fit(tiny_processed, tmp_path / "b", epochs=2)
    other, _ = fit(tiny_processed, tmp_path / "c", epochs=2, seed=7)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])
