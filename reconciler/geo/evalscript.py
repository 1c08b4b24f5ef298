"""What an evalscript's `setup()` declares, read well enough to price a job (pure, no I/O).

Step: planning (cost). The offline PU estimate (cost.py) depends on what the evalscript V3 asks
for in `setup()`: the input bands, the outputs and their sample types, and the mosaicking. This is
not a JavaScript interpreter. It finds `function setup() { … return {…} }` (or `setup = () => ({…})`)
and reads the object literal it returns: strings in either quote, numbers, arrays, objects, trailing
commas, comments, and the constants `Mosaicking.X` / `SampleType.X`. Anything computed (a variable,
a call, a spread, a template with `${}`), or no `setup()` at all (evalscript V1/V2), gives
`UNPARSED`: conservative defaults marked `parsed=False`. It never raises, so a plan always shows a
figure, flagged as a guess, until the service's own analysis replaces it.

Defaults the API applies and we apply too: an output without `id` is "default", without `bands` has
1 band, without `sampleType` is "AUTO"; no `mosaicking` means SIMPLE. `input_bands` keeps the names
as written (including `dataMask`); cost.py decides what counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MOSAICKINGS = frozenset({"SIMPLE", "ORBIT", "TILE"})
SAMPLE_TYPES = frozenset({"AUTO", "INT8", "UINT8", "INT16", "UINT16", "FLOAT32"})


@dataclass(frozen=True)
class OutputInfo:
    id: str = "default"
    bands: int = 1
    sample_type: str = "AUTO"


@dataclass(frozen=True)
class EvalscriptInfo:
    input_bands: tuple[str, ...]
    outputs: tuple[OutputInfo, ...]
    mosaicking: str
    parsed: bool


# When setup() cannot be read, assume the dearer choice wherever there is one: several samples
# (ORBIT) and 32-bit output. The band count is unknowable; cost.py prices it at the PU baseline.
UNPARSED = EvalscriptInfo(
    input_bands=(),
    outputs=(OutputInfo("default", 1, "FLOAT32"),),
    mosaicking="ORBIT",
    parsed=False,
)


class _Unreadable(Exception):
    """The setup() literal uses something this reader does not evaluate."""


@dataclass(frozen=True)
class _Constant:
    """A bare or dotted name used as a value, e.g. `Mosaicking.ORBIT`."""

    name: str

    @property
    def member(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def parse_evalscript(source: str | None) -> EvalscriptInfo:
    """What `setup()` declares; `UNPARSED` (parsed=False) when it cannot be read. Never raises."""
    if not isinstance(source, str):
        return UNPARSED
    try:
        tokens = _TokenStream(source)
        if not tokens.seek_setup():
            return UNPARSED
        setup = tokens.value()
        if not isinstance(setup, dict):
            raise _Unreadable("setup() does not return an object literal")
        return EvalscriptInfo(
            input_bands=_input_bands(setup),
            outputs=_outputs(setup),
            mosaicking=_mosaicking(setup),
            parsed=True,
        )
    except (_Unreadable, RecursionError):
        return UNPARSED


# --- interpreting the literal -------------------------------------------------------------------


def _input_bands(setup: dict) -> tuple[str, ...]:
    if "input" not in setup:
        raise _Unreadable("setup() has no input")
    spec = setup["input"]
    items = spec if isinstance(spec, list) else [spec]
    bands: list[str] = []
    for item in items:
        if isinstance(item, str):
            bands.append(item)
        elif isinstance(item, dict):
            # Data fusion lists one object per data source; each source's bands are read separately.
            names = item.get("bands", [])
            names = names if isinstance(names, list) else [names]
            if not all(isinstance(n, str) for n in names):
                raise _Unreadable("input bands are not all strings")
            bands.extend(names)
        else:
            raise _Unreadable("input is neither band names nor objects with bands")
    return tuple(bands)


def _outputs(setup: dict) -> tuple[OutputInfo, ...]:
    if "output" not in setup:
        raise _Unreadable("setup() has no output")
    spec = setup["output"]
    items = spec if isinstance(spec, list) else [spec]
    if not items or not all(isinstance(i, dict) for i in items):
        raise _Unreadable("output is not an object or a list of objects")
    return tuple(_output(item) for item in items)


def _output(item: dict) -> OutputInfo:
    output_id = item.get("id", "default")
    bands = item.get("bands", 1)
    sample_type = item.get("sampleType", "AUTO")
    if isinstance(sample_type, _Constant):
        sample_type = sample_type.member
    if not isinstance(output_id, str):
        raise _Unreadable("output id is not a string")
    if isinstance(bands, bool) or not isinstance(bands, (int, float)) or bands != int(bands) or bands < 1:
        raise _Unreadable("output bands is not a positive integer")
    if not isinstance(sample_type, str) or sample_type.upper() not in SAMPLE_TYPES:
        raise _Unreadable("unknown sampleType")
    return OutputInfo(output_id, int(bands), sample_type.upper())


def _mosaicking(setup: dict) -> str:
    value = setup.get("mosaicking", "SIMPLE")
    if isinstance(value, _Constant):
        value = value.member
    if not isinstance(value, str) or value.upper() not in MOSAICKINGS:
        raise _Unreadable("unknown mosaicking")
    return value.upper()


# --- reading the literal ------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|//[^\n]*|/\*.*?\*/)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\$]|\\.)*`)
    | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*)*)
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = {"true": True, "false": False, "null": None}


def _scan(source: str) -> Iterator[tuple[str, str]]:
    # Lazy on purpose: only setup() is read, so the rest of the script (regex literals and all)
    # is never tokenized once its object literal is complete.
    for match in _TOKEN.finditer(source):
        if match.lastgroup != "skip":
            yield match.lastgroup or "punct", match.group()


class _TokenStream:
    def __init__(self, source: str):
        self._tokens = _scan(source)
        self._ahead: list[tuple[str, str]] = []

    def peek(self) -> tuple[str, str]:
        if not self._ahead:
            self._ahead.append(next(self._tokens, ("end", "")))
        return self._ahead[0]

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self._ahead.pop(0)
        return token

    def expect(self, *texts: str) -> None:
        for text in texts:
            if self.take()[1] != text:
                raise _Unreadable(f"expected {text!r}")

    def seek_setup(self) -> bool:
        """Move to the start of the value setup() returns; False when there is no setup()."""
        previous = ("end", "")
        while (token := self.take())[0] != "end":
            if token == ("name", "setup") and previous == ("name", "function"):
                self.expect("(", ")", "{")
                return self._seek_return()
            if token == ("name", "setup") and self.peek()[1] == "=":
                return self._seek_assigned_setup()
            previous = token
        return False

    def _seek_assigned_setup(self) -> bool:
        self.expect("=")
        if self.peek() == ("name", "function"):
            self.expect("function", "(", ")", "{")
            return self._seek_return()
        self.expect("(", ")", "=", ">")
        if self.peek()[1] == "{":
            self.take()
            return self._seek_return()
        return True  # a concise arrow body: the value follows directly

    def _seek_return(self) -> bool:
        while (token := self.take())[0] != "end":
            if token == ("name", "return"):
                return True
        return False

    def value(self) -> Any:
        kind, text = self.take()
        if text == "(":
            inner = self.value()
            self.expect(")")
            return inner
        if text == "{":
            return self._object()
        if text == "[":
            return self._array()
        if text == "-" and self.peek()[0] == "number":
            return -self.value()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            return int(text, 16) if text[:2].lower() == "0x" else float(text)
        if kind == "name":
            return _KEYWORDS[text] if text in _KEYWORDS else _Constant(re.sub(r"\s+", "", text))
        raise _Unreadable(f"unexpected {text!r}")

    def _object(self) -> dict:
        result: dict[str, Any] = {}
        while self.peek()[1] != "}":
            kind, key = self.take()
            if kind == "string":
                key = key[1:-1]
            elif kind not in ("name", "number") or "." in key:
                raise _Unreadable(f"unexpected key {key!r}")
            self.expect(":")
            result[key] = self.value()
            if self.peek()[1] != "}":
                self.expect(",")
        self.take()
        return result

    def _array(self) -> list:
        result: list[Any] = []
        while self.peek()[1] != "]":
            result.append(self.value())
            if self.peek()[1] != "]":
                self.expect(",")
        self.take()
        return result
