"""Objectives against independent references, fitting models to data, and the loop's settings."""

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lumen.engine.data.datasets import load_dataset
from lumen.engine.errors import LumenError, SpecError
from lumen.engine.events import StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.modules.autoencoder import Bottleneck
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.fit import fit_to_data, plan_run
from lumen.engine.training.loop import TrainConfig, Training
from lumen.engine.training.objectives import (
    OBJECTIVES,
    ContrastiveDivergence,
    choose_objective,
    contractive_penalty,
    gaussian_kl,
    kl_sparsity,
)


def small(data, n=64):
    """The first ``n`` training and validation samples: a few fast steps."""
    return dataclasses.replace(
        data, train_x=data.train_x[:n], train_y=data.train_y[:n], val_x=data.val_x[:n], val_y=data.val_y[:n]
    )


# ---- autoencoder terms -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "none"])
def test_contractive_penalty_is_the_squared_frobenius_norm_of_the_encoders_jacobian(activation):
    torch.manual_seed(0)
    code = Bottleneck(6, 4, activation=activation, contractive_weight=1.0)
    x = torch.randn(3, 6)
    h = code(x)
    ours = contractive_penalty(h, code.linear.weight, activation)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(lambda v: code(v.unsqueeze(0))[0], x[i])
        assert torch.allclose(ours[i], (jacobian**2).sum(), atol=1e-5)


def test_vae_kl_is_the_closed_form_against_a_standard_normal():
    torch.manual_seed(0)
    mu, log_var = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    reference = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    assert torch.allclose(gaussian_kl(mu, log_var), reference, atol=1e-5)


def test_kl_sparsity_is_the_bernoulli_kl_of_each_units_mean_activation():
    code = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    rho = 0.05
    expected = sum(rho * math.log(rho / m) + (1 - rho) * math.log((1 - rho) / (1 - m)) for m in (0.2, 0.6))
    assert kl_sparsity(code, rho).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("preset", "terms"),
    [
        ("ae_undercomplete", {"loss", "reconstruction"}),
        ("ae_sparse", {"loss", "reconstruction", "sparsity", "mean_activation"}),
        ("ae_contractive", {"loss", "reconstruction", "contractive"}),
        ("ae_denoising", {"loss", "reconstruction"}),
        ("vae", {"loss", "reconstruction", "kl"}),
    ],
)
def test_each_autoencoder_reports_each_term_and_the_loss_is_their_sum(preset, terms):
    data = small(load_dataset("mnist"))
    torch.manual_seed(0)
    model = build_model(get_preset(preset))
    training = Training(model, data, TrainConfig(epochs=1, batch_size=32, beta=2.0))
    step = next(training.steps())
    assert set(step.values) == terms
    beta = 2.0 if preset == "vae" else 1.0
    parts = sum(
        value * (beta if name == "kl" else 1.0)
        for name, value in step.values.items()
        if name not in ("loss", "mean_activation")  # a measure, not a part of the loss
    )
    assert step.values["loss"] == pytest.approx(parts, rel=1e-5)


def test_the_sparse_autoencoder_learns_and_its_code_approaches_the_target_activation():
    """The preset's sigmoid code with KL(ρ ‖ ρ̂) sparsity: within 100 steps the reconstruction falls well below its
    start (the old ReLU code with an L1 penalty died and stayed near 0.18) and the mean activation goes from ½
    towards ρ = 0.05, while the code stays alive."""
    torch.manual_seed(0)
    model = build_model(get_preset("ae_sparse"))
    training = Training(model, load_dataset("mnist"), TrainConfig(epochs=2, max_steps=100, seed=0, device="cpu"))
    steps = [event.values for event in training.steps() if isinstance(event, StepMetrics)]
    first, last = steps[0], steps[-1]
    assert len(steps) == 100
    assert first["mean_activation"] == pytest.approx(0.5, abs=0.05) and first["sparsity"] > 0.01
    assert last["reconstruction"] < 0.35 * first["reconstruction"]
    assert last["reconstruction"] < 0.1
    assert 0.02 < last["mean_activation"] < 0.12


def test_the_denoising_loss_compares_with_the_clean_input():
    data = small(load_dataset("mnist"))
    model = build_model(get_preset("ae_denoising"))  # its noise node masks 25% of the pixels while training
    objective = Training(model, data, TrainConfig()).objective
    model.train()
    x = data.train_x[:8]
    torch.manual_seed(1)
    _, terms = objective.loss(x, data.train_y[:8])
    torch.manual_seed(1)  # the same mask
    out = model(x)
    assert terms["reconstruction"] == pytest.approx(F.mse_loss(out, x).item(), rel=1e-6)


# ---- Boltzmann machines ----------------------------------------------------------------------------------------


def tiny_rbm(visible=4, hidden=3):
    torch.manual_seed(0)
    rbm = RBM(visible, hidden)
    with torch.no_grad():
        rbm.weight.normal_(0, 0.5)
        rbm.visible_bias.normal_(0, 0.5)
        rbm.hidden_bias.normal_(0, 0.5)
    return rbm


def test_free_energy_is_minus_the_log_of_the_sum_over_every_hidden_state():
    rbm = tiny_rbm()
    v = torch.bernoulli(torch.full((5, 4), 0.5), generator=torch.Generator().manual_seed(0))
    hidden_states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # 8×3
    energy = (
        -(v @ rbm.visible_bias)[:, None]
        - (hidden_states @ rbm.hidden_bias)[None]
        - (v @ rbm.weight.T) @ hidden_states.T
    )
    reference = -torch.logsumexp(-energy, dim=1)
    assert torch.allclose(rbm.free_energy(v), reference, atol=1e-5)


def test_one_cd1_step_is_the_hand_written_update():
    """ΔW = lr · (p(h|v₀) v₀ᵀ − p(h|v₁) v₁ᵀ) / N, Δb_v = lr · mean(v₀ − v₁), Δb_h = lr · mean(p(h|v₀) − p(h|v₁)),
    with v₁ one Gibbs step from v₀ (the same random numbers)."""
    spec = ModelSpec.sequential("RBM", (6,), [("rbm1", "rbm", {"hidden_size": 3})])
    x = torch.bernoulli(torch.full((8, 6), 0.5), generator=torch.Generator().manual_seed(1))
    data = load_dataset("mnist")
    data = dataclasses.replace(data, train_x=x, train_y=torch.zeros(8, dtype=torch.long), val_x=x, val_y=x[:, 0].long())
    torch.manual_seed(0)
    model = build_model(spec)
    rbm = model.layers["rbm1"]
    W, bv, bh = rbm.weight.detach().clone(), rbm.visible_bias.detach().clone(), rbm.hidden_bias.detach().clone()
    lr = 0.1
    training = Training(model, data, TrainConfig(epochs=1, batch_size=8, optimizer="sgd", momentum=0.0, lr=lr, seed=3))
    assert isinstance(training.objective, ContrastiveDivergence)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    v0 = x[order]
    sampler = torch.Generator().manual_seed(3)
    h0 = torch.bernoulli(torch.sigmoid(v0 @ W.T + bh), generator=sampler)
    v1 = torch.bernoulli(torch.sigmoid(h0 @ W + bv), generator=sampler)
    p0, p1 = torch.sigmoid(v0 @ W.T + bh), torch.sigmoid(v1 @ W.T + bh)
    next(training.steps())
    assert torch.allclose(rbm.weight, W + lr * (p0.T @ v0 - p1.T @ v1) / 8, atol=1e-6)
    assert torch.allclose(rbm.visible_bias, bv + lr * (v0 - v1).mean(0), atol=1e-6)
    assert torch.allclose(rbm.hidden_bias, bh + lr * (p0 - p1).mean(0), atol=1e-6)


@pytest.mark.parametrize("persistent", [False, True])
def test_rbm_reports_reconstruction_and_free_energy_on_training_and_held_out_data(persistent):
    data = small(load_dataset("mnist"), 128)
    model = build_model(get_preset("rbm"))
    events = list(Training(model, data, TrainConfig(epochs=2, batch_size=32, cd_k=2, persistent=persistent)).steps())
    epoch = events[-1]
    assert {"loss", "reconstruction", "free_energy"} <= set(epoch.train) and set(epoch.train) == set(epoch.val)
    assert all(math.isfinite(v) for v in [*epoch.train.values(), *epoch.val.values()])


def test_a_dbn_trains_its_layers_one_after_the_other():
    data = small(load_dataset("mnist"), 128)
    model = build_model(get_preset("dbn"))
    first = model.layers["rbm1"].weight.detach().clone()
    second = model.layers["rbm2"].weight.detach().clone()
    steps = [e for e in Training(model, data, TrainConfig(epochs=2, batch_size=32)).steps() if hasattr(e, "values")]
    assert [s.values["layer"] for s in steps] == [1.0] * 4 + [2.0] * 4
    assert not torch.equal(first, model.layers["rbm1"].weight) and not torch.equal(second, model.layers["rbm2"].weight)


def test_a_dbm_trains_jointly_with_mean_field_and_persistent_chains():
    data = small(load_dataset("mnist"), 64)
    model = build_model(get_preset("dbm"))
    training = Training(model, data, TrainConfig(epochs=1, batch_size=32, mean_field_steps=3))
    weights = [model.layers[n].weight.detach().clone() for n in ("rbm1", "rbm2")]
    events = list(training.steps())
    assert training.objective.chain is not None and len(training.objective.chain) == 3
    assert all(not torch.equal(w, model.layers[n].weight) for w, n in zip(weights, ("rbm1", "rbm2")))
    assert math.isfinite(events[-1].val["reconstruction"])


# ---- sequences -------------------------------------------------------------------------------------------------


def test_teacher_forcing_feeds_the_true_previous_token_and_evaluation_runs_free():
    data = small(load_dataset("reverse"))
    plan = plan_run(get_preset("lstm_encoder_decoder"), data, preferred="seq2seq")
    model = build_model(plan.spec)
    training = Training(model, data, TrainConfig(epochs=1, batch_size=32), plan.objective)
    objective = training.objective
    assert objective.teacher_forcing
    x, y = data.val_x[:4], data.val_y[:4]
    model.eval()
    with torch.no_grad():
        forced = objective._forward(x, objective._previous(y))
        plain = model(x)
    assert not torch.allclose(forced, plain)  # the fed-back tokens reach the decoder
    assert objective.decode(x, y.shape[1]).shape == y.shape
    epoch = list(training.steps())[-1]
    assert {"free_running_accuracy", "sequence_accuracy"} <= set(epoch.val)
    assert not model.layers["repeat"]._forward_hooks  # the hook comes off at the end of the run


def test_gradient_clipping_bounds_the_update():
    data = small(load_dataset("adding"))
    model = build_model(plan_run(get_preset("gru_many_to_one"), data).spec)
    before = [p.detach().clone() for p in model.parameters()]
    training = Training(
        model, data, TrainConfig(batch_size=64, optimizer="sgd", momentum=0.0, lr=1.0, clip_grad_norm=0.01)
    )
    next(training.steps())
    moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert moved.item() <= 0.01 + 1e-6


# ---- fitting to the data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "dataset", "changes"),
    [
        ("lstm_many_to_one", "recall", ["head out_features 5 → 8", "input 20×8 → 20×10"]),
        ("lenet5", "shapes", ["fc3 out_features 10 → 5", "input 1×28×28 → 3×32×32"]),
        ("lstm_encoder_decoder", "copy", ["repeat steps 10 → 8", "head out_features 5 → 6", "input 20×8 → 8×6"]),
        ("ae_undercomplete", "shapes", ["reshape shape 1×28×28 → 3×32×32", "dec_out out_features 784 → 3072"]),
        ("gru_many_to_many", "sine", ["head out_features 5 → 1", "input 20×8 → 40×1"]),
        ("lenet5", "mnist", []),
    ],
)
def test_models_are_resized_to_the_data_and_each_change_is_said(preset, dataset, changes):
    data = load_dataset(dataset)
    report = fit_to_data(get_preset(preset), data, choose_objective(None, data, get_preset(preset)))
    assert all(change in report.changes for change in changes), report.changes
    assert len(report.changes) == len(changes) + (
        "input" in " ".join(report.changes) and not any("input" in c for c in changes)
    )
    build_model(report.spec)  # and it builds


def test_a_model_that_cannot_be_fitted_gets_one_message_naming_the_node():
    data = load_dataset("sine")
    with pytest.raises(SpecError) as caught:
        fit_to_data(get_preset("lenet5"), data, "forecast")
    assert caught.value.node == "input" and "cannot be resized" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        fit_to_data(get_preset("alexnet"), load_dataset("shapes", size=32), "classification")
    assert caught.value.node == "features.12" and "resized to shapes's 3×32×32" in str(caught.value)


def test_the_objective_follows_the_data_unless_the_model_calls_for_its_own():
    assert choose_objective("classification", load_dataset("adding")) == "forecast"
    assert choose_objective("forecast", load_dataset("recall")) == "classification"
    assert choose_objective(None, load_dataset("shapes"), get_preset("vae")) == "autoencoder"
    assert choose_objective(None, load_dataset("mnist"), get_preset("dbm")) == "dbm"
    assert set(OBJECTIVES) == {"classification", "forecast", "seq2seq", "autoencoder", "rbm", "dbn", "dbm"}


# ---- the loop's settings ---------------------------------------------------------------------------------------


def weights_after(seed, steps=3):
    data = small(load_dataset("mnist"), 128)
    torch.manual_seed(seed)
    model = build_model(get_preset("lenet5"))
    iterator = Training(model, data, TrainConfig(epochs=1, batch_size=32, seed=seed)).steps()
    for _ in range(steps):
        next(iterator)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_same_seed_gives_the_same_weights():
    assert torch.equal(weights_after(4), weights_after(4))
    assert not torch.equal(weights_after(4), weights_after(5))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "plateau"])
def test_every_optimizer_and_schedule_trains(optimizer, schedule):
    data = small(load_dataset("recall"))
    model = build_model(plan_run(get_preset("gru_many_to_one"), data).spec)
    config = TrainConfig(epochs=2, batch_size=32, optimizer=optimizer, schedule=schedule, gamma=0.5)
    training = Training(model, data, config)
    events = list(training.steps())
    assert all(math.isfinite(v) for e in events if hasattr(e, "values") for v in e.values.values())
    if schedule in ("step", "cosine"):
        assert training.lr < config.lr


def test_the_learning_rate_changes_mid_run():
    data = small(load_dataset("recall"))
    training = Training(build_model(plan_run(get_preset("lstm_many_to_one"), data).spec), data, TrainConfig())
    training.set_lr(0.5)
    assert all(group["lr"] == 0.5 for group in training.optimizer.param_groups)
    with pytest.raises(LumenError, match="positive"):
        training.set_lr(-1)


def test_early_stopping_keeps_the_best_epochs_weights():
    data = small(load_dataset("recall"))
    model = build_model(plan_run(get_preset("rnn_many_to_one"), data).spec)
    # A learning rate this high makes the validation loss worse after the first epoch.
    training = Training(model, data, TrainConfig(epochs=30, batch_size=64, lr=3.0, optimizer="sgd", patience=2))
    events = list(training.steps())
    assert training.stopped_early_at is not None and training.stopped_early_at < 30
    best_loss, best_epoch, _ = training.best
    assert training.validate()["loss"] == pytest.approx(best_loss, rel=1e-5)
    assert len([e for e in events if hasattr(e, "val")]) == training.stopped_early_at


def test_settings_out_of_range_are_refused_in_one_line():
    for bad in (dict(optimizer="lbfgs"), dict(schedule="warm"), dict(device="tpu"), dict(patience=-1), dict(cd_k=0)):
        with pytest.raises(LumenError):
            TrainConfig(**bad).check()


def test_a_device_asked_for_but_missing_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(LumenError, match="no CUDA device"):
        Training(build_model(get_preset("lenet5")), small(load_dataset("mnist")), TrainConfig(device="cuda"))
