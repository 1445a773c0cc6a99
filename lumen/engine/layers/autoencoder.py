"""Autoencoder parts: the code (bottleneck), the variational code, and input noise (denoising).

What the loss adds on top of the forward pass (sparsity and contractive penalties, the VAE's KL divergence)
lives on the modules, ``engine.modules.autoencoder``, for training to add.
"""

from __future__ import annotations

from lumen.engine.layers.base import LayerType, Params, choice
from lumen.engine.layers.geometry import flat_vector
from lumen.engine.modules.autoencoder import ACTIVATIONS, Bottleneck, Noise, VariationalBottleneck
from lumen.engine.spec.shapes import Shape, ShapeError

# ---- helpers (LayerType.resolve has checked each parameter's domain before the shape rules run) ---


def _nonnegative(params: Params, key: str, below: float | None = None) -> None:
    if params[key] < 0 or (below is not None and params[key] >= below):
        raise ShapeError(
            f"{key} must be ≥ 0{f' and below {below:g}' if below is not None else ''}, got {params[key]!r}"
        )


def _bottleneck_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    _nonnegative(params, "sparsity_weight")
    _nonnegative(params, "contractive_weight")
    _nonnegative(params, "sparsity_target", 1)
    if params["sparsity_target"] and params["activation"] != "sigmoid":
        raise ShapeError(
            "a sparsity target ρ is a mean activation in (0, 1), so it needs activation sigmoid, "
            f"got {params['activation']!r} (or set sparsity_target 0 for an L1 penalty)"
        )
    flat_vector(in_shapes[0], "bottleneck")
    return (params["code_size"],)


def _variational_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    flat_vector(in_shapes[0], "variational_bottleneck")
    return (params["latent_size"],)


def _noise_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    _nonnegative(params, "amount", 1 if params["noise"] == "masking" else None)
    return in_shapes[0]


LAYER_TYPES = [
    LayerType(
        name="bottleneck",
        family="autoencoder",
        description="An autoencoder's code: linear to code_size, an activation, optional "
        "sparsity (L1, or KL to a target ρ) and contractive penalties for the loss",
        defaults={
            "code_size": None,
            "activation": "none",
            "sparsity_weight": 0.0,
            "sparsity_target": 0.0,
            "contractive_weight": 0.0,
        },
        domains={
            "code_size": "posint",
            "activation": choice(*ACTIVATIONS),
            "sparsity_weight": "float",
            "sparsity_target": "float",
            "contractive_weight": "float",
        },
        infer=_bottleneck_infer,
        module=Bottleneck,
        kwargs=lambda params, in_shapes: {"in_features": in_shapes[0][0], **params},
        docs={
            "code_size": "units in the code",
            "activation": "none, relu, sigmoid or tanh, applied to the code",
            "sparsity_weight": "weight of the sparsity penalty in the loss (sparse autoencoder)",
            "sparsity_target": "0: the penalty is the code's L1 norm; ρ in (0, 1): Σ KL(ρ ‖ ρ̂_j), ρ̂_j a sigmoid "
            "unit's mean activation over the batch (Ng's sparse autoencoder)",
            "contractive_weight": "weight of ‖∂code/∂input‖² in the loss (contractive autoencoder)",
        },
        macs=lambda params, in_shapes, out: in_shapes[0][0] * out[0],
    ),
    LayerType(
        name="variational_bottleneck",
        family="autoencoder",
        description="A VAE's latent code: μ and log σ² heads, z = μ + σ·ε while training, z = μ in eval mode",
        defaults={"latent_size": None},
        domains={"latent_size": "posint"},
        infer=_variational_infer,
        module=VariationalBottleneck,
        kwargs=lambda params, in_shapes: {"in_features": in_shapes[0][0], "latent_size": params["latent_size"]},
        docs={"latent_size": "dimensions of z (and of μ and log σ²)"},
        macs=lambda params, in_shapes, out: 2 * in_shapes[0][0] * out[0],
    ),
    # The parameter was called "kind" before; ModelSpec.from_dict renames it in older files.
    LayerType(
        name="noise",
        family="autoencoder",
        description="Corrupts the input while training (denoising autoencoders): Gaussian or masking",
        defaults={"noise": "gaussian", "amount": 0.1},
        domains={"noise": choice("gaussian", "masking"), "amount": "float"},
        infer=_noise_infer,
        module=Noise,
        kwargs=lambda params, in_shapes: {"noise": params["noise"], "amount": params["amount"]},
        docs={
            "noise": "gaussian: add amount·N(0,1); masking: zero each value with probability amount",
            "amount": "noise standard deviation, or the fraction of values masked",
        },
    ),
]
