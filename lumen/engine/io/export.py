"""Models out of Lumen: readable PyTorch source, TorchScript, ONNX, safetensors.

The source export is written from the layer registry, the same data that builds the model: for each node,
its layer type's module class (torch's ``nn.X``, or one of Lumen's own in ``engine/modules``) called with
``layer.kwargs(params, input shapes)`` written as literals. The files of ``engine/modules`` that define the
classes used are copied into the export whole (they import only torch and the standard library), so the
file needs only PyTorch. The result is run once on the meta device to check it rebuilds the same weights.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import io
import json
import math
import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lumen.engine.errors import DataError, LumenError
from lumen.engine.graph import model as graph
from lumen.engine.graph.modes import evaluating
from lumen.engine.io.runs import open_run, save_weights, writing
from lumen.engine.layers import LAYERS
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import fmt
from lumen.engine.untrusted import atomic_write

_PREAMBLE = ["import torch", "from torch import nn"]
_OWN_MODULES = "lumen.engine.modules."  # Lumen's module classes live in engine/modules/*.py


class _NotCode(Exception):
    """A value or module class that this exporter cannot write as Python."""


# ---- Python source ---------------------------------------------------------------------------------


def to_python_source(spec: ModelSpec) -> str:
    """A self-contained PyTorch file defining an ``nn.Module`` whose state dict and outputs match
    ``engine.graph.model.build_model(spec)``'s."""
    shapes = graph.infer_shapes(spec)  # validates the spec; SpecError names a bad node
    order = list(shapes)
    copied = _CopiedFiles()
    init: list[str] = []
    containers: set[str] = set()
    for node in spec.nodes:  # the spec's order, as GraphModel registers them: state-dict keys in the same order
        layer = LAYERS[node.type]
        if layer.arity == 0:  # the input node: the tensor passed in
            continue
        in_shapes = [shapes[s] for s in spec.inputs_of(node.id)]
        try:
            name, arguments = _call(layer.module, layer.kwargs(layer.resolve(node.params), in_shapes), copied)
        except _NotCode as exc:
            raise LumenError(f"{node.id}: cannot be written as Python source ({exc})") from None
        parts = node.id.split(".")
        for depth in range(1, len(parts)):
            container = ".".join(parts[:depth])
            if container not in containers:
                containers.add(container)
                init.append(f"{_access(container)} = nn.ModuleDict()  # holds {container}.*")
        init += _wrapped(_access(node.id), name, arguments)
    names = _variable_names(order)
    forward: list[tuple[str, str | None]] = []
    for node_id in order:
        sources = spec.inputs_of(node_id)
        if LAYERS[spec.node(node_id).type].arity == 0:
            names[node_id] = "x"
            forward.append((f"# {node_id}", fmt(shapes[node_id])))
            continue
        inputs = ", ".join(names[s] for s in sources) if sources else "x"
        forward.append((f"{names[node_id]} = {_access(node_id)}({inputs})", fmt(shapes[node_id])))
    forward.append((f"return {names[spec.output_id]}", None))
    class_name = _class_name(spec.name, copied.names | {"torch", "nn"})
    source = _assemble(spec, class_name, copied, init, forward)
    _self_check(source, class_name, spec)
    return source


def _call(cls: type, kwargs: dict[str, Any], copied: _CopiedFiles) -> tuple[str, list[str]]:
    """(``nn.Conv2d``, [``in_channels=1``, ...]): the class's name in the file and the keyword arguments as
    literals, those equal to the constructor's default left out."""
    if getattr(nn, cls.__name__, None) is cls:
        name = f"nn.{cls.__name__}"
    elif cls.__module__.startswith(_OWN_MODULES):
        name = copied.add(cls)
    else:
        raise _NotCode(
            f"its module class {cls.__module__}.{cls.__qualname__} is neither torch's nor one of engine/modules"
        )
    try:
        defaults = {
            key: p.default
            for key, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    except (TypeError, ValueError):
        defaults = {}
    return name, [
        f"{key}={_literal(value)}"
        for key, value in kwargs.items()
        if not (key in defaults and _same_value(value, defaults[key]))
    ]


def _wrapped(target: str, name: str, arguments: list[str], width: int = 96) -> list[str]:
    """``target = name(arguments)`` in lines of at most ``width`` characters (plus the method's indent) where
    it can, broken between arguments and aligned after the parenthesis."""
    head = f"{target} = {name}("
    lines, current = [], head
    for i, argument in enumerate(arguments):
        end = ")" if i == len(arguments) - 1 else ","
        if current != head and len(current) + 1 + len(argument) + len(end) > width:
            lines.append(current)
            current = " " * len(head) + argument + end
        else:
            current += ("" if current == head else " ") + argument + end
    return [*lines, current if arguments else head + ")"]


def _literal(value: Any) -> str:
    """Python source for a plain value (what layer kwargs hold: numbers, strings, tuples, lists, dicts)."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (tuple, list)):
        items = [_literal(v) for v in value]
        if isinstance(value, list):
            return f"[{', '.join(items)}]"
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if type(value) is dict:
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise _NotCode(f"an argument of type {type(value).__name__}")


def _same_value(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # e.g. tensors: not a default worth leaving out
        return False


class _CopiedFiles:
    """The files of engine/modules an export needs, copied whole: their imports go to the file's header."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[list[str], str]] = {}  # module name -> (import lines, body)
        self.names: set[str] = set()  # every top-level name the copied files define or import

    def add(self, cls: type) -> str:
        module_name = cls.__module__
        if module_name not in self.files:
            module = sys.modules[module_name]
            self.files[module_name] = _split_source(_module_source(module_name))
            self.names |= {name for name in vars(module) if not name.startswith("__")}
        return cls.__name__

    def imports(self) -> list[str]:
        """The preamble's and the copied files' imports: standard library first, then torch, as isort would."""
        lines = list(_PREAMBLE)
        for imports, _ in self.files.values():
            lines += [line for line in imports if line not in lines]
        return sorted(
            lines,
            key=lambda line: (
                line.split()[1].split(".")[0] not in sys.stdlib_module_names,
                line.startswith("from "),
                line,
            ),
        )

    def bodies(self) -> list[str]:
        parts = []
        for module_name, (_, body) in self.files.items():
            path = module_name.replace(".", "/") + ".py"
            title = f"# ---- copied from Lumen's {path} "
            parts += [title + "-" * max(3, 100 - len(title)), "", body, "", ""]
        return parts


def _module_source(module_name: str) -> str:
    """The text of an engine/modules file, found beside its module (a frozen app ships them as data)."""
    module = sys.modules[module_name]
    path = Path(module.__file__ or "").with_name(module_name.rsplit(".", 1)[1] + ".py")
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise _NotCode(f"the source file of {module_name} is not available") from None


def _split_source(text: str) -> tuple[list[str], str]:
    """(import lines, the rest) of a module file: its docstring, then one-line imports, then definitions."""
    if text.startswith('"""'):
        text = text[text.index('"""', 3) + 3 :]
    lines = text.strip("\n").splitlines()
    imports = []
    while lines and (lines[0].startswith(("import ", "from ")) or not lines[0].strip()):
        line = lines.pop(0)
        if line.strip() and line != "from __future__ import annotations":
            imports.append(line)
    return imports, "\n".join(lines).strip("\n")


def _assemble(
    spec: ModelSpec, class_name: str, copied: _CopiedFiles, init: list[str], forward: list[tuple[str, str | None]]
) -> str:
    width = max((len(code) for code, _ in forward if len(code) <= 72), default=0)  # shape comments line up
    body = [f"{code:<{width}}  # {shape}" if shape else code for code, shape in forward]
    body = [line if not line.startswith("#") else line.replace("  # ", "    ", 1) for line in body]
    dtype = graph.example_input(spec).dtype
    make_input = (
        f"torch.rand(2, *{class_name}.input_shape)"
        if dtype.is_floating_point
        else f"torch.zeros(2, *{class_name}.input_shape, dtype={dtype})"
    )
    title = f"{spec.name}: {spec.description}" if spec.description else spec.name
    lines = [
        '"""' + textwrap.fill(title.replace("\\", "/").replace('"' * 3, "'" * 3), 100, break_on_hyphens=False),
        "",
        "Written by Lumen's exporter; needs only PyTorch. The weights of a Lumen run load with strict=True:",
        "",
        "    from safetensors.torch import load_file",
        f"    model = {class_name}()",
        '    model.load_state_dict(load_file("weights.safetensors"))',
        '"""',
        "",
        "from __future__ import annotations",
        "",
        *copied.imports(),
        "",
        "",
        *copied.bodies(),
        f"class {class_name}(nn.Module):",
        f"    input_shape = {tuple(spec.input_shape)!r}  # one sample, without the batch dimension",
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *(f"        {line}" for line in init),
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *(f"        {line}" for line in body),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}().eval()",
        f"    print(model({make_input}).shape)",
    ]
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)) + "\n"


def _self_check(source: str, class_name: str, spec: ModelSpec) -> None:
    """Run the file on the meta device: it must define the same state dict and a forward that runs."""
    namespace: dict[str, Any] = {"__name__": "lumen_export_check"}
    try:
        exec(compile(source, f"<{class_name}>", "exec"), namespace)  # our own generated code
        with torch.device("meta"):
            copy = namespace[class_name]()
            model = graph.GraphModel(spec)
    except Exception as exc:  # a bug in the exporter, reported rather than written out
        raise LumenError(f"the exported source for {spec.name} does not run: {type(exc).__name__}: {exc}") from None
    ours = {k: tuple(v.shape) for k, v in copy.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if ours != theirs:
        raise LumenError(
            f"the exported source for {spec.name} does not rebuild the same weights "
            f"(differs at {sorted(set(ours.items()) ^ set(theirs.items()))[:3]})"
        )
    try:
        copy.eval()(graph.example_input(spec).to("meta"))
    except NameError as exc:
        raise LumenError(f"the exported source for {spec.name} misses a name: {exc}") from None
    except Exception:  # some operators have no meta kernel; the names resolved, which is the point
        pass


def _class_name(name: str, taken: set[str]) -> str:
    parts = re.findall(r"[A-Za-z0-9]+", name)
    camel = "".join(part[0].upper() + part[1:] for part in parts) or "Model"
    if camel[0].isdigit():
        camel = "Model" + camel
    while camel in taken:
        camel += "Model"
    return camel


def _variable_names(order: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for node_id in order:
        name = "x_" + node_id.replace(".", "_")
        while name in names.values():
            name += "_"
        names[node_id] = name
    return names


def _access(path: str) -> str:
    """``self.conv1`` or, inside containers, ``self.layer1["0"]["conv1"]``."""
    top, *rest = path.split(".")
    return f"self.{top}" + "".join(f"[{part!r}]" for part in rest)


# ---- TorchScript and ONNX ---------------------------------------------------------------------------


def to_torchscript(model: graph.GraphModel, path: str | Path) -> None:
    """A traced TorchScript file (``torch.jit.load`` runs it without Lumen), in eval mode."""
    with evaluating(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream, yet still what most tools read
        try:
            traced = torch.jit.trace(model, graph.example_input(model.spec))
            buffer = io.BytesIO()  # torch's own file writer aborts the process on a full disk; Python's raises
            torch.jit.save(traced, buffer)
        except Exception as exc:  # tracing failures come from deep inside torch
            raise LumenError(f"TorchScript export failed: {_first_line(exc)}") from None
    with writing(Path(path)):
        Path(path).write_bytes(buffer.getbuffer())


def to_onnx(model: graph.GraphModel, path: str | Path) -> None:
    """An ONNX file with a variable batch dimension (input "input", output "output"); needs ``onnx``.

    Written as Lumen opens ONNX files back (``engine.io.onnx_import``): batch norm kept as BatchNormalization
    (no folding into the convolution before it, so the weights and their names stay the model's own), and local
    response normalisation as the one ONNX op LRN (torch writes its formula out, a dozen ops) where the window is
    odd, where the two agree on its centre."""
    if importlib.util.find_spec("onnx") is None:
        raise LumenError("ONNX export needs the onnx package: pip install onnx")
    with evaluating(model), torch.no_grad(), warnings.catch_warnings(), _lrn_as_one_op(model):
        warnings.simplefilter("ignore")
        try:
            # The TorchScript-based exporter needs only onnx; the default (dynamo) one also needs onnxscript.
            torch.onnx.export(
                model,
                (graph.example_input(model.spec),),
                str(path),
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                do_constant_folding=False,
            )
        except Exception as exc:  # the same: an error from inside torch
            raise LumenError(f"ONNX export failed: {_first_line(exc)}") from None
    opaque = [name for name, module in model.named_modules() if type(module).__name__ == "OnnxOp"]
    mark_buffers(path, [n for n, _ in model.named_buffers() if n.rpartition(".")[0] in opaque])


BUFFERS_KEY = "lumen.buffers"  # an ONNX file's metadata: the initializers that are buffers, not parameters


def mark_buffers(path: str | Path, names: list[str]) -> None:
    """Name in an exported ONNX file's metadata the initializers that were buffers: ONNX keeps parameters and
    buffers alike as initializers, and an op opened opaque trains the parameters among its constants
    (``engine.io.onnx_import``). Nothing is written when ``names`` is empty."""
    if not names:
        return
    import onnx

    proto = onnx.load_model(str(path))
    proto.metadata_props.add(key=BUFFERS_KEY, value=json.dumps(sorted(names)))
    onnx.save_model(proto, str(path))


class _LRN(torch.autograd.Function):
    """torch's local response norm, written to ONNX as the op LRN."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
        return nn.functional.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g: Any, x: Any, size: int, alpha: float, beta: float, k: float) -> Any:
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


def _lrn_forward(module: nn.LocalResponseNorm, x: torch.Tensor) -> torch.Tensor:
    return _LRN.apply(x, module.size, module.alpha, module.beta, module.k)


@contextlib.contextmanager
def _lrn_as_one_op(model: nn.Module) -> Iterator[None]:
    changed = []
    for module in model.modules():
        if isinstance(module, nn.LocalResponseNorm) and module.size % 2 == 1:
            module.forward = functools.partial(_lrn_forward, module)  # type: ignore[method-assign]
            changed.append(module)
    try:
        yield
    finally:
        for module in changed:
            del module.forward


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


FORMATS = ("torchscript", "onnx", "python", "safetensors")


def export_run(run_dir: str | Path, export_format: str, out: str | Path) -> None:
    """Write a run's model as ``export_format`` (one of FORMATS) to ``out``."""
    if export_format not in FORMATS:
        raise LumenError(f"unknown export format {export_format!r} (known: {', '.join(FORMATS)})")
    model = open_run(run_dir)
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{out} is a folder; --out names the file to write")
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as temp:  # the file is whole or absent, even on a full disk
        if export_format == "python":
            temp.write_text(to_python_source(model.spec), encoding="utf-8")
        elif export_format == "safetensors":
            save_weights(model, temp)
        elif export_format == "torchscript":
            to_torchscript(model, temp)
        else:
            to_onnx(model, temp)
