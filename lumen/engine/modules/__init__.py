"""Lumen's own ``nn.Module`` classes, for the layer types torch has no class for.

Each file imports only the standard library and torch, and each class takes explicit keyword arguments,
so the Python exporter (``engine.io.export``) copies a whole file into an exported model and it runs
without Lumen. Keep it that way: no imports from ``engine`` (not even another file here), and no top-level
name defined in two files (``tests/engine/test_layer_registry.py`` checks both).
"""
