"""The Qt workbench window (PySide6 + pyqtgraph). The engine never imports this package."""
