"""Any ``nn.Module`` is inspected like a model Lumen built: feature maps, filters, attribution, gradient norms and
histograms read it through its named submodules and its forward pass (here a torchvision-style network written
by hand, not built from a spec)."""

import numpy as np
import torch
from torch import nn

from lumen.engine.explain.attribution import AttributionSettings, attribute
from lumen.engine.probes.attribution import AttributionProbe
from lumen.engine.probes.base import ProbeContext, ProbeInput
from lumen.engine.probes.feature_maps import FeatureMaps, FeatureMapSettings
from lumen.engine.probes.filters import Filters
from lumen.engine.probes.gradients import GradientNorms
from lumen.engine.probes.histograms import Histograms

CLASSES = tuple("abcd")


class SmallNet(nn.Module):
    """As torchvision writes them: a ``features`` Sequential, a ``classifier``, a forward of its own."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU()
        )
        self.classifier = nn.Linear(6 * 2 * 2, len(CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def context(model, x):
    return ProbeContext(model, ProbeInput(x, "noise"), CLASSES, 3)


def test_feature_maps_filters_and_attribution_of_a_module_lumen_did_not_build():
    torch.manual_seed(0)
    model, x = SmallNet().eval(), torch.rand(1, 3, 8, 8)
    maps = FeatureMaps().frame(context(model, x))
    assert [m.node for m in maps.layers] == ["features.0", "features.3"]  # its conv layers, by dotted name
    np.testing.assert_allclose(maps.layers[0].maps, model.features[0](x)[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ("classifier", "linear") in maps.layer_choices and maps.predictions[0][0] in CLASSES
    picked = FeatureMaps()
    picked.configure(FeatureMapSettings(layers=("features.1",)))
    assert [m.node for m in picked.frame(context(model, x)).layers] == ["features.1"]

    filters = Filters().frame(context(model, x))
    assert filters.conv_layers == ("features.0", "features.3") and filters.filters.colour  # RGB: colour patches

    probe = AttributionProbe()
    probe.configure(AttributionSettings(("saliency", "gradcam"), target=2))
    frame = probe.frame(context(model, x)).run_to_end()
    assert [m.error for m in frame.maps] == [None, None] and frame.maps[1].layer == "features.3"
    np.testing.assert_allclose(frame.maps[0].heat, attribute(model, x, "saliency", 2).heat(), rtol=1e-5, atol=1e-7)


def test_gradient_norms_and_histograms_of_a_module_lumen_did_not_build():
    torch.manual_seed(0)
    model, x = SmallNet(), torch.rand(2, 3, 8, 8)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    grads = GradientNorms().frame(context(model, x[:1]))
    assert grads.layers == ("features.0", "features.3", "classifier")
    expected = torch.linalg.vector_norm(
        torch.cat([model.classifier.weight.grad.reshape(-1), model.classifier.bias.grad])
    )
    assert grads.norms[-1] == float(expected)
    histograms = Histograms().frame(context(model, x[:1]))
    assert [h.node for h in histograms.weights] == ["features.0", "features.3", "classifier"]
    assert [h.node for h in histograms.activations] == ["features.0", "features.3", "classifier"]
