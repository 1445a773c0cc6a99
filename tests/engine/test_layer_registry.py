"""The layer registry is built from the family modules' plain lists; Lumen's own modules are torch-only files."""

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import pytest
from torch import nn

import lumen.engine.layers as engine_layers
import lumen.engine.modules as engine_modules
from lumen.engine.layers import LAYERS, LayerType
from lumen.engine.layers.base import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"base", "geometry"}  # what the family modules share; they define no layer types


def _family_modules() -> list:
    return [
        importlib.import_module(f"lumen.engine.layers.{info.name}")
        for info in pkgutil.iter_modules(engine_layers.__path__)
        if info.name not in SHARED
    ]


def test_the_registry_is_the_union_of_the_family_lists():
    listed = {layer.name: layer for module in _family_modules() for layer in module.LAYER_TYPES}
    assert LAYERS == listed
    assert len(listed) == sum(len(module.LAYER_TYPES) for module in _family_modules())  # no name twice


def test_importing_a_family_module_registers_nothing():
    before = dict(LAYERS)
    conv = importlib.reload(sys.modules["lumen.engine.layers.conv"])  # runs the module again, as a first import would
    assert LAYERS == before and all(LAYERS[n] is before[n] for n in before)  # nothing added, nothing replaced
    assert {layer.name for layer in conv.LAYER_TYPES} <= set(LAYERS)


def test_family_modules_never_import_the_registry():
    for module in _family_modules():
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "lumen.engine.layers" not in imported, module.__name__
        assert not any(name.startswith("lumen.engine.presets") for name in imported if name), module.__name__


def test_a_name_defined_twice_is_refused():
    relu = LAYERS["relu"]
    with pytest.raises(ValueError, match="layer type 'relu' is defined twice"):
        engine_layers._registry([[relu], [relu]])


def _layer(**changes) -> LayerType:
    fields = {
        "name": "t",
        "family": "dense",
        "description": "",
        "defaults": {"size": 1},
        "domains": {"size": "posint"},
        "infer": lambda params, in_shapes: in_shapes[0],
        "module": nn.Identity,
        "kwargs": lambda params, in_shapes: {},
    }
    return LayerType(**{**fields, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"domains": {}}, "layer type t: domains must name exactly its parameters (size)"),
        ({"domains": {"size": "positive"}}, "layer type t: size has an unknown domain 'positive'"),
        ({"family": "exotic"}, "layer type t: family 'exotic' is not one of input, conv, "),
    ],
)
def test_every_layer_declares_its_family_and_the_domain_of_each_parameter(changes, message):
    with pytest.raises(ValueError) as error:
        _layer(**changes)
    assert str(error.value).startswith(message)


def test_every_layer_type_names_a_family_and_builds_its_module_from_kwargs():
    assert {layer.family for layer in LAYERS.values()} == set(FAMILIES)
    layer = LAYERS["conv2d"]
    params = layer.resolve({"out_channels": 4, "kernel_size": 3})
    built = layer.build(params, [(2, 8, 8)])
    assert type(built) is layer.module is nn.Conv2d
    assert layer.kwargs(params, [(2, 8, 8)])["in_channels"] == built.in_channels == 2


# ---- engine/modules: what an export copies whole ------------------------------------------------------

MODULE_FILES = sorted((ROOT / "lumen" / "engine" / "modules").glob("*.py"))


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_module_files_import_only_torch_and_the_standard_library_on_single_lines():
    for path in MODULE_FILES:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for module in modules:
                    top = module.split(".")[0]
                    assert top == "torch" or top in sys.stdlib_module_names, f"{path.name} imports {module}"
                assert node in tree.body and node.lineno == node.end_lineno, f"{path.name}: one line per import"


def test_module_files_define_each_top_level_name_once_between_them():
    seen: dict[str, str] = {}
    for path in MODULE_FILES:
        for name in _top_level_names(ast.parse(path.read_text(encoding="utf-8"))):
            assert name not in seen, f"{name} is defined in {seen.get(name)} and {path.name}"
            seen[name] = path.name


def test_lumen_modules_take_explicit_keyword_arguments():
    for info in pkgutil.iter_modules(engine_modules.__path__):
        module = importlib.import_module(f"lumen.engine.modules.{info.name}")
        for cls in vars(module).values():
            if (
                isinstance(cls, type)
                and issubclass(cls, nn.Module)
                and cls.__module__ == module.__name__
                and cls.__init__ is not nn.Module.__init__
            ):  # Add takes nothing; _Transient is a base
                parameters = inspect.signature(cls).parameters.values()
                assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters), cls.__name__
                assert not {"p", "params", "kwargs"} & {p.name for p in parameters}, cls.__name__
