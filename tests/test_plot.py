import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.lib.figures import confusion_counts, pick_examples
from stages.plot import plot
from tests.helpers import make_params, tmpfs
from tests.tiny_dataset import CLASS_NAMES


def test_pick_examples_shows_mistakes_first_third():
    labels = np.array([0, 1, 0, 1, 0, 1])
    probabilities = np.eye(2)[[0, 0, 0, 0, 1, 1]]  # indices 1, 3 and 4 are wrong
    assert pick_examples(labels, probabilities, 3).tolist() == [0, 1, 2]
    assert pick_examples(labels, probabilities, 6).tolist() == [0, 1, 2, 3, 5]  # only 5 exist after 2 wrong


def test_confusion_counts_use_class_names_in_order(tmp_path):
    path = tmp_path / "confusion.csv"
    pd.DataFrame({"actual": ["b", "a", "a"], "predicted": ["a", "a", "c"]}).to_csv(path, index=False)
    counts = confusion_counts(path, ["a", "b", "c"])
    assert counts.index.tolist() == counts.columns.tolist() == ["a", "b", "c"]
    assert counts.to_numpy().tolist() == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]


@pytest.fixture
def live_dir(tmp_path):
    for split in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            path = tmp_path / "live/plots/metrics" / split / f"{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"timestamp": [1, 2], "step": [0, 1], metric: [0.5, 0.3]}).to_csv(
                path, sep="\t", index=False
            )
    return tmp_path / "live"


@pytest.fixture
def metrics(tmp_path):
    """Evaluate's outputs the plot stage reads: test probabilities (p.npy beside it) and the tables."""
    probabilities = np.random.default_rng(0).dirichlet(np.ones(len(CLASS_NAMES)), size=100).astype(np.float32)
    np.save(tmp_path / "p.npy", probabilities)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    pairs = pd.DataFrame({"actual": list(CLASS_NAMES) * 25, "predicted": list(CLASS_NAMES[::-1]) * 25})
    pairs.to_csv(metrics / "confusion.csv", index=False)
    scores = {"precision": 0.5, "recall": 0.4, "f1": 0.44, "support": 25}
    pd.DataFrame([{"class": name, **scores} for name in CLASS_NAMES]).to_csv(
        metrics / "per_class.csv", index=False
    )
    return metrics


def test_plot_writes_every_png(tiny_processed, live_dir, metrics, tmp_path):
    params = make_params(**{"plot.dpi": 60}).plot
    written = plot(tiny_processed, tmp_path / "p.npy", live_dir, metrics, tmp_path / "out", params)
    assert [p.name for p in written] == [
        "samples.png",
        "learning_curves.png",
        "confusion_matrix.png",
        "per_class.png",
        "predictions.png",
        "confident_mistakes.png",
    ]
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 200
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)


def test_full_disk_keeps_the_previous_figures(tiny_processed, live_dir, metrics, tmp_path):
    """The folder is replaced whole: the last run's figures stay until the new ones are all written."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        (disk / "plots").mkdir()
        (disk / "plots/samples.png").write_bytes(b"the last run's figure")
        with pytest.raises(OSError) as failure:
            plot(tiny_processed, tmp_path / "p.npy", live_dir, metrics, disk / "plots", make_params().plot)
        left = {str(path.relative_to(disk)): path.read_bytes() for path in disk.rglob("*") if path.is_file()}
    assert failure.value.filename == str(disk / "plots")
    assert left == {"plots/samples.png": b"the last run's figure"}


def test_missing_inputs_are_a_clear_error(tiny_processed, live_dir, tmp_path):
    from stages.lib.errors import UserError
    from stages.lib.figures import read_curves
    from stages.plot import existing

    with pytest.raises(UserError, match="run the train stage first"):
        read_curves(lambda name: existing(tmp_path / "nowhere" / name, "train"))
    params = make_params().plot
    with pytest.raises(UserError, match=r"absent\.npy: not found \(run the evaluate stage first\)"):
        plot(tiny_processed, tmp_path / "absent.npy", live_dir, tmp_path, tmp_path / "out", params)
    assert not (tmp_path / "out").exists()


def test_confident_mistakes_are_the_surest_wrong_answers():
    from stages.lib.figures import confident_mistakes_figure

    labels = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.05, 0.95]])  # 1 and 2 are wrong
    fig = confident_mistakes_figure(np.zeros((4, 784)), labels, probabilities, ["zero", "one"], [1, 3])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["one 80%\n(true: zero)", "zero 60%\n(true: one)", ""]
    assert "2 of 4 test images are wrong" in fig._suptitle.get_text()
