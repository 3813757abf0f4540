"""The DataLoader counterpart against torch.utils.data.DataLoader's documented semantics."""
import jax
import numpy as np
import pytest

from jaxhw.data.loader import DataLoader, epoch_indices, num_batches
from jaxhw.errors import InputError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (12, 4, False), (5, 8, False)])
def test_batch_count_and_sizes_match_torch(n, batch_size, drop_last):
    data = np.arange(n)
    ours = DataLoader({"x": data}, batch_size=batch_size, shuffle=True, seed=1, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(torch.arange(n), batch_size=batch_size, shuffle=True, drop_last=drop_last)
    assert len(ours) == len(theirs) == num_batches(n, batch_size, drop_last)
    assert [len(b["x"]) for b in ours] == [len(b) for b in theirs]


def test_every_sample_once_and_reshuffled_each_epoch():
    loader = DataLoader({"x": np.arange(100), "y": np.arange(100) * 2}, batch_size=7, shuffle=True, seed=3)
    epochs = [np.concatenate([b["x"] for b in loader]) for _ in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(100))
    assert not np.array_equal(epochs[0], epochs[1])
    batch = next(iter(loader))
    np.testing.assert_array_equal(batch["y"], batch["x"] * 2)  # arrays stay aligned


def test_reproducible_from_seed_and_unshuffled_order():
    first = [b["x"] for b in DataLoader({"x": np.arange(20)}, batch_size=6, shuffle=True, seed=5)]
    again = [b["x"] for b in DataLoader({"x": np.arange(20)}, batch_size=6, shuffle=True, seed=5)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    plain = np.concatenate([b["x"] for b in DataLoader({"x": np.arange(20)}, batch_size=6)])
    np.testing.assert_array_equal(plain, np.arange(20))


def test_drop_last_drops_only_the_partial_batch():
    kept = np.concatenate([b["x"] for b in DataLoader({"x": np.arange(10)}, batch_size=4, shuffle=True,
                                                        drop_last=True)])
    assert len(kept) == 8 and len(set(kept)) == 8


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (12, 4, False)])
def test_on_device_epoch_indices(n, batch_size, drop_last):
    batches, rest = jax.jit(epoch_indices, static_argnums=(1, 2, 3, 4))(jax.random.key(0), n, batch_size, True,
                                                                        drop_last)
    assert batches.shape == (n // batch_size, batch_size)
    seen = np.concatenate([np.asarray(batches).ravel()] + ([np.asarray(rest)] if rest is not None else []))
    expected = (n // batch_size) * batch_size if drop_last else n
    assert len(seen) == expected and len(set(seen.tolist())) == expected
    other, _ = epoch_indices(jax.random.key(1), n, batch_size, True, drop_last)
    assert not np.array_equal(np.asarray(batches), np.asarray(other))


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "positive integer"),
    ({"batch_size": 20, "drop_last": True}, "larger than the data set"),
])
def test_bad_batching(kwargs, message):
    with pytest.raises(InputError, match=message):
        DataLoader({"x": np.arange(10)}, **kwargs)


def test_empty_and_ragged_inputs():
    with pytest.raises(InputError, match="empty"):
        DataLoader({"x": np.arange(0)}, batch_size=2)
    with pytest.raises(InputError, match="same length"):
        DataLoader({"x": np.arange(3), "y": np.arange(4)}, batch_size=2)
