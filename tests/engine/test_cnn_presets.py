"""CNN presets: the small ones build, infer the real shapes and train; the full-size ones have exactly
torchvision's state-dict keys and shapes (tests/data/torchvision_manifest.json, made by torchvision itself
with tools/torchvision_manifest.py); weight files that do not fit are refused and change nothing."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lumen.engine.data.datasets import Dataset
from lumen.engine.errors import DataError
from lumen.engine.graph.model import GraphModel, build_model, infer_shapes, summarize
from lumen.engine.io.runs import load_weights
from lumen.engine.presets.cnn import CNN_PRESETS, FULL_SIZE_PRESETS, PICTURE_PRESETS, SMALL_PRESETS
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig, Training

MANIFEST = json.loads((Path(__file__).parents[1] / "data" / "torchvision_manifest.json").read_text())
MAKE = {p.name: p.make for p in CNN_PRESETS}


def test_every_preset_is_listed_once_with_a_summary():
    names = [p.name for p in CNN_PRESETS]
    assert sorted(names) == sorted(SMALL_PRESETS + PICTURE_PRESETS + FULL_SIZE_PRESETS)
    assert len(set(names)) == len(names)
    assert all(p.summary and p.make().description for p in CNN_PRESETS)


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_small_preset_infers_the_real_shapes(name):
    spec = MAKE[name]()
    assert ModelSpec.from_dict(json.loads(spec.to_json())) == spec  # ids valid, round trip exact
    assert "Changed" in spec.description  # says how it differs from the original
    assert spec.input_shape == (1, 28, 28)
    torch.manual_seed(0)
    model = build_model(spec)
    out, recorded = model.forward_recording(torch.rand(2, *spec.input_shape), model.order)
    assert out.shape == (2, 10)
    for node_id, shape in infer_shapes(spec).items():
        assert tuple(recorded[node_id].shape[1:]) == shape, node_id


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_small_preset_trains_a_step(name):
    spec = MAKE[name]()
    torch.manual_seed(0)
    model = build_model(spec)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, *spec.input_shape, generator=g), torch.randint(0, 10, (16,), generator=g)
    data = Dataset("random", tuple(str(i) for i in range(10)), x, y, x[:4], y[:4])
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    step = next(Training(model, data, TrainConfig(epochs=1, batch_size=16)).steps())
    assert torch.isfinite(torch.tensor(step.values["loss"]))
    unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []  # every layer takes part in the loss


def test_inception_blocks_concatenate_their_four_branches():
    spec = MAKE["googlenet_small"]()
    shapes = infer_shapes(spec)
    for block in ("inception_a", "inception_b", "inception_c"):
        branches = spec.inputs_of(f"{block}.concat")
        assert len(branches) == 4
        assert shapes[f"{block}.concat"][0] == sum(shapes[b][0] for b in branches)
        # the 1×1 reductions feed the 3×3 and 5×5 convolutions
        assert spec.node(f"{block}.branch2.0.conv").params["kernel_size"] == 1
        assert spec.node(f"{block}.branch3.1.conv").params["kernel_size"] == 5
    assert spec.node("pool").type == "global_avgpool"


def test_resnet_small_projects_the_shortcut_only_where_the_shape_changes():
    spec = MAKE["resnet_small"]()
    shapes = infer_shapes(spec)
    adds = [n.id for n in spec.nodes if n.type == "add"]
    assert len(adds) == 6
    for add in adds:
        block = add.rsplit(".", 1)[0]
        main, shortcut = spec.inputs_of(add)
        block_input = spec.inputs_of(f"{block}.conv1")[0]
        projected = shapes[block_input] != shapes[main]
        assert shortcut == (f"{block}.downsample.1" if projected else block_input), add
    assert [a for a in adds if spec.inputs_of(a)[1].endswith("downsample.1")] == ["layer2.0.add", "layer3.0.add"]


def test_mobilenet_small_blocks_are_depthwise_then_pointwise():
    model = build_model(MAKE["mobilenet_small"]())
    blocks = sorted({n.split(".")[0] for n in model.order if n.startswith("block")})
    assert len(blocks) == 5
    for block in blocks:
        dw, pw = model.layers[f"{block}.dw.conv"], model.layers[f"{block}.pw.conv"]
        assert dw.groups == dw.in_channels == dw.out_channels and dw.weight.shape[1:] == (1, 3, 3)
        assert pw.kernel_size == (1, 1) and pw.groups == 1


@pytest.mark.parametrize("name", FULL_SIZE_PRESETS)
def test_full_size_preset_has_torchvisions_state_dict(name):
    reference = MANIFEST["models"][name]
    spec = MAKE[name]()
    assert spec.input_shape == (3, 224, 224)
    with torch.device("meta"):
        model = GraphModel(spec)
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == reference["state_dict"]  # same keys, shapes and order as torchvision's
    assert sum(r.params for r in summarize(spec)) == reference["params"]
    assert [1000] == reference["output"]["shape"][1:] == list(infer_shapes(spec)[spec.output_id])


def test_googlenet_sizes_follow_the_paper_with_ceil_mode_pooling():
    # Szegedy et al. 2014, table 1 (output sizes at 224×224 input)
    shapes = infer_shapes(MAKE["googlenet"]())
    assert shapes["maxpool1"] == (64, 56, 56)
    assert shapes["maxpool2"] == (192, 28, 28)
    assert shapes["inception3b.concat"] == (480, 28, 28)
    assert shapes["maxpool3"] == (480, 14, 14)
    assert shapes["inception4e.concat"] == (832, 14, 14)
    assert shapes["maxpool4"] == (832, 7, 7)
    assert shapes["inception5b.concat"] == (1024, 7, 7)


def _torchvision_style_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {k: torch.randn(v.shape) if v.is_floating_point() else v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda w: w.__setitem__("layer2.0.downsample.0.weight", torch.zeros(32, 16, 3, 3)),
            "layer2.0.downsample.0.weight is (32, 16, 3, 3), the model needs (32, 16, 1, 1)",
        ),
        (lambda w: w.pop("layer1.1.bn2.running_var"), "missing layer1.1.bn2.running_var"),
    ],
)
def test_misfit_weights_are_refused_and_change_nothing(tmp_path, damage, message):
    torch.manual_seed(0)
    model = build_model(MAKE["resnet_small"]())
    weights = _torchvision_style_weights(model)
    damage(weights)
    save_file(weights, str(tmp_path / "bad.safetensors"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match="do not fit this model") as caught:
        load_weights(model, tmp_path / "bad.safetensors")
    assert message in str(caught.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fitting_weights_load_and_give_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    source, target = build_model(MAKE["resnet_small"]()), build_model(MAKE["resnet_small"]())
    weights = _torchvision_style_weights(source)
    weights = {k: v.abs() if "running_var" in k else v for k, v in weights.items()}
    source.load_state_dict(weights, strict=True)
    save_file(weights, str(tmp_path / "good.safetensors"))
    load_weights(target, tmp_path / "good.safetensors")
    x = torch.rand(2, 1, 28, 28)
    source.eval(), target.eval()
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", FULL_SIZE_PRESETS)
def test_full_size_presets_carry_imagenets_preparation(name):
    from lumen.engine.spec.preprocess import IMAGENET

    spec = MAKE[name]()
    assert spec.preprocess == IMAGENET
    assert IMAGENET.mean == (0.485, 0.456, 0.406) and IMAGENET.std == (0.229, 0.224, 0.225)
    assert ModelSpec.from_json(spec.to_json()).preprocess == IMAGENET  # written (as version 2) and read back


def test_shapes_gap_cnn_keeps_a_16x16_grid_up_to_global_average_pooling():
    from lumen.engine.explain.attribution import suggested_layer
    from lumen.engine.presets import PRESETS

    spec = MAKE["shapes_gap_cnn"]()
    assert spec.input_shape == (3, 32, 32) and spec.preprocess is None
    assert PRESETS["shapes_gap_cnn"].dataset == "shapes"
    shapes = infer_shapes(spec)
    model = build_model(spec)
    layer = suggested_layer(model)
    assert layer == "block4.conv" and shapes[layer] == (64, 16, 16)  # Grad-CAM's layer: half the input's side
    assert spec.node("gap").type == "global_avgpool" and shapes[spec.output_id] == (5,)
