"""Run named configurations, or a sweep, as DVC experiments from the queue; then compare them.

    python -m experiments.run NAME [NAME ...] [--seeds 1,2,3] [--jobs N] [-S key=value ...]
    python -m experiments.run [--jobs N] -S 'train.learning_rate=0.001,0.003' [-S ...]

With names, each configuration of experiments/catalogue.yaml is queued (once per seed with
``--seeds``, named ``NAME-seedS``); without, the workspace's params with the ``-S`` values
(and the seeds), which DVC expands into every combination. The queue then runs ``--jobs`` experiments at a
time, each in its own copy of the workspace with its share of the cores, and the comparison
(``python -m stages.compare``) of this run's experiments is printed.
"""

import argparse
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from experiments import catalogue
from stages import compare
from stages.lib import cli
from stages.lib.errors import UserError


def dvc(*args: str, quiet: bool = True) -> str:
    """Run a DVC command; its output, or its last error line as a UserError."""
    done = subprocess.run(["dvc", *args], capture_output=quiet, text=True)
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines() or ["see its output above"]
        raise UserError(f"dvc {' '.join(args[:2])} failed: {last[-1]}")
    return done.stdout or ""


def states() -> dict[str, str]:
    """This commit's experiments, by name: queued, running, success or failed."""
    found = {}
    for commit in json.loads(dvc("exp", "show", "--json")):
        for experiment in commit.get("experiments") or []:
            found[experiment["name"]] = (experiment.get("executor") or {"state": "success"})["state"]
    return found


def queue(names: list[str], seeds: list[int], extra: list[str]) -> None:
    """Queue the named configurations (each seed of each), or one sweep of the workspace."""
    experiments = catalogue.load()
    unknown = [name for name in names if name not in experiments]
    if unknown:
        raise UserError(f"unknown experiment {', '.join(unknown)} (known: {', '.join(experiments)})")
    if not names:
        dvc("exp", "run", "--queue", *extra, *(["-S", f"seed={','.join(map(str, seeds))}"] if seeds else []))
        return
    for name in names:
        for seed in seeds or [None]:
            changes = experiments[name] | ({} if seed is None else {"seed": seed})
            label = name if seed is None else f"{name}-seed{seed}"
            dvc("exp", "run", "--queue", "--force", "-n", label, *catalogue.set_arguments(changes), *extra)


def worker_environment(jobs: int, environ: dict[str, str]) -> dict[str, str]:
    """What the queue's workers inherit, for ``jobs`` experiments at a time."""
    # N runs share the cores: each gets 1/N of them rather than a thread per core.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    changes = {"TF_NUM_INTRAOP_THREADS": threads, "OMP_NUM_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}
    # Each runs in a copy of the project elsewhere, where a relative mirror folder is not found.
    mirror = environ.get("DATA_MIRROR", "")
    if mirror and not urlparse(mirror).scheme:
        changes["DATA_MIRROR"] = str(Path(mirror).resolve())
    return environ | changes


def run_queue(jobs: int) -> None:
    """Run the queue, ``jobs`` experiments at a time, and wait for it."""
    os.environ.update(worker_environment(jobs, dict(os.environ)))
    dvc("exp", "run", "--run-all", "--jobs", str(jobs), quiet=False)  # follows each run's log


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="configurations of experiments/catalogue.yaml")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[])
    parser.add_argument(
        "--jobs", type=int, choices=range(1, 65), default=1, metavar="N", help="at a time (1)"
    )
    parser.add_argument(
        "-S", dest="extra", action="append", default=[], help="key=value for every experiment"
    )
    args = parser.parse_args()
    if not (args.names or args.extra or args.seeds):
        parser.error("give configuration names, seeds or -S sweep values")
    # An idle worker of an earlier run may start a new experiment at once: running ones count too.
    before = {name for name, state in states().items() if state in ("queued", "running")}
    queue(args.names, args.seeds, [argument for value in args.extra for argument in ("-S", value)])
    ours = {name for name, state in states().items() if state in ("queued", "running")} - before
    run_queue(args.jobs)
    finished = states()
    failed = sorted(name for name in ours if finished.get(name) != "success")
    if failed:
        print(f"failed: {', '.join(failed)} (see `dvc queue logs <name>`)")
    if len(failed) == len(ours):
        raise UserError("no experiment of this run finished")
    print(compare.table(compare.collect(sorted(ours - set(failed)))))


if __name__ == "__main__":
    cli.run(main)
