"""Attribution (engine/explain/attribution.py): each method equals Captum called directly; hooks come off and the
model's mode comes back; the live probe and its worker command; the shapes dataset; image files read for the CLI."""

import numpy as np
import pytest
import torch
from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from lumen.engine.data.datasets import load_dataset
from lumen.engine.data.shapes import SHAPE_CLASSES, make_shapes, shape_images
from lumen.engine.errors import DataError
from lumen.engine.events import RunState
from lumen.engine.explain.attribution import (
    METHODS,
    AttributionSettings,
    ExplainError,
    attribute,
    black_picture_input,
    blurred,
    suggested_layer,
)
from lumen.engine.graph.model import build_model
from lumen.engine.io.image_files import read_image
from lumen.engine.presets import get_preset
from lumen.engine.probes import PROBES, ProbeContext, ProbeInput
from lumen.engine.probes.attribution import AttributionFrame, AttributionProbe
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.engine.runtime.worker import EngineWorker
from tests.support import Recorder, state_is


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return build_model(get_preset("lenet5"))


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def captum_direct(name, model, x, target):
    """What Captum gives when called by hand with the settings Lumen's defaults stand for."""
    model.eval()
    xi = x.clone().requires_grad_()
    if name == "saliency":
        return Saliency(model).attribute(xi, target=target, abs=True)[0]
    if name == "smoothgrad":
        torch.manual_seed(0)
        return NoiseTunnel(Saliency(model)).attribute(
            xi, nt_type="smoothgrad", nt_samples=16, nt_samples_batch_size=16, stdevs=0.15, target=target, abs=True
        )[0]
    if name == "integrated-gradients":
        return IntegratedGradients(model).attribute(
            xi, baselines=torch.zeros_like(x), target=target, n_steps=50, internal_batch_size=50
        )[0]
    if name == "gradcam":
        cam = LayerGradCam(model, model.conv2).attribute(xi, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")[0, 0]
    if name == "occlusion":
        return Occlusion(model).attribute(
            xi, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=torch.zeros_like(x), target=target
        )[0]
    if name == "guided-backprop":
        return GuidedBackprop(model).attribute(xi, target=target)[0]
    raise AssertionError(name)


def hooks(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_equals_captum_called_directly(lenet, x, name):
    lenet.train()
    ours = attribute(lenet, x, name, target=3)
    theirs = captum_direct(name, lenet, x, 3)
    torch.testing.assert_close(torch.from_numpy(ours.map), theirs.detach().float())
    assert ours.map.dtype == np.float32 and ours.map.flags.c_contiguous
    assert ours.map.shape == ((28, 28) if name == "gradcam" else (1, 28, 28))
    assert ours.target == 3 and ours.method == name
    np.testing.assert_array_equal(ours.input, x.numpy())


@pytest.mark.parametrize("name", list(METHODS))
def test_hooks_come_off_the_mode_comes_back_and_no_graph_is_kept(lenet, x, name):
    for training in (True, False):
        lenet.train(training)
        result = attribute(lenet, x, name)
        assert hooks(lenet) == 0
        assert lenet.training is training
        assert isinstance(result.map, np.ndarray) and not x.requires_grad
    assert all(p.grad is None for p in lenet.parameters())  # only the input's gradients were taken


def test_the_mode_comes_back_after_a_refusal(lenet, x):
    lenet.train()
    with pytest.raises(ExplainError, match="no layer 'nope'"):
        attribute(lenet, x, "gradcam", layer="nope")
    assert lenet.training and hooks(lenet) == 0


def test_default_target_is_the_predicted_class(lenet, x):
    lenet.eval()
    predicted = int(lenet(x).argmax())
    assert attribute(lenet, x, "saliency").target == predicted


def test_integrated_gradients_reports_a_small_delta_for_enough_steps(lenet, x):
    coarse = attribute(lenet, x, "integrated-gradients", target=0, steps=2)
    fine = attribute(lenet, x, "integrated-gradients", target=0, steps=256)
    with torch.no_grad():
        lenet.eval()
        gap = float(lenet(x)[0, 0] - lenet(torch.zeros_like(x))[0, 0])
    assert abs(fine.delta) < 1e-3 * max(1.0, abs(gap))
    assert abs(fine.delta) <= abs(coarse.delta)
    assert float(fine.map.sum()) == pytest.approx(gap, abs=1e-3 * max(1.0, abs(gap)))


def test_baselines_black_blur_noise_and_a_user_image(lenet, x):
    black = torch.full_like(x, 0.25)  # a preparation that maps black to 0.25 (say, normalised)
    with_black = attribute(lenet, x, "integrated-gradients", target=1, black=black)
    ig = IntegratedGradients(lenet.eval())
    expected = ig.attribute(x, baselines=black, target=1, n_steps=50, internal_batch_size=50)[0]
    torch.testing.assert_close(torch.from_numpy(with_black.map), expected)
    blur = attribute(lenet, x, "integrated-gradients", target=1, baseline="blur")
    expected = ig.attribute(x, baselines=blurred(x), target=1, n_steps=50, internal_batch_size=50)[0]
    torch.testing.assert_close(torch.from_numpy(blur.map), expected)
    a = attribute(lenet, x, "integrated-gradients", target=1, baseline="noise", seed=5)
    b = attribute(lenet, x, "integrated-gradients", target=1, baseline="noise", seed=5)
    np.testing.assert_array_equal(a.map, b.map)  # seeded: reproducible
    user = attribute(lenet, x, "integrated-gradients", target=1, baseline=np.full((1, 1, 28, 28), 0.5, np.float32))
    assert user.map.shape == (1, 28, 28)
    with pytest.raises(ExplainError, match="prepared as the input"):
        attribute(lenet, x, "integrated-gradients", baseline=np.zeros((3, 3)))


def test_random_methods_leave_the_global_generator_alone(lenet, x):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    attribute(lenet, x, "smoothgrad")
    torch.testing.assert_close(torch.rand(3), expected)


def test_gradcam_suggests_the_last_conv_layer_and_refuses_models_without_one(lenet, x):
    assert suggested_layer(lenet) == "conv2"
    assert attribute(lenet, x, "gradcam").layer == "conv2"
    assert attribute(lenet, x, "gradcam", layer="conv1").map.shape == (28, 28)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ExplainError, match="no conv layer|has none"):
        attribute(mlp, x, "gradcam")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x: attribute(m, x, "lime"), "unknown attribution method 'lime'"),
        (lambda m, x: attribute(m, x, "saliency", steps=3), "saliency does not take steps"),
        (lambda m, x: attribute(m, x, "saliency", target=10), "target class 10 does not exist"),
        (lambda m, x: attribute(m, x, "integrated-gradients", steps=0), "steps must be between"),
        (lambda m, x: attribute(m, x, "integrated-gradients", baseline="grey"), "baseline must be one of"),
        (lambda m, x: attribute(m, x[0], "saliency"), "1×C×H×W"),
    ],
)
def test_refusals_are_one_clear_explain_error(lenet, x, call, message):
    with pytest.raises(ExplainError, match=message):
        call(lenet, x)


def test_a_model_without_class_scores_is_refused():
    model = build_model(get_preset("ae_sparse"))
    with pytest.raises(ExplainError, match="class scores"):
        attribute(model, torch.rand(1, *model.spec.input_shape), "saliency")


def test_settings_are_checked_when_made():
    assert AttributionSettings().methods == ("saliency", "gradcam")
    AttributionSettings(("integrated-gradients", "occlusion"), 2, {"steps": 8, "window": 3})
    for bad, message in [
        ({"methods": ()}, "one or two"),
        ({"methods": ("a", "b", "c")}, "one or two"),
        ({"methods": ("lime",)}, "unknown attribution method"),
        ({"options": {"steps": -1}}, "steps must be between"),
        ({"options": {"colour": 1}}, "no attribution method takes colour"),
    ]:
        kwargs = {"methods": ("saliency", "integrated-gradients"), **bad}
        with pytest.raises(ExplainError, match=message):
            AttributionSettings(**kwargs)


def test_black_picture_input_is_the_preparation_of_black_or_none():
    from lumen.engine.data.images import image_input

    pixels = np.full((40, 30, 3), 200, np.uint8)
    black = black_picture_input(lambda p: image_input(p, (3, 16, 16), digits=False), pixels)
    assert black.shape == (1, 3, 16, 16) and float(black.abs().max()) == 0.0
    assert black_picture_input(lambda p: image_input(p, (1, 28, 28), digits=True), pixels[:, :, 0]) is None


# ---- the live probe ----------------------------------------------------------------------------------


def test_the_probe_is_registered_once():
    assert sum(isinstance(p, AttributionProbe) for p in PROBES) == 1
    assert AttributionProbe.interval_s >= 0.1  # at most 10 frames a second


def test_the_probe_makes_two_maps_side_by_side(lenet, x):
    settings = AttributionSettings(("integrated-gradients", "gradcam"), None, {"steps": 16})
    context = ProbeContext(lenet, ProbeInput(x, "noise", "4"), tuple("0123456789"), step=7)
    frame = configured(settings).frame(context).run_to_end()
    assert isinstance(frame, AttributionFrame) and frame.step == 7 and frame.label == "4"
    assert [m.method for m in frame.maps] == ["integrated-gradients", "gradcam"]
    ig, cam = frame.maps
    assert ig.delta is not None and ig.signed and ig.levels[0] == -ig.levels[1]
    assert cam.layer == "conv2" and cam.levels[0] == 0.0
    assert all(
        m.heat.shape == (28, 28) and m.heat.dtype == np.float32 and m.heat.flags.c_contiguous for m in frame.maps
    )
    assert frame.target == int(lenet(x).argmax()) and frame.predictions[0][0] == frame.target_name
    expected = attribute(lenet, x, "integrated-gradients", frame.target, steps=16).heat()
    np.testing.assert_allclose(ig.heat, expected)


def test_the_probe_shows_a_method_that_cannot_explain_the_model_as_a_message(x):
    from lumen.engine.spec.model_spec import ModelSpec

    spec = ModelSpec.sequential(
        "mlp", (1, 28, 28), [("flatten", "flatten", {}), ("fc", "linear", {"out_features": 10})]
    )
    model = build_model(spec)
    settings = AttributionSettings(("saliency", "gradcam"))
    frame = configured(settings).frame(ProbeContext(model, ProbeInput(x, "noise"), tuple("0123456789"), 0)).run_to_end()
    assert frame.maps[0].error is None and "conv layer" in frame.maps[1].error


def test_without_input_the_probe_says_so(lenet):
    frame = AttributionProbe().frame(ProbeContext(lenet, None, tuple("0123456789"), 0)).run_to_end()
    assert frame.maps == () and frame.note


def configured(settings: AttributionSettings) -> AttributionProbe:
    probe = AttributionProbe()
    probe.configure(settings)
    return probe


def test_the_worker_configures_the_attribution_probe():
    recorder = Recorder()
    worker = EngineWorker(recorder, torch_threads=1)
    worker.start()
    try:
        worker.load_model(get_preset("lenet5"))
        recorder.wait_for(state_is(RunState.IDLE))
        worker.submit(ConfigureProbe("attribution", AttributionSettings(("integrated-gradients",), 5, {"steps": 8})))
        frame = recorder.wait_for(
            lambda e: isinstance(e, AttributionFrame) and [m.method for m in e.maps] == ["integrated-gradients"]
        )
        assert frame.target == 5 and frame.maps[0].delta is not None
    finally:
        assert worker.shutdown(10)


# ---- the shapes dataset ---------------------------------------------------------------------------------


def test_shapes_are_made_from_a_seed_with_their_masks():
    a, b, c = shape_images(64, seed=3), shape_images(64, seed=3), shape_images(64, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (64, 3, 32, 32) and a.images.dtype == np.float32
    assert a.masks.shape == (64, 32, 32) and a.masks.dtype == bool
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert set(np.unique(a.labels)) <= set(range(len(SHAPE_CLASSES)))
    areas = a.masks.sum((1, 2))
    assert areas.min() > 20 and areas.max() < 0.5 * 32 * 32  # every object is there, none fills the picture
    # The object differs from its background: the mean inside the mask is far from the mean outside.
    inside = (a.images * a.masks[:, None]).sum((2, 3)) / areas[:, None]
    outside = (a.images * ~a.masks[:, None]).sum((2, 3)) / (32 * 32 - areas)[:, None]
    assert np.abs(inside - outside).max(1).min() > 0.1


def test_shapes_load_by_name_with_validation_masks():
    data = load_dataset("shapes")
    assert data.name == "shapes" and data.classes == SHAPE_CLASSES and data.input_shape == (3, 32, 32)
    assert len(data.train_x) + len(data.val_x) == 4000
    assert data.val_masks.shape == (len(data.val_x), 32, 32)
    small = make_shapes(count=100, size=24)
    assert small.input_shape == (3, 24, 24) and len(small.val_x) == 10


# ---- image files (the CLI's decoder) ---------------------------------------------------------------------


def test_read_image_gives_8_bit_pixels_for_every_mode(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    Image.fromarray(np.full((5, 6), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png").dtype == np.uint8 and read_image(tmp_path / "deep.png").max() == 255
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (12, 10, 3)
    rgba = np.dstack([rgb, np.arange(120, dtype=np.uint8).reshape(12, 10)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png"), rgba)
    Image.fromarray(rgb).save(tmp_path / "lossy.webp")
    assert read_image(tmp_path / "lossy.webp").shape == (12, 10, 3)
    Image.fromarray(rgb).save(tmp_path / "späce d.jpg")
    assert read_image(tmp_path / "späce d.jpg").shape == (12, 10, 3)


def test_read_image_refuses_bad_files_in_one_line(tmp_path):
    from PIL import Image

    (tmp_path / "text.png").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    noisy = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.new("1", (12_000, 9_000)).save(tmp_path / "huge.png")  # 108 megapixels in a few kB
    for name, message in [
        ("text.png", "not an image"),
        ("empty.png", "empty"),
        ("truncated.png", "truncated"),
        ("huge.png", "megapixels"),
        ("missing.png", "no such file"),
    ]:
        with pytest.raises(DataError, match=message) as caught:
            read_image(tmp_path / name)
        assert "\n" not in str(caught.value)
