"""model.train() / model.eval() for BatchNorm and Dropout: the explicit ``train`` flag against PyTorch."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from jaxhw.models.layers import TorchBatchNorm

torch = pytest.importorskip("torch")
from parity import images_from_torch, images_to_torch  # noqa: E402


def run_batchnorm(layer, variables, x, train):
    if train:
        return layer.apply(variables, x, train=True, mutable=["batch_stats"])
    return layer.apply(variables, x, train=False), {"batch_stats": variables["batch_stats"]}


@pytest.mark.parametrize("torch_cls, shape", [(torch.nn.BatchNorm2d, (6, 5, 5, 3)), (torch.nn.BatchNorm1d, (7, 3))])
def test_batchnorm_train_steps_running_stats_and_eval_match_torch(torch_cls, shape):
    rng = np.random.default_rng(0)
    reference = torch_cls(3)  # momentum 0.1, eps 1e-5, unbiased running variance
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-0.5, 0.5)
    layer = TorchBatchNorm()
    variables = layer.init(jax.random.key(0), np.zeros(shape, np.float32))
    variables = {"params": {"scale": reference.weight.detach().numpy(), "bias": reference.bias.detach().numpy()},
                 "batch_stats": variables["batch_stats"]}

    to_torch, from_torch = images_to_torch, images_from_torch  # channels-last <-> channels-first

    reference.train()
    for _ in range(5):  # N train-mode steps on the same batches
        x = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
        ours, updates = run_batchnorm(layer, variables, x, train=True)
        variables = {"params": variables["params"], **updates}
        np.testing.assert_allclose(ours, from_torch(reference(to_torch(x))), atol=1e-5)
    np.testing.assert_allclose(variables["batch_stats"]["mean"], reference.running_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(variables["batch_stats"]["var"], reference.running_var.numpy(), atol=1e-5)

    reference.eval()
    x = rng.normal(size=shape).astype(np.float32)
    ours, after = run_batchnorm(layer, variables, x, train=False)
    np.testing.assert_allclose(ours, from_torch(reference(to_torch(x))), atol=1e-5)
    jax.tree_util.tree_map(np.testing.assert_array_equal, after["batch_stats"], variables["batch_stats"])


def test_flax_batchnorm_keeps_the_biased_variance_which_is_why_jaxhw_has_its_own():
    x = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)  # small batch: n/(n-1) = 4/3
    flax_bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    _, flax_stats = flax_bn.apply(flax_bn.init(jax.random.key(0), x, use_running_average=False), x,
                                  use_running_average=False, mutable=["batch_stats"])
    reference = torch.nn.BatchNorm1d(2)
    reference(torch.tensor(x))
    biased = x.var(axis=0)  # numpy's default ddof=0
    np.testing.assert_allclose(flax_stats["batch_stats"]["var"], 0.9 + 0.1 * biased, rtol=1e-5)
    np.testing.assert_allclose(reference.running_var.numpy(), 0.9 + 0.1 * biased * 4 / 3, rtol=1e-5)


def test_dropout_identity_in_eval_and_inverted_scaling_in_train():
    p, n = 0.25, 200_000
    x = np.random.default_rng(2).uniform(1.0, 2.0, size=(n,)).astype(np.float32)
    layer = nn.Dropout(rate=p)
    np.testing.assert_array_equal(layer.apply({}, x, deterministic=True), x)
    y = np.asarray(layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)}))
    kept = y != 0
    # Kept entries are scaled by 1/(1-p), exactly as torch.nn.Dropout does.
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    # The kept fraction is Binomial(n, 1-p)/n: within 5 standard deviations of 1-p.
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    reference = torch.nn.Dropout(p)
    reference.train()
    theirs = reference(torch.tensor(x)).numpy()
    torch_kept = theirs != 0
    np.testing.assert_allclose(theirs[torch_kept], x[torch_kept] / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - torch_kept.mean()) < 7 * sigma
    reference.eval()
    np.testing.assert_array_equal(reference(torch.tensor(x)).numpy(), x)
