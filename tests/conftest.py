import functools
import http.server
import threading
from pathlib import Path

import pytest
import yaml

from stages import datasets, params
from stages.preprocess import preprocess
from tests.project_copy import ROOT, copy_project, set_dotted
from tests.tiny_dataset import write_tiny_dataset


def make_params(**changes) -> params.Params:
    """The committed params with some dotted keys changed: make_params(**{"model.type": "linear"})."""
    return params.parse(set_dotted(yaml.safe_load((ROOT / "params.yaml").read_text()), changes))


def copy_tiny_project(destination: Path, tiny: datasets.Dataset, **changes) -> None:
    """A copy of the project with the tiny dataset registered as its default.

    Registering is what a user does for a new dataset: one entry in the registry.
    """
    copy_project(destination, **{"data.dataset": "tiny", **changes})
    with (destination / "stages/datasets.py").open("a") as registry:
        registry.write(f"\nDATASETS['tiny'] = {tiny!r}\n")


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


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path, handler_class=QuietHandler):
    """Serve ``directory`` over HTTP on 127.0.0.1; returns (base URL, server)."""
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


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
