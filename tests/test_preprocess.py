import json

import numpy as np
import pytest

from stages.lib import processed
from stages.lib.errors import UserError
from stages.preprocess import flatten_and_normalise, one_hot, preprocess, stratified_split, train_subset
from tests.tiny_dataset import CLASS_NAMES


def test_flatten_and_normalise():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    flat = flatten_and_normalise(images)
    assert flat.dtype == np.float32 and flat.shape == (1, 4)
    np.testing.assert_allclose(flat, [[0.0, 1.0, 0.2, 0.4]])


def test_one_hot():
    encoded = one_hot(np.array([2, 0]), 3)
    assert encoded.dtype == np.float32
    assert encoded.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    train, val = stratified_split(labels, 0.1, seed=1)
    assert np.bincount(labels[val]).tolist() == [10, 20, 30, 40]
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    again_train, again_val = stratified_split(labels, 0.1, seed=1)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=2)[1])


def test_split_that_would_be_empty_is_an_error():
    with pytest.raises(UserError, match=r"data\.val_fraction = 0\.01 leaves an empty split"):
        stratified_split(np.arange(3), 0.01, seed=0)


def test_preprocess_writes_the_contract(tiny_registered, tmp_path):
    root, _ = tiny_registered
    out = tmp_path / "processed"
    preprocess(root, out, "tiny", 0.25, seed=0)
    x_train, y_train = processed.load_split(out, "train")
    x_val, y_val = processed.load_split(out, "val")
    x_test, y_test = processed.load_split(out, "test")
    assert (len(x_train), len(x_val), len(x_test)) == (300, 100, 100)
    for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test)):
        assert x.dtype == np.float32 and x.shape[1] == 784 and x.min() >= 0 and x.max() <= 1
        assert y.dtype == np.float32 and y.shape[1] == len(CLASS_NAMES) and np.all(y.sum(axis=1) == 1)
    assert y_val.sum(axis=0).tolist() == [25, 25, 25, 25]
    assert json.loads((out / "dataset.json").read_text()) == {
        "name": "tiny",
        "class_names": list(CLASS_NAMES),
    }
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.json",
        *(f"{split}_{name}.npy" for split in ("test", "train", "val") for name in "xy"),
    ]


def test_processed_arrays_are_memory_mapped_and_reproducible(tiny_registered, tmp_path):
    root, _ = tiny_registered
    preprocess(root, tmp_path / "a", "tiny", 0.25, seed=0)
    preprocess(root, tmp_path / "b", "tiny", 0.25, seed=0)
    x, _ = processed.load_split(tmp_path / "a", "train")
    assert isinstance(x, np.memmap) and not x.flags.writeable
    for path in (tmp_path / "a").iterdir():  # same input, same bytes: DVC sees nothing changed
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_train_fraction_keeps_a_stratified_subset_and_the_same_val_and_test(tiny_registered, tmp_path):
    root, _ = tiny_registered
    preprocess(root, tmp_path / "all", "tiny", 0.25, seed=0)
    preprocess(root, tmp_path / "quarter", "tiny", 0.25, seed=0, train_fraction=0.25)
    x_all, _ = processed.load_split(tmp_path / "all", "train")
    x_quarter, y_quarter = processed.load_split(tmp_path / "quarter", "train")
    assert y_quarter.sum(axis=0).tolist() == [19, 19, 19, 19]  # a quarter of each class's 75, rounded
    assert all((x_all == row).all(axis=1).any() for row in x_quarter)  # a subset of the full training split
    for split in ("val", "test"):
        np.testing.assert_array_equal(
            processed.load_split(tmp_path / "all", split)[0],
            processed.load_split(tmp_path / "quarter", split)[0],
        )


@pytest.mark.parametrize("fraction", [5e-5, 0.99999])
def test_train_fraction_extremes(tiny_registered, tmp_path, fraction):
    root, _ = tiny_registered
    if fraction < 0.01:
        with pytest.raises(UserError, match=r"data\.train_fraction = 5e-05 leaves no training samples"):
            preprocess(root, tmp_path, "tiny", 0.25, seed=0, train_fraction=fraction)
    else:
        preprocess(root, tmp_path, "tiny", 0.25, seed=0, train_fraction=fraction)
        assert len(processed.load_split(tmp_path, "train")[0]) == 300  # all of it, rounded


def test_train_fraction_that_loses_a_class_names_it(tmp_path):
    """A rare class rounds down to no training samples at a fraction the others survive."""
    labels = np.repeat(np.arange(4), [100, 100, 3, 100])
    train_index, _ = stratified_split(labels, 0.1, seed=0)
    with pytest.raises(UserError) as failure:
        train_subset(labels, train_index, 0.1, 0, CLASS_NAMES)
    assert str(failure.value) == (
        "data.train_fraction = 0.1 leaves no training samples of class south (the smallest class has 3 samples "
        "before it); raise it to at least 0.17"
    )
    assert len(train_subset(labels, train_index, 0.17, 0, CLASS_NAMES)) == 15 * 3 + 1  # 90 * 0.17, 3 * 0.17
