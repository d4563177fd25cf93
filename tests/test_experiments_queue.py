"""What `python -m experiments.run` hands the queue's workers, which run in copies of the project."""

import os

from experiments.run import worker_environment


def test_workers_share_the_cores_and_find_a_relative_mirror(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environment = worker_environment(2, {"DATA_MIRROR": "../datasets", "HOME": "/root"})
    assert environment["DATA_MIRROR"] == str(tmp_path.parent / "datasets")
    assert environment["HOME"] == "/root"
    half = str(max(1, (os.cpu_count() or 1) // 2))
    assert environment["TF_NUM_INTRAOP_THREADS"] == environment["OMP_NUM_THREADS"] == half
    assert environment["TF_NUM_INTEROP_THREADS"] == "1"


def test_a_mirror_url_is_left_as_it_is():
    url = "http://127.0.0.1:8000/datasets"
    assert worker_environment(1, {"DATA_MIRROR": url})["DATA_MIRROR"] == url
