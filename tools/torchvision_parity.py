"""Do Lumen's full-size presets reproduce torchvision's models? Runs in Lumen's own environment.

First make the reference files with torchvision in its separate environment (see
tools/torchvision_manifest.py), then:

    .venv/bin/python tools/torchvision_parity.py [--weights-dir /tmp/tv_weights] [--only resnet18 ...]

For each model: build the Lumen preset, load WEIGHTS_DIR/NAME.safetensors (torchvision's state dict) with
``strict=True``, run the same seeded input in eval mode and compare the output's fingerprint with the one
torchvision produced (tests/data/torchvision_manifest.json). Prints one table row per model; the exit
status is non-zero unless every model matches within --atol.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lumen.engine.graph.model import GraphModel
from lumen.engine.presets.cnn import CNN_PRESETS, FULL_SIZE_PRESETS

MANIFEST = Path(__file__).resolve().parent.parent / "tests" / "data" / "torchvision_manifest.json"


def seeded_input(seed: int, shape: list[int]) -> torch.Tensor:
    # As tools/torchvision_manifest.py makes it; the manifest's input sum confirms the torch versions agree.
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def check(name: str, reference: dict, x: torch.Tensor, weights_dir: Path) -> dict:
    spec = next(p for p in CNN_PRESETS if p.name == name).make()
    model = GraphModel(spec)
    keys_match = [[k, list(v.shape)] for k, v in model.state_dict().items()] == reference["state_dict"]
    model.load_state_dict(load_file(str(weights_dir / f"{name}.safetensors")), strict=True)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        out = model(x).double()
    seconds = time.perf_counter() - start
    expected = reference["output"]
    first_err = (out[0, :10] - torch.tensor(expected["first"], dtype=torch.float64)).abs().max().item()
    sum_err = abs(out.sum().item() - expected["sum"])
    return {
        "name": name,
        "shape_ok": list(out.shape) == expected["shape"],
        "same_order": keys_match,
        "first_err": first_err,
        "sum_err": sum_err,
        "abs_max": expected["abs_max"],
        "seconds": seconds,
        "n": out.numel(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", default="/tmp/tv_weights", type=Path)
    parser.add_argument("--only", nargs="*", help="model names (default: all six)")
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    x = seeded_input(manifest["input"]["generator_seed"], manifest["input"]["shape"])
    if abs(x.double().sum().item() - manifest["input"]["sum"]) > 1e-6:
        print("the seeded input differs from torchvision's: this torch draws other random numbers")
        return 2
    print(
        f"reference: torch {manifest['made_with']['torch']}, torchvision {manifest['made_with']['torchvision']}; "
        f"here: torch {torch.__version__}; atol {args.atol:g}"
    )
    header = (
        f"{'model':<13} {'strict load':<11} {'key order':<9} {'|logit| max':>11} {'max err (10 logits)':>19} "
        f"{'err of sum':>17} {'forward s':>9}  result"
    )
    print(header)
    print("-" * len(header))
    failed = 0
    for name in FULL_SIZE_PRESETS:
        if args.only and name not in args.only:
            continue
        try:
            r = check(name, manifest["models"][name], x, args.weights_dir)
        except (RuntimeError, OSError) as exc:  # load_state_dict(strict=True) refused, or no weights file
            failed += 1
            print(f"{name:<13} FAILED: {str(exc).splitlines()[0][:150]}")
            continue
        ok = (
            r["shape_ok"] and r["first_err"] <= args.atol and r["sum_err"] <= args.atol * r["n"]
        )  # each logit within atol
        failed += not ok
        print(
            f"{name:<13} {'ok':<11} {'same' if r['same_order'] else 'differs':<9} {r['abs_max']:>11.4f} "
            f"{r['first_err']:>19.2e} {r['sum_err']:>17.2e} {r['seconds']:>9.2f}  {'MATCH' if ok else 'DIFFERS'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
