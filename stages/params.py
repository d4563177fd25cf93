"""The schema of params.yaml, checked first by every stage."""

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from stages.datasets import DATASETS
from stages.errors import UserError

PARAMS_FILE = Path("params.yaml")

Positive = Annotated[int, Field(ge=1)]
Grid = Annotated[list[Positive], Field(min_length=2, max_length=2)]


class Section(BaseModel):
    # strict: "10" is not an epoch count and true is not a batch size.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(Section):
    dataset: str
    val_fraction: float = Field(gt=0, lt=1)
    train_fraction: float = Field(gt=0, le=1)  # of what remains for training, for quick iterations

    @field_validator("dataset")
    @classmethod
    def known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"Input should be one of {', '.join(map(repr, DATASETS))}")
        return name


class ModelParams(Section):
    type: Literal["linear", "mlp", "cnn"]
    hidden_units: list[Positive] = Field(min_length=1)  # Dense layers (after the convolutions for cnn)
    activation: Literal["relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish"]
    dropout: float = Field(ge=0, lt=1)
    batch_norm: bool
    conv_filters: list[Positive] = Field(min_length=1)  # one convolution block each
    kernel_size: int = Field(ge=1, le=28)
    pool_size: int = Field(ge=1, le=4)
    padding: Literal["same", "valid"]  # of the convolutions; pooling always pads
    from_logits: bool

    @field_validator("padding")
    @classmethod
    def image_outlasts_the_blocks(cls, padding: str, info: ValidationInfo) -> str:
        """Each 'valid' convolution crops kernel_size - 1 pixels: a 28x28 image must keep one."""
        model = info.data
        if padding != "valid" or model.get("type") != "cnn":
            return padding
        if not {"conv_filters", "kernel_size", "pool_size"} <= model.keys():
            return padding  # one of them is invalid, and named first
        side, kernel = 28, model["kernel_size"]
        for block in range(1, len(model["conv_filters"]) + 1):
            side -= kernel - 1
            if side < 1:
                raise ValueError(
                    f"a {kernel}x{kernel} kernel leaves nothing of the 28x28 image in convolution block "
                    f"{block}; use padding same, a smaller kernel_size or fewer conv_filters"
                )
            side = -(-side // model["pool_size"])  # pooling pads: ceil
        return padding


class TrainParams(Section):
    optimizer: Literal["adam", "rmsprop", "sgd"]
    learning_rate: float = Field(gt=0)
    momentum: float = Field(ge=0, lt=1)
    batch_size: Positive
    label_smoothing: float = Field(ge=0, lt=1)
    early_stopping_patience: int = Field(ge=0)
    reduce_lr_patience: int = Field(ge=0)
    reduce_lr_factor: float = Field(gt=0, lt=1)
    jit_compile: Literal["auto", True, False]
    distribute: Literal["none", "mirrored", "multi_worker"]
    mixed_precision: bool  # GPUs only


class PlotParams(Section):
    sample_grid: Grid  # rows, columns of training images
    prediction_grid: Grid  # rows, columns of test predictions
    mistake_grid: Grid  # rows, columns of the most confident mistakes
    dpi: int = Field(ge=50, le=600)


class Params(Section):
    seed: int = Field(ge=0, le=2**32 - 1)  # NumPy's seed range
    epochs: Positive
    data: DataParams
    model: ModelParams
    train: TrainParams
    plot: PlotParams


def parse(raw: object) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"{PARAMS_FILE}: {describe(error.errors()[0])}") from None


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
    if problem["type"] == "float_type" and _is_number(problem["input"]):
        message += " (YAML reads 1e-3 as text: write 1.0e-3)"
    return f"{key} = {problem['input']!r}: {message}"


def _is_number(value: object) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def load(path: Path = PARAMS_FILE) -> Params:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: run from the project root") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse(raw)
