"""Data sources: embedded MNIST, IDX files (written here byte by byte, valid and broken), tfds (mocked)."""
import gzip
import pathlib
import time

import numpy as np
import pytest

from jaxhw.data import images
from jaxhw.data.images import load_images, read_idx
from jaxhw.errors import InputError

DEBIAN_FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding, from its specification: 0, 0, type 0x08, ndim, big-endian dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory: pathlib.Path, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[split] = (pixels, labels)
        for stem, array in zip(images.IDX_FILES[split], (pixels, labels)):
            data = idx_bytes(array)
            if gz:
                (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / stem).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_source_reads_what_was_written(tmp_path, gz):
    written = write_idx_dir(tmp_path, gz=gz)
    for split in ("train", "test"):
        data = load_images("fashion_mnist", split, source="idx", data_dir=tmp_path)
        pixels, labels = written[split]
        assert data.images.dtype == np.uint8 and data.images.shape == (len(pixels), 28, 28, 1)
        np.testing.assert_array_equal(data.images[..., 0], pixels)
        assert data.labels.dtype == np.int32
        np.testing.assert_array_equal(data.labels, labels)
        assert data.num_classes == 10 and data.class_names[9] == "Ankle boot"
        assert data.source == f"idx:{tmp_path}"


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(InputError, match="magic"):
        read_idx(path)


def test_idx_truncated_and_padded(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes(data[:-10])
    with pytest.raises(InputError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(data + b"\x00")
    with pytest.raises(InputError, match="header promises"):
        read_idx(tmp_path / "long")
    (tmp_path / "header").write_bytes(data[:6])
    with pytest.raises(InputError, match="truncated header"):
        read_idx(tmp_path / "header")


def test_idx_corrupt_gzip(tmp_path):
    write_idx_dir(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(InputError, match="train-images"):
        load_images("mnist", "train", source="idx", data_dir=tmp_path)


def test_idx_count_mismatch(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(InputError, match="12 images but .* 3 labels"):
        load_images("mnist", "train", source="idx", data_dir=tmp_path)


def test_idx_labels_out_of_range(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(5, 10, np.uint8))))
    with pytest.raises(InputError, match=r"labels must lie in \[0, 10\)"):
        load_images("mnist", "test", source="idx", data_dir=tmp_path)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_images("mnist", source="idx", data_dir=tmp_path / "nope")
    with pytest.raises(InputError, match="no IDX files"):
        load_images("mnist", source="idx", data_dir=tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "cifar10"}, "unknown dataset 'cifar10'"),
    ({"split": "validation"}, "unknown split"),
    ({"source": "web"}, "unknown source"),
    ({"name": "fashion_mnist", "source": "embedded"}, "only mnist is embedded"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        load_images(**kwargs)


def test_embedded_is_balanced_real_mnist():
    train, test = load_images("mnist", "train", "embedded"), load_images("mnist", "test", "embedded")
    assert train.images.shape == (4000, 28, 28, 1) and test.images.shape == (1000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(test.labels), [100] * 10)
    np.testing.assert_array_equal(np.bincount(train.labels), [400] * 10)
    # Real digits: mostly black background, a bright stroke, and no test image repeated in train.
    assert 0.7 < (train.images == 0).mean() < 0.9 and train.images.max() == 255
    train_rows = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in train_rows for row in test.images)


def test_auto_prefers_idx_then_embedded(tmp_path):
    write_idx_dir(tmp_path)
    assert load_images("mnist", "train", "auto", data_dir=tmp_path).source.startswith("idx:")
    assert load_images("mnist", "train", "auto").source.startswith(("embedded", "idx", "tfds"))


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        data = load_images("mnist", "train", source="tfds")
    assert data.images.shape == (7, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.labels.shape == (7,) and data.source.startswith("tfds")


def test_tfds_offline_fails_fast_naming_other_sources(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    # An address from TEST-NET-1 (RFC 5737) never answers, whether or not this machine is online.
    monkeypatch.setattr(images, "NETWORK_PROBE", ("192.0.2.1", 443))
    start = time.monotonic()
    with pytest.raises(InputError) as error:
        load_images("mnist", "train", source="tfds", data_dir=tmp_path)
    assert time.monotonic() - start < 15
    assert "--source embedded" in str(error.value) and "--source idx" in str(error.value)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_found_by_itself():
    test = load_images("fashion_mnist", "test")
    assert test.source == f"idx:{DEBIAN_FASHION}" and test.images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
