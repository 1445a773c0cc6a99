"""Activations through hooks, filters as pictures, activation maximization, DeepDream, the invariance transform
and the worker's long jobs — all headless, no QApplication."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from lumen.engine.data.datasets import load_dataset
from lumen.engine.data.images import affine
from lumen.engine.errors import LumenError
from lumen.engine.explain.activations import activation_after, activations, layer_names, record
from lumen.engine.explain.dream import DreamSettings, dream, dream_steps
from lumen.engine.explain.filters import filter_image
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.explain.maximize import MaximizeSettings, MaximizeTarget, maximize, objective_value
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import Probe, ProbeContext, ProbeInput
from lumen.engine.probes.feature_maps import FeatureMapFrame, FeatureMaps, FeatureMapSettings
from lumen.engine.probes.filters import Filters, FilterSettings
from lumen.engine.runtime.commands import CancelJob, ConfigureProbe, Dream, Maximize, TransformProbe
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig, Training


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def lenet(mnist):
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    training = Training(model, mnist, TrainConfig(epochs=5, batch_size=64))
    for _ in itertools.islice(training.steps(), 300):  # ~300 batches: about 93 % on the validation digits
        pass
    model.eval()
    model.zero_grad(set_to_none=True)
    return model


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def tiny_rgb() -> ModelSpec:
    return ModelSpec.sequential(
        "tiny rgb",
        (3, 16, 16),
        [
            ("conv1", "conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
            ("relu1", "relu", {}),
            ("gap", "global_avgpool", {}),
            ("flatten", "flatten", {}),
            ("fc", "linear", {"out_features": 3}),
        ],
    )


# ---- activations ---------------------------------------------------------------------------------------
def test_record_reads_any_layer_and_leaves_no_hook_and_no_graph(mnist):
    model = build_model(get_preset("lenet5"))
    x = mnist.val_x[:1].requires_grad_(True)
    out, got = record(model, x, ["conv1", "relu1", "pool2", "fc1", "fc3"])
    assert {k: tuple(v.shape) for k, v in got.items()} == {
        "conv1": (1, 6, 28, 28),
        "relu1": (1, 6, 28, 28),
        "pool2": (1, 16, 5, 5),
        "fc1": (1, 120),
        "fc3": (1, 10),
    }
    assert all(v.grad_fn is None and not v.requires_grad for v in got.values()) and out.grad_fn is None
    assert torch.equal(got["fc3"], out)
    assert no_hooks_left(model)


def test_hooks_come_off_when_the_forward_pass_fails():
    model = build_model(get_preset("lenet5"))
    with pytest.raises(RuntimeError):
        record(model, torch.zeros(1, 3, 28, 28), ["conv1", "fc1"])  # wrong channel count
    assert no_hooks_left(model)
    with pytest.raises(LumenError, match="no layer 'nope'"):
        record(model, torch.zeros(1, 1, 28, 28), ["nope"])
    assert no_hooks_left(model)


def test_recorded_maps_are_copies_that_a_later_in_place_op_cannot_change():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
    _, got = record(model, torch.randn(1, 1, 8, 8), ["0"])
    assert (got["0"] < 0).any()  # the conv's output before the in-place ReLU


def test_activations_before_and_after_relu(mnist):
    model = build_model(get_preset("lenet5"))
    assert layer_names(model)[:3] == ["conv1", "relu1", "pool1"]
    assert activation_after(model, "conv1") == "relu1" and activation_after(model, "pool1") is None
    maps = activations(model, mnist.val_x[:1], ["conv1", "relu1"])
    assert maps["conv1"].min() < 0 <= maps["relu1"].min()
    np.testing.assert_allclose(np.maximum(maps["conv1"], 0), maps["relu1"], atol=1e-6)


def test_the_feature_map_probe_shows_the_chosen_layers(mnist):
    model = build_model(get_preset("lenet5"))
    probe = ProbeInput(mnist.val_x[:1], "digit")
    default = FeatureMaps().frame(ProbeContext(model, probe, mnist.classes, 0))
    assert [m.node for m in default.layers] == ["conv1", "conv2"]
    assert ("fc1", "linear") in default.layer_choices
    picked = configured(FeatureMaps(), FeatureMapSettings(("pool2", "fc1"), after_activation=True)).frame(
        ProbeContext(model, probe, mnist.classes, 0)
    )
    assert [(m.node, m.recorded, m.shape) for m in picked.layers] == [
        ("pool2", "pool2", (16, 5, 5)),
        ("fc1", "relu3", (1, 1, 120)),
    ]
    assert picked.layers[1].maps.min() >= 0 and picked.choice.after_activation
    conv_after = configured(FeatureMaps(), FeatureMapSettings(after_activation=True)).frame(
        ProbeContext(model, probe, mnist.classes, 0)
    )
    assert [m.recorded for m in conv_after.layers] == ["relu1", "relu2"]


def configured(probe: Probe, settings) -> Probe:
    probe.configure(settings)
    return probe


# ---- filters ---------------------------------------------------------------------------------------------
def test_filters_as_pictures():
    lenet = build_model(get_preset("lenet5"))
    first = filter_image(lenet, "conv1")
    # one input channel: six kernels tiled 2 rows × 3 columns, not one narrow column
    assert not first.colour and first.mosaic.shape == (2 * 6 - 1, 3 * 6 - 1) and first.shown == (6, 1)
    np.testing.assert_array_equal(first.mosaic[6:11, 12:17], lenet.conv1.weight[5, 0].detach().numpy())
    deep = filter_image(lenet, "conv2")
    assert deep.mosaic.shape == (16 * 6 - 1, 6 * 6 - 1) and np.isnan(deep.mosaic).any()
    np.testing.assert_array_equal(deep.mosaic[:5, :5], lenet.conv2.weight[0, 0].detach().numpy())
    rgb = filter_image(build_model(tiny_rgb()), "conv1")
    assert rgb.colour and rgb.mosaic.shape == (2 * 4 - 1, 2 * 4 - 1, 3)
    assert 0 <= rgb.mosaic.min() and rgb.mosaic.max() <= 1
    with pytest.raises(LumenError, match="not a 2-D convolution"):
        filter_image(lenet, "fc1")
    frame = configured(Filters(), FilterSettings(layer="conv2")).frame(ProbeContext(lenet, None, (), 0))
    assert frame.filters.node == "conv2" and frame.conv_layers == ("conv1", "conv2")


# ---- activation maximization and DeepDream ---------------------------------------------------------------------
@pytest.mark.parametrize("digit", [3, 7])
def test_activation_maximization_of_a_digit_is_classified_as_that_digit(lenet, digit):
    picture = maximize(lenet, MaximizeTarget("class", digit), MaximizeSettings(steps=128))
    assert picture.shape == (1, 1, 28, 28) and 0 <= picture.min() and picture.max() <= 1
    with torch.no_grad():
        probability = torch.softmax(lenet(picture), 1)[0, digit].item()
    assert probability >= 0.9
    assert no_hooks_left(lenet) and all(p.grad is None for p in lenet.parameters())


@pytest.mark.parametrize("parameterisation", ["fourier", "pixel"])
def test_maximizing_a_channel_raises_it_on_small_rgb_inputs(parameterisation):
    torch.manual_seed(1)
    model = build_model(tiny_rgb()).eval()
    objective = MaximizeTarget("channel", 2, "relu1")
    start = torch.full((1, 3, 16, 16), 0.5)
    picture = maximize(model, objective, MaximizeSettings(steps=100, parameterisation=parameterisation))
    with torch.no_grad():
        assert objective_value(model, picture, objective) > objective_value(model, start, objective) + 0.05
    neuron = MaximizeTarget("neuron", 1, "conv1")
    assert maximize(model, neuron, MaximizeSettings(steps=3)).shape == (1, 3, 16, 16)


def test_bad_objectives_are_refused_with_a_message(lenet):
    with pytest.raises(LumenError, match="no layer 'nope'"):
        maximize(lenet, MaximizeTarget("channel", 0, "nope"))
    with pytest.raises(LumenError, match="6 channels; channel 9"):
        maximize(lenet, MaximizeTarget("channel", 9, "conv1"), MaximizeSettings(steps=1))
    with pytest.raises(LumenError, match="class 10 is out of range"):
        maximize(lenet, MaximizeTarget("class", 10), MaximizeSettings(steps=1))
    with pytest.raises(LumenError, match="unknown objective"):
        maximize(lenet, MaximizeTarget("colour"))


def test_deepdream_amplifies_the_layer_octave_by_octave(lenet, mnist):
    image = mnist.val_x[:1]
    objective = MaximizeTarget("layer", 0, "conv2")
    settings = DreamSettings(octaves=3, steps=10)
    progress = list(dream_steps(lenet, image, "conv2", None, settings))
    assert [done for done, _, _ in progress] == list(range(1, 31)) and {t for _, t, _ in progress} == {30}
    dreamt = progress[-1][2]
    assert dreamt.shape == image.shape and 0 <= dreamt.min() and dreamt.max() <= 1
    with torch.no_grad():
        assert objective_value(lenet, dreamt, objective) > 1.5 * objective_value(lenet, image, objective)
    one_channel = dream(lenet, image, "conv1", channel=2, settings=DreamSettings(octaves=2, steps=5))
    assert not torch.equal(one_channel, image)


def test_affine_moves_rotates_and_scales_about_the_centre():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 4] = 1.0  # right of the centre
    assert affine(x) is x
    assert affine(x, angle=90)[0, 0, 0, 2] == pytest.approx(1.0)  # counter-clockwise: to the top
    assert affine(x, shift_x=-2)[0, 0, 2, 2] == pytest.approx(1.0)
    assert affine(x, scale=0.5)[0, 0, 2, 3] == pytest.approx(1.0)
    with pytest.raises(LumenError):
        affine(x, scale=0)


# ---- the worker's long jobs and layer choices -----------------------------------------------------------------
def test_a_maximize_job_reports_progress_and_ends_done(worker):
    worker.submit(Maximize(MaximizeTarget("class", 4), MaximizeSettings(steps=60)))
    last = worker.recorder.wait_for(lambda e: isinstance(e, DreamFrame) and e.done)
    frames = [e for e in worker.recorder.seen if isinstance(e, DreamFrame)]
    assert [f.fraction for f in frames] == sorted(f.fraction for f in frames) and last.fraction == 1.0
    assert last.image.shape == (28, 28) and last.picture.shape == (1, 28, 28) and not last.cancelled
    assert last.method == "activation maximization" and last.target == "class 4" and 0 <= last.probability <= 1


def test_a_long_job_lets_other_commands_through_and_can_be_cancelled(worker):
    worker.submit(Dream("conv2", None, DreamSettings(octaves=4, steps=5_000)))
    worker.recorder.wait_for(lambda e: isinstance(e, DreamFrame) and not e.done)
    worker.probe_sample(5)  # handled between slices: the feature maps follow at once
    worker.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.source == "validation digit #5")
    worker.submit(CancelJob())
    last = worker.recorder.wait_for(lambda e: isinstance(e, DreamFrame) and e.done, timeout=10)
    assert last.cancelled and last.fraction < 0.5 and last.method == "deepdream"
    assert not worker._session.busy  # nothing left running


def test_a_bad_job_is_refused_and_the_worker_goes_on(worker):
    worker.submit(Maximize(MaximizeTarget("channel", 0, "no_such_layer")))
    error = worker.recorder.wait_for(lambda e: type(e).__name__ == "EngineError")
    assert "no_such_layer" in error.message
    worker.probe_sample(1)
    worker.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.source == "validation digit #1")


def test_configure_the_feature_maps_and_transform_the_probe_input(worker):
    worker.submit(ConfigureProbe("feature maps", FeatureMapSettings(("fc1",))))
    frame = worker.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.layers[0].node == "fc1")
    before = frame.image.copy()
    worker.submit(TransformProbe(angle=90.0))
    moved = worker.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and "rotated +90°" in e.source)
    assert not np.allclose(moved.image, before)
    np.testing.assert_allclose(moved.image, np.rot90(before), atol=0.05)
    worker.submit(TransformProbe(scale=0.0))
    error = worker.recorder.wait_for(lambda e: type(e).__name__ == "EngineError")
    assert "scale" in error.message


def test_a_neuron_objective_is_the_unit_at_the_position_given(lenet):
    x = torch.rand(2, 1, 28, 28)
    _, recorded = record(lenet, x, ["conv2"])
    act = recorded["conv2"]
    h, w = act.shape[-2:]
    with torch.no_grad():
        at = objective_value(lenet, x, MaximizeTarget("neuron", 3, "conv2", 1, w - 2))
        centre = objective_value(lenet, x, MaximizeTarget("neuron", 3, "conv2"))
    assert at == pytest.approx(float(act[:, 3, 1, w - 2].mean()))
    assert centre == pytest.approx(float(act[:, 3, h // 2, w // 2].mean()))
    assert MaximizeTarget("neuron", 3, "conv2", 1, 4).describe() == "neuron 3 at (1, 4) of conv2"
    assert MaximizeTarget("neuron", 3, "conv2", None, 4).describe() == "neuron 3 at (centre, 4) of conv2"
    with pytest.raises(LumenError, match="position must be ≥ 0"):
        MaximizeTarget("neuron", 3, "conv2", -2, 0).check(lenet)


def test_model_info_carries_each_layers_output_shape():
    from lumen.engine.training.info import model_info

    spec = get_preset("lenet5")
    info = model_info(spec, load_dataset("mnist"), "classification")
    shapes = dict(zip((node for node, _ in info.layers), info.layer_shapes, strict=True))
    assert shapes["conv1"][0] == 6 and len(shapes["conv2"]) == 3 and shapes[info.layers[-1][0]] == (10,)
