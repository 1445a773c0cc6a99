"""Convolutional presets: small versions of the classic CNNs for CPU training, and full-size versions with
torchvision's exact module names and shapes.

Small presets take MNIST-sized 1×28×28 inputs (the dataset Lumen ships) and end in 10 classes; each one's
description says what it keeps from the original and what it changes. Full-size presets take 3×224×224
and end in 1,000 ImageNet classes; their node ids are torchvision's module paths, so a torchvision state
dict loads into the built model with ``strict=True`` (tools/torchvision_parity.py checks the outputs).

Repeated structures (inception modules, residual blocks, depthwise-separable and inverted-residual
blocks) are helpers that append nodes to a ``GraphBuilder``; the small and full-size models share them.
"""

from __future__ import annotations

from typing import Any

from lumen.engine.presets.preset import Preset
from lumen.engine.spec.model_spec import ModelSpec, Node
from lumen.engine.spec.preprocess import IMAGENET, Preprocess

SMALL_INPUT = (1, 28, 28)
SMALL_CLASSES = 10
IMAGENET_INPUT = (3, 224, 224)
IMAGENET_CLASSES = 1000


class GraphBuilder:
    """Appends nodes and edges; ``add`` returns the new node's id, so calls chain into paths and blocks."""

    def __init__(self, input_shape: tuple[int, ...], preprocess: Preprocess | None = None):
        self.preprocess = preprocess  # how pictures become inputs (the full-size models: ImageNet's)
        self.nodes: list[Node] = [Node("input", "input", {"shape": list(input_shape)})]
        self.edges: list[tuple[str, str]] = []

    def add(self, node_id: str, layer_type: str, src: str | list[str], **params: Any) -> str:
        self.nodes.append(Node(node_id, layer_type, params))
        self.edges.extend((s, node_id) for s in ([src] if isinstance(src, str) else src))
        return node_id

    def chain(self, src: str, layers: list[tuple[str, str, dict[str, Any]]]) -> str:
        for node_id, layer_type, params in layers:
            src = self.add(node_id, layer_type, src, **params)
        return src

    def spec(self, name: str, description: str) -> ModelSpec:
        return ModelSpec(name, tuple(self.nodes), tuple(self.edges), description, self.preprocess)


# ---- shared blocks -------------------------------------------------------------------------------


def conv_unit(
    g: GraphBuilder,
    prefix: str,
    src: str,
    out: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    *,
    bn_eps: float | None = None,
    groups: int = 1,
    act: str = "relu",
) -> str:
    """conv → relu, or, with ``bn_eps``, conv (no bias: the norm's shift replaces it) → batch norm → relu.

    Ids are torchvision's BasicConv2d names: ``prefix.conv``, ``prefix.bn``; the activation is ``prefix.relu``.
    """
    conv = dict(out_channels=out, kernel_size=kernel, stride=stride, padding=padding)
    if groups != 1:
        conv["groups"] = groups
    if bn_eps is None:
        x = g.add(f"{prefix}.conv", "conv2d", src, **conv)
    else:
        x = g.add(f"{prefix}.conv", "conv2d", src, **conv, bias=False)
        x = g.add(f"{prefix}.bn", "batchnorm2d", x, **_eps(bn_eps))
    return g.add(f"{prefix}.{act}", act, x)


def _eps(eps: float) -> dict[str, float]:
    return {} if eps == 1e-5 else {"eps": eps}  # torch's default is left implicit


def inception(
    g: GraphBuilder,
    prefix: str,
    src: str,
    c1: int,
    c3_reduce: int,
    c3: int,
    c5_reduce: int,
    c5: int,
    pool_proj: int,
    *,
    bn_eps: float | None = None,
    k5: int = 5,
) -> str:
    """Four parallel branches concatenated along channels: 1×1; 1×1 → 3×3; 1×1 → k5×k5; 3×3 max pool → 1×1.

    The 1×1 "reductions" shrink the channels before the costly 3×3 and 5×5 convolutions. Ids follow
    torchvision's Inception (branch1, branch2.0, branch2.1, ..., branch4.0 is the pool).
    """
    b1 = conv_unit(g, f"{prefix}.branch1", src, c1, 1, bn_eps=bn_eps)
    b2 = conv_unit(g, f"{prefix}.branch2.0", src, c3_reduce, 1, bn_eps=bn_eps)
    b2 = conv_unit(g, f"{prefix}.branch2.1", b2, c3, 3, padding=1, bn_eps=bn_eps)
    b3 = conv_unit(g, f"{prefix}.branch3.0", src, c5_reduce, 1, bn_eps=bn_eps)
    b3 = conv_unit(g, f"{prefix}.branch3.1", b3, c5, k5, padding=k5 // 2, bn_eps=bn_eps)
    b4 = g.add(
        f"{prefix}.branch4.0",
        "maxpool2d",
        src,
        kernel_size=3,
        stride=1,
        padding=1,
        **({"ceil_mode": True} if bn_eps is not None else {}),
    )  # torchvision's; no effect at stride 1
    b4 = conv_unit(g, f"{prefix}.branch4.1", b4, pool_proj, 1, bn_eps=bn_eps)
    return g.add(f"{prefix}.concat", "concat", [b1, b2, b3, b4])


def basic_block(g: GraphBuilder, prefix: str, src: str, in_channels: int, out: int, stride: int = 1) -> str:
    """ResNet's basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    The shortcut is the identity, or, when the block changes the shape (stride 2 or more channels), a
    1×1 strided convolution with batch norm (the "projection shortcut", option B of He et al. 2015).
    Ids are torchvision's BasicBlock names (conv1, bn1, conv2, bn2, downsample.0, downsample.1).
    """
    x = g.chain(
        src,
        [
            (f"{prefix}.conv1", "conv2d", dict(out_channels=out, kernel_size=3, stride=stride, padding=1, bias=False)),
            (f"{prefix}.bn1", "batchnorm2d", {}),
            (f"{prefix}.relu", "relu", {}),
            (f"{prefix}.conv2", "conv2d", dict(out_channels=out, kernel_size=3, padding=1, bias=False)),
            (f"{prefix}.bn2", "batchnorm2d", {}),
        ],
    )
    shortcut = src
    if stride != 1 or in_channels != out:
        shortcut = g.chain(
            src,
            [
                (f"{prefix}.downsample.0", "conv2d", dict(out_channels=out, kernel_size=1, stride=stride, bias=False)),
                (f"{prefix}.downsample.1", "batchnorm2d", {}),
            ],
        )
    x = g.add(f"{prefix}.add", "add", [x, shortcut])
    return g.add(f"{prefix}.relu_out", "relu", x)


def dw_separable(g: GraphBuilder, prefix: str, src: str, in_channels: int, out: int, stride: int = 1) -> str:
    """MobileNet v1's block: a 3×3 depthwise convolution (groups = channels: one filter per channel) and a
    1×1 pointwise convolution that mixes channels, each with batch norm and ReLU. It costs about
    1/out + 1/9 of a full 3×3 convolution's multiply-accumulates."""
    x = conv_unit(g, f"{prefix}.dw", src, in_channels, 3, stride, 1, bn_eps=1e-5, groups=in_channels)
    return conv_unit(g, f"{prefix}.pw", x, out, 1, bn_eps=1e-5)


def inverted_residual(
    g: GraphBuilder, prefix: str, src: str, in_channels: int, out: int, stride: int, expand: int
) -> str:
    """MobileNetV2's block: 1×1 expansion (×expand, ReLU6) → 3×3 depthwise (ReLU6) → 1×1 linear projection;
    the input is added back when the shape is unchanged. Ids follow torchvision's InvertedResidual."""
    hidden = in_channels * expand
    layers: list[tuple[str, str, dict]] = []
    i = 0
    if expand != 1:
        layers += _conv_bn_act(f"{prefix}.conv.{i}", hidden, 1, 1, 1)
        i += 1
    layers += _conv_bn_act(f"{prefix}.conv.{i}", hidden, 3, stride, hidden)
    layers += [
        (f"{prefix}.conv.{i + 1}", "conv2d", dict(out_channels=out, kernel_size=1, bias=False)),
        (f"{prefix}.conv.{i + 2}", "batchnorm2d", {}),
    ]
    x = g.chain(src, layers)
    if stride == 1 and in_channels == out:
        x = g.add(f"{prefix}.add", "add", [src, x])
    return x


def _conv_bn_act(prefix: str, out: int, kernel: int, stride: int, groups: int, act: str = "relu6") -> list:
    """torchvision's Conv2dNormActivation: a Sequential of conv (prefix.0), batch norm (.1), activation (.2)."""
    conv = dict(out_channels=out, kernel_size=kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
    if groups != 1:
        conv["groups"] = groups
    return [(f"{prefix}.0", "conv2d", conv), (f"{prefix}.1", "batchnorm2d", {}), (f"{prefix}.2", act, {})]


def _classifier_head(g: GraphBuilder, src: str, classes: int, dropout: float = 0.0) -> str:
    """Global average pooling → flatten → (dropout) → linear: one number per channel, then the classes."""
    x = g.add("pool", "global_avgpool", src)
    x = g.add("flatten", "flatten", x)
    if dropout:
        x = g.add("dropout", "dropout", x, p=dropout)
    return g.add("fc", "linear", x, out_features=classes)


# ---- small presets (1×28×28, 10 classes) ---------------------------------------------------------


def _lrn() -> dict:
    # AlexNet's n=5, k=2, α=1e-4, β=0.75; torch divides α by the window size, the paper did not, so α·n here.
    return dict(size=5, alpha=5e-4, beta=0.75, k=2.0)


def _alexnet_family(first_kernel: int, channels: tuple[int, int, int, int, int]) -> GraphBuilder:
    """AlexNet's layout, which ZFNet keeps: five convolutions (LRN after the first two), overlapping
    3×3/2 pooling, two dropout-regularised hidden layers."""
    c1, c2, c3, c4, c5 = channels
    g = GraphBuilder(SMALL_INPUT)
    g.chain(
        "input",
        [
            ("conv1", "conv2d", dict(out_channels=c1, kernel_size=first_kernel, padding=first_kernel // 2)),
            ("relu1", "relu", {}),
            ("norm1", "lrn", _lrn()),
            ("pool1", "maxpool2d", dict(kernel_size=3, stride=2)),
            ("conv2", "conv2d", dict(out_channels=c2, kernel_size=5, padding=2)),
            ("relu2", "relu", {}),
            ("norm2", "lrn", _lrn()),
            ("pool2", "maxpool2d", dict(kernel_size=3, stride=2)),
            ("conv3", "conv2d", dict(out_channels=c3, kernel_size=3, padding=1)),
            ("relu3", "relu", {}),
            ("conv4", "conv2d", dict(out_channels=c4, kernel_size=3, padding=1)),
            ("relu4", "relu", {}),
            ("conv5", "conv2d", dict(out_channels=c5, kernel_size=3, padding=1)),
            ("relu5", "relu", {}),
            ("pool5", "maxpool2d", dict(kernel_size=3, stride=2)),
            ("flatten", "flatten", {}),
            ("fc6", "linear", dict(out_features=256)),
            ("relu6", "relu", {}),
            ("drop6", "dropout", dict(p=0.5)),
            ("fc7", "linear", dict(out_features=256)),
            ("relu7", "relu", {}),
            ("drop7", "dropout", dict(p=0.5)),
            ("fc8", "linear", dict(out_features=SMALL_CLASSES)),
        ],
    )
    return g


def alexnet_small() -> ModelSpec:
    g = _alexnet_family(5, (32, 64, 96, 96, 64))
    return g.spec(
        "AlexNet (small)",
        (
            "AlexNet (Krizhevsky et al. 2012) for 28×28 digits. Kept: five convolutions with ReLU, local response "
            "normalisation after the first two, overlapping 3×3/2 max pooling, dropout before the two hidden fully "
            "connected layers. Changed: 5×5 stride-1 first filters instead of 11×11 stride 4 (the input is 8× "
            "smaller), about a sixth of the channels (32-64-96-96-64), 256-unit hidden layers instead of 4,096, "
            "10 classes, one input channel, and no split of the layers across two GPUs."
        ),
    )


def zfnet_small() -> ModelSpec:
    g = _alexnet_family(3, (32, 64, 128, 256, 128))
    return g.spec(
        "ZFNet (small)",
        (
            "ZFNet (Zeiler & Fergus 2013) for 28×28 digits, built as AlexNet (small) plus ZFNet's two changes to "
            "AlexNet: a smaller first filter (their deconvnet showed 11×11 stride-4 filters left dead and aliased "
            "features; they used 7×7 stride 2, here 3×3 stride 1) and wider middle convolutions (512-1024-512 "
            "instead of 384-384-256; here 128-256-128). Kept: LRN, overlapping 3×3/2 pooling, dropout, three fully "
            "connected layers. Changed from the original: about an eighth of the channels, 256-unit hidden layers "
            "instead of 4,096, 10 classes, one input channel."
        ),
    )


def vgg_small() -> ModelSpec:
    g = GraphBuilder(SMALL_INPUT)
    x = "input"
    for stage, channels in enumerate([32, 64, 128], start=1):
        for j in (1, 2):
            x = g.add(f"conv{stage}_{j}", "conv2d", x, out_channels=channels, kernel_size=3, padding=1)
            x = g.add(f"relu{stage}_{j}", "relu", x)
        x = g.add(f"pool{stage}", "maxpool2d", x, kernel_size=2, stride=2)
    g.chain(
        x,
        [
            ("flatten", "flatten", {}),
            ("fc1", "linear", dict(out_features=256)),
            ("relu_fc1", "relu", {}),
            ("drop1", "dropout", dict(p=0.5)),
            ("fc2", "linear", dict(out_features=256)),
            ("relu_fc2", "relu", {}),
            ("drop2", "dropout", dict(p=0.5)),
            ("fc3", "linear", dict(out_features=SMALL_CLASSES)),
        ],
    )
    return g.spec(
        "VGG (small)",
        (
            "VGG (Simonyan & Zisserman 2014) for 28×28 digits. Kept: only 3×3 convolutions with padding 1 "
            "stacked two per stage (two 3×3 see as far as one 5×5 with fewer weights and an extra ReLU), 2×2/2 "
            "max pooling halving the size while channels double, three fully connected layers with dropout. "
            "Changed: three stages of two convolutions (32-64-128 channels) instead of five stages (64-512) with "
            "8-13 convolutions, 256-unit hidden layers instead of 4,096, 10 classes, one input channel."
        ),
    )


def googlenet_small() -> ModelSpec:
    g = GraphBuilder(SMALL_INPUT)
    x = conv_unit(g, "stem", "input", 64, 3, padding=1)
    x = g.add("pool1", "maxpool2d", x, kernel_size=3, stride=2, padding=1)  # 28 -> 14
    x = inception(g, "inception_a", x, 32, 32, 48, 8, 16, 16)  # 112 channels
    x = inception(g, "inception_b", x, 48, 48, 64, 16, 32, 32)  # 176
    x = g.add("pool2", "maxpool2d", x, kernel_size=3, stride=2, padding=1)  # 14 -> 7
    x = inception(g, "inception_c", x, 64, 64, 96, 16, 32, 32)  # 224
    _classifier_head(g, x, SMALL_CLASSES, dropout=0.4)
    return g.spec(
        "GoogLeNet (small)",
        (
            "GoogLeNet / Inception v1 (Szegedy et al. 2014) for 28×28 digits. Kept: inception modules — 1×1, "
            "1×1→3×3, 1×1→5×5 and 3×3 max pool→1×1 branches concatenated along channels, the 1×1 reductions "
            "cutting the cost of the larger filters — and global average pooling instead of big fully connected "
            "layers, then dropout 0.4 and one linear classifier. Changed: one 3×3 stem convolution instead of the "
            "7×7/2, 1×1 and 3×3 stem with LRN; three inception modules (112-176-224 channels) instead of nine "
            "(256-1024); no auxiliary classifiers; 10 classes, one input channel."
        ),
    )


def resnet_small() -> ModelSpec:
    g = GraphBuilder(SMALL_INPUT)
    x = g.chain(
        "input",
        [
            ("conv1", "conv2d", dict(out_channels=16, kernel_size=3, padding=1, bias=False)),
            ("bn1", "batchnorm2d", {}),
            ("relu", "relu", {}),
        ],
    )
    channels = 16
    for stage, (out, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):  # 28 -> 28 -> 14 -> 7
        for block in range(2):
            x = basic_block(g, f"layer{stage}.{block}", x, channels, out, stride if block == 0 else 1)
            channels = out
    _classifier_head(g, x, SMALL_CLASSES)
    return g.spec(
        "ResNet (small)",
        (
            "ResNet (He et al. 2015) for 28×28 digits, the paper's CIFAR-style ResNet-14 (6n+2 layers, n=2). Kept: "
            "basic residual blocks (two 3×3 convolutions with batch norm, the input added back before the last "
            "ReLU), stride-2 convolutions where the size halves while channels double, global average pooling and "
            "one linear layer. Changed from ResNet-18: a 3×3 stem without max pooling instead of 7×7/2 + 3×3/2 "
            "pooling, three stages of 16-32-64 channels instead of four of 64-512, a 1×1 projection shortcut "
            "(option B) where shapes change, 10 classes, one input channel."
        ),
    )


def mobilenet_small() -> ModelSpec:
    g = GraphBuilder(SMALL_INPUT)
    x = conv_unit(g, "stem", "input", 32, 3, padding=1, bn_eps=1e-5)
    channels = 32
    for i, (out, stride) in enumerate([(64, 1), (128, 2), (128, 1), (256, 2), (256, 1)], start=1):
        x = dw_separable(g, f"block{i}", x, channels, out, stride)  # 28 -> 28 -> 14 -> 14 -> 7 -> 7
        channels = out
    _classifier_head(g, x, SMALL_CLASSES)
    return g.spec(
        "MobileNet (small)",
        (
            "MobileNet v1 (Howard et al. 2017) for 28×28 digits. Kept: depthwise-separable blocks — a 3×3 "
            "depthwise convolution (groups = channels) then a 1×1 pointwise convolution, each with batch norm and "
            "ReLU — with stride-2 depthwise convolutions instead of pooling, then global average pooling and one "
            "linear layer. Changed: five blocks (64-256 channels) instead of thirteen (64-1024), a stride-1 stem "
            "instead of stride 2, no width or resolution multiplier, 10 classes, one input channel."
        ),
    )


# ---- full-size presets (torchvision's module names; 3×224×224, 1,000 classes) ---------------------


def alexnet() -> ModelSpec:
    g = GraphBuilder(IMAGENET_INPUT, IMAGENET)
    convs = {0: (64, 11, 4, 2), 3: (192, 5, 1, 2), 6: (384, 3, 1, 1), 8: (256, 3, 1, 1), 10: (256, 3, 1, 1)}
    x = "input"
    for i in range(13):
        if i in convs:
            out, k, s, p = convs[i]
            x = g.add(f"features.{i}", "conv2d", x, out_channels=out, kernel_size=k, stride=s, padding=p)
        elif i in (2, 5, 12):
            x = g.add(f"features.{i}", "maxpool2d", x, kernel_size=3, stride=2)
        else:
            x = g.add(f"features.{i}", "relu", x)
    x = g.add("avgpool", "adaptive_avgpool2d", x, output_size=6)
    g.chain(
        g.add("flatten", "flatten", x),
        [
            ("classifier.0", "dropout", dict(p=0.5)),
            ("classifier.1", "linear", dict(out_features=4096)),
            ("classifier.2", "relu", {}),
            ("classifier.3", "dropout", dict(p=0.5)),
            ("classifier.4", "linear", dict(out_features=4096)),
            ("classifier.5", "relu", {}),
            ("classifier.6", "linear", dict(out_features=IMAGENET_CLASSES)),
        ],
    )
    return g.spec(
        "AlexNet",
        (
            "AlexNet as torchvision builds it (the 'one weird trick' variant: 64-192-384-256-256 channels, no LRN, "
            "no two-GPU split), with torchvision's module names, so its pretrained state dict loads as it is."
        ),
    )


_VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _vgg(name: str) -> ModelSpec:
    g = GraphBuilder(IMAGENET_INPUT, IMAGENET)
    x, i = "input", 0
    for item in _VGG_CONFIGS[name]:
        if item == "M":
            x = g.add(f"features.{i}", "maxpool2d", x, kernel_size=2, stride=2)
            i += 1
        else:
            x = g.add(f"features.{i}", "conv2d", x, out_channels=item, kernel_size=3, padding=1)
            x = g.add(f"features.{i + 1}", "relu", x)
            i += 2
    x = g.add("avgpool", "adaptive_avgpool2d", x, output_size=7)
    g.chain(
        g.add("flatten", "flatten", x),
        [
            ("classifier.0", "linear", dict(out_features=4096)),
            ("classifier.1", "relu", {}),
            ("classifier.2", "dropout", dict(p=0.5)),
            ("classifier.3", "linear", dict(out_features=4096)),
            ("classifier.4", "relu", {}),
            ("classifier.5", "dropout", dict(p=0.5)),
            ("classifier.6", "linear", dict(out_features=IMAGENET_CLASSES)),
        ],
    )
    depth = name[3:]
    return g.spec(
        f"VGG-{depth}",
        (
            f"VGG-{depth} (configuration {'A' if depth == '11' else 'D'} of Simonyan & Zisserman 2014) without batch "
            "norm, as torchvision builds it, with torchvision's module names."
        ),
    )


def vgg11() -> ModelSpec:
    return _vgg("vgg11")


def vgg16() -> ModelSpec:
    return _vgg("vgg16")


def resnet18() -> ModelSpec:
    g = GraphBuilder(IMAGENET_INPUT, IMAGENET)
    x = g.chain(
        "input",
        [
            ("conv1", "conv2d", dict(out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("bn1", "batchnorm2d", {}),
            ("relu", "relu", {}),
            ("maxpool", "maxpool2d", dict(kernel_size=3, stride=2, padding=1)),
        ],
    )
    channels = 64
    for stage, out in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = basic_block(g, f"layer{stage}.{block}", x, channels, out, stride)
            channels = out
    x = g.add("avgpool", "adaptive_avgpool2d", x, output_size=1)
    g.chain(g.add("flatten", "flatten", x), [("fc", "linear", dict(out_features=IMAGENET_CLASSES))])
    return g.spec("ResNet-18", "ResNet-18 (He et al. 2015) as torchvision builds it, with its module names.")


def mobilenet_v2() -> ModelSpec:
    g = GraphBuilder(IMAGENET_INPUT, IMAGENET)
    x = g.chain("input", _conv_bn_act("features.0", 32, 3, 2, 1))
    channels, index = 32, 1
    # (expansion t, output channels c, repeats n, first stride s), the table of Sandler et al. 2018
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for k in range(n):
            x = inverted_residual(g, f"features.{index}", x, channels, c, s if k == 0 else 1, t)
            channels, index = c, index + 1
    x = g.chain(x, _conv_bn_act(f"features.{index}", 1280, 1, 1, 1))
    x = g.add("pool", "adaptive_avgpool2d", x, output_size=1)
    g.chain(
        g.add("flatten", "flatten", x),
        [
            ("classifier.0", "dropout", dict(p=0.2)),
            ("classifier.1", "linear", dict(out_features=IMAGENET_CLASSES)),
        ],
    )
    return g.spec(
        "MobileNetV2",
        (
            "MobileNetV2 (Sandler et al. 2018, width 1.0) as torchvision builds it, with its module names: "
            "inverted residual blocks with linear bottlenecks and ReLU6."
        ),
    )


def googlenet() -> ModelSpec:
    g = GraphBuilder(IMAGENET_INPUT, IMAGENET)
    eps = 0.001  # torchvision's BasicConv2d
    x = conv_unit(g, "conv1", "input", 64, 7, 2, 3, bn_eps=eps)
    x = g.add("maxpool1", "maxpool2d", x, kernel_size=3, stride=2, ceil_mode=True)
    x = conv_unit(g, "conv2", x, 64, 1, bn_eps=eps)
    x = conv_unit(g, "conv3", x, 192, 3, padding=1, bn_eps=eps)
    x = g.add("maxpool2", "maxpool2d", x, kernel_size=3, stride=2, ceil_mode=True)
    blocks = {
        "3a": (64, 96, 128, 16, 32, 32),
        "3b": (128, 128, 192, 32, 96, 64),
        "pool3": (3,),
        "4a": (192, 96, 208, 16, 48, 64),
        "4b": (160, 112, 224, 24, 64, 64),
        "4c": (128, 128, 256, 24, 64, 64),
        "4d": (112, 144, 288, 32, 64, 64),
        "4e": (256, 160, 320, 32, 128, 128),
        "pool4": (2,),
        "5a": (256, 160, 320, 32, 128, 128),
        "5b": (384, 192, 384, 48, 128, 128),
    }
    for key, widths in blocks.items():
        if key.startswith("pool"):
            x = g.add(f"maxpool{key[4]}", "maxpool2d", x, kernel_size=widths[0], stride=2, ceil_mode=True)
        else:
            # torchvision's "5×5" branch uses 3×3 kernels (a known slip it keeps for its weights)
            x = inception(g, f"inception{key}", x, *widths, bn_eps=eps, k5=3)
    x = g.add("avgpool", "adaptive_avgpool2d", x, output_size=1)
    g.chain(
        g.add("flatten", "flatten", x),
        [
            ("dropout", "dropout", dict(p=0.2)),
            ("fc", "linear", dict(out_features=IMAGENET_CLASSES)),
        ],
    )
    return g.spec(
        "GoogLeNet",
        (
            "GoogLeNet (Szegedy et al. 2014) as torchvision builds it, with its module names: batch norm after every "
            "convolution, the '5×5' branches with 3×3 kernels, no auxiliary classifiers, no input transform."
        ),
    )


def shapes_gap_cnn() -> ModelSpec:
    g = GraphBuilder((3, 32, 32))
    x = conv_unit(g, "block1", "input", 32, 3, padding=1, bn_eps=1e-5)
    x = conv_unit(g, "block2", x, 32, 3, padding=1, bn_eps=1e-5)
    x = g.add("pool", "maxpool2d", x, kernel_size=2)  # 32 -> 16
    for block in ("block3", "block4"):  # dilated: each sees 22×22 input pixels at the 16×16 grid
        x = g.chain(
            x,
            [
                (f"{block}.conv", "conv2d", dict(out_channels=64, kernel_size=3, padding=2, dilation=2, bias=False)),
                (f"{block}.bn", "batchnorm2d", {}),
                (f"{block}.relu", "relu", {}),
            ],
        )
    x = g.add("gap", "global_avgpool", x)
    g.add("fc", "linear", x, out_features=5)
    return g.spec(
        "Shapes GAP CNN",
        (
            "A CNN built to be looked inside, for the 3×32×32 synthetic shapes: four 3×3 convolutions with batch "
            "norm (32-32-64-64 channels), one 2×2 max pooling, so the last conv layer is still a 16×16 grid (its "
            "two convolutions dilated, so each cell sees 22×22 pixels), then global average pooling and one linear "
            "layer over the 5 classes: the class activation mapping design (Zhou et al. 2016) that Grad-CAM "
            "assumes, so Grad-CAM on the last conv layer points at the object at half the input's resolution. "
            "Changed from a classic CNN: no fully connected hidden layers and only one pooling step, which keep "
            "the where as well as the what. Trains to ~100 % in 8 epochs with Adam (lr 3e-3 to 5e-3)."
        ),
    )


SMALL_PRESETS = ["alexnet_small", "zfnet_small", "vgg_small", "googlenet_small", "resnet_small", "mobilenet_small"]
PICTURE_PRESETS = ["shapes_gap_cnn"]
FULL_SIZE_PRESETS = ["alexnet", "vgg11", "vgg16", "resnet18", "mobilenet_v2", "googlenet"]

CNN_PRESETS: list[Preset] = [
    Preset(
        "alexnet_small", "AlexNet, small (1×28×28): 5 conv with LRN and overlapping pooling, dropout", alexnet_small
    ),
    Preset("zfnet_small", "ZFNet, small (1×28×28): AlexNet with smaller first filters, wider middle", zfnet_small),
    Preset("vgg_small", "VGG, small (1×28×28): stacked 3×3 convolutions, 3 stages", vgg_small),
    Preset(
        "googlenet_small", "GoogLeNet, small (1×28×28): 3 inception modules, global average pooling", googlenet_small
    ),
    Preset("resnet_small", "ResNet, small (1×28×28): 6 basic residual blocks, projection shortcuts", resnet_small),
    Preset("mobilenet_small", "MobileNet v1, small (1×28×28): 5 depthwise-separable blocks", mobilenet_small),
    Preset(
        "shapes_gap_cnn",
        "Shapes GAP CNN (3×32×32): 4 conv with batch norm, global average pooling; Grad-CAM at 16×16",
        shapes_gap_cnn,
        dataset="shapes",
    ),
    Preset(
        "alexnet",
        "AlexNet, full size (3×224×224), torchvision's names and weights",
        alexnet,
        dataset="shapes",
        data_options={"size": 64},
    ),
    Preset("vgg11", "VGG-11, full size (3×224×224), torchvision's names and weights", vgg11, dataset="shapes"),
    Preset("vgg16", "VGG-16, full size (3×224×224), torchvision's names and weights", vgg16, dataset="shapes"),
    Preset("resnet18", "ResNet-18, full size (3×224×224), torchvision's names and weights", resnet18, dataset="shapes"),
    Preset(
        "mobilenet_v2",
        "MobileNetV2, full size (3×224×224), torchvision's names and weights",
        mobilenet_v2,
        dataset="shapes",
    ),
    Preset(
        "googlenet",
        "GoogLeNet, full size (3×224×224, no aux heads), torchvision's names and weights",
        googlenet,
        dataset="shapes",
    ),
]
