"""Lumen's Qt window: renders engine state and sends it commands; no heavy torch work on this thread."""
