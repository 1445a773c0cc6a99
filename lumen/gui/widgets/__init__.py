"""Small widgets and pyqtgraph items that more than one pane or view can use."""
