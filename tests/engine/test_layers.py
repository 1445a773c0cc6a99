"""The layer library and per-layer analysis, checked against torch's own modules, numpy and hand arithmetic."""

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from lumen.engine.errors import SpecError
from lumen.engine.graph.analysis import analyze
from lumen.engine.graph.model import build_model, example_input, infer_shapes
from lumen.engine.layers import LAYERS, in_domain, param_domains
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec, Node


def one_layer(layer_type: str, params: dict, shape: tuple, dtype: str | None = None) -> ModelSpec:
    spec = ModelSpec.sequential("one", shape, [("layer", layer_type, params)])
    if dtype:
        spec = ModelSpec(
            spec.name, (Node("input", "input", {"shape": list(shape), "dtype": dtype}), *spec.nodes[1:]), spec.edges
        )
    return spec


def run(spec: ModelSpec) -> dict:
    """Every node's real output, from a forward and backward pass of a random batch."""
    torch.manual_seed(0)
    model = build_model(spec)
    x = example_input(spec, batch=2)
    if x.is_floating_point():
        x.requires_grad_(True)
    out, recorded = model.forward_recording(x, model.order)
    out.float().sum().backward()
    return recorded


SHAPE_CASES = [
    ("conv2d", {"out_channels": 4, "kernel_size": 3}, (3, 10, 10)),
    ("conv2d", {"out_channels": 4, "kernel_size": 4, "padding": "same", "dilation": 2}, (3, 9, 10)),
    ("conv2d", {"out_channels": 2, "kernel_size": 2, "stride": 3}, (1, 11, 11)),  # stride > kernel
    ("conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 3, "padding": 1}, (3, 8, 8)),  # depthwise
    ("conv2d", {"out_channels": 2, "kernel_size": [3, 5], "stride": [1, 2], "padding": [1, 0]}, (2, 9, 12)),
    ("conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 3, "padding": 2, "bias": False}, (2, 12, 12)),
    ("conv1d", {"out_channels": 3, "kernel_size": 5, "stride": 2}, (4, 20)),
    ("conv1d", {"out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2, "groups": 2}, (4, 13)),
    ("conv_transpose2d", {"out_channels": 3, "kernel_size": 4, "stride": 2, "padding": 1}, (3, 7, 7)),
    ("conv_transpose2d", {"out_channels": 2, "kernel_size": 3, "stride": 3, "output_padding": 2}, (2, 5, 5)),
    ("conv_transpose2d", {"out_channels": 2, "kernel_size": [2, 3], "stride": [2, 1]}, (1, 4, 6)),
    ("upsample", {"scale_factor": 2}, (2, 7, 9)),
    ("upsample", {"scale_factor": 1.5, "mode": "bilinear"}, (2, 7, 9)),
    ("maxpool2d", {"kernel_size": 2}, (3, 9, 9)),
    ("maxpool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (3, 10, 10)),
    ("maxpool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (3, 10, 11)),
    ("maxpool2d", {"kernel_size": 2, "stride": 3}, (2, 11, 10)),  # stride > kernel
    ("maxpool2d", {"kernel_size": [2, 3]}, (2, 8, 9)),
    ("avgpool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 8, 8)),
    ("avgpool2d", {"kernel_size": 2, "stride": 3, "ceil_mode": True}, (2, 10, 10)),
    ("minpool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 9, 8)),
    ("lppool2d", {"kernel_size": 2}, (2, 8, 8)),
    ("lppool2d", {"norm_type": 3, "kernel_size": 3, "stride": 2, "ceil_mode": True}, (2, 10, 9)),
    ("maxpool1d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (3, 11)),
    ("avgpool1d", {"kernel_size": 2, "padding": 1}, (3, 11)),
    ("global_avgpool", {}, (3, 5, 6)),
    ("global_avgpool", {}, (3, 7)),
    ("global_maxpool", {}, (3, 5, 6)),
    ("adaptive_avgpool2d", {"output_size": 3}, (2, 7, 7)),
    ("adaptive_avgpool2d", {"output_size": [2, 5]}, (2, 8, 9)),
    ("adaptive_maxpool2d", {"output_size": 4}, (2, 9, 9)),
    ("relu", {}, (2, 3, 3)),
    ("relu6", {}, (5,)),
    ("leaky_relu", {"negative_slope": 0.2}, (2, 4)),
    ("sigmoid", {}, (4,)),
    ("tanh", {}, (2, 3, 3)),
    ("gelu", {}, (6,)),
    ("softmax", {"dim": 0}, (3, 4, 5)),
    ("softmax", {}, (3, 4, 5)),
    ("linear", {"out_features": 3}, (7,)),
    ("linear", {"out_features": 3, "bias": False}, (5, 7)),
    ("flatten", {}, (2, 3, 4)),
    ("reshape", {"shape": [6, 4]}, (2, 3, 4)),
    ("dropout", {"p": 0.3}, (2, 3, 4)),
    ("batchnorm1d", {}, (5,)),
    ("batchnorm1d", {"eps": 1e-3}, (3, 8)),
    ("batchnorm2d", {}, (3, 4, 4)),
    ("lrn", {"size": 3}, (5, 4, 4)),
]


@pytest.mark.parametrize(
    "layer_type, params, shape", SHAPE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_CASES)]
)
def test_inferred_shape_equals_the_real_tensor(layer_type, params, shape):
    spec = one_layer(layer_type, params, shape)
    recorded = run(spec)
    assert tuple(recorded["layer"].shape[1:]) == infer_shapes(spec)["layer"]


def test_every_registered_cnn_layer_has_a_shape_case():
    mine = {name for name, layer in LAYERS.items() if layer.infer.__module__ == "lumen.engine.layers"}
    covered = {case[0] for case in SHAPE_CASES} | {"input", "embedding", "add", "concat"}
    assert mine <= covered, mine - covered


def test_embedding_reads_integer_ids():
    spec = one_layer("embedding", {"num_embeddings": 10, "embedding_dim": 8}, (6,), dtype="int64")
    x = example_input(spec, batch=3)
    assert x.dtype == torch.int64 and x.shape == (3, 6) and int(x.max()) < 10
    model = build_model(spec)
    assert infer_shapes(spec)["layer"] == (6, 8) == tuple(model(x).shape[1:])
    torch.testing.assert_close(model(x), model.layer.weight[x])


def test_ids_flow_only_into_embeddings():
    with pytest.raises(
        SpecError,
        match=r"^layer: embedding reads integer ids: connect it to the input node "
        r"and set that node's dtype to \"int64\"",
    ):
        infer_shapes(one_layer("embedding", {"num_embeddings": 10, "embedding_dim": 8}, (6,)))
    with pytest.raises(SpecError, match=r"^layer: linear cannot read the integer ids of input \(dtype int64\)"):
        infer_shapes(one_layer("linear", {"out_features": 3}, (6,), dtype="int64"))


# ---- modules against independent references -----------------------------------------------------


def _numpy_windows(x: np.ndarray, k: int, s: int, pad_value: float, p: int = 0) -> np.ndarray:
    """All k×k windows at stride s of N×C×H×W ``x`` padded by p with ``pad_value``: N×C×Ho×Wo×k×k."""
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::s, ::s]


def test_minpool_is_minus_maxpool_of_minus_x_and_the_numpy_minimum():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    layer = build_model(one_layer("minpool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, 9, 9))).layer
    ours = layer(x)
    torch.testing.assert_close(ours, -F.max_pool2d(-x, 3, 2, 1))
    reference = _numpy_windows(x.numpy(), 3, 2, np.inf, p=1).min(axis=(-2, -1))
    np.testing.assert_allclose(ours.numpy(), reference)
    assert not torch.equal(ours, F.max_pool2d(x, 3, 2, 1))


def test_lppool_matches_torch_and_the_p_norm_of_each_window():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) + 0.1  # positive, so the p-th root is the plain p-norm
    for p in (2, 3):
        layer = build_model(one_layer("lppool2d", {"norm_type": p, "kernel_size": 2}, (3, 8, 8))).layer
        torch.testing.assert_close(layer(x), F.lp_pool2d(x, p, 2))
        reference = (_numpy_windows(x.numpy(), 2, 2, 0.0) ** p).sum(axis=(-2, -1)) ** (1 / p)
        np.testing.assert_allclose(layer(x).numpy(), reference, rtol=1e-5)


def test_merges_add_and_concatenate():
    spec = ModelSpec(
        "merge",
        (
            Node("input", "input", {"shape": [2, 4, 4]}),
            Node("a", "relu"),
            Node("b", "tanh"),
            Node("sum", "add"),
            Node("cat", "concat", {"dim": 0}),
            Node("w", "concat", {"dim": -1}),
        ),
        (
            ("input", "a"),
            ("input", "b"),
            ("a", "sum"),
            ("b", "sum"),
            ("sum", "cat"),
            ("a", "cat"),
            ("cat", "w"),
            ("cat", "w"),
        ),
    )
    x = torch.randn(3, 2, 4, 4)
    _, rec = build_model(spec).forward_recording(x, ["sum", "cat", "w"])
    torch.testing.assert_close(rec["sum"], x.relu() + x.tanh())
    torch.testing.assert_close(rec["cat"], torch.cat([x.relu() + x.tanh(), x.relu()], dim=1))
    torch.testing.assert_close(rec["w"], torch.cat([rec["cat"], rec["cat"]], dim=3))
    assert infer_shapes(spec)["w"] == (4, 4, 8)


# ---- error messages --------------------------------------------------------------------------------


def _two_branches(merge: str, params: dict, a: dict, b: dict) -> ModelSpec:
    return ModelSpec(
        "m",
        (
            Node("input", "input", {"shape": [3, 28, 28]}),
            Node("conv1", "conv2d", a),
            Node("conv2", "conv2d", b),
            Node("add1", merge, params),
        ),
        (("input", "conv1"), ("input", "conv2"), ("conv1", "add1"), ("conv2", "add1")),
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            _two_branches("add", {}, {"out_channels": 16, "kernel_size": 15}, {"out_channels": 32, "kernel_size": 15}),
            "add1: inputs 16×14×14 and 32×14×14 differ",
        ),
        (
            _two_branches(
                "concat", {}, {"out_channels": 16, "kernel_size": 15}, {"out_channels": 32, "kernel_size": 3}
            ),
            "add1: inputs 16×14×14 and 32×26×26 differ outside dim 0, the one they are concatenated along",
        ),
        (
            _two_branches(
                "concat", {"dim": 3}, {"out_channels": 1, "kernel_size": 1}, {"out_channels": 1, "kernel_size": 1}
            ),
            "add1: dim 3 is outside the 1×28×28 input",
        ),
        (
            one_layer("conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "same", "stride": 2}, (1, 8, 8)),
            'layer: padding "same" needs stride 1',
        ),
        (
            one_layer("conv2d", {"out_channels": 4, "kernel_size": 3, "groups": 3}, (2, 8, 8)),
            "layer: groups 3 must divide both the 2 input channels and the 4 output channels",
        ),
        (
            one_layer("conv2d", {"out_channels": 4, "kernel_size": 3, "dilation": 4}, (1, 8, 8)),
            "layer: kernel 3×3 (dilated to 9×9) is larger than its 8×8 input (after input)",
        ),
        (
            one_layer("conv2d", {"out_channels": 4, "kernel_size": [3, 2.5]}, (1, 8, 8)),
            "layer: kernel_size must be a positive whole number or a pair [h, w] of them, got [3, 2.5]",
        ),
        (
            one_layer("conv1d", {"out_channels": 4, "kernel_size": [3, 3]}, (1, 8)),
            "layer: kernel_size must be a positive whole number, got [3, 3]",
        ),
        (
            one_layer("conv1d", {"out_channels": 4, "kernel_size": 3}, (1, 8, 8)),
            "layer: conv1d expects a channels×length input, got 1×8×8 (after input)",
        ),
        (
            one_layer("maxpool2d", {"kernel_size": 2, "padding": 2}, (1, 8, 8)),
            "layer: padding 2×2 must be at most half the window (2×2)",
        ),
        (
            one_layer("upsample", {"mode": "bicubic"}, (1, 8, 8)),
            'layer: mode must be one of "nearest", "bilinear", got \'bicubic\'',
        ),
        (
            one_layer(
                "conv_transpose2d", {"out_channels": 1, "kernel_size": 3, "stride": 2, "output_padding": 2}, (1, 4, 4)
            ),
            "layer: output_padding 2×2 must be smaller than the stride 2×2",
        ),
        (
            one_layer("reshape", {"shape": [5, 5]}, (2, 3, 4)),
            "layer: cannot reshape 2×3×4 (24 values) to 5×5 (25 values)",
        ),
        (one_layer("softmax", {"dim": 3}, (2, 3, 4)), "layer: dim 3 is outside the 2×3×4 input"),
        (
            one_layer("batchnorm1d", {}, (2, 3, 4)),
            "layer: batchnorm1d expects features or channels×length, got 2×3×4; use batchnorm2d for images",
        ),
        (one_layer("global_avgpool", {}, (5,)), "layer: global_avgpool expects a channels×height×width"),
        (one_layer("lppool2d", {"kernel_size": 2, "padding": 1}, (1, 4, 4)), "layer: unknown parameter padding"),
        (one_layer("relu", {}, (3,), dtype="float16"), 'input: dtype must be one of "float32", "int64"'),
    ],
)
def test_bad_layers_are_refused_with_the_node_and_the_reason(spec, message):
    with pytest.raises(SpecError) as error:
        infer_shapes(spec)
    assert str(error.value).startswith(message), str(error.value)


def test_param_domains_describe_every_parameter_for_the_property_editor():
    assert param_domains("conv2d") == {
        "out_channels": "posint",
        "kernel_size": "int_or_pair",
        "stride": "int_or_pair",
        "padding": "pair_or_same",
        "dilation": "int_or_pair",
        "groups": "posint",
        "bias": "bool",
    }
    assert param_domains("upsample")["mode"] == "choice:nearest|bilinear"
    assert param_domains("input") == {"shape": "shape", "dtype": "choice:float32|int64"}
    for layer in LAYERS.values():  # every layer declares a domain for each of its parameters
        assert list(param_domains(layer)) == list(layer.defaults)
        for key, default in layer.defaults.items():  # every default is a legal value of its own domain
            assert default is None or in_domain(default, layer.domains[key]), (layer.name, key)


# ---- analysis -----------------------------------------------------------------------------------


def _by_id(spec: ModelSpec) -> dict:
    return {r.id: r for r in analyze(spec)}


def test_lenet_formulas_receptive_fields_and_dense_equivalents():
    report = _by_id(get_preset("lenet5"))
    assert report["conv1"].formula == "W_out = (W − F + 2P)/S + 1 = (28 − 5 + 4)/1 + 1 = 28"
    assert report["pool1"].formula == "W_out = (W − F)/S + 1 = (28 − 2)/2 + 1 = 14"
    assert report["flatten"].formula == "features = 16·5·5 = 400"
    assert report["fc1"].formula == "params = in·out + out = 400·120 + 120 = 48120"
    assert report["relu1"].formula == ""
    # by hand: conv1 sees 5 pixels; pool1 adds (2 − 1)·1 → 6, jump 2; conv2 adds (5 − 1)·2 → 14;
    # pool2 adds 1·2 → 16, jump 4
    fields = {n: (report[n].receptive_field, report[n].receptive_jump) for n in ("conv1", "pool1", "conv2", "pool2")}
    assert fields == {"conv1": (5, 1), "pool1": (6, 2), "conv2": (14, 2), "pool2": (16, 4)}
    assert report["fc1"].receptive_field is None
    assert report["conv1"].dense_equivalent_params == 28 * 28 * 6 * 28 * 28 + 6 * 28 * 28
    assert report["conv1"].params == 6 * 25 + 6
    assert report["conv2"].dense_equivalent_params == 6 * 14 * 14 * 16 * 10 * 10 + 16 * 10 * 10
    assert report["pool1"].dense_equivalent_params is None
    assert report["conv1"].macs == 6 * 28 * 28 * 25 and report["conv2"].macs == 16 * 10 * 10 * 6 * 25
    assert report["fc1"].macs == 400 * 120
    assert report["conv1"].activation_bytes == 6 * 28 * 28 * 4


@pytest.mark.parametrize(
    "layer_type, params, shape",
    [
        ("conv2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2, "dilation": 2}, (4, 11, 11)),
        ("conv2d", {"out_channels": 8, "kernel_size": [3, 1], "groups": 8, "padding": "same"}, (8, 6, 7)),
        ("conv1d", {"out_channels": 5, "kernel_size": 4, "stride": 3}, (2, 17)),
        ("conv_transpose2d", {"out_channels": 5, "kernel_size": 4, "stride": 2, "padding": 1}, (3, 7, 7)),
        ("linear", {"out_features": 9}, (4, 6)),
    ],
)
def test_macs_equal_torch_flop_counter(layer_type, params, shape):
    spec = one_layer(layer_type, params, shape)
    model = build_model(spec)
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, *shape))
    assert _by_id(spec)["layer"].macs * 2 == counter.get_total_flops()  # torch counts a MAC as 2 FLOPs


@pytest.mark.parametrize(
    "layer_type, params, shape, formula",
    [
        (
            "conv2d",
            {"out_channels": 1, "kernel_size": 5, "stride": 2},
            (1, 32, 32),
            "W_out = ⌊(W − F + 2P)/S⌋ + 1 = ⌊(32 − 5 + 0)/2⌋ + 1 = 14",
        ),
        (
            "conv2d",
            {"out_channels": 1, "kernel_size": 3, "dilation": 2, "padding": 1},
            (1, 32, 32),
            "W_out = (W − D(F − 1) − 1 + 2P)/S + 1 = (32 − 2·(3 − 1) − 1 + 2)/1 + 1 = 30",
        ),
        (
            "conv2d",
            {"out_channels": 1, "kernel_size": [3, 5]},
            (1, 10, 12),
            "H_out = (H − F + 2P)/S + 1 = (10 − 3 + 0)/1 + 1 = 8; W_out = (W − F + 2P)/S + 1 = (12 − 5 + 0)/1 + 1 = 8",
        ),
        (
            "conv2d",
            {"out_channels": 1, "kernel_size": 4, "padding": "same"},
            (1, 9, 9),
            'padding "same", stride 1: W_out = W = 9',
        ),
        ("conv1d", {"out_channels": 1, "kernel_size": 3}, (1, 9), "L_out = (L − F + 2P)/S + 1 = (9 − 3 + 0)/1 + 1 = 7"),
        (
            "maxpool2d",
            {"kernel_size": 3, "stride": 2, "ceil_mode": True},
            (1, 10, 10),
            "W_out = ⌈(W − F)/S⌉ + 1 = ⌈(10 − 3)/2⌉ + 1 = 5",
        ),
        (
            "maxpool2d",
            {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
            (1, 5, 5),
            "W_out = ⌈(W − F + 2P)/S⌉ + 1 = ⌈(5 − 2 + 2)/2⌉ + 1 − 1 (the last window would start in the padding) = 3",
        ),
        (
            "conv_transpose2d",
            {"out_channels": 1, "kernel_size": 4, "stride": 2, "padding": 1},
            (1, 7, 7),
            "W_out = (W − 1)·S − 2P + F + P_out = (7 − 1)·2 − 2 + 4 + 0 = 14",
        ),
        ("upsample", {"scale_factor": 1.5}, (1, 7, 7), "W_out = ⌊W·s⌋ = ⌊7·1.5⌋ = 10"),
    ],
)
def test_formulas_substitute_the_numbers_and_agree_with_torch(layer_type, params, shape, formula):
    spec = one_layer(layer_type, params, shape)
    report = _by_id(spec)["layer"]
    assert report.formula == formula
    assert int(formula.rsplit("= ", 1)[1]) == run(spec)["layer"].shape[-1]


def test_receptive_fields_through_dilation_upsampling_and_merges():
    spec = ModelSpec(
        "rf",
        (
            Node("input", "input", {"shape": [1, 32, 32]}),
            Node("wide", "conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 3, "padding": 3}),
            Node("narrow", "conv2d", {"out_channels": 2, "kernel_size": 1}),
            Node("sum", "add"),
            Node("pool", "maxpool2d", {"kernel_size": 2}),  # 7 + 1 = 8, jump 2, 16×16
            Node("up", "upsample", {"scale_factor": 2}),  # nearest: 8, jump 1, 32×32
            Node("gap", "global_avgpool"),
        ),  # 32×32 window: 8 + 31·1 = 39
        (
            ("input", "wide"),
            ("input", "narrow"),
            ("wide", "sum"),
            ("narrow", "sum"),
            ("sum", "pool"),
            ("pool", "up"),
            ("up", "gap"),
        ),
    )
    report = _by_id(spec)
    got = {
        n: (report[n].receptive_field, report[n].receptive_jump) for n in ("wide", "narrow", "sum", "pool", "up", "gap")
    }
    assert got == {"wide": (7, 1), "narrow": (1, 1), "sum": (7, 1), "pool": (8, 2), "up": (8, 1), "gap": (39, 1)}


def vgg16() -> ModelSpec:
    """torchvision's VGG-16 layout at 224×224, written out here so the test does not depend on presets."""
    layers, i = [], 0
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append((f"features.{i}", "maxpool2d", {"kernel_size": 2, "stride": 2}))
            i += 1
        else:
            layers += [
                (f"features.{i}", "conv2d", {"out_channels": v, "kernel_size": 3, "padding": 1}),
                (f"features.{i + 1}", "relu", {}),
            ]
            i += 2
    layers += [
        ("avgpool", "adaptive_avgpool2d", {"output_size": 7}),
        ("flatten", "flatten", {}),
        ("classifier.0", "linear", {"out_features": 4096}),
        ("classifier.1", "relu", {}),
        ("classifier.2", "dropout", {}),
        ("classifier.3", "linear", {"out_features": 4096}),
        ("classifier.4", "relu", {}),
        ("classifier.5", "dropout", {}),
        ("classifier.6", "linear", {"out_features": 1000}),
    ]
    return ModelSpec.sequential("vgg16", (3, 224, 224), layers)


def test_full_size_vgg16_analyses_in_well_under_a_second():
    spec = vgg16()
    analyze(spec)  # warm-up: first use of the meta device
    start = time.perf_counter()
    reports = analyze(spec)
    assert time.perf_counter() - start < 0.5
    assert sum(r.params for r in reports) == 138_357_544  # torchvision's vgg16
    assert sum(r.macs for r in reports) == 15_470_264_320  # the widely quoted 15.5 GMACs
    # by hand: each 3×3 conv adds 2·jump, each pool adds 1·jump and doubles it: 5, 6 | 10, 14, 16 | 24, 32, 40, 44 |
    # 60, 76, 92, 100 | 132, 164, 196 (conv5_3, jump 16), 212 (pool5, jump 32)
    by_id = {r.id: r for r in reports}
    assert (by_id["features.28"].receptive_field, by_id["features.28"].receptive_jump) == (196, 16)
    assert (by_id["features.30"].receptive_field, by_id["features.30"].receptive_jump) == (212, 32)


def test_analysis_refuses_bad_specs_like_shape_inference():
    spec = one_layer("conv2d", {"out_channels": 4, "kernel_size": 9}, (1, 8, 8))
    with pytest.raises(SpecError, match="^layer: kernel 9×9 is larger than its 8×8 input"):
        analyze(spec)


# ---- property tests: random DAGs ----------------------------------------------------------------


def _pair(draw, lo, hi):
    return draw(st.one_of(st.integers(lo, hi), st.lists(st.integers(lo, hi), min_size=2, max_size=2)))


@st.composite
def image_layer(draw):
    """One layer that reads and writes an image; parameters may or may not fit the image they get."""
    layer_type = draw(
        st.sampled_from(
            [
                "conv2d",
                "conv2d",
                "conv_transpose2d",
                "upsample",
                "maxpool2d",
                "avgpool2d",
                "minpool2d",
                "lppool2d",
                "adaptive_avgpool2d",
                "adaptive_maxpool2d",
                "relu",
                "leaky_relu",
                "gelu",
                "batchnorm2d",
                "lrn",
                "dropout",
            ]
        )
    )
    if layer_type == "conv2d":
        params = {
            "out_channels": draw(st.integers(1, 4)),
            "kernel_size": _pair(draw, 1, 5),
            "stride": draw(st.integers(1, 3)),
            "dilation": draw(st.integers(1, 2)),
            "padding": draw(st.one_of(st.integers(0, 2), st.just("same"))),
        }
        if params["padding"] == "same":
            params["stride"] = 1
        if draw(st.booleans()):
            params["groups"] = params["out_channels"] = draw(st.integers(1, 3))  # depthwise when it matches
    elif layer_type == "conv_transpose2d":
        stride = draw(st.integers(1, 3))
        params = {
            "out_channels": draw(st.integers(1, 3)),
            "kernel_size": draw(st.integers(1, 4)),
            "stride": stride,
            "padding": draw(st.integers(0, 1)),
            "output_padding": draw(st.integers(0, stride - 1)),
        }
    elif layer_type == "upsample":
        params = {
            "scale_factor": draw(st.sampled_from([1, 2, 1.5])),
            "mode": draw(st.sampled_from(["nearest", "bilinear"])),
        }
    elif layer_type in ("maxpool2d", "avgpool2d", "minpool2d", "lppool2d"):
        k = draw(st.integers(1, 4))
        params = {
            "kernel_size": k,
            "stride": draw(st.one_of(st.none(), st.integers(1, 3))),
            "ceil_mode": draw(st.booleans()),
        }
        if layer_type != "lppool2d":
            params["padding"] = draw(st.integers(0, k // 2))
    elif layer_type.startswith("adaptive"):
        params = {"output_size": _pair(draw, 1, 4)}
    elif layer_type == "lrn":
        params = {"size": draw(st.integers(1, 4))}
    else:
        params = {}
    return layer_type, params


@st.composite
def dags(draw):
    """An image input, layers each reading a random earlier node, merges of earlier nodes, and a head that
    joins every open end (global pooling + concat + linear) so the graph has one output."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(6, 14)), draw(st.integers(6, 14)))
    nodes, edges = [Node("input", "input", {"shape": list(shape)})], []
    shapes = {"input": shape}

    def try_add(node: Node, sources: list[str]) -> None:
        trial = ModelSpec("t", (*nodes, node), (*edges, *((s, node.id) for s in sources)))
        sub = _subgraph(trial, node.id)
        try:
            shapes[node.id] = infer_shapes(sub)[node.id]
        except SpecError:
            return
        nodes.append(node)
        edges.extend((s, node.id) for s in sources)

    for i in range(draw(st.integers(1, 7))):
        existing = [n.id for n in nodes]
        if draw(st.integers(0, 3)) == 0 and len(existing) > 1:
            a = draw(st.sampled_from(existing))
            same = [b for b in existing if b != a and shapes[b] == shapes[a]]
            near = [b for b in existing if b != a and shapes[b][1:] == shapes[a][1:]]
            if same and draw(st.booleans()):
                try_add(Node(f"n{i}", "add"), [a, draw(st.sampled_from(same))])
            elif near:
                try_add(Node(f"n{i}", "concat"), [a, draw(st.sampled_from(near))])
            continue
        layer_type, params = draw(image_layer())
        try_add(Node(f"n{i}", layer_type, params), [draw(st.sampled_from(existing))])
    sources = {s for s, _ in edges}
    ends = [n.id for n in nodes if n.id not in sources]
    for end in ends:
        nodes.append(Node(f"gap_{end}", "global_avgpool"))
        edges.append((end, f"gap_{end}"))
    if len(ends) > 1:
        nodes.append(Node("joined", "concat"))
        edges += [(f"gap_{end}", "joined") for end in ends]
    nodes.append(Node("head", "linear", {"out_features": 3}))
    edges.append(("joined" if len(ends) > 1 else f"gap_{ends[0]}", "head"))
    return ModelSpec("random", tuple(nodes), tuple(edges))


def _subgraph(spec: ModelSpec, node_id: str) -> ModelSpec:
    """``node_id`` and everything it depends on: a spec whose one output is ``node_id``."""
    keep, todo = set(), [node_id]
    while todo:
        current = todo.pop()
        if current not in keep:
            keep.add(current)
            todo += spec.inputs_of(current)
    return ModelSpec(
        spec.name, tuple(n for n in spec.nodes if n.id in keep), tuple(e for e in spec.edges if e[1] in keep)
    )


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_build_run_forward_and_backward_with_true_shapes(spec):
    shapes = infer_shapes(spec)
    recorded = run(spec)
    for node_id, shape in shapes.items():
        assert tuple(recorded[node_id].shape[1:]) == shape, (node_id, spec)
    reports = analyze(spec)
    assert [r.output_shape for r in reports] == list(shapes.values())


JUNK = st.sampled_from([0, -1, 1.5, "x", "same", None, True, [1], [1, 2, 3], [0, 2], 40, 3, [2, 1], 0.5, "nearest"])


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_random_bad_parameters_are_refused_with_the_node_named(spec, data):
    victim = data.draw(st.sampled_from([n for n in spec.nodes if n.type != "input" and LAYERS[n.type].defaults]))
    key = data.draw(st.sampled_from(sorted(LAYERS[victim.type].defaults)))
    params = {**victim.params, key: data.draw(JUNK)}
    bad = ModelSpec(spec.name, tuple(Node(n.id, n.type, params) if n is victim else n for n in spec.nodes), spec.edges)
    try:
        shapes = infer_shapes(bad)
    except SpecError as exc:
        assert exc.node in {n.id for n in bad.nodes}, str(exc)
        return
    recorded = run(bad)  # a legal value after all: it must build and run
    assert all(tuple(recorded[n].shape[1:]) == s for n, s in shapes.items())


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_random_merges_of_mismatched_nodes_are_refused_naming_the_merge(spec, data):
    shapes = infer_shapes(spec)
    a, b = data.draw(st.lists(st.sampled_from(list(shapes)), min_size=2, max_size=2, unique=True))
    layer_type = data.draw(st.sampled_from(["add", "concat"]))
    keep = {n.id for n in _subgraph(spec, a).nodes} | {n.id for n in _subgraph(spec, b).nodes}
    merged = ModelSpec(
        spec.name,
        (*(n for n in spec.nodes if n.id in keep), Node("m", layer_type)),
        (*(e for e in spec.edges if e[1] in keep), (a, "m"), (b, "m")),
    )
    try:
        got = infer_shapes(merged)
    except SpecError as exc:
        assert exc.node == "m", str(exc)
        assert "differ" in exc.reason
        return
    assert tuple(run(merged)["m"].shape[1:]) == got["m"]
