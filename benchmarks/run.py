"""Benchmark the pipeline against the hand-written Keras script it replaces, on this machine.

    python -m benchmarks.run --mirror ../shared/datasets [--out benchmarks/results.json]

In one run, side by side: the `mlp-512` reference script as a whole process; the pipeline
with the same hyperparameters (`dvc repro` from an empty cache, in a fresh clone of the
committed project); the train stage's fit time; the machine's float32 matmul peak and the share of
it training reaches; a no-op `dvc repro`; each stage's wall time and peak memory; and
time per epoch and preprocess memory at 25%, 50% and 100% of the training data; the
throughput of the best MNIST MLP (`best-mnist-mlp`) over 3 epochs; and the former default
CNN (`cnn-2026-11`) against the committed default, trained one after the other: fit time,
test accuracy, seconds to 99.0% and 99.4% validation accuracy, share of the matmul peak
(convolutions counted), and the ratio of their fit times.
"""

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from experiments import catalogue
from stages.lib import schema, tensorflow_env
from stages.lib.datasets import IMAGE_PIXELS

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = catalogue.load()
MLP_512 = EXPERIMENTS["mlp-512"]  # the reference script's hyperparameters
BEST_MLP = EXPERIMENTS["best-mnist-mlp"]  # for its throughput
FORMER_DEFAULT = EXPERIMENTS["cnn-2026-11"]  # params.yaml's default as of 2026-11-29
SCALING_EPOCHS = 3  # also the epochs of the best MLP's throughput run
PARAMS = schema.PARAMS_FILE


# Started from this process, a command's peak RSS would count this process's own memory too
# (Linux carries a process's resident size over fork and exec), so a small Python process
# starts it and writes down its wall time and its child's peak (the launcher's start-up is
# not timed).
LAUNCHER = """
import pathlib, resource, subprocess, sys, time
started = time.perf_counter()
status = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
pathlib.Path(sys.argv[1]).write_text(f"{seconds} {peak_kb}")
sys.exit(status)
"""


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB of the command (its largest process) and its output."""
    with tempfile.NamedTemporaryFile("r") as measured:
        process = subprocess.run(
            [sys.executable, "-c", LAUNCHER, measured.name, *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if process.returncode:
            sys.exit(f"error: {' '.join(command)} failed:\n{process.stdout}")
        seconds, peak_kb = measured.read().split()
        return float(seconds), int(peak_kb) / 1024, process.stdout


def matmul_peak_gflops(seconds: float = 3.0, n: int = 2048) -> float:
    a, b = (np.random.default_rng(0).random((n, n), dtype=np.float32) for _ in range(2))
    a @ b  # warm-up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def training_flops_per_sample(params: schema.Params) -> int:
    """2 FLOPs per multiply-add of every Dense and Conv2D layer, and 3x for forward and backward."""
    from stages.lib.models import build_model  # TensorFlow loads here, configured by main()

    model = build_model(params.model, IMAGE_PIXELS, 10)
    multiply_adds = 0
    for layer in model.layers:
        if layer.__class__.__name__ == "Dense":
            multiply_adds += math.prod(layer.kernel.shape)
        elif layer.__class__.__name__ == "Conv2D":
            multiply_adds += math.prod(layer.kernel.shape) * math.prod(layer.output.shape[1:3])
    return 3 * 2 * multiply_adds


def share_of_peak(project: Path, peak: float) -> dict:
    """Training throughput of the run in ``project``, from its params, data and fit time."""
    params = schema.load(project / PARAMS)
    train_samples = len(np.load(project / "data/processed/train_y.npy", mmap_mode="r"))
    summary = json.loads((project / "metrics/train/metrics.json").read_text())
    flops = training_flops_per_sample(params) * train_samples * summary["epochs_run"]
    achieved = flops / summary["fit_seconds"] / 1e9
    return {"training_gflops": round(achieved, 1), "share_of_peak": round(achieved / peak, 3)}


def seconds_to(project: Path, accuracy: float) -> float | None:
    """Seconds of training until the validation accuracy first reached ``accuracy`` (None: never)."""
    curves = project / "metrics/train/plots/metrics"
    reached = pd.read_csv(curves / "eval/accuracy.tsv", sep="\t")
    elapsed = pd.read_csv(curves / "train/elapsed_seconds.tsv", sep="\t")
    steps = reached.loc[reached["accuracy"] >= accuracy, "step"]
    return (
        None
        if steps.empty
        else round(float(elapsed.set_index("step").loc[steps.min(), "elapsed_seconds"]), 1)
    )


def defaults_side_by_side(project: Path, env: dict, peak: float) -> dict:
    """The former default CNN against the committed default, trained and scored one after the other."""
    commands = stage_commands(project)
    results = {}
    for name, changes in (("former default (cnn-2026-11)", FORMER_DEFAULT), ("default (params.yaml)", {})):
        print(f"{name} ...", flush=True)
        subprocess.run(["git", "checkout", "-q", "--", PARAMS], cwd=project, check=True)
        schema.override_file(project / PARAMS, changes)
        for stage in ("validate", "preprocess", "train", "evaluate"):
            timed(commands[stage], project, env)
        summary = json.loads((project / "metrics/train/metrics.json").read_text())
        results[name] = {
            "fit_seconds": summary["fit_seconds"],
            "epochs_run": summary["epochs_run"],
            "test_accuracy": json.loads((project / "metrics/test.json").read_text())["accuracy"],
            "seconds_to_99.0": seconds_to(project, 0.990),
            "seconds_to_99.4": seconds_to(project, 0.994),
            **share_of_peak(project, peak),
        }
    former, new = results.values()
    results["fit_ratio_new_vs_former"] = round(new["fit_seconds"] / former["fit_seconds"], 3)
    return results


def machine() -> dict:
    """The CPU, as `lscpu` names it, and whether it has AVX-512 (TensorFlow's kernels differ)."""
    info = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    return {"cpu": model, "cpus": os.cpu_count(), "avx512": " avx512f" in info}


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
    results: dict = {"machine": machine()}

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
    results["defaults"] = defaults_side_by_side(project, env, peak)  # last: it resets the params

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
    former, new = (results["defaults"][name] for name in list(results["defaults"])[:2])
    for label, run in (("former default cnn-2026-11", former), ("default (params.yaml)", new)):
        rows += [
            (
                f"{label}: fit / epochs / test accuracy",
                f"{run['fit_seconds']} s / {run['epochs_run']} / {run['test_accuracy']:.4f}",
            ),
            (
                f"{label}: seconds to 99.0% / 99.4% validation accuracy",
                f"{run['seconds_to_99.0']} / {run['seconds_to_99.4']}",
            ),
            (
                f"{label}: throughput / share of peak",
                f"{run['training_gflops']} GFLOP/s / {run['share_of_peak']}",
            ),
        ]
    rows.append(
        (
            "ratio: default fit / former default fit (target <= 1/7 = 0.143)",
            results["defaults"]["fit_ratio_new_vs_former"],
        )
    )
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
    tensorflow_env.configure()  # for counting the models' FLOPs, as the stages build them
    if not (args.mirror / "mnist").is_dir():
        sys.exit(f"error: {args.mirror / 'mnist'} not found: --mirror must hold mnist/<file>.gz")
    with tempfile.TemporaryDirectory() as work:
        results = benchmark(args.mirror, Path(work))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
