from pathlib import Path

import pytest

from stages.lib import tensorflow_env

# As every stage that uses TensorFlow does, before TensorFlow loads: tests train as the stages do.
tensorflow_env.configure()

from tensorflow.python.framework import config as tf_config  # noqa: E402

from stages.lib import datasets  # noqa: E402
from stages.preprocess import preprocess  # noqa: E402
from tests.helpers import serve  # noqa: E402
from tests.tiny_dataset import write_tiny_dataset  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_op_determinism():
    """Training turns on op determinism for good, which silently turns XLA off in later tests."""
    yield
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> tuple[Path, datasets.Dataset]:
    """A mirror folder holding ``tiny/<file>.gz``, and the dataset's registry entry."""
    root = tmp_path_factory.mktemp("mirror")
    return root, write_tiny_dataset(root / "tiny")


@pytest.fixture
def tiny_registered(tiny_mirror, monkeypatch) -> tuple[Path, datasets.Dataset]:
    """The tiny dataset added to the registry, as a user's one-entry addition would."""
    root, entry = tiny_mirror
    monkeypatch.setitem(datasets.DATASETS, "tiny", entry)
    return root, entry


@pytest.fixture
def http_mirror(tiny_mirror):
    """The tiny mirror served over real HTTP on loopback."""
    url, server = serve(tiny_mirror[0])
    yield url
    server.shutdown()


@pytest.fixture
def tiny_processed(tiny_registered, tmp_path) -> Path:
    """The tiny dataset preprocessed into train/val/test arrays."""
    out = tmp_path / "processed"
    preprocess(tiny_registered[0], out, "tiny", 0.25, seed=0)
    return out
