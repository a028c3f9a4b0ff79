"""The `--format` option of `masklet track`: which mask writers to open.

The writers themselves (`MaskWriter`, `VideoMeta`, `create_writers`, `close_writers`, one
class per format) live in `masklet.io.mask_writers`.
"""

from __future__ import annotations

from masklet.errors import InputError
from masklet.io.mask_writers import FORMATS


def parse_formats(text: str) -> tuple[str, ...]:
    """`"davis,overlay"` -> `("davis", "overlay")`; unknown names raise `InputError`."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise InputError(
            f"unsupported output format {text!r}; choose from {', '.join(FORMATS)} "
            "(several: comma-separated)"
        )
    return names
