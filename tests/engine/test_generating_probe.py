"""The generate probe: inpainting, interpolation, prior samples and latent walks as engine.explain.generative makes
them (checked against the decoder called by hand); only for autoencoders of pictures; VAE-only parts only for VAEs."""

import numpy as np
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.events import ModelInfo
from lumen.engine.explain.generative import split_autoencoder
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import ProbeContext, ProbeInput
from lumen.engine.probes.generating import SAMPLES, WALK, GenerateSettings, Generating
from lumen.engine.training.fit import plan_run


def fitted(preset):
    torch.manual_seed(0)
    data = load_dataset("mnist")
    return build_model(plan_run(get_preset(preset), data).spec).eval(), data


def context(model, data, x):
    return ProbeContext(model, ProbeInput(x, "digit"), data.classes, 3, validation=(data.val_x[:20], data.val_y[:20]))


def test_it_applies_to_autoencoders_of_pictures_only():
    def info(family, shape):
        return ModelInfo("m", family, shape, frozenset(), "d", "classification", "autoencoder", "")

    assert Generating().applies(info("autoencoder", (1, 28, 28)))
    assert not Generating().applies(info("autoencoder", (20,)))
    assert not any(Generating().applies(info(f, (1, 28, 28))) for f in ("cnn", "boltzmann", "recurrent"))


def test_a_vae_gives_samples_walks_and_interpolation_as_its_decoder_makes_them():
    model, data = fitted("vae")
    x = data.val_x[5:6]
    probe = Generating()
    probe.configure(GenerateSettings(ends=(2, 7), seed=4))
    frame = probe.frame(context(model, data, x))
    ae = split_autoencoder(model)
    z = torch.randn((SAMPLES, ae.size), generator=torch.Generator().manual_seed(4))
    np.testing.assert_allclose(frame.samples, ae.decode(z)[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    code = ae.encode(x)[0]
    walked = code.repeat(len(WALK), 1)
    walked[:, 3] = torch.tensor(WALK)
    np.testing.assert_allclose(frame.walks[3], ae.decode(walked)[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    z2, z7 = ae.encode(data.val_x[2:3])[0], ae.encode(data.val_x[7:8])[0]
    middle = ae.decode(((z2 + z7) / 2)[None])  # not on the 10-step grid: check the ends, and a step by hand
    np.testing.assert_allclose(frame.between[0], ae.reconstruct(data.val_x[2:3])[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frame.between[-1], ae.reconstruct(data.val_x[7:8])[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    third = ae.decode((z2 + (z7 - z2) / 9 * 3)[None])
    np.testing.assert_allclose(frame.between[3], third[0, 0].numpy(), rtol=1e-4, atol=1e-5)
    assert middle.shape == (1, 1, 28, 28) and frame.inpainted is None  # no mask painted


def test_a_plain_autoencoder_inpaints_the_masked_pixels_and_has_no_prior():
    model, data = fitted("ae_undercomplete")
    x = data.val_x[0:1]
    mask = np.zeros((28, 28), bool)
    mask[10:18, 5:20] = True
    probe = Generating()
    probe.configure(GenerateSettings(mask=mask))
    frame = probe.frame(context(model, data, x))
    assert frame.samples is None and frame.walks is None
    np.testing.assert_array_equal(frame.inpainted[~mask], x[0, 0].numpy()[~mask])  # known pixels untouched
    assert (frame.masked[mask] == 0.5).all()
    assert GenerateSettings(mask=mask.copy()) == probe.settings and GenerateSettings() != probe.settings
