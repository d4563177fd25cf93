"""What the tests share: params, project copies, a loopback server, DVC runs, headless Chromium."""

import functools
import gzip
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from PIL import Image

from experiments import catalogue
from stages.lib import datasets, schema

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("dvc.lock", "data", "models", "metrics", "plots", "dvc_plots")  # pipeline outputs, not copied
# Fixed epoch counts, for tests that compare them.
NO_SCHEDULE = {"train.early_stopping_patience": 0, "train.reduce_lr_patience": 0}


def committed_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


# Plain Keras (the catalogue's `mlp-small`): tests turn on what they check, whatever the defaults.
PLAIN = catalogue.load()["mlp-small"]


def make_params(**changes) -> schema.Params:
    """Plain params with some dotted keys changed: make_params(**{"model.type": "linear"})."""
    return schema.parse(schema.override(committed_params(), PLAIN | changes))


def copy_project(destination: Path, **changes) -> None:
    """A working copy of the project's own files (no outputs), with params changed by dotted keys."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if name.split("/")[0] not in GENERATED and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    schema.override_file(destination / schema.PARAMS_FILE, changes)


def copy_tiny_project(destination: Path, tiny: datasets.Dataset, **changes) -> None:
    """A copy of the project with the tiny dataset registered as its default.

    Registering is what a user does for a new dataset: one entry in the registry.
    """
    copy_project(destination, **{"data.dataset": "tiny", **changes})
    with (destination / "stages/lib/datasets.py").open("a") as registry:
        registry.write(f"\nDATASETS['tiny'] = {tiny!r}\n")


def init_git(directory: Path) -> None:
    """A repository with one commit, as DVC experiments need."""
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "copy@example.com"],
        ["git", "config", "user.name", "copy"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project copy"],
    ):
        subprocess.run(args, cwd=directory, check=True, capture_output=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path, handler_class=QuietHandler):
    """Serve ``directory`` over HTTP on 127.0.0.1; returns (base URL, server)."""
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


@contextmanager
def tmpfs(directory: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real file system of ``size`` (e.g. "1m") at ``directory``; mounting needs root, else the test is skipped."""
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


STALL_SECONDS = 3  # FaultyHandler's stall; the client gives up after READ_TIMEOUT


class FaultyHandler(http.server.SimpleHTTPRequestHandler):
    """/<fault>/<file>: misbehave as <fault> says; /good/<file>: serve the real file."""

    dataset = "tiny"  # the folder under the served directory that holds the files
    drip_seconds = 0.01  # /drip/: the pause between bytes, never long enough for a read timeout

    def log_message(self, *args):
        pass

    def real_file(self) -> bytes:
        return (Path(self.directory) / self.dataset / Path(self.path).name).read_bytes()

    def send(self, status: int, body: bytes, length: int | None = None, content_type="application/gzip"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        getattr(self, self.path.split("/")[1].replace("-", "_"))()

    def good(self):
        self.send(200, self.real_file())

    def missing(self):
        self.send_error(404)

    def server_error(self):
        self.send_error(500)

    def stall(self):
        body = self.real_file()
        self.send(200, body[: len(body) // 2], length=len(body))
        self.wfile.flush()
        time.sleep(STALL_SECONDS)

    def drip(self):
        body = self.real_file()
        self.send(200, b"", length=len(body))
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.drip_seconds)
        except OSError:
            pass  # the client gave up

    def truncated(self):
        body = self.real_file()
        self.send(200, body[: len(body) // 2], length=len(body))

    def not_gzip(self):
        self.send(200, gzip.decompress(self.real_file()))

    def wrong_content(self):
        content = bytearray(gzip.decompress(self.real_file()))
        content[-1] ^= 0xFF
        self.send(200, gzip.compress(bytes(content)))

    def html_200(self):
        self.send(200, b"<!doctype html><title>Oops</title>Service unavailable", content_type="text/html")

    def redirect_loop(self):
        self.send_response(302)
        self.send_header("Location", self.path)
        self.end_headers()


def huge_png(path: Path) -> Path:
    """A 13,000 x 13,000 page, white with a black square: 169 megapixels in a file of about 30 KB."""
    page = Image.new("1", (13_000, 13_000), 1)
    page.paste(0, (6000, 6000, 7000, 7000))
    page.save(path)
    return path


def dvc_env(mirror_url: str) -> dict:
    """This venv's dvc and python first on PATH, and the test mirror as DATA_MIRROR."""
    return os.environ | {
        "DATA_MIRROR": mirror_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


def run(args: list[str], cwd: Path, env: dict) -> str:
    """Run a command that must succeed; its stdout and stderr together."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` or `dvc exp run` ran, from its output."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


# Headless, offline: a page must render from local files alone.
CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
]


def dump_dom(page_url: str) -> str:
    """The page's DOM once headless Chromium has run its scripts (10 s of virtual time)."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [*CHROMIUM, "--virtual-time-budget=10000", "--dump-dom", f"--user-data-dir={profile}", page_url],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# Expectations that hold only on one kind of machine (XLA choices, notes, logical devices).
cpu_only = pytest.mark.skipif(has_gpu(), reason="expects a machine without GPUs")
gpu_only = pytest.mark.skipif(not has_gpu(), reason="needs a GPU")
