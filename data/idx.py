"""The IDX file format MNIST ships in: big-endian header, then raw unsigned bytes."""
import struct
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def encode_images(images: np.ndarray) -> bytes:
    """(count, rows, cols) uint8 array -> IDX3 bytes."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be a uint8 array of shape (count, rows, cols), got {images.dtype} {images.shape}")
    count, rows, cols = images.shape
    return struct.pack(">IIII", IMAGES_MAGIC, count, rows, cols) + images.tobytes()


def encode_labels(labels: np.ndarray) -> bytes:
    """(count,) uint8 array -> IDX1 bytes."""
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"labels must be a uint8 array of shape (count,), got {labels.dtype} {labels.shape}")
    return struct.pack(">II", LABELS_MAGIC, len(labels)) + labels.tobytes()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX1 (labels) or IDX3 (images) file into a uint8 array."""
    data = Path(path).read_bytes()
    magic = struct.unpack(">I", data[:4])[0]
    if magic == IMAGES_MAGIC:
        count, rows, cols = struct.unpack(">III", data[4:16])
        shape, offset = (count, rows, cols), 16
    elif magic == LABELS_MAGIC:
        (count,) = struct.unpack(">I", data[4:8])
        shape, offset = (count,), 8
    else:
        raise ValueError(f"{path}: not an MNIST IDX file (magic {magic})")
    body = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but the file holds {body.size} values")
    return body.reshape(shape)
