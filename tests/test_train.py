import json
import os
import re
import subprocess
import sys
import time
import typing

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from dvclive import Live

from stages.lib import processed, schema, tensorflow_env
from stages.lib.errors import UserError
from stages.lib.schema import TrainParams
from stages.lib.training import (
    OPTIMIZERS,
    XLA_ON_CPU,
    make_callbacks,
    make_optimizer,
    set_precision,
    train,
    use_xla,
)
from tests.helpers import NO_SCHEDULE, ROOT, committed_params, cpu_only, gpu_only, make_params

# Small and plain: each test turns on what it checks. No XLA (its compiling costs seconds per
# fit) but where a test says so: `jit_compile: auto`, as the stage runs a dense model.
XLA = {"train.jit_compile": "auto"}
SMALL = {
    "epochs": 4,
    "model.type": "mlp",
    "model.hidden_units": [16],
    "train.batch_size": 32,
    "train.label_smoothing": 0.0,
    "train.early_stopping_patience": 0,
    "train.reduce_lr_patience": 0,
    "train.jit_compile": False,
}


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
    started = time.perf_counter()
    model, summary = fit(tiny_processed, tmp_path / "live", **XLA)
    wall = time.perf_counter() - started
    assert model.jit_compile  # a dense model trains XLA-compiled, as the stage runs it
    assert summary["epochs_run"] == 4
    assert model.count_params() == 784 * 16 + 16 + 16 * 4 + 4
    assert summary["val_accuracy"] > 0.9  # the tiny dataset is easy
    assert summary["restored_epoch"] == 4  # no early stopping: the last epoch's weights
    assert 0.1 * wall < summary["fit_seconds"] < wall  # the fit's share of the call, in seconds
    loss = curve(tmp_path / "live", "train", "loss")
    val_accuracy = curve(tmp_path / "live", "eval", "accuracy")
    assert len(loss) == len(val_accuracy) == 4
    assert loss[-1] < loss[0]
    logged = json.loads((tmp_path / "live/metrics.json").read_text())
    assert logged["eval"]["accuracy"] == pytest.approx(val_accuracy[-1])


def test_a_loss_that_blows_up_stops_training_at_once(tiny_processed, tmp_path):
    """A finite but absurd learning rate: the first non-finite loss ends the run, nothing NaN is logged."""
    with pytest.raises(UserError) as failure:
        fit(tiny_processed, tmp_path / "live", **{"train.optimizer": "sgd", "train.learning_rate": 1e30})
    assert re.fullmatch(
        r"training diverged: the loss became (nan|inf) in epoch 1; lower train\.learning_rate \(now 1e\+30\)",
        str(failure.value),
    )
    logged = [path.read_text() for path in (tmp_path / "live").rglob("*") if path.is_file()]
    assert not any(word in text.lower() for text in logged for word in ("nan", "inf"))


@pytest.mark.slow  # a train stage process, TensorFlow started
def test_diverging_train_stage_ends_with_one_line_and_no_model(tiny_processed, tmp_path):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            schema.override(
                committed_params(), {**SMALL, "train.optimizer": "sgd", "train.learning_rate": 1e30}
            )
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "stages.train", str(tiny_processed), "model.keras", "live"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: training diverged: the loss became ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "model.keras").exists()


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_each_optimizer_reduces_the_loss(tiny_processed, tmp_path, optimizer):
    fit(tiny_processed, tmp_path / "live", **{"train.optimizer": optimizer, "train.learning_rate": 0.01})
    loss = curve(tmp_path / "live", "train", "loss")
    assert loss[-1] < loss[0]


@pytest.mark.slow  # four fits, two per model family
@pytest.mark.parametrize(
    "changes",
    [XLA, {"model.type": "cnn", "model.conv_filters": [4, 8], "model.hidden_units": [8]} | XLA],
    ids=["mlp", "cnn"],  # auto: the cnn runs TensorFlow's oneDNN kernels, the mlp XLA's
)
def test_same_seed_same_weights_other_seed_other_weights(tiny_processed, tmp_path, changes):
    first, _ = fit(tiny_processed, tmp_path / "a", epochs=2, **changes)
    # The mlp trains XLA-compiled (its kernels are deterministic too), the cnn on oneDNN's.
    assert first.jit_compile is use_xla(make_params(**(SMALL | changes)), replicas=1)
    again, _ = fit(tiny_processed, tmp_path / "b", epochs=2, **changes)
    other, _ = fit(tiny_processed, tmp_path / "c", epochs=2, seed=7, **changes)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


@pytest.mark.parametrize(
    "changes",
    [
        {"model.type": "linear"},
        {"model.type": "mlp", "model.batch_norm": True, "model.from_logits": True},
        {
            "model.type": "cnn",
            "model.padding": "same",
            "model.conv_filters": [4],
            "model.hidden_units": [8],
            "model.batch_norm": True,
        },
    ],
    ids=["linear", "mlp-batchnorm-logits", "cnn"],
)
def test_each_model_family_learns(tiny_processed, tmp_path, changes):
    _, summary = fit(tiny_processed, tmp_path / "live", **changes)
    loss = curve(tmp_path / "live", "train", "loss")
    assert loss[-1] < loss[0]
    assert summary["val_accuracy"] > 0.5  # four classes: chance is 0.25


def test_label_smoothing_raises_the_loss_floor(tiny_processed, tmp_path):
    fit(tiny_processed, tmp_path / "plain", epochs=8)
    fit(tiny_processed, tmp_path / "smooth", epochs=8, **{"train.label_smoothing": 0.2})
    # With smoothed targets even a perfect classifier keeps a clearly positive loss.
    assert (
        curve(tmp_path / "smooth", "train", "loss")[-1] > curve(tmp_path / "plain", "train", "loss")[-1] + 0.1
    )


def test_early_stopping_stops_and_restores_the_best_epoch(tiny_processed, tmp_path):
    # A learning rate far too high makes the validation loss bounce, so patience 1 runs out.
    changes = {"epochs": 30, "train.learning_rate": 0.5, "train.early_stopping_patience": 1}
    model, summary = fit(tiny_processed, tmp_path / "live", **changes)
    assert summary["epochs_run"] < 30
    val_loss = curve(tmp_path / "live", "eval", "loss")
    best = int(val_loss.argmin())
    assert best < summary["epochs_run"] - 1  # the last epoch was not the best: weights were restored
    x_val, y_val = processed.load_split(tiny_processed, "val")
    restored_loss, restored_accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert restored_loss == pytest.approx(val_loss.min(), rel=1e-4)
    # The summary describes the weights kept, not the best of all epochs.
    assert summary["restored_epoch"] == best + 1
    assert summary["val_accuracy"] == pytest.approx(restored_accuracy)
    assert summary["val_loss"] == pytest.approx(restored_loss, rel=1e-4)


def test_reduce_lr_on_plateau_lowers_the_learning_rate(tiny_processed, tmp_path):
    changes = {"epochs": 12, "train.learning_rate": 0.5, "train.reduce_lr_patience": 1}
    fit(tiny_processed, tmp_path / "live", **{**changes, "train.reduce_lr_factor": 0.1})
    learning_rate = curve(tmp_path / "live", "train", "learning_rate")
    assert learning_rate[0] == pytest.approx(0.5) and learning_rate[-1] <= 0.05 + 1e-9


def test_callbacks_follow_the_schedule_and_patience():
    def names(**changes):
        return [type(c).__name__ for c in make_callbacks(make_params(**changes).train, live=None)]

    assert names(**NO_SCHEDULE) == ["StopOnNonFiniteLoss", "ElapsedAndRate", "DVCLiveCallback"]
    both = {"train.early_stopping_patience": 3, "train.reduce_lr_patience": 2}
    assert names(**both) == [
        "StopOnNonFiniteLoss",
        "ElapsedAndRate",
        "ReduceLROnPlateau",
        "EarlyStopping",
        "DVCLiveCallback",
    ]
    # A cosine schedule sets the rate itself: no plateau decay on top of it.
    assert names(**both, **{"train.lr_schedule": "warmup_cosine"}) == [
        "StopOnNonFiniteLoss",
        "ElapsedAndRate",
        "EarlyStopping",
        "DVCLiveCallback",
    ]


def test_every_optimizer_the_schema_allows_is_built():
    allowed = typing.get_args(TrainParams.model_fields["optimizer"].annotation)
    assert set(OPTIMIZERS) == set(allowed)
    for name in allowed:
        assert make_optimizer(make_params(**{"train.optimizer": name}).train, 100).learning_rate == 0.001


def test_adam_takes_its_betas_and_the_others_note_them(capsys):
    adam = make_optimizer(make_params(**{"train.beta_1": 0.7, "train.beta_2": 0.9}).train, 100)
    assert (adam.beta_1, adam.beta_2) == (0.7, 0.9)
    make_optimizer(make_params(**{"train.optimizer": "sgd", "train.beta_1": 0.7}).train, 100)
    assert "sgd ignores train.beta_1 and train.beta_2" in capsys.readouterr().out


def test_warmup_cosine_rises_to_the_peak_then_falls_to_zero_over_all_epochs(tiny_processed, tmp_path):
    changes = {
        "train.lr_schedule": "warmup_cosine",
        "train.warmup_fraction": 0.25,
        "train.learning_rate": 0.01,
    }
    _, summary = fit(tiny_processed, tmp_path / "six", epochs=6, **changes)
    six = curve(tmp_path / "six", "train", "learning_rate")  # the rate at each epoch's end
    assert six[0] < six[1] and six[1] > six[-2] > six[-1]  # up for a quarter of the run, then down
    assert max(six) == pytest.approx(0.01, rel=0.2) and six[-1] < 1e-4  # the peak, then (nearly) zero
    assert summary["val_accuracy"] > 0.9
    fit(tiny_processed, tmp_path / "twelve", epochs=12, **changes)
    twelve = curve(tmp_path / "twelve", "train", "learning_rate")
    assert twelve[5] > six[5] and twelve[-1] < 1e-4  # more epochs stretch the schedule over the run


@pytest.mark.slow  # three fits per model family
@pytest.mark.parametrize("model_type", ["mlp", "cnn"])
def test_augmented_training_learns_and_is_seeded(tiny_processed, tmp_path, model_type):
    changes = {
        "train.translate": 0.1,
        "model.type": model_type,
        "model.conv_filters": [4],
        "model.hidden_units": [16],
    }
    first, summary = fit(tiny_processed, tmp_path / "a", **changes)
    assert "RandomTranslation" in [type(layer).__name__ for layer in first.layers]
    loss = curve(tmp_path / "a", "train", "loss")
    assert loss[-1] < loss[0] and summary["val_accuracy"] > 0.5
    again, _ = fit(tiny_processed, tmp_path / "b", **changes)
    other, _ = fit(tiny_processed, tmp_path / "c", seed=7, **changes)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the same shifts, drawn from the seed
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_each_epoch_logs_its_time_and_learning_rate(tiny_processed, tmp_path):
    _, summary = fit(tiny_processed, tmp_path / "live")
    elapsed = curve(tmp_path / "live", "train", "elapsed_seconds")
    assert len(elapsed) == 4 and np.all(np.diff(elapsed) > 0)
    assert elapsed[-1] <= summary["fit_seconds"] + 0.5
    rate = make_params(**SMALL).train.learning_rate
    np.testing.assert_allclose(curve(tmp_path / "live", "train", "learning_rate"), rate)  # no schedule


def test_sgd_uses_momentum_and_adam_notes_it_ignores_it(capsys):
    sgd = make_optimizer(make_params(**{"train.optimizer": "sgd", "train.momentum": 0.9}).train, 100)
    assert sgd.momentum == 0.9
    make_optimizer(make_params(**{"train.momentum": 0.9}).train, 100)
    assert "adam ignores train.momentum" in capsys.readouterr().out


@cpu_only  # on GPUs, auto turns XLA on for every type
def test_auto_xla_per_model_type_and_never_across_logical_cpus():
    assert set(XLA_ON_CPU) == set(typing.get_args(make_params().model.model_fields["type"].annotation))
    for model_type, expected in XLA_ON_CPU.items():
        assert use_xla(make_params(**{"model.type": model_type}), replicas=1) is expected
    assert use_xla(make_params(**{"model.type": "cnn", "train.jit_compile": True}), replicas=1) is True
    assert use_xla(make_params(**{"model.type": "mlp"}), replicas=2) is False
    augmented = make_params(**{"model.type": "mlp", "train.translate": 0.1, "train.jit_compile": True})
    assert use_xla(augmented, replicas=1) is False  # Keras cannot compile its random layers
    with pytest.raises(UserError, match="XLA cannot run across logical CPUs"):
        use_xla(make_params(**{"train.jit_compile": True}), replicas=2)


@pytest.mark.slow  # a TensorFlow process each
@pytest.mark.parametrize(("setting", "enabled"), [(None, "True"), ("0", "False")])
def test_onednn_kernels_are_on_unless_the_user_turns_them_off(setting, enabled):
    """TensorFlow leaves them off on CPUs without AVX-512; the stages turn them on, not inside XLA."""
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    env |= {"XLA_FLAGS": "--xla_dump_to=/dev/null"} | ({"TF_ENABLE_ONEDNN_OPTS": setting} if setting else {})
    code = (
        "import os\n"
        "from stages.lib import tensorflow_env\n"
        "tensorflow_env.configure()\n"
        "from tensorflow.python.util import _pywrap_util_port as port\n"
        "print(port.IsMklEnabled(), os.environ['XLA_FLAGS'])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown == [enabled, "--xla_dump_to=/dev/null", "--xla_cpu_experimental_onednn_custom_call=false"]


@cpu_only
def test_mixed_precision_is_noted_and_skipped_without_a_gpu(capsys):
    set_precision(True)
    assert "train.mixed_precision is for GPUs" in capsys.readouterr().out
    assert keras.mixed_precision.dtype_policy().name == "float32"


@gpu_only
def test_mixed_precision_computes_in_float16_on_gpus():
    set_precision(True)
    try:
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_a_users_own_xla_onednn_setting_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_onednn_custom_call=true")
    tensorflow_env.configure()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_onednn_custom_call=true"


def test_each_schedule_notes_the_knobs_of_the_other(capsys):
    make_optimizer(make_params(**{"train.warmup_fraction": 0.2}).train, 100)  # plateau
    make_optimizer(
        make_params(**{"train.lr_schedule": "warmup_cosine", "train.reduce_lr_patience": 2}).train, 100
    )
    notes = capsys.readouterr().out
    assert "plateau ignores train.warmup_fraction" in notes
    assert "warmup_cosine ignores train.reduce_lr_patience" in notes
