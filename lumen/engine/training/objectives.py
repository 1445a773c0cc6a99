"""What a run minimises, per model family: one class per objective, looked up by name in ``OBJECTIVES``.

Each objective says what the model must output for a dataset (``output_shape``: the check before training, and
what ``engine.training.fit`` resizes a model's last layer to), and computes a batch's loss with its named terms
(``loss``: the tensor to differentiate, and name → float, always with ``"loss"`` itself). ``evaluate`` measures
the same names on held-out data (plus any the objective only measures there, such as a decoder's free-running
accuracy).

- ``classification``: cross-entropy; images and many-to-one sequences (N×C scores), or per step (N×T×C).
- ``forecast``: mean squared error against real-valued targets (forecasting, the adding problem).
- ``seq2seq``: per-step cross-entropy for an encoder–decoder; with teacher forcing the true previous token is
  added to the decoder's input (at the ``repeat`` node), and evaluation also decodes free-running.
- ``autoencoder``: reconstruction (MSE or BCE) of the clean input, plus each penalty the model's code nodes
  carry: sparsity (L1, or KL to a target ρ), contractive (‖∂h/∂x‖²_F), the VAE's KL (× β).
- ``rbm``: contrastive divergence, CD-k or persistent PCD-k, on the model's RBM(s) as a surrogate loss
  F(v_data) − F(v_model) whose gradient is the CD update; a single RBM of ≤ 20 hidden units on binary (or
  Gaussian-unit) data also reports its exact ``log_likelihood`` when validating; a DBN chain is trained greedily, one
  layer after the other (``dbn``); ``dbm``: a mean-field positive phase and persistent Gibbs chains, jointly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lumen.engine.data.datasets import CLASSIFICATION, PER_STEP, REGRESSION, SEQ2SEQ, Dataset
from lumen.engine.errors import LumenError, SpecError
from lumen.engine.modules.autoencoder import Bottleneck, VariationalBottleneck
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.modules.recurrent import Recurrent
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.config import TrainConfig

if TYPE_CHECKING:
    from lumen.engine.graph.model import GraphModel

Terms = dict[str, float]


def _fmt(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


class Objective:
    """Base: ``name``, the dataset tasks it trains on, and the three verbs."""

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...] | None] = None  # None: any dataset (only its inputs are used)
    summary: ClassVar[str] = ""
    loss_name: ClassVar[str] = "loss"  # what its "loss" is, for plot titles ("cross-entropy", "free-energy gap")

    @classmethod
    def describe_loss(cls, spec: ModelSpec) -> str:
        """What the loss is for this model (an autoencoder's depends on its code's penalties)."""
        return cls.loss_name

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator):
        self.model, self.data, self.config, self.generator = model, data, config, generator
        self.progress = 0.0  # share of the run done, set by the loop before each batch

    @classmethod
    def output_shape(cls, spec: ModelSpec, data: Dataset) -> tuple[int, ...] | None:
        """What the model must output per sample to train on ``data``; None: anything."""
        return None

    @classmethod
    def check(cls, spec: ModelSpec, data: Dataset, shapes: dict[str, tuple[int, ...]]) -> None:
        """SpecError naming the node at fault unless ``spec`` (already fitted) can train on ``data``."""
        if cls.tasks is not None and data.task not in cls.tasks:
            raise SpecError(
                f"the {cls.name} objective trains on {' or '.join(cls.tasks)} data; {data.name} is {data.task} data"
            )
        takes, has = tuple(spec.input_shape), tuple(data.input_shape)
        if takes != has:
            raise SpecError(
                f"the model takes {_fmt(takes)} inputs, but {data.name} has {_fmt(has)} samples; "
                f"set the input shape to {_fmt(has)} to train on it",
                spec.input_node.id,
            )
        if spec.input_node.params.get("dtype", "float32") != "float32":
            raise SpecError(
                f"the model reads {spec.input_node.params.get('dtype')} ids, but {data.name} holds float32 "
                f"{'sequences (one-hot tokens)' if data.is_sequence else 'images'}",
                spec.input_node.id,
            )
        need, out = cls.output_shape(spec, data), tuple(shapes[spec.output_id])
        if need is not None and out != need:
            raise SpecError(cls.refusal(out, need, data), spec.output_id)

    @classmethod
    def refusal(cls, out: tuple[int, ...], need: tuple[int, ...], data: Dataset) -> str:
        return f"the model outputs {_fmt(out)} per sample, but {cls.name} on {data.name} needs {_fmt(need)}"

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        raise NotImplementedError

    def _output(self, x: torch.Tensor, per_step: bool) -> torch.Tensor:
        """The model's output; while training with ``config.truncation`` k on a sequence longer than k, by
        truncated backpropagation through time (``truncated_forward``)."""
        k = self.config.truncation
        if k and self.model.training and x.ndim == 3 and x.shape[1] > k:
            return truncated_forward(self.model, x, k, per_step)
        return self.model(x)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Terms:
        """The loss's named terms on held-out data, in eval mode (the caller sets the mode)."""
        _, terms = self.loss(x, y)
        return terms

    def close(self) -> None:
        """Undo anything done to the model (hooks)."""


def truncated_forward(model: nn.Module, x: torch.Tensor, steps: int, per_step: bool) -> torch.Tensor:
    """Truncated BPTT: ``x`` (B×T×F) runs in chunks of ``steps``, each recurrent layer carrying its state from
    chunk to chunk, detached, so gradients reach back at most ``steps`` steps. ``per_step``: the chunks' outputs
    joined along time; else (many-to-one) the last chunk's output, the earlier chunks run without gradients.
    Bidirectional layers are refused: their backward direction would need the future."""
    layers = [m for m in model.modules() if isinstance(m, Recurrent)]
    if any(m.rnn.bidirectional for m in layers):
        raise LumenError("truncated backpropagation through time needs one-directional recurrent layers")
    for layer in layers:
        layer.carry, layer.state = True, None
    try:
        chunks = x.split(steps, dim=1)
        if per_step:
            return torch.cat([model(chunk) for chunk in chunks], dim=1)
        with torch.no_grad():
            for chunk in chunks[:-1]:
                model(chunk)
        return model(chunks[-1])
    finally:
        for layer in layers:
            layer.carry, layer.state = False, None


# ---- supervised ------------------------------------------------------------------------------------------------


class Classification(Objective):
    name = "classification"
    tasks = (CLASSIFICATION, PER_STEP)
    summary = "cross-entropy against class labels (images, many-to-one, or per step)"
    loss_name = "cross-entropy"

    @classmethod
    def output_shape(cls, spec: ModelSpec, data: Dataset) -> tuple[int, ...]:
        return (*data.target_shape, len(data.classes))

    @classmethod
    def refusal(cls, out: tuple[int, ...], need: tuple[int, ...], data: Dataset) -> str:
        classes = need[-1]
        values = f"{out[0]} value{'s' if out[0] != 1 else ''}" if len(out) == 1 else f"a {_fmt(out)} tensor"
        per = "per sample" if len(need) == 1 else f"at each of {need[0]} steps"
        return (
            f"the model outputs {values} per sample, but training on {data.name} needs {classes} class scores "
            f"{per} (cross-entropy against its labels); end the model with a layer giving {classes} outputs, "
            f"such as linear with out_features {classes}"
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        logits = self._output(x, per_step=y.ndim >= 2)
        flat = logits.reshape(-1, logits.shape[-1])
        loss = F.cross_entropy(flat, y.reshape(-1))
        accuracy = (flat.argmax(1) == y.reshape(-1)).float().mean().item()
        return loss, {"loss": loss.item(), "accuracy": accuracy}


class Forecast(Objective):
    name = "forecast"
    tasks = (REGRESSION,)
    summary = "mean squared error against real-valued targets (forecasting, regression)"
    loss_name = "mean squared error"

    @classmethod
    def output_shape(cls, spec: ModelSpec, data: Dataset) -> tuple[int, ...]:
        return data.target_shape

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        loss = F.mse_loss(self._output(x, per_step=y.ndim == 3 and x.ndim == 3), y)
        return loss, {"loss": loss.item()}


class Seq2Seq(Objective):
    """Per-step cross-entropy for an encoder–decoder. Teacher forcing: at the ``repeat`` node (the context
    vector at every decoder step) the one-hot of the previous target token — a start token first — is added to
    the first vocabulary + 1 features, so the decoder is told what came before. Free-running evaluation feeds
    back the decoder's own previous prediction instead, one step at a time."""

    name = "seq2seq"
    tasks = (SEQ2SEQ, PER_STEP)
    summary = "per-step cross-entropy with teacher forcing; free-running decoding on validation"
    loss_name = "per-step cross-entropy, teacher forced"

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator):
        super().__init__(model, data, config, generator)
        self.vocabulary = len(data.classes)
        self._feedback: torch.Tensor | None = None
        self._hook: Any = None
        repeats = model.nodes_of_type("repeat")
        if repeats and config.teacher_forcing and model.shapes[repeats[-1]][1] > self.vocabulary:
            self._hook = model.layers[repeats[-1]].register_forward_hook(self._add_feedback)

    @classmethod
    def output_shape(cls, spec: ModelSpec, data: Dataset) -> tuple[int, ...]:
        return (*data.target_shape, len(data.classes))

    @property
    def teacher_forcing(self) -> bool:
        return self._hook is not None

    def _add_feedback(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if self._feedback is None:
            return None
        steps = output.shape[1]
        one_hot = F.one_hot(self._feedback[:, :steps], self.vocabulary + 1).to(output.dtype)
        return torch.cat([output[..., : self.vocabulary + 1] + one_hot, output[..., self.vocabulary + 1 :]], dim=-1)

    def _previous(self, tokens: torch.Tensor) -> torch.Tensor:
        start = torch.full_like(tokens[:, :1], self.vocabulary)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    def _forward(self, x: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        self._feedback = previous if self.teacher_forcing else None
        try:
            return self.model(x)
        finally:
            self._feedback = None

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        logits = self._forward(x, self._previous(y))
        flat = logits.reshape(-1, logits.shape[-1])
        loss = F.cross_entropy(flat, y.reshape(-1))
        accuracy = (flat.argmax(1) == y.reshape(-1)).float().mean().item()
        return loss, {"loss": loss.item(), "accuracy": accuracy}

    @torch.no_grad()
    def decode(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """Free-running: each step's prediction becomes the next step's fed-back token."""
        if not self.teacher_forcing:
            return self.model(x).argmax(-1)
        predicted = torch.zeros(len(x), steps, dtype=torch.long, device=x.device)
        for t in range(steps):
            predicted[:, t] = self._forward(x, self._previous(predicted))[:, t].argmax(-1)
        return predicted

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Terms:
        _, terms = self.loss(x, y)
        decoded = self.decode(x, y.shape[1])
        terms["free_running_accuracy"] = (decoded == y).float().mean().item()
        terms["sequence_accuracy"] = (decoded == y).all(1).float().mean().item()
        return terms

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


# ---- autoencoders ----------------------------------------------------------------------------------------------


def contractive_penalty(code: torch.Tensor, weight: torch.Tensor, activation: str) -> torch.Tensor:
    """‖∂h/∂x‖²_F per sample for h = a(Wx + b): Σ_j a′_j² Σ_i W_ji², with a′ read off the code itself."""
    slope = {
        "none": torch.ones_like(code),
        "relu": (code > 0).to(code.dtype),
        "sigmoid": code * (1 - code),
        "tanh": 1 - code * code,
    }[activation]
    return (slope**2) @ (weight**2).sum(dim=1)


def kl_sparsity(code: torch.Tensor, rho: float) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the unit's mean activation over the batch (clamped into (0, 1))."""
    rho_hat = code.mean(0).clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over the latent units, averaged over the batch."""
    return (-0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=-1)).mean()


class Autoencoder(Objective):
    name = "autoencoder"
    summary = "reconstruction of the clean input plus the code's penalties (sparsity, contractive, VAE KL)"
    loss_name = "reconstruction"

    @classmethod
    def describe_loss(cls, spec: ModelSpec) -> str:
        if any(n.type == "variational_bottleneck" for n in spec.nodes):
            return "negative ELBO: reconstruction + KL"
        codes = [n.params for n in spec.nodes if n.type == "bottleneck"]
        penalties = [
            name
            for name, key in (("sparsity", "sparsity_weight"), ("contractive", "contractive_weight"))
            if any(float(p.get(key) or 0) > 0 for p in codes)
        ]
        return " + ".join(["reconstruction", *penalties])

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator):
        super().__init__(model, data, config, generator)
        modules = [model.layers[n] for n in model.order]
        self.codes = [m for m in modules if isinstance(m, Bottleneck)]
        self.latents = [m for m in modules if isinstance(m, VariationalBottleneck)]
        kind = config.reconstruction
        self.reconstruction = kind if kind != "auto" else ("bce" if self.latents else "mse")

    @classmethod
    def output_shape(cls, spec: ModelSpec, data: Dataset) -> tuple[int, ...]:
        return data.input_shape

    @classmethod
    def refusal(cls, out: tuple[int, ...], need: tuple[int, ...], data: Dataset) -> str:
        return (
            f"the model outputs {_fmt(out)} per sample, but an autoencoder on {data.name} must reconstruct its "
            f"{_fmt(need)} input"
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        clean = x
        if self.config.corruption > 0 and self.model.training:
            keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.config.corruption
            x = x * keep.to(x.dtype)
        out = self.model(x)
        if self.reconstruction == "bce":
            per_sample = F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), clean.clamp(0, 1), reduction="none")
        else:
            per_sample = F.mse_loss(out, clean, reduction="none")
        per_sample = per_sample.flatten(1)
        # A VAE's reconstruction is a log-likelihood: summed over the pixels, so the KL keeps its proper weight.
        reconstruction = per_sample.sum(1).mean() if self.latents else per_sample.mean()
        loss, terms = reconstruction, {"reconstruction": reconstruction.item()}
        sparsity: list[torch.Tensor] = []
        contractive: list[torch.Tensor] = []
        for code in self.codes:
            h = code.code
            if h is None:
                continue
            if code.sparsity_weight > 0:
                # the run's ρ (TrainConfig) wins over the layer's; neither: an L1 penalty
                rho = self.config.sparsity_target or code.sparsity_target or None
                penalty = kl_sparsity(h, rho) if rho is not None else h.abs().sum(-1).mean()
                sparsity.append(code.sparsity_weight * penalty)
                if rho is not None:
                    terms["mean_activation"] = h.mean().item()  # what the KL term pulls towards ρ
            if code.contractive_weight > 0:
                contractive.append(
                    code.contractive_weight * contractive_penalty(h, code.linear.weight, code.activation).mean()
                )
        for name, parts in (("sparsity", sparsity), ("contractive", contractive)):
            if parts:
                term = torch.stack(parts).sum()
                loss = loss + term
                terms[name] = term.item()
        if self.latents:
            kl = torch.stack(
                [gaussian_kl(m.mu, m.log_var) for m in self.latents if m.mu is not None and m.log_var is not None]
            ).sum()
            loss = loss + self.config.beta * kl
            terms["kl"] = kl.item()
        return loss, {"loss": loss.item(), **terms}


# ---- Boltzmann machines ---------------------------------------------------------------------------------------


def _visible_input(model: GraphModel, x: torch.Tensor, node: str) -> torch.Tensor:
    """What ``node`` reads when the model runs on ``x`` (the nodes below it run; nothing above)."""
    values: dict[str, torch.Tensor] = {}
    for node_id in model.order:
        sources = model.sources[node_id]
        if node_id == node:
            return values[sources[0]]
        values[node_id] = model.layers[node_id](*([values[s] for s in sources] if sources else [x]))
    raise KeyError(node)


def gibbs_chain(rbm: RBM, v: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k steps of block Gibbs sampling from ``v``: h ~ p(h|v), v ~ p(v|h); the last visible sample."""
    for _ in range(k):
        _, h = rbm.sample_h(v, generator)
        _, v = rbm.sample_v(h, generator)
    return v


EXACT_LIKELIHOOD_HIDDEN = 20  # a single RBM with at most this many hidden units reports its exact log-likelihood


def rbm_terms(rbm: RBM, v: torch.Tensor) -> Terms:
    """Reconstruction error (mean squared, through p(h|v) and back) and mean free energy of ``v``."""
    with torch.no_grad():
        reconstruction = F.mse_loss(rbm.visible_mean(rbm.hidden_probs(v)), v).item()
        return {"reconstruction": reconstruction, "free_energy": rbm.free_energy(v).mean().item()}


class ContrastiveDivergence(Objective):
    """CD-k (chains start at the data) or PCD-k (persistent chains), as the surrogate loss
    mean F(v_data) − mean F(v_model): its gradient is the CD update −⟨∂E/∂θ⟩_data + ⟨∂E/∂θ⟩_model. With more
    than one RBM (a DBN) the layers are trained greedily: layer i during the i-th share of the run, on the
    hidden probabilities of the (fixed) layers below."""

    name = "rbm"
    summary = "contrastive divergence (CD-k, or PCD-k with persistent chains); a DBN greedily, layer by layer"
    loss_name = "free-energy gap, data − model (CD)"

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator):
        super().__init__(model, data, config, generator)
        self.ids = model.nodes_of_type("rbm")
        self.chains: dict[str, torch.Tensor] = {}
        self._log_z: tuple[tuple[int, ...], float] | None = None  # (the weights' versions, log Z) for validation

    @classmethod
    def check(cls, spec: ModelSpec, data: Dataset, shapes: dict[str, tuple[int, ...]]) -> None:
        super().check(spec, data, shapes)
        from lumen.engine.layers.boltzmann import boltzmann_stack

        boltzmann_stack(spec)  # a chain of rbm nodes, consistent

    @property
    def layer(self) -> int:
        return min(int(self.progress * len(self.ids)), len(self.ids) - 1)

    def _negative(self, node: str, rbm: RBM, v0: torch.Tensor) -> torch.Tensor:
        if not self.config.persistent:
            return gibbs_chain(rbm, v0, self.config.cd_k, self.generator)
        chain = self.chains.get(node)
        if chain is None or chain.shape != v0.shape:
            chain = v0.detach().clone() if chain is None else torch.cat([chain, v0])[: len(v0)]
        chain = gibbs_chain(rbm, chain, self.config.cd_k, self.generator).detach()
        self.chains[node] = chain
        return chain

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        node = self.ids[self.layer]
        rbm: RBM = self.model.layers[node]  # type: ignore[assignment]
        with torch.no_grad():
            v0 = _visible_input(self.model, x, node)
            vk = self._negative(node, rbm, v0)
        loss = rbm.free_energy(v0).mean() - rbm.free_energy(vk).mean()
        terms = {"loss": loss.item(), **rbm_terms(rbm, v0)}
        if len(self.ids) > 1:
            terms["layer"] = float(self.layer + 1)
        return loss, terms

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Terms:
        node = self.ids[self.layer]
        rbm: RBM = self.model.layers[node]  # type: ignore[assignment]
        v0 = _visible_input(self.model, x, node)
        vk = gibbs_chain(rbm, v0, self.config.cd_k, self.generator)
        terms = {"loss": (rbm.free_energy(v0).mean() - rbm.free_energy(vk).mean()).item(), **rbm_terms(rbm, v0)}
        if len(self.ids) > 1:
            terms["layer"] = float(self.layer + 1)
        elif rbm.hidden_bias.numel() <= EXACT_LIKELIHOOD_HIDDEN and (
            rbm.visible != "bernoulli" or bool(((v0 == 0) | (v0 == 1)).all())
        ):
            terms["log_likelihood"] = -rbm.free_energy(v0).double().mean().item() - self._log_partition(rbm)
        return terms

    def _log_partition(self, rbm: RBM) -> float:
        """log Z, summed again only when the weights have changed since the last validation batch."""
        key = tuple(p._version for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
        key += tuple(p.data_ptr() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
        if self._log_z is None or self._log_z[0] != key:
            self._log_z = (key, rbm.log_partition())
        return self._log_z[1]


class DeepBeliefNet(ContrastiveDivergence):
    name = "dbn"
    summary = "a DBN trained greedily: each RBM by contrastive divergence on the layer below's output"
    loss_name = "free-energy gap, layer by layer (CD)"


class DeepBoltzmannMachine(Objective):
    """Joint training of a chain of RBMs as one undirected machine (Salakhutdinov & Hinton 2009): the positive
    phase is mean-field inference of every hidden layer given the data; the negative phase, persistent Gibbs
    chains over all layers. Surrogate loss: mean E(v, μ) − mean E(chains)."""

    name = "dbm"
    summary = "deep Boltzmann machine: mean-field positive phase, persistent Gibbs chains"
    loss_name = "energy gap, mean field − chains"

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator):
        super().__init__(model, data, config, generator)
        self.ids = model.nodes_of_type("rbm")
        self.rbms: list[RBM] = [model.layers[n] for n in self.ids]  # type: ignore[misc]
        self.chain: list[torch.Tensor] | None = None

    @classmethod
    def check(cls, spec: ModelSpec, data: Dataset, shapes: dict[str, tuple[int, ...]]) -> None:
        super().check(spec, data, shapes)
        from lumen.engine.layers.boltzmann import boltzmann_stack

        _, ids = boltzmann_stack(spec)
        if spec.node(ids[0]).params.get("visible", "bernoulli") != "bernoulli":
            raise SpecError("a DBM here needs Bernoulli visible units", ids[0])

    def energy(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """E(v, h¹, …) per sample: −Σ_i (h^iᵀ W_i h^{i−1} + h^{i−1}ᵀ b_v,i + h^iᵀ b_h,i)."""
        total = torch.zeros(len(layers[0]), device=layers[0].device)
        for i, rbm in enumerate(self.rbms):
            below, above = layers[i], layers[i + 1]
            total = total - ((above @ rbm.weight) * below).sum(-1) - below @ rbm.visible_bias - above @ rbm.hidden_bias
        return total

    def _hidden_input(self, layers: list[torch.Tensor], i: int) -> torch.Tensor:
        """The input to hidden layer i (1-based) from its two neighbours."""
        rbm = self.rbms[i - 1]
        total = F.linear(layers[i - 1], rbm.weight, rbm.hidden_bias)
        if i < len(self.rbms):
            upper = self.rbms[i]
            total = total + layers[i + 1] @ upper.weight + upper.visible_bias
        return total

    def mean_field(self, v: torch.Tensor) -> list[torch.Tensor]:
        layers = [v]
        for rbm in self.rbms:  # bottom-up initialisation
            layers.append(rbm.hidden_probs(layers[-1]))
        for _ in range(self.config.mean_field_steps):
            for i in range(1, len(layers)):
                layers[i] = torch.sigmoid(self._hidden_input(layers, i))
        return layers

    def gibbs(self, layers: list[torch.Tensor]) -> list[torch.Tensor]:
        """One sweep: odd layers given even ones, then even ones (the visible layer included)."""
        layers = list(layers)
        for parity in (1, 0):
            for i in range(parity, len(layers), 2):
                if i == 0:
                    probs = self.rbms[0].visible_mean(layers[1])
                else:
                    probs = torch.sigmoid(self._hidden_input(layers, i))
                layers[i] = torch.bernoulli(probs, generator=self.generator)
        return layers

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        with torch.no_grad():
            v = _visible_input(self.model, x, self.ids[0])
            positive = self.mean_field(v)
            if self.chain is None or len(self.chain[0]) != len(v):
                self.chain = [torch.bernoulli(p, generator=self.generator) for p in positive]
            for _ in range(self.config.cd_k):
                self.chain = self.gibbs(self.chain)
        loss = self.energy(positive).mean() - self.energy(self.chain).mean()
        return loss, {"loss": loss.item(), **self._measures(positive)}

    def _measures(self, positive: list[torch.Tensor]) -> Terms:
        with torch.no_grad():
            reconstruction = self.rbms[0].visible_mean(positive[1])
            return {"reconstruction": F.mse_loss(reconstruction, positive[0]).item()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Terms:
        positive = self.mean_field(_visible_input(self.model, x, self.ids[0]))
        negative = self.gibbs([torch.bernoulli(p, generator=self.generator) for p in positive])
        loss = self.energy(positive).mean() - self.energy(negative).mean()
        return {"loss": loss.item(), **self._measures(positive)}


OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (
        Classification,
        Forecast,
        Seq2Seq,
        Autoencoder,
        ContrastiveDivergence,
        DeepBeliefNet,
        DeepBoltzmannMachine,
    )
}
# What a dataset's targets call for, when neither the run nor the preset names an objective.
OBJECTIVE_FOR_TASK = {
    CLASSIFICATION: "classification",
    PER_STEP: "classification",
    REGRESSION: "forecast",
    SEQ2SEQ: "seq2seq",
}
UNSUPERVISED = ("autoencoder", "rbm", "dbn", "dbm")  # these use a dataset's inputs only, whatever its task


def objective_class(name: str) -> type[Objective]:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise SpecError(f"unknown objective {name!r} (known: {', '.join(OBJECTIVES)})") from None


def spec_objective(spec: ModelSpec) -> str | None:
    """The objective a model's own layers call for (Boltzmann machines, autoencoders), or None."""
    rbms = [n for n in spec.nodes if n.type == "rbm"]
    if rbms:
        if any(n.params.get("stack") == "dbm" for n in rbms):
            return "dbm"
        return "dbn" if len(rbms) > 1 else "rbm"
    if any(n.type in ("bottleneck", "variational_bottleneck") for n in spec.nodes):
        return "autoencoder"
    return None


def choose_objective(preferred: str | None, data: Dataset, spec: ModelSpec | None = None) -> str:
    """The objective a run uses: ``preferred`` (the run's or the preset's), else the one the model's layers call
    for, when it fits the data's task (an unsupervised one always does); else the one the data's task calls
    for."""
    preferred = preferred or (spec_objective(spec) if spec is not None else None)
    if preferred is not None:
        cls = objective_class(preferred)
        if preferred in UNSUPERVISED or cls.tasks is None or data.task in cls.tasks:
            return preferred
    return OBJECTIVE_FOR_TASK.get(data.task, "autoencoder")


def make_objective(
    name: str, model: GraphModel, data: Dataset, config: TrainConfig, generator: torch.Generator
) -> Objective:
    cls = objective_class(name)
    cls.check(model.spec, data, dict(model.shapes))
    return cls(model, data, config, generator)
