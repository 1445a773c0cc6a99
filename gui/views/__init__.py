"""Which view draws which frame type: one plain dict, built from the leaves' classes.

Adding a view for a new probe's frames: a module here with its View subclass and one entry below. The
viewer pane hosts one view per entry of ``VIEWS`` and routes each frame to the view of its type; the training
monitor hosts those of ``MONITOR_VIEWS`` (pictures of how training goes rather than of what the model sees),
and the window sends each frame to whichever pane hosts its type. Nothing registers itself on import.
"""

from engine.events import Frame
from engine.explain.jobs import DreamFrame
from engine.probes.attribution import AttributionFrame
from engine.probes.autoencoder import AutoencoderFrame
from engine.probes.boltzmann import BoltzmannFrame
from engine.probes.feature_maps import FeatureMapFrame
from engine.probes.filters import FilterFrame
from engine.probes.gates import GateFrame
from engine.probes.generating import GenerateFrame
from engine.probes.gradients import GradientNormFrame
from engine.probes.histograms import HistogramFrame
from engine.probes.sequence_output import SequenceOutputFrame
from gui.views.attribution import AttributionView
from gui.views.autoencoder import AutoencoderView
from gui.views.base import View
from gui.views.boltzmann import BoltzmannView
from gui.views.dream import DreamView
from gui.views.feature_maps import FeatureMapView
from gui.views.filters import FilterView
from gui.views.gates import GateView
from gui.views.generating import GenerateView
from gui.views.gradients import GradientNormView
from gui.views.histograms import HistogramView
from gui.views.sequence_output import SequenceOutputView

VIEWS: dict[type[Frame], type[View]] = {
    FeatureMapFrame: FeatureMapView,
    AttributionFrame: AttributionView,
    FilterFrame: FilterView,
    DreamFrame: DreamView,
    SequenceOutputFrame: SequenceOutputView,
    GateFrame: GateView,
    AutoencoderFrame: AutoencoderView,
    GenerateFrame: GenerateView,
    BoltzmannFrame: BoltzmannView,
}
MONITOR_VIEWS: dict[type[Frame], type[View]] = {
    GradientNormFrame: GradientNormView,
    HistogramFrame: HistogramView,
}

__all__ = ["MONITOR_VIEWS", "VIEWS", "View"]
