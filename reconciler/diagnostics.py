"""Diagnostics: findings about user input, collected as values and rendered only by `render/`.

A diagnostic names the file, the 1-based line and column, the field path inside the document
and what is expected, like a compiler message (Terraform's `tfdiags` is the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.path, self.message)


def format_path(parts: tuple) -> str:
    """`("spec", "request", "data", 0, "type")` → `spec.request.data[0].type`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
