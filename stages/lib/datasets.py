"""The dataset registry: where each dataset comes from and how to recognise it.

Adding a dataset in the IDX format is one entry in ``DATASETS``; every stage
reads it from here.
"""

from dataclasses import dataclass

# Every registered dataset holds square grayscale images of this side; models, plots and
# stages.predict all work on this geometry.
IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE


@dataclass(frozen=True)
class IdxFile:
    name: str  # file name on the mirror, without ".gz"
    size: int  # bytes, decompressed
    sha256: str  # of the decompressed bytes: the dataset's identity


@dataclass(frozen=True)
class Dataset:
    class_names: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    mirrors: tuple[str, ...] = ()  # official base URLs (https only), tried in order
    # How the images are framed, so new images can be framed alike: the longest side of the
    # object spans this many of the image's pixels, centred by its centre of mass (MNIST: 20).
    object_size: int = IMAGE_SIDE
    # Whether a left-right mirror keeps every image's class, so `train.flip` may augment with it.
    mirror_keeps_class: bool = False

    @property
    def files(self) -> tuple[IdxFile, ...]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        class_names=tuple(str(digit) for digit in range(10)),
        train_images=IdxFile(
            "train-images-idx3-ubyte",
            47040016,
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        train_labels=IdxFile(
            "train-labels-idx1-ubyte",
            60008,
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        test_images=IdxFile(
            "t10k-images-idx3-ubyte",
            7840016,
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        test_labels=IdxFile(
            "t10k-labels-idx1-ubyte",
            10008,
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        object_size=20,
    ),
    "fashion_mnist": Dataset(
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        train_images=IdxFile(
            "train-images-idx3-ubyte",
            47040016,
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        train_labels=IdxFile(
            "train-labels-idx1-ubyte",
            60008,
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        test_images=IdxFile(
            "t10k-images-idx3-ubyte",
            7840016,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        test_labels=IdxFile(
            "t10k-labels-idx1-ubyte",
            10008,
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        mirror_keeps_class=True,  # clothing mirrored is the same garment
        # Zalando's own http-only S3 website is left out: official sources are https only.
        mirrors=(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
}
