"""Real training steps on the bundled digits, NaN handling, feature maps against torch's conv, image prep."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lumen.engine.data.datasets import load_mnist
from lumen.engine.data.images import digit_input, display_image
from lumen.engine.errors import DataError, LumenError
from lumen.engine.events import EpochMetrics, StepFailed, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.feature_maps import feature_map_frame, tile
from lumen.engine.runtime.history import readable
from lumen.engine.training.loop import NonFiniteLoss, OutOfMemory, TrainConfig, Training
from tests.support import ask_too_much_when


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_bundled_mnist_is_balanced_and_split_without_overlap(mnist):
    assert mnist.train_x.shape == (4500, 1, 28, 28) and mnist.val_x.shape == (500, 1, 28, 28)
    assert 0.0 <= float(mnist.train_x.min()) and float(mnist.train_x.max()) <= 1.0
    assert set(torch.bincount(mnist.val_y).tolist()) != {0}  # every class in validation
    assert len(torch.unique(mnist.val_y)) == 10
    train_rows = {tuple(x.flatten().tolist()[::7]) for x in mnist.train_x[:300]}
    assert not any(tuple(x.flatten().tolist()[::7]) in train_rows for x in mnist.val_x)


@pytest.mark.slow
def test_lenet5_learns_the_digits(mnist):
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    training = Training(model, mnist, TrainConfig(epochs=2, seed=0))
    before = training.validate()  # what each epoch reports as val_loss and val_accuracy
    events = list(training.steps())
    epochs = [e for e in events if isinstance(e, EpochMetrics)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert len([e for e in events if isinstance(e, StepMetrics)]) == 2 * 71
    assert before["accuracy"] < 0.2  # chance level before training
    assert epochs[-1].val["accuracy"] > 0.85 and epochs[-1].val["loss"] < before["loss"] / 3


def test_same_seed_same_run(mnist):
    small = dataclasses.replace(mnist, train_x=mnist.train_x[:256], train_y=mnist.train_y[:256])

    def losses():
        torch.manual_seed(3)
        model = build_model(get_preset("lenet5"))
        return [
            e.values["loss"]
            for e in Training(model, small, TrainConfig(epochs=1, seed=3)).steps()
            if isinstance(e, StepMetrics)
        ]

    assert losses() == losses()


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_weights(mnist):
    data = dataclasses.replace(mnist, train_x=mnist.train_x[:64].clone(), train_y=mnist.train_y[:64])
    model = build_model(get_preset("lenet5"))
    steps = Training(model, data, TrainConfig(epochs=2, batch_size=64, seed=0)).steps()
    first = next(steps)
    assert isinstance(first, StepMetrics) and np.isfinite(first.values["loss"])
    assert isinstance(next(steps), EpochMetrics)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    data.train_x[:] = float("nan")  # the data goes bad between two steps
    with pytest.raises(NonFiniteLoss, match=r"the loss became nan at step 2 \(epoch 2\).*lower learning rate"):
        next(steps)
    for key, value in model.state_dict().items():
        assert torch.equal(value, good[key]), key


def test_running_out_of_memory_keeps_the_last_good_weights_and_the_batch_can_be_tried_again(mnist):
    data = dataclasses.replace(mnist, train_x=mnist.train_x[:256], train_y=mnist.train_y[:256])
    greedy = {"armed": False}
    model = ask_too_much_when(build_model(get_preset("lenet5")), lambda _: greedy["armed"])
    training = Training(model, data, TrainConfig(epochs=1, batch_size=64, seed=0))
    steps = training.steps()
    assert isinstance(next(steps), StepMetrics)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    greedy["armed"] = True
    with pytest.raises(OutOfMemory, match=r"out of memory at step 2 \(epoch 1\) with batch size 64.*smaller batch"):
        next(steps)
    assert all(torch.equal(value, good[key]) for key, value in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())  # what the failed batch held is let go

    # The window's way: the failure is an event, the run waits, and the same batch is tried again.
    training = Training(model, data, TrainConfig(epochs=1, batch_size=64, seed=0))
    training.pause_on_failure = True
    steps = training.steps()
    failed = next(steps)
    assert isinstance(failed, StepFailed) and (failed.step, failed.epoch) == (1, 1)
    assert failed.reason == "out of memory (batch size 64)" and "smaller batch size" in failed.advice
    assert isinstance(next(steps), StepFailed)  # still too much: still paused at step 1
    greedy["armed"] = False
    first = next(steps)
    assert isinstance(first, StepMetrics) and first.step == 1 and np.isfinite(first.values["loss"])


def test_running_out_of_memory_while_validating_says_so(mnist):
    data = dataclasses.replace(mnist, train_x=mnist.train_x[:64], train_y=mnist.train_y[:64])
    model = ask_too_much_when(build_model(get_preset("lenet5")), lambda model: not model.training)  # validating
    steps = Training(model, data, TrainConfig(epochs=1, batch_size=64)).steps()
    assert isinstance(next(steps), StepMetrics)
    with pytest.raises(LumenError, match=r"^out of memory while validating at step 1 \(batches of 500 samples\)"):
        next(steps)


def test_a_bug_that_is_not_about_memory_is_not_called_out_of_memory(mnist):
    data = dataclasses.replace(mnist, train_x=mnist.train_x[:64], train_y=mnist.train_y[:64])
    model = build_model(get_preset("lenet5"))
    model.forward = lambda x: torch.ones(3) @ torch.ones(4)  # a shape error, a RuntimeError too
    with pytest.raises(RuntimeError, match="size mismatch|shapes cannot be multiplied|inconsistent"):
        next(Training(model, data, TrainConfig(epochs=1, batch_size=64)).steps())


def test_measures_read_as_people_read_them_even_when_they_explode():
    assert readable(0.2437) == "0.244" and readable(0.0) == "0.000" and readable(123456.0) == "123456.000"
    assert readable(0.93, percent=True) == "93.0%"
    assert readable(1.2744500826e33) == "1.27e+33" and readable(-2e-5) == "-2e-05"
    assert readable(float("nan")) == "nan" and readable(float("inf")) == "inf"


def test_tile_places_every_channel_and_gaps_are_nan():
    maps = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    mosaic, grid = tile(maps)
    assert grid == (2, 3) and mosaic.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert np.array_equal(mosaic[0:2, 0:3], maps[0])
    assert np.array_equal(mosaic[3:5, 4:7], maps[4])
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 3]).all()
    assert np.isnan(mosaic[3:5, 8:11]).all()  # the unused sixth tile


def test_feature_maps_equal_torch_conv_and_predictions_equal_softmax(mnist):
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    model.train()
    x = mnist.val_x[:1]
    frame = feature_map_frame(model, x, mnist.classes, step=3, source="probe", label="7")
    assert model.training  # mode restored
    conv1 = model.layers["conv1"]
    expected = F.conv2d(x, conv1.weight, conv1.bias, padding=2)[0].detach().numpy()
    first = frame.layers[0]
    assert first.node == "conv1" and first.shape == (6, 28, 28) and first.grid == (2, 3)
    np.testing.assert_allclose(first.mosaic[0:28, 0:28], expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.mosaic[29:57, 58:86], expected[5], rtol=1e-5, atol=1e-6)
    assert first.levels == pytest.approx((expected.min(), expected.max()))
    assert [m.node for m in frame.layers] == ["conv1", "conv2"]
    probs = torch.softmax(model.eval()(x)[0], 0)
    top = torch.topk(probs, 5)
    assert [p[0] for p in frame.predictions] == [str(int(i)) for i in top.indices]
    np.testing.assert_allclose([p[1] for p in frame.predictions], top.values.detach().numpy(), rtol=1e-5)


def test_a_dark_on_light_picture_is_prepared_like_mnist(mnist):
    digit = (mnist.val_x[0, 0].numpy() * 255).astype(np.uint8)
    scan = 255 - np.kron(digit, np.ones((5, 5), np.uint8))  # 140×140, dark ink on white paper
    scan = np.pad(scan, ((30, 0), (0, 50)), constant_values=255)  # off-centre on the page
    x = digit_input(scan)
    assert x.shape == (1, 1, 28, 28)
    img = x[0, 0].numpy()
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() > 0.9
    ys, xs = np.indices(img.shape)
    assert abs((ys * img).sum() / img.sum() - 13.5) < 1.0 and abs((xs * img).sum() / img.sum() - 13.5) < 1.0
    rows, cols = np.flatnonzero(img.max(1) > 0.2), np.flatnonzero(img.max(0) > 0.2)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20, 21)  # fit to a 20-pixel box


def test_rgba_transparency_is_laid_over_white_and_a_blank_image_is_refused():
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black = white paper
    with pytest.raises(DataError, match="looks blank"):
        digit_input(rgba)
    rgba[10:40, 24:27] = (0, 0, 0, 255)  # an opaque black stroke: a "1"
    img = digit_input(rgba)[0, 0].numpy()
    assert img.max() > 0.9 and img[:, :5].max() == 0.0


def test_an_input_is_shown_as_it_is_and_a_normalised_one_stretched_not_clamped():
    grey = torch.rand(1, 1, 8, 8)
    assert np.array_equal(display_image(grey), grey[0, 0].numpy())  # [0, 1] already: untouched
    rgb = torch.linspace(-2.0, 2.0, 3 * 4 * 5).reshape(1, 3, 4, 5)  # ImageNet mean/std puts pixels about here
    shown = display_image(rgb)
    assert shown.shape == (4, 5, 3) and shown.dtype == np.float32
    assert (shown.min(), shown.max()) == (0.0, 1.0) and len(np.unique(shown)) == 60  # no value saturated
