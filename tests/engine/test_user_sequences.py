"""A user's own sequence as the probe input: text typed for a character model, a CSV file for any sequence model;
the gates are those of the model on exactly that input, and input that cannot be one is refused with the reason,
leaving the probe input as it was."""

import numpy as np
import pytest
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.data.user_sequences import character_vocabulary, one_hot_text
from lumen.engine.errors import DataError, LumenError
from lumen.engine.events import EngineError, ModelLoaded
from lumen.engine.explain.gates import capture_gates
from lumen.engine.presets import get_preset
from lumen.engine.probes.gates import GateFrame, Gates
from lumen.engine.runtime.commands import LoadModel, ProbeSample, ProbeSequence
from lumen.engine.runtime.session import Session


def session_on(preset: str, dataset: str | None = None) -> tuple[Session, list]:
    events: list = []
    session = Session(events.append, probes=[Gates()])
    session.handle(LoadModel(get_preset(preset), dataset))
    return session, events


def last_frame(events: list) -> GateFrame:
    return [e for e in events if isinstance(e, GateFrame)][-1]


def test_typed_text_is_the_probe_input_of_a_character_model():
    session, events = session_on("lstm_many_to_one", "recall")
    loaded = next(e for e in events if isinstance(e, ModelLoaded))
    assert loaded.info.characters == tuple("ABCDEFGH!?")  # what the window offers to type
    session.handle(ProbeSequence(text="!CAB?"))
    frame = last_frame(events)
    assert frame.source == "the typed text (5 characters)" and frame.steps == tuple("!CAB?")
    model = session._model
    x = one_hot_text("!CAB?", loaded.info.characters, "m")
    expected = capture_gates(model.get_submodule(frame.layer), x)
    np.testing.assert_allclose(frame.maps["l0.fwd.c"], expected.arrays["l0.fwd.c"][:, 0], rtol=1e-5, atol=1e-6)


def test_a_csv_file_is_the_probe_input_of_a_real_valued_sequence_model(tmp_path):
    session, events = session_on("lstm_many_to_many", "sine")
    assert next(e for e in events if isinstance(e, ModelLoaded)).info.characters == ()  # values: nothing to type
    values = np.sin(np.linspace(0, 6, 37)).astype(np.float32)
    path = tmp_path / "wave.csv"
    path.write_text("value\n" + "\n".join(f"{v:.6f}" for v in values))
    session.handle(ProbeSequence(path=str(path)))
    frame = last_frame(events)
    assert frame.source == "wave.csv (37 steps)" and frame.maps["l0.fwd.h"].shape[0] == 37
    x = torch.from_numpy(np.loadtxt(path, skiprows=1, dtype=np.float32)).reshape(1, 37, 1)
    expected = capture_gates(session._model.get_submodule(frame.layer), x)
    np.testing.assert_allclose(frame.maps["l0.fwd.h"], expected.arrays["l0.fwd.h"][:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("preset", "dataset", "choice", "said"),
    [
        ("lstm_many_to_one", "recall", ProbeSequence(text="ABxC"), "'x' is not in the vocabulary"),
        ("lstm_many_to_one", "recall", ProbeSequence(text=""), "the text is empty"),
        ("lstm_many_to_many", "sine", ProbeSequence(text="abc"), "text is for character models"),
        ("lstm_many_to_many", "sine", ProbeSequence(path="wide.csv"), "wide.csv has 3 columns, but"),
        ("lstm_many_to_many", "sine", ProbeSequence(path="missing.csv"), "missing.csv"),
        ("lenet5", None, ProbeSequence(text="abc"), "not sequences of feature vectors"),
    ],
)
def test_what_cannot_be_a_probe_input_is_refused_and_the_last_one_stays(
    tmp_path, monkeypatch, preset, dataset, choice, said
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wide.csv").write_text("1,2,3\n4,5,6\n")
    session, events = session_on(preset, dataset)
    session.handle(ProbeSample(2))
    before = session._probe_input
    session.handle(choice)
    errors = [e for e in events if isinstance(e, EngineError)]
    assert len(errors) == 1 and said in errors[0].message and "\n" not in errors[0].message
    assert session._probe_input is before


def test_a_sequence_that_fits_no_longer_gives_way_to_the_last_sample_instead_of_failing_the_load():
    session, events = session_on("lstm_many_to_one", "recall")
    session.handle(ProbeSample(3))
    session.handle(ProbeSequence(text="ABC?"))
    session.handle(LoadModel(get_preset("lstm_many_to_one"), "recall"))  # the same letters: the text stays
    assert last_frame(events).source == "the typed text (4 characters)"
    session.handle(LoadModel(get_preset("lstm_many_to_many"), "sine"))  # no letters here
    assert not [e for e in events if isinstance(e, EngineError)]
    assert last_frame(events).source == "validation sequence #3"


def test_only_data_of_single_characters_offers_typing():
    assert character_vocabulary(load_dataset("recall"), 10) == tuple("ABCDEFGH!?")
    with pytest.raises(DataError, match="not one-hot characters"):
        character_vocabulary(load_dataset("sine"), 1)
    assert issubclass(DataError, LumenError)
