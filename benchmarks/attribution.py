"""Attribution: Lumen's ``attribute()`` against Captum called directly, the pointing game on ``shapes``, and the
time from dropping a picture to its overlay on screen.

(a) Overhead: the same model, input, target and settings through ``engine.explain.attribution.attribute`` and
    through Captum by hand, alternating call by call; medians and their ratio (goal ≤ 1.1×). LeNet-5.
(b) Pointing game (Zhang et al. 2016): the ``shapes_gap_cnn`` preset (batch norm, a 16×16 last conv layer,
    global average pooling — the design Grad-CAM assumes) trained on ``shapes`` with Adam, seeded (about two
    minutes on 2 cores); for held-out pictures (a seed the training never saw), how often the peak of each
    method's map, explaining the true class, falls inside the object's mask ("strict") or within the protocol's
    tolerance (15 px at 224², scaled to 2 px at 32²). Goal ≥ 90 % for Grad-CAM and integrated gradients.
    ``--model flat`` scores the earlier 3-conv CNN with a fully connected head (8×8 last conv layer) instead.
(d) Full size: ResNet-18 at 3×224², IG-50 in slices (``attribute_steps``) against Captum in one call: total
    time, the longest slice (how long the worker is away from its command queue), and that the maps agree.
(c) Drop → overlay: the real window offscreen, LeNet-5; from handing the viewer a dropped file until the
    attribution view has drawn that picture's overlays (goal < 100 ms).

    QT_QPA_PLATFORM=offscreen python benchmarks/attribution.py [--skip-gui] [--epochs 8] [--only a|b|c]
        [--model gap|flat] [--model-cache FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import torch

from lumen.engine.data.shapes import SHAPE_CLASSES, shape_images
from lumen.engine.explain.attribution import METHODS, attribute
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec


def captum_call(name: str, model: torch.nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    xi = x.clone().requires_grad_()
    if name == "saliency":
        return Saliency(model).attribute(xi, target=target, abs=True)[0].detach().numpy()
    if name == "integrated-gradients":
        out, _ = IntegratedGradients(model).attribute(
            xi, baselines=torch.zeros_like(x), target=target, n_steps=50, internal_batch_size=50,
            return_convergence_delta=True,
        )  # fmt: skip
        return out[0].detach().numpy()
    cam = LayerGradCam(model, model.get_submodule("conv2")).attribute(xi, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")[0, 0].detach().numpy()


def overhead(repeats: int) -> None:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier on a shared machine; both sides get the same
    model = build_model(get_preset("lenet5")).eval()
    x = torch.rand(1, 1, 28, 28)
    print("(a) attribute() vs Captum directly, LeNet-5, 1×1×28×28, explicit target, 1 thread, alternating, medians")
    for name, n in (("saliency", repeats), ("integrated-gradients", max(20, repeats // 5)), ("gradcam", repeats)):
        ours, theirs = [], []
        for _ in range(5):  # warm-up
            attribute(model, x, name, 3)
            captum_call(name, model, x, 3)
        for _ in range(n):
            t = time.perf_counter()
            attribute(model, x, name, 3)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            captum_call(name, model, x, 3)
            theirs.append(time.perf_counter() - t)
        a, b = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
        label = "IG-50" if name == "integrated-gradients" else name
        print(f"    {label:<10} Lumen {a:7.3f} ms   Captum {b:7.3f} ms   ratio {a / b:.3f}×   ({n} pairs)")
    t = time.perf_counter()
    for _ in range(repeats):
        attribute(model, x, "saliency")
    spent = (time.perf_counter() - t) / repeats * 1e3
    print(f"    saliency with the default target (one more forward pass): {spent:.3f} ms")
    torch.set_num_threads(threads)


def shapes_cnn() -> ModelSpec:
    conv = lambda c: {"out_channels": c, "kernel_size": 3, "padding": 1}  # noqa: E731
    return ModelSpec.sequential(
        "shapes-cnn",
        (3, 32, 32),
        [
            ("conv1", "conv2d", conv(32)),
            ("relu1", "relu", {}),
            ("pool1", "maxpool2d", {"kernel_size": 2}),
            ("conv2", "conv2d", conv(64)),
            ("relu2", "relu", {}),
            ("pool2", "maxpool2d", {"kernel_size": 2}),
            ("conv3", "conv2d", conv(64)),
            ("relu3", "relu", {}),
            ("pool3", "maxpool2d", {"kernel_size": 2}),
            ("flatten", "flatten", {}),
            ("fc1", "linear", {"out_features": 64}),
            ("relu4", "relu", {}),
            ("fc", "linear", {"out_features": len(SHAPE_CLASSES)}),
        ],
    )


def pointing_game(epochs: int, held_out: int, cache: Path | None = None, which: str = "gap") -> None:
    torch.manual_seed(0)
    train = shape_images(4000, seed=0)
    test = shape_images(held_out, seed=12345)
    spec = get_preset("shapes_gap_cnn") if which == "gap" else shapes_cnn()
    model = build_model(spec)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * -(-4000 // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=5e-3 if which == "gap" else 3e-3, total_steps=steps
    )
    x, y = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    began = time.perf_counter()
    if cache is not None and cache.is_file():
        model.load_state_dict(torch.load(cache, weights_only=True))
        epochs = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i : i + 64]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    if cache is not None and not cache.is_file():
        torch.save(model.state_dict(), cache)
    model.eval()
    tx = torch.from_numpy(test.images)
    with torch.no_grad():
        accuracy = float((model(tx).argmax(1).numpy() == test.labels).mean())
    print(
        f"(b) pointing game: {spec.name} trained {epochs} epochs on 4,000 shapes in "
        f"{time.perf_counter() - began:.0f} s; held-out accuracy {accuracy:.1%} on {held_out} new pictures"
    )
    near = dilated(test.masks, TOLERANCE)
    print(f"    method                 strict (in mask)   within {TOLERANCE} px")
    # Every method with its defaults (Grad-CAM: the last conv layer), and Grad-CAM on an earlier layer.
    earlier = {"layer": "block2.conv"} if which == "gap" else {"layer": "conv2"}
    extra = ("gradcam on " + earlier["layer"], "gradcam", earlier)
    for label, name, options in [*((n, n, {}) for n in METHODS), extra]:
        hits, close, spent = 0, 0, 0.0
        for i in range(held_out):
            t = time.perf_counter()
            result = attribute(model, tx[i : i + 1], name, int(test.labels[i]), **options)
            spent += time.perf_counter() - t
            heat = result.heat()
            peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
            hits += bool(test.masks[i][peak])
            close += bool(near[i][peak])
        rates = f"{hits / held_out:13.1%}   {close / held_out:13.1%}"
        print(f"    {label:<22} {rates}      ({spent / held_out * 1e3:.1f} ms each)")
    print(
        f"    (a peak at a random pixel: {test.masks.mean():.1%} in the mask, {near.mean():.1%} within {TOLERANCE} px)"
    )


TOLERANCE = 2  # pixels: the pointing game's usual 15 px at 224² (Zhang et al. 2016), scaled to 32²


def dilated(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Each N×H×W mask grown by ``pixels`` (a square neighbourhood)."""
    grown = torch.nn.functional.max_pool2d(
        torch.from_numpy(masks.astype(np.float32))[:, None], 2 * pixels + 1, stride=1, padding=pixels
    )
    return grown[:, 0].numpy() > 0


def full_size_slices() -> None:
    from captum.attr import IntegratedGradients

    from lumen.engine.explain.attribution import attribute_steps

    torch.manual_seed(0)
    model = build_model(get_preset("resnet18")).eval()
    x = torch.randn(1, 3, 224, 224)
    t = time.perf_counter()
    reference = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=207, n_steps=50, internal_batch_size=50
    )
    one_call = time.perf_counter() - t
    steps = attribute_steps(model, x, "integrated-gradients", 207, steps=50)
    slices, t = [], time.perf_counter()
    last = t
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            result = stop.value
            break
        now = time.perf_counter()
        slices.append(now - last)
        last = now
    total = time.perf_counter() - t
    gap = float(np.abs(result.map - reference[0].numpy()).max() / np.abs(reference[0].numpy()).max())
    print(
        f"(d) ResNet-18, 3×224², IG-50: Captum in one call {one_call:.1f} s; in {len(slices)} slices {total:.1f} s, "
        f"longest slice {max(slices) * 1e3:.0f} ms; largest difference {gap:.1e} of the map's range"
    )


def drop_latency(repeats: int) -> None:
    from PIL import Image
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from lumen.engine.probes.attribution import AttributionFrame
    from lumen.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(os.path.join(folder, "lumen.ini"), QSettings.Format.IniFormat))
        window.show()
        view = window.viewer.views[AttributionFrame]
        window.viewer.tabs.setCurrentWidget(view)

        def wait(condition, timeout: float = 30.0) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    raise TimeoutError("no frame")
                app.processEvents()
                time.sleep(0.0005)

        wait(lambda: view.frame is not None)
        rng = np.random.default_rng(0)
        times = []
        for i in range(repeats):
            pixels = np.full((112, 112), 255, np.uint8)
            pixels[20:92, 50 + rng.integers(-8, 8) : 62] = 0
            path = os.path.join(folder, f"drop_{i}.png")
            Image.fromarray(pixels).save(path)
            name = os.path.basename(path)
            t = time.perf_counter()
            window.viewer.image_dropped.emit(path)
            wait(lambda name=name: view.frame is not None and view.frame.source == name)
            times.append(time.perf_counter() - t)
        window.close()
    ms = np.array(times) * 1e3
    print(
        f"(c) drop → overlay drawn, LeNet-5, saliency + Grad-CAM: median {np.median(ms):.0f} ms, "
        f"max {ms.max():.0f} ms over {repeats} drops"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", choices=["gap", "flat"], default="gap", help="(b) the CNN scored")
    parser.add_argument("--held-out", type=int, default=300)
    parser.add_argument("--skip-gui", action="store_true")
    parser.add_argument("--model-cache", type=Path, help="(b) reuse the trained CNN's weights from this file")
    parser.add_argument("--only", choices=["a", "b", "c", "d"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only in (None, "a"):
        overhead(args.repeats)
    if args.only in (None, "b"):
        pointing_game(args.epochs, args.held_out, args.model_cache, args.model)
    if args.only in (None, "d"):
        full_size_slices()
    if not args.skip_gui and args.only in (None, "c"):
        drop_latency(20)


if __name__ == "__main__":
    main()
