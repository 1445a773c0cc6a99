"""A user's own PyTorch module into Lumen: ``my_net.py:Net`` traced with ``torch.fx`` into a spec.

The file is the user's code and is run as such (imported, its class called with no arguments); its weights come
only through ``engine.io.runs.read_state_dict`` (safetensors, or ``torch.load(weights_only=True)``). Every call of
the traced graph must be a Lumen layer (``MODULES``: ``nn.Conv2d`` → ``conv2d``, ...; a few functions and
methods: ``torch.flatten``, ``F.relu``, ``+``, ``torch.cat``, ``view``/``reshape``/``flatten``, read from the
shapes ``ShapeProp`` records on the example input) for the spec to be Lumen's own; node ids are the module's
qualified names, so the state dict is the module's as it is. When a call does not map (or tracing fails), the
module is exported to ONNX by torch and opened as an ONNX model (``engine.io.onnx_import``): ops no layer expresses
become opaque nodes, named by op and count.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import operator
import re
import sys
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from lumen.engine.errors import DataError, LumenError
from lumen.engine.io.export import mark_buffers
from lumen.engine.io.onnx_import import OpenedModel, open_onnx
from lumen.engine.spec.model_spec import ModelSpec, Node
from lumen.engine.untrusted import printable, shown


class _Unmapped(Exception):
    pass


def load_user_module(target: str) -> nn.Module:
    """``path/to/file.py:ClassName`` imported (the user's code runs) and called with no arguments."""
    file, _, class_name = target.rpartition(":")
    path = Path(file)
    if not file or not class_name or path.suffix != ".py":
        raise DataError(f"{printable(target)}: expected FILE.py:ClassName")
    if not path.is_file():
        raise DataError(f"{shown(path)}: no such file")
    name = f"lumen_user_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DataError(f"{shown(path)} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        cls = getattr(module, class_name, None)
        if cls is None:
            raise DataError(f"{shown(path.name)} defines no {printable(class_name)}")
        net = cls()
    except LumenError:
        raise
    except Exception as exc:  # the user's code failed: say where, in one line
        raise DataError(f"{shown(path.name)}: {type(exc).__name__}: {printable(str(exc))[:200]}") from None
    finally:
        sys.modules.pop(name, None)
    if not isinstance(net, nn.Module):
        raise DataError(f"{printable(class_name)} in {shown(path.name)} is not an nn.Module")
    return net


def open_module(net: nn.Module, input_shape: tuple[int, ...], name: str) -> OpenedModel:
    """The module as a Lumen spec with its weights: traced when every call maps, else through ONNX."""
    net = net.eval()
    try:
        return trace_to_spec(net, input_shape, name)
    except _Unmapped as exc:
        reason = str(exc)
    opened = _through_onnx(net, input_shape, name)
    note = f"Traced calls that are no Lumen layer ({reason}); opened through ONNX."
    spec = ModelSpec(opened.spec.name, opened.spec.nodes, opened.spec.edges, f"{note} {opened.spec.description}"[:2000])
    return OpenedModel(spec, opened.weights, opened.opaque, opened.source)


def trace_to_spec(net: nn.Module, input_shape: tuple[int, ...], name: str) -> OpenedModel:
    try:
        graph_module = fx.symbolic_trace(net)
        # ShapeProp prints the traceback of a forward that fails before it raises: the reason is said here instead
        with contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(graph_module).propagate(torch.zeros(2, *input_shape))
    except Exception as exc:  # not traceable: data-dependent control flow and the like
        raise _Unmapped(f"torch.fx cannot trace it: {type(exc).__name__}") from None
    modules = dict(graph_module.named_modules())
    nodes: list[Node] = [Node("input", "input", {"shape": list(input_shape)})]
    edges: list[tuple[str, str]] = []
    made: dict[fx.Node, str] = {}
    weights: dict[str, torch.Tensor] = {}
    used: Counter[str] = Counter()
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            made[node] = "input"
            continue
        if node.op == "output":
            break
        shape = _shape(node)
        if shape is None:  # x.size(0) and the like: read by a reshape through its recorded shape
            continue
        sources = [a for a in node.all_input_nodes if a in made]
        if node.op == "call_module":
            module = modules[node.target]
            layer_type, params = _module_layer(module)
            node_id = lumen_id(str(node.target))
            weights.update({f"{node_id}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
        else:
            layer_type, params = _call_layer(node, shape, sources)
            used[layer_type] += 1
            node_id = re.sub(r"[^A-Za-z0-9_]", "_", node.name)
        if layer_type == "":  # the identity: the same tensor
            made[node] = made[sources[0]]
            continue
        nodes.append(Node(node_id, layer_type, params))
        edges += [(made[s], node_id) for s in sources]
        made[node] = node_id
    spec = ModelSpec(
        name, tuple(nodes), tuple(edges), f"Traced from a PyTorch module with torch.fx: {len(nodes) - 1} Lumen layers"
    )
    try:
        spec = ModelSpec.from_dict(spec.to_dict())
    except LumenError as exc:
        raise _Unmapped(str(exc)) from None
    return OpenedModel(spec, weights, {}, "")


def lumen_id(name: str) -> str:
    """A module's qualified name as a node id: ``nn.Sequential``'s children are ``0``, ``1``, ... and an id may not
    start with a digit, so those get an ``m`` (``0`` → ``m0``, ``0.conv`` → ``m0.conv``); the state dict's keys follow
    (``lumen_id("0.weight")`` is the traced model's key for ``0.weight``)."""
    return f"m{name}" if name[:1].isdigit() else name


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(d) for d in meta.shape[1:])


def _module_layer(module: nn.Module) -> tuple[str, dict[str, Any]]:
    mapper = MODULES.get(type(module))
    if mapper is None:
        raise _Unmapped(f"{type(module).__name__} is no Lumen layer")
    return mapper(module)


def _pair(value: Any) -> Any:
    value = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return value[0] if value[0] == value[1] else list(value)


def _conv(module: nn.Module) -> tuple[str, dict[str, Any]]:
    assert isinstance(module, nn.Conv1d | nn.Conv2d)
    if module.padding_mode != "zeros":
        raise _Unmapped(f"a convolution padded with {module.padding_mode}")
    one = isinstance(module, nn.Conv1d)
    padding = (
        module.padding if isinstance(module.padding, str) else (module.padding[0] if one else _pair(module.padding))
    )
    return ("conv1d" if one else "conv2d"), {
        "out_channels": module.out_channels,
        "kernel_size": module.kernel_size[0] if one else _pair(module.kernel_size),
        "stride": module.stride[0] if one else _pair(module.stride),
        "padding": padding,
        "dilation": module.dilation[0] if one else _pair(module.dilation),
        "groups": module.groups,
        "bias": module.bias is not None,
    }


def _pool(kind: str) -> Callable[[nn.Module], tuple[str, dict[str, Any]]]:
    def mapper(module: Any) -> tuple[str, dict[str, Any]]:
        if getattr(module, "return_indices", False) or getattr(module, "dilation", 1) not in (1, (1, 1)):
            raise _Unmapped("a pool with indices or dilation")
        if kind.startswith("avg") and (not module.count_include_pad or module.divisor_override is not None):
            raise _Unmapped("an average pool that leaves out its padding")
        one = kind.endswith("1d")
        take = (lambda v: v[0] if isinstance(v, tuple) else v) if one else _pair
        return kind, {
            "kernel_size": take(module.kernel_size),
            "stride": take(module.stride) if module.stride is not None else None,
            "padding": take(module.padding),
            "ceil_mode": bool(module.ceil_mode),
        }

    return mapper


def _batchnorm(module: Any) -> tuple[str, dict[str, Any]]:
    if not module.track_running_stats or module.momentum is None:
        raise _Unmapped("a batch norm without running statistics")
    kind = "batchnorm2d" if isinstance(module, nn.BatchNorm2d) else "batchnorm1d"
    return kind, {"eps": module.eps, "momentum": module.momentum, "affine": module.affine}


def _flatten_module(module: Any) -> tuple[str, dict[str, Any]]:
    if module.start_dim != 1 or module.end_dim != -1:
        raise _Unmapped("a flatten of some dimensions only")
    return "flatten", {}


def _softmax_module(module: Any) -> tuple[str, dict[str, Any]]:
    if module.dim is None or module.dim == 0:
        raise _Unmapped("a softmax over the batch")
    return "softmax", {"dim": module.dim - 1 if module.dim > 0 else module.dim}


def _simple(kind: str, **read: str) -> Callable[[nn.Module], tuple[str, dict[str, Any]]]:
    return lambda module: (kind, {param: getattr(module, attr) for param, attr in read.items()})


MODULES: dict[type, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.ConvTranspose2d: lambda m: (
        "conv_transpose2d",
        {
            "out_channels": m.out_channels,
            "kernel_size": _pair(m.kernel_size),
            "stride": _pair(m.stride),
            "padding": _pair(m.padding),
            "output_padding": _pair(m.output_padding),
            "bias": m.bias is not None,
        },
    ),
    nn.Linear: lambda m: ("linear", {"out_features": m.out_features, "bias": m.bias is not None}),
    nn.ReLU: _simple("relu"),
    nn.ReLU6: _simple("relu6"),
    nn.LeakyReLU: _simple("leaky_relu", negative_slope="negative_slope"),
    nn.Sigmoid: _simple("sigmoid"),
    nn.Tanh: _simple("tanh"),
    nn.GELU: lambda m: ("gelu", {}) if m.approximate == "none" else _refuse("a tanh-approximated GELU"),
    nn.Softmax: _softmax_module,
    nn.MaxPool1d: _pool("maxpool1d"),
    nn.MaxPool2d: _pool("maxpool2d"),
    nn.AvgPool1d: _pool("avgpool1d"),
    nn.AvgPool2d: _pool("avgpool2d"),
    nn.AdaptiveAvgPool2d: lambda m: ("adaptive_avgpool2d", {"output_size": _pair(m.output_size)}),
    nn.AdaptiveMaxPool2d: lambda m: ("adaptive_maxpool2d", {"output_size": _pair(m.output_size)}),
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.LocalResponseNorm: _simple("lrn", size="size", alpha="alpha", beta="beta", k="k"),
    nn.Dropout: _simple("dropout", p="p"),
    nn.Flatten: _flatten_module,
    nn.Identity: lambda m: ("", {}),
}


def _refuse(reason: str) -> tuple[str, dict[str, Any]]:
    raise _Unmapped(reason)


_ACTIVATIONS = {torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", torch.tanh: "tanh", F.relu6: "relu6"}
_METHOD_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}


def _call_layer(node: fx.Node, shape: tuple[int, ...], sources: list[fx.Node]) -> tuple[str, dict[str, Any]]:
    """A function or method call as a Lumen layer, read from what it does to shapes."""
    target = node.target
    if node.op == "call_function" and target in _ACTIVATIONS and len(sources) == 1:
        return _ACTIVATIONS[target], {}
    if node.op == "call_method" and target in _METHOD_ACTIVATIONS and len(sources) == 1:
        return _METHOD_ACTIVATIONS[str(target)], {}
    if target in (operator.add, torch.add) or (node.op == "call_method" and target == "add"):
        shapes = [_shape(s) for s in sources]
        if len(sources) == 2 and len(node.args) == 2 and shapes[0] == shapes[1] == shape and not node.kwargs:
            return "add", {}
        raise _Unmapped("an addition that is not of two tensors of one shape")
    if target is torch.cat:
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(dim, int) or dim == 0:
            raise _Unmapped("a concatenation along the batch")
        rank = len(shape) + 1
        return "concat", {"dim": dim % rank - 1}
    if target in (torch.flatten, "flatten", "view", "reshape", F.adaptive_avg_pool2d) or (
        node.op == "call_method" and target in ("flatten", "view", "reshape")
    ):
        before = _shape(sources[0]) if len(sources) == 1 else None
        if before is None:
            raise _Unmapped(f"{target} of several tensors")
        if target is F.adaptive_avg_pool2d:
            if len(shape) == 3 and shape[1:] == (1, 1):
                return "adaptive_avgpool2d", {"output_size": 1}
            raise _Unmapped("an adaptive pool to a size other than 1")
        if math.prod(before) != math.prod(shape):
            raise _Unmapped("a reshape that mixes samples of the batch")
        if shape == before:
            return "", {}
        return ("flatten", {}) if len(shape) == 1 else ("reshape", {"shape": list(shape)})
    what = getattr(target, "__name__", str(target))
    raise _Unmapped(f"{printable(what)} is no Lumen layer")


def _through_onnx(net: nn.Module, input_shape: tuple[int, ...], name: str) -> OpenedModel:
    with tempfile.TemporaryDirectory(prefix="lumen-open-") as folder:
        path = Path(folder) / f"{name}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    net,
                    (torch.zeros(2, *input_shape),),
                    str(path),
                    dynamo=False,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                    do_constant_folding=False,
                )
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise LumenError(
                    f"the module cannot be exported to ONNX either: {type(exc).__name__}: {first}"
                ) from None
        mark_buffers(path, [name for name, _ in net.named_buffers()])
        return open_onnx(path, input_shape)
