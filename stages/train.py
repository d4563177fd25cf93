"""Stage 3: train the classifier on the train split, watching the validation split.

Logs per-epoch loss, accuracy and learning rate with DVCLive, writes the training summary
(epochs run, the epoch whose weights were kept and their validation accuracy and loss,
fit seconds) and saves the model in the native ``.keras`` format, returning probabilities.
"""

import json
from pathlib import Path

from dvclive import Live

from stages.lib import cli, processed, schema, tensorflow_env
from stages.lib.atomic import atomic_folder, atomic_path, write_text


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("data_dir", type=Path, help="preprocessed splits, e.g. data/processed")
    parser.add_argument("model_path", type=Path, help="where the .keras model goes")
    parser.add_argument("live_dir", type=Path, help="folder for DVCLive's curves and the summary")
    args = parser.parse_args()
    params = schema.load()  # a bad param fails here, before TensorFlow's slow start
    tensorflow_env.configure()
    # TensorFlow reads its settings once, as it loads: so it is imported only now.
    from stages.lib.models import with_probabilities
    from stages.lib.training import train

    # The curves appear whole, with the model, or not at all: an interrupted run leaves none.
    with atomic_folder(args.live_dir) as live_dir:
        with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
            model, summary = train(params, args.data_dir, live)
        # Replaces DVCLive's last-epoch values (the curves hold them): one number per name, and none
        # named like a param, so `dvc metrics show` and `dvc exp show` stay readable.
        write_text(live_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
        with atomic_path(args.model_path) as temporary:
            with_probabilities(model, params.model.from_logits).save(temporary)
        # The class names travel with the model, for whoever uses it next (stages.predict).
        info = processed.load_dataset_info(args.data_dir)
        processed.save_dataset_info(args.model_path.parent, info["name"], info["class_names"])
    print(", ".join(f"{name} {value}" for name, value in summary.items()))


if __name__ == "__main__":
    cli.run(main)
