"""Experiments with real DVC in a committed copy of the project: seed repeats through the queue,
compared; and bad params, which must stop the run before any output is touched."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.helpers import NO_SCHEDULE, copy_tiny_project, dvc_env, init_git, run, serve
from tests.tiny_dataset import BLOCKS, write_tiny_dataset

pytestmark = pytest.mark.slow  # real DVC runs of the whole pipeline

QUICK = {"epochs": 3, "model.type": "mlp", "model.hidden_units": [16], "train.batch_size": 32} | NO_SCHEDULE
KEPT = ("models", "metrics", "plots")  # what a failed experiment must leave as it was


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A committed copy of the project whose pipeline has run once on the tiny dataset."""
    root, mirror = tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("mirror")
    copy_tiny_project(root, write_tiny_dataset(mirror / "tiny"), **QUICK)
    url, server = serve(mirror)
    env = dvc_env(url)
    init_git(root)
    run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)
    yield root, env
    server.shutdown()


def cells(line: str) -> list[str]:
    """The cells of a line of the comparison's text table (two spaces or more between them)."""
    return re.split(r" {2,}", line.strip())


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in KEPT
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


def predict_one(root: Path) -> subprocess.CompletedProcess:
    """stages.predict on an image of the tiny dataset's class "north" (framing moves the block)."""
    image = np.zeros((28, 28), np.uint8)
    row, col = BLOCKS[0]
    image[row : row + 7, col : col + 7] = 255
    Image.fromarray(image).save(root / "north.png")
    return subprocess.run(
        [sys.executable, "-m", "stages.predict", "north.png"], cwd=root, capture_output=True, text=True
    )


def edit_params(root: Path) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["model"]["dropout"] = 1.5
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (
            ["dvc", "exp", "run", "-S", "model.type=resnet"],
            "error: params.yaml: model.type = 'resnet': Input should be",
        ),
        (
            ["dvc", "exp", "run", "-S", "+epoch=20"],
            "error: params.yaml: unknown key epoch (expected one of: seed, epochs,",
        ),
        (
            "edit params.yaml, then dvc repro",
            "error: params.yaml: model.dropout = 1.5: Input should be less than 1",
        ),
    ],
    ids=["invalid-value", "unknown-key", "edited-file"],
)
def test_a_bad_param_stops_before_any_output_is_touched(project, how, message):
    root, env = project
    before, answer = snapshot(root), predict_one(root).stdout
    assert answer.startswith("north.png: ")
    if isinstance(how, list):
        failed = subprocess.run(how, cwd=root, env=env, capture_output=True, text=True)
    else:
        edit_params(root)
        failed = subprocess.run(["dvc", "repro"], cwd=root, env=env, capture_output=True, text=True)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert [line for line in output.splitlines() if line.startswith("error: ")] == [
        line for line in output.splitlines() if message in line
    ]
    assert message in output
    assert "Running stage 'validate'" in output and "Running stage 'train'" not in output
    assert snapshot(root) == before  # the model, the metrics and the plots, byte for byte
    assert predict_one(root).stdout == answer  # and the model still answers

    # The way back, as the README gives it: the committed params, and nothing to rerun.
    run(["git", "checkout", "--", "params.yaml"], root, env)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], root, env)
    assert snapshot(root) == before


def test_seed_repeats_through_the_queue_are_compared_as_one_row(project):
    root, env = project
    shown = run(
        [
            sys.executable,
            "-m",
            "experiments.run",
            "--jobs",
            "2",
            "--seeds",
            "1,2,3",
            "-S",
            "train.learning_rate=0.001,0.01",
        ],
        root,
        env,
    )
    lines = shown.splitlines()  # DVC's logs of each run, then the comparison
    start = next(index for index, line in enumerate(lines) if re.match(r"experiment {2,}", line))
    table = [cells(line) for line in lines[start : start + 3]]
    header, rows = table[0], [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert header[:2] == ["experiment", "learning_rate"]  # the one param that differs
    assert [row["n"] for row in rows] == ["3", "3"]
    assert all("±" in row["test acc %"] and "±" in row["val acc %"] for row in rows)
    assert rows[0]["vs ref (val acc)"] == "ref"
    assert rows[1]["vs ref (val acc)"].split()[0] in ("within", "beyond")  # the reference's seed noise
    assert max(map(len, lines[start:])) <= 120

    everything = run([sys.executable, "-m", "stages.compare"], root, env).splitlines()
    assert sorted(cells(line)[0] for line in everything[1:-2]) == sorted(
        ["workspace", "main", *(row["experiment"] for row in rows)]
    )
    summary = json.loads((root / "metrics/train/metrics.json").read_text())
    assert set(summary) == {
        "epochs_run",
        "restored_epoch",
        "val_accuracy",
        "val_loss",
        "fit_seconds",
    }
