"""Which view draws which frame type: one plain dict, built from the leaves' classes.

Adding a view for a new probe's frames: a module here with its View subclass and one entry below. The
viewer pane hosts one view per entry of ``VIEWS`` and routes each frame to the view of its type; the training
monitor hosts those of ``MONITOR_VIEWS`` (pictures of how training goes rather than of what the model sees),
and the window sends each frame to whichever pane hosts its type. Nothing registers itself on import.
"""

from lumen.engine.events import Frame
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.probes.attribution import AttributionFrame
from lumen.engine.probes.autoencoder import AutoencoderFrame
from lumen.engine.probes.boltzmann import BoltzmannFrame
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.filters import FilterFrame
from lumen.engine.probes.gates import GateFrame
from lumen.engine.probes.generating import GenerateFrame
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.engine.probes.histograms import HistogramFrame
from lumen.engine.probes.sequence_output import SequenceOutputFrame
from lumen.gui.views.attribution import AttributionView
from lumen.gui.views.autoencoder import AutoencoderView
from lumen.gui.views.base import View
from lumen.gui.views.boltzmann import BoltzmannView
from lumen.gui.views.dream import DreamView
from lumen.gui.views.feature_maps import FeatureMapView
from lumen.gui.views.filters import FilterView
from lumen.gui.views.gates import GateView
from lumen.gui.views.generating import GenerateView
from lumen.gui.views.gradients import GradientNormView
from lumen.gui.views.histograms import HistogramView
from lumen.gui.views.sequence_output import SequenceOutputView

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
