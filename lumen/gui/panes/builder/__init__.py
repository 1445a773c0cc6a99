"""The visual model builder's parts: spec edits, layout, the canvas, palette, property editor, undo commands."""
