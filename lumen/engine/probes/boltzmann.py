"""Inside a Boltzmann machine (an RBM, or one layer of a DBN or DBM), live: what its hidden units look for, how
well it reconstructs validation inputs, what it dreams up when a Gibbs chain runs, and the chain's energy.

For the chosen rbm node (the settings' ``layer``; the first by default) a frame holds

- the *filters*: each hidden unit's incoming weights (a row of ``weight``) shaped as the layer's visible units
  are — the input picture for the bottom layer of an image model, else a near-square tile of the vector;
- *reconstructions* of a few validation inputs: v → p(h | v) → E[v | h] (``hidden_probs`` then ``visible_mean``);
- *samples* of a block Gibbs chain of ``steps`` steps started from those inputs (or from noise): h_t ~ p(h | v_{t−1}),
  v_t ~ p(v | h_t), with the energy E(v_t, h_t) and the free energy F(v_t) of every chain at every step. In a DBM
  the chain runs over the whole machine (every layer, as its objective samples it) and the energy is the joint
  one; a DBN's upper layer samples in its own RBM;
- the mean free energy of the validation samples (the probe sees no training data; the monitor's
  ``free_energy`` curves put the training side beside it).

Pictures of an upper layer are carried down to the input through the layers below (E[v | h] of each), so they
read as inputs. A seeded generator makes every frame from the same weights the same; the model's weights, mode
and random state, and the training objective's chains, are left as they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.graph.modes import evaluating
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.probes.base import Probe, ProbeContext

SEED = 0  # every frame's chain draws the same random numbers: a change between frames is the weights'
MAX_FILTERS = 64  # hidden units drawn
SHOWN = 16  # validation inputs reconstructed, and chains run
MAX_STEPS = 1000
STARTS = ("data", "noise")
SNAPSHOTS = 8  # how many of the first chain's steps are kept as pictures


@dataclass(frozen=True)
class BoltzmannSettings:
    layer: str | None = None  # the rbm node's dotted name; None (or one the model lacks): the first
    steps: int = 50  # Gibbs steps of the chain
    start: str = "data"  # one of STARTS: the chains start at validation inputs, or at random visible units

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise LumenError(f"a Gibbs chain runs 1 to {MAX_STEPS} steps, not {self.steps}")
        if self.start not in STARTS:
            raise LumenError(f"a chain starts from {' or '.join(STARTS)}, not {self.start!r}")


@dataclass(frozen=True, eq=False)
class BoltzmannFrame(Frame):
    layer: str  # the rbm node shown ("" when none)
    layers: tuple[str, ...]  # every rbm node, bottom to top
    stack: str  # "dbn" (an RBM, or a DBN) or "dbm"
    visible: str  # the layer's visible units: "bernoulli" or "gaussian"
    picture: tuple[int, int]  # the input's picture, height × width: how samples and reconstructions are drawn
    tile: tuple[int, int]  # the layer's visible units as a picture (``picture`` for the bottom layer)
    filters: np.ndarray  # units × tile: the first MAX_FILTERS hidden units' weight rows (float32)
    units: int  # the layer's hidden units (filters holds at most MAX_FILTERS of them)
    inputs: np.ndarray  # n × picture: validation inputs (empty without validation data)
    reconstructions: np.ndarray  # n × picture: E[v | h = p(h | v)] of each, carried down to the input
    samples: np.ndarray  # chains × picture: E[v | h] at the chain's last step, carried down (less noisy than v)
    chain_visible: np.ndarray  # chains × visible: the chosen layer's last visible sample v_k
    chain_hidden: np.ndarray  # chains × hidden: its last hidden sample h_k
    energy: np.ndarray  # steps × chains: E(v_t, h_t), t = 1…k (the whole DBM's for a DBM)
    free_energy: np.ndarray | None  # (steps + 1) × chains: F(v_t), t = 0…k; None for a DBM (intractable)
    snapshots: np.ndarray  # m × picture: the first chain at a few steps
    snapshot_steps: tuple[int, ...]  # which steps
    validation_free_energy: float | None  # mean F(v) over the context's validation samples (this layer's)
    validation_count: int = 0
    settings: BoltzmannSettings = BoltzmannSettings()
    note: str = ""
    chain_free_energy: float | None = None  # mean F of the chains' last visible samples (not for a DBM)


def rbm_layers(model: nn.Module) -> list[tuple[str, RBM]]:
    """Every RBM of the model by dotted name, in the order they were added (bottom to top for a chain)."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, RBM)]


def energy(rbm: RBM, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """E(v, h) per sample: −vᵀb_v − hᵀb_h − hᵀWv (Bernoulli visible), ½‖v − b_v‖² − hᵀb_h − hᵀWv (Gaussian)."""
    visible = -(v @ rbm.visible_bias) if rbm.visible == "bernoulli" else 0.5 * ((v - rbm.visible_bias) ** 2).sum(-1)
    return visible - h @ rbm.hidden_bias - (F.linear(v, rbm.weight) * h).sum(-1)


def dbm_energy(rbms: Sequence[RBM], layers: Sequence[torch.Tensor]) -> torch.Tensor:
    """A DBM's joint energy per sample: Σ_i E_i(h^{i−1}, h^i), each layer's bias counted once (as the objective)."""
    total = torch.zeros(len(layers[0]))
    for i, rbm in enumerate(rbms):
        below, above = layers[i], layers[i + 1]
        total = (
            total - (F.linear(below, rbm.weight) * above).sum(-1) - below @ rbm.visible_bias - above @ rbm.hidden_bias
        )
    return total


def tile_shape(size: int) -> tuple[int, int]:
    """A near-square picture of ``size`` values (the last row padded)."""
    width = math.ceil(math.sqrt(size))
    return math.ceil(size / width), width


def as_pictures(values: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """n × size → n × height × width float32, padded with NaN (drawn transparent) where the picture is larger."""
    flat = values.detach().to(torch.float32).numpy()
    padded = np.full((len(flat), shape[0] * shape[1]), np.nan, np.float32)
    padded[:, : flat.shape[1]] = flat
    return padded.reshape(len(flat), *shape)


class Boltzmann(Probe):
    name = "boltzmann"
    frame_type = BoltzmannFrame
    interval_s = 1.0  # a chain of 50 Gibbs steps: about 30 ms a frame, and the pictures change slowly
    budget = 0.05
    replayable = True
    Settings = BoltzmannSettings

    def applies(self, info: ModelInfo) -> bool:
        return info.family == "boltzmann"

    def frame(self, context: ProbeContext) -> BoltzmannFrame:
        rbms = rbm_layers(context.model)
        names = tuple(n for n, _ in rbms)
        if not rbms:
            return self._empty(context, names, "this model has no rbm layer")
        index = names.index(self.settings.layer) if self.settings.layer in names else 0
        name, rbm = rbms[index]
        modules = [m for _, m in rbms]
        picture = self._picture(context, modules[0])
        tile = picture if index == 0 else tile_shape(rbm.weight.shape[1])
        generator = torch.Generator().manual_seed(SEED)
        joint = rbm.stack == "dbm" and len(modules) > 1  # the chain runs over the whole machine
        with torch.no_grad():
            v_data = self._received(context, rbm)
            shown = v_data[:SHOWN] if v_data is not None else None

            def down(v: torch.Tensor) -> np.ndarray:  # this layer's visible units, carried down to the input
                for lower in reversed(modules[:index]):
                    v = lower.visible_mean(v)
                return as_pictures(v, picture)

            def bottom_up(v: torch.Tensor) -> np.ndarray:  # a whole DBM's chain: its visible units are the input's
                return as_pictures(v, picture)

            filters = as_pictures(rbm.weight[:MAX_FILTERS], tile)
            inputs = down(shown) if shown is not None else np.zeros((0, *picture), np.float32)
            reconstructions = (
                down(rbm.visible_mean(rbm.hidden_probs(shown))) if shown is not None else np.zeros_like(inputs)
            )
            if joint:
                bottom = v_data if index == 0 else self._received(context, modules[0])
                start = self._start(modules[0], bottom[:SHOWN] if bottom is not None else None, generator)
                chain = self._dbm_chain(modules, start, bottom is not None and self.settings.start == "data", generator)
                pixels = bottom_up
            else:
                chain = self._rbm_chain(rbm, self._start(rbm, shown, generator), generator)
                pixels = down
            samples = pixels(chain.samples)
            snapshots = np.concatenate([pixels(s) for s in chain.snapshots])
            validation_f = float(rbm.free_energy(v_data).mean()) if v_data is not None and not joint else None
            chain_f = float(rbm.free_energy(chain.visible).mean()) if not joint else None
        note = "the chain samples the whole DBM; the filters and reconstructions are this layer's" if joint else ""
        if v_data is None:
            note = "no validation data fits this model: the chains start from noise, and nothing is reconstructed"
        return BoltzmannFrame(
            context.step,
            name,
            names,
            rbm.stack,
            rbm.visible,
            picture,
            tile,
            filters,
            int(rbm.weight.shape[0]),
            inputs,
            reconstructions,
            samples,
            chain.visible.numpy().astype(np.float32),
            chain.hidden.numpy().astype(np.float32),
            chain.energy,
            chain.free_energy,
            snapshots,
            chain.snapshot_steps,
            validation_f,
            0 if v_data is None else len(v_data),
            self.settings,
            note,
            chain_f,
        )

    def _empty(self, context: ProbeContext, names: tuple[str, ...], note: str) -> BoltzmannFrame:
        nothing = np.zeros((0, 1, 1), np.float32)
        return BoltzmannFrame(
            context.step, "", names, "", "", (1, 1), (1, 1), nothing, 0, nothing, nothing, nothing,
            np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), None,
            nothing, (), None, settings=self.settings, note=note,
        )  # fmt: skip

    @staticmethod
    def _picture(context: ProbeContext, bottom: RBM) -> tuple[int, int]:
        """The input's picture (C·H × W, channels one above another) when the bottom RBM reads a whole picture."""
        shape = context.info.input_shape if context.info is not None else ()
        if len(shape) == 3 and math.prod(shape) == bottom.weight.shape[1]:
            return shape[0] * shape[1], shape[2]
        return tile_shape(bottom.weight.shape[1])

    @staticmethod
    def _received(context: ProbeContext, rbm: RBM) -> torch.Tensor | None:
        """What ``rbm`` reads when the model runs on the validation samples (the layers below apply); None
        without validation data, or when the model does not run it."""
        if context.validation is None:
            return None
        received: list[torch.Tensor] = []

        def hook(_module: nn.Module, args: tuple) -> None:
            if not received:
                received.append(args[0])

        model = context.model
        handle = rbm.register_forward_pre_hook(hook)
        try:
            with evaluating(model), torch.no_grad():
                model(context.validation[0])
        finally:
            handle.remove()
        return received[0].flatten(1).to(rbm.weight.dtype) if received else None

    def _start(self, rbm: RBM, shown: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        if self.settings.start == "data" and shown is not None:
            return shown.clone()
        size = (SHOWN, rbm.weight.shape[1])
        if rbm.visible == "bernoulli":
            return torch.bernoulli(torch.full(size, 0.5), generator=generator)
        return torch.randn(size, generator=generator)

    def _snapshot_at(self) -> set[int]:
        k = self.settings.steps
        return {round(i * k / (SNAPSHOTS - 1)) for i in range(SNAPSHOTS)}

    def _rbm_chain(self, rbm: RBM, v: torch.Tensor, generator: torch.Generator) -> _Chain:
        """h_t ~ p(h | v_{t−1}), v_t ~ p(v | h_t) for t = 1…k, from v_0 = ``v``."""
        keep = self._snapshot_at()
        visibles, hiddens = [v], []
        snapshots, steps = [v[:1]] if 0 in keep else [], [0] if 0 in keep else []
        mean = v
        for t in range(1, self.settings.steps + 1):
            _, h = rbm.sample_h(v, generator)
            mean, v = rbm.sample_v(h, generator)
            visibles.append(v)
            hiddens.append(h)
            if t in keep:
                snapshots.append(mean[:1])
                steps.append(t)
        every = torch.stack(visibles)  # (k + 1) × chains × visible: one product for every step, not k small ones
        energies = energy(rbm, every[1:], torch.stack(hiddens))
        free = rbm.free_energy(every)
        return _Chain(v, hiddens[-1], mean, energies.numpy(), free.numpy(), snapshots, tuple(steps))

    def _dbm_chain(self, rbms: list[RBM], v: torch.Tensor, data: bool, generator: torch.Generator) -> _Chain:
        """Block Gibbs over a whole DBM, as its objective samples: odd layers given even ones, then even ones, from
        v_0 = ``v`` and hidden layers sampled bottom-up from it (``data``), or at random."""
        layers = [v]
        for rbm in rbms:
            probs = rbm.hidden_probs(layers[-1]) if data else torch.full((len(v), rbm.weight.shape[0]), 0.5)
            layers.append(torch.bernoulli(probs, generator=generator))
        keep = self._snapshot_at()
        energies = []
        snapshots, steps = [layers[0][:1]] if 0 in keep else [], [0] if 0 in keep else []
        mean = layers[0]
        for t in range(1, self.settings.steps + 1):
            for parity in (1, 0):
                for i in range(parity, len(layers), 2):
                    if i == 0:
                        probs = mean = rbms[0].visible_mean(layers[1])
                    else:
                        below = rbms[i - 1]
                        total = F.linear(layers[i - 1], below.weight, below.hidden_bias)
                        if i < len(rbms):
                            total = total + layers[i + 1] @ rbms[i].weight + rbms[i].visible_bias
                        probs = torch.sigmoid(total)
                    layers[i] = torch.bernoulli(probs, generator=generator)
            energies.append(dbm_energy(rbms, layers))
            if t in keep:
                snapshots.append(mean[:1])
                steps.append(t)
        return _Chain(layers[0], layers[1], mean, torch.stack(energies).numpy(), None, snapshots, tuple(steps))


@dataclass
class _Chain:
    visible: torch.Tensor  # the chosen layer's last visible sample
    hidden: torch.Tensor  # its last hidden sample
    samples: torch.Tensor  # E[v | h] at the last step
    energy: np.ndarray
    free_energy: np.ndarray | None
    snapshots: list[torch.Tensor]
    snapshot_steps: tuple[int, ...]
