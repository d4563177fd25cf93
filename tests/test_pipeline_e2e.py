"""The whole pipeline, driven by real DVC commands in a temporary copy of the project.

A tiny dataset is registered with one registry entry, served over HTTP on
127.0.0.1 as DATA_MIRROR, and run through `dvc repro`, `dvc exp run -S`,
`dvc metrics diff`, `dvc exp show` and `dvc plots show`.
"""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.lib import processed
from stages.lib.models import load_model
from tests.helpers import (
    NO_SCHEDULE,
    ROOT,
    copy_tiny_project,
    dump_dom,
    dvc_env,
    init_git,
    run,
    serve,
    stages_run,
)
from tests.tiny_dataset import write_tiny_dataset

pytestmark = pytest.mark.slow  # real DVC runs of the whole pipeline

PNGS = ("samples", "learning_curves", "confusion_matrix", "per_class", "predictions", "confident_mistakes")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository holding a copy of the project, set up for the tiny dataset."""
    root = tmp_path_factory.mktemp("project")
    mirror = tmp_path_factory.mktemp("mirror")
    changes = {
        "epochs": 6,
        "model.type": "mlp",
        "model.hidden_units": [32],
        "train.batch_size": 32,
    } | NO_SCHEDULE
    copy_tiny_project(root, write_tiny_dataset(mirror / "tiny"), **changes)
    (root / "node_modules").symlink_to(ROOT / "node_modules")  # the Vega libraries, from `npm ci`
    url, server = serve(mirror)
    init_git(root)
    yield root, dvc_env(url)
    server.shutdown()


def render_canvases(shown: str) -> int:
    """Open the page `dvc plots show` wrote in headless Chromium; count the Vega plots drawn."""
    return dump_dom(next(line for line in shown.split() if line.startswith("file://"))).count("<canvas")


def declared_outputs(root: Path) -> list[str]:
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    outs = []
    for stage in pipeline["stages"].values():
        outs += [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
    return outs


def test_pipeline_end_to_end(project):
    root, env = project

    first = run(["dvc", "repro"], root, env)
    assert stages_run(first) == ["validate", "download", "preprocess", "train", "evaluate", "plot"]
    for out in declared_outputs(root):
        assert (root / out).exists(), out
    assert sorted(p.name for p in (root / "plots").iterdir()) == sorted(f"{name}.png" for name in PNGS)
    baseline = json.loads((root / "metrics/test.json").read_text())
    assert baseline["accuracy"] > 0.9  # the tiny dataset is learnable
    # The summary's validation figures are those of the model saved, scored again here.
    summary = json.loads((root / "metrics/train/metrics.json").read_text())
    x_val, y_val = processed.load_split(root / "data/processed", "val")
    saved = load_model(root / "models/model.keras").predict(x_val, verbose=0)
    assert summary["val_accuracy"] == pytest.approx(float(np.mean(saved.argmax(1) == y_val.argmax(1))))

    second = run(["dvc", "repro"], root, env)
    assert stages_run(second) == []
    assert "Data and pipelines are up to date" in second

    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)

    experiment = run(["dvc", "exp", "run", "-S", "epochs=2"], root, env)
    # No re-download, no re-preprocess: the params check reruns, its verdict unchanged.
    assert stages_run(experiment) == ["validate", "train", "evaluate", "plot"]
    changed = json.loads((root / "metrics/test.json").read_text())
    assert changed != baseline
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root, env))
    assert diff["metrics/test.json"]["loss"]["old"] == baseline["loss"]
    assert diff["metrics/test.json"]["loss"]["new"] == changed["loss"]
    assert diff["metrics/train/metrics.json"]["epochs_run"] == {"old": 6, "new": 2, "diff": -4}
    assert max(map(len, run(["dvc", "metrics", "show"], root, env).splitlines())) <= 120  # readable
    shown = run(["dvc", "exp", "show", "--csv", "--no-pager"], root, env).splitlines()
    header = shown[0].split(",")
    epochs = {row.split(",")[header.index("epochs")] for row in shown[1:]}
    assert {"2", "6"} <= epochs

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["plot"]["dpi"] = 60
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(run(["dvc", "repro"], root, env)) == ["validate", "plot"]

    if shutil.which("chromium"):  # .ci/run installs it; elsewhere this one check is skipped
        assert render_canvases(run(["dvc", "plots", "show"], root, env)) == 4  # every Vega plot, offline

    shown = json.loads(run(["dvc", "plots", "show", "--json"], root, env))
    assert "errors" not in shown
    assert set(shown["data"]) == {  # each curve once: DVCLive writes no dvc.yaml of its own
        "Loss per epoch (train vs validation)",
        "Accuracy per epoch (train vs validation)",
        "Test confusion matrix, rows = true class",
        "Per-class F1 on the test set",
        *(f"plots/{name}.png" for name in PNGS),
    }


@pytest.fixture
def fresh_project(tmp_path):
    """A committed project copy with a training run long enough to interrupt."""
    mirror = tmp_path / "mirror"
    changes = {
        "epochs": 40,
        "model.type": "mlp",
        "model.hidden_units": [32],
        "train.batch_size": 8,
    } | NO_SCHEDULE
    copy_tiny_project(tmp_path / "project", write_tiny_dataset(mirror / "tiny"), **changes)
    url, server = serve(mirror)
    env = dvc_env(url) | {"PYTHONUNBUFFERED": "1"}  # epoch lines arrive as they happen
    init_git(tmp_path / "project")
    yield tmp_path / "project", env
    server.shutdown()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_training_recovers_with_the_same_metrics(fresh_project, signal_number):
    root, env = fresh_project
    run(["dvc", "repro"], root, env)
    uninterrupted = (root / "metrics/test.json").read_text()

    # Rerun training and interrupt it a few epochs in, as Ctrl-C or a crash would.
    process = subprocess.Popen(
        ["dvc", "repro", "--force", "--single-item", "train"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Epoch 3/"):
            os.killpg(process.pid, signal_number)
            break
    process.wait(timeout=60)
    assert any(line.startswith("Epoch 3/") for line in seen), "".join(seen)
    assert process.returncode != 0
    assert not (root / "models/model.keras").exists()  # no stale model stands in for the new one
    assert not list((root / "models").glob(".*tmp*"))  # nor a half-written one

    recovered = run(["dvc", "repro"], root, env)
    assert "train" in stages_run(recovered)
    assert (root / "metrics/test.json").read_text() == uninterrupted
    assert "Data and pipelines are up to date" in run(["dvc", "status"], root, env)


def test_failed_download_under_dvc_keeps_the_last_good_data(fresh_project):
    """DVC removes a stage's outputs before running it; data/raw is persistent, so a failed download loses nothing."""
    root, env = fresh_project
    run(["dvc", "repro", "download"], root, env)
    downloaded = {path.name: path.read_bytes() for path in (root / "data/raw/tiny").iterdir()}

    failed = subprocess.run(
        ["dvc", "repro", "--force", "--single-item", "download"],
        cwd=root,
        env=env | {"DATA_MIRROR": "http://127.0.0.1:9"},  # nothing listens there
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0
    assert "error: could not get a valid train-images-idx3-ubyte.gz from any source" in failed.stderr
    assert sorted(path.name for path in (root / "data/raw").iterdir()) == ["tiny"]
    assert {path.name: path.read_bytes() for path in (root / "data/raw/tiny").iterdir()} == downloaded
    assert "Data and pipelines are up to date" in run(["dvc", "status", "download"], root, env)
