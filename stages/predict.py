"""Classify your own images with the trained model: python -m stages.predict IMAGE...

Each PNG or JPEG of up to 50 megapixels is decoded as a person sees it (turned upright as
its EXIF orientation says, transparent parts painted so the strokes stay visible, 16-bit
levels scaled), then framed the way the training data is: grayscale, light strokes on a
dark background (light-background photos are inverted, with a note), the object cropped,
scaled so its longest side spans the dataset's object size and centred by its centre of
mass in the dataset's image field. One line per image, or with ``--json`` one JSON object
per line.
"""

import json
import stat
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stages.lib import cli, processed, tensorflow_env
from stages.lib.datasets import DATASETS, IMAGE_PIXELS, IMAGE_SIDE
from stages.lib.errors import UserError

FORMATS = {"PNG", "JPEG"}
TOP = 3
INK = 0.25  # a pixel is part of the object above this share of the brightest pixel
# Checked from the header, before decoding: a 48-megapixel photo passes.
MAX_PIXELS = 50_000_000
# Larger images are averaged down to this side before framing: the object ends up 20 or 28
# pixels wide anyway.
WORKING_SIDE = 2048
# The budget above replaces Pillow's own bomb check, which warns on stderr, then raises.
Image.MAX_IMAGE_PIXELS = None
HIGH_DEPTH = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}  # 16-bit (and wider) gray levels


class ImageError(Exception):
    """This image cannot be classified; the others still are."""


def read_grayscale(path: Path) -> np.ndarray:
    """The image as a person sees it, as float32 gray levels in [0, 1]; only PNG and JPEG are decoded."""
    check_regular_file(path)
    try:
        with Image.open(path) as image:
            if image.format not in FORMATS:
                raise ImageError(f"not a PNG or JPEG image ({image.format})")
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(
                    f"too large: {image.width} x {image.height} pixels, more than {MAX_PIXELS // 10**6} "
                    "megapixels: scale it down"
                )
            ImageOps.exif_transpose(image, in_place=True)  # upright, as phones mean it
            return gray_levels(image)
    except PermissionError:
        raise ImageError("cannot read: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError("not a PNG or JPEG image") from None
    except OSError as error:
        raise ImageError(f"cannot decode: {error}") from None


def check_regular_file(path: Path) -> None:
    """Refuse what is not a file without opening it: opening a FIFO waits for a writer forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except PermissionError:
        raise ImageError("cannot read: permission denied") from None
    if stat.S_ISDIR(mode):
        raise ImageError("is a directory, not an image")
    if not stat.S_ISREG(mode):
        raise ImageError("not a regular file (a pipe, socket or device), not an image")


def gray_levels(image: Image.Image) -> np.ndarray:
    """Gray levels in [0, 1]: 16-bit scaled by the range used, transparency composited."""
    if image.mode in HIGH_DEPTH:
        # Pillow's conversion to 8 bits clips at 255, which turns a 16-bit white page and its ink white.
        levels = np.asarray(shrunk(image.convert("F")), dtype=np.float32)
        low, high = levels.min(), levels.max()
        return (levels - low) / (high - low) if high > low else np.zeros_like(levels)
    if image.has_transparency_data:
        return composited(np.asarray(shrunk(image.convert("RGBA").convert("LA")), dtype=np.float32) / 255.0)
    return np.asarray(shrunk(image.convert("L")), dtype=np.float32) / 255.0


def shrunk(image: Image.Image) -> Image.Image:
    """At most WORKING_SIDE pixels a side, by averaging: the float copies of a photo stay small."""
    factor = -(-max(image.size) // WORKING_SIDE)
    return image.reduce(factor) if factor > 1 else image


def composited(gray_alpha: np.ndarray) -> np.ndarray:
    """Transparent parts painted in the colour that keeps the strokes visible: white under dark ones."""
    gray, alpha = gray_alpha[..., 0], gray_alpha[..., 1]
    opaque = alpha.sum()
    ink_is_dark = opaque > 0 and (gray * alpha).sum() / opaque < 0.5
    return gray * alpha + float(ink_is_dark) * (1 - alpha)


def background(gray: np.ndarray) -> float:
    """The background's gray level: the median of the border pixels."""
    return float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))


def to_dark_background(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Light strokes on dark, as in MNIST; returns whether the image was inverted."""
    if background(gray) > 0.5:
        return 1.0 - gray, True
    return gray, False


def frame(gray: np.ndarray, object_size: int) -> np.ndarray:
    """Crop the object, scale its longest side to ``object_size`` and centre it by mass in the field."""
    gray = np.clip(gray - background(gray), 0, None)
    if gray.max() <= 0.05:
        raise ImageError("no object found: the image is blank")
    rows, cols = np.nonzero(gray > INK * gray.max())
    crop = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] / gray.max()
    scale = object_size / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    resized = np.clip(resized, 0, 1)
    height, width = resized.shape
    mass = resized.sum()
    centre_row = (resized.sum(axis=1) @ np.arange(height)) / mass
    centre_col = (resized.sum(axis=0) @ np.arange(width)) / mass
    # Put the centre of mass at the field's centre, keeping the whole object inside.
    middle = (IMAGE_SIDE - 1) / 2
    top = int(np.clip(round(middle - centre_row), 0, IMAGE_SIDE - height))
    left = int(np.clip(round(middle - centre_col), 0, IMAGE_SIDE - width))
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = resized
    return field


def prepare(path: Path, object_size: int) -> tuple[np.ndarray, bool]:
    """The image as one flat vector in [0, 1], as the model takes it, and whether it was inverted."""
    gray, inverted = to_dark_background(read_grayscale(path))
    return frame(gray, object_size).reshape(IMAGE_PIXELS), inverted


def top_classes(probabilities: np.ndarray, class_names: list[str]) -> list[dict]:
    order = np.argsort(probabilities)[::-1][:TOP]
    return [{"class": class_names[i], "probability": round(float(probabilities[i]), 4)} for i in order]


def prepare_all(paths: list[Path], object_size: int) -> tuple[dict[Path, np.ndarray], dict[Path, str]]:
    """The framed images that could be read, and an error for each that could not."""
    prepared, failures = {}, {}
    for path in paths:
        try:
            prepared[path], inverted = prepare(path, object_size)
        except ImageError as error:
            failures[path] = str(error)
            continue
        if inverted:
            print(f"note: {path} has a light background; inverted to light-on-dark", file=sys.stderr)
    return prepared, failures


def answer(
    path: Path, probabilities: np.ndarray | None, error: str | None, class_names, as_json: bool
) -> None:
    """One line for one image: its top classes, or why it could not be classified."""
    if error is not None:
        if as_json:
            print(json.dumps({"image": str(path), "error": error}))
        else:
            print(f"{path}: error: {error}", file=sys.stderr)
        return
    predictions = top_classes(probabilities, class_names)
    if as_json:
        print(json.dumps({"image": str(path), "predictions": predictions}))
    else:
        print(f"{path}: " + ", ".join(f"{p['class']} ({p['probability']:.1%})" for p in predictions))


def model_dataset_info(model: Path) -> dict:
    """The model's dataset and class names, from the dataset.json the train stage writes beside it."""
    if not model.exists():
        raise UserError(
            f"{model}: not found (looked for from {Path.cwd()}: run from the project root, or give --model PATH)"
        )
    if not (model.parent / processed.DATASET_FILE).exists():
        raise UserError(
            f"{model.parent / processed.DATASET_FILE}: not found: the class names are read from "
            f"{processed.DATASET_FILE} beside the model given with --model ({model}), where the train stage "
            "writes it"
        )
    return processed.load_dataset_info(model.parent)


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files")
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"), help="a trained model")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()

    info = model_dataset_info(args.model)
    if info["name"] not in DATASETS:
        raise UserError(f"{args.model}: trained on {info['name']!r}, which is not in the dataset registry")
    prepared, failures = prepare_all(args.images, DATASETS[info["name"]].object_size)
    tensorflow_env.configure()
    from stages.lib.models import load_model, predict  # TensorFlow reads its settings as it loads: now

    model = load_model(args.model)
    probabilities = {}
    if prepared:  # Keras cannot predict an empty batch
        probabilities = dict(zip(prepared, predict(model, np.stack(list(prepared.values()))), strict=True))
    for path in args.images:  # in the order given, failures included
        answer(path, probabilities.get(path), failures.get(path), info["class_names"], args.json)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
