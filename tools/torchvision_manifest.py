"""Reference data for Lumen's full-size CNN presets, made with torchvision itself.

Runs in a SEPARATE virtual environment (torchvision does not install beside Lumen's CPU torch), never in
Lumen's own:

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 safetensors numpy
    /tmp/tvenv/bin/python tools/torchvision_manifest.py [--weights-dir /tmp/tv_weights]

For each model it writes, to tests/data/torchvision_manifest.json, the ordered state-dict keys with their
shapes and a fingerprint of the output (first 10 logits of sample 0 and the sum of all) for a seeded
random initialisation on a seeded input; and it saves the state dict as WEIGHTS_DIR/NAME.safetensors
(outside the repository: vgg16's is 528 MB). tools/torchvision_parity.py then loads those files into
Lumen's presets and compares outputs.

Before saving, each model sees one batch of random images in training mode with cumulative batch-norm
statistics, so the running means and variances are not the trivial 0 and 1: the comparison then also
checks that every batch-norm buffer lands in the right place.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torchvision import models

MANIFEST = Path(__file__).resolve().parent.parent / "tests" / "data" / "torchvision_manifest.json"
INIT_SEED, INPUT_SEED, CALIBRATION_SEED = 0, 1, 2
INPUT_SHAPE = (2, 3, 224, 224)

CONSTRUCTORS = {
    "alexnet": ("torchvision.models.alexnet()", lambda: models.alexnet()),
    "vgg11": ("torchvision.models.vgg11()", lambda: models.vgg11()),
    "vgg16": ("torchvision.models.vgg16()", lambda: models.vgg16()),
    "resnet18": ("torchvision.models.resnet18()", lambda: models.resnet18()),
    "mobilenet_v2": ("torchvision.models.mobilenet_v2()", lambda: models.mobilenet_v2()),
    "googlenet": (
        "torchvision.models.googlenet(aux_logits=False, transform_input=False, init_weights=True)",
        lambda: models.googlenet(aux_logits=False, transform_input=False, init_weights=True),
    ),
}


def seeded_input(seed: int = INPUT_SEED, shape: tuple[int, ...] = INPUT_SHAPE) -> torch.Tensor:
    """The same tensor in any torch version: CPU randn from an explicitly seeded generator."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def calibrate_batch_norm(model: torch.nn.Module) -> None:
    """One forward pass in training mode with momentum None: running stats become that batch's stats."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(seeded_input(CALIBRATION_SEED, (4, 3, 224, 224)))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def fingerprint(output: torch.Tensor) -> dict:
    return {
        "shape": list(output.shape),
        "first": [round(v, 7) for v in output[0, :10].tolist()],
        "sum": output.double().sum().item(),
        "abs_max": output.abs().max().item(),
    }


def compact_json(data: dict) -> str:
    """Indented JSON with every innermost list (a shape, a [key, shape] pair) on one line: a readable diff."""
    text = json.dumps(data, indent=1)
    inner = re.compile(r"\[([^\[\]{}]*)\]")
    text = inner.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",") if v.strip()) + "]", text)
    pair = re.compile(r"\[\s*(\"[^\"]*\"),\s*(\[[^\[\]]*\])\s*\]")
    return pair.sub(r"[\1, \2]", text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", default="/tmp/tv_weights", type=Path)
    parser.add_argument("--only", nargs="*", help="model names (default: all)")
    args = parser.parse_args()
    args.weights_dir.mkdir(parents=True, exist_ok=True)
    x = seeded_input()
    manifest = {
        "made_with": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "init": f"torch.manual_seed({INIT_SEED}) before construction; batch norm calibrated on "
        f"randn(4,3,224,224) from Generator().manual_seed({CALIBRATION_SEED}); eval mode",
        "input": {
            "shape": list(INPUT_SHAPE),
            "generator_seed": INPUT_SEED,
            "sum": x.double().sum().item(),
            "first": [round(v, 7) for v in x.flatten()[:5].tolist()],
        },
        "models": {},
    }
    if MANIFEST.exists() and args.only:
        manifest["models"] = json.loads(MANIFEST.read_text())["models"]
    for name, (constructor, make) in CONSTRUCTORS.items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(INIT_SEED)
        model = make()
        calibrate_batch_norm(model)
        model.eval()
        with torch.no_grad():
            out = model(x)
        state = model.state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(args.weights_dir / f"{name}.safetensors"))
        manifest["models"][name] = {
            "constructor": constructor,
            "params": sum(p.numel() for p in model.parameters()),
            "state_dict": [[k, list(v.shape)] for k, v in state.items()],
            "output": fingerprint(out),
        }
        print(f"{name}: {len(state)} tensors, output {tuple(out.shape)}, sum {out.sum().item():.6f}")
    manifest["models"] = {n: manifest["models"][n] for n in CONSTRUCTORS if n in manifest["models"]}
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(compact_json(manifest))
    print(f"wrote {MANIFEST}")


if __name__ == "__main__":
    main()
