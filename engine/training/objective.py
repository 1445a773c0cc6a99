"""Whether a model's output fits what training asks of it, checked before the first batch.

Training (``engine.training.loop.Training``) fits class scores to labels with cross-entropy: the model must take
the dataset's samples and give one score per class, a vector of ``len(data.classes)`` numbers per sample. A model
that does something else (an autoencoder's image, five scores for ten digits) would otherwise fail inside the loss
with a message from deep in PyTorch, or train on nonsense. Until every family has its own objective, such a model
is refused here with what it outputs and what the data needs. Both the CLI and the engine's worker call this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import SpecError
from engine.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from engine.data.datasets import Dataset


def _fmt(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def check_objective(spec: ModelSpec, data: Dataset, shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    """Raise SpecError (naming the node at fault) unless ``spec`` can be trained with cross-entropy on ``data``
    (an ``engine.data.datasets.Dataset``). ``shapes``: the inferred output shapes, if already known."""
    if shapes is None:
        from engine.graph.model import infer_shapes

        shapes = infer_shapes(spec)
    input_node, output = spec.input_node, spec.output_id
    takes, has = tuple(spec.input_shape), tuple(data.input_shape)
    if takes != has:
        raise SpecError(
            f"the model takes {_fmt(takes)} inputs, but {data.name} has {_fmt(has)} samples; "
            f"set the input shape to {_fmt(has)} to train on it",
            input_node.id,
        )
    if input_node.params.get("dtype", "float32") != "float32":
        raise SpecError(
            f"the model reads {input_node.params.get('dtype')} ids, but {data.name} holds images (float32)",
            input_node.id,
        )
    classes = len(data.classes)
    out = tuple(shapes[output])
    if out != (classes,):
        values = f"{out[0]} value{'s' if out[0] != 1 else ''}" if len(out) == 1 else f"a {_fmt(out)} tensor"
        raise SpecError(
            f"the model outputs {values} per sample, but training on {data.name} needs {classes} "
            f"class scores per sample (cross-entropy against its labels); end the model with a layer "
            f"giving {classes} outputs, such as linear with out_features {classes}",
            output,
        )
