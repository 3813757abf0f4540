"""PyTorch state <-> Flax variables: a torch module's weights into a jaxhw model's variables and back.

``variables_from_torch(torch_module, model, sample_input)`` walks the torch module's stateful layers in
registration order and the Flax model's layers in the order its ``__call__`` first uses them (found by
tracing ``model.init`` on the sample input's shape, nothing computed), and converts each pair: a jaxhw
model matches a torch module when it uses the same layers in the same order.
``load_into_torch(variables, torch_module, model, sample_input)`` goes back.
Layouts: Linear weights are transposed ((out, in) -> (in, out)); Conv kernels go OIHW -> HWIO (and
OIW -> WIO for Conv1d); BatchNorm weight/bias/running_mean/running_var map to scale/bias/mean/var;
LSTM/GRU weight_ih_l{k}[_reverse] and weight_hh_... are transposed into w_ih/w_hh of the matching
jaxhw.models.recurrent cell, biases b_ih/b_hh kept (one Flax layer per layer and direction).
torch is imported on the first conversion, so a module can import this one where torch may never be needed.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxhw.common import ModuleOnFirstUse

torch = ModuleOnFirstUse("torch")

Layer = tuple[dict, dict]  # (params of one Flax layer, its batch_stats or {})


class Converter(NamedTuple):
    """How one torch layer type maps to one or more consecutive Flax layers."""

    num_flax_layers: Callable[[torch.nn.Module], int]
    to_flax: Callable[[torch.nn.Module], list[Layer]]
    to_torch: Callable[[torch.nn.Module, list[Layer]], None]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _copy(tensor: torch.Tensor, value, what: str) -> None:
    value = torch.as_tensor(np.array(value), dtype=tensor.dtype)
    if tuple(value.shape) != tuple(tensor.shape):
        raise ValueError(f"{what}: torch expects shape {tuple(tensor.shape)}, the Flax value has {tuple(value.shape)}")
    with torch.no_grad():
        tensor.copy_(value)


def _weight_to_flax(weight: torch.Tensor) -> np.ndarray:
    """Linear (out, in) -> (in, out); ConvNd (out, in, *spatial) -> (*spatial, in, out)."""
    w = _numpy(weight)
    return w.T if w.ndim == 2 else np.transpose(w, (*range(2, w.ndim), 1, 0))


def _weight_to_torch(kernel: np.ndarray) -> np.ndarray:
    k = np.asarray(kernel)
    return k.T if k.ndim == 2 else np.transpose(k, (k.ndim - 1, k.ndim - 2, *range(k.ndim - 2)))


def _affine_to_flax(module) -> list[Layer]:
    params = {"kernel": _weight_to_flax(module.weight)}
    if module.bias is not None:
        params["bias"] = _numpy(module.bias)
    return [(params, {})]


def _affine_to_torch(module, layers: list[Layer]) -> None:
    params = layers[0][0]
    _copy(module.weight, _weight_to_torch(params["kernel"]), f"{type(module).__name__}.weight")
    if module.bias is not None:
        _copy(module.bias, params["bias"], f"{type(module).__name__}.bias")


def _batchnorm_to_flax(module) -> list[Layer]:
    params = {"scale": _numpy(module.weight), "bias": _numpy(module.bias)} if module.affine else {}
    stats = ({"mean": _numpy(module.running_mean), "var": _numpy(module.running_var)}
             if module.track_running_stats else {})
    return [(params, stats)]


def _batchnorm_to_torch(module, layers: list[Layer]) -> None:
    params, stats = layers[0]
    if module.affine:
        _copy(module.weight, params["scale"], "BatchNorm.weight")
        _copy(module.bias, params["bias"], "BatchNorm.bias")
    if module.track_running_stats:
        _copy(module.running_mean, stats["mean"], "BatchNorm.running_mean")
        _copy(module.running_var, stats["var"], "BatchNorm.running_var")


_one = lambda module: 1  # noqa: E731
_affine = Converter(_one, _affine_to_flax, _affine_to_torch)
_batchnorm = Converter(_one, _batchnorm_to_flax, _batchnorm_to_torch)


def _recurrent_suffixes(module) -> list[str]:
    """torch's parameter-name suffixes of an LSTM/GRU, layer by layer, forward then reverse: 'l0', 'l0_reverse'."""
    if getattr(module, "proj_size", 0):
        raise ValueError(f"{type(module).__name__} with proj_size={module.proj_size} has no jaxhw counterpart")
    directions = ("", "_reverse") if module.bidirectional else ("",)
    return [f"l{layer}{direction}" for layer in range(module.num_layers) for direction in directions]


def _recurrent_to_flax(module) -> list[Layer]:
    """LSTM/GRU: per layer-direction, weight_ih (G*H, F) -> w_ih (F, G*H), weight_hh -> w_hh, biases as they are."""
    layers = []
    for suffix in _recurrent_suffixes(module):
        params = {"w_ih": _numpy(getattr(module, f"weight_ih_{suffix}")).T,
                  "w_hh": _numpy(getattr(module, f"weight_hh_{suffix}")).T}
        if module.bias:
            params["b_ih"] = _numpy(getattr(module, f"bias_ih_{suffix}"))
            params["b_hh"] = _numpy(getattr(module, f"bias_hh_{suffix}"))
        layers.append((params, {}))
    return layers


def _recurrent_to_torch(module, layers: list[Layer]) -> None:
    name = type(module).__name__
    for suffix, (params, _) in zip(_recurrent_suffixes(module), layers):
        for kind in ("ih", "hh"):
            _copy(getattr(module, f"weight_{kind}_{suffix}"), np.asarray(params[f"w_{kind}"]).T,
                  f"{name}.weight_{kind}_{suffix}")
            if module.bias:
                _copy(getattr(module, f"bias_{kind}_{suffix}"), params[f"b_{kind}"], f"{name}.bias_{kind}_{suffix}")


# A torch LSTM/GRU with L layers and D directions is L*D Flax layers (jaxhw.models.recurrent cells).
_recurrent = Converter(lambda module: len(_recurrent_suffixes(module)), _recurrent_to_flax, _recurrent_to_torch)
# Each torch.nn layer class by name, so that torch loads only when a conversion runs.
_CONVERTER_OF_LAYER = {"Linear": _affine, "Conv1d": _affine, "Conv2d": _affine, "BatchNorm1d": _batchnorm,
                       "BatchNorm2d": _batchnorm, "LSTM": _recurrent, "GRU": _recurrent}


@functools.cache
def converters() -> dict[type, Converter]:
    """{torch.nn layer class: its converter}."""
    return {getattr(torch.nn, name): converter for name, converter in _CONVERTER_OF_LAYER.items()}


def torch_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module, Converter]]:
    """The torch layers that hold state, in registration order, with their converters."""
    layers = []
    for name, sub in module.named_modules():
        converter = converters().get(type(sub))
        if converter is not None:
            layers.append((name or type(sub).__name__, sub, converter))
        elif not list(sub.children()) and (list(sub.parameters(recurse=False)) or list(sub.buffers(recurse=False))):
            raise TypeError(f"torch layer {name!r} of type {type(sub).__name__} has no converter; "
                            f"known: {', '.join(_CONVERTER_OF_LAYER)}")
    return layers


def flax_layers(model: Any, sample_input) -> tuple[list[tuple[str, ...]], dict]:
    """The Flax model's layer paths in first-use order, and the shapes of its variables.

    A layer is a module that owns arrays in params or batch_stats. The order comes from intercepting
    module calls while ``jax.eval_shape`` traces ``model.init`` (dict key order is not reliable: pytree
    operations sort it).
    """
    import flax.linen as nn

    order: list[tuple[str, ...]] = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.path not in order:
            order.append(tuple(context.module.path))
        return next_fun(*args, **kwargs)

    sample = jax.ShapeDtypeStruct(np.shape(sample_input), np.asarray(sample_input).dtype)
    with nn.intercept_methods(record):
        like = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), sample)
    owners = set(_layer_paths(like.get("params", {}))) | set(_layer_paths(like.get("batch_stats", {})))
    paths = [path for path in order if path in owners]
    missing = owners - set(paths)
    if missing:
        raise ValueError(f"could not order Flax layers {sorted('/'.join(p) for p in missing)}")
    return paths, like


def _layer_paths(tree, prefix=()) -> list[tuple[str, ...]]:
    if tree and all(not isinstance(v, dict) for v in tree.values()):
        return [prefix]
    return [p for key, value in tree.items() if isinstance(value, dict) for p in _layer_paths(value, prefix + (key,))]


def _get(tree: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        tree = tree.get(key, {}) if isinstance(tree, dict) else {}
    return dict(tree)


def _set(tree: dict, path: tuple[str, ...], value: dict) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _pair_layers(module: torch.nn.Module, flax_paths: list[tuple[str, ...]]):
    """Yield (torch name, torch module, converter, flax paths) pairs, checking the counts match."""
    torch_side = torch_layers(module)
    needed = sum(c.num_flax_layers(m) for _, m, c in torch_side)
    if needed != len(flax_paths):
        raise ValueError(f"the torch module has {len(torch_side)} stateful layers needing {needed} Flax layers, "
                         f"the Flax model has {len(flax_paths)}: "
                         f"torch {[n for n, _, _ in torch_side]} vs flax {['/'.join(p) for p in flax_paths]}")
    position = 0
    for name, sub, converter in torch_side:
        count = converter.num_flax_layers(sub)
        yield name, sub, converter, flax_paths[position:position + count]
        position += count


def variables_from_torch(module: torch.nn.Module, model: Any, sample_input) -> dict:
    """The Flax variables (params, and batch_stats if any) of ``model`` holding the torch module's state.

    ``sample_input`` is one input batch for ``model`` (only its shape and dtype are used); every shape is
    checked against the model's.
    """
    if isinstance(model, dict):
        raise TypeError("variables_from_torch takes (torch_module, flax_model, sample_input): the Flax layer "
                        "order comes from tracing the model, not from a variables dict")
    paths, like = flax_layers(model, sample_input)
    params: dict = {}
    stats: dict = {}
    for name, sub, converter, layer_paths in _pair_layers(module, paths):
        for path, (layer_params, layer_stats) in zip(layer_paths, converter.to_flax(sub)):
            _check_shapes(name, path, layer_params, _get(like.get("params", {}), path))
            _check_shapes(name, path, layer_stats, _get(like.get("batch_stats", {}), path))
            if layer_params:
                _set(params, path, layer_params)
            if layer_stats:
                _set(stats, path, layer_stats)
    variables = {"params": params}
    if stats:
        variables["batch_stats"] = stats
    return jax.tree_util.tree_map(np.asarray, variables)


def _check_shapes(name: str, path, ours: dict, expected: dict) -> None:
    for key, value in ours.items():
        if key not in expected:
            raise ValueError(f"torch layer {name!r} gives {key!r} but Flax layer {'/'.join(path)} has only "
                             f"{sorted(expected)}")
        if tuple(np.shape(value)) != tuple(np.shape(expected[key])):
            raise ValueError(f"torch layer {name!r} -> {'/'.join(path)}/{key}: shape {np.shape(value)} "
                             f"but the Flax model expects {np.shape(expected[key])}")


def load_into_torch(variables: dict, module: torch.nn.Module, model: Any, sample_input) -> torch.nn.Module:
    """Copy the Flax variables of ``model`` into the matching torch module in place (and return it)."""
    paths, _ = flax_layers(model, sample_input)
    host = jax.tree_util.tree_map(np.asarray, dict(variables))
    for _, sub, converter, layer_paths in _pair_layers(module, paths):
        converter.to_torch(sub, [(_get(host.get("params", {}), p), _get(host.get("batch_stats", {}), p))
                                 for p in layer_paths])
    return module
