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
import sys
import time

from experiments import catalogue
from stages import compare

POLL_SECONDS = 15


def dvc(*args: str) -> str:
    return subprocess.run(["dvc", *args], check=True, capture_output=True, text=True).stdout


def experiment_states() -> dict[str, str]:
    """Every experiment DVC knows in this repository: name -> queued | running | success | failed."""
    states = {}
    for commit in json.loads(dvc("exp", "show", "--json", "--all-commits")):
        for experiment in commit.get("experiments") or []:
            executor = experiment.get("executor") or {"state": "success"}
            states[experiment["name"] or experiment["revs"][0]["rev"]] = executor["state"]
    return states


def queue(names: list[str], seeds: list[int], extra: list[str]) -> None:
    """Queue the named configurations (each seed of each), or one sweep of the workspace."""
    experiments = catalogue.load()
    unknown = [name for name in names if name not in experiments]
    if unknown:
        sys.exit(f"error: unknown experiment {', '.join(unknown)} (known: {', '.join(experiments)})")
    if not names:
        dvc("exp", "run", "--queue", *extra, *(["-S", f"seed={','.join(map(str, seeds))}"] if seeds else []))
        return
    for name in names:
        for seed in seeds or [None]:
            changes = experiments[name] | ({} if seed is None else {"seed": seed})
            label = name if seed is None else f"{name}-seed{seed}"
            dvc("exp", "run", "--queue", "--force", "-n", label, *catalogue.set_arguments(changes), *extra)


def run_queue(jobs: int) -> list[str]:
    """Start the queue's workers, wait for them and return the names of what they ran."""
    waiting = {name for name, state in experiment_states().items() if state in ("queued", "running")}
    # N runs share the cores: each gets 1/N of them rather than a thread per core. The queue's
    # workers inherit this environment.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    os.environ |= {
        "TF_NUM_INTRAOP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
    }
    dvc("queue", "start", "--jobs", str(jobs))
    while True:
        states = {name: state for name, state in experiment_states().items() if name in waiting}
        if all(state in ("success", "failed") for state in states.values()):
            break
        time.sleep(POLL_SECONDS)
    failed = sorted(name for name, state in states.items() if state == "failed")
    if failed:
        print(f"failed: {', '.join(failed)} (see `dvc queue logs <name>`)", file=sys.stderr)
    return sorted(name for name, state in states.items() if state == "success")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="configurations of experiments/catalogue.yaml")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[])
    parser.add_argument("--jobs", type=int, default=1, help="experiments at a time (default: 1, all cores)")
    parser.add_argument(
        "-S", dest="extra", action="append", default=[], help="key=value for every experiment"
    )
    args = parser.parse_args()
    if not (args.names or args.extra or args.seeds):
        parser.error("give configuration names, seeds or -S sweep values")
    queue(args.names, args.seeds, [argument for value in args.extra for argument in ("-S", value)])
    ran = run_queue(args.jobs)
    print(compare.table(compare.collect(ran)))


if __name__ == "__main__":
    main()
