"""Full disks, read-only and immutable folders, and interruptions, for real.

Small tmpfs mounts (mounting needs root, as on the test machine; elsewhere these tests are
skipped), `chattr +i`, and real signals sent to real stage processes. Each ends the stage with
one `error:` line naming the path, and leaves no output half-written and no temporary file.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.helpers import NO_SCHEDULE, copy_tiny_project, tmpfs


@pytest.fixture
def project(tiny_mirror, tmp_path):
    """A project copy with the tiny dataset registered and downloaded; small MLP training."""
    root, entry = tiny_mirror
    changes = {"epochs": 40, "model.type": "mlp", "model.hidden_units": [32], "train.batch_size": 8}
    copy_tiny_project(tmp_path / "project", entry, **changes | NO_SCHEDULE)
    shutil.copytree(root / "tiny", tmp_path / "project/data/raw/tiny")
    return tmp_path / "project"


def stage(project, name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"stages.{name}", *args], cwd=project, env=env, capture_output=True, text=True
    )


def test_full_disk_in_preprocess_leaves_no_half_folder(project, tmp_path):
    """1 MB holds the training split (0.9 MB), not the others: the folder appears whole or not at all."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        result = stage(project, "preprocess", "data/raw", str(disk / "processed"))
        left = list(disk.iterdir())
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {disk / 'processed'}: no space left on the device: free some space and rerun"
    ]
    assert left == []  # no half-filled data/processed, no temporary folder


def test_full_disk_in_download(project, tmp_path, tiny_mirror):
    with tmpfs(tmp_path / "disk", "64k") as disk:
        env = os.environ | {"DATA_MIRROR": str(tiny_mirror[0])}
        result = stage(project, "download", str(disk / "raw"), env=env)
        left = list((disk / "raw").iterdir())
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {disk / 'raw/tiny'}: no space left on the device: free some space and rerun"
    ]
    assert left == []  # the staging folder is gone


def test_read_only_file_system(project, tmp_path):
    with tmpfs(tmp_path / "disk", "4m", read_only=True) as disk:
        result = stage(project, "preprocess", "data/raw", str(disk / "processed"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {disk / 'processed'}: read-only file system: remount it read-write and rerun"
    ]


def test_immutable_output_folder(project, tmp_path):
    """`chattr +i`: even root may not write into the folder."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        (disk / "data").mkdir()
        subprocess.run(["chattr", "+i", str(disk / "data")], check=True)
        try:
            result = stage(project, "preprocess", "data/raw", str(disk / "data/processed"))
        finally:
            subprocess.run(["chattr", "-i", str(disk / "data")], check=True)
        left = list((disk / "data").iterdir())
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {disk / 'data/processed'}: operation not permitted (immutable?): make it writable and rerun"
    ]
    assert left == []


@pytest.mark.slow  # TensorFlow starts and trains in each
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_stage_ends_with_one_line_and_no_temporary(project, signal_number):
    assert stage(project, "preprocess", "data/raw", "data/processed").returncode == 0
    training = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "data/processed", "models/model.keras", "metrics/train"],
        cwd=project,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in training.stdout:
        if line.startswith("Epoch 1/"):  # while TensorFlow traces the step, where a raise can abort
            training.send_signal(signal_number)
            break
    _, stderr = training.communicate(timeout=60)
    assert training.returncode == 128 + signal_number, stderr
    assert stderr.splitlines() == ["error: interrupted"]
    assert not (project / "models/model.keras").exists() and not (project / "metrics/train").exists()
    assert list(project.rglob(".*.tmp-*")) == []  # the temporaries of atomic_path and atomic_folder
