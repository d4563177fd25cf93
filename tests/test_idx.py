import gzip
import struct

import numpy as np
import pytest

from stages.lib.errors import UserError
from stages.lib.idx import read_idx, read_images_and_labels
from tests.tiny_dataset import idx_bytes


def write(path, content: bytes):
    path.write_bytes(gzip.compress(content))
    return path


def test_round_trip(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(read_idx(write(tmp_path / "a.gz", idx_bytes(array))), array)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\0\0\x0d\x01" + struct.pack(">I", 1) + b"\0\0\0\0", "bad IDX magic number 00000d01"),
        (b"PK\x03\x04", "bad IDX magic number 504b0304"),
        (b"\0\0\x08\x03" + struct.pack(">I", 2), r"bad IDX header \(3 dimensions\)"),
        (idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5], "payload is"),
        (idx_bytes(np.zeros(4, np.uint8)) + b"\0", "needs 12"),
    ],
    ids=["wrong-type-code", "not-idx", "short-header", "truncated", "trailing-bytes"],
)
def test_malformed_files_are_named(tmp_path, content, message):
    path = write(tmp_path / "bad.gz", content)
    with pytest.raises(UserError, match=message) as failure:
        read_idx(path)
    assert str(failure.value).startswith(str(path))


def test_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(UserError, match="not a readable gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_idx(tmp_path / "absent.gz")


@pytest.fixture
def pair(tmp_path):
    def make(images, labels):
        return write(tmp_path / "images.gz", idx_bytes(images)), write(
            tmp_path / "labels.gz", idx_bytes(labels)
        )

    return make


def test_images_and_labels_checked_together(pair):
    images, labels = read_images_and_labels(
        *pair(np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 2], np.uint8)), 3
    )
    assert images.shape == (3, 28, 28) and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 28, 28)), np.zeros(2), "holds 3 images but .* holds 2 labels"),
        (np.zeros((3, 32, 32)), np.zeros(3), r"shape \(3, 32, 32\), expected \(N, 28, 28\)"),
        (np.zeros((3, 28, 28)), np.zeros((3, 1)), r"labels have shape \(3, 1\)"),
        (np.zeros((3, 28, 28)), np.array([0, 1, 7]), "label 7 is outside the 3 classes"),
    ],
    ids=["count-mismatch", "wrong-dimensions", "labels-not-1d", "label-out-of-range"],
)
def test_inconsistent_pairs_rejected(pair, images, labels, message):
    with pytest.raises(UserError, match=message):
        read_images_and_labels(*pair(images, labels), 3)
