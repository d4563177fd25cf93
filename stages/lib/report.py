"""The comparison as one self-contained HTML file, readable offline: the figures are embedded PNGs.

For each run: its learning curves (overlaid), its test confusion matrix (side by side) and its
per-class F1, read from what the run recorded: the workspace's files, or git's copy of them in
a commit or an experiment (the train and evaluate stages' tables are git-tracked).
"""

import base64
import html
import io
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt

from stages.lib.atomic import write_text
from stages.lib.errors import UserError
from stages.lib.figures import (
    confusion_counts,
    confusion_figure,
    f1_comparison_figure,
    learning_curves_figure,
    read_curves,
    read_per_class,
)

LIVE_DIR = "metrics/train"
CONFUSION, PER_CLASS = "metrics/confusion.csv", "metrics/per_class.csv"
DPI = 80

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { text-align: center; font-weight: bold; }
img { max-width: 100%; } .row img { width: 460px; } .note { color: #555; font-size: 13px; }
"""


def read_at(rev: str, path: str) -> io.StringIO:
    """A file as the run recorded it: on disk for the workspace, else git's copy at ``rev``."""
    if rev == "workspace":
        if not Path(path).is_file():
            raise UserError(f"{path}: not found in the workspace (run the pipeline first)")
        return io.StringIO(Path(path).read_text())
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if shown.returncode != 0:
        raise UserError(f"{path}: not recorded in {rev[:7]} ({shown.stderr.strip().splitlines()[-1]})")
    return io.StringIO(shown.stdout)


def png(fig: plt.Figure) -> str:
    """The figure as an <img> that carries its own data."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def table_html(header: list[str], body: list[list[str]]) -> str:
    rows = [_row("th", header), *(_row("td", row) for row in body)]
    return "<table>" + "".join(rows) + "</table>"


def _row(tag: str, cells: list[str]) -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in cells) + "</tr>"


def write_report(
    path: Path, header: list[str], body: list[list[str]], note: str, runs: dict[str, str]
) -> None:
    """The table, then the figures of ``runs`` (name -> revision), into one HTML file."""
    curves = {
        name: read_curves(lambda file, rev=rev: read_at(rev, f"{LIVE_DIR}/{file}"))
        for name, rev in runs.items()
    }
    scores = {name: read_per_class(read_at(rev, PER_CLASS)) for name, rev in runs.items()}
    matrices = []
    for name, rev in runs.items():
        counts = confusion_counts(read_at(rev, CONFUSION), scores[name]["class"].tolist())
        fig = confusion_figure(counts)
        fig.axes[0].set_title(f"{name}: test confusion matrix")
        matrices.append(f"<figure>{png(fig)}<figcaption>{html.escape(name)}</figcaption></figure>")
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Comparison of {len(runs)} runs</title><style>{STYLE}</style></head>
<body>
<h1>Comparison of {len(runs)} runs</h1>
<p class="note">Written by <code>python -m stages.compare --report</code> on {created}.</p>
{table_html(header, body)}
<p class="note">{html.escape(note)}</p>
<h2>Learning curves</h2>
{png(learning_curves_figure(curves))}
<h2>Test confusion matrices</h2>
<div class="row">{"".join(matrices)}</div>
<h2>Per-class scores</h2>
{png(f1_comparison_figure(scores))}
</body></html>
"""
    write_text(path, page)
