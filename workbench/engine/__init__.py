"""The training engine. It never imports Qt: the GUI and the CLI read its events."""
