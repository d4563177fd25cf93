"""Stage 4: score the saved model once on the test split.

Writes the headline numbers (``accuracy``, ``loss``) as a small DVC metric; the
detail beside it: per-class precision/recall/F1, the most confused class pairs and
the (actual, predicted) class names for DVC's confusion-matrix plot; and the test
probabilities for the plot stage.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import cli, processed, schema, tensorflow_env
from stages.lib.atomic import atomic_path, write_text
from stages.lib.errors import UserError

EPSILON = 1e-7  # as Keras clips probabilities in its crossentropy


def headline_metrics(probabilities: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
    """Accuracy and mean categorical crossentropy over the test set."""
    labels = y_true.argmax(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    picked = np.clip(probabilities[np.arange(len(labels)), labels], EPSILON, 1.0)
    return {"accuracy": float(correct.mean()), "loss": float(-np.log(picked).mean())}


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (actual, predicted), 1)
    return counts


def per_class_report(actual: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support for each class (0 where undefined)."""
    counts = confusion_matrix(actual, predicted, len(class_names))
    rows = []
    for index, name in enumerate(class_names):
        true_positive = counts[index, index]
        predicted_count = counts[:, index].sum()
        support = counts[index].sum()
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return pd.DataFrame(rows).round(4)


def confused_pairs(
    actual: np.ndarray, predicted: np.ndarray, class_names: list[str], top: int = 10
) -> pd.DataFrame:
    """The class pairs mistaken for each other most often, in either direction."""
    n = len(class_names)
    counts = confusion_matrix(actual, predicted, n)
    rows = [
        {
            "class_a": class_names[a],
            "class_b": class_names[b],
            "count": counts[a, b] + counts[b, a],
            "a_as_b": counts[a, b],
            "b_as_a": counts[b, a],
        }
        for a in range(n)
        for b in range(a + 1, n)
        if counts[a, b] + counts[b, a]
    ]
    columns = ["class_a", "class_b", "count", "a_as_b", "b_as_a"]
    pairs = pd.DataFrame(rows, columns=columns)
    return pairs.sort_values("count", ascending=False, kind="stable").head(top).reset_index(drop=True)


def report(
    probabilities: np.ndarray,
    y_test: np.ndarray,
    class_names: list[str],
    metrics_dir: Path,
    probabilities_path: Path,
) -> dict:
    """Score the test probabilities; write the metrics, the tables and the probabilities."""
    if not np.isfinite(probabilities).all():  # no NaN reaches a metrics file, where strict JSON refuses it
        raise UserError(
            "the model's test probabilities hold NaN or infinite values: it diverged in training; "
            "retrain it with a lower train.learning_rate"
        )
    metrics = headline_metrics(probabilities, y_test)
    actual, predicted = y_test.argmax(axis=1), probabilities.argmax(axis=1)
    names = np.array(class_names)
    with atomic_path(metrics_dir / "per_class.csv") as temporary:
        per_class_report(actual, predicted, class_names).to_csv(temporary, index=False)
    pairs = confused_pairs(actual, predicted, class_names)
    with atomic_path(metrics_dir / "confused_pairs.csv") as temporary:
        pairs.to_csv(temporary, index=False)
    for pair in pairs.head(3).itertuples():
        print(f"confused: {pair.class_a} <-> {pair.class_b}: {pair.count} ({pair.a_as_b} + {pair.b_as_a})")
    with atomic_path(metrics_dir / "confusion.csv") as temporary:
        pd.DataFrame({"actual": names[actual], "predicted": names[predicted]}).to_csv(temporary, index=False)
    processed.save_array(probabilities_path, probabilities)
    # Written last: its presence means the stage finished.
    write_text(metrics_dir / "test.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("model_path", type=Path, help="e.g. models/model.keras")
    parser.add_argument("data_dir", type=Path, help="preprocessed splits, e.g. data/processed")
    parser.add_argument("metrics_dir", type=Path, help="where test.json and the tables go")
    parser.add_argument("probabilities_path", type=Path, help=".npy of test probabilities for the plots")
    args = parser.parse_args()
    schema.load()  # validated first, like every stage, though evaluation reads no params
    tensorflow_env.configure()
    from stages.lib.models import load_model, predict  # TensorFlow reads its settings as it loads: now

    x_test, y_test = processed.load_split(args.data_dir, "test")
    probabilities = predict(load_model(args.model_path), x_test)
    class_names = processed.load_classes(args.data_dir)
    metrics = report(probabilities, y_test, class_names, args.metrics_dir, args.probabilities_path)
    print(f"test accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}")


if __name__ == "__main__":
    cli.run(main)
