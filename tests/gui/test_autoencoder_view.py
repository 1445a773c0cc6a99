"""The autoencoder view in the real window: reconstructions beside their pictures, the latent space by class, a
clicked point's picture and how unusual it is, the noise slider reconfiguring the probe."""

import numpy as np

from lumen.engine.probes.autoencoder import AutoencoderFrame
from tests.support import load_preset


def load(qtbot, window, preset):
    return load_preset(qtbot, window, preset, AutoencoderFrame)


def test_reconstructions_latent_space_and_a_picked_sample(qtbot, window):
    view = load(qtbot, window, "vae")
    assert window.viewer.tabs.isVisible() and not window.viewer.not_yet.isVisible()
    frame = view.frame
    assert len(frame.errors) == 256 and frame.points.shape == (256, 2)
    first = view.grid_image.image
    np.testing.assert_array_equal(first[:28, :28], frame.inputs[0])  # top left: the first picture …
    np.testing.assert_array_equal(first[:28, 29:57], frame.outputs[0])  # … and its reconstruction beside it
    x, y = view.scatter.getData()
    np.testing.assert_allclose(np.stack([x, y], 1), frame.points)
    assert len(view.legend.items) == len(set(frame.labels.tolist()))

    view.show.setCurrentIndex(view.show.findData("worst"))
    view.show.activated.emit(view.show.currentIndex())
    worst = int(np.argmax(frame.errors))
    np.testing.assert_array_equal(view.grid_image.image[:28, :28], frame.inputs[worst])

    view.pick(worst)
    assert f"validation sample #{worst}" in view.pick_text.text()
    assert "higher than 255 of the other 255 samples" in view.pick_text.text()  # the most unusual of all
    np.testing.assert_array_equal(view.mark.getData()[0], frame.points[worst : worst + 1, 0])

    view.noise.setValue(40)
    qtbot.waitUntil(lambda: view.frame.settings.noise == 0.4 and view.frame.corrupted is not None, timeout=10_000)
    assert "corrupted | output | clean" in view.grid_title.text()


def test_no_probe_input_controls_where_no_view_uses_them(qtbot, window):
    viewer = window.viewer
    assert viewer.probe.isVisible() and viewer.open_button.isVisible()  # LeNet: the picture is what it shows
    for preset in ("rbm",):
        load_preset(qtbot, window, preset)
        assert not viewer.probe.isVisible() and not viewer.open_button.isVisible()
        assert not viewer.invariance.isVisible() and not viewer.message.text()


def test_a_sparse_code_shows_its_units_activity_and_a_contractive_one_its_jacobian(qtbot, window):
    view = load(qtbot, window, "ae_sparse")
    frame = view.frame
    assert view.sparsity.isVisible() and frame.unit_means is not None
    _, counts = view.sparsity_bars.getData()
    assert counts.sum() == len(frame.unit_means)  # every unit in one bar
    view = load(qtbot, window, "ae_contractive")
    assert not view.sparsity.isVisible() and f"{view.frame.jacobian:.4g}" in view.grid_title.text()


def test_a_dropped_picture_is_scored_against_the_validation_samples(qtbot, window, tmp_path):
    from PySide6.QtGui import QColor, QImage

    view = load(qtbot, window, "ae_undercomplete")
    assert window.viewer.open_button.isVisible()  # a picture can be given to it
    picture = QImage(28, 28, QImage.Format.Format_Grayscale8)
    picture.fill(QColor("black"))
    for x in range(4, 24):
        for y in (4, 5, 22, 23):
            picture.setPixelColor(x, y, QColor("white"))
            picture.setPixelColor(y, x, QColor("white"))
    path = tmp_path / "frame.png"
    picture.save(str(path))
    window.viewer.image_dropped.emit(str(path))
    qtbot.waitUntil(lambda: view.frame.probed is not None and view.frame.probed.source == "frame.png", timeout=15_000)
    probed = view.frame.probed
    below = int((view.frame.errors < probed.error).sum())
    assert f"higher than {below:,} of the 256 validation samples" in view.probe_text.text()
    np.testing.assert_allclose(view.probe_mark.getData()[0], probed.point[:1])
    assert view.probe_image.image.shape[1] > 28 * 10  # its pictures, then its 8 neighbours
