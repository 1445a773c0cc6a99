"""Models out of Lumen: readable PyTorch source, TorchScript, ONNX, safetensors.

The source export works from the built modules, not from a table per layer type, so it keeps up with new
layer types: each module is written as its ``repr`` when that is valid code (``nn.Conv2d(1, 6,
kernel_size=(5, 5), ...)``), otherwise as the constructor call that built it, recorded while building.
Every expression is checked by evaluating it and comparing the module it makes with the original.
Lumen's own module classes (and the helpers they use) are copied into the file, so it needs only torch.
"""

from __future__ import annotations

import ast
import builtins
import dis
import importlib
import importlib.util
import io
import inspect
import math
import re
import sys
import textwrap
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.graph import model as graph
from engine.errors import DataError, LumenError
from engine.layers import fmt
from engine.io.runs import open_run, save_weights, writing
from engine.io.untrusted import atomic_write
from engine.spec.model_spec import ModelSpec

_PREAMBLE = ["import torch", "from torch import nn"]
_BASE_NAMESPACE = {"torch": torch, "nn": nn}


class _NotCode(Exception):
    """A value or module that this exporter cannot write as Python."""


# ---- Python source ---------------------------------------------------------------------------------

def to_python_source(spec: ModelSpec) -> str:
    """A self-contained PyTorch file defining an ``nn.Module`` whose state dict and outputs match
    ``engine.graph.model.build_model(spec)``'s."""
    with torch.device("meta"), _ConstructorLog() as log:
        model = graph.build_model(spec)
    writer = _Writer(log.calls)
    init, forward = [], []
    containers: set[str] = set()
    names = _variable_names(model.order)
    for node_id in model.order:
        module = model.layers[node_id]
        shape = fmt(model.shapes[node_id])
        sources = model.sources[node_id]
        if not sources and type(module) is nn.Identity:  # the input node: the tensor passed in
            names[node_id] = "x"
            forward.append((f"# {node_id}", shape))
            continue
        parts = node_id.split(".")
        for depth in range(1, len(parts)):
            container = ".".join(parts[:depth])
            if container not in containers:
                containers.add(container)
                init.append(f"{_access(container)} = nn.ModuleDict()  # holds {container}.*")
        try:
            init.append(f"{_access(node_id)} = {writer.expression(module)}")
        except _NotCode as exc:
            raise LumenError(f"{node_id}: cannot be written as Python source ({exc})") from None
        arguments = ", ".join(names[s] for s in sources) if sources else "x"
        forward.append((f"{names[node_id]} = {_access(node_id)}({arguments})", shape))
    forward.append((f"return {names[model.output_id]}", None))
    class_name = _class_name(spec.name, writer)  # after the modules: must not clash with a copied class
    source = _assemble(spec, class_name, writer, init, forward)
    _self_check(source, class_name, model, spec)
    return source


def _assemble(spec: ModelSpec, class_name: str, writer: _Writer, init: list[str],
              forward: list[tuple[str, str | None]]) -> str:
    width = max((len(code) for code, _ in forward if len(code) <= 72), default=0)  # shape comments line up
    body = [f"{code:<{width}}  # {shape}" if shape else code for code, shape in forward]
    body = [line if not line.startswith("#") else line.replace("  # ", "    ", 1) for line in body]
    dtype = graph.example_input(spec).dtype
    make_input = (f"torch.rand(2, *{class_name}.input_shape)" if dtype.is_floating_point
                  else f"torch.zeros(2, *{class_name}.input_shape, dtype={dtype})")
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
        *writer.imports(),
        "",
        "",
        *writer.definitions(),
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


def _self_check(source: str, class_name: str, model: nn.Module, spec: ModelSpec) -> None:
    """Run the file on the meta device: it must define the same state dict and a forward that runs."""
    namespace: dict[str, Any] = {"__name__": "lumen_export_check"}
    try:
        exec(compile(source, f"<{class_name}>", "exec"), namespace)  # noqa: S102 - our own generated code
        with torch.device("meta"):
            copy = namespace[class_name]()
    except Exception as exc:  # a bug in the exporter, reported rather than written out
        raise LumenError(f"the exported source for {spec.name} does not run: {type(exc).__name__}: {exc}") from None
    ours = {k: tuple(v.shape) for k, v in copy.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if ours != theirs:
        raise LumenError(f"the exported source for {spec.name} does not rebuild the same weights "
                         f"(differs at {sorted(set(ours.items()) ^ set(theirs.items()))[:3]})")
    try:
        copy.eval()(graph.example_input(spec).to("meta"))
    except NameError as exc:
        raise LumenError(f"the exported source for {spec.name} misses a name: {exc}") from None
    except Exception:  # noqa: BLE001 - some operators have no meta kernel; the names resolved, which is the point
        pass


def _class_name(name: str, writer: _Writer) -> str:
    parts = re.findall(r"[A-Za-z0-9]+", name)
    camel = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    if camel[0].isdigit():
        camel = "Model" + camel
    while camel in writer.taken_names():
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


class _ConstructorLog:
    """Records the arguments of every ``nn.Module.__init__`` call made in this thread while active.

    A profile hook sees each call with its arguments bound to names; it is per thread (``sys.setprofile``),
    so a model being built or trained elsewhere at the same time is not affected.
    """

    def __init__(self):
        self.calls: dict[int, tuple[nn.Module, types.CodeType, dict[str, Any]]] = {}

    def _hook(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_code.co_name != "__init__" or not frame.f_code.co_argcount:
            return
        local = frame.f_locals
        obj = local.get(frame.f_code.co_varnames[0])
        if isinstance(obj, nn.Module) and id(obj) not in self.calls:  # the outermost __init__ of obj
            # copies of lists and dicts, in case __init__ changes what it was given; obj is kept alive so
            # that ids stay unique
            arguments = {k: v.copy() if type(v) in (list, dict) else v for k, v in local.items()}
            self.calls[id(obj)] = (obj, frame.f_code, arguments)

    def __enter__(self) -> _ConstructorLog:
        self._previous = sys.getprofile()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self._previous)


class _Writer:
    """Turns modules and values into expressions, collecting the imports and definitions they need."""

    def __init__(self, calls: dict[int, tuple[nn.Module, types.CodeType, dict[str, Any]]]):
        self.calls = calls
        self._imports: list[str] = list(_PREAMBLE)
        self._definitions: list[str] = []
        self._defined: dict[str, Any] = {}  # name -> the object it stands for in the file
        self._namespace: dict[str, Any] | None = None

    def imports(self) -> list[str]:
        return self._imports

    def definitions(self) -> list[str]:
        return [part for definition in self._definitions for part in (definition, "", "")]

    def taken_names(self) -> set[str]:
        return set(self._defined) | set(_BASE_NAMESPACE)

    # ---- modules ---------------------------------------------------------------------------------
    def expression(self, module: nn.Module) -> str:
        cls = type(module)
        candidates = []
        if cls in (nn.Sequential, nn.ModuleList) and all(k.isdigit() for k in module._modules):
            children = ", ".join(self.expression(child) for child in module._modules.values())
            candidates.append(f"nn.{cls.__name__}({'[' + children + ']' if cls is nn.ModuleList else children})")
        if not module._modules:
            try:
                candidates.append(f"{self.reference(cls)}({module.extra_repr()})")
            except _NotCode:
                pass
        if id(module) in self.calls:
            try:
                candidates.append(self._recorded_call(module))
            except _NotCode:
                pass
        for candidate in candidates:
            if self._rebuilds(candidate, module):
                return candidate
        raise _NotCode(f"no constructor call found that rebuilds {cls.__name__}")

    def _recorded_call(self, module: nn.Module) -> str:
        _, code, local = self.calls[id(module)]
        function = next((k.__dict__["__init__"] for k in type(module).__mro__
                         if getattr(k.__dict__.get("__init__"), "__code__", None) is code), None)
        if function is None:
            raise _NotCode("its constructor is not a method of its class")
        parameters = list(inspect.signature(function).parameters.values())[1:]  # without self
        positional, keywords = [], []
        spread = any(p.kind is p.VAR_POSITIONAL and local.get(p.name) for p in parameters)
        for p in parameters:
            value = local.get(p.name, p.default)
            if p.kind is p.VAR_POSITIONAL:
                positional += [self.literal(v) for v in value]
            elif p.kind is p.VAR_KEYWORD:
                keywords += [f"{k}={self.literal(v)}" for k, v in value.items()]
            elif p.kind is p.POSITIONAL_ONLY or (spread and p.kind is p.POSITIONAL_OR_KEYWORD):
                positional.append(self.literal(value))
            elif p.default is p.empty or not _same_value(value, p.default):
                keywords.append(f"{p.name}={self.literal(value)}")
        return f"{self.reference(type(module))}({', '.join(positional + keywords)})"

    def _rebuilds(self, expression: str, module: nn.Module) -> bool:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copy = eval(expression, self.namespace())  # noqa: S307 - our own generated expression
        except Exception:  # noqa: BLE001 - not valid code (e.g. repr "padding=same"): try the next way
            return False
        return _same_module(copy, module)

    def namespace(self) -> dict[str, Any]:
        if self._namespace is None:
            namespace: dict[str, Any] = {"__name__": "lumen_export_check"}
            exec("from __future__ import annotations\n" + "\n".join(self._imports) + "\n\n"  # noqa: S102
                 + "\n\n".join(self._definitions), namespace)
            self._namespace = namespace
        return self._namespace

    # ---- values ----------------------------------------------------------------------------------
    def literal(self, value: Any) -> str:
        if value is None or isinstance(value, (bool, int, str, bytes)):
            return repr(value)
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
        if isinstance(value, (tuple, list)):
            items = [self.literal(v) for v in value]
            if isinstance(value, list):
                return f"[{', '.join(items)}]"
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if isinstance(value, dict) and type(value) in (dict, OrderedDict):
            return "{" + ", ".join(f"{self.literal(k)}: {self.literal(v)}" for k, v in value.items()) + "}"
        if isinstance(value, torch.dtype):
            return str(value)
        if isinstance(value, nn.Module):
            return self.expression(value)
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self.reference(value)
        raise _NotCode(f"a {type(value).__name__} argument")

    def reference(self, obj: Any) -> str:
        """The name a class or function has in the file, importing or copying it in as needed."""
        for prefix, module in (("nn.", nn), ("torch.", torch)):
            if getattr(module, getattr(obj, "__name__", ""), None) is obj:
                return prefix + obj.__name__
        name = getattr(obj, "__name__", None)
        if name == "<lambda>":
            raise _NotCode("a lambda")
        if not name or not _has_source(obj):
            path = _import_path(obj)
            if path is None or name is None:
                raise _NotCode(f"{obj!r} is neither in torch nor defined in Python source")
            self._bind(name, obj, f"from {path[0]} import {path[1]}" + (f" as {name}" if path[1] != name else ""))
            return name
        if self._defined.get(name) is obj:
            return name
        if name in self._defined or name in _BASE_NAMESPACE:
            raise _NotCode(f"two different objects are named {name}")
        self._defined[name] = obj  # before the dependencies: a class may refer to itself
        for base in getattr(obj, "__bases__", ()):
            if base is not object:
                self._need_global(obj, base)
        for global_name in _global_names(obj):
            self._need_name(obj, global_name)
        self._definitions.append(textwrap.dedent(inspect.getsource(obj)).rstrip())
        self._namespace = None
        return name

    def _need_global(self, owner: Any, value: Any) -> None:
        """``owner``'s source refers to ``value`` by some name of its module: make that name exist."""
        scope = vars(sys.modules[owner.__module__])
        for name, candidate in scope.items():
            if candidate is value:
                self._need_name(owner, name)
                return

    def _need_name(self, owner: Any, name: str) -> None:
        scope = vars(sys.modules[owner.__module__])
        if name not in scope or getattr(builtins, name, None) is scope[name]:
            return  # a builtin, or a name only bound at run time
        value = scope[name]
        if _BASE_NAMESPACE.get(name) is value or self._defined.get(name) is value:
            return
        if name in self._defined or name in _BASE_NAMESPACE:
            raise _NotCode(f"{owner.__name__} needs a different {name} than the file already has")
        if isinstance(value, types.ModuleType):
            line = f"import {value.__name__}" + (f" as {name}" if value.__name__ != name else "")
            self._bind(name, value, line)
        elif isinstance(value, (type, types.FunctionType)) and _has_source(value):
            if self.reference(value) != name:
                raise _NotCode(f"{owner.__name__} refers to {value.__name__} as {name}")
        elif callable(value) and _import_path(value):
            module, qualname = _import_path(value)
            self._bind(name, value, f"from {module} import {qualname}" + (f" as {name}" if qualname != name else ""))
        else:
            try:
                text = f"{name} = {self.literal(value)}"
                needs: list[str] = []
            except _NotCode:  # e.g. a table of lambdas: copy the statement that defines it
                text, needs = _assignment_source(owner.__module__, name)
            self._defined[name] = value
            for needed in needs:
                self._need_name(owner, needed)
            self._definitions.append(text)
            self._namespace = None

    def _bind(self, name: str, value: Any, import_line: str) -> None:
        if self._defined.get(name) is value:
            return
        if name in self._defined or name in _BASE_NAMESPACE:
            raise _NotCode(f"two different objects are named {name}")
        self._defined[name] = value
        self._imports.append(import_line)
        self._namespace = None


def _has_source(obj: Any) -> bool:
    """Defined in Python outside torch (Lumen's own layers, or a test's): copied into the file."""
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] in ("torch", "builtins") or module in sys.stdlib_module_names:
        return False
    try:
        inspect.getsource(obj)
    except (OSError, TypeError):
        return False
    return True


def _import_path(obj: Any) -> tuple[str, str] | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return (module, qualname) if found is obj and module.split(".")[0] != "engine" else None


def _global_names(obj: Any) -> list[str]:
    """Module-level names the code of a function, or of a class's methods, looks up, in first-use order."""
    codes = []
    functions = [obj] if isinstance(obj, types.FunctionType) else list(vars(obj).values())
    for f in functions:
        for candidate in (f, getattr(f, "__func__", None), getattr(f, "fget", None)):
            if isinstance(candidate, types.FunctionType):
                codes.append(candidate.__code__)
    names: list[str] = []
    while codes:
        code = codes.pop(0)
        names += [i.argval for i in dis.get_instructions(code)
                  if i.opname in ("LOAD_GLOBAL", "LOAD_NAME") and i.argval not in names]
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def _assignment_source(module_name: str, name: str) -> tuple[str, list[str]]:
    """The source of the module-level statement that assigns ``name``, and the names it reads."""
    try:
        source = inspect.getsource(sys.modules[module_name])
    except (OSError, TypeError):
        raise _NotCode(f"the source of {module_name} is not available") from None
    for statement in ast.parse(source).body:
        targets = (statement.targets if isinstance(statement, ast.Assign)
                   else [statement.target] if isinstance(statement, ast.AnnAssign) and statement.value else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            reads = [n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
            return ast.get_source_segment(source, statement), list(dict.fromkeys(reads))
    raise _NotCode(f"{name} is not assigned at the top level of {module_name}")


def _same_value(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. tensors: not a default worth leaving out
        return False


def _public_state(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and not isinstance(v, torch.Tensor)}


def _same_module(a: nn.Module, b: nn.Module) -> bool:
    """Same class (or its copy in the file), settings and parameter shapes, all the way down."""
    if type(a).__qualname__ != type(b).__qualname__ or repr(a) != repr(b):
        return False
    if {k: (v.shape, v.dtype) for k, v in a.state_dict().items()} != \
            {k: (v.shape, v.dtype) for k, v in b.state_dict().items()}:
        return False
    return all(_same_value(_public_state(x), _public_state(y)) for x, y in zip(a.modules(), b.modules()))


# ---- TorchScript and ONNX ---------------------------------------------------------------------------

def _frozen(model: nn.Module):
    """The model in eval mode, for tracing; its mode is restored afterwards."""
    class _Eval:
        def __enter__(self):
            self.was_training = model.training
            model.eval()
            return model

        def __exit__(self, *exc):
            model.train(self.was_training)
    return _Eval()


def to_torchscript(model: graph.GraphModel, path: str | Path) -> None:
    """A traced TorchScript file (``torch.jit.load`` runs it without Lumen), in eval mode."""
    with _frozen(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream, yet still what most tools read
        try:
            traced = torch.jit.trace(model, graph.example_input(model.spec))
            buffer = io.BytesIO()  # torch's own file writer aborts the process on a full disk; Python's raises
            torch.jit.save(traced, buffer)
        except Exception as exc:  # noqa: BLE001 - tracing failures come from deep inside torch
            raise LumenError(f"TorchScript export failed: {_first_line(exc)}") from None
    with writing(Path(path)):
        Path(path).write_bytes(buffer.getbuffer())


def to_onnx(model: graph.GraphModel, path: str | Path) -> None:
    """An ONNX file with a variable batch dimension (input "input", output "output"); needs ``onnx``."""
    if importlib.util.find_spec("onnx") is None:
        raise LumenError("ONNX export needs the onnx package: pip install onnx")
    with _frozen(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # The TorchScript-based exporter needs only onnx; the default (dynamo) one also needs onnxscript.
            torch.onnx.export(model, (graph.example_input(model.spec),), str(path), dynamo=False,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        except Exception as exc:  # noqa: BLE001
            raise LumenError(f"ONNX export failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


FORMATS = ("torchscript", "onnx", "python", "safetensors")


def export_run(run_dir: str | Path, kind: str, out: str | Path) -> None:
    """Write a run's model as ``kind`` (one of FORMATS) to ``out``."""
    if kind not in FORMATS:
        raise LumenError(f"unknown export format {kind!r} (known: {', '.join(FORMATS)})")
    model = open_run(run_dir)
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{out} is a folder; --out names the file to write")
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as temp:  # the file is whole or absent, even on a full disk
        if kind == "python":
            temp.write_text(to_python_source(model.spec), encoding="utf-8")
        elif kind == "safetensors":
            save_weights(model, temp)
        elif kind == "torchscript":
            to_torchscript(model, temp)
        else:
            to_onnx(model, temp)
