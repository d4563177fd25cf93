import dataclasses
import gzip
import os
import shutil
import subprocess
import sys

import pytest

from stages import download
from stages.lib import datasets
from stages.lib.errors import UserError
from tests.helpers import copy_tiny_project, serve


def test_official_mirrors_are_https_and_checksums_well_formed():
    for name, dataset in datasets.DATASETS.items():
        assert dataset.mirrors, name
        assert all(url.startswith("https://") and url.endswith("/") for url in dataset.mirrors)
        for file in dataset.files:
            assert len(file.sha256) == 64
            int(file.sha256, 16)  # hexadecimal, or this raises
            assert file.size > 0


def test_data_mirror_is_tried_before_official_mirrors():
    mnist = datasets.DATASETS["mnist"]
    assert download.sources("mnist", mnist, "http://127.0.0.1:1/base/") == [
        "http://127.0.0.1:1/base/mnist/",
        *mnist.mirrors,
    ]
    assert download.sources("mnist", mnist, None) == list(mnist.mirrors)


def test_downloads_over_http_and_verifies(tiny_registered, http_mirror, tmp_path):
    root, entry = tiny_registered
    final = download.download_dataset("tiny", tmp_path / "raw", http_mirror)
    assert sorted(p.name for p in final.iterdir()) == sorted(f"{f.name}.gz" for f in entry.files)
    for file in entry.files:
        assert (final / f"{file.name}.gz").read_bytes() == (root / "tiny" / f"{file.name}.gz").read_bytes()
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["tiny"]  # no staging left behind


def test_the_folder_holds_the_new_dataset_alone_or_stays_as_it_was(tiny_registered, http_mirror, tmp_path):
    """data/raw persists between DVC runs: a failure keeps the last dataset, a success replaces it."""
    raw = tmp_path / "raw"
    (raw / "mnist").mkdir(parents=True)
    (raw / "mnist/train-images-idx3-ubyte.gz").write_bytes(b"the last good download")
    with pytest.raises(UserError):
        download.download_dataset("tiny", raw, "http://127.0.0.1:9", attempts=1)
    assert [p.name for p in raw.iterdir()] == ["mnist"]
    assert (raw / "mnist/train-images-idx3-ubyte.gz").read_bytes() == b"the last good download"
    download.download_dataset("tiny", raw, http_mirror)
    assert [p.name for p in raw.iterdir()] == ["tiny"]


@pytest.mark.parametrize("form", ["directory", "file-url"])
def test_local_mirror_forms(tiny_registered, tmp_path, form):
    root, _ = tiny_registered
    mirror = str(root) if form == "directory" else root.as_uri()
    final = download.download_dataset("tiny", tmp_path / "raw", mirror)
    assert len(list(final.iterdir())) == 4


def test_corrupt_file_on_the_mirror_is_rejected_and_nothing_written(tiny_registered, tmp_path):
    root, entry = tiny_registered
    bad = tmp_path / "bad-mirror" / "tiny"
    shutil.copytree(root / "tiny", bad)
    target = bad / f"{entry.test_labels.name}.gz"
    content = bytearray(gzip.decompress(target.read_bytes()))
    content[-1] ^= 0xFF  # one flipped label: same size, different SHA-256
    target.write_bytes(gzip.compress(bytes(content)))
    url, server = serve(tmp_path / "bad-mirror")
    try:
        with pytest.raises(UserError) as failure:
            download.download_dataset("tiny", tmp_path / "raw", url, attempts=1)
    finally:
        server.shutdown()
    message = str(failure.value)
    assert f"{url}/tiny/{entry.test_labels.name}.gz: SHA-256" in message
    assert "\n" not in message
    assert list((tmp_path / "raw").iterdir()) == []


def test_every_failing_source_is_named(tiny_registered, tmp_path, monkeypatch):
    _, entry = tiny_registered
    empty = tmp_path / "empty"
    (empty / "tiny").mkdir(parents=True)
    url, server = serve(empty)
    # A second "official" mirror that refuses connections: nothing listens on port 9.
    monkeypatch.setitem(
        datasets.DATASETS, "tiny", dataclasses.replace(entry, mirrors=("http://127.0.0.1:9/",))
    )
    try:
        with pytest.raises(UserError) as failure:
            download.download_dataset("tiny", tmp_path / "raw", url, attempts=2, timeout=(1, 1))
    finally:
        server.shutdown()
    message = str(failure.value)
    assert f"{url}/tiny/{entry.train_images.name}.gz: HTTP 404 File not found" in message
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz: connection failed" in message
    assert "after 2 attempts" in message
    assert list((tmp_path / "raw").iterdir()) == []


def test_second_source_used_when_first_fails(tiny_registered, tmp_path):
    root, entry = tiny_registered
    destination = tmp_path / "file.gz"
    used = download.fetch_from_any(
        [f"{tmp_path}/nowhere/", f"{root}/tiny/"], entry.train_labels, destination, attempts=1
    )
    assert used == f"{root}/tiny/{entry.train_labels.name}.gz"
    assert gzip.decompress(destination.read_bytes())[:4] == b"\0\0\x08\x01"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>Not here</html>", "not a valid gzip file"),
        (gzip.compress(b"\0" * 10)[:-12], "truncated gzip stream"),
        (gzip.compress(b"x" * 10) + b"junk", "unexpected data after the gzip stream"),
        (gzip.compress(b"x" * 10), "decompressed size 10"),
    ],
)
def test_bad_bodies_are_rejected(tiny_registered, tmp_path, body, reason):
    _, entry = tiny_registered
    source = tmp_path / "mirror"
    source.mkdir()
    (source / f"{entry.train_labels.name}.gz").write_bytes(body)
    with pytest.raises(UserError, match=reason):
        download.fetch_from_any([f"{source}/"], entry.train_labels, tmp_path / "out.gz", attempts=1)
    assert not (tmp_path / "out.gz").exists()


def test_without_data_mirror_the_error_says_how_to_set_one(tiny_mirror, tmp_path):
    """Offline and no DATA_MIRROR: the stage's one line ends with the hint to set it."""
    _, entry = tiny_mirror
    project = tmp_path / "project"
    copy_tiny_project(project, dataclasses.replace(entry, mirrors=("http://127.0.0.1:9/",)))
    env = {key: value for key, value in os.environ.items() if key != "DATA_MIRROR"}
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", "data/raw"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: could not get a valid train-images-idx3-ubyte.gz from any source: ")
    assert line.endswith(
        "DATA_MIRROR is not set: point it at a base URL or a folder holding tiny/<file>.gz to download from there first"
    )


def test_a_relative_data_mirror_that_fails_is_named_with_the_folder_it_was_read_from(tiny_mirror, tmp_path):
    """A queued experiment runs in a copy of the project elsewhere, where `../mirror` is not found."""
    _, entry = tiny_mirror
    project = tmp_path / "project"
    copy_tiny_project(project, dataclasses.replace(entry, mirrors=("http://127.0.0.1:9/",)))
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", "data/raw"],
        cwd=project,
        env=os.environ | {"DATA_MIRROR": "../mirror"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.endswith(
        f"DATA_MIRROR ../mirror is relative to {project}: "
        "give it as an absolute path (queued experiments run in another folder)"
    )
