"""The Boltzmann probe: its filters, reconstructions and chain checked against the RBM's formulas written out here
(numpy, float64), not against the probe's own helpers; only for Boltzmann machines; a frame leaves the model as
it was."""

import numpy as np
import pytest
import torch
from torch import nn

from lumen.engine.data.datasets import load_dataset
from lumen.engine.errors import LumenError
from lumen.engine.events import ModelInfo
from lumen.engine.graph.model import build_model
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import ProbeContext
from lumen.engine.probes.boltzmann import MAX_FILTERS, SHOWN, Boltzmann, BoltzmannSettings
from lumen.engine.training.fit import plan_run
from lumen.engine.training.info import model_info


def info(family: str, shape: tuple[int, ...] = (1, 28, 28)) -> ModelInfo:
    return ModelInfo("m", family, shape, frozenset(), "mnist", "classification", None, "")


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def preset_context(preset: str, data, seed: int = 0) -> ProbeContext:
    """The preset's model with weights and biases far from their start (so nothing is ~0.5 by accident)."""
    torch.manual_seed(seed)
    plan = plan_run(get_preset(preset), data)
    model = build_model(plan.spec).eval()
    with torch.no_grad():
        for rbm in (m for m in model.modules() if isinstance(m, RBM)):
            rbm.weight.normal_(0, 0.1)
            rbm.visible_bias.normal_(0, 1)
            rbm.hidden_bias.normal_(0, 1)
    validation = (data.val_x[:40], data.val_y[:40])
    return ProbeContext(model, None, data.classes, 7, model_info(plan.spec, data, plan.objective), validation)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def weights(rbm: RBM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(p.detach().double().numpy() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))  # type: ignore[return-value]


def test_it_applies_to_boltzmann_machines_only():
    assert Boltzmann().applies(info("boltzmann"))
    assert not any(Boltzmann().applies(info(family)) for family in ("cnn", "recurrent", "autoencoder", "dense"))


def test_filters_and_reconstructions_are_the_rbms_weights_and_its_two_conditionals(mnist):
    context = preset_context("rbm", mnist)
    rbm = context.model.get_submodule("rbm1")
    frame = Boltzmann().frame(context)
    assert frame.layer == "rbm1" and frame.layers == ("rbm1",) and frame.picture == (28, 28) and frame.step == 7
    w, b, c = weights(rbm)
    assert frame.units == 128 and frame.filters.shape == (MAX_FILTERS, 28, 28)
    np.testing.assert_allclose(frame.filters, w[:MAX_FILTERS].reshape(-1, 28, 28), rtol=1e-6)
    v = mnist.val_x[:SHOWN].double().numpy().reshape(SHOWN, 784)
    np.testing.assert_allclose(frame.inputs, v.reshape(-1, 28, 28), atol=1e-6)
    expected = sigmoid(sigmoid(v @ w.T + c) @ w + b)  # E[v | h] with h = p(h = 1 | v), written out
    np.testing.assert_allclose(frame.reconstructions, expected.reshape(-1, 28, 28), atol=1e-5)
    whole = mnist.val_x[:40].double().numpy().reshape(40, 784)
    free = -(whole @ b) - np.logaddexp(0, whole @ w.T + c).sum(1)
    assert frame.validation_count == 40 and frame.validation_free_energy == pytest.approx(free.mean(), rel=1e-5)


def test_the_chains_energy_is_the_rbm_energy_of_its_samples(mnist):
    context = preset_context("rbm", mnist)
    rbm = context.model.get_submodule("rbm1")
    probe = Boltzmann()
    probe.configure(BoltzmannSettings(steps=7))
    frame = probe.frame(context)
    w, b, c = weights(rbm)
    v, h = frame.chain_visible.astype(np.float64), frame.chain_hidden.astype(np.float64)
    assert v.shape == (SHOWN, 784) and h.shape == (SHOWN, 128) and set(np.unique(v)) <= {0.0, 1.0}
    assert frame.energy.shape == (7, SHOWN) and frame.free_energy.shape == (8, SHOWN)
    by_hand = -(v @ b) - h @ c - ((v @ w.T) * h).sum(1)  # E(v, h) = −vᵀb − hᵀc − hᵀWv
    np.testing.assert_allclose(frame.energy[-1], by_hand, rtol=1e-5, atol=1e-3)
    free = -(v @ b) - np.logaddexp(0, v @ w.T + c).sum(1)  # F(v) = −vᵀb − Σ log(1 + e^{c + Wv})
    np.testing.assert_allclose(frame.free_energy[-1], free, rtol=1e-5, atol=1e-3)
    assert np.all(frame.free_energy[-1] <= frame.energy[-1] + 1e-3)  # F(v) = −log Σ_h e^{−E(v,h)} ≤ E(v, h)
    start = mnist.val_x[:SHOWN].double().numpy().reshape(SHOWN, 784)
    np.testing.assert_allclose(frame.free_energy[0], -(start @ b) - np.logaddexp(0, start @ w.T + c).sum(1), rtol=1e-5)
    expected_samples = sigmoid(h @ w + b)  # what is drawn: E[v | h_k]
    np.testing.assert_allclose(frame.samples, expected_samples.reshape(-1, 28, 28), atol=1e-5)
    assert frame.snapshot_steps[0] == 0 and frame.snapshot_steps[-1] == 7 and len(frame.snapshots) == 8


def test_gaussian_visible_units_have_their_own_energy():
    torch.manual_seed(1)
    rbm = RBM(12, 5, visible="gaussian")
    with torch.no_grad():
        rbm.weight.normal_(0, 0.3)
        rbm.visible_bias.normal_(0, 1)
        rbm.hidden_bias.normal_(0, 1)
    model = nn.Sequential(rbm)
    x = torch.randn(20, 12)
    context = ProbeContext(model, None, (), 0, info("boltzmann", (12,)), (x, torch.zeros(20)))
    frame = Boltzmann().frame(context)
    assert frame.layer == "0" and frame.visible == "gaussian" and frame.picture == (3, 4) and frame.tile == (3, 4)
    w, b, c = weights(rbm)
    v, h = frame.chain_visible.astype(np.float64), frame.chain_hidden.astype(np.float64)
    by_hand = 0.5 * ((v - b) ** 2).sum(1) - h @ c - ((v @ w.T) * h).sum(1)
    np.testing.assert_allclose(frame.energy[-1], by_hand, rtol=1e-5, atol=1e-4)
    reconstruction = sigmoid(x[:SHOWN].double().numpy() @ w.T + c) @ w + b  # the Gaussian's mean, no sigmoid
    np.testing.assert_allclose(frame.reconstructions.reshape(SHOWN, 12), reconstruction, atol=1e-5)


def test_an_upper_layer_of_a_dbn_is_drawn_in_the_inputs_pictures(mnist):
    context = preset_context("dbn", mnist)
    low, high = context.model.get_submodule("rbm1"), context.model.get_submodule("rbm2")
    probe = Boltzmann()
    probe.configure(BoltzmannSettings(layer="rbm2", steps=3))
    frame = probe.frame(context)
    assert frame.layer == "rbm2" and frame.layers == ("rbm1", "rbm2") and frame.stack == "dbn"
    assert frame.tile == (16, 16) and frame.picture == (28, 28) and frame.units == 64
    w1, b1, c1 = weights(low)
    w2, b2, c2 = weights(high)
    np.testing.assert_allclose(frame.filters.reshape(64, 256), w2, rtol=1e-6)
    v = mnist.val_x[:SHOWN].double().numpy().reshape(SHOWN, 784)
    h1 = sigmoid(v @ w1.T + c1)  # what rbm2 reads
    down = sigmoid(sigmoid(sigmoid(h1 @ w2.T + c2) @ w2 + b2) @ w1 + b1)  # reconstructed, then carried down
    np.testing.assert_allclose(frame.reconstructions.reshape(SHOWN, 784), down, atol=1e-5)
    hv, hh = frame.chain_visible.astype(np.float64), frame.chain_hidden.astype(np.float64)
    np.testing.assert_allclose(frame.energy[-1], -(hv @ b2) - hh @ c2 - ((hv @ w2.T) * hh).sum(1), atol=1e-3)


def test_a_dbm_chain_runs_over_the_whole_machine(mnist):
    probe = Boltzmann()
    probe.configure(BoltzmannSettings(steps=4, start="noise"))
    frame = probe.frame(preset_context("dbm", mnist))
    assert frame.stack == "dbm" and frame.energy.shape == (4, SHOWN) and frame.free_energy is None
    assert frame.samples.shape == (SHOWN, 28, 28) and "whole DBM" in frame.note


def test_a_frame_changes_nothing_and_is_the_same_twice(mnist):
    context = preset_context("rbm", mnist)
    context.model.train()
    before = {k: v.clone() for k, v in context.model.state_dict().items()}
    rng = torch.get_rng_state()
    probe = Boltzmann()
    first, second = probe.frame(context), probe.frame(context)
    assert context.model.training  # its mode as it was
    assert all(torch.equal(before[k], v) for k, v in context.model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())  # its own generator: training's random draws are untouched
    np.testing.assert_array_equal(first.energy, second.energy)
    np.testing.assert_array_equal(first.samples, second.samples)


def test_settings_are_checked_and_followed(mnist):
    with pytest.raises(LumenError, match="1 to 1000 steps"):
        BoltzmannSettings(steps=0)
    with pytest.raises(LumenError, match="data or noise"):
        BoltzmannSettings(start="zeros")
    probe = Boltzmann()
    probe.configure(BoltzmannSettings(steps=12, start="noise"))
    frame = probe.frame(preset_context("rbm", mnist))
    assert frame.energy.shape == (12, SHOWN) and frame.settings.start == "noise"
    assert set(np.unique(frame.snapshots[0])) <= {0.0, 1.0}  # the chain began at random binary units


def test_without_validation_data_the_chains_start_from_noise(mnist):
    context = preset_context("rbm", mnist)
    bare = ProbeContext(context.model, None, (), 0, context.info, None)
    frame = Boltzmann().frame(bare)
    assert len(frame.inputs) == 0 and frame.validation_free_energy is None and "noise" in frame.note
    assert frame.samples.shape == (SHOWN, 28, 28)
