"""Looking inside a model: activations, filters, attribution (saliency, integrated gradients, Grad-CAM, ...),
activation maximization and DeepDream. Qt-free; the GUI, the live probes and the CLI share these modules."""
