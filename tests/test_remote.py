"""Sharing through a DVC remote: a local-directory remote stands in for S3, GCS or Azure.

One clone runs the pipeline and an experiment and pushes both; a fresh clone pulls them
and has the data, the model and the experiment without running a single stage.
"""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import NO_SCHEDULE, copy_tiny_project, dvc_env, init_git, run, serve, stages_run
from tests.tiny_dataset import write_tiny_dataset

pytestmark = pytest.mark.slow  # two clones, a remote and real DVC runs


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def experiments(root: Path, env: dict) -> dict[str, float]:
    """Experiment name -> test accuracy, from `dvc exp show --json`."""
    found = {}
    for commit in json.loads(run(["dvc", "exp", "show", "--json"], root, env)):
        for experiment in commit.get("experiments") or []:
            for revision in experiment["revs"]:
                metrics = revision["data"]["metrics"]["metrics/test.json"]["data"]
                found[revision["name"]] = metrics["accuracy"]
    return found


def test_push_then_pull_in_a_fresh_clone_runs_nothing(tmp_path):
    mirror, origin, storage = tmp_path / "mirror", tmp_path / "origin.git", tmp_path / "dvc-storage"
    first = tmp_path / "first"
    changes = {
        "epochs": 3,
        "model.type": "mlp",
        "model.hidden_units": [16],
        "train.batch_size": 32,
    } | NO_SCHEDULE
    copy_tiny_project(first, write_tiny_dataset(mirror / "tiny"), **changes)
    init_git(first)
    url, server = serve(mirror)
    env = dvc_env(url)
    try:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
        # What a team does once: name a git remote and a DVC remote, commit the config.
        run(["git", "remote", "add", "origin", str(origin)], first, env)
        run(["dvc", "remote", "add", "--default", "storage", str(storage)], first, env)
        run(["dvc", "repro"], first, env)
        run(["git", "add", "-A"], first, env)
        run(["git", "commit", "-qm", "baseline and remote"], first, env)
        run(["dvc", "exp", "run", "-n", "wider", "-S", "model.hidden_units=[64]"], first, env)
        run(["git", "checkout", "--", "."], first, env)
        run(["dvc", "checkout"], first, env)
        run(["git", "push", "-q", "origin", "main"], first, env)
        run(["dvc", "push"], first, env)
        run(["dvc", "exp", "push", "origin", "wider"], first, env)
    finally:
        server.shutdown()
    pushed = experiments(first, env)

    second = tmp_path / "second"
    subprocess.run(["git", "clone", "-q", str(origin), str(second)], check=True)
    offline = env | {"DATA_MIRROR": str(tmp_path / "nowhere")}  # nothing may be downloaded again
    run(["dvc", "pull"], second, offline)
    for output in (
        "data/raw/tiny",
        "data/processed/train_x.npy",
        "models/model.keras",
        "plots/predictions.png",
    ):
        assert (second / output).exists(), output
    assert digest(second / "models/model.keras") == digest(first / "models/model.keras")
    repro = run(["dvc", "repro"], second, offline)
    assert stages_run(repro) == []
    assert "Data and pipelines are up to date" in repro

    run(["dvc", "exp", "pull", "origin", "wider"], second, offline)
    assert experiments(second, offline)["wider"] == pushed["wider"]
    run(["dvc", "exp", "apply", "wider"], second, offline)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], second, offline)
    assert yaml.safe_load((second / "params.yaml").read_text())["model"]["hidden_units"] == [64]
