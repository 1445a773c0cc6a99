"""Long attributions in slices (integrated gradients a few steps at a time, equal to Captum), on the worker with
progress and CancelJob; a user's picture as the baseline; the picture preparation a spec carries; class names a
run carries."""

import json

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from lumen.engine.data.images import image_input, prepared_input
from lumen.engine.errors import LumenError, SpecError
from lumen.engine.events import RunState
from lumen.engine.explain.attribution import AttributionSettings, attribute, attribute_steps, step_chunk
from lumen.engine.graph.model import build_model
from lumen.engine.jobs import Job
from lumen.engine.presets import get_preset
from lumen.engine.probes import ProbeContext, ProbeInput, runner
from lumen.engine.probes.attribution import AttributionFrame, AttributionProbe, BaselinePicture
from lumen.engine.runtime.commands import CancelJob, ConfigureProbe
from lumen.engine.runtime.worker import EngineWorker
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.preprocess import IMAGENET, Preprocess
from tests.support import Recorder, state_is


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return build_model(get_preset("lenet5")).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))


# ---- integrated gradients in slices ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_sliced_integrated_gradients_equal_captum(lenet, x, chunk):
    ours = attribute(lenet, x, "integrated-gradients", 3, steps=50, chunk=chunk)
    batched = IntegratedGradients(lenet).attribute(
        x, baselines=torch.zeros_like(x), target=3, n_steps=50, internal_batch_size=chunk
    )
    one_shot, delta = IntegratedGradients(lenet).attribute(
        x, baselines=torch.zeros_like(x), target=3, n_steps=50, return_convergence_delta=True
    )
    assert torch.equal(torch.from_numpy(ours.map), batched[0])  # the very same sums, in the same order
    np.testing.assert_allclose(ours.map, one_shot[0].numpy(), rtol=1e-5, atol=1e-7)
    assert ours.delta == pytest.approx(float(delta[0]), abs=1e-5)


def test_attribute_steps_reports_progress_and_stops_when_closed(lenet, x):
    steps = attribute_steps(lenet, x, "integrated-gradients", 3, steps=20, chunk=6)
    assert [next(steps) for _ in range(4)] == [(6, 20), (12, 20), (18, 20), (20, 20)]
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert stop.value.value.method == "integrated-gradients" and stop.value.value.map.shape == (1, 28, 28)
    closed = attribute_steps(lenet, x, "integrated-gradients", 3, steps=20, chunk=6)
    next(closed)
    closed.close()  # nothing left running, no error
    assert not lenet.training


def test_a_slice_is_a_fraction_of_a_full_size_input():
    assert step_chunk(torch.zeros(1, 1, 28, 28), 50) == 50  # LeNet: all steps at once, as before
    assert 1 <= step_chunk(torch.zeros(1, 3, 224, 224), 50) <= 4  # resnet18: a few steps a slice
    assert step_chunk(torch.zeros(1, 3, 2048, 2048), 50) == 1


def test_the_mode_comes_back_between_slices(lenet, x):
    lenet.train()
    try:
        steps = attribute_steps(lenet, x, "integrated-gradients", 3, steps=8, chunk=2)
        next(steps)
        assert lenet.training  # a model that trains between slices keeps training mode
        list(steps)
    finally:
        lenet.eval()


# ---- the probe and the worker ---------------------------------------------------------------------------------


class Ticking:
    """A clock that moves one second every time it is read: every slice is 'long'."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def configured(settings: AttributionSettings, clock=None) -> AttributionProbe:
    probe = AttributionProbe(clock=clock) if clock is not None else AttributionProbe()
    probe.configure(settings)
    return probe


def test_a_long_attribution_is_a_job_with_progress(lenet, x):
    settings = AttributionSettings(("integrated-gradients", "gradcam"), 3, {"steps": 12, "chunk": 4})
    context = ProbeContext(lenet, ProbeInput(x, "noise"), tuple("0123456789"), 0)
    job = configured(settings, Ticking()).frame(context)
    assert isinstance(job, Job) and not job.finished
    first = job.advance(slice_s=0.0)
    assert first.progress is not None and 0 < first.progress < 1 and first.maps == ()
    frames = []
    while not job.finished:
        frame = job.advance(slice_s=0.0)
        if frame is not None:
            frames.append(frame)
    done = frames[-1]
    assert done.progress is None and [m.method for m in done.maps] == ["integrated-gradients", "gradcam"]
    shares = [f.progress for f in frames[:-1]]
    assert shares == sorted(shares) and all(0 < s < 1 for s in shares)
    expected = attribute(lenet, x, "integrated-gradients", 3, steps=12).heat()
    np.testing.assert_allclose(done.maps[0].heat, expected, rtol=1e-5, atol=1e-7)
    assert done.layers == ("conv1", "conv2")


def test_a_cancelled_job_keeps_the_maps_done_and_says_it_stopped(lenet, x):
    settings = AttributionSettings(("gradcam", "integrated-gradients"), 3, {"steps": 40, "chunk": 2})
    context = ProbeContext(lenet, ProbeInput(x, "noise"), tuple("0123456789"), 0)
    job = configured(settings, Ticking()).frame(context)
    job.advance(slice_s=0.0)
    stopped = job.cancel()
    assert job.finished and stopped.progress is None and "stopped" in stopped.note
    assert [m.method for m in stopped.maps] == ["gradcam"]
    assert job.cancel() is None and job.advance() is None


def test_a_user_picture_is_a_baseline_prepared_like_the_input(lenet, x):
    pixels = np.full((40, 40), 200, np.uint8)

    def prepare(p):
        return image_input(p, (1, 28, 28), digits=False)

    settings = AttributionSettings(
        ("integrated-gradients",), 3, {"steps": 8, "baseline": BaselinePicture(pixels, "grey.png")}
    )
    frame = (
        configured(settings)
        .frame(ProbeContext(lenet, ProbeInput(x, "noise", prepare=prepare), tuple("0123456789"), 0))
        .run_to_end()
    )
    expected = attribute(lenet, x, "integrated-gradients", 3, steps=8, baseline=prepare(pixels)).heat()
    assert frame.maps[0].error is None
    np.testing.assert_allclose(frame.maps[0].heat, expected, rtol=1e-5, atol=1e-7)
    unprepared = (
        configured(settings).frame(ProbeContext(lenet, ProbeInput(x, "noise"), tuple("0123456789"), 0)).run_to_end()
    )
    assert "grey.png" in unprepared.maps[0].error


def test_the_worker_runs_a_long_attribution_in_slices_and_cancel_job_stops_it(monkeypatch):
    monkeypatch.setattr(runner, "FIRST_SLICE_S", 0.0)  # every attribution counts as long
    recorder = Recorder()
    worker = EngineWorker(recorder, torch_threads=1)
    worker.start()
    try:
        worker.load_model(get_preset("lenet5"))
        recorder.wait_for(state_is(RunState.IDLE))
        worker.submit(
            ConfigureProbe("attribution", AttributionSettings(("integrated-gradients",), 5, {"steps": 8, "chunk": 1}))
        )
        finished = recorder.wait_for(
            lambda e: isinstance(e, AttributionFrame) and e.progress is None and e.maps and e.target == 5
        )
        assert finished.maps[0].method == "integrated-gradients" and finished.maps[0].delta is not None
        assert any(isinstance(e, AttributionFrame) and e.progress is not None and e.target == 5 for e in recorder.seen)
        # a very long one: progress arrives, other commands get through, and CancelJob stops it
        worker.submit(
            ConfigureProbe(
                "attribution", AttributionSettings(("integrated-gradients",), 4, {"steps": 2000, "chunk": 1})
            )
        )
        recorder.wait_for(lambda e: isinstance(e, AttributionFrame) and e.progress is not None and e.target == 4)
        worker.submit(CancelJob())
        stopped = recorder.wait_for(lambda e: isinstance(e, AttributionFrame) and "stopped" in e.note, timeout=10)
        assert stopped.progress is None and stopped.maps == ()
        seen = len(recorder.seen)
        later = [e for e in recorder.drain(0.5)[seen:] if isinstance(e, AttributionFrame)]
        assert later == []  # nothing more once stopped
    finally:
        assert worker.shutdown(10)


# ---- the preparation a spec carries ------------------------------------------------------------------------------


def test_an_old_spec_loads_unchanged_and_is_written_as_version_1():
    spec = get_preset("lenet5")
    data = json.loads(spec.to_json())
    assert data["version"] == 1 and "preprocess" not in data
    assert ModelSpec.from_dict(data) == spec and ModelSpec.from_dict(data).preprocess is None


def test_a_spec_with_preparation_is_version_2_and_round_trips():
    spec = get_preset("resnet18")
    data = json.loads(spec.to_json())
    assert data["version"] == 2
    assert data["preprocess"] == {
        "mode": "rgb",
        "resize": 256,
        "size": [224, 224],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert ModelSpec.from_json(spec.to_json()).preprocess == IMAGENET


@pytest.mark.parametrize(
    ("preprocess", "message"),
    [
        ({"mode": "cmyk"}, "mode must be one of"),
        ({"mode": "rgb", "resize": 0}, "resize must be"),
        ({"mode": "rgb", "resize": True}, "whole number"),
        ({"mode": "rgb", "size": [224]}, "[height, width]"),
        ({"mode": "rgb", "size": [224, 10**6]}, "size must be"),
        ({"mode": "rgb", "mean": [0.5], "std": [0.0]}, "std must be positive"),
        ({"mode": "rgb", "mean": [0.5, 0.5]}, "both mean and std"),
        ({"mode": "rgb", "mean": [0.5, 0.5], "std": [1.0]}, "one number per channel"),
        ({"mode": "rgb", "mean": ["a"], "std": [1.0]}, "numbers only"),
        ({"mode": "rgb", "mean": [0.1] * 5, "std": [1.0] * 5}, "1 to 4 numbers"),
        ({"mode": "rgb", "colour": 1}, "unknown fields"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_preparation_is_refused_with_one_spec_error(preprocess, message):
    data = json.loads(get_preset("lenet5").to_json())
    data["version"], data["preprocess"] = 2, preprocess
    with pytest.raises(SpecError, match=message.replace("[", r"\[")):
        ModelSpec.from_dict(data)


def test_version_1_cannot_carry_preparation_and_unknown_versions_are_refused():
    data = json.loads(get_preset("lenet5").to_json())
    data["preprocess"] = {"mode": "gray"}
    with pytest.raises(SpecError, match="version 2"):
        ModelSpec.from_dict(data)
    for version in (3, True, "2"):
        data["version"] = version
        with pytest.raises(SpecError, match="not supported"):
            ModelSpec.from_dict(data)


def test_imagenet_preparation_resizes_the_shorter_side_crops_the_centre_and_normalises():
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:, :, 0] = 255  # pure red
    pixels[:, 200:, 1] = 255  # the right half yellow
    x = prepared_input(pixels, (3, 224, 224), IMAGENET)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    red = (1.0 - 0.485) / 0.229
    assert float(x[0, 0].mean()) == pytest.approx(red, abs=1e-4)
    # shorter side 300 -> 256, so 400 -> 341; the centre 224 of it keeps the half-way edge at the middle
    assert float(x[0, 1, :, :100].mean()) == pytest.approx((0 - 0.456) / 0.224, abs=1e-3)
    assert float(x[0, 1, :, 124:].mean()) == pytest.approx((1 - 0.456) / 0.224, abs=1e-3)


def test_grey_pictures_for_rgb_models_and_back():
    grey = np.full((10, 10), 128, np.uint8)
    rgb = prepared_input(grey, (3, 8, 8), Preprocess("rgb"))
    assert rgb.shape == (1, 3, 8, 8) and torch.allclose(rgb[0, 0], rgb[0, 2])
    colour = np.zeros((10, 10, 4), np.uint8)
    colour[..., 1], colour[..., 3] = 255, 255
    one = prepared_input(colour, (1, 8, 8), Preprocess("rgb", mean=(0.5,), std=(0.5,)))
    assert one.shape == (1, 1, 8, 8) and float(one.mean()) == pytest.approx((0.587 - 0.5) / 0.5, abs=1e-3)
    clear = np.zeros((10, 10, 4), np.uint8)  # fully transparent: white paper
    assert float(prepared_input(clear, (3, 4, 4), Preprocess("rgb")).min()) == pytest.approx(1.0)
    assert torch.equal(image_input(grey, (1, 8, 8), False, Preprocess("gray")), image_input(grey, (1, 8, 8), False))


def test_fitting_a_full_size_preset_to_lumens_data_drops_imagenets_preparation():
    from lumen.engine.data.datasets import load_dataset
    from lumen.engine.training.fit import fit_to_data

    fitted = fit_to_data(get_preset("resnet18"), load_dataset("shapes"), "classification")
    assert fitted.spec.preprocess is None and any("preparation" in c for c in fitted.changes)


# ---- class names a run carries ------------------------------------------------------------------------------------


def test_imported_weights_carry_imagenets_class_names(tmp_path):
    from safetensors.torch import save_file

    from lumen.engine.io.runs import class_list, import_run, read_run_info, run_classes

    names = class_list("imagenet")
    assert len(names) == 1000 and names[0] == "tench" and names[207] == "golden retriever" and len(set(names)) == 1000
    spec = get_preset("lenet5")
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in build_model(spec).state_dict().items()}, str(weights))
    import_run(spec, weights, tmp_path / "run", classes="imagenet")
    assert run_classes(read_run_info(tmp_path / "run")) == names
    import_run(spec, weights, tmp_path / "plain")
    assert run_classes(read_run_info(tmp_path / "plain")) == ()
    assert run_classes({"classes": ["a", "b\x1b[31m"]}) == ("a", "b\\x1b[31m") or run_classes(
        {"classes": ["a", "b\x1b[31m"]}
    )[1].startswith("b")
    assert run_classes({"classes": 5}) == () and run_classes({"classes": "../../etc/passwd"}) == ()
    with pytest.raises(LumenError, match="unknown class names"):
        import_run(spec, weights, tmp_path / "bad", classes="cifar")
