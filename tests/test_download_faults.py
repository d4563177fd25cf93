"""Downloads against a real HTTP server on 127.0.0.1 that misbehaves on purpose."""

import os
import signal
import subprocess
import sys
import time

import pytest

from stages import download
from stages.lib.errors import UserError
from tests.helpers import FaultyHandler, copy_tiny_project, serve

FAULTS = {
    "missing": "HTTP 404",
    "server-error": "HTTP 500",
    "stall": "transfer interrupted (ConnectionError: Read timed out.)",
    "drip": "too slow: not complete within 3 s (",
    "truncated": "transfer interrupted (ChunkedEncodingError: Connection broken: IncompleteRead(",
    "not-gzip": "not a valid gzip file",
    "wrong-content": "SHA-256",
    "html-200": "not a valid gzip file",
    "redirect-loop": "too many redirects",
}
# The deadline: 2.5 s to connect and start, plus the content at 1 MB/s (0.3 s for the tiny images).
FAST = {"timeout": (2.0, 0.5), "attempts": 1, "min_throughput": 1e6}


@pytest.fixture
def faulty_server(tiny_mirror):
    url, server = serve(tiny_mirror[0], FaultyHandler)
    yield url
    server.shutdown()


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_falls_through_to_the_next_source(tiny_registered, faulty_server, tmp_path, fault):
    _, entry = tiny_registered
    destination = tmp_path / "file.gz"
    used = download.fetch_from_any(
        [f"{faulty_server}/{fault}/", f"{faulty_server}/good/"], entry.train_images, destination, **FAST
    )
    assert used == f"{faulty_server}/good/{entry.train_images.name}.gz"
    assert (
        destination.read_bytes()
        == (tiny_registered[0] / "tiny" / f"{entry.train_images.name}.gz").read_bytes()
    )


def test_when_every_source_fails_each_is_named_and_nothing_is_kept(tiny_registered, faulty_server, tmp_path):
    bases = [f"{faulty_server}/{fault}/" for fault in FAULTS]
    with pytest.raises(UserError) as failure:
        download.fetch_from_any(bases, tiny_registered[1].train_images, tmp_path / "f.gz", **FAST)
    message = str(failure.value)
    for fault, reason in FAULTS.items():
        assert f"{faulty_server}/{fault}/train-images-idx3-ubyte.gz: {reason}" in message, fault
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_transient_failures_are_retried(tiny_registered, faulty_server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "BACKOFF", 0.01)
    with pytest.raises(
        UserError, match=r"HTTP 500 Internal Server Error after 3 attempts; .*HTTP 404 Not Found$"
    ):
        download.fetch_from_any(
            [f"{faulty_server}/server-error/", f"{faulty_server}/missing/"],
            tiny_registered[1].train_labels,
            tmp_path / "f.gz",
            attempts=3,
        )


def test_killed_download_leaves_nothing_a_rerun_trusts(tiny_mirror, tmp_path):
    """SIGKILL the download stage mid-file: no dataset folder appears, and a rerun succeeds."""
    root, entry = tiny_mirror
    project = tmp_path / "project"
    copy_tiny_project(project, entry)
    url, server = serve(root, FaultyHandler)
    env = dict(os.environ)
    try:
        stalled = subprocess.Popen(
            [sys.executable, "-m", "stages.download", "data/raw"],
            cwd=project,
            env={**env, "DATA_MIRROR": f"{url}/stall"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not list((project / "data/raw").glob(".tiny.tmp-*/*.gz")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((project / "data/raw").glob(".tiny.tmp-*/*.gz")), "the download never started"
        stalled.send_signal(signal.SIGKILL)
        stalled.wait()
        assert not (project / "data/raw/tiny").exists()  # only a staging folder, never trusted

        rerun = subprocess.run(
            [sys.executable, "-m", "stages.download", "data/raw"],
            cwd=project,
            env={**env, "DATA_MIRROR": f"{url}/good"},
            capture_output=True,
            text=True,
        )
    finally:
        server.shutdown()
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in (project / "data/raw").iterdir()) == ["tiny"]  # stale staging removed
    assert len(list((project / "data/raw/tiny").iterdir())) == 4
