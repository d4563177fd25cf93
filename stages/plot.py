"""Stage 5: the figures a person looks at, as PNGs.

Training samples, learning curves, the test confusion matrix, per-class
precision/recall/F1, a grid of test predictions in the style of TensorFlow's
classification tutorial, and the test images the model got wrong most confidently.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stages import params as params_schema
from stages import processed
from stages.atomic import atomic_path
from stages.errors import UserError, run
from stages.params import PlotParams

RIGHT, WRONG = "tab:blue", "tab:red"


def as_image(row: np.ndarray) -> np.ndarray:
    return row.reshape(28, 28)


def samples_figure(x: np.ndarray, labels: np.ndarray, class_names: list[str], grid: list[int]) -> plt.Figure:
    rows, cols = grid
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(x):
            ax.imshow(as_image(x[index]), cmap="binary")
            ax.set_title(class_names[labels[index]], fontsize=9)
    fig.suptitle("Training samples")
    fig.tight_layout()
    return fig


def existing(path: Path, stage: str) -> Path:
    if not path.exists():
        raise UserError(f"{path}: not found (run the {stage} stage first)")
    return path


def read_curve(live_dir: Path, split: str, metric: str) -> pd.DataFrame:
    return pd.read_csv(existing(live_dir / "plots" / "metrics" / split / f"{metric}.tsv", "train"), sep="\t")


def learning_curves_figure(live_dir: Path) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    # DVCLive's Keras callback names the validation split "eval".
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, label in (("train", "train"), ("eval", "validation")):
            curve = read_curve(live_dir, split, metric)
            ax.plot(curve["step"] + 1, curve[metric], marker="o", label=label)
        ax.set(title=metric.capitalize(), xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Learning curves")
    fig.tight_layout()
    return fig


def confusion_counts(confusion_csv: Path, class_names: list[str]) -> pd.DataFrame:
    pairs = pd.read_csv(existing(confusion_csv, "evaluate"), dtype=str, keep_default_na=False)
    counts = pd.crosstab(pairs["actual"], pairs["predicted"])
    return counts.reindex(index=class_names, columns=class_names, fill_value=0)


def confusion_figure(counts: pd.DataFrame) -> plt.Figure:
    n = len(counts)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n))
    image = ax.imshow(counts.to_numpy(), cmap="Blues")
    threshold = counts.to_numpy().max() / 2
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        ax.text(
            j, i, value, ha="center", va="center", fontsize=8, color="white" if value > threshold else "black"
        )
    ax.set_xticks(range(n), counts.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), counts.index)
    ax.set(title="Test confusion matrix", xlabel="predicted class", ylabel="true class")
    fig.colorbar(image, ax=ax, fraction=0.046)
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
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.4 * cols, 2.1 * rows), squeeze=False)
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
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.2 * rows), squeeze=False)
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


def save(fig: plt.Figure, path: Path, dpi: int) -> None:
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi)
    plt.close(fig)


def plot(
    data_dir: Path,
    probabilities_path: Path,
    live_dir: Path,
    metrics_dir: Path,
    out_dir: Path,
    params: PlotParams,
) -> list[Path]:
    class_names = processed.load_classes(data_dir)
    x_train, y_train = processed.load_split(data_dir, "train")
    x_test, y_test = processed.load_split(data_dir, "test")
    test_labels = y_test.argmax(axis=1)
    probabilities = np.load(existing(probabilities_path, "evaluate"), allow_pickle=False)
    shown = pick_examples(test_labels, probabilities, int(np.prod(params.prediction_grid)))
    figures = {
        "samples.png": samples_figure(x_train, y_train.argmax(axis=1), class_names, params.sample_grid),
        "learning_curves.png": learning_curves_figure(live_dir),
        "confusion_matrix.png": confusion_figure(
            confusion_counts(metrics_dir / "confusion.csv", class_names)
        ),
        "per_class.png": per_class_figure(
            pd.read_csv(
                existing(metrics_dir / "per_class.csv", "evaluate"),
                dtype={"class": str},
                keep_default_na=False,
            )
        ),
        "predictions.png": predictions_figure(
            x_test[shown], test_labels[shown], probabilities[shown], class_names, params.prediction_grid
        ),
        "confident_mistakes.png": confident_mistakes_figure(
            x_test, test_labels, probabilities, class_names, params.mistake_grid
        ),
    }
    for name, fig in figures.items():
        save(fig, out_dir / name, params.dpi)
    return [out_dir / name for name in figures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="preprocessed splits, e.g. data/processed")
    parser.add_argument("probabilities_path", type=Path, help="test probabilities from evaluate")
    parser.add_argument("live_dir", type=Path, help="DVCLive folder of the train stage")
    parser.add_argument("metrics_dir", type=Path, help="evaluate's confusion.csv and per_class.csv")
    parser.add_argument("out_dir", type=Path, help="where the PNGs go, e.g. plots")
    args = parser.parse_args()
    params = params_schema.load()
    for path in plot(
        args.data_dir, args.probabilities_path, args.live_dir, args.metrics_dir, args.out_dir, params.plot
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
