"""How fast does the feature-map view draw a 64-channel mosaic?

The real ``FeatureMapView`` in a shown window (offscreen), fed a new frame each time — one layer of 64 maps
(28×28 by default, 56×56 with --size 56) with fresh values, as a live probe sends them — and made to paint
(``repaint()``, not just an update request) after each. Reported: frames per second, shared and per-tile
colour scale.

    QT_QPA_PLATFORM=offscreen python benchmarks/mosaic_fps.py [--frames 200] [--size 28]

Goal: ≥ 30 fps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtWidgets import QApplication

from lumen.engine.probes.feature_maps import FeatureMapFrame, LayerMaps, tile
from lumen.gui.app import configure_pyqtgraph
from lumen.gui.views.feature_maps import FeatureMapView


def frame(step: int, maps: np.ndarray) -> FeatureMapFrame:
    mosaic, grid = tile(maps)
    layer = LayerMaps("conv", maps.shape, grid, mosaic, (float(maps.min()), float(maps.max())), "conv2d", "conv", maps)
    image = np.zeros((28, 28), np.float32)
    return FeatureMapFrame(step, "benchmark", image, (layer,), (("3", 0.9), ("8", 0.05)))


def measure(app: QApplication, view: FeatureMapView, frames: int, size: int) -> float:
    rng = np.random.default_rng(0)
    payloads = [frame(i, rng.standard_normal((64, size, size)).astype(np.float32)) for i in range(8)]
    view.show_frame(payloads[0])
    view.repaint()
    app.processEvents()
    began = time.perf_counter()
    for i in range(frames):
        view.show_frame(payloads[i % len(payloads)])
        view.canvas.viewport().repaint()
        app.processEvents()
    return frames / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=28)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    view = FeatureMapView()
    view.resize(1000, 700)
    view.show()
    app.processEvents()
    for label, index in (("shared colour scale", 0), ("per-tile colour scale", 1)):
        view.scale.setCurrentIndex(index)
        fps = measure(app, view, args.frames, args.size)
        print(f"64 maps of {args.size}×{args.size}, {label}: {fps:.0f} fps (goal ≥ 30)")
    view.close()


if __name__ == "__main__":
    main()
