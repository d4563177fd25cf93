"""The plot templates in .dvc/plots/, filled by real `dvc plots show` and `dvc plots diff`.

A tiny git+DVC project holds the repository's `plots:` section, its templates and small
synthetic metrics at the pipeline's paths; the workspace differs from HEAD, so a diff has
two revisions to tell apart.
"""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, dump_dom, run

DVC = str(Path(sys.executable).parent / "dvc")
ENV = dict(os.environ)
CURVES = "metrics/train/plots/metrics"  # DVCLive's TSVs; eval = validation


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_metrics(root: Path, gain: float) -> None:
    """Three epochs (steps 0..2) of curves, a 3-class confusion matrix with errors, per-class F1."""
    for split, losses in {"train": [0.9, 0.6, 0.5], "eval": [0.8, 0.7, 0.65]}.items():
        loss = "".join(f"{step}\t{value - gain}\n" for step, value in enumerate(losses))
        accuracy = "".join(f"{step}\t{1 - value / 4 + gain}\n" for step, value in enumerate(losses))
        write(root / CURVES / split / "loss.tsv", "step\tloss\n" + loss)
        write(root / CURVES / split / "accuracy.tsv", "step\taccuracy\n" + accuracy)
    pairs = [(c, c) for c in range(3) for _ in range(20)] + [(0, 1), (0, 1), (2, 1)]
    write(root / "metrics/confusion.csv", "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in pairs))
    f1 = [0.95 + gain, 0.97, 0.99]
    write(
        root / "metrics/per_class.csv",
        "class,precision,recall,f1,support\n" + "".join(f"{c},{v},{v},{v},20\n" for c, v in enumerate(f1)),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """HEAD holds one set of metrics, the workspace another."""
    root = tmp_path_factory.mktemp("plots")
    vega_plots = [p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] if isinstance(p, dict)]
    write(root / "dvc.yaml", yaml.safe_dump({"plots": vega_plots}, sort_keys=False))
    write_metrics(root, gain=0.0)
    run(["git", "init", "-q"], root, ENV)
    run([DVC, "init", "-q"], root, ENV)
    shutil.copytree(ROOT / ".dvc/plots", root / ".dvc/plots")
    shutil.copy(ROOT / ".dvc/config", root / ".dvc/config")  # names the offline page template
    run(["git", "add", "-A"], root, ENV)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "HEAD"], root, ENV)
    write_metrics(root, gain=0.02)
    return root


def specs(root: Path, *command: str) -> dict[str, list[dict]]:
    """The filled Vega-Lite specs DVC renders, by template name."""
    shown = json.loads(run([DVC, "plots", *command, "--json"], root, ENV))
    assert "errors" not in shown
    templates = {
        name: p[name]["template"]
        for p in yaml.safe_load((root / "dvc.yaml").read_text())["plots"]
        for name in p
    }
    by_template: dict[str, list[dict]] = {}
    for name, renders in shown["data"].items():
        for render in renders:
            by_template.setdefault(templates[name], []).append(render["content"])
    return by_template


def test_templates_replace_the_builtin_ones(project):
    filled = specs(project, "show")
    assert sorted(filled) == ["bar_horizontal_zoom", "confusion_errors", "learning_curve"]
    assert len(filled["learning_curve"]) == 2  # loss and accuracy

    for curve in filled["learning_curve"]:
        rows = curve["data"]["values"]
        assert min(int(row["step"]) for row in rows) == 0  # DVCLive counts from 0 ...
        assert {"calculate": "toNumber(datum['step']) + 1", "as": "epoch"} in curve["transform"]
        assert curve["encoding"]["x"]["field"] == "epoch"  # ... the plot from 1
        assert {row["filename"].split("/")[0] for row in rows} == {"train", "eval"}  # DVC's field
        split = next(t["calculate"] for t in curve["transform"] if t.get("as") == "split")
        assert "eval/" in split and "'validation'" in split
        assert curve["encoding"]["color"]["field"] == "split"
        assert curve["encoding"]["color"]["scale"]["domain"] == ["train", "validation"]

    (bars,) = filled["bar_horizontal_zoom"]
    x = bars["layer"][0]["encoding"]["x"]
    assert x["scale"]["zero"] is False
    assert bars["layer"][0]["encoding"]["x2"] == {"field": "baseline"}  # bars start just below the lowest F1

    (confusion,) = filled["confusion_errors"]
    layers = confusion["spec"]["layer"]
    assert [layer["transform"][0]["filter"] for layer in layers] == [
        "!datum.correct",
        "datum.correct",
        "datum.count > 0",
    ]
    assert layers[2]["mark"]["type"] == "text"  # counts written in the cells
    assert layers[0]["encoding"]["color"]["field"] == "errors"  # the errors' own colour scale


def test_diff_keeps_the_revisions_apart(project):
    filled = specs(project, "diff", "HEAD")
    for spec in [s for group in filled.values() for s in group]:
        assert {row["rev"] for row in spec["data"]["values"]} == {"HEAD", "workspace"}
    for curve in filled["learning_curve"]:
        assert curve["layer"][0]["encoding"]["strokeDash"]["field"] == "rev"
    (confusion,) = filled["confusion_errors"]
    assert confusion["facet"]["column"]["field"] == "rev"
    (bars,) = filled["bar_horizontal_zoom"]
    assert bars["encoding"]["yOffset"]["field"] == "rev"


@pytest.mark.skipif(
    not (shutil.which("chromium") and (ROOT / "node_modules").is_dir()), reason="needs chromium and `npm ci`"
)
def test_page_draws_every_plot_offline(project):
    (project / "node_modules").symlink_to(ROOT / "node_modules")  # the page loads ../node_modules
    out = project / "dvc_plots"
    run([DVC, "plots", "diff", "HEAD", "-o", str(out)], project, ENV)
    plots = len(yaml.safe_load((project / "dvc.yaml").read_text())["plots"])
    assert dump_dom((out / "index.html").as_uri()).count("<canvas") == plots

    # The same page drawn as SVG, whose axes and legends carry readable descriptions.
    page = (out / "index.html").read_text()
    assert page.count(", spec);") == plots  # each plot's vegaEmbed call, as dvc-render writes it
    svg = out / "svg.html"
    svg.write_text(page.replace(", spec);", ", spec, {renderer: 'svg'});"))
    dom = dump_dom(svg.as_uri())
    assert dom.count("<svg") >= plots
    assert dom.count("X-axis titled 'epoch' for a linear scale with values from 1 to 3") == 2
    assert len(re.findall(r"legend titled 'split' for [\w ]+ with 2 values: train, validation", dom)) == 2
    assert "epoch: 1;" in dom and "epoch: 0;" not in dom  # the points' own descriptions
    assert "eval/loss.tsv" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # no file names shown
    f1_from = re.search(r"X-axis titled 'F1' for a linear scale with values from ([\d.]+)", dom)
    assert float(f1_from.group(1)) > 0.9  # zoomed to the F1s (0.95..0.99), not from 0
