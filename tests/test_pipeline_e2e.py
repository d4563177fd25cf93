"""The whole pipeline, driven by real DVC commands in a temporary copy of the project.

A tiny dataset is registered with one registry entry, served over HTTP on
127.0.0.1 as DATA_MIRROR, and run through `dvc repro`, `dvc exp run -S`,
`dvc metrics diff`, `dvc exp show` and `dvc plots show`.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, serve
from tests.tiny_dataset import write_tiny_dataset

GENERATED = ("dvc.lock", "data", "models", "metrics", "plots", "dvc_plots")


def run(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository holding a copy of the project, set up for the tiny dataset."""
    root = tmp_path_factory.mktemp("project")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if name.split("/")[0] not in GENERATED and (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)

    mirror = tmp_path_factory.mktemp("mirror")
    entry = write_tiny_dataset(mirror / "tiny")
    with (root / "stages/datasets.py").open("a") as registry:
        registry.write(f"\nDATASETS['tiny'] = {entry!r}\n")  # the one entry a user adds
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["dataset"] = "tiny"
    params["epochs"] = 6
    params["model"]["hidden_units"] = [32]
    params["train"]["batch_size"] = 32
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    url, server = serve(mirror)
    env = {
        **os.environ,
        "DATA_MIRROR": url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "e2e@example.com"],
        ["git", "config", "user.name", "e2e"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project copy"],
    ):
        run(args, root, env)
    yield root, env
    server.shutdown()


def declared_outputs(root: Path) -> list[str]:
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    outs = []
    for stage in pipeline["stages"].values():
        outs += [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
    return outs


def test_pipeline_end_to_end(project):
    root, env = project

    first = run(["dvc", "repro"], root, env)
    assert stages_run(first) == ["download", "preprocess", "train", "evaluate", "plot"]
    for out in declared_outputs(root):
        assert (root / out).exists(), out
    assert sorted(p.name for p in (root / "plots").iterdir()) == [
        "confusion_matrix.png",
        "learning_curves.png",
        "predictions.png",
        "samples.png",
    ]
    baseline = json.loads((root / "metrics/test.json").read_text())
    assert baseline["accuracy"] > 0.9  # the tiny dataset is learnable

    second = run(["dvc", "repro"], root, env)
    assert stages_run(second) == []
    assert "Data and pipelines are up to date" in second

    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)

    experiment = run(["dvc", "exp", "run", "-S", "epochs=2"], root, env)
    assert stages_run(experiment) == ["train", "evaluate", "plot"]  # no re-download, no re-preprocess
    changed = json.loads((root / "metrics/test.json").read_text())
    assert changed != baseline
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root, env))
    assert diff["metrics/test.json"]["loss"]["old"] == baseline["loss"]
    assert diff["metrics/test.json"]["loss"]["new"] == changed["loss"]
    assert diff["metrics/train/metrics.json"]["epochs_run"] == {"old": 6, "new": 2, "diff": -4}
    shown = run(["dvc", "exp", "show", "--csv", "--no-pager"], root, env).splitlines()
    header = shown[0].split(",")
    epochs = {row.split(",")[header.index("epochs")] for row in shown[1:]}
    assert {"2", "6"} <= epochs

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["plot"]["dpi"] = 60
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(run(["dvc", "repro"], root, env)) == ["plot"]

    shown = json.loads(run(["dvc", "plots", "show", "--json"], root, env))
    assert "errors" not in shown
    assert set(shown["data"]) == {  # each curve once: DVCLive writes no dvc.yaml of its own
        "Loss per epoch (train vs validation)",
        "Accuracy per epoch (train vs validation)",
        "Test confusion matrix",
        "Per-class F1 on the test set",
        "plots/confusion_matrix.png",
        "plots/learning_curves.png",
        "plots/predictions.png",
        "plots/samples.png",
    }
