"""`train.distribute`: the train stage as real processes, mirrored over two logical CPUs and as
two workers talking over 127.0.0.1, against the same stage on one device."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.lib import processed, schema
from stages.lib.models import load_model
from tests.helpers import PLAIN, committed_params, cpu_only

pytestmark = pytest.mark.slow  # separate training processes, minutes in all

CHANGES = {
    "epochs": 8,
    "model.hidden_units": [16],
    "model.batch_norm": True,  # synchronized across replicas, or the replicas' statistics drift apart
    "train.learning_rate": 0.003,
}


def start_training(data: Path, workdir: Path, env: dict | None = None, **changes) -> subprocess.Popen:
    """`python -m stages.train` in ``workdir``: plain Keras (no augmentation, whose draws differ per replica)."""
    workdir.mkdir(parents=True)
    (workdir / "params.yaml").write_text(
        yaml.safe_dump(schema.override(committed_params(), PLAIN | CHANGES | changes))
    )
    command = [sys.executable, "-m", "stages.train", str(data), "model/model.keras", "live"]
    return subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    return output


def split_accuracy(data: Path, workdir: Path) -> float:
    """Test-split accuracy of the model trained in ``workdir``."""
    x_test, y_test = processed.load_split(data, "test")
    probabilities = load_model(workdir / "model/model.keras").predict(x_test, verbose=0)
    return float(np.mean(probabilities.argmax(1) == y_test.argmax(1)))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


@pytest.fixture(scope="module")
def single_device(tiny_mirror, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny dataset preprocessed, and the train stage run once on one device."""
    from stages.lib import datasets
    from stages.preprocess import preprocess

    root, entry = tiny_mirror
    datasets.DATASETS["tiny"] = entry
    try:
        data = tmp_path_factory.mktemp("processed")
        preprocess(root, data, "tiny", 0.25, seed=0)
    finally:
        del datasets.DATASETS["tiny"]
    workdir = tmp_path_factory.mktemp("single") / "run"
    finish(start_training(data, workdir))
    return data, workdir


@cpu_only  # with GPUs, mirrored takes them instead of two logical CPUs
def test_mirrored_over_two_logical_cpus_matches_one_device(single_device, tmp_path):
    data, single = single_device
    output = finish(start_training(data, tmp_path / "mirrored", **{"train.distribute": "mirrored"}))
    assert "2 replicas" in output
    # Same seed, same batches, the gradient summed over two halves of each batch instead of
    # one: only float rounding differs, so the weights agree far below any visible effect.
    mirrored_model = load_model(tmp_path / "mirrored/model/model.keras")
    for a, b in zip(
        load_model(single / "model/model.keras").get_weights(), mirrored_model.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert split_accuracy(data, tmp_path / "mirrored") == split_accuracy(data, single)


def start_workers(data_folders: list[Path], workdir: Path) -> list[subprocess.Popen]:
    """One multi_worker train stage per data folder, a cluster on 127.0.0.1."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(len(data_folders))]}
    workers = []
    for index, data in enumerate(data_folders):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        # One thread each: the workers share this machine's cores.
        env = {"TF_CONFIG": tf_config, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
        workers.append(
            start_training(data, workdir / f"worker{index}", env, **{"train.distribute": "multi_worker"})
        )
    return workers


@cpu_only  # one replica per worker, and the tolerances of oneDNN's CPU kernels
def test_two_workers_on_loopback_train_in_lockstep_like_one_device(single_device, tmp_path):
    data, single = single_device
    workers = start_workers([data, data], tmp_path)
    try:
        outputs = [finish(worker) for worker in workers]
    finally:
        for worker in workers:  # a failed worker must not leave the other waiting forever
            worker.kill()
    assert all("training on 2 replicas" in output for output in outputs)
    # Lockstep: both workers applied the same summed gradients, and the same batch statistics.
    first, second = (load_model(tmp_path / f"worker{index}/model/model.keras") for index in range(2))
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The same loop on one worker (no TF_CONFIG): same seed, same batches, each split in two
    # and the halves' gradients summed. Only float rounding differs; over 8 epochs of Adam it
    # grew to 1.6e-4 in one weight with oneDNN's kernels, far below a missed or doubled batch.
    alone = finish(start_training(data, tmp_path / "alone", **{"train.distribute": "multi_worker"}))
    assert "training on 1 replicas" in alone
    for a, b in zip(
        first.get_weights(), load_model(tmp_path / "alone/model/model.keras").get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # Against Keras' fit the batches differ (the loop shuffles with NumPy): compare as two
    # seeds of one training. Both learn the easy tiny set almost perfectly.
    assert type(first) is type(load_model(single / "model/model.keras"))
    assert split_accuracy(data, single) >= 0.95
    assert abs(split_accuracy(data, tmp_path / "worker0") - split_accuracy(data, single)) <= 0.05
    summary = json.loads((tmp_path / "worker0/live/metrics.json").read_text())
    assert summary["epochs_run"] == CHANGES["epochs"] and summary["val_accuracy"] >= 0.95


def test_workers_with_different_data_stop_with_a_clear_error(single_device, tmp_path):
    data, _ = single_device
    shorter = tmp_path / "shorter"
    shutil.copytree(data, shorter)
    for name in ("train_x.npy", "train_y.npy"):
        np.save(shorter / name, np.load(data / name)[:-10])
    workers = start_workers([data, shorter], tmp_path)
    try:
        outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 1
        assert output.splitlines()[-1].startswith("error: train/val sizes (")
