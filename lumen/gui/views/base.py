"""What a view is: a widget that draws the newest frame of one type. The viewer pane hosts one per type."""

from __future__ import annotations

from typing import ClassVar

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QBoxLayout, QWidget

from lumen.engine.events import Frame, ModelInfo
from lumen.gui.widgets.error_line import ErrorLine


class View(QWidget):
    """Subclasses set ``title`` (its tab's name when the viewer hosts several) and implement ``show_frame``.

    ``show_frame`` is called on the GUI thread with the newest frame of the view's type, at most ~30 times a
    second; it should update existing items (``setImage``, ``setData``) rather than rebuild them.
    """

    title: ClassVar[str] = "View"
    # Whether it draws what the model makes of the probe input (the sample, picture or sequence chosen above the
    # views); the viewer shows those controls only when a view that applies does.
    uses_probe_input: ClassVar[bool] = True
    # A worker command (a dataclass of engine.runtime.commands) the view's controls ask for; the window submits it.
    command = Signal(object)

    def show_frame(self, frame: Frame) -> None:
        raise NotImplementedError

    def applies(self, info: ModelInfo) -> bool | None:
        """Whether the view has anything to show for this model; None (the default): as its probe says
        (``ModelLoaded.frame_types``). A view whose frames come from a job rather than a probe says it here."""
        return None

    def model_changed(self, info: ModelInfo) -> None:
        """Another model was loaded (before its first frame): follow it (class pickers, modes). Default: nothing."""

    def clear(self) -> None:
        """Another model was loaded: forget the last one's picture. Default: drop pyqtgraph images' data."""
        for item in self.findChildren(pg.GraphicsView):
            for image in [i for i in item.items() if isinstance(i, pg.ImageItem)]:
                image.clear()

    def error_line(self) -> ErrorLine:
        """The line above the view that says a frame could not be drawn (made the first time it is asked for)."""
        line = getattr(self, "_error_line", None)
        if line is None:
            line = self._error_line = ErrorLine(self)
            layout = self.layout()
            if isinstance(layout, QBoxLayout):
                layout.insertWidget(0, line)
        return line

    def caption(self, frame: Frame) -> str:
        """One line for the viewer's header while this view is on top (rich text allowed)."""
        return f"model at step {frame.step}"
