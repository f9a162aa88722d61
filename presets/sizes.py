"""Sizes as upstream writes them ("4.8GB", "~23GB", "9.31GB (9536MB)") and as people read them."""

import re

UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
# The largest byte count the database holds (a BigIntegerField: a signed 64-bit integer).
MAX_BYTES = 2**63 - 1
SIZE_RE = re.compile(r"^~?\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)\b(?:\s*\(.*\))?$", re.IGNORECASE)


def parse_size(text):
    """Approximate byte count of an upstream size string, or None when it is empty.

    Raises ValueError for text that is not a size, or one too large to store, so the loader
    and the admin can name the bad field.
    """
    if text is None or str(text).strip() == "":
        return None
    match = SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"not a size like '4.8GB': {text!r}")
    number, unit = match.groups()
    size = float(number) * UNITS[unit.upper()]
    if size >= MAX_BYTES + 1:  # 2**63 is exact as a float; MAX_BYTES is not
        largest = MAX_BYTES // UNITS[unit.upper()]
        raise ValueError(f"{text!r} is too large: at most {largest}{unit.upper()}")
    return int(size)


def human_size(num_bytes):
    """'4.8 GB' for 5153960755: what the pages and CLI show."""
    if num_bytes is None:
        return ""
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
