"""Which view draws which frame type: one plain dict, built from the leaves' classes.

Adding a view for a new probe's frames: a module here with its View subclass and one entry below. The
viewer pane hosts one view per entry and routes each frame to the view of its type. Nothing registers
itself on import.
"""

from engine.explain.jobs import DreamFrame
from engine.probes.attribution import AttributionFrame
from engine.probes.feature_maps import FeatureMapFrame
from engine.probes.filters import FilterFrame
from engine.runtime.events import Frame
from gui.views.attribution import AttributionView
from gui.views.base import View
from gui.views.dream import DreamView
from gui.views.feature_maps import FeatureMapView
from gui.views.filters import FilterView

VIEWS: dict[type[Frame], type[View]] = {
    FeatureMapFrame: FeatureMapView,
    AttributionFrame: AttributionView,
    FilterFrame: FilterView,
    DreamFrame: DreamView,
}

__all__ = ["VIEWS", "View"]
