"""What several commands share: the MODEL argument, messages on stderr, the files a command writes (checked
before any work, written all or none), an image file prepared as a run's input, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def load_model_arg(model: str):
    """MODEL: a preset's name or a model spec JSON file."""
    from lumen.engine.presets import PRESETS, get_preset
    from lumen.engine.spec.model_spec import ModelSpec

    if model in PRESETS:
        return get_preset(model)
    try:
        is_path = Path(model).exists() or Path(model).is_symlink() or model.lower().endswith(".json")
    except (OSError, ValueError):  # a name too long for the file system, say: a path, and ModelSpec.load says why
        is_path = True
    if is_path:
        return ModelSpec.load(model)  # every check of engine.untrusted: regular file, size, depth, numbers
    return get_preset(model)  # raises with the list of presets


def note(text: str) -> None:
    """A message on stderr, if anyone still reads it."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()


def one_line(text: str) -> str:
    """Text from anywhere (a file name, a spec's name) as one line a terminal shows as it is."""
    from lumen.engine.untrusted import printable

    return printable(text)


def from_file(args: argparse.Namespace, exc: Exception) -> str:
    """The message, led by the spec file's name when the model came from a file and the message lacks it (a
    model refused after loading: too big, or not fit for the loss)."""
    from lumen.engine.errors import SpecError
    from lumen.engine.presets import PRESETS

    model = getattr(args, "model", None)
    message = str(exc)
    if isinstance(exc, SpecError) and model and model not in PRESETS:
        name = Path(model).name
        if not message.startswith(f"{name}: ") and not message.startswith(f"{name} "):
            return f"{name}: {message}"
    return message


def check_outputs(*outputs: tuple[str, Path | None]) -> list[Path]:
    """The files a command will write, as (the option that named it, path or None when not asked for): each one
    checked before any work (a folder, a missing folder, no permission, two options naming one file), so that
    they are written all or none."""
    from lumen.engine.errors import DataError
    from lumen.engine.untrusted import check_writable, printable

    seen: dict[str, str] = {}
    paths = []
    for flag, path in outputs:
        if path is None:
            continue
        check_writable(path, flag)
        same = seen.setdefault(os.path.realpath(path), flag)
        if same != flag:
            raise DataError(f"{same} and {flag} name the same file, {printable(str(path))}; give each its own")
        paths.append(path)
    return paths


def save_npy(path: Path, array) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.save(f, array)


def write_png(path: Path, pixels) -> None:
    from PIL import Image

    from lumen.engine.untrusted import atomic_write

    with atomic_write(path) as temp:
        Image.fromarray(pixels).save(temp, format="PNG")


def image_for(run_dir: Path, image: Path):
    """A run's model and an image file prepared as its input (1×C×H×W), as ``explain`` prepares it."""
    from lumen.engine.data.images import image_input
    from lumen.engine.errors import DataError
    from lumen.engine.io.image_files import read_image
    from lumen.engine.io.runs import open_run, read_run_info
    from lumen.engine.untrusted import printable

    info = read_run_info(run_dir)
    model = open_run(run_dir)
    shape = tuple(model.spec.input_shape)
    if len(shape) != 3:
        raise DataError(f"{printable(model.spec.name)} takes {shape} inputs, not images")
    digits = info.get("dataset") == "mnist" and shape[0] == 1
    return model, image_input(read_image(image), shape, digits=digits, preprocess=model.spec.preprocess)
