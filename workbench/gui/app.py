"""Entry point of the window: ``workbench`` (no arguments), ``workbench gui`` or ``python -m workbench.gui``."""

from __future__ import annotations

import argparse
import os
import sys
import time

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

ORGANIZATION = "DistillationWorkbench"
APPLICATION = "workbench"
SETTINGS_ENV = "WORKBENCH_SETTINGS_DIR"

PROCESS_START = time.perf_counter()  # for scripts/bench_gui.py: start to window shown


def configure_settings() -> None:
    """Name the application for QSettings; ``$WORKBENCH_SETTINGS_DIR`` keeps them in that folder (tests, demos)."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    folder = os.environ.get(SETTINGS_ENV)
    if folder:
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workbench gui", description="Open the Distillation Workbench window.")
    parser.add_argument(
        "config",
        nargs="?",
        help="preset name (toy, toy-quick, ...) or .toml file; default: the last one used, else toy",
    )
    parser.add_argument(
        "--theme", choices=("dark", "light"), help="colour theme (default: the last one used, else dark)"
    )
    parser.add_argument("--presentation", action="store_true", help="start in presentation mode")
    parser.add_argument("--fresh", action="store_true", help="ignore the remembered window layout and configuration")
    parser.add_argument(
        "--quit-after",
        type=float,
        metavar="SECONDS",
        help="close the window after this many seconds (a smoke test for CI)",
    )
    return parser.parse_args(argv)


def initial_config(name_or_path: str | None):
    """The config to open with: the one named, else None (remembered, then ``toy``, are tried by the window)."""
    from workbench.config.presets import load_config

    return load_config(name_or_path, validate=False) if name_or_path else None  # the form marks bad values


def main(argv: list[str] | None = None) -> int:
    """Create the application and the window, and run the event loop."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    from workbench.gui.background.gc_on_gui_thread import install

    install(app)  # before any worker thread exists
    configure_settings()
    app.setApplicationDisplayName("Distillation Workbench")

    from workbench.errors import ConfigError
    from workbench.gui import theme
    from workbench.gui.window.main_window import MainWindow

    settings = QSettings()
    theme_name = args.theme or settings.value("theme", "dark")
    theme.apply_theme(app, theme_name if theme_name in theme.THEMES else "dark")

    try:
        config = initial_config(args.config)
    except ConfigError as err:
        print(f"error: {err.what}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return 2
    # With no config named, the window reopens the last one used, else the toy preset.
    window = MainWindow(config, base=args.config or "toy", restore_settings=not args.fresh)
    window.set_theme(theme.current_theme())
    window.show()
    if args.presentation:
        window.set_presentation(True)
    if args.quit_after is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
