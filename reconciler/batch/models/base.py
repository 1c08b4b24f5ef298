"""The three kinds of model the wire format is built from, and the error a rule raises when it has a
hint to give. Kept apart from `common` so that `datasets` and `common` can both build on them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class CreateModel(BaseModel):
    """Part of a body we send: strict types, unknown fields rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class OpenModel(BaseModel):
    """Part of a body we send whose declared fields are checked and whose other fields pass through."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)


class LiveModel(BaseModel):
    """An object the service returns: lenient, unknown fields kept."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


def problem(kind: str, message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error of type `kind` whose `ctx.hint` the manifest diagnostics show (the sandbox
    shows the message alone). The message is passed as a value, never as a template, so text quoted
    from the input cannot be read as a placeholder."""
    return PydanticCustomError(kind, "{message}", {"message": message, "hint": hint})
