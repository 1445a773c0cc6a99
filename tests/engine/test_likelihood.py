"""An RBM's log-likelihood (``engine.explain.likelihood``): exact log Z equal to brute force over every visible and
hidden state, p(v) summing to one, AIS within a nat of the exact figure for an RBM trained on binarised digits, and
the exact figure reported by the CD objective's validation each epoch."""

import dataclasses
import itertools
import math

import pytest
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.errors import LumenError
from lumen.engine.explain.likelihood import (
    ais_log_partition,
    beta_schedule,
    exact_log_likelihood,
    exact_log_partition,
    log_likelihood,
    single_rbm,
    visible_data,
)
from lumen.engine.graph.model import build_model
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.presets import get_preset
from lumen.engine.training.loop import TrainConfig, Training


@pytest.fixture(autouse=True)
def one_thread():
    """Small matrix products on a shared 2-core machine: one thread is faster and steadier (as test_gates.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_rbm(visible=6, hidden=4, kind="bernoulli", seed=0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(visible, hidden, visible=kind).double()
    with torch.no_grad():
        rbm.weight.normal_(0, 1.0)
        rbm.visible_bias.normal_(0, 1.0)
        rbm.hidden_bias.normal_(0, 1.0)
    return rbm


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def test_exact_log_z_is_the_brute_force_sum_over_every_visible_and_hidden_state():
    rbm = tiny_rbm()
    v, h = states(6), states(4)  # 64 × 6, 16 × 4
    energy = (
        -(v @ rbm.visible_bias)[:, None] - (h @ rbm.hidden_bias)[None, :] - (v @ rbm.weight.T) @ h.T
    )  # E(v, h) for all 64 × 16 pairs
    brute = torch.logsumexp(-energy.flatten(), 0).item()
    assert exact_log_partition(rbm) == pytest.approx(brute, abs=1e-10)
    assert exact_log_partition(rbm, chunk=3) == pytest.approx(brute, abs=1e-10)  # chunks that do not divide 2^4
    assert rbm.log_partition(chunk=5) == pytest.approx(brute, abs=1e-10)  # in the weights' own dtype (float64 here)


def test_exact_p_of_v_sums_to_one_over_every_visible_state():
    rbm = tiny_rbm(seed=1)
    log_p = exact_log_likelihood(rbm, states(6))
    assert torch.exp(log_p).sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (log_p < 0).all()


def test_gaussian_visible_units_integrate_to_the_closed_form():
    """One Gaussian visible unit: Σ_h ∫ exp(−E(v, h)) dv by the trapezoid rule on a fine grid."""
    rbm = tiny_rbm(visible=1, hidden=3, kind="gaussian", seed=2)
    grid = torch.linspace(-40, 40, 200_001, dtype=torch.float64)
    density = torch.exp(log_likelihood(rbm, grid[:, None], exact_log_partition(rbm)))
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-9)
    assert rbm.log_partition() == pytest.approx(exact_log_partition(rbm), abs=1e-10)


def test_exact_is_refused_beyond_twenty_hidden_units():
    with pytest.raises(LumenError, match="21 hidden units, more than 20 .*annealed importance sampling"):
        exact_log_partition(RBM(4, 21))


def test_the_beta_schedule_runs_from_zero_to_one_upwards():
    for count in (2, 3, 4, 10, 1000):
        schedule = beta_schedule(count)
        assert len(schedule) == count and schedule[0] == 0.0 and schedule[-1] == 1.0
        assert all(a < b for a, b in zip(schedule, schedule[1:], strict=False))


def test_ais_on_a_tiny_rbm_is_close_and_seeded():
    rbm = tiny_rbm(seed=3)
    first = ais_log_partition(rbm, chains=64, betas=500, generator=torch.Generator().manual_seed(5))
    again = ais_log_partition(rbm, chains=64, betas=500, generator=torch.Generator().manual_seed(5))
    assert first.log_z == again.log_z
    assert first.low <= exact_log_partition(rbm) <= first.high
    assert abs(first.log_z - exact_log_partition(rbm)) < 0.1


def binarised_digits():
    return load_dataset("mnist", binarise=True)


def test_binarised_digits_are_zeros_and_ones():
    data = binarised_digits()
    assert set(data.train_x.unique().tolist()) == {0.0, 1.0} and data.options == {"binarise": True}
    assert torch.equal(data.val_x, (load_dataset("mnist").val_x >= 0.5).float())


def test_ais_is_within_a_nat_of_the_exact_figure_for_rbm16_trained_on_binarised_digits():
    data = binarised_digits()
    torch.manual_seed(0)
    model = build_model(get_preset("rbm16"))
    config = TrainConfig(epochs=1, batch_size=32, optimizer="sgd", lr=0.05, seed=0)
    for _ in Training(model, data, config).steps():
        pass
    node, rbm = single_rbm(model)
    exact = exact_log_partition(rbm)
    estimate = ais_log_partition(rbm, chains=100, betas=2000, data=visible_data(model, node, data.train_x))
    assert abs(estimate.log_z - exact) < 1.0, (estimate, exact)
    assert estimate.low < estimate.log_z < estimate.high
    v = visible_data(model, node, data.val_x)
    assert -300 < float(log_likelihood(rbm, v, exact).mean()) < -100  # it learnt something: the base rate is ~-200


def test_rbm16_validation_reports_the_exact_log_likelihood_each_epoch():
    data = binarised_digits()
    n = 128
    data = dataclasses.replace(data, train_x=data.train_x[:n], train_y=data.train_y[:n])
    torch.manual_seed(0)
    model = build_model(get_preset("rbm16"))
    config = TrainConfig(epochs=2, batch_size=32, optimizer="sgd", lr=0.05, seed=0)
    epochs = [e for e in Training(model, data, config).steps() if hasattr(e, "val")]
    assert len(epochs) == 2 and all("log_likelihood" in e.val for e in epochs)
    assert all("log_likelihood" not in e.train for e in epochs)  # measured on held-out data only
    node, rbm = single_rbm(model)
    expected = float(exact_log_likelihood(rbm, visible_data(model, node, data.val_x)).mean())
    assert epochs[-1].val["log_likelihood"] == pytest.approx(expected, abs=1e-3)


def test_no_epoch_log_likelihood_for_large_rbms_or_grey_digits():
    data = load_dataset("mnist")
    data = dataclasses.replace(data, train_x=data.train_x[:64], train_y=data.train_y[:64], val_x=data.val_x[:64])
    for preset in ("rbm16", "rbm"):  # grey digits: not a likelihood of binary units; 128 hidden units: too many
        model = build_model(get_preset(preset))
        epoch = [e for e in Training(model, data, TrainConfig(epochs=1, batch_size=32)).steps() if hasattr(e, "val")]
        assert "log_likelihood" not in epoch[-1].val


def test_a_stack_or_no_rbm_is_refused_in_one_line():
    with pytest.raises(LumenError, match="stacks 2 RBMs"):
        single_rbm(build_model(get_preset("dbn")))
    with pytest.raises(LumenError, match="no rbm layer"):
        single_rbm(build_model(get_preset("lenet5")))


def test_log_likelihood_is_minus_free_energy_minus_log_z():
    rbm = tiny_rbm(seed=4)
    v = states(6)[:5]
    assert torch.allclose(log_likelihood(rbm, v, 2.5), -rbm.free_energy(v) - 2.5)
    assert math.isfinite(exact_log_partition(rbm))
