"""The probe registry and the runner that schedules probes: intervals, cost budgets, forced runs, failures."""

from dataclasses import dataclass

import pytest
import torch

from lumen.engine.events import EngineError, Frame
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes import PROBES, Probe, ProbeContext, ProbeInput
from lumen.engine.probes.feature_maps import NO_INPUT, FeatureMapFrame, FeatureMaps
from lumen.engine.probes.filters import Filters
from lumen.engine.probes.runner import ProbeRunner


@dataclass(frozen=True)
class CountFrame(Frame):
    serial: int


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Costly(Probe):
    """Takes ``cost_s`` of the fake clock's time per frame."""

    name = "costly"
    frame_type = CountFrame
    interval_s = 0.1
    budget = 0.25

    def __init__(self, clock: FakeClock, cost_s: float):
        self.clock, self.cost_s, self.made = clock, cost_s, 0

    def frame(self, context):
        self.clock.now += self.cost_s
        self.made += 1
        return CountFrame(context.step, self.made)


class Broken(Probe):
    name = "broken"
    frame_type = CountFrame

    def frame(self, context):
        raise ValueError("no luck")


@pytest.fixture(scope="module")
def context():
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    x = torch.rand(1, 1, 28, 28)
    return ProbeContext(model, ProbeInput(x, "noise", None), tuple("0123456789"), step=3)


def test_the_registry_is_a_plain_list_of_probes_with_distinct_frame_types():
    assert [type(p) for p in PROBES][0] is FeatureMaps and Filters in [type(p) for p in PROBES]
    assert all(isinstance(p, Probe) and issubclass(p.frame_type, Frame) for p in PROBES)
    assert len({p.frame_type for p in PROBES}) == len({p.name for p in PROBES}) == len(PROBES)
    assert all(p.interval_s > 0 and 0 < p.budget <= 1 for p in PROBES)


def test_feature_maps_probe_makes_a_frame_and_an_empty_one_without_input(context):
    frame = FeatureMaps().frame(context)
    assert isinstance(frame, FeatureMapFrame) and frame.step == 3 and frame.source == "noise"
    assert [m.node for m in frame.layers] == ["conv1", "conv2"]
    empty = FeatureMaps().frame(ProbeContext(context.model, None, context.classes, step=3))
    assert empty.layers == () and empty.source == NO_INPUT and empty.step == 3


def test_a_cheap_probe_runs_at_its_interval_and_a_forced_run_ignores_it(context):
    clock = FakeClock()
    cheap = Costly(clock, cost_s=0.001)
    runner = ProbeRunner([cheap], clock)
    assert len(runner.run(context, force=False)) == 1  # never run: due at once
    clock.now += 0.05
    assert runner.run(context, force=False) == []  # within its 0.1 s interval
    assert len(runner.run(context, force=True)) == 1  # a step, a stop, a new input: at once
    clock.now += 0.11
    assert len(runner.run(context, force=False, min_interval_s=0.25)) == 1
    clock.now += 0.15
    assert runner.run(context, force=False, min_interval_s=0.25) == []  # the training run's floor counts too
    clock.now += 0.11
    assert len(runner.run(context, force=False, min_interval_s=0.25)) == 1


def test_a_probe_over_its_budget_is_backed_off(context):
    clock = FakeClock()
    slow = Costly(clock, cost_s=0.3)  # 0.3 s a frame with a 25 % budget: at most one frame per 1.2 s
    runner = ProbeRunner([slow], clock)
    runner.run(context, force=False)
    clock.now = 100.3 + 0.85
    assert runner.run(context, force=False) == []  # 0.85 s after it ended: 0.3 / (0.3 + 0.85) > 25 %
    clock.now = 100.3 + 0.91
    assert len(runner.run(context, force=False)) == 1  # 0.3 / (0.3 + 0.9) = 25 %
    clock.now += 0.88
    assert runner.run(context, force=False) == []  # and so on: never more than a quarter of the time
    clock.now += 0.03
    assert len(runner.run(context, force=False)) == 1 and slow.made == 3


def test_a_failing_probe_is_reported_once_and_left_out_until_reset(context):
    clock = FakeClock()
    good = Costly(clock, cost_s=0.0)
    runner = ProbeRunner([Broken(), good], clock)
    events = runner.run(context, force=True)
    assert isinstance(events[0], EngineError) and "the broken probe failed (ValueError: no luck)" in events[0].message
    assert isinstance(events[1], CountFrame)  # the others still run
    assert [type(e) for e in runner.run(context, force=True)] == [CountFrame]
    runner.reset()
    assert [type(e) for e in runner.run(context, force=True)] == [EngineError, CountFrame]


@dataclass(frozen=True)
class OtherFrame(Frame):
    serial: int


class Other(Costly):
    name = "other"
    frame_type = OtherFrame

    def frame(self, context):
        self.made += 1
        return OtherFrame(context.step, self.made)


def test_an_unwatched_probe_is_not_run_and_is_due_at_once_when_watched_again(context):
    clock = FakeClock()
    shown, hidden = Costly(clock, cost_s=0.0), Other(clock, cost_s=0.0)
    runner = ProbeRunner([shown, hidden], clock)
    assert runner.watch(frozenset({CountFrame})) is False  # nothing was missed yet
    assert [type(e) for e in runner.run(context, force=True)] == [CountFrame]  # even a forced run skips it
    clock.now += 1.0
    assert [type(e) for e in runner.run(context, force=False)] == [CountFrame]
    assert hidden.made == 0
    assert runner.watch(frozenset({CountFrame, OtherFrame})) is True  # it missed runs: due now
    clock.now += 0.01  # within the shown probe's interval, so only the newly watched one is due
    assert [type(e) for e in runner.run(context, force=False)] == [OtherFrame]
    assert runner.watch(None) is False  # None: every probe, and none is stale
    clock.now += 1.0
    assert [type(e) for e in runner.run(context, force=False)] == [CountFrame, OtherFrame]


def test_new_settings_for_one_probe_leave_another_probes_long_job_running():
    """Picking a feature-map layer must not throw away an integrated-gradients attribution under way."""
    from lumen.engine.jobs import Job

    @dataclass(frozen=True)
    class Counted(Frame):
        n: int

    class Long(Probe):
        name, frame_type = "long", Counted

        def frame(self, context):
            def work():
                for n in range(1_000_000):
                    yield Counted(context.step, n)

            return Job("long", "counting", work())

    class Quick(Probe):
        name, frame_type = "quick", Frame

        def frame(self, context):
            return Frame(context.step)

    runner = ProbeRunner([Long(), Quick()])
    context = ProbeContext(None, None, (), 0)
    runner.run(context, force=True)
    assert runner.busy
    job = runner._slots[0].job
    frames = runner.run(context, force=True, only="quick")  # new settings for the quick probe
    assert [type(f) for f in frames] == [Frame] and runner._slots[0].job is job and not job.finished
    runner.run(context, force=True)  # a new input: every probe again, the long job too
    assert job.finished and runner._slots[0].job is not job
    runner.cancel_jobs()
