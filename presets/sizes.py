"""Sizes as upstream writes them ("4.8GB", "~23GB", "9.31GB (9536MB)") and as people read them."""

import re

UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
SIZE_RE = re.compile(r"^~?\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)\b(?:\s*\(.*\))?$", re.IGNORECASE)


def parse_size(text):
    """Approximate byte count of an upstream size string, or None when it is empty.

    Raises ValueError for text that is not a size, so the loader can name the bad field.
    """
    if text is None or str(text).strip() == "":
        return None
    match = SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"not a size like '4.8GB': {text!r}")
    number, unit = match.groups()
    return int(float(number) * UNITS[unit.upper()])


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
