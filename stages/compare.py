"""Compare runs at a glance: what differs between them, and their headline metrics.

    python -m stages.compare [EXPERIMENT ...] [--md] [--report FILE.html]

Reads what DVC recorded (``dvc exp show --json``): the workspace, the last commit and its
experiments by default, or the ones named. Runs whose params differ only in ``seed`` are
repeats of one configuration: they are grouped, each metric shown as mean ± standard
deviation over the n seeds (test and validation accuracy), else their mean. Rows are sorted
by validation accuracy (the test set reports, it never chooses); each is marked as within or
beyond the seed noise of the reference row, the best with two seeds or more.
"""

import json
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from stages.lib import cli
from stages.lib.errors import UserError
from stages.lib.report import write_report

TEST, TRAIN = "metrics/test.json", "metrics/train/metrics.json"
# (column, metrics file, key): the headline metrics, in the order shown.
METRICS = (
    ("test acc %", TEST, "accuracy"),
    ("test loss", TEST, "loss"),
    ("val acc %", TRAIN, "val_accuracy"),
    ("epochs", TRAIN, "epochs_run"),
    ("fit s", TRAIN, "fit_seconds"),
)
SORT_BY = "val acc %"
SIGNIFICANCE = 0.05  # Welch's two-sided t-test on validation accuracy, against the reference row
NOTE = (
    "mean±std over seeds; sorted by validation accuracy; within/beyond: Welch's t-test on validation\n"
    "accuracy against ref, the best row with n >= 2, at 5% (within: not significantly different)"
)


@dataclass
class Run:
    """One run DVC recorded: the workspace, a commit or an experiment."""

    name: str
    rev: str
    params: dict[str, object]
    metrics: dict[str, float]
    experiment: bool = True  # False for the workspace and commits: the reference rows
    baseline: str = ""  # the commit an experiment ran on: other code, another configuration


@dataclass
class Group:
    """Runs of one configuration: the same params but for the seed."""

    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        names = sorted(run.name for run in self.runs)
        stems = {re.sub(r"-seed\d+$", "", name) for name in names}
        if len(names) > 1 and len(stems) == 1:
            return f"{stems.pop()}-seed*"
        return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")

    def values(self, column: str) -> list[float]:
        return [run.metrics[column] for run in self.runs if column in run.metrics]

    def mean(self, column: str) -> float | None:
        values = self.values(column)
        return statistics.fmean(values) if values else None


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _run(name: str, state: dict, baseline: str, experiment: bool) -> Run | None:
    data = state.get("data") or {}
    files = data.get("metrics") or {}
    metrics = {}
    for column, path, key in METRICS:
        value = ((files.get(path) or {}).get("data") or {}).get(key)
        if isinstance(value, int | float):
            metrics[column] = 100 * value if column.endswith("%") else value
    if not metrics:
        return None
    params = flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
    return Run(name, state["rev"], params, metrics, experiment, baseline)


def collect(names: list[str] | None = None) -> list[Run]:
    """The runs DVC shows, with metrics: all of them, or those named (experiments, `workspace`, a branch)."""
    command = ["dvc", "exp", "show", "--json", *(["--all-commits"] if names else [])]
    try:
        shown = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("dvc not found: activate the project's virtual environment") from None
    if shown.returncode != 0:
        raise UserError(
            f"{' '.join(command)} failed: {(shown.stderr.strip().splitlines() or ['no message'])[-1]}"
        )
    runs = []
    for commit in json.loads(shown.stdout):
        rev = commit["rev"]
        runs.append(
            _run(
                commit.get("name") or (rev if rev == "workspace" else rev[:7]), commit, rev, experiment=False
            )
        )
        for experiment in commit.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state", "success") == "success":
                runs.append(_run(experiment["name"], experiment["revs"][0], rev, experiment=True))
    runs = [run for run in runs if run is not None]
    if names:
        found = {run.name: run for run in runs}
        missing = [name for name in names if name not in found]
        if missing:
            raise UserError(f"no finished run named {', '.join(missing)} (see `dvc exp show`)")
        runs = [found[name] for name in names]
    return runs


def group(runs: list[Run]) -> list[Group]:
    """Experiments whose params differ only in the seed, together; best validation accuracy first.

    The workspace and commits keep a row each, as the reference points; so do two experiments
    with the same seed too, which are one result twice, not two samples.
    """
    keyed: dict[str, list[Group]] = {}
    groups = []
    for run in runs:
        key = run.baseline + json.dumps({k: v for k, v in run.params.items() if k != "seed"}, sort_keys=True)
        seed = run.params.get("seed")
        same = [g for g in keyed.get(key, []) if seed not in {r.params.get("seed") for r in g.runs}]
        if run.experiment and same:
            same[0].runs.append(run)
        else:
            groups.append(Group([run]))
            if run.experiment:
                keyed.setdefault(key, []).append(groups[-1])
    return sorted(groups, key=lambda g: -(g.mean(SORT_BY) if g.mean(SORT_BY) is not None else -1))


def differing_params(groups: list[Group]) -> list[str]:
    """The params (but the seed) set in every row, whose value is not the same in every row.

    A param that older commits lack came later, with a default that kept their behaviour.
    """
    keys = sorted(set.intersection(*(set(run.params) for g in groups for run in g.runs)) - {"seed"})
    return [key for key in keys if len({json.dumps(g.runs[0].params[key]) for g in groups}) > 1]


def reference(groups: list[Group]) -> Group | None:
    """The row the others are tested against: the best with two seeds or more."""
    return next((g for g in groups if len(g.values(SORT_BY)) > 1), None)


def versus(ref: Group | None, other: Group) -> str:
    """Whether ``other``'s validation accuracy differs from ``ref``'s beyond the seed noise."""
    if other is ref:
        return "ref"
    a, b = (ref.values(SORT_BY) if ref else []), other.values(SORT_BY)
    if len(a) < 2 or len(b) < 2:
        return "n<2"
    if statistics.pvariance(a) == statistics.pvariance(b) == 0:
        p = 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    else:
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return f"{'beyond' if p < SIGNIFICANCE else 'within'} p={p:.2g}"


def cell(g: Group, column: str) -> str:
    values = g.values(column)
    if not values:
        return "-"
    digits = {"test loss": 4, "fit s": 0, "epochs": 1 if len(values) > 1 else 0}.get(column, 2)
    text = f"{statistics.fmean(values):.{digits}f}"
    if len(values) > 1 and column.endswith("%"):
        text += f"±{statistics.stdev(values):.2f}"
    return text


def rows(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: the name, the params that differ, the metrics, n and the noise mark."""
    params = differing_params(groups)
    short = {key: key.rsplit(".", 1)[-1] for key in params}
    if len(set(short.values())) < len(short):  # two sections share a key name: keep them apart
        short = {key: key for key in params}
    header = ["experiment", *short.values(), *(column for column, _, _ in METRICS), "n", "vs ref (val acc)"]
    ref = reference(groups)
    body = []
    for g in groups:
        values = [json.dumps(g.runs[0].params.get(key)).strip('"') for key in params]
        mark = versus(ref, g)
        body.append([g.name, *values, *(cell(g, column) for column, _, _ in METRICS), str(len(g.runs)), mark])
    return header, body


def table(runs: list[Run], markdown: bool = False) -> str:
    """The comparison as aligned text (or Markdown), with a line on how to read it."""
    if not runs:
        return "no finished runs with metrics to compare"
    header, body = rows(group(runs))
    if markdown:
        lines = [header, ["---"] * len(header), *body]
        text = "\n".join("| " + " | ".join(line) + " |" for line in lines)
    else:
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        text = "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *body]
        )
    return f"{text}\n{NOTE}"


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("experiments", nargs="*", help="names as `dvc exp show` lists them; default: all")
    parser.add_argument("--md", action="store_true", help="a Markdown table")
    parser.add_argument("--report", type=Path, help="also write a self-contained HTML report here")
    args = parser.parse_args()
    runs = collect(args.experiments or None)
    print(table(runs, markdown=args.md))
    if args.report and runs:
        header, body = rows(group(runs))
        write_report(args.report, header, body, NOTE, {run.name: run.rev for run in runs})
        print(f"wrote {args.report}")


if __name__ == "__main__":
    cli.run(main)
