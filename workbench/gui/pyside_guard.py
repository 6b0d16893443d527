"""Work around a reference leak in PySide6 6.12 on Python < 3.12.

Measured with PySide6 6.12.0 on CPython 3.11: every ``Signal.emit()`` called from Python drops one reference to
``True``, and Python overrides of some void virtuals (``QGraphicsItem.paint`` calling ``super()``,
``resizeEvent``) drop one to ``None``. pyqtgraph does both on every repaint, so after some thousands of
emits or paints the count reaches zero and CPython aborts ("Fatal Python error: bool_dealloc" or
"none_dealloc"), mid-run or at exit. Python 3.12 made these objects immortal; here we do the same by giving them
a reference count that no leak can exhaust. They are never freed anyway, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

_done = False


def protect_singletons() -> bool:
    """Make None/True/False effectively immortal on Python < 3.12 (idempotent); returns whether it acted."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object.
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    _done = True
    return True


protect_singletons()
