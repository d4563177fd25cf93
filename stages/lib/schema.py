"""The schema of params.yaml: every param, its allowed values and what it means, documented once.

Every stage checks the whole file against it before doing anything. ``docs/parameters.md``
is generated from it: ``python -m stages.lib.schema > docs/parameters.md``.
"""

import copy
import json
import reprlib
import types
import typing
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stages.lib.datasets import DATASETS, IMAGE_PIXELS, IMAGE_SIDE
from stages.lib.errors import UserError

PARAMS_FILE = Path("params.yaml")

Positive = Annotated[int, Field(ge=1)]
Grid = Annotated[list[Positive], Field(min_length=2, max_length=2)]
KernelSize = Annotated[int, Field(ge=1, le=IMAGE_SIDE)]


class Section(BaseModel):
    # strict: "10" is not an epoch count and true is not a batch size; .inf and .nan are no numbers.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DataParams(Section):
    dataset: str = Field(
        description="a name in the dataset registry (`stages/lib/datasets.py`)",
        json_schema_extra={"enum": list(DATASETS)},  # documents the registry; the validator checks it
    )
    val_fraction: float = Field(
        gt=0,
        lt=1,
        description="share of the training set held out, stratified by class, for validation; "
        "the test set is never used for a training decision",
    )
    train_fraction: float = Field(
        gt=0,
        le=1,
        description="train on a seeded, stratified subset of what remains, for quick iterations; "
        "validation and test sets are unchanged",
    )

    @field_validator("dataset")
    @classmethod
    def known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"Input should be one of {', '.join(map(repr, DATASETS))}")
        return name


class ModelParams(Section):
    type: Literal["linear", "mlp", "cnn"] = Field(
        description="`linear` (softmax regression, no hidden layer), `mlp` (Dense hidden layers) or "
        "`cnn` (convolution blocks, then Dense layers); keys a type does not use are ignored with a note"
    )
    hidden_units: list[Positive] = Field(
        min_length=1,
        description="units of each hidden Dense layer, e.g. `[128, 128]` (`cnn`: the Dense layers "
        "after the convolutions)",
    )
    activation: Literal["relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish"] = Field(
        description="activation of the hidden and convolution layers"
    )
    dropout: float = Field(
        ge=0,
        lt=1,
        description="dropout rate after each hidden Dense layer (and, for `cnn`, after flattening); "
        "0 adds no dropout layer",
    )
    batch_norm: bool = Field(description="batch normalisation after each hidden Dense and convolution layer")
    conv_filters: list[Positive] = Field(
        min_length=1, description="`cnn`: filters of each convolution block (Conv2D, then max pooling)"
    )
    kernel_size: KernelSize | list[KernelSize] = Field(
        description="`cnn`: convolution kernel size, for every block or one per block (e.g. `[5, 3]`)"
    )
    pool_size: int = Field(ge=1, le=4, description="`cnn`: max-pooling size; pooling pads, so never crops")
    pool_before_activation: bool = Field(
        description="`cnn`: each block pools before its activation (conv, batch norm, pool, activation: "
        "the activation runs on the pooled, smaller map); else conv, activation, batch norm, pool"
    )
    padding: Literal["same", "valid"] = Field(
        description="`cnn`: `same` keeps each convolution's map size, `valid` crops `kernel_size - 1` "
        "pixels per block (faster); a `valid` stack that would crop the image to nothing is an error"
    )
    from_logits: bool = Field(
        description="train on logits with a from-logits loss (as TensorFlow's tutorial does); "
        "the saved model still returns probabilities"
    )

    @field_validator("kernel_size")
    @classmethod
    def one_kernel_per_block(cls, kernel_size: int | list[int], info: ValidationInfo) -> int | list[int]:
        blocks = len(info.data.get("conv_filters", []))
        if isinstance(kernel_size, list) and blocks and len(kernel_size) != blocks:
            raise ValueError(f"give one size for every block or one per block ({blocks} conv_filters)")
        return kernel_size

    @field_validator("padding")
    @classmethod
    def image_outlasts_the_blocks(cls, padding: str, info: ValidationInfo) -> str:
        """Each 'valid' convolution crops kernel_size - 1 pixels: the image must keep one."""
        model = info.data
        if padding != "valid" or model.get("type") != "cnn":
            return padding
        if not {"conv_filters", "kernel_size", "pool_size"} <= model.keys():
            return padding  # one of them is invalid, and named first
        kernels = kernel_sizes(model["kernel_size"], len(model["conv_filters"]))
        sides = conv_sides(kernels, model["pool_size"], padding)
        for block, (kernel, (side, _)) in enumerate(zip(kernels, sides, strict=True), start=1):
            if side < 1:
                raise ValueError(
                    f"a {kernel}x{kernel} kernel leaves nothing of the {IMAGE_SIDE}x{IMAGE_SIDE} image in "
                    f"convolution block {block}; use padding same, a smaller kernel_size or fewer conv_filters"
                )
        return padding


def kernel_sizes(kernel_size: int | list[int], blocks: int) -> list[int]:
    """The kernel size of each convolution block."""
    return kernel_size if isinstance(kernel_size, list) else [kernel_size] * blocks


def conv_sides(kernels: list[int], pool: int, padding: str) -> Iterator[tuple[int, int]]:
    """The side of each convolution block's output, before and after its (padded) pooling."""
    side = IMAGE_SIDE
    for kernel in kernels:
        side -= kernel - 1 if padding == "valid" else 0
        yield side, -(-side // pool)  # pooling pads: ceil
        side = -(-side // pool)


# Each param bounds one size; together they bound training's memory: float32 weights with their
# gradients and two optimizer moments, and a batch's layer outputs three times over (forward,
# backward, the copies of pooling, dropout and batch normalisation).
MAX_TRAINING_BYTES = 4 * 10**9


class TrainParams(Section):
    optimizer: Literal["adam", "rmsprop", "sgd"] = Field(description="the optimizer")
    learning_rate: float = Field(gt=0, description="the optimizer's learning rate")
    momentum: float = Field(
        ge=0, lt=1, description="momentum of `sgd` and `rmsprop`; `adam` ignores it with a note"
    )
    beta_1: float = Field(gt=0, lt=1, description="`adam`: decay of its running mean of the gradients")
    beta_2: float = Field(
        gt=0, lt=1, description="`adam`: decay of its running mean of the squared gradients"
    )
    batch_size: Positive = Field(
        description="samples per gradient step; with the model's layers, bounded so that training fits in "
        f"about {MAX_TRAINING_BYTES // 10**9} GB (the model's weights, optimizer state and one batch's layer "
        "outputs)"
    )
    label_smoothing: float = Field(
        ge=0,
        lt=1,
        description="label smoothing of the crossentropy (raises the reported loss, not the error)",
    )
    lr_schedule: Literal["plateau", "warmup_cosine"] = Field(
        description="`plateau`: `learning_rate`, lowered by `reduce_lr_*` when the validation loss stalls; "
        "`warmup_cosine`: from 0 up to `learning_rate` over the first `warmup_fraction` of the steps, "
        "then down to 0 along a cosine by the last step of `epochs` (more epochs stretch it)"
    )
    warmup_fraction: float = Field(
        ge=0, lt=1, description="`warmup_cosine`: the share of the steps spent warming up"
    )
    translate: float = Field(
        ge=0,
        lt=0.5,
        description="training only: shift each image at random by up to this fraction of its side, "
        "in each direction (0: off); seeded, so the same params give the same weights",
    )
    flip: bool = Field(
        description="training only: mirror each image left-right at random, for datasets whose classes "
        "a mirror keeps (Fashion-MNIST; never digits)"
    )
    early_stopping_patience: int = Field(
        ge=0,
        description="stop after this many epochs without a lower validation loss and restore the best "
        "epoch's weights; 0: off",
    )
    reduce_lr_patience: int = Field(
        ge=0,
        description="`plateau`: multiply the learning rate by `reduce_lr_factor` after this many epochs "
        "without a lower validation loss; 0: off",
    )
    reduce_lr_factor: float = Field(gt=0, lt=1, description="see `reduce_lr_patience`")
    jit_compile: Literal["auto", True, False] = Field(
        description="XLA compilation: `auto` turns it on for `linear` and `mlp` (it fuses a dense step's "
        "many small ops) and off for `cnn` on CPUs (its CPU convolutions are slower), on for everything "
        "on GPUs; never across logical CPUs (`distribute: mirrored` without GPUs)"
    )
    distribute: Literal["none", "mirrored", "multi_worker"] = Field(
        description="`none` (one device), `mirrored` (all local GPUs; without GPUs, two logical CPU "
        "devices) or `multi_worker` (the machines named by `TF_CONFIG`); see docs/scaling-out.md"
    )
    mixed_precision: bool = Field(
        description="float16 compute with float32 weights on GPUs; ignored with a note on CPUs"
    )


# Inches of one grid cell in each grid's figure (stages/lib/figures.py draws them at this size).
CELL_INCHES = {"sample_grid": (1.6, 1.8), "prediction_grid": (4.4, 2.1), "mistake_grid": (1.9, 2.2)}
MAX_PANELS = 100  # per figure: each is a Matplotlib axes, slow and heavy by the thousand
MAX_FIGURE_PIXELS = 50_000_000  # per figure, whatever the grid and dpi: 200 MB while drawn


class PlotParams(Section):
    sample_grid: Grid = Field(description="rows, columns of training samples in `plots/samples.png`")
    prediction_grid: Grid = Field(
        description="rows, columns of test predictions in `plots/predictions.png` (the first third: "
        "the first mistakes)"
    )
    mistake_grid: Grid = Field(
        description="rows, columns of `plots/confident_mistakes.png`, the wrong answers the model was "
        "surest of"
    )
    dpi: int = Field(
        ge=50,
        le=600,
        description=f"resolution of the PNGs; each grid holds at most {MAX_PANELS} panels, and each figure at "
        f"most {MAX_FIGURE_PIXELS // 10**6} megapixels at this resolution",
    )

    @field_validator("sample_grid", "prediction_grid", "mistake_grid")
    @classmethod
    def panels_within_bounds(cls, grid: list[int]) -> list[int]:
        if grid[0] * grid[1] > MAX_PANELS:
            raise ValueError(f"{grid[0] * grid[1]} panels, more than the {MAX_PANELS} a figure holds")
        return grid

    @field_validator("dpi")
    @classmethod
    def figures_within_the_pixel_budget(cls, dpi: int, info: ValidationInfo) -> int:
        """Grids and resolution are each bounded; their product is too."""
        for name, (width, height) in CELL_INCHES.items():
            if name not in info.data:
                continue  # invalid, and named first
            rows, cols = info.data[name]
            size = (round(width * cols * dpi), round(height * rows * dpi))
            if size[0] * size[1] > MAX_FIGURE_PIXELS:
                raise ValueError(
                    f"with plot.{name} {[rows, cols]}, a figure of {size[0]} x {size[1]} pixels "
                    f"({size[0] * size[1] / 10**6:.0f} megapixels, more than {MAX_FIGURE_PIXELS // 10**6}): "
                    "lower plot.dpi or the grid"
                )
        return dpi


class Params(Section):
    seed: int = Field(
        ge=0,
        le=2**32 - 1,  # NumPy's seed range
        description="seeds the validation split, weight initialisation, dropout and shuffling; same "
        "seed, same params, same machine: identical weights and metrics",
    )
    epochs: Positive = Field(
        description="passes over the training split, at most (early stopping may end sooner)"
    )
    data: DataParams
    model: ModelParams
    train: TrainParams
    plot: PlotParams

    @model_validator(mode="after")
    def flips_keep_the_classes(self) -> "Params":
        if self.train.flip and not DATASETS[self.data.dataset].mirror_keeps_class:
            raise ValueError(
                f"train.flip = True: a mirrored image of {self.data.dataset} may be another class; "
                "flip only datasets whose registry entry allows it (mirror_keeps_class)"
            )
        return self


def parse(raw: object) -> Params:
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"{PARAMS_FILE}: {describe(first_problem(error.errors()))}") from None
    check_training_memory(params)
    return params


SIZED = {"linear": (), "mlp": ("hidden_units",), "cnn": ("conv_filters", "hidden_units")}  # a model's size


def check_training_memory(params: Params) -> None:
    """Layer widths and batch size are each unbounded alone; together they must fit in memory."""
    weights, outputs = model_size(params.model, len(DATASETS[params.data.dataset].class_names))
    needed = 4 * (4 * weights + 3 * outputs * params.train.batch_size)
    if needed > MAX_TRAINING_BYTES:
        sizes = [f"model.{key} {getattr(params.model, key)}" for key in SIZED[params.model.type]]
        raise UserError(
            f"{PARAMS_FILE}: model.type {params.model.type} with "
            f"{', '.join([*sizes, f'train.batch_size {params.train.batch_size}'])}: "
            f"training would take about {needed / 10**9:.0f} GB "
            f"({weights / 10**6:.1f} million weights, {outputs:,} layer outputs a sample), more than "
            f"{MAX_TRAINING_BYTES // 10**9} GB: use fewer or smaller layers, or a smaller batch"
        )


def model_size(model: ModelParams, classes: int) -> tuple[int, int]:
    """The weights of the model the params describe (as Keras counts them), and its outputs a sample."""
    weights = outputs = 0
    width = IMAGE_PIXELS
    if model.type == "cnn":
        channels = 1
        kernels = kernel_sizes(model.kernel_size, len(model.conv_filters))
        sides = conv_sides(kernels, model.pool_size, model.padding)
        for filters, kernel, (side, pooled) in zip(model.conv_filters, kernels, sides, strict=True):
            weights += (kernel**2 * channels + 1 + 4 * model.batch_norm) * filters
            outputs += side * side * filters
            channels, width = filters, pooled * pooled * filters
    for units in model.hidden_units if model.type != "linear" else []:
        weights += (width + 1 + 4 * model.batch_norm) * units
        outputs += units
        width = units
    return weights + (width + 1) * classes, outputs + classes


def first_problem(problems: list[dict]) -> dict:
    """The first key's problem; for a key that takes one of several types (``kernel_size``: a
    number or a list), the one that went deepest, with pydantic's name of the type dropped."""
    first = problems[0]
    tag = _type_tag_index(first["loc"])
    if tag is None:
        return first
    same_key = [problem for problem in problems if problem["loc"][:tag] == first["loc"][:tag]]
    first = max(same_key, key=lambda problem: len(problem["loc"]))
    return first | {"loc": first["loc"][:tag] + first["loc"][tag + 1 :]}


def _type_tag_index(loc: tuple) -> int | None:
    """Where pydantic names the type it tried, in the location of a key that takes several."""
    section: type[BaseModel] = Params
    for index, part in enumerate(loc[:-1]):
        field = section.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            section = field.annotation
        elif typing.get_origin(field.annotation) in (typing.Union, types.UnionType):
            return index + 1
        else:
            return None
    return None


def describe(problem: dict) -> str:
    """One line naming the key, its value and what is allowed."""
    loc = problem["loc"]
    key = ".".join(map(str, loc)) or "(top level)"
    if problem["type"] == "missing":
        return f"{key} is missing"
    if problem["type"] == "extra_forbidden":
        section = Params
        for part in loc[:-1]:
            section = section.model_fields[part].annotation
        return f"unknown key {key} (expected one of: {', '.join(section.model_fields)})"
    message = problem["msg"].removeprefix("Value error, ")
    if not loc:  # a check across sections: its message names the keys
        return message
    if problem["type"] == "float_type" and _is_number(problem["input"]):
        message += " (YAML reads 1e-3 as text: write 1.0e-3)"
    return f"{key} = {_short(problem['input'])}: {message}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 60, 60
MAX_SHOWN = 120  # characters of a bad value shown


def _short(value: object) -> str:
    """The value's repr, cut short: a YAML alias can stand for millions of values."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _is_number(value: object) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice (it keeps the last one; DVC refuses the file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {key}", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> object:
    """The YAML document in ``path``; a problem is one line with its place in the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} not found: run from the project root") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path} is not UTF-8 text: byte 0x{data[error.start]:02x} on line {line}; save it as UTF-8"
        ) from None
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise UserError(
            f"{path} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    finally:
        loader.dispose()


def load(path: Path = PARAMS_FILE) -> Params:
    return parse(read_yaml(path))


def override(raw: dict, changes: dict) -> dict:
    """A copy of raw params with dotted keys set, as `dvc exp run -S model.type=cnn` would."""
    raw = copy.deepcopy(raw)
    for key, value in changes.items():
        *parents, last = key.split(".")
        section = raw
        for part in parents:
            section = section[part]
        section[last] = value
    return raw


def override_file(path: Path, changes: dict) -> None:
    """Set dotted keys in a params file, in place."""
    path.write_text(yaml.safe_dump(override(yaml.safe_load(path.read_text()), changes), sort_keys=False))


def markdown(defaults: dict) -> str:
    """The reference of every param: ``docs/parameters.md``, with ``defaults`` from params.yaml."""
    lines = [
        "# Parameters (`params.yaml`)",
        "",
        "Generated from the schema (`stages/lib/schema.py`) by `python -m stages.lib.schema > "
        "docs/parameters.md`; a test fails when this page is out of date.",
        "",
        "Every stage checks the whole of `params.yaml` against the schema before it does anything. A typo "
        "or a bad value stops it with one line naming the key, the value and what is allowed, e.g. "
        "`error: params.yaml: unknown key epoch (expected one of: seed, epochs, data, model, train, plot)`.",
        "",
        "| key | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for key, field, schema in leaf_fields(Params):
        default = _lookup(defaults, key)
        lines.append(f"| `{key}` | `{_as_yaml(default)}` | {_allowed(schema)} | {field.description} |")
    return "\n".join(lines) + "\n"


def leaf_fields(section: type[Section], prefix: str = ""):
    """(dotted key, field, its JSON schema) of every leaf param, in declaration order."""
    properties = section.model_json_schema(mode="validation").get("properties", {})
    for name, field in section.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            yield from leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field, properties[name]


def _lookup(raw: dict, key: str) -> object:
    for part in key.split("."):
        raw = raw[part]
    return raw


def _allowed(schema: dict) -> str:
    """What the JSON schema of one param allows, in a few words."""
    if "enum" in schema:
        return " \\| ".join(f"`{_as_yaml(option)}`" for option in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_allowed(option) for option in schema["anyOf"])
    if schema["type"] == "array":
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        count = "any number" if not low and high is None else low if low == high else f"{low} or more"
        return f"{count} of: {_allowed(schema['items'])}"
    if schema["type"] == "boolean":
        return "`true` \\| `false`"
    bounds = [f"{symbol} {schema[name]}" for name, symbol in _BOUNDS if name in schema]
    return f"{schema['type']} {', '.join(bounds)}".strip()


def _as_yaml(value: object) -> str:
    return json.dumps(value).strip('"')


_BOUNDS = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<="))


if __name__ == "__main__":
    print(markdown(yaml.safe_load(PARAMS_FILE.read_text())), end="")
