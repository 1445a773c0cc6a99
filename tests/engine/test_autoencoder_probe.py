"""The autoencoder probe: reconstructions equal the model's own eval-mode output, errors are their mean squared
errors, the latent points are the bottleneck's code (or its first two principal components, against numpy's
covariance eigenvectors), masking noise corrupts the input it was given; only for autoencoders."""

import numpy as np
import pytest
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.errors import LumenError
from lumen.engine.events import ModelInfo
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.autoencoder import AutoencoderSettings, Autoencoding, two_dimensions
from lumen.engine.probes.base import ProbeContext
from lumen.engine.training.fit import plan_run


def fitted(preset):
    torch.manual_seed(0)
    data = load_dataset("mnist")
    return build_model(plan_run(get_preset(preset), data).spec), data


def context(model, data, count=40):
    return ProbeContext(model, None, data.classes, 7, validation=(data.val_x[:count], data.val_y[:count]))


def test_it_applies_to_autoencoders_only():
    for family, applies in (("autoencoder", True), ("cnn", False), ("recurrent", False), ("boltzmann", False)):
        info = ModelInfo("m", family, (1, 28, 28), frozenset(), "mnist", "classification", "autoencoder", "")
        assert Autoencoding().applies(info) is applies


@pytest.mark.parametrize("preset", ["vae", "ae_sparse"])
def test_reconstructions_errors_and_codes_are_the_models_own(preset):
    model, data = fitted(preset)
    model.train()  # the probe looks in eval mode and leaves the mode as it was
    frame = Autoencoding().frame(context(model, data))
    assert model.training
    x = data.val_x[:40]
    with torch.no_grad():
        out = model.eval()(x)
    np.testing.assert_allclose(frame.outputs, out[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(frame.inputs, x[:, 0].numpy())
    np.testing.assert_allclose(frame.errors, ((out - x) ** 2).flatten(1).mean(1).numpy(), rtol=1e-5)
    code = model.get_submodule(frame.code.split(" ")[0])
    codes = (code.mu if preset == "vae" else code.code).numpy()  # what the last forward left on the module
    expected, _ = two_dimensions(codes)
    np.testing.assert_allclose(frame.points, expected, rtol=1e-4, atol=1e-5)
    assert frame.labels.tolist() == data.val_y[:40].tolist() and frame.classes == data.classes


def test_more_than_two_code_numbers_are_projected_on_their_two_main_directions():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(200, 5)) * np.array([5.0, 0.1, 2.0, 0.1, 0.1])
    points, axes = two_dimensions(codes)
    covariance = np.cov(codes, rowvar=False)
    values, vectors = np.linalg.eigh(covariance)
    top = vectors[:, np.argsort(values)[::-1][:2]]
    expected = (codes - codes.mean(0)) @ top
    for k in range(2):  # an eigenvector's sign is arbitrary
        assert abs(np.corrcoef(points[:, k], expected[:, k])[0, 1]) > 0.9999
    share = values[::-1][0] / values.sum()
    assert axes[0] == f"PC1 ({share:.0%} of the variance)"


def test_two_code_numbers_are_drawn_as_they_are():
    codes = np.array([[1.0, 2.0], [3.0, -4.0]])
    points, axes = two_dimensions(codes)
    np.testing.assert_array_equal(points, codes.astype(np.float32))
    assert axes == ("code 0", "code 1")


def test_noise_zeroes_the_share_asked_for_and_the_output_is_of_the_corrupted_input():
    model, data = fitted("ae_denoising")
    probe = Autoencoding()
    probe.configure(AutoencoderSettings(noise=0.5))
    frame = probe.frame(context(model, data))
    x = data.val_x[:40]
    lit = x[:, 0].numpy() != 0
    zeroed = (frame.corrupted == 0) & lit
    assert 0.4 < zeroed.sum() / lit.sum() < 0.6
    np.testing.assert_array_equal(frame.corrupted[~zeroed], x[:, 0].numpy()[~zeroed])
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(frame.corrupted).unsqueeze(1))
    np.testing.assert_allclose(frame.outputs, out[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(LumenError, match="noise level"):
        AutoencoderSettings(noise=1.5)


def test_a_sparse_code_reports_its_units_mean_activation_and_a_contractive_one_its_jacobian():
    model, data = fitted("ae_sparse")
    frame = Autoencoding().frame(context(model, data))
    code = model.get_submodule(frame.code.split(" ")[0])
    np.testing.assert_allclose(frame.unit_means, code.code.mean(0).numpy(), rtol=1e-5, atol=1e-7)
    assert frame.jacobian is None

    model, data = fitted("ae_contractive")
    frame = Autoencoding().frame(context(model, data, count=6))
    assert frame.unit_means is None
    code = model.get_submodule(frame.code.split(" ")[0])
    flatten = torch.nn.Flatten()
    norms = []
    for x in data.val_x[:6]:  # autograd's Jacobian of the code with respect to the picture, one sample at a time
        jacobian = torch.autograd.functional.jacobian(lambda v: code.eval()(flatten(v.unsqueeze(0)))[0], x)
        norms.append(float(jacobian.flatten(1).norm()))
    np.testing.assert_allclose(frame.jacobian, np.mean(norms), rtol=1e-4)


def test_the_probe_input_is_scored_placed_and_given_its_nearest_validation_samples():
    from lumen.engine.probes.autoencoder import fit_plane
    from lumen.engine.probes.base import ProbeInput

    model, data = fitted("ae_undercomplete")
    square = torch.zeros(1, 1, 28, 28)
    square[..., 6:22, 6:22] = 1.0  # not a digit
    given = ProbeInput(square, "square.png")
    frame = Autoencoding().frame(
        ProbeContext(model, given, data.classes, 0, validation=(data.val_x[:50], data.val_y[:50]))
    )
    probed = frame.probed
    code = model.get_submodule(frame.code.split(" ")[0])
    with torch.no_grad():
        out = model.eval()(square)
        mine = code.code.clone()
        model(data.val_x[:50])
        theirs = code.code.clone()
    assert probed.source == "square.png"
    np.testing.assert_allclose(probed.output, out[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    assert probed.error == pytest.approx(float(((out - square) ** 2).mean()), rel=1e-5)
    ranking = np.argsort(((theirs - mine) ** 2).sum(1).numpy(), kind="stable")  # brute force, squared distance
    assert probed.nearest.tolist() == ranking[:8].tolist()
    np.testing.assert_allclose(probed.point, fit_plane(theirs.numpy()).project(mine.numpy())[0], rtol=1e-4, atol=1e-4)
