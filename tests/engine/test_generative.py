"""engine.explain.generative: an autoencoder split at its code, and what the split gives (prior samples, traversal,
interpolation, inpainting, neighbours, anomaly scores), each checked against a reference built another way: the
model's own forward pass, codes built by hand, torch.cdist, a count."""

import pytest
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.events import StepMetrics
from lumen.engine.explain.generative import (
    NotAnAutoencoder,
    anomaly,
    grid,
    inpaint,
    interpolate,
    neighbours,
    prior_samples,
    split_autoencoder,
    traversal,
)
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec, Node
from lumen.engine.training.loop import TrainConfig, Training

AUTOENCODERS = ("ae_undercomplete", "ae_sparse", "ae_contractive", "ae_denoising", "vae")


def model_of(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(get_preset(name))


def pictures(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def trained():
    """ae_undercomplete after 300 steps on the bundled digits, and its validation pictures."""
    torch.manual_seed(0)
    model = build_model(get_preset("ae_undercomplete"))
    data = load_dataset("mnist")
    training = Training(model, data, TrainConfig(epochs=10, max_steps=300, seed=0, device="cpu"))
    steps = [event.values for event in training.steps() if isinstance(event, StepMetrics)]
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"]
    return model, data.val_x


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_decode_of_encode_is_the_model_in_eval_mode_and_the_mode_is_restored(name):
    model = model_of(name)
    model.train()
    x = pictures(5)
    ae = split_autoencoder(model)
    z = ae.encode(x)
    assert model.training  # put back after each call
    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.train()
    assert z.shape == (5, ae.size) and ae.size == {"vae": 16, "ae_undercomplete": 32, "ae_denoising": 64}.get(name, 128)
    assert torch.equal(ae.decode(z), expected) and ae.decode(z).shape == x.shape
    assert ae.variational == (name == "vae") and ae.code_node == ("latent" if name == "vae" else "code")
    assert not z.requires_grad and model.training


def test_a_vae_code_is_mu():
    model = model_of("vae")
    x = pictures(3)
    z = split_autoencoder(model).encode(x)
    with torch.no_grad():
        hidden = model.layers["enc1_relu"](model.layers["enc1"](model.layers["flatten"](x)))
        mu = model.layers["latent"].mu_head(hidden)
    torch.testing.assert_close(z, mu)


def test_prior_samples_decode_the_generators_normal_draws():
    model = model_of("vae")
    samples = prior_samples(model, 6, torch.Generator().manual_seed(7))
    assert samples.shape == (6, 1, 28, 28)
    z = torch.randn((6, 16), generator=torch.Generator().manual_seed(7))
    assert torch.equal(samples, split_autoencoder(model).decode(z))
    assert not torch.equal(samples, prior_samples(model, 6, torch.Generator().manual_seed(8)))


def test_a_plain_autoencoder_has_no_prior():
    with pytest.raises(NotAnAutoencoder, match="plain autoencoder .* no prior to sample from; only a VAE"):
        prior_samples(model_of("ae_undercomplete"), 4)


@pytest.mark.parametrize("name", ("vae", "ae_undercomplete"))
def test_traversal_varies_one_dimension_and_holds_the_rest(name):
    model = model_of(name)
    x = pictures(1)
    ae = split_autoencoder(model)
    z = ae.encode(x)[0]
    values = [-2.0, 0.0, 0.5, 3.0]
    by_hand = torch.stack([torch.cat([z[:3], torch.tensor([v]), z[4:]]) for v in values])
    result = traversal(model, x[0], 3, values)
    assert result.shape == (4, 1, 28, 28)
    assert torch.equal(result, ae.decode(by_hand))
    assert not torch.equal(result[0], result[-1])
    with pytest.raises(NotAnAutoencoder, match=f"dimensions 0 to {ae.size - 1}, not {ae.size}"):
        traversal(model, x, ae.size, values)


def test_interpolation_ends_at_both_reconstructions_and_its_midpoint_is_the_latent_midpoint():
    model = model_of("vae")
    x0, x1 = pictures(1, seed=2), pictures(1, seed=3)
    ae = split_autoencoder(model)
    path = interpolate(model, x0, x1, 5)
    assert path.shape == (5, 1, 28, 28)
    torch.testing.assert_close(path[0], ae.decode(ae.encode(x0))[0])
    torch.testing.assert_close(path[-1], ae.decode(ae.encode(x1))[0])
    middle = (ae.encode(x0) + ae.encode(x1)) / 2
    torch.testing.assert_close(path[2], ae.decode(middle)[0])
    with pytest.raises(NotAnAutoencoder, match="at least 2 steps"):
        interpolate(model, x0, x1, 1)


def test_inpainting_leaves_the_known_pixels_and_fills_the_unknown_better_than_the_start(trained):
    model, val_x = trained
    x = val_x[:16]
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[14:, :] = True  # the bottom half unknown
    result = inpaint(model, x, mask, iterations=20)
    assert result.shape == x.shape
    assert torch.equal(result[:, :, ~mask], x[:, :, ~mask])
    known = ~mask
    start = torch.stack([torch.full((28, 28), float(p[0][known].mean())) for p in x])[:, None]
    before = ((start - x)[:, :, mask] ** 2).mean()
    after = ((result - x)[:, :, mask] ** 2).mean()
    assert after < 0.7 * before, (float(after), float(before))
    unchanged = inpaint(model, x, mask, iterations=0)
    torch.testing.assert_close(unchanged[:, :, mask], start[:, :, mask])


def test_inpainting_with_nothing_known_starts_at_one_half_and_a_mask_must_fit():
    model = model_of("ae_undercomplete")
    x = pictures(2)
    assert torch.equal(inpaint(model, x, torch.ones(28, 28, dtype=torch.bool), iterations=0), torch.full_like(x, 0.5))
    with pytest.raises(NotAnAutoencoder, match=r"the mask's shape \(10, 10\) does not fit"):
        inpaint(model, x, torch.zeros(10, 10, dtype=torch.bool))


def test_neighbours_rank_as_brute_force_cdist(monkeypatch):
    import lumen.engine.explain.generative as generative

    monkeypatch.setattr(generative, "ENCODE_BATCH", 7)  # several batches
    model = model_of("ae_undercomplete")
    pool, x = pictures(50, seed=4), pictures(1, seed=5)
    indices, distances = neighbours(model, x, pool, 8)
    model.eval()
    with torch.no_grad():
        codes = model.layers["code"](model.layers["enc1_relu"](model.layers["enc1"](pool.flatten(1))))
        query = model.layers["code"](model.layers["enc1_relu"](model.layers["enc1"](x.flatten(1))))
    brute = torch.cdist(query, codes, compute_mode="donot_use_mm_for_euclid_dist")[0]
    assert indices.tolist() == torch.argsort(brute)[:8].tolist()
    torch.testing.assert_close(distances, brute.sort().values[:8])
    own, _ = neighbours(model, pool[17], pool, 1)
    assert own.tolist() == [17]
    for k in (0, 51):
        with pytest.raises(NotAnAutoencoder, match="from 1 to the 50 pictures given, not"):
            neighbours(model, x, pool, k)


def test_anomaly_percentile_is_a_count_of_lower_errors():
    model = model_of("ae_contractive")
    reference, x = pictures(40, seed=6), pictures(1, seed=7) * 0.3
    error, percentile = anomaly(model, x, reference)
    model.eval()
    with torch.no_grad():
        own = float(((model(x) - x) ** 2).mean())
        errors = [float(((model(r[None]) - r[None]) ** 2).mean()) for r in reference]
    assert error == pytest.approx(own, rel=1e-5)
    assert percentile == pytest.approx(100 * sum(e < error for e in errors) / 40)
    _, noisy = anomaly(model, torch.ones(1, 1, 28, 28), reference)
    assert 0 <= percentile <= 100 and noisy == 100.0  # white paper is reconstructed worse than noise


def test_models_without_a_code_or_with_a_skip_around_it_are_refused():
    with pytest.raises(NotAnAutoencoder, match="RBM has no bottleneck or variational_bottleneck node"):
        split_autoencoder(build_model(get_preset("rbm")))
    with pytest.raises(NotAnAutoencoder, match="no bottleneck"):
        split_autoencoder(build_model(get_preset("lenet5")))
    nodes = (
        Node("input", "input", {"shape": [1, 28, 28]}),
        Node("flatten", "flatten"),
        Node("code", "bottleneck", {"code_size": 784}),
        Node("skip", "add"),
        Node("reshape", "reshape", {"shape": [1, 28, 28]}),
    )
    edges = (("input", "flatten"), ("flatten", "code"), ("code", "skip"), ("flatten", "skip"), ("skip", "reshape"))
    with pytest.raises(NotAnAutoencoder, match="skip reads flatten, which comes before the code code: a skip"):
        split_autoencoder(build_model(ModelSpec("skipper", nodes, edges)))
    with pytest.raises(NotAnAutoencoder, match="not a model built from a spec"):
        split_autoencoder(torch.nn.Linear(2, 2))


def test_grid_tiles_pictures_with_gaps():
    pixels = grid(torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, 2)]), columns=2, scale=2)
    assert pixels.shape == (2 * 4 + 1, 2 * 4 + 1) and pixels.dtype.name == "uint8"
    assert pixels[0, 0] == 0 and pixels[0, 5] == 255 and pixels[4, 0] == 128 and pixels[8, 8] == 128
