"""Will Qt's window system plug-in load here? Asked before Qt is imported (ground floor: no Qt).

On Linux, Qt draws windows through its ``xcb`` plug-in, which needs about a dozen X11 client libraries
that a fresh desktop or a container may lack. When one is missing, Qt prints a paragraph about
"xcb-cursor0" and aborts the process (exit 134) before any of our code can say anything. So the
window's start-up asks the dynamic loader first (``ldd`` on the plug-in, and ``dlopen`` for the one
library Qt opens by itself) and, if something is missing, says in one sentence which libraries and the
one command that installs them.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package)
PACKAGES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}
DLOPENED = ("libxcb-cursor.so.0",)  # Qt 6.5+ opens it at run time, so ldd cannot see that it is missing
HEADLESS = "on a machine without a screen, set QT_QPA_PLATFORM=offscreen or run it under xvfb-run"


def xcb_plugin_files() -> list[Path]:
    """Qt's xcb platform plug-in and the library behind it, from the installed PySide6 (not imported)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return []
    qt = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    candidates = [qt / "plugins" / "platforms" / "libqxcb.so", *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))]
    return [p for p in candidates if p.is_file()][:2]


def _ldd(path: Path) -> str:
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_libraries(ldd=_ldd, loadable=_loadable) -> list[str]:
    """The sonames the xcb plug-in needs that the dynamic loader cannot find, in a stable order."""
    missing: set[str] = set()
    for path in xcb_plugin_files():
        missing.update(re.findall(r"^\s*(\S+)\s+=>\s+not found", ldd(path), flags=re.MULTILINE))
    missing.update(name for name in DLOPENED if not loadable(name))
    return sorted(missing)


def install_commands(missing: list[str]) -> tuple[str, str]:
    """The apt-get and the dnf command that install the packages holding ``missing``."""
    debian = sorted({PACKAGES.get(name, (name, name))[0] for name in missing})
    fedora = sorted({PACKAGES.get(name, (name, name))[1] for name in missing})
    return f"sudo apt-get install {' '.join(debian)}", f"sudo dnf install {' '.join(fedora)}"


def platform_problem(
    environ: dict[str, str] | None = None, platform: str = sys.platform, missing: list[str] | None = None
) -> tuple[str, str] | None:
    """(message, hint) when Qt's window system would abort here, else None. Linux only; other systems
    and other Qt platforms (offscreen, wayland, vnc) are not checked."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").strip().lower()
    wayland_session = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    if (chosen and not chosen.startswith("xcb")) or (not chosen and wayland_session):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("there is no display to open the window on (DISPLAY is not set)", HEADLESS)
    missing = missing_xcb_libraries() if missing is None else missing
    if not missing:
        return None
    apt, dnf = install_commands(missing)
    return (
        f"the window cannot open: Qt's X11 plug-in needs {', '.join(missing)}, which this machine lacks",
        f"install them with `{apt}` (Fedora: `{dnf}`); {HEADLESS}",
    )
