"""A user's own input for a sequence model: text typed for a character model (one-hot over the data's
characters), or a CSV file of numbers (one row per time step, one column per input feature). The window's
viewer and ``lumen gates`` read them here, so both say the same thing about the same bad input."""

from __future__ import annotations

from pathlib import Path

import torch

from lumen.engine.data.datasets import Dataset
from lumen.engine.data.preview import is_one_hot
from lumen.engine.errors import DataError
from lumen.engine.untrusted import printable, read_csv_numbers, shown

MAX_STEPS = 100_000  # a longer sequence is refused before the model runs on it


def character_vocabulary(data: Dataset, features: int) -> tuple[str, ...]:
    """The characters a character model's ``features`` one-hot inputs stand for (the data's input tokens or its
    classes); refused for data whose inputs are not one-hot characters."""
    tokens = next((t for t in (data.input_tokens, data.classes) if len(t) == features), ())
    if not tokens or not all(len(t) == 1 for t in tokens) or not is_one_hot(data.val_x[:16].numpy()):
        raise DataError(
            f"text is for character models: {printable(data.name)}'s inputs are not one-hot characters; "
            "use a CSV file of numbers or a validation sample"
        )
    return tokens


def one_hot_text(text: str, vocabulary: tuple[str, ...], whose: str) -> torch.Tensor:
    """``text`` as a batch of one, 1 × len(text) × len(vocabulary); ``whose`` names the model in refusals."""
    if not text:
        raise DataError("the text is empty: give at least one character")
    if len(text) > MAX_STEPS:
        raise DataError(f"the text has {len(text):,} characters; at most {MAX_STEPS:,} are read")
    index = {token: i for i, token in enumerate(vocabulary)}
    outside = next((c for c in text if c not in index), None)
    if outside is not None:
        known = "".join(vocabulary)
        raise DataError(
            f"'{printable(outside)}' is not in the vocabulary of {whose}: its {len(vocabulary)} characters are "
            f"'{printable(known[:200])}{'…' if len(known) > 200 else ''}'"
        )
    x = torch.zeros(1, len(text), len(vocabulary))
    x[0, torch.arange(len(text)), torch.tensor([index[c] for c in text])] = 1.0
    return x


def csv_sequence(path: str | Path, features: int, whose: str) -> torch.Tensor:
    """The CSV file at ``path`` as a batch of one, 1 × rows × ``features``; refused if its width differs."""
    path = Path(path)
    _, values = read_csv_numbers(path, "sequence file")
    if values.shape[1] != features:
        columns = f"{values.shape[1]:,} column{'s' if values.shape[1] != 1 else ''}"
        raise DataError(
            f"{shown(path.name)} has {columns}, but {whose} takes {features:,} input "
            f"feature{'s' if features != 1 else ''} per step"
        )
    if len(values) > MAX_STEPS:
        raise DataError(f"{shown(path.name)} has {len(values):,} rows; at most {MAX_STEPS:,} time steps are read")
    return torch.from_numpy(values).unsqueeze(0)
