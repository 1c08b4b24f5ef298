"""Equal short strings held once. A parser makes every string anew, and a lockfile or a load of
many manifests repeats the same keys and values (an API version, a status, a data type, who ran
it) tens of thousands of times, all held as long as what was read is."""

from __future__ import annotations

from typing import Any

SHORT = 64  # longer texts (evalscripts, descriptions) are seldom equal, and not worth a lookup


class StringPool:
    """Gives back, for a string of at most SHORT characters, the equal one it was given first."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        """`value`, or the equal string this pool already holds; anything else as it is."""
        return self._strings.setdefault(value, value) if type(value) is str and len(value) <= SHORT else value
