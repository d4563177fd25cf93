import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stages.evaluate import confused_pairs, headline_metrics, per_class_report, report
from stages.lib import processed, tensorflow_env
from stages.lib.errors import UserError
from stages.lib.models import build_model, predict
from tests.helpers import ROOT, make_params
from tests.tiny_dataset import CLASS_NAMES


def test_headline_metrics_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    y_true = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    metrics = headline_metrics(probabilities, y_true)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3, rel=1e-6)


def test_loss_is_finite_for_a_zero_probability():
    metrics = headline_metrics(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert metrics["loss"] == pytest.approx(-np.log(1e-7))


def test_per_class_report_by_hand():
    actual = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 1])
    report = per_class_report(actual, predicted, ["a", "b", "c"]).set_index("class")
    assert report.loc["a"].tolist() == [1.0, 0.5, pytest.approx(0.6667), 2]
    assert report.loc["b", "precision"] == pytest.approx(0.5) and report.loc["b", "recall"] == 1.0
    assert report.loc["c"].tolist() == [0.0, 0.0, 0.0, 1]  # never predicted: 0, not NaN


def test_report_writes_metrics_tables_and_probabilities(tiny_processed, tmp_path):
    model = build_model(make_params().model, 784, len(CLASS_NAMES))
    x_test, y_test = processed.load_split(tiny_processed, "test")
    metrics = report(
        predict(model, x_test), y_test, list(CLASS_NAMES), tmp_path / "metrics", tmp_path / "p.npy"
    )
    written = json.loads((tmp_path / "metrics/test.json").read_text())
    assert written == metrics and set(written) == {"accuracy", "loss"}
    probabilities = np.load(tmp_path / "p.npy", allow_pickle=False)
    assert probabilities.shape == (100, len(CLASS_NAMES))
    pairs = pd.read_csv(tmp_path / "metrics/confusion.csv")
    assert list(pairs.columns) == ["actual", "predicted"] and len(pairs) == 100
    assert set(pairs["actual"]) == set(CLASS_NAMES)  # class names, not indices
    assert (pairs["actual"] == pairs["predicted"]).mean() == pytest.approx(written["accuracy"])
    per_class = pd.read_csv(tmp_path / "metrics/per_class.csv")
    assert per_class["class"].tolist() == list(CLASS_NAMES) and per_class["support"].sum() == 100
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == [
        "confused_pairs.csv",
        "confusion.csv",
        "per_class.csv",
        "test.json",
    ]
    confused = pd.read_csv(tmp_path / "metrics/confused_pairs.csv")
    # Four classes make at most six pairs, all listed: together they hold every mistake.
    assert confused["count"].sum() == (pairs["actual"] != pairs["predicted"]).sum()


def test_non_finite_probabilities_are_refused_and_nothing_written(tmp_path):
    probabilities = np.full((4, 2), np.nan, dtype=np.float32)  # what a diverged model returns
    with pytest.raises(UserError, match=r"^the model's test probabilities hold NaN or infinite values"):
        report(probabilities, np.eye(2)[[0, 1, 0, 1]], ["a", "b"], tmp_path / "metrics", tmp_path / "p.npy")
    assert list(tmp_path.iterdir()) == []


def test_confused_pairs_count_both_directions_by_hand():
    names = ["T-shirt/top", "Trouser", "Shirt"]
    actual = np.array([0, 0, 2, 2, 2, 1, 1])
    predicted = np.array([2, 0, 0, 0, 2, 1, 2])
    pairs = confused_pairs(actual, predicted, names)
    assert pairs.to_dict("records") == [
        {"class_a": "T-shirt/top", "class_b": "Shirt", "count": 3, "a_as_b": 1, "b_as_a": 2},
        {"class_a": "Trouser", "class_b": "Shirt", "count": 1, "a_as_b": 1, "b_as_a": 0},
    ]


def test_no_mistakes_no_pairs():
    labels = np.array([0, 1, 2])
    assert confused_pairs(labels, labels, ["a", "b", "c"]).empty


@pytest.mark.parametrize("level", [None, "0"], ids=["default", "asked-for"])
def test_tensorflow_startup_lines_only_when_asked_for(tiny_processed, tmp_path, level):
    """A real stage's stderr: TensorFlow's C++ start-up lines are hidden unless the user asks."""
    build_model(make_params().model, 784, len(CLASS_NAMES)).save(tmp_path / "model.keras")
    shutil.copy(ROOT / "params.yaml", tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [
        sys.executable,
        "-m",
        "stages.evaluate",
        "model.keras",
        str(tiny_processed),
        "metrics",
        "p.npy",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=env | ({"TF_CPP_MIN_LOG_LEVEL": level} if level else {}),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "\ntest accuracy " in result.stdout  # the stage's own lines stay
    if level is None:
        assert result.stderr == ""
    else:
        assert "oneDNN custom operations are on" in result.stderr


def test_startup_filter_keeps_what_is_not_below_the_level():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1795980465.377320    2501 cudart_stub.cc:31] Could not find cuda drivers\n",
        "I0000 00:00:1795980465.950782    2501 cpu_feature_guard.cc:227] This TensorFlow binary\n",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow\n",
        "E0000 00:00:1795980465.950782    2501 some.cc:1] a real error\n",
        "F0000 00:00:1795980465.950782    2501 some.cc:2] a fatal one\n",
    ]
    at_3, at_2 = tensorflow_env.StartupFilter(3), tensorflow_env.StartupFilter(2)
    assert [at_3(line) for line in lines] == [""] * 5 + [lines[5]]  # continuations go with their record
    assert [at_2(line) for line in lines] == [""] * 4 + lines[4:]
    assert tensorflow_env.StartupFilter(3)("plain output\n") == "plain output\n"
