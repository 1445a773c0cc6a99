"""Autoencoder and Boltzmann parts, checked against exact formulas and torch's own distributions."""

import copy
import itertools

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from lumen.engine.errors import SpecError
from lumen.engine.graph.model import build_model, infer_shapes, summarize
from lumen.engine.layers.boltzmann import boltzmann_stack
from lumen.engine.presets.generative import GENERATIVE_PRESETS
from lumen.engine.spec.model_spec import ModelSpec, Node

PRESETS = {p.name: p for p in GENERATIVE_PRESETS}
BOLTZMANN = ("rbm", "rbm16", "dbn", "dbm")
AUTOENCODERS = [name for name in PRESETS if name not in BOLTZMANN]


def one_layer(layer_type: str, input_shape=(6,), **params) -> nn.Module:
    model = build_model(ModelSpec.sequential("t", input_shape, [("layer", layer_type, params)]))
    return model.layers["layer"]


def extra_loss(model) -> torch.Tensor:
    """What training adds to the reconstruction loss: bottleneck penalties and the VAE's KL term."""
    total = torch.zeros(())
    for module in model.modules():
        if hasattr(module, "penalty"):
            total = total + module.penalty()
        if hasattr(module, "kl"):
            total = total + module.kl()
    return total


# ---- presets ------------------------------------------------------------------------------------


def test_presets_are_all_there_and_documented():
    assert set(PRESETS) == {
        "ae_undercomplete",
        "ae_sparse",
        "ae_contractive",
        "ae_denoising",
        "vae",
        "rbm",
        "rbm16",
        "dbn",
        "dbm",
    }
    for (
        preset
    ) in GENERATIVE_PRESETS:  # (summaries and JSON round trips: tests/test_spec_and_graph.py, for every preset)
        assert "Unlike" in preset.make().description  # says how it differs from the original


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_builds_and_infers_the_real_shapes(name):
    spec = PRESETS[name].make()
    model = build_model(spec)
    x = torch.rand(3, *spec.input_shape)
    out, recorded = model.forward_recording(x, model.order)
    for node_id, shape in infer_shapes(spec).items():
        assert tuple(recorded[node_id].shape[1:]) == shape, node_id
    assert sum(r.params for r in summarize(spec)) == sum(p.numel() for p in model.parameters())
    if name in BOLTZMANN:
        assert ((out > 0) & (out < 1)).all()
    else:
        assert out.shape == x.shape  # a reconstruction


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_autoencoder_reconstruction_training_steps_lower_the_loss(name):
    torch.manual_seed(0)
    model = build_model(PRESETS[name].make())
    x = torch.rand(16, 1, 28, 28)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now() -> float:
        model.eval()
        with torch.no_grad():
            return (nn.functional.mse_loss(model(x), x) + extra_loss(model)).item()

    before = loss_now()
    model.train()
    for _ in range(5):
        loss = nn.functional.mse_loss(model(x), x) + extra_loss(model)
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        optimizer.step()
        model.train()
    assert loss_now() < before


def test_models_copy_after_a_forward_pass():
    # The code / μ / log σ² kept for the loss are non-leaf tensors, which cannot be deep-copied.
    model = build_model(PRESETS["vae"].make())
    model(torch.rand(2, 1, 28, 28))
    clone = copy.deepcopy(model)
    assert clone.layers["latent"].mu is None and model.layers["latent"].mu is not None


# ---- autoencoder parts --------------------------------------------------------------------------


def test_vae_is_deterministic_in_eval_mode_only():
    torch.manual_seed(1)
    layer = one_layer("variational_bottleneck", latent_size=4)
    x = torch.randn(5, 6)
    layer.eval()
    first, second = layer(x), layer(x)
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, layer.mu_head(x))
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    z = layer(x)  # z = μ + σ·ε: standardising it gives back ε's scale, not μ
    eps = (z - layer.mu) / torch.exp(0.5 * layer.log_var)
    assert eps.abs().max() < 10


def test_vae_kl_matches_torch_distributions():
    torch.manual_seed(2)
    layer = one_layer("variational_bottleneck", latent_size=4)
    layer(torch.randn(5, 6))
    posterior = Normal(layer.mu, torch.exp(0.5 * layer.log_var))
    prior = Normal(torch.zeros(4), torch.ones(4))
    expected = kl_divergence(posterior, prior).sum(dim=-1).mean()
    torch.testing.assert_close(layer.kl(), expected)


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh"])
def test_bottleneck_penalty_matches_l1_and_the_autograd_jacobian(activation):
    torch.manual_seed(3)
    layer = one_layer("bottleneck", code_size=3, activation=activation, sparsity_weight=0.5, contractive_weight=0.25)
    x = torch.randn(4, 6)
    jacobian_norms = torch.stack([torch.autograd.functional.jacobian(layer, row).pow(2).sum() for row in x])
    code = layer(x)  # after the Jacobians, whose forward passes overwrite the kept code
    expected = (0.5 * code.abs().sum(dim=1) + 0.25 * jacobian_norms).mean()
    torch.testing.assert_close(layer.penalty(), expected)


def test_a_bottleneck_with_a_sparsity_target_penalises_the_kl_to_it():
    torch.manual_seed(3)
    layer = one_layer("bottleneck", code_size=3, activation="sigmoid", sparsity_weight=0.5, sparsity_target=0.1)
    code = layer(torch.randn(8, 6))
    rho, rho_hat = 0.1, code.mean(0)
    kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    torch.testing.assert_close(layer.penalty(), 0.5 * kl)
    with pytest.raises(SpecError, match="needs activation sigmoid"):
        one_layer("bottleneck", code_size=3, activation="relu", sparsity_weight=0.5, sparsity_target=0.1)


def test_noise_is_the_identity_in_eval_mode():
    x = torch.rand(8, 1, 28, 28)
    for noise, amount in (("gaussian", 0.5), ("masking", 0.5)):
        layer = one_layer("noise", (1, 28, 28), noise=noise, amount=amount)
        layer.eval()
        assert torch.equal(layer(x), x)
        layer.train()
        assert not torch.equal(layer(x), x)


def test_a_spec_file_with_the_old_noise_parameter_name_loads():
    """The noise layer's parameter was called "kind" before it was called "noise"."""
    data = ModelSpec.sequential("old", (4,), [("n", "noise", {"noise": "masking", "amount": 0.2})]).to_dict()
    data["nodes"][1]["params"] = {"kind": "masking", "amount": 0.2}
    spec = ModelSpec.from_dict(data)
    assert spec.node("n").params == {"noise": "masking", "amount": 0.2}
    assert build_model(spec).layers["n"].noise == "masking"


def test_masking_noise_zeroes_a_fraction_and_leaves_the_rest():
    torch.manual_seed(4)
    layer = one_layer("noise", (1000,), noise="masking", amount=0.3)
    x = torch.rand(20, 1000) + 1  # no zeros of its own
    y = layer(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.02
    assert torch.equal(y[kept], x[kept])  # not rescaled, unlike dropout


# ---- Boltzmann parts ----------------------------------------------------------------------------


def test_rbm_output_is_the_hidden_probability():
    torch.manual_seed(5)
    layer = one_layer("rbm", hidden_size=4)
    with torch.no_grad():
        layer.hidden_bias.normal_()
    v = torch.bernoulli(torch.full((3, 6), 0.5))
    w, b = layer.weight.detach(), layer.hidden_bias.detach()
    expected = 1 / (1 + torch.exp(-(v @ w.T + b)))
    torch.testing.assert_close(layer(v), expected)
    assert w.shape == (4, 6) and layer.visible_bias.shape == (6,)


def test_rbm_samples():
    torch.manual_seed(6)
    layer = one_layer("rbm", hidden_size=4)
    probs, h = layer.sample_h(torch.rand(3, 6))
    assert h.shape == (3, 4) and set(h.unique().tolist()) <= {0.0, 1.0}
    mean, v = layer.sample_v(h)
    torch.testing.assert_close(mean, torch.sigmoid(h @ layer.weight + layer.visible_bias))
    assert set(v.unique().tolist()) <= {0.0, 1.0}
    gaussian = one_layer("rbm", hidden_size=4, visible="gaussian")
    mean, v = gaussian.sample_v(h)
    torch.testing.assert_close(mean, h @ gaussian.weight + gaussian.visible_bias)
    assert not torch.equal(v, mean)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_rbm_free_energy_sums_the_energy_over_every_hidden_state(visible):
    torch.manual_seed(7)
    layer = one_layer("rbm", (3,), hidden_size=2, visible=visible)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    v = torch.randn(4, 3) if visible == "gaussian" else torch.bernoulli(torch.full((4, 3), 0.5))
    w, bv, bh = layer.weight.detach(), layer.visible_bias.detach(), layer.hidden_bias.detach()

    def energy(v, h):
        visible_term = -(v @ bv) if visible == "bernoulli" else 0.5 * ((v - bv) ** 2).sum(-1)
        return visible_term - h @ bh - ((h @ w) * v).sum(-1)

    hidden_states = [torch.tensor(h, dtype=torch.float32) for h in itertools.product([0, 1], repeat=2)]
    expected = -torch.logsumexp(torch.stack([-energy(v, h.expand(4, 2)) for h in hidden_states]), dim=0)
    torch.testing.assert_close(layer.free_energy(v).detach(), expected)


def test_boltzmann_stacks():
    assert boltzmann_stack(PRESETS["dbn"].make()) == ("dbn", ["rbm1", "rbm2"])
    assert boltzmann_stack(PRESETS["dbm"].make()) == ("dbm", ["rbm1", "rbm2"])
    assert boltzmann_stack(PRESETS["rbm"].make()) == ("dbn", ["rbm1"])
    mixed = ModelSpec.sequential(
        "m", (8,), [("rbm1", "rbm", {"hidden_size": 4, "stack": "dbm"}), ("rbm2", "rbm", {"hidden_size": 2})]
    )
    with pytest.raises(SpecError, match="rbm2: stack is 'dbn' but the chain below is 'dbm'"):
        boltzmann_stack(mixed)
    gaussian_on_top = ModelSpec.sequential(
        "g", (8,), [("rbm1", "rbm", {"hidden_size": 4}), ("rbm2", "rbm", {"hidden_size": 2, "visible": "gaussian"})]
    )
    with pytest.raises(SpecError, match="rbm2: only the bottom rbm may have gaussian visible units"):
        boltzmann_stack(gaussian_on_top)
    gap = ModelSpec.sequential(
        "gap", (8,), [("rbm1", "rbm", {"hidden_size": 4}), ("act", "relu", {}), ("rbm2", "rbm", {"hidden_size": 2})]
    )
    with pytest.raises(SpecError, match="rbm2: rbm nodes must form one chain"):
        boltzmann_stack(gap)
    with pytest.raises(SpecError, match="no rbm node"):
        boltzmann_stack(ModelSpec("x", (Node("input", "input", {"shape": [3]}), Node("r", "relu")), (("input", "r"),)))


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input_shape, layers, message",
    [
        (
            (1, 28, 28),
            [("rbm1", "rbm", {"hidden_size": 8})],
            "rbm1: rbm expects a flat vector of visible units, got 1×28×28; put a flatten node before it",
        ),
        (
            (1, 28, 28),
            [("code", "bottleneck", {"code_size": 8})],
            "code: bottleneck expects a flat vector, got 1×28×28",
        ),
        ((20, 8), [("z", "variational_bottleneck", {"latent_size": 2})], "z: variational_bottleneck expects a flat"),
        ((8,), [("rbm1", "rbm", {})], "rbm1: rbm needs the parameter hidden_size"),
        (
            (8,),
            [("rbm1", "rbm", {"hidden_size": 4, "visible": "poisson"})],
            'rbm1: visible must be one of "bernoulli", "gaussian", got \'poisson\'',
        ),
        ((8,), [("rbm1", "rbm", {"hidden_size": 4, "stack": "deep"})], 'rbm1: stack must be one of "dbn", "dbm"'),
        ((8,), [("code", "bottleneck", {"code_size": 4, "activation": "gelu"})], "code: activation must be one of"),
        (
            (8,),
            [("code", "bottleneck", {"code_size": 4, "sparsity_weight": -1})],
            "code: sparsity_weight must be ≥ 0, got -1",
        ),
        (
            (8,),
            [("code", "bottleneck", {"code_size": 4, "contractive_weight": "high"})],
            "code: contractive_weight must be a number",
        ),
        ((8,), [("n", "noise", {"noise": "masking", "amount": 1.0})], "n: amount must be ≥ 0 and below 1, got 1.0"),
        ((8,), [("n", "noise", {"noise": "salt"})], 'n: noise must be one of "gaussian", "masking"'),
    ],
)
def test_bad_generative_specs_name_the_node_and_the_reason(input_shape, layers, message):
    with pytest.raises(SpecError) as error:
        infer_shapes(ModelSpec.sequential("bad", input_shape, layers))
    assert message in str(error.value)
    assert error.value.node == layers[0][0]
