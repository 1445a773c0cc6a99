"""The generate view in the real window: painting a mask makes the autoencoder fill it in, the interpolation's
ends follow the boxes, a VAE shows its prior samples and latent walks and a plain autoencoder does not."""

import numpy as np

from lumen.engine.probes.generating import GenerateFrame
from tests.support import load_preset


def load(qtbot, window, preset):
    return load_preset(qtbot, window, preset, GenerateFrame)


def test_painting_interpolating_and_sampling(qtbot, window):
    view = load(qtbot, window, "vae")
    assert view.samples_box.isVisible() and view.frame.walks is not None
    view.paint(slice(8, 16), slice(4, 24))
    qtbot.waitUntil(lambda: view.frame.inpainted is not None, timeout=15_000)
    frame = view.frame
    assert frame.settings.mask[8:16, 4:24].all() and frame.settings.mask.sum() == 8 * 20
    np.testing.assert_array_equal(view.filled.image, frame.inpainted)
    view.second.setValue(9)
    qtbot.waitUntil(lambda: view.frame.ends == (0, 9), timeout=15_000)
    assert view.between.image.shape[1] == 10 * 28 + 9  # ten pictures, a pixel apart
    view.reset_mask()
    qtbot.waitUntil(lambda: view.frame.inpainted is None, timeout=15_000)

    view = load(qtbot, window, "ae_undercomplete")
    assert not view.samples_box.isVisible() and view.frame.samples is None
