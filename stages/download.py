"""Stage 1: fetch the dataset's IDX files and keep them only once verified.

Sources are tried in order: ``DATA_MIRROR`` (a base URL or a local folder
holding ``<dataset>/<file>.gz``), then each official mirror in the registry.
A file is accepted only if its decompressed bytes have the registry's size and
SHA-256; the dataset folder appears in ``data/raw/`` only when all its files are.
"""

import hashlib
import os
import shutil
import signal
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from stages.lib import cli, schema
from stages.lib.atomic import atomic_folder
from stages.lib.datasets import DATASETS, Dataset, IdxFile
from stages.lib.errors import UserError

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0  # seconds to establish a connection
READ_TIMEOUT = 30.0  # seconds without a byte before a stalled transfer is abandoned
# A file must arrive within the two timeouts plus its decompressed size at this rate (bytes per
# second; MNIST's 47 MB of training images: 134 s), else the source is abandoned: a server that
# drips a byte at a time never trips the read timeout.
MIN_THROUGHPUT = 500_000
ATTEMPTS = 3  # per source, for transient network failures only
BACKOFF = 1.0  # seconds, doubled after each failed attempt


class SourceFailed(Exception):
    """This source cannot provide a valid file; the next one is tried."""


class TransientFailure(SourceFailed):
    """A network hiccup that may succeed on a retry."""


@contextmanager
def _deadline(seconds: float, min_throughput: float) -> Iterator[None]:
    """Fail the source once ``seconds`` have passed, even in the middle of a blocked read.

    A signal is the one thing that interrupts a read which keeps receiving a byte now and then.
    Not retried: a source that slow once is likely slow again, and the next one is waiting.
    """

    def expire(signum, frame):
        raise SourceFailed(
            f"too slow: not complete within {seconds:.0f} s ({min_throughput / 1000:.0f} kB/s expected)"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sources(name: str, dataset: Dataset, mirror: str | None) -> list[str]:
    """Base URLs or folders to try, in order, each ending with a slash."""
    found = [f"{mirror.rstrip('/')}/{name}/"] if mirror else []
    return found + list(dataset.mirrors)


def _network_reason(error: requests.RequestException) -> str:
    """The root cause in a few words, e.g. "Failed to resolve 'host' (...)" or "Connection refused"."""
    cause = error.args[0] if error.args else error
    cause = getattr(cause, "reason", cause)  # urllib3 wraps the cause in MaxRetryError
    message = cause.args[0] if getattr(cause, "args", None) and isinstance(cause.args[0], str) else str(cause)
    detail = message.split("): ", 1)[-1].split(">: ", 1)[-1]  # drop urllib3's connection-object prefix
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


@contextmanager
def _open(url: str, timeout: tuple[float, float]) -> Iterator[tuple[Iterator[bytes], int | None]]:
    """Open a source file: its chunks and, if known, its size in bytes."""
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        try:
            response = requests.get(url, stream=True, timeout=timeout)
        except requests.TooManyRedirects:
            raise SourceFailed("too many redirects") from None
        except requests.RequestException as error:
            raise TransientFailure(f"connection failed ({_network_reason(error)})") from None
        with response:
            if response.status_code != 200:
                failure = TransientFailure if response.status_code >= 500 else SourceFailed
                raise failure(f"HTTP {response.status_code} {response.reason}")
            size = response.headers.get("Content-Length", "")
            yield response.iter_content(CHUNK), int(size) if size.isdigit() else None
        return
    path = Path(unquote(urlparse(url).path)) if scheme == "file" else Path(url)
    try:
        file = path.open("rb")
    except OSError as error:
        raise SourceFailed(error.strerror or str(error)) from None
    with file:
        yield iter(lambda: file.read(CHUNK), b""), path.stat().st_size


def fetch(
    url: str,
    expected: IdxFile,
    destination: Path,
    timeout: tuple[float, float],
    min_throughput: float = MIN_THROUGHPUT,
) -> None:
    """Stream ``url`` to ``destination``, verifying the decompressed bytes on the way."""
    digest = hashlib.sha256()
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip container
    decompressed = 0
    progress = tqdm(unit="B", unit_scale=True, desc=expected.name, disable=None)
    seconds = sum(timeout) + expected.size / min_throughput
    try:
        with (
            _deadline(seconds, min_throughput),
            _open(url, timeout) as (chunks, size),
            destination.open("wb") as out,
        ):
            progress.reset(total=size)
            for chunk in chunks:
                out.write(chunk)
                progress.update(len(chunk))
                while chunk:  # bounded steps, so a gzip bomb cannot fill the memory
                    piece = decompressor.decompress(chunk, CHUNK)
                    decompressed += len(piece)
                    if decompressed > expected.size:
                        raise SourceFailed(f"content is larger than the expected {expected.size} bytes")
                    digest.update(piece)
                    chunk = decompressor.unconsumed_tail
    except zlib.error:
        raise SourceFailed("not a valid gzip file") from None
    except requests.RequestException as error:
        raise TransientFailure(f"transfer interrupted ({_network_reason(error)})") from None
    finally:
        progress.close()
    if not decompressor.eof:
        raise SourceFailed(f"truncated gzip stream ({decompressed} bytes decompressed)")
    if decompressor.unused_data:
        raise SourceFailed("unexpected data after the gzip stream")
    if decompressed != expected.size:
        raise SourceFailed(f"decompressed size {decompressed}, expected {expected.size}")
    if digest.hexdigest() != expected.sha256:
        raise SourceFailed(f"SHA-256 {digest.hexdigest()} does not match {expected.sha256}")


def fetch_from_any(
    bases: list[str],
    expected: IdxFile,
    destination: Path,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    attempts: int = ATTEMPTS,
    min_throughput: float = MIN_THROUGHPUT,
) -> str:
    """Fetch one file from the first source that provides it intact; return that URL."""
    failures = []
    for base in bases:
        url = f"{base}{expected.name}.gz"
        for attempt in range(1, attempts + 1):
            try:
                fetch(url, expected, destination, timeout, min_throughput)
                return url
            except SourceFailed as failure:
                destination.unlink(missing_ok=True)
                if isinstance(failure, TransientFailure) and attempt < attempts:
                    time.sleep(BACKOFF * 2 ** (attempt - 1))
                    continue
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                failures.append(f"{url}: {failure}{tries}")
                break
    raise UserError(f"could not get a valid {expected.name}.gz from any source: " + "; ".join(failures))


def download_dataset(name: str, out_dir: Path, mirror: str | None, **fetch_options) -> Path:
    """Download every file of dataset ``name`` into ``out_dir/name``, all verified or none.

    On success ``out_dir`` holds that dataset alone; on failure it is left as it was.
    """
    dataset = DATASETS[name]
    final = out_dir / name
    with atomic_folder(final) as staging:
        for expected in dataset.files:
            url = fetch_from_any(
                sources(name, dataset, mirror), expected, staging / f"{expected.name}.gz", **fetch_options
            )
            print(f"verified {expected.name} from {url}")
    # DVC keeps data/raw between runs (it is persistent): the previous dataset goes only now.
    for other in set(out_dir.iterdir()) - {final}:
        if other.is_dir():
            shutil.rmtree(other)
        else:
            other.unlink()
    return final


def main() -> None:
    parser = cli.parser(__file__, __doc__)
    parser.add_argument("out_dir", type=Path, help="where <dataset>/ goes, e.g. data/raw")
    args = parser.parse_args()
    params = schema.load()
    mirror = os.environ.get("DATA_MIRROR")
    try:
        download_dataset(params.data.dataset, args.out_dir, mirror)
    except UserError as error:
        if not mirror:
            raise UserError(
                f"{error}; DATA_MIRROR is not set: point it at a base URL or a folder holding "
                f"{params.data.dataset}/<file>.gz to download from there first"
            ) from None
        if not urlparse(mirror).scheme and not Path(mirror).is_absolute() and not Path(mirror).is_dir():
            # `dvc queue start` runs each experiment in a copy of the project under .dvc/tmp.
            raise UserError(
                f"{error}; DATA_MIRROR {mirror} is relative to {Path.cwd()}: "
                "give it as an absolute path (queued experiments run in another folder)"
            ) from None
        raise


if __name__ == "__main__":
    cli.run(main)
