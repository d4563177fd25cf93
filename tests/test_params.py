import copy
import subprocess
import sys

import pytest
import yaml

from stages.lib import schema
from stages.lib.errors import UserError
from tests.helpers import ROOT

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
DELETE = object()


def with_change(key: str, value):
    """The default params with one dotted key set, or removed when value is DELETE."""
    raw = copy.deepcopy(DEFAULTS)
    *parents, last = key.split(".")
    section = raw
    for part in parents:
        section = section[part]
    if value is DELETE:
        del section[last]
    else:
        section[last] = value
    return raw


def test_committed_params_are_valid():
    loaded = schema.load(ROOT / "params.yaml")
    assert loaded.epochs >= 1 and loaded.data.dataset == "mnist"


# (key, bad value, what the one-line message must say)
BAD = [
    ("epoch", 3, "unknown key epoch (expected one of: seed, epochs,"),
    ("model.units", [64], "unknown key model.units"),
    ("train.lr", 0.1, "unknown key train.lr"),
    ("train.learning-rate", 0.1, "unknown key train.learning-rate (expected one of: optimizer,"),
    ("my-key", 1, "unknown key my-key (expected one of: seed,"),
    ("epochs", 0, "epochs = 0: Input should be greater than or equal to 1"),
    ("epochs", -5, "epochs = -5"),
    ("epochs", "10", "epochs = '10': Input should be a valid integer"),
    ("epochs", 2.5, "epochs = 2.5"),
    ("epochs", True, "epochs = True"),
    ("epochs", DELETE, "epochs is missing"),
    ("seed", -1, "seed = -1"),
    ("seed", None, "seed = None"),
    ("seed", 2**32, "seed = 4294967296: Input should be less than or equal to 4294967295"),
    (
        "train.learning_rate",
        "1e-3",
        "train.learning_rate = '1e-3': Input should be a valid number (YAML reads 1e-3 as text: write 1.0e-3)",
    ),
    ("data.val_fraction", 0, "data.val_fraction = 0: Input should be greater than 0"),
    ("data.val_fraction", 1.0, "data.val_fraction = 1.0: Input should be less than 1"),
    ("data.val_fraction", "0.1", "data.val_fraction = '0.1'"),
    ("data.dataset", "kmnist", "data.dataset = 'kmnist': Input should be one of 'mnist', 'fashion_mnist'"),
    ("model.type", "transformer", "model.type = 'transformer': Input should be 'linear', 'mlp' or 'cnn'"),
    ("model.batch_norm", 1, "model.batch_norm = 1: Input should be a valid boolean"),
    ("model.conv_filters", [], "model.conv_filters = []"),
    ("model.conv_filters", [32, -64], "model.conv_filters.1 = -64"),
    ("model.kernel_size", 0, "model.kernel_size = 0: Input should be greater than or equal to 1"),
    ("model.pool_size", 5, "model.pool_size = 5: Input should be less than or equal to 4"),
    ("model.padding", "causal", "model.padding = 'causal': Input should be 'same' or 'valid'"),
    ("model.hidden_units", [], "model.hidden_units = []"),
    ("model.hidden_units", [512, 0], "model.hidden_units.1 = 0: Input should be greater than or equal to 1"),
    ("model.hidden_units", [-3], "model.hidden_units.0 = -3"),
    ("model.hidden_units", 512, "model.hidden_units = 512: Input should be a valid list"),
    ("model.dropout", -0.1, "model.dropout = -0.1: Input should be greater than or equal to 0"),
    ("model.dropout", 1.0, "model.dropout = 1.0: Input should be less than 1"),
    ("model.activation", "relu6x", "model.activation = 'relu6x'"),
    ("model.from_logits", "yes", "model.from_logits = 'yes': Input should be a valid boolean"),
    ("train.optimizer", "adamw", "train.optimizer = 'adamw': Input should be 'adam', 'rmsprop' or 'sgd'"),
    ("train.learning_rate", 0, "train.learning_rate = 0: Input should be greater than 0"),
    ("train.learning_rate", float("inf"), "train.learning_rate = inf: Input should be a finite number"),
    ("train.learning_rate", float("nan"), "train.learning_rate = nan: Input should be a finite number"),
    ("train.momentum", float("nan"), "train.momentum = nan: Input should be a finite number"),
    ("data.train_fraction", float("-inf"), "data.train_fraction = -inf: Input should be a finite number"),
    ("train.learning_rate", -0.001, "train.learning_rate = -0.001"),
    ("train.batch_size", 0, "train.batch_size = 0"),
    ("train.momentum", 1.0, "train.momentum = 1.0: Input should be less than 1"),
    ("train.label_smoothing", -0.05, "train.label_smoothing = -0.05"),
    ("train.early_stopping_patience", -1, "train.early_stopping_patience = -1"),
    ("train.reduce_lr_patience", 1.5, "train.reduce_lr_patience = 1.5"),
    ("train.reduce_lr_factor", 1.0, "train.reduce_lr_factor = 1.0: Input should be less than 1"),
    ("train.jit_compile", "yes", "train.jit_compile = 'yes': Input should be 'auto', True or False"),
    ("train.distribute", "horovod", "train.distribute = 'horovod': Input should be 'none', 'mirrored' or"),
    ("train.mixed_precision", "fp16", "train.mixed_precision = 'fp16': Input should be a valid boolean"),
    ("plot.sample_grid", [4], "plot.sample_grid = [4]: List should have at least 2 items"),
    ("plot.prediction_grid", [5, 0], "plot.prediction_grid.1 = 0"),
    ("plot.dpi", 10, "plot.dpi = 10: Input should be greater than or equal to 50"),
    (
        "plot.sample_grid",
        [40, 40],
        "plot.sample_grid = [40, 40]: 1600 panels, more than the 100 a figure holds",
    ),
    ("data.dataset", "x" * 10**6, "data.dataset = 'xxxxxxxx"),  # the value is cut short, see below
    ("plot", DELETE, "plot is missing"),
    (
        "model.kernel_size",
        [5, 3, 3],
        "model.kernel_size = [5, 3, 3]: give one size for every block or one per block (2 conv_filters)",
    ),
    (
        "model.kernel_size",
        [5, 0],
        "model.kernel_size.1 = 0: Input should be greater than or equal to 1",
    ),
    (
        "model.pool_before_activation",
        "yes",
        "model.pool_before_activation = 'yes': Input should be a valid boolean",
    ),
    ("train.beta_1", 1.0, "train.beta_1 = 1.0: Input should be less than 1"),
    ("train.beta_2", 0, "train.beta_2 = 0: Input should be greater than 0"),
    (
        "train.lr_schedule",
        "cyclic",
        "train.lr_schedule = 'cyclic': Input should be 'plateau' or 'warmup_cosine'",
    ),
    ("train.warmup_fraction", 1.0, "train.warmup_fraction = 1.0: Input should be less than 1"),
    ("train.translate", 0.5, "train.translate = 0.5: Input should be less than 0.5"),
    ("train.flip", "yes", "train.flip = 'yes': Input should be a valid boolean"),
    (
        "train.flip",
        True,
        "train.flip = True: a mirrored image of mnist may be another class; flip only datasets",
    ),
]


def test_valid_padding_must_leave_the_image_a_pixel():
    raw = with_change("model.type", "cnn")
    raw["model"] |= {"padding": "valid", "kernel_size": 5, "conv_filters": [8, 8, 8]}
    with pytest.raises(UserError) as failure:
        schema.parse(raw)
    # 28 -> 24, pooled 12 -> 8, pooled 4 -> nothing
    assert str(failure.value) == (
        "params.yaml: model.padding = 'valid': a 5x5 kernel leaves nothing of the 28x28 image in "
        "convolution block 3; use padding same, a smaller kernel_size or fewer conv_filters"
    )
    raw["model"]["conv_filters"] = [8, 8]
    assert schema.parse(raw).model.padding == "valid"
    raw["model"] |= {"conv_filters": [8, 8, 8], "padding": "same"}
    assert schema.parse(raw).model.padding == "same"
    raw["model"] |= {"type": "mlp", "padding": "valid"}  # ignored by an mlp, so no error
    assert schema.parse(raw).model.type == "mlp"


def test_each_figure_stays_within_the_pixel_budget_in_combination():
    raw = with_change("plot.dpi", 600)
    assert schema.parse(raw).plot.dpi == 600  # the default grids at the highest resolution
    raw["plot"]["sample_grid"] = [10, 10]  # 100 panels and 600 dpi: each allowed alone
    with pytest.raises(UserError) as failure:
        schema.parse(raw)
    assert str(failure.value) == (
        "params.yaml: plot.dpi = 600: with plot.sample_grid [10, 10], a figure of 9600 x 10800 pixels "
        "(104 megapixels, more than 50): lower plot.dpi or the grid"
    )
    raw["plot"]["dpi"] = 400  # 6400 x 7200
    assert schema.parse(raw).plot.sample_grid == [10, 10]


@pytest.mark.parametrize(
    ("changes", "sizes"),
    [
        (
            {"model.type": "mlp", "model.hidden_units": [100_000, 100_000]},
            "model.hidden_units [100000, 100000]",
        ),
        (
            {
                "model.type": "cnn",
                "model.conv_filters": [32, 64],
                "model.hidden_units": [128],
                "train.batch_size": 100_000,
            },
            "model.conv_filters [32, 64], model.hidden_units [128]",
        ),
    ],
    ids=["weights", "batch"],
)
def test_a_model_too_large_to_train_is_refused(changes, sizes):
    """Layer widths and batch size are each unbounded alone; together they must fit in memory."""
    with pytest.raises(UserError) as failure:
        schema.parse(schema.override(DEFAULTS, changes))
    message = str(failure.value)
    model_type = changes.get("model.type", DEFAULTS["model"]["type"])
    batch = changes.get("train.batch_size", DEFAULTS["train"]["batch_size"])
    assert message.startswith(
        f"params.yaml: model.type {model_type} with {sizes}, train.batch_size {batch}: training would take about "
    )
    assert message.endswith("more than 4 GB: use fewer or smaller layers, or a smaller batch")
    assert schema.parse(
        schema.override(DEFAULTS, {**changes, "train.batch_size": 32, "model.hidden_units": [4096]})
    )


@pytest.mark.parametrize(("key", "value", "expected"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_is_named_in_one_line(key, value, expected):
    with pytest.raises(UserError) as failure:
        schema.parse(with_change(key, value))
    message = str(failure.value)
    assert message.startswith("params.yaml: ")
    assert expected in message
    assert "\n" not in message and len(message) < 300


def test_flips_are_allowed_where_the_registry_says_a_mirror_keeps_the_class():
    raw = with_change("train.flip", True)
    raw["data"]["dataset"] = "fashion_mnist"
    assert schema.parse(raw).train.flip is True


def test_kernel_size_per_block_shapes_the_valid_padding_check():
    raw = with_change("model.kernel_size", [27, 3])  # 28 -> 2, pooled 1 -> nothing for a 3x3
    with pytest.raises(
        UserError, match="a 3x3 kernel leaves nothing of the 28x28 image in convolution block 2"
    ):
        schema.parse(raw)
    raw["model"]["kernel_size"] = [5, 3]
    assert schema.parse(raw).model.kernel_size == [5, 3]


def test_not_a_mapping_is_rejected():
    with pytest.raises(UserError, match="Input should be a valid dictionary"):
        schema.parse([1, 2])


def test_unparseable_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("epochs: [1\n")
    with pytest.raises(UserError, match=r"params.yaml is not valid YAML") as failure:
        schema.load(path)
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "seed: 1\nepochs: [1\n",
            "params.yaml is not valid YAML: line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "seed: 1\ntrain:\n  lr: 1\n  lr: 2\n",
            "params.yaml is not valid YAML: line 4, column 3: duplicate key lr",
        ),
        (
            "seed: 1\nepochs: 3\nepochs: 4\n",
            "params.yaml is not valid YAML: line 3, column 1: duplicate key epochs",
        ),
        (
            "seed: 1\n# caf\xe9\n".encode("latin-1"),
            "params.yaml is not UTF-8 text: byte 0xe9 on line 2; save it as UTF-8",
        ),
    ],
    ids=["syntax-error", "duplicate-nested-key", "duplicate-key", "latin-1"],
)
def test_yaml_problems_are_located_in_one_line(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserError) as failure:
        schema.load(path)
    assert str(failure.value) == message.replace("params.yaml", str(path))


def alias_bomb(levels: int = 9) -> str:
    """A YAML flow list whose last item stands for 9**levels strings, through nested aliases."""
    items = ["&a0 [x, x, x, x, x, x, x, x, x]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def test_an_alias_bomb_on_a_known_key_is_named_briefly(tmp_path):
    """387 million values behind one key: the message shows a few of them, and nothing expands them."""
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("dataset: mnist", f"dataset: {alias_bomb()}"))
    with pytest.raises(UserError) as failure:
        schema.load(path)
    message = str(failure.value)
    assert message.startswith(
        "params.yaml: data.dataset = [['x', 'x', 'x', 'x', 'x', 'x', ...], [[...], [...],"
    )
    assert message.endswith("...: Input should be a valid string")
    assert len(message) < 200


def test_stage_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("epochs", 0)))
    result = subprocess.run(
        [sys.executable, "-m", "stages.download", str(tmp_path / "raw")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: epochs = 0: Input should be greater than or equal to 1"
    ]
    assert not (tmp_path / "raw").exists()


def test_parameters_page_is_generated_from_the_schema():
    page = (ROOT / "docs/parameters.md").read_text()
    assert page == schema.markdown(DEFAULTS), "stale: run python -m stages.lib.schema > docs/parameters.md"
    documented = [line.split("`")[1] for line in page.splitlines() if line.startswith("| `")]
    assert documented == [key for key, _, _ in schema.leaf_fields(schema.Params)]
    assert all(field.description for _, field, _ in schema.leaf_fields(schema.Params))
