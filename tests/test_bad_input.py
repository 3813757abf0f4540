"""Bad input not covered beside its module: wrong image shape or dtype, empty splits, IDX of the wrong shape."""
import gzip

import numpy as np
import pytest

from jaxhw.data.images import ImageDataset, load_images
from jaxhw.errors import InputError

NAMES = tuple(str(d) for d in range(10))


@pytest.mark.parametrize("images, fragment", [
    (np.zeros((4, 28, 28, 1), np.float32), "got float32 of shape (4, 28, 28, 1)"),
    (np.zeros((4, 28, 28), np.uint8), "got uint8 of shape (4, 28, 28)"),
    ([[0]], "got list"),
])
def test_images_of_wrong_shape_or_dtype(images, fragment):
    with pytest.raises(InputError, match="images must be a uint8 array") as error:
        ImageDataset(images, np.zeros(4, np.int32), NAMES, "test")
    assert fragment in str(error.value)


def test_labels_of_wrong_kind_or_count():
    images = np.zeros((4, 28, 28, 1), np.uint8)
    with pytest.raises(InputError, match="labels must be a 1-D integer array"):
        ImageDataset(images, np.zeros(4, np.float32), NAMES, "test")
    with pytest.raises(InputError, match="4 images but 3 labels"):
        ImageDataset(images, np.zeros(3, np.int32), NAMES, "test")
    with pytest.raises(InputError, match=r"labels must lie in \[0, 10\), got values from -1 to 0"):
        ImageDataset(images, np.array([0, 0, -1, 0], np.int32), NAMES, "test")


def test_empty_split():
    with pytest.raises(InputError, match="the split is empty"):
        ImageDataset(np.zeros((0, 28, 28, 1), np.uint8), np.zeros(0, np.int32), NAMES, "test")


def test_idx_images_of_the_wrong_size(tmp_path):
    def idx(array):
        return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()

    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(np.zeros((3, 32, 32), np.uint8))))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(np.zeros(3, np.uint8))))
    with pytest.raises(InputError, match=r"expected images of shape \(N, 28, 28\), got \(3, 32, 32\)"):
        load_images("mnist", "test", source="idx", data_dir=tmp_path)
