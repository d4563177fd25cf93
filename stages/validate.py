"""Stage 0: check the whole of params.yaml before any other stage runs.

DVC removes a stage's outputs just before it runs that stage. Every other stage depends
on this one, so an invalid value or an unknown key (a typo, or `dvc exp run -S +key=...`)
stops `dvc repro` and `dvc exp run` here, while the last model, metrics and plots are
still in place. The verdict file's content never changes, so a valid edit still reruns
exactly the stages that read the params it changed.
"""

from pathlib import Path

from stages.lib import cli, schema
from stages.lib.atomic import write_text


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument(
        "verdict", type=Path, help="written when params.yaml is valid, e.g. data/params.valid"
    )
    args = parser.parse_args()
    schema.load()
    write_text(args.verdict, f"{schema.PARAMS_FILE}: valid\n")


if __name__ == "__main__":
    cli.run(main)
