"""Lumen's engine: model specs, building, training and inspection. Plain Python + PyTorch, no Qt.

The GUI (``gui/``) and the CLI (``main.py``) both drive this package; a test keeps it free of Qt.
"""

from lumen.engine.errors import DataError, LumenError, SpecError
from lumen.engine.spec.model_spec import ModelSpec, Node

__all__ = ["DataError", "LumenError", "ModelSpec", "Node", "SpecError"]
