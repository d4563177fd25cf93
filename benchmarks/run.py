"""Benchmark the pipeline against the hand-written Keras script it replaces, on this machine.

    python -m benchmarks.run --mirror ../shared/datasets [--out benchmarks/results.json]

In one run, side by side: the `mlp-512` reference script as a whole process; the pipeline
with the same hyperparameters (`dvc repro` from an empty cache, in a fresh clone of the
committed project); the train stage's fit time; the machine's float32 matmul peak and the share of
it training reaches; a no-op `dvc repro`; each stage's wall time and peak memory; and
time per epoch and preprocess memory at 25%, 50% and 100% of the training data; and the
throughput of the best MNIST MLP (`best-mnist-mlp`) over 3 epochs.
"""

import argparse
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from experiments import catalogue
from stages.lib import schema

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = catalogue.load()
MLP_512 = EXPERIMENTS["mlp-512"]  # the reference script's hyperparameters
BEST_MLP = EXPERIMENTS["best-mnist-mlp"]  # for its throughput
SCALING_EPOCHS = 3  # also the epochs of the best MLP's throughput run
PARAMS = schema.PARAMS_FILE


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB of that process (not its children) and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status:
        sys.exit(f"error: {' '.join(command)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def matmul_peak_gflops(seconds: float = 3.0, n: int = 2048) -> float:
    a, b = (np.random.default_rng(0).random((n, n), dtype=np.float32) for _ in range(2))
    a @ b  # warm-up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def training_flops_per_sample(hidden_units: list[int]) -> int:
    """Forward and backward are about 3x the forward's 2 FLOPs per weight."""
    widths = [784, *hidden_units, 10]
    return 3 * 2 * sum(a * b for a, b in itertools.pairwise(widths))


def share_of_peak(project: Path, peak: float) -> dict:
    """Training throughput of the run in ``project``, from its params and its fit time."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    train_samples = 60000 * (1 - params["data"]["val_fraction"]) * params["data"]["train_fraction"]
    summary = json.loads((project / "metrics/train/metrics.json").read_text())
    flops = training_flops_per_sample(params["model"]["hidden_units"]) * train_samples * summary["epochs_run"]
    achieved = flops / summary["fit_seconds"] / 1e9
    return {"training_gflops": round(achieved, 1), "share_of_peak": round(achieved / peak, 3)}


def stage_commands(project: Path) -> dict[str, list[str]]:
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name: shlex.split(stage["cmd"]) for name, stage in stages.items()}


def fit_seconds(project: Path) -> float:
    return json.loads((project / "metrics/train/metrics.json").read_text())["fit_seconds"]


def benchmark(mirror: Path, work: Path) -> dict:
    env = os.environ | {
        "DATA_MIRROR": str(mirror.resolve()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    results: dict = {"machine": {"cpus": os.cpu_count()}}

    print("reference script ...", flush=True)
    seconds, rss, output = timed(
        [sys.executable, str(ROOT / "experiments/plain_keras.py"), "mlp-512", str(mirror)], work, env
    )
    reference = dict(item.split("=") for item in output.split()[-2:])
    results["reference"] = {
        "wall_seconds": round(seconds, 1),
        "fit_seconds": float(reference["fit_seconds"]),
        "test_accuracy": float(reference["test_accuracy"]),
        "peak_rss_mb": round(rss),
    }

    print("pipeline, dvc repro from an empty cache ...", flush=True)
    project = work / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
    schema.override_file(project / PARAMS, MLP_512)
    seconds, _, _ = timed(["dvc", "repro"], project, env)
    results["pipeline"] = {
        "wall_seconds": round(seconds, 1),
        "fit_seconds": fit_seconds(project),
        "test_accuracy": json.loads((project / "metrics/test.json").read_text())["accuracy"],
    }
    results["noop_repro_seconds"] = round(timed(["dvc", "repro"], project, env)[0], 2)

    print("each stage alone ...", flush=True)
    results["stages"] = {}
    for name, command in stage_commands(project).items():
        seconds, rss, _ = timed(command, project, env)
        results["stages"][name] = {"wall_seconds": round(seconds, 2), "peak_rss_mb": round(rss)}

    print("matmul peak ...", flush=True)
    peak = matmul_peak_gflops()
    results["compute"] = {"matmul_peak_gflops": round(peak, 1), **share_of_peak(project, peak)}

    print("scaling with data.train_fraction ...", flush=True)
    commands = stage_commands(project)
    results["scaling"] = {}
    for fraction in (0.25, 0.5, 1.0):
        schema.override_file(project / PARAMS, {"data.train_fraction": fraction, "epochs": SCALING_EPOCHS})
        _, preprocess_rss, _ = timed(commands["preprocess"], project, env)
        timed(commands["train"], project, env)
        results["scaling"][str(fraction)] = {
            "seconds_per_epoch": round(fit_seconds(project) / SCALING_EPOCHS, 2),
            "preprocess_peak_rss_mb": round(preprocess_rss),
        }

    print(f"best-mnist-mlp, {SCALING_EPOCHS} epochs ...", flush=True)
    schema.override_file(project / PARAMS, BEST_MLP | {"epochs": SCALING_EPOCHS})
    for stage in ("preprocess", "train"):
        timed(commands[stage], project, env)
    results["best_mlp"] = share_of_peak(project, peak)

    reference, pipeline, scaling = results["reference"], results["pipeline"], results["scaling"]
    results["ratios"] = {
        "pipeline_wall_vs_reference_wall": round(pipeline["wall_seconds"] / reference["wall_seconds"], 2),
        "train_fit_vs_reference_fit": round(pipeline["fit_seconds"] / reference["fit_seconds"], 2),
        "epoch_time_100_vs_25": round(
            scaling["1.0"]["seconds_per_epoch"] / scaling["0.25"]["seconds_per_epoch"], 2
        ),
        "preprocess_rss_100_vs_25": round(
            scaling["1.0"]["preprocess_peak_rss_mb"] / scaling["0.25"]["preprocess_peak_rss_mb"], 2
        ),
    }
    return results


def table(results: dict) -> str:
    reference, pipeline = results["reference"], results["pipeline"]
    rows = [
        ("reference script: wall / fit", f"{reference['wall_seconds']} s / {reference['fit_seconds']} s"),
        ("reference script: test accuracy", f"{reference['test_accuracy']:.4f}"),
        ("pipeline `dvc repro` (5 stages): wall", f"{pipeline['wall_seconds']} s"),
        ("pipeline train stage: fit", f"{pipeline['fit_seconds']} s"),
        ("pipeline: test accuracy", f"{pipeline['test_accuracy']:.4f}"),
        (
            "ratio: pipeline wall / reference wall (target <= 0.8)",
            results["ratios"]["pipeline_wall_vs_reference_wall"],
        ),
        (
            "ratio: train fit / reference fit (target <= 0.55)",
            results["ratios"]["train_fit_vs_reference_fit"],
        ),
        ("float32 matmul peak (NumPy)", f"{results['compute']['matmul_peak_gflops']} GFLOP/s"),
        ("training throughput", f"{results['compute']['training_gflops']} GFLOP/s"),
        ("share of peak (target >= 0.55)", results["compute"]["share_of_peak"]),
        (
            "best-mnist-mlp [512, 512], dropout, 3 epochs: throughput / share of peak",
            f"{results['best_mlp']['training_gflops']} GFLOP/s / {results['best_mlp']['share_of_peak']}",
        ),
        ("no-op `dvc repro` (target < 2 s)", f"{results['noop_repro_seconds']} s"),
    ]
    rows += [
        (f"stage {name}: wall / peak RSS", f"{stage['wall_seconds']} s / {stage['peak_rss_mb']} MB")
        for name, stage in results["stages"].items()
    ]
    rows += [
        (
            f"train_fraction {fraction}: s per epoch / preprocess peak RSS",
            f"{point['seconds_per_epoch']} s / {point['preprocess_peak_rss_mb']} MB",
        )
        for fraction, point in results["scaling"].items()
    ]
    rows += [
        ("ratio: epoch time 100% / 25% (target <= 4.4)", results["ratios"]["epoch_time_100_vs_25"]),
        ("ratio: preprocess RSS 100% / 25% (target <= 4.4)", results["ratios"]["preprocess_rss_100_vs_25"]),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="folder holding mnist/*.gz")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results.json")
    args = parser.parse_args()
    args.mirror = args.mirror.resolve()  # the runs happen in a temporary folder
    if not (args.mirror / "mnist").is_dir():
        sys.exit(f"error: {args.mirror / 'mnist'} not found: --mirror must hold mnist/<file>.gz")
    with tempfile.TemporaryDirectory() as work:
        results = benchmark(args.mirror, Path(work))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
