"""Any model into Lumen, by what names it: an ONNX file, or a user's ``file.py:Class``; and into a run folder.

``open_model`` dispatches on the name (``.onnx`` → ``engine.io.onnx_import``; ``FILE.py:Class`` →
``engine.io.python_import``, whose file is the user's code and is run); ``save_opened`` writes the run folder
(spec, safetensors weights, run.json naming the source and its SHA-256 and the ops kept opaque), all or nothing,
after the weights have been loaded into the built model with ``strict=True``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lumen.engine.errors import DataError
from lumen.engine.graph.model import build_model
from lumen.engine.io.onnx_import import OpenedModel, open_onnx
from lumen.engine.io.runs import load_state_dict_checked, read_state_dict, save_run
from lumen.engine.untrusted import printable, shown

SUFFIXES = (".onnx",)  # files the window opens as models (a dropped file), besides spec .json and run folders


def is_python_target(source: str) -> bool:
    file, _, name = source.rpartition(":")
    return bool(file) and file.endswith(".py") and name.isidentifier()


def open_model(
    source: str | Path, input_shape: tuple[int, ...] | None = None, weights: str | Path | None = None
) -> OpenedModel:
    """The model ``source`` names; ``input_shape`` (one sample) for a Python module (required) or an ONNX graph
    that leaves sizes open; ``weights`` (safetensors or a weights-only ``.pt``) for a Python module."""
    text = str(source)
    if is_python_target(text):
        from lumen.engine.io.python_import import load_user_module, open_module

        if input_shape is None:
            raise DataError("a Python module needs --input, one sample's shape (e.g. 1,3,224,224 or 3,224,224)")
        net = load_user_module(text)
        if weights is not None:
            tensors = read_state_dict(weights)
            load_state_dict_checked(net, tensors, Path(weights).name)
        file, _, class_name = text.rpartition(":")
        opened = open_module(net, input_shape, class_name)
        return OpenedModel(opened.spec, opened.weights, opened.opaque, file)
    path = Path(text)
    if weights is not None:
        raise DataError("--weights is for a Python module; an ONNX file carries its own")
    if path.suffix.lower() != ".onnx":
        raise DataError(f"{shown(path.name)}: expected an .onnx file or FILE.py:ClassName")
    return open_onnx(path, input_shape)


def save_opened(opened: OpenedModel, run_dir: str | Path, force: bool = False) -> Path:
    """A run folder holding the opened model (its weights loaded with ``strict=True`` first)."""
    model = build_model(opened.spec)
    load_state_dict_checked(model, opened.weights, printable(Path(opened.source).name or opened.spec.name))
    info: dict = {"opened_from": str(Path(opened.source).resolve()) if opened.source else ""}
    if opened.source and Path(opened.source).is_file():
        digest = hashlib.sha256()
        with Path(opened.source).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        info["sha256"] = digest.hexdigest()
    if opened.opaque:
        info["opaque_ops"] = dict(opened.opaque)
    return save_run(run_dir, opened.spec, model, [], info, force=force)
