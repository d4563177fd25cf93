"""The figures a person looks at: training samples, learning curves, the confusion matrix,
per-class scores, test predictions in the style of TensorFlow's classification tutorial, and
the most confident mistakes. Drawn by the plot stage and by the comparison's HTML report.
"""

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from stages.lib.datasets import IMAGE_SIDE
from stages.lib.schema import CELL_INCHES

RIGHT, WRONG = "tab:blue", "tab:red"


def cell_figsize(grid_param: str, grid: list[int]) -> tuple[float, float]:
    """Width and height in inches of the figure of ``grid`` (rows, columns), as the schema bounds it."""
    width, height = CELL_INCHES[grid_param]
    return width * grid[1], height * grid[0]


def as_image(row: np.ndarray) -> np.ndarray:
    return row.reshape(IMAGE_SIDE, IMAGE_SIDE)


def samples_figure(x: np.ndarray, labels: np.ndarray, class_names: list[str], grid: list[int]) -> plt.Figure:
    rows, cols = grid
    fig, axes = plt.subplots(rows, cols, figsize=cell_figsize("sample_grid", grid), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(x):
            ax.imshow(as_image(x[index]), cmap="binary")
            ax.set_title(class_names[labels[index]], fontsize=9)
    fig.suptitle("Training samples")
    fig.tight_layout()
    return fig


CURVE = "plots/metrics/{split}/{metric}.tsv"  # DVCLive's, in the train stage's folder
SPLITS = (("train", "train", "--"), ("eval", "validation", "-"))  # DVCLive calls validation "eval"
METRICS = ("loss", "accuracy")


def read_curves(source: Callable[[str], object]) -> dict[tuple[str, str], pd.DataFrame]:
    """(split, metric) -> DVCLive's per-epoch curve (columns step, <metric>).

    ``source`` gives a path or a file for a name relative to the train stage's folder.
    """
    return {
        (split, metric): pd.read_csv(source(CURVE.format(split=split, metric=metric)), sep="\t")
        for split, _, _ in SPLITS
        for metric in METRICS
    }


def learning_curves_figure(runs: dict[str, dict[tuple[str, str], pd.DataFrame]]) -> plt.Figure:
    """Loss and accuracy per epoch (from 1), validation solid and train dashed; a colour per run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, METRICS, strict=True):
        for run_index, (name, curves) in enumerate(runs.items()):
            for split_index, (split, label, style) in enumerate(SPLITS):
                curve = curves[(split, metric)]
                colour = f"C{run_index if len(runs) > 1 else split_index}"
                ax.plot(
                    curve["step"] + 1,
                    curve[metric],
                    style,
                    color=colour,
                    marker="o",
                    markersize=3,
                    label=f"{name} {label}".strip(),
                )
        ax.set(title=metric.capitalize(), xlabel="epoch", ylabel=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Learning curves")
    fig.tight_layout()
    return fig


def confusion_counts(confusion_csv, class_names: list[str]) -> pd.DataFrame:
    """Counts[true class, predicted class] from evaluate's (actual, predicted) CSV: a path or a file."""
    pairs = pd.read_csv(confusion_csv, dtype=str, keep_default_na=False)
    counts = pd.crosstab(pairs["actual"], pairs["predicted"])
    return counts.reindex(index=class_names, columns=class_names, fill_value=0)


def confusion_figure(counts: pd.DataFrame) -> plt.Figure:
    """Counts in every cell; colour for the mistakes only, which the diagonal would otherwise swamp."""
    n = len(counts)
    values = counts.to_numpy()
    diagonal = np.eye(n, dtype=bool)
    mistakes = np.where(diagonal, np.nan, values)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n))
    ax.imshow(np.where(diagonal, 1.0, np.nan), cmap="Greys", vmin=0, vmax=6)  # right answers: pale grey
    image = ax.imshow(mistakes, cmap="Reds", vmin=0, vmax=max(1, np.nanmax(mistakes, initial=0)))
    for (i, j), value in np.ndenumerate(values):
        dark = not diagonal[i, j] and value > image.norm.vmax / 2
        ax.text(j, i, value, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(n), counts.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), counts.index)
    ax.set(title="Test confusion matrix", xlabel="predicted class", ylabel="true class")
    fig.colorbar(image, ax=ax, fraction=0.046, label="mistakes")
    fig.tight_layout()
    return fig


def pick_examples(labels: np.ndarray, probabilities: np.ndarray, count: int) -> np.ndarray:
    """Test indices to show: the first third mistakes (if any), the rest the first right answers."""
    wrong = probabilities.argmax(axis=1) != labels
    mistakes = np.flatnonzero(wrong)[: count // 3]
    right = np.flatnonzero(~wrong)[: count - len(mistakes)]
    return np.sort(np.concatenate([mistakes, right]))


def predictions_figure(
    x: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, class_names: list[str], grid: list[int]
) -> plt.Figure:
    """Each test image beside a bar chart of its class probabilities; mistakes in red."""
    rows, cols = grid
    fig, axes = plt.subplots(rows, 2 * cols, figsize=cell_figsize("prediction_grid", grid), squeeze=False)
    for index in range(rows * cols):
        image_ax, bars_ax = axes.flat[2 * index], axes.flat[2 * index + 1]
        image_ax.axis("off")
        bars_ax.axis("off")
        if index >= len(x):
            continue
        predicted, actual = probabilities[index].argmax(), labels[index]
        colour = RIGHT if predicted == actual else WRONG
        image_ax.imshow(as_image(x[index]), cmap="binary")
        image_ax.set_title(
            f"{class_names[predicted]} {probabilities[index, predicted]:.0%}\n(true: {class_names[actual]})",
            color=colour,
            fontsize=8,
        )
        bars_ax.axis("on")
        bars = bars_ax.bar(range(len(class_names)), probabilities[index], color="lightgrey")
        bars[predicted].set_color(WRONG)
        bars[actual].set_color(RIGHT)
        bars_ax.set_ylim(0, 1)
        bars_ax.set_xticks(range(len(class_names)), range(len(class_names)), fontsize=6)
        bars_ax.set_yticks([])
    # Two lines: ten class names on one would run off the figure.
    fig.suptitle(
        f"Test predictions: blue = true class, red = wrong prediction\nclasses: {_legend(class_names)}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _legend(class_names: list[str]) -> str:
    if class_names == [str(i) for i in range(len(class_names))]:
        return "the digits"
    return ", ".join(f"{i} {name}" for i, name in enumerate(class_names))


def read_per_class(per_class_csv) -> pd.DataFrame:
    """Evaluate's per-class scores, from a path or a file; class names stay text ("0", "NA")."""
    return pd.read_csv(per_class_csv, dtype={"class": str}, keep_default_na=False)


def per_class_figure(per_class: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(per_class)))
    rows = np.arange(len(per_class))
    for offset, metric in zip((-0.27, 0, 0.27), ("precision", "recall", "f1"), strict=True):
        ax.barh(rows + offset, per_class[metric], height=0.27, label=metric)
    ax.set_yticks(rows, per_class["class"])
    ax.invert_yaxis()  # first class on top
    low = max(0.0, per_class[["precision", "recall", "f1"]].to_numpy().min() - 0.05)
    ax.set(xlim=(low, 1.0), xlabel="score", title="Per-class precision, recall and F1 on the test set")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    return fig


def confident_mistakes_figure(
    x: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, class_names: list[str], grid: list[int]
) -> plt.Figure:
    """The wrong predictions the model was surest of: often label noise or genuinely ambiguous images."""
    rows, cols = grid
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][: rows * cols]
    fig, axes = plt.subplots(rows, cols, figsize=cell_figsize("mistake_grid", grid), squeeze=False)
    for ax, index in zip(axes.flat, [*worst, *[None] * (rows * cols - len(worst))], strict=True):
        ax.axis("off")
        if index is None:
            continue
        ax.imshow(as_image(x[index]), cmap="binary")
        ax.set_title(
            f"{class_names[predicted[index]]} {probabilities[index, predicted[index]]:.0%}\n"
            f"(true: {class_names[labels[index]]})",
            color=WRONG,
            fontsize=8,
        )
    fig.suptitle(f"Most confident mistakes ({len(wrong)} of {len(labels)} test images are wrong)")
    fig.tight_layout()
    return fig


def f1_comparison_figure(scores: dict[str, pd.DataFrame]) -> plt.Figure:
    """Per-class F1 of every run, grouped by class, on an axis zoomed to the scores."""
    classes = next(iter(scores.values()))["class"].tolist()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.25 * len(classes) * len(scores)))
    height = 0.8 / len(scores)
    rows = np.arange(len(classes))
    for index, (name, per_class) in enumerate(scores.items()):
        f1 = per_class.set_index("class").reindex(classes)["f1"]
        ax.barh(rows + (index - (len(scores) - 1) / 2) * height, f1, height=height, label=name)
    low = min(per_class["f1"].min() for per_class in scores.values())
    ax.set(xlim=(max(0.0, low - 0.02), 1.0), xlabel="F1 on the test set", title="Per-class F1")
    ax.set_yticks(rows, classes)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
