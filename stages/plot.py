"""Stage 5: the figures a person looks at, as PNGs.

Training samples, learning curves, the test confusion matrix, per-class
precision/recall/F1, a grid of test predictions in the style of TensorFlow's
classification tutorial, and the test images the model got wrong most confidently.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from stages.lib import cli, processed, schema
from stages.lib.atomic import atomic_folder, atomic_path
from stages.lib.errors import UserError
from stages.lib.figures import (
    confident_mistakes_figure,
    confusion_counts,
    confusion_figure,
    learning_curves_figure,
    per_class_figure,
    pick_examples,
    predictions_figure,
    read_curves,
    read_per_class,
    samples_figure,
)
from stages.lib.schema import PlotParams


def existing(path: Path, stage: str) -> Path:
    if not path.exists():
        raise UserError(f"{path}: not found (run the {stage} stage first)")
    return path


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
        "learning_curves.png": learning_curves_figure(
            {"": read_curves(lambda name: existing(live_dir / name, "train"))}
        ),
        "confusion_matrix.png": confusion_figure(
            confusion_counts(existing(metrics_dir / "confusion.csv", "evaluate"), class_names)
        ),
        "per_class.png": per_class_figure(
            read_per_class(existing(metrics_dir / "per_class.csv", "evaluate"))
        ),
        "predictions.png": predictions_figure(
            x_test[shown], test_labels[shown], probabilities[shown], class_names, params.prediction_grid
        ),
        "confident_mistakes.png": confident_mistakes_figure(
            x_test, test_labels, probabilities, class_names, params.mistake_grid
        ),
    }
    with atomic_folder(out_dir) as folder:  # the last run's figures stay until all the new ones are saved
        for name, fig in figures.items():
            save(fig, folder / name, params.dpi)
    return [out_dir / name for name in figures]


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("data_dir", type=Path, help="preprocessed splits, e.g. data/processed")
    parser.add_argument("probabilities_path", type=Path, help="test probabilities from evaluate")
    parser.add_argument("live_dir", type=Path, help="DVCLive folder of the train stage")
    parser.add_argument("metrics_dir", type=Path, help="evaluate's confusion.csv and per_class.csv")
    parser.add_argument("out_dir", type=Path, help="where the PNGs go, e.g. plots")
    args = parser.parse_args()
    params = schema.load()
    for path in plot(
        args.data_dir, args.probabilities_path, args.live_dir, args.metrics_dir, args.out_dir, params.plot
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    cli.run(main)
