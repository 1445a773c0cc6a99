"""Autoencoder and Boltzmann-machine presets for 1×28×28 MNIST digits.

The autoencoders share one shape — flatten → encoder → code → decoder → sigmoid → reshape to 1×28×28 —
so their output is a reconstruction comparable with the input; they differ in the code node (and a noise
node for the denoising one). The penalties a sparse or contractive AE and a VAE add to the loss live on
the ``bottleneck`` / ``variational_bottleneck`` modules (``penalty()``, ``kl()``) for training to add.

The Boltzmann machines are chains of ``rbm`` nodes; they build and run (p(h|v) upwards) and are trained by
contrastive divergence (``engine.training.objectives``: the ``rbm``, ``dbn`` and ``dbm`` objectives).
"""

from __future__ import annotations

from lumen.engine.presets.preset import Preset
from lumen.engine.spec.model_spec import ModelSpec

IMAGE = (1, 28, 28)
PIXELS = 28 * 28


def _autoencoder(
    name: str,
    code: list[tuple[str, str, dict]],
    description: str,
    hidden: int | None = 256,
    corrupt: list[tuple[str, str, dict]] | None = None,
) -> ModelSpec:
    """flatten → [corrupt] → [linear·relu] → code → [linear·relu] → linear → sigmoid → reshape."""
    encoder = [("enc1", "linear", {"out_features": hidden}), ("enc1_relu", "relu", {})] if hidden else []
    decoder = [("dec1", "linear", {"out_features": hidden}), ("dec1_relu", "relu", {})] if hidden else []
    return ModelSpec.sequential(
        name,
        IMAGE,
        [
            ("flatten", "flatten", {}),
            *(corrupt or []),
            *encoder,
            *code,
            *decoder,
            ("dec_out", "linear", {"out_features": PIXELS}),
            ("dec_out_sigmoid", "sigmoid", {}),
            ("reshape", "reshape", {"shape": list(IMAGE)}),
        ],
        description=description,
    )


def ae_undercomplete() -> ModelSpec:
    return _autoencoder(
        "Undercomplete autoencoder",
        [("code", "bottleneck", {"code_size": 32, "activation": "relu"})],
        "784-256-32-256-784 with ReLU; the 32-unit code forces a compressed representation. "
        "Unlike the classic deep autoencoder (Hinton & Salakhutdinov 2006: 784-1000-500-250-30, "
        "RBM pre-training, tied weights) it is shallower, untied and trained end to end.",
    )


def ae_sparse() -> ModelSpec:
    return _autoencoder(
        "Sparse autoencoder",
        [
            (
                "code",
                "bottleneck",
                {"code_size": 128, "activation": "sigmoid", "sparsity_weight": 1e-3, "sparsity_target": 0.05},
            )
        ],
        "784-256-128-256-784: a code wider than the undercomplete one, kept sparse as in Ng's sparse autoencoder: "
        "sigmoid code units whose mean activation over a batch, ρ̂_j, is pulled to a target ρ = 0.05 by "
        "Σ_j KL(ρ ‖ ρ̂_j) (weight 1e-3; the run's sparsity target, if set, replaces ρ). Unlike Ng's: ReLU "
        "layers around the code, and the reconstruction is a mean over pixels rather than a sum (hence the small "
        "weight). An L1 penalty on a ReLU code instead (sparsity_target 0) tends to kill the code's units.",
    )


def ae_contractive() -> ModelSpec:
    return _autoencoder(
        "Contractive autoencoder",
        [("code", "bottleneck", {"code_size": 128, "activation": "sigmoid", "contractive_weight": 0.1})],
        "784-128-784: one sigmoid encoder layer, so the bottleneck's penalty ‖∂h/∂x‖²_F (weight 0.1) is the "
        "whole encoder's Jacobian, as in Rifai et al. (2011). Unlike the paper: 128 code units rather "
        "than 1000, and the decoder's weights are not tied to the encoder's.",
        hidden=None,
    )


def ae_denoising() -> ModelSpec:
    return _autoencoder(
        "Denoising autoencoder",
        [("code", "bottleneck", {"code_size": 64, "activation": "relu"})],
        "784-256-64-256-784, fed digits with 25% of the pixels zeroed while training and asked "
        "to reconstruct the clean ones (the loss compares with the uncorrupted input). Masking "
        "noise as in Vincent et al. (2008). Unlike them: ReLU units, untied weights and no "
        "stacking.",
        corrupt=[("corrupt", "noise", {"noise": "masking", "amount": 0.25})],
    )


def vae() -> ModelSpec:
    return _autoencoder(
        "Variational autoencoder",
        [("latent", "variational_bottleneck", {"latent_size": 16})],
        "784-256-(μ, log σ²: 16)-256-784: the encoder outputs a Gaussian; z = μ + σ·ε while "
        "training, z = μ in eval mode; the loss adds KL(q(z|x) ‖ N(0, I)) (latent.kl()). "
        "Unlike Kingma & Welling (2014): ReLU rather than tanh hidden units, 256 of them rather "
        "than 500, and a 16-dimensional latent.",
    )


def _boltzmann(name: str, hidden: list[int], stack: str, description: str) -> ModelSpec:
    layers = [(f"rbm{i + 1}", "rbm", {"hidden_size": h, "stack": stack}) for i, h in enumerate(hidden)]
    return ModelSpec.sequential(name, IMAGE, [("flatten", "flatten", {}), *layers], description=description)


def rbm() -> ModelSpec:
    return _boltzmann(
        "RBM",
        [128],
        "dbn",
        "784 Bernoulli visible units (pixel intensities read as probabilities), 128 Bernoulli "
        "hidden units; outputs p(h = 1 | v). Unlike the RBMs of Hinton's practical guide (2010), "
        "which have 500 or so hidden units, it is small enough to train on a CPU.",
    )


def rbm16() -> ModelSpec:
    return _boltzmann(
        "RBM, 16 hidden units",
        [16],
        "dbn",
        "784 Bernoulli visible units on binarised digits, 16 Bernoulli hidden units: few enough that the "
        "partition function is summed exactly over the 2^16 hidden states, so training plots the exact "
        "log-likelihood of the validation digits each epoch. Unlike the RBMs whose likelihood Salakhutdinov & "
        "Murray (2008) estimated (500 hidden units, by annealed importance sampling), its figure needs no estimate.",
    )


def dbn() -> ModelSpec:
    return _boltzmann(
        "DBN",
        [256, 64],
        "dbn",
        "Two RBMs stacked 784-256-64, trained greedily one at a time, the upper layers directed "
        "top-down. Unlike Hinton, Osindero & Teh (2006: 784-500-500-2000 with the labels joined "
        "to the top RBM) it is smaller and unsupervised.",
    )


def dbm() -> ModelSpec:
    return _boltzmann(
        "DBM",
        [256, 64],
        "dbm",
        "Two RBM layers 784-256-64 forming one undirected machine, trained jointly (mean-field "
        "and persistent chains); forward here is the bottom-up pass only. Unlike Salakhutdinov & "
        "Hinton (2009: 784-500-1000) it is smaller, and its bottom-up pass does not double the "
        "first layer's input to stand in for the missing top-down input.",
    )


GENERATIVE_PRESETS: list[Preset] = [
    Preset(
        "ae_undercomplete",
        "Undercomplete autoencoder: 784-256-32-256-784, MNIST reconstruction",
        ae_undercomplete,
        objective="autoencoder",
    ),
    Preset(
        "ae_sparse",
        "Sparse autoencoder: 128 sigmoid code units, KL to a mean activation of 0.05",
        ae_sparse,
        objective="autoencoder",
    ),
    Preset(
        "ae_contractive",
        "Contractive autoencoder: 128 sigmoid units, Jacobian penalty",
        ae_contractive,
        objective="autoencoder",
    ),
    Preset(
        "ae_denoising",
        "Denoising autoencoder: 25% masking noise in, clean digit out",
        ae_denoising,
        objective="autoencoder",
    ),
    Preset(
        "vae", "Variational autoencoder: 16-dimensional Gaussian latent, reparameterised", vae, objective="autoencoder"
    ),
    Preset("rbm", "Restricted Boltzmann machine: 784 visible, 128 hidden (Bernoulli)", rbm, objective="rbm"),
    Preset(
        "rbm16",
        "RBM with 16 hidden units on binarised digits: exact log-likelihood per epoch",
        rbm16,
        objective="rbm",
        data_options={"binarise": True},
    ),
    Preset("dbn", "Deep belief net: RBMs 784-256-64, trained greedily", dbn, objective="dbn"),
    Preset("dbm", "Deep Boltzmann machine: 784-256-64, one undirected machine", dbm, objective="dbm"),
]
