"""The probes the worker runs while a model trains: one plain list, built from the leaves' classes.

Adding a probe: a module here with its Frame type and its Probe subclass, one line below, and a view for
its frame type in ``gui/views/__init__.py``. Nothing registers itself on import.
"""

from lumen.engine.probes.attribution import AttributionProbe
from lumen.engine.probes.autoencoder import Autoencoding
from lumen.engine.probes.base import Probe, ProbeContext, ProbeInput
from lumen.engine.probes.boltzmann import Boltzmann
from lumen.engine.probes.feature_maps import FeatureMaps
from lumen.engine.probes.filters import Filters
from lumen.engine.probes.gates import Gates
from lumen.engine.probes.generating import Generating
from lumen.engine.probes.gradients import GradientNorms
from lumen.engine.probes.histograms import Histograms
from lumen.engine.probes.sequence_output import SequenceOutput

PROBES: list[Probe] = [
    FeatureMaps(),
    GradientNorms(),  # before attribution: it reads the batch's gradients before a probe runs a backward of its own
    AttributionProbe(),
    Filters(),
    Histograms(),
    SequenceOutput(),
    Gates(),
    Autoencoding(),
    Generating(),
    Boltzmann(),
]

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeInput"]
