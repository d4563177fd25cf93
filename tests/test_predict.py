"""stages.predict on real image files: framing, inversion, bad files and the JSON output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from stages.lib import processed
from stages.predict import ImageError, frame, prepare, to_dark_background, top_classes
from tests.helpers import huge_png


def save(array: np.ndarray, path, **options):
    Image.fromarray(array.astype(np.uint8)).save(path, **options)
    return path


def test_object_is_scaled_and_centred_by_mass():
    canvas = np.zeros((300, 500), np.float32)
    canvas[10:110, 400:450] = 1.0  # a tall bar in the top-right corner
    field = frame(canvas, object_size=20)
    assert field.shape == (28, 28)
    rows, cols = np.nonzero(field > 0.5)
    assert rows.max() - rows.min() + 1 == 20  # the longest side spans the object size
    assert abs(rows.mean() - 13.5) <= 1 and abs(cols.mean() - 13.5) <= 1


def test_light_background_is_inverted_and_reported():
    paper = np.full((50, 50), 0.9, np.float32)
    paper[20:30, 20:30] = 0.1  # dark ink
    dark, inverted = to_dark_background(paper)
    assert inverted and dark[25, 25] > 0.8 and dark[0, 0] < 0.2
    assert to_dark_background(dark)[1] is False


def test_blank_image_is_an_error():
    with pytest.raises(ImageError, match="blank"):
        frame(np.full((40, 40), 0.3, np.float32), 20)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"just text", "not a PNG or JPEG image"),
        ("fake.png", b"\x89PNG\r\n\x1a\nbroken", "not a PNG or JPEG image"),
        ("missing.png", None, "file not found"),
    ],
)
def test_bad_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        prepare(path, 20)


def test_other_image_formats_are_refused(tmp_path):
    path = save(np.zeros((28, 28)), tmp_path / "image.gif")
    with pytest.raises(ImageError, match=r"not a PNG or JPEG image \(GIF\)"):
        prepare(path, 20)


def glyph() -> np.ndarray:
    """An upright "L" in [0, 1] (1: ink) with margins: asymmetric, so a turn on its side shows."""
    ink = np.zeros((120, 90), np.float32)
    ink[15:105, 20:35] = 1  # stem
    ink[90:105, 20:70] = 1  # foot
    return ink


def similarity(path_a, path_b) -> float:
    """Correlation of two images as predict frames them: 1 for the same framed input."""
    return float(np.corrcoef(prepare(path_a, 20)[0], prepare(path_b, 20)[0])[0, 1])


def test_16_bit_scan_is_scaled_by_its_range_not_clipped(tmp_path):
    paper = 1 - 0.85 * glyph()  # dark ink on white paper
    Image.fromarray((paper * 65535).astype(np.uint16)).save(tmp_path / "scan16.png")
    with Image.open(tmp_path / "scan16.png") as image:
        assert image.mode == "I;16"
    save(paper * 255, tmp_path / "scan8.png")
    assert prepare(tmp_path / "scan16.png", 20)[1]  # a light background, inverted as the 8-bit copy is
    assert similarity(tmp_path / "scan16.png", tmp_path / "scan8.png") > 0.99


def transparent(ink: int, mode: str) -> Image.Image:
    """The glyph's strokes in gray level ``ink`` on a fully transparent background."""
    if mode == "P":  # a palette, index 0 marked transparent
        image = Image.fromarray(glyph().astype(np.uint8), "P")
        image.putpalette([0, 0, 0, ink, ink, ink])
        image.info["transparency"] = 0
        return image
    rgba = np.zeros((*glyph().shape, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = ink, glyph() * 255
    return Image.fromarray(rgba).convert(mode)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
@pytest.mark.parametrize("ink", [0, 255], ids=["dark-strokes", "light-strokes"])
def test_strokes_on_a_transparent_background_stay_visible(tmp_path, mode, ink):
    transparent(ink, mode).save(tmp_path / "strokes.png")
    save(glyph() * 255, tmp_path / "reference.png")  # the same strokes, light on black
    assert similarity(tmp_path / "strokes.png", tmp_path / "reference.png") > 0.99


def test_exif_orientation_is_applied(tmp_path):
    upright = Image.fromarray(((1 - 0.85 * glyph()) * 255).astype(np.uint8))
    upright.save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # as phones store it: turn 90 degrees clockwise to view
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    assert similarity(tmp_path / "phone.jpg", tmp_path / "upright.jpg") > 0.98


def test_too_many_pixels_are_refused_from_the_header(tmp_path):
    with pytest.raises(ImageError, match=r"^too large: 13000 x 13000 pixels, more than 50 megapixels"):
        prepare(huge_png(tmp_path / "huge.png"), 20)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_what_is_not_a_regular_file_is_refused_unopened(tmp_path, kind):
    path = Path("/dev/zero") if kind == "device" else tmp_path / "pipe.png"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer forever
    with pytest.raises(ImageError, match=r"^not a regular file"):
        prepare(path, 20)


def test_top_classes_most_probable_first():
    ranked = top_classes(np.array([0.1, 0.6, 0.05, 0.25]), ["a", "b", "c", "d"])
    assert ranked == [
        {"class": "b", "probability": 0.6},
        {"class": "d", "probability": 0.25},
        {"class": "a", "probability": 0.1},
    ]


SHAPES = ("tall bar", "wide bar", "square", "ring")


def draw(shape: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A light shape on a dark, slightly noisy canvas, at a random place and scale."""
    height, width = size
    canvas = rng.uniform(0, 30, size)
    side = int(rng.uniform(0.3, 0.6) * min(size))
    top, left = rng.integers(0, height - side), rng.integers(0, width - side)
    thin = max(2, side // 5)
    block = np.zeros((side, side))
    if shape == 0:
        block[:, (side - thin) // 2 : (side + thin) // 2] = 1
    elif shape == 1:
        block[(side - thin) // 2 : (side + thin) // 2, :] = 1
    elif shape == 2:
        block[:] = 1
    else:
        block[:] = 1
        block[thin:-thin, thin:-thin] = 0
    canvas[top : top + side, left : left + side] += 220 * block
    return np.clip(canvas, 0, 255)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A real model trained on shapes framed the way predict frames images, saved as train saves it."""
    import keras

    from stages.lib.models import build_model
    from tests.helpers import make_params

    rng = np.random.default_rng(1)
    labels = np.arange(600) % len(SHAPES)
    x = np.stack([frame(draw(label, (40, 40), rng) / 255, 28).reshape(784) for label in labels])
    keras.utils.set_random_seed(0)
    model = build_model(
        make_params(**{"model.type": "mlp", "model.hidden_units": [32]}).model, 784, len(SHAPES)
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, np.eye(len(SHAPES))[labels], epochs=20, batch_size=32, verbose=0)
    directory = tmp_path_factory.mktemp("model")
    model.save(directory / "model.keras")
    processed.save_dataset_info(
        directory, "fashion_mnist", SHAPES
    )  # Fashion-MNIST's framing: object fills 28
    return directory / "model.keras"


def predict(model, *images, json_output=False):
    args = [sys.executable, "-m", "stages.predict", "--model", str(model), *map(str, images)]
    return subprocess.run(
        args + (["--json"] if json_output else []),
        cwd=model.parent,  # anywhere: the model's folder holds all it needs
        capture_output=True,
        text=True,
    )


def test_predicts_images_of_any_size_and_polarity(trained_model, tmp_path):
    rng = np.random.default_rng(5)
    images = [
        save(draw(3, (28, 28), rng), tmp_path / "small.png"),
        save(draw(3, (300, 420), rng), tmp_path / "big.jpg", quality=90),
        save(255 - draw(3, (200, 150), rng), tmp_path / "photo.png"),  # dark ring on light paper
        tmp_path / "missing.png",
    ]
    result = predict(trained_model, *images, json_output=True)
    assert result.returncode == 1  # one image failed, the others were still answered
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(path) for path in images]
    for line in lines[:3]:
        assert line["predictions"][0]["class"] == "ring", line
        assert len(line["predictions"]) == 3
        probabilities = [p["probability"] for p in line["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True)
    assert lines[3] == {"image": str(images[3]), "error": "file not found"}
    assert f"note: {images[2]} has a light background; inverted" in result.stderr
    assert "small.png has a light background" not in result.stderr


def test_plain_output_one_line_per_image(trained_model, tmp_path):
    image = save(draw(1, (60, 90), np.random.default_rng(2)), tmp_path / "wide.png")
    result = predict(trained_model, image)
    assert result.returncode == 0
    assert result.stdout.startswith(f"{image}: wide bar (")
    assert result.stdout.count("\n") == 1 and result.stdout.count("%") == 3


def test_only_bad_files_still_answers_each(trained_model, tmp_path):
    result = predict(trained_model, tmp_path / "a.png", tmp_path / "b.jpg", json_output=True)
    assert result.returncode == 1
    assert [json.loads(line)["error"] for line in result.stdout.splitlines()] == ["file not found"] * 2


def test_unsafe_and_unreadable_files_are_refused_one_by_one(trained_model, tmp_path):
    """A decompression bomb and a FIFO each get their error line; the good image is still answered."""
    huge, fifo = huge_png(tmp_path / "huge.png"), tmp_path / "pipe.png"
    os.mkfifo(fifo)
    good = save(draw(3, (60, 60), np.random.default_rng(3)), tmp_path / "good.png")
    result = predict(trained_model, huge, fifo, good, json_output=True)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["error"].startswith("too large: 13000 x 13000 pixels")
    assert lines[1]["error"].startswith("not a regular file")
    assert lines[2]["predictions"][0]["class"] == "ring"
    assert "Warning" not in result.stderr  # no raw DecompressionBombWarning


def test_model_folder_is_named_when_dataset_json_is_missing(trained_model, tmp_path):
    """Run from another directory: the messages say where the model and its dataset.json were looked for."""
    result = subprocess.run(
        [sys.executable, "-m", "stages.predict", str(trained_model)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: models/model.keras: not found (looked for from {tmp_path}: run from the project root, or "
        "give --model PATH)"
    ]
    lonely = tmp_path / "elsewhere" / "model.keras"
    lonely.parent.mkdir()
    lonely.write_bytes(trained_model.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "stages.predict", "--model", str(lonely), str(trained_model)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {lonely.parent}/dataset.json: not found: the class names are read from dataset.json beside "
        f"the model given with --model ({lonely}), where the train stage writes it"
    ]
