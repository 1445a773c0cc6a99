"""Ready-made models, looked up by a short name (the CLI's MODEL argument, the GUI's preset menu)."""

from __future__ import annotations

from lumen.engine.errors import SpecError
from lumen.engine.presets.cnn import CNN_PRESETS, FULL_SIZE_PRESETS, PICTURE_PRESETS, SMALL_PRESETS
from lumen.engine.presets.generative import GENERATIVE_PRESETS
from lumen.engine.presets.preset import Preset
from lumen.engine.presets.sequence import SEQUENCE_PRESETS
from lumen.engine.spec.model_spec import ModelSpec


def lenet5() -> ModelSpec:
    # LeCun et al. 1998, modernised as courses teach it: ReLU instead of scaled tanh, max instead of
    # trainable average subsampling, a full C3 connection table and a plain linear output instead of RBF
    # units. Padding 2 on conv1 lets 28×28 MNIST play the part of the original 32×32 input.
    return ModelSpec.sequential(
        "LeNet-5",
        (1, 28, 28),
        [
            ("conv1", "conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2}),
            ("relu1", "relu", {}),
            ("pool1", "maxpool2d", {"kernel_size": 2}),
            ("conv2", "conv2d", {"out_channels": 16, "kernel_size": 5}),
            ("relu2", "relu", {}),
            ("pool2", "maxpool2d", {"kernel_size": 2}),
            ("flatten", "flatten", {}),
            ("fc1", "linear", {"out_features": 120}),
            ("relu3", "relu", {}),
            ("fc2", "linear", {"out_features": 84}),
            ("relu4", "relu", {}),
            ("fc3", "linear", {"out_features": 10}),
        ],
        description="LeNet-5 (LeCun et al. 1998) for 28×28 digits: two conv/pool stages, three fully connected "
        "layers. Unlike the original: ReLU instead of scaled tanh, max pooling instead of trainable "
        "subsampling, every C3 map sees all S2 maps, a linear output instead of RBF units, and "
        "padding 2 on conv1 so that 28×28 digits stand in for the original 32×32 input.",
    )


LENET5 = Preset("lenet5", "LeNet-5 (LeCun 1998): 2 conv + 3 fully connected layers, for 28×28 digits", lenet5)
_CNN = {p.name: p for p in CNN_PRESETS}

# Families, in the order menus list them.
PRESET_GROUPS: dict[str, list[Preset]] = {
    "CNNs for digits": [LENET5, *(_CNN[name] for name in SMALL_PRESETS)],
    "CNNs for pictures": [_CNN[name] for name in PICTURE_PRESETS],
    "CNNs, full size": [_CNN[name] for name in FULL_SIZE_PRESETS],
    "Recurrent": SEQUENCE_PRESETS,
    "Autoencoders and Boltzmann machines": GENERATIVE_PRESETS,
}
PRESETS: dict[str, Preset] = {p.name: p for group in PRESET_GROUPS.values() for p in group}


def get_preset(name: str) -> ModelSpec:
    try:
        return PRESETS[name].make()
    except KeyError:
        raise SpecError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None
