"""The spec format, shape inference and the builder, checked against PyTorch's own modules."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lumen.engine.errors import SpecError
from lumen.engine.graph.model import build_model, infer_shapes, summarize
from lumen.engine.presets import PRESETS, get_preset
from lumen.engine.spec.model_spec import ModelSpec


def reference_lenet5() -> nn.Sequential:
    """LeNet-5 written directly with torch.nn, independent of Lumen's spec machinery."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def test_lenet5_matches_a_hand_written_torch_model():
    torch.manual_seed(1)
    model = build_model(get_preset("lenet5"))
    reference = reference_lenet5()
    ours = [p for p in model.parameters()]
    theirs = [p for p in reference.parameters()]
    assert [p.shape for p in ours] == [p.shape for p in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.copy_(a)
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(model(x), reference(x))
    assert sum(r.params for r in summarize(model.spec)) == sum(p.numel() for p in reference.parameters()) == 61706


def test_every_inferred_shape_equals_the_real_tensor():
    for name in PRESETS:
        model = build_model(get_preset(name))
        x = torch.rand(2, *model.spec.input_shape)
        _, recorded = model.forward_recording(x, model.order)
        for node_id, shape in infer_shapes(model.spec).items():
            assert tuple(recorded[node_id].shape[1:]) == shape, node_id


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_described_and_round_trips(name):
    preset = PRESETS[name]
    spec = preset.make()
    assert preset.summary and "\n" not in preset.summary
    assert len(spec.description) > 60  # what it is and how it differs from the original
    assert ModelSpec.from_json(spec.to_json()) == spec


def test_spec_round_trips_exactly(tmp_path):
    path = tmp_path / "lenet.json"
    get_preset("lenet5").save(path)
    text = path.read_text()
    loaded = ModelSpec.load(path)
    assert loaded == get_preset("lenet5")
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_partial_shapes_keep_what_is_upstream_of_an_error():
    from lumen.engine.graph.model import partial_shapes

    data = _lenet_dict()
    data["nodes"][4]["params"]["kernel_size"] = 30  # conv2 no longer fits its 14×14 input
    spec = ModelSpec.from_dict(data)
    with pytest.raises(SpecError, match="conv2: kernel 30×30"):
        infer_shapes(spec)
    shapes = partial_shapes(spec)
    assert shapes == {"input": (1, 28, 28), "conv1": (6, 28, 28), "relu1": (6, 28, 28), "pool1": (6, 14, 14)}
    assert partial_shapes(get_preset("lenet5")) == infer_shapes(get_preset("lenet5"))


def test_to_dict_hands_out_copies():
    spec = get_preset("lenet5")
    spec.to_dict()["nodes"][0]["params"]["shape"].append(99)  # e.g. an editor working on the dict
    assert spec.input_shape == (1, 28, 28)


def _lenet_dict() -> dict:
    return get_preset("lenet5").to_dict()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["nodes"][4]["params"].update(kernel_size=15),
            "conv2: kernel 15×15 is larger than its 14×14 input (after pool1)",
        ),
        (lambda d: d["nodes"][1].update(type="conv9d"), "conv1: unknown layer type 'conv9d'"),
        (lambda d: d["nodes"][1]["params"].update(kernel_size=0), "conv1: kernel_size must be a positive whole number"),
        (lambda d: d["nodes"][1]["params"].update(colour="red"), "conv1: unknown parameter colour"),
        (lambda d: d["nodes"][1]["params"].pop("out_channels"), "conv1: conv2d needs the parameter out_channels"),
        (lambda d: d["edges"].append(["fc3", "conv1"]), "cycle"),
        (lambda d: d["edges"].append(["input", "ghost"]), "names a node that does not exist: ghost"),
        (lambda d: d.update(version=99), "spec version 99 is not supported"),
        (lambda d: d.update(format="keras"), "not a Lumen model spec"),
        (lambda d: d["nodes"].append({"id": "conv1", "type": "relu"}), "node ids must be unique; repeated: conv1"),
        (lambda d: d["nodes"].append({"id": "extra", "type": "relu"}), "exactly one output"),
    ],
)
def test_bad_specs_are_refused_with_the_node_and_the_reason(mutate, message):
    data = _lenet_dict()
    mutate(data)
    with pytest.raises(SpecError) as error:
        build_model(ModelSpec.from_dict(json.loads(json.dumps(data))))
    assert message in str(error.value)


def test_dotted_ids_become_module_paths_and_reserved_names_are_refused():
    spec = ModelSpec.sequential(
        "paths",
        (4,),
        [
            ("features.0", "linear", {"out_features": 3}),
            ("features.1", "relu", {}),
            ("classifier", "linear", {"out_features": 2}),
        ],
    )
    model = build_model(spec)
    assert list(model.state_dict()) == ["features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias"]
    assert model.features._modules["0"] is model.layers["features.0"]
    with pytest.raises(SpecError, match="features.0.x: the id lies inside another node's path"):
        ModelSpec.from_dict(
            {**spec.to_dict(), "nodes": spec.to_dict()["nodes"] + [{"id": "features.0.x", "type": "relu"}]}
        )
    with pytest.raises(SpecError, match="training: 'training' is a reserved name"):
        build_model(ModelSpec.sequential("r", (4,), [("training", "relu", {})]))


def test_linear_on_an_image_says_to_flatten_first():
    spec = ModelSpec.sequential("bad", (1, 8, 8), [("fc", "linear", {"out_features": 3})])
    with pytest.raises(SpecError, match=r"fc: linear expects a flat input but gets 1×8×8; put a flatten node"):
        build_model(spec)


def test_malformed_json_names_line_and_column():
    with pytest.raises(SpecError, match=r"not valid JSON \(line 1, column 11"):
        ModelSpec.from_json('{"nodes": }')


# ---- property tests: random chains of layers -------------------------------------------------------

conv = st.builds(
    lambda c, k, s, p: ("conv2d", {"out_channels": c, "kernel_size": k, "stride": s, "padding": p}),
    st.integers(1, 4),
    st.integers(1, 7),
    st.integers(1, 3),
    st.integers(0, 3),
)
pool = st.builds(
    lambda kind, k, s: (kind, {"kernel_size": k, "stride": s}),
    st.sampled_from(["maxpool2d", "avgpool2d"]),
    st.integers(1, 4),
    st.integers(1, 3),
)
act = st.sampled_from([("relu", {}), ("tanh", {}), ("sigmoid", {}), ("dropout", {"p": 0.25})])


@st.composite
def chains(draw):
    image_part = draw(st.lists(st.one_of(conv, pool, act), min_size=0, max_size=5))
    head = [("flatten", {}), ("linear", {"out_features": draw(st.integers(1, 6))})] if draw(st.booleans()) else []
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    layers = [(f"n{i}", kind, params) for i, (kind, params) in enumerate(image_part + head)]
    return ModelSpec.sequential("random", shape, layers or [("n0", "relu", {})])


@settings(max_examples=60, deadline=None)
@given(chains())
def test_random_chains_build_run_and_infer_true_shapes_or_are_refused_cleanly(spec):
    try:
        shapes = infer_shapes(spec)
    except SpecError as exc:
        assert exc.node is not None and exc.node.startswith("n")
        return
    model = build_model(spec)
    x = torch.rand(2, *spec.input_shape, requires_grad=True)
    out, recorded = model.forward_recording(x, model.order)
    out.sum().backward()
    assert x.grad is not None
    for node_id, shape in shapes.items():
        assert tuple(recorded[node_id].shape[1:]) == shape, (node_id, spec)
