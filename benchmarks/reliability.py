"""Time and peak memory of the two costly faults of docs/reliability.md, on this machine.

    python -m benchmarks.reliability slow-server --mirror ../shared/datasets [--drip 0.5] [--cap 400]
    python -m benchmarks.reliability large-image
    python -m benchmarks.reliability training-memory
    python -m benchmarks.reliability ... --code DIR   # another checkout's stages, e.g. the code before a fix

slow-server: `python -m stages.download` with `DATA_MIRROR` on a loopback server that sends
MNIST a byte every `--drip` seconds (the official mirrors follow, unreachable offline).
large-image: `python -m stages.predict` on a 13,000 x 13,000 PNG of about 30 KB, beside a
28 x 28 one for the cost of the command itself. training-memory: an epoch of the train stage
(the default CNN) at batch 128 and 4096, beside the schema's estimate of what training holds. A run still going after `--cap` seconds is
killed and reported as such. Prints one JSON object per run.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from stages.lib import tensorflow_env

tensorflow_env.configure()  # before the test helpers load TensorFlow, as tests/conftest.py does

from tests.helpers import FaultyHandler, committed_params, huge_png, serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(command: list[str], cwd: Path, env: dict, cap: float) -> dict:
    """Wall seconds, peak RSS of the command in MB, how it ended and its last stderr line.

    Through /usr/bin/time: a process started from this one (TensorFlow loaded) would report this
    one's memory as its own peak. `timeout --foreground` kills the command alone, so its usage
    is still counted.
    """
    with tempfile.NamedTemporaryFile("r") as stats:
        timed = [
            "/usr/bin/time",
            "-f",
            "%e %M",
            "-o",
            stats.name,
            "timeout",
            "--foreground",
            "-s",
            "KILL",
            str(cap),
        ]
        result = subprocess.run(timed + command, cwd=cwd, env=env, capture_output=True, text=True)
        seconds, peak_kb = stats.read().split()[-2:]
    lines = result.stderr.strip().splitlines()
    killed = result.returncode == 128 + signal.SIGKILL
    return {
        "command": " ".join(command),
        "seconds": float(seconds),
        "peak_rss_mb": round(int(peak_kb) / 1024),
        "outcome": f"still running after {cap:.0f} s, killed" if killed else f"exit {result.returncode}",
        "last_line": lines[-1][:300] if lines else "",
    }


def slow_server(code: Path, mirror: Path, drip: float, cap: float, work: Path, env: dict) -> dict:
    handler = type("Dripping", (FaultyHandler,), {"dataset": "mnist", "drip_seconds": drip})
    url, server = serve(mirror, handler)
    shutil.copy(code / "params.yaml", work)  # the committed default dataset: MNIST
    try:
        return measure(
            [sys.executable, "-m", "stages.download", "raw"], work, env | {"DATA_MIRROR": f"{url}/drip"}, cap
        )
    finally:
        server.shutdown()


def large_image(code: Path, cap: float, work: Path, env: dict) -> list[dict]:
    import keras

    from stages.lib import processed

    keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")]).save(
        work / "model.keras"
    )
    processed.save_dataset_info(work, "mnist", tuple("0123456789"))
    small = work / "small.png"
    square = np.zeros((28, 28), np.uint8)
    square[8:20, 8:20] = 255
    Image.fromarray(square).save(small)
    return [
        measure(
            [sys.executable, "-m", "stages.predict", "--model", "model.keras", image.name], work, env, cap
        )
        for image in (small, huge_png(work / "huge.png"))
    ]


def training_memory(code: Path, cap: float, work: Path, env: dict) -> list[dict]:
    """One epoch of the train stage at batch 128 and 4096 on random data: the schema's estimate is the difference."""
    from stages.lib import processed, schema

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        labels = rng.integers(0, 10, 2 * 4096)
        processed.save_split(
            work,
            split,
            rng.random((len(labels), 784), dtype=np.float32),
            np.eye(10, dtype=np.float32)[labels],
        )
    processed.save_dataset_info(work, "mnist", tuple("0123456789"))
    runs = []
    for batch in (128, 4096):
        changes = {"epochs": 1, "train.batch_size": batch}
        (work / "params.yaml").write_text(yaml.safe_dump(schema.override(committed_params(), changes)))
        params = schema.parse(yaml.safe_load((work / "params.yaml").read_text()))
        weights, outputs = schema.model_size(params.model, 10)
        estimate = 4 * (4 * weights + 3 * outputs * batch) / 10**6
        command = [sys.executable, "-m", "stages.train", ".", "model.keras", f"live{batch}"]
        runs.append(measure(command, work, env, cap) | {"estimate_mb": round(estimate)})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0]
    )
    parser.add_argument("case", choices=["slow-server", "large-image", "training-memory"])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose stages run")
    parser.add_argument(
        "--mirror", type=Path, default=ROOT.parent / "shared/datasets", help="holds mnist/*.gz"
    )
    parser.add_argument("--drip", type=float, default=0.5, help="seconds between the bytes served")
    parser.add_argument("--cap", type=float, default=400.0, help="seconds before a run is killed")
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(args.code.resolve())}
    with tempfile.TemporaryDirectory() as work:
        if args.case == "slow-server":
            runs = [slow_server(args.code, args.mirror, args.drip, args.cap, Path(work), env)]
        elif args.case == "large-image":
            runs = large_image(args.code, args.cap, Path(work), env)
        else:
            runs = training_memory(args.code, args.cap, Path(work), env)
    for run in runs:
        print(json.dumps({"case": args.case, "code": str(args.code), **run}))


if __name__ == "__main__":
    main()
