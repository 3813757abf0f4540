"""The CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Dropout, Linear) against its PyTorch twin."""
import jax
import numpy as np
import pytest

from jaxhw.losses import cross_entropy
from jaxhw.models.cnn import CNN
from jaxhw.models.layers import max_pool_2x2

torch = pytest.importorskip("torch")
from parity import images_to_torch, torch_grads_as_flax  # noqa: E402

from jaxhw.torch_bridge import twins  # noqa: E402
from jaxhw.torch_bridge.convert import load_into_torch, variables_from_torch  # noqa: E402

SAMPLE = np.zeros((1, 28, 28, 1), np.uint8)
tn = torch.nn


def torch_cnn(dropout=0.25):
    torch.manual_seed(0)
    net = twins.cnn(dropout)
    with torch.no_grad():  # non-trivial BatchNorm state, so eval mode really uses it
        for m in net.modules():
            if isinstance(m, tn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
    return net


def batch(seed=0, n=12):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


@pytest.mark.parametrize("train", [False, True])
def test_forward_loss_and_gradients_agree(train):
    # In train mode dropout is off (p=0) so both sides are deterministic; BatchNorm uses batch statistics.
    net, model = torch_cnn(dropout=0.0 if train else 0.25), CNN(dropout=0.0 if train else 0.25)
    variables = variables_from_torch(net, model, SAMPLE)
    x, y = batch()
    net.train(train)
    torch_logits = net(images_to_torch(x))
    loss = tn.CrossEntropyLoss()(torch_logits, torch.tensor(y).long())
    loss.backward()

    def our_loss(params):
        out = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x.astype(np.float32) / 255,
                          train=train, mutable=["batch_stats"] if train else False)
        logits = out[0] if train else out
        return cross_entropy(logits, y), logits

    (value, logits), grads = jax.value_and_grad(our_loss, has_aux=True)(variables["params"])
    np.testing.assert_allclose(logits, torch_logits.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(value, loss.item(), atol=1e-4)
    theirs = torch_grads_as_flax(net, model, SAMPLE)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), grads, theirs)


def test_eval_logits_agree_and_round_trip_is_exact():
    net, model = torch_cnn(), CNN()
    variables = variables_from_torch(net, model, SAMPLE)
    x, _ = batch(1)
    net.eval()
    np.testing.assert_allclose(model.apply(variables, x.astype(np.float32) / 255, train=False),
                               net(images_to_torch(x)).detach().numpy(), atol=1e-4)
    back = load_into_torch(variables, torch_cnn(), model, SAMPLE)
    for (name, a), b in zip(net.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), name


def test_mismatched_torch_module_is_a_clear_error():
    wrong = tn.Sequential(tn.Conv2d(1, 8, 3, padding=1), tn.BatchNorm2d(8), tn.Linear(8, 10))
    with pytest.raises(ValueError, match="stateful layers"):
        variables_from_torch(wrong, CNN(), SAMPLE)


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window_as_torch_sends_it():
    x = np.random.default_rng(2).normal(size=(2, 6, 4, 3)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0  # a three-way tie in one window
    x[1, 2:4, 2:4, 1] = 0.0  # an all-zero window, as after a ReLU
    d_y = np.random.default_rng(3).normal(size=(2, 3, 2, 3)).astype(np.float32)
    pooled, pull = jax.vjp(max_pool_2x2, x)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)
    expected = torch.nn.functional.max_pool2d(images, 2)
    expected.backward(torch.from_numpy(d_y).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(pooled, expected.detach().permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(pull(d_y)[0], images.grad.permute(0, 2, 3, 1).numpy())
