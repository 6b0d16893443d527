"""How the form's cards say sizes: parameter counts (832K, 134.5M) and bytes (23.1 MiB)."""

from __future__ import annotations


def format_count(n: int | float) -> str:
    """Parameters as people say them: 832K, 134.5M, 1.2B."""
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{n:.0f}"


def format_bytes(n: int | float) -> str:
    """Memory in binary units: 512 B, 23.1 MiB, 1.5 GiB."""
    n = float(n)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
