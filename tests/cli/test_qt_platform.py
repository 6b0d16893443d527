"""A fresh Linux desktop: the window says which X11 libraries are missing instead of Qt aborting."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

from workbench.qt_platform import install_commands, missing_xcb_libraries, platform_problem, xcb_plugin_files

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxkbcommon-x11.so.0 => not found
"""


def test_the_loader_is_asked_which_libraries_the_x11_plugin_lacks():
    missing = missing_xcb_libraries(ldd=lambda path: LDD_OUTPUT, loadable=lambda soname: soname != "libxcb-cursor.so.0")
    assert missing == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"]
    apt, dnf = install_commands(missing)
    assert apt == "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxkbcommon-x11-0"
    assert dnf == "sudo dnf install libxkbcommon-x11 xcb-util-cursor xcb-util-wm"


def test_what_the_real_loader_says_here_is_true():
    assert [p.name for p in xcb_plugin_files()][:1] == ["libqxcb.so"]  # found without importing Qt
    for soname in missing_xcb_libraries():
        try:
            ctypes.CDLL(soname)
        except OSError:
            continue
        raise AssertionError(f"{soname} was reported missing but loads")


def test_the_problem_is_one_sentence_and_a_hint_and_only_where_qt_would_abort():
    display = {"DISPLAY": ":0"}
    message, hint = platform_problem(display, "linux", missing=["libxcb-icccm.so.4"])
    assert "libxcb-icccm.so.4" in message and "\n" not in message
    assert "apt-get install libxcb-icccm4" in hint and "dnf install xcb-util-wm" in hint and "offscreen" in hint
    assert platform_problem(display, "linux", missing=[]) is None
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", missing=["libxcb.so.1"]) is None
    assert platform_problem(display, "darwin", missing=["libxcb.so.1"]) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert platform_problem(wayland, "linux", missing=["libxcb.so.1"]) is None
    message, hint = platform_problem({}, "linux", missing=[])
    assert "no display" in message and "xvfb-run" in hint


def test_workbench_without_a_display_exits_with_the_sentence_not_a_qt_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["WORKBENCH_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "gui"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stderr.splitlines()[0] == "error: there is no display to open the window on (DISPLAY is not set)"
    assert done.stderr.splitlines()[1].startswith("hint: ")
