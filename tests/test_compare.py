"""stages.compare: grouping seeds, the noise rule, the table's width, and the HTML report."""

import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import compare
from stages.lib.report import write_report
from tests.helpers import CHROMIUM, init_git

BASE = {"seed": 42, "epochs": 6, "train.learning_rate": 0.001, "model.type": "cnn", "model.dropout": 0.25}


def run(name: str, val: float, test: float = 99.0, **changes) -> compare.Run:
    metrics = {"test acc %": test, "test loss": 0.03, "val acc %": val, "epochs": 6, "fit s": 30.0}
    return compare.Run(
        name, "workspace", BASE | changes, metrics, experiment=name not in ("workspace", "main")
    )


def test_seed_repeats_are_grouped_and_the_rest_kept_apart():
    runs = [
        run("lr1-seed1", 99.1, seed=1),
        run("lr1-seed2", 99.3, seed=2),
        run("lr3-seed1", 99.4, seed=1, **{"train.learning_rate": 0.003}),
        run("workspace", 99.2, seed=3),  # a reference row, whatever its seed
        run("other", 99.0, seed=4),  # seed 4 of the lr1 configuration, by another name
        run("again", 99.0, seed=4),  # the same seed again: one result twice, not another sample
    ]
    groups = compare.group(runs)
    assert [(g.name, len(g.runs)) for g in groups] == [
        ("lr3-seed1", 1),
        ("workspace", 1),
        ("lr1-seed1 +2", 3),
        ("again", 1),
    ]
    assert groups[2].mean("val acc %") == pytest.approx((99.1 + 99.3 + 99.0) / 3)


def test_only_params_that_differ_are_shown_and_seeds_are_not_params():
    header, body = compare.rows(
        compare.group([run("a", 99.1, seed=1), run("b", 99.3, seed=2, **{"model.dropout": 0.5})])
    )
    assert header[:2] == ["experiment", "dropout"]
    assert [row[:2] for row in body] == [["b", "0.5"], ["a", "0.25"]]  # sorted by validation accuracy


def test_welch_marks_what_lies_within_the_seed_noise():
    noisy = [run(f"a-seed{s}", v, seed=s) for s, v in enumerate([99.10, 99.50, 99.30], 1)]
    close = [
        run(f"b-seed{s}", v, seed=s, **{"model.dropout": 0.5}) for s, v in enumerate([99.20, 99.40, 99.25], 1)
    ]
    far = [
        run(f"c-seed{s}", v, seed=s, **{"model.dropout": 0.1}) for s, v in enumerate([98.00, 98.05, 97.98], 1)
    ]
    groups = compare.group(noisy + close + far)
    assert [g.name for g in groups] == ["a-seed*", "b-seed*", "c-seed*"]
    ref = compare.reference([compare.Group([run("best single run", 99.9)]), *groups])
    assert ref is groups[0]  # the best with two seeds or more
    assert compare.versus(ref, groups[0]) == "ref"
    assert compare.versus(ref, groups[1]).startswith("within ")
    assert compare.versus(ref, groups[2]).startswith("beyond ")
    assert compare.versus(ref, compare.Group([run("single", 99.0, seed=9)])) == "n<2"


def test_the_table_of_a_usual_sweep_fits_in_120_characters():
    runs = [
        run(
            f"sweep-{lr}-{dropout}-seed{seed}",
            99.0 + seed / 10,
            seed=seed,
            **{"train.learning_rate": lr, "model.dropout": dropout},
        )
        for lr in (0.001, 0.003)
        for dropout in (0.3, 0.5)
        for seed in (1, 2, 3)
    ] + [run("main", 99.2), run("workspace", 99.2)]
    for markdown in (False, True):
        text = compare.table(runs, markdown=markdown)
        lines = text.splitlines()
        assert len(lines) == (2 if markdown else 1) + 6 + 2, text  # header (and rule), 6 rows, the note
        if not markdown:
            assert max(map(len, lines)) <= 120, text
    assert "99.20±0.10" in compare.table(runs)  # mean ± standard deviation over the three seeds


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A git repository where two commits recorded the train and evaluate stages' files."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    classes = ["T-shirt/top", "Trouser", "Pullover"]
    revs = {}
    for name, accuracy in (("first", 0.80), ("second", 0.92)):
        live = tmp_path / "metrics/train/plots/metrics"
        for split in ("train", "eval"):
            for metric, start in (("loss", 1.0), ("accuracy", accuracy - 0.2)):
                path = live / split / f"{metric}.tsv"
                path.parent.mkdir(parents=True, exist_ok=True)
                values = np.linspace(start, accuracy if metric == "accuracy" else 0.3, 5)
                pd.DataFrame({"step": range(5), metric: values}).to_csv(path, sep="\t", index=False)
        actual = rng.integers(0, 3, 200)
        predicted = np.where(rng.random(200) < accuracy, actual, (actual + 1) % 3)
        pd.DataFrame({"actual": np.array(classes)[actual], "predicted": np.array(classes)[predicted]}).to_csv(
            tmp_path / "metrics/confusion.csv", index=False
        )
        f1 = accuracy + rng.normal(0, 0.02, 3)
        pd.DataFrame({"class": classes, "precision": f1, "recall": f1, "f1": f1, "support": 60}).to_csv(
            tmp_path / "metrics/per_class.csv", index=False
        )
        if not revs:
            init_git(tmp_path)
        else:
            subprocess.run(["git", "commit", "-qam", name], check=True)
        revs[name] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    return revs


def test_report_is_one_file_with_each_runs_figures(recorded, tmp_path):
    header, body = ["experiment", "val acc %"], [["second", "92.00"], ["first", "80.00"]]
    write_report(tmp_path / "report.html", header, body, "a note", recorded)
    page = (tmp_path / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 1 + len(recorded) + 1  # curves, 2 matrices, F1
    assert 'src="http' not in page and "<script" not in page  # nothing to fetch: readable offline
    assert "<td>second</td>" in page and "a note" in page


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(recorded, tmp_path):
    write_report(tmp_path / "report.html", ["experiment"], [["first"], ["second"]], "", recorded)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                *CHROMIUM,
                f"--user-data-dir={profile}",
                "--window-size=1000,2400",
                f"--screenshot={tmp_path / 'shot.png'}",
                (tmp_path / "report.html").as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    pixels = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")).reshape(-1, 3).astype(int)
    # Matplotlib's first two series colours (the runs' curves and F1 bars) and the mistakes' reds
    # only appear if the embedded images were decoded and drawn.
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 500, colour


def test_runs_on_other_code_are_not_repeats_and_params_older_runs_lack_are_not_shown():
    other_code = run("on-an-older-commit", 99.0, seed=5)
    other_code.baseline = "0123abc"  # the same params on another commit: not a repeat
    groups = compare.group([run("a-seed1", 99.1, seed=1), run("a-seed2", 99.2, seed=2), other_code])
    assert [len(g.runs) for g in groups] == [2, 1]
    older = run("older", 99.0)
    older.params = {key: value for key, value in older.params.items() if key != "model.dropout"}
    newer = run("newer", 99.1, **{"model.dropout": 0.5})
    assert compare.differing_params(compare.group([newer, older])) == []  # a key the older run lacks
