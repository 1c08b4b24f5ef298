"""Conformance of HTTP responses to the official Batch API OpenAPI document
(`shared/reference/batch-openapi.yaml`, OpenAPI 3.1, schemas in JSON Schema 2020-12).

`Conformance` loads the document, neutralises exactly the four source errors listed in
BATCH_API.md ("Known errors in batch-openapi.yaml") and nothing else, maps a concrete URL to its
path template and operation, and validates a response (method, URL, status, body) against what
the document declares for that operation and status. `Ledger` records which (operation, status)
pairs were validated and collects every disagreement, so one run reports all of them.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

ROOT = Path(__file__).resolve().parent.parent


def document_path(environ: dict[str, str], root: Path = ROOT) -> Path:
    """Where the official document is: `BATCH_OPENAPI` when set, else beside the repository
    (`../shared/reference/batch-openapi.yaml`): it is reference material, not part of the project."""
    named = environ.get("BATCH_OPENAPI")
    return Path(named) if named else root.parent / "shared" / "reference" / "batch-openapi.yaml"


def missing_reason(path: Path, environ: dict[str, str]) -> str:
    """Why the conformance tests are skipped when `path` does not exist."""
    where = "named by BATCH_OPENAPI" if environ.get("BATCH_OPENAPI") else "beside the repository"
    return (f"the Batch API OpenAPI document {where} is missing ({path}); "
            "set BATCH_OPENAPI to a copy of batch-openapi.yaml to run the conformance tests")


DOCUMENT = document_path(os.environ)
DOCUMENT_URI = "urn:sentinel-hub:batch-openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Nonconformance(AssertionError):
    """A response the document does not allow: undeclared path, method or status, or a body that fails."""


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str  # e.g. /api/v2/batch/process/{taskId}
    operation_id: str
    responses: dict[str, str | None]  # status → pointer of its JSON body schema; None: no body; "": not JSON

    @property
    def api(self) -> str:
        return self.template.split("/")[2]  # "v1" | "v2"


class _JsonConstructor(SafeConstructor):
    """Keeps YAML timestamps (in `example`s) as the strings JSON would carry."""


_JsonConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def load_document(path: Path = DOCUMENT) -> dict:
    """The document as plain JSON data (its first line is a comment, which YAML skips)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _JsonConstructor
    with path.open(encoding="utf-8") as stream:
        return json.loads(json.dumps(yaml.load(stream)))  # proves it is JSON data


def neutralise_known_errors(document: dict) -> dict:
    """A copy with the four source errors of BATCH_API.md neutralised. Each fix first checks that the
    error is still there, so a corrected document makes this fail instead of silently relaxing more."""
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]

    # (1) The dataset `oneOf` is ambiguous: BYOCDataset's `type` is any string, so `sentinel-2-l2a`
    # matches both S2L2ADataset and BYOCDataset and `oneOf` rejects every valid dataset. Read it as anyOf.
    items = schemas["ProcessRequestInputData"]["items"]
    assert set(items) == {"oneOf"}, items
    items["anyOf"] = items.pop("oneOf")

    # (2) The response `identifier` is an enum of placeholders (`<identifier>`, `userdata`), while any
    # evalscript output id is allowed. Drop the enum and keep `type: string`.
    for name in ("ProcessRequestOutputBatchResponse", "ProcessRequestOutputBatchV2Response"):
        identifier = schemas[name]["properties"]["identifier"]
        assert identifier.pop("enum") == ["<identifier>", "userdata"], name

    # (3) BatchV2RasterOutput requires `group`, a property it does not have (it belongs to Zarr output).
    raster = schemas["BatchV2RasterOutput"]
    assert "group" in raster["required"] and "group" not in raster["properties"]
    raster["required"] = [r for r in raster["required"] if r != "group"]

    # (4) S3BucketInfo spells `region` as `regin`. Give the property its real name (same schema).
    s3 = schemas["S3BucketInfo"]["properties"]
    assert "regin" in s3 and "region" not in s3
    s3["region"] = s3.pop("regin")
    return document


def format_checker() -> FormatChecker:
    """Asserts the formats the document uses that have a definite meaning: uuid and date-time
    (jsonschema's checkers), uri (RFC 3986: a scheme, then no spaces) and the OpenAPI integer widths."""
    checker = FormatChecker(formats=("uuid", "date-time"))
    assert set(checker.checkers) == {"uuid", "date-time"}, "date-time needs the rfc3339-validator package"

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S*", value) is not None

    for name, bits in (("int16", 16), ("int32", 32), ("int64", 64)):
        def _width(value: object, bits: int = bits) -> bool:
            in_range = isinstance(value, int) and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
            return in_range or not isinstance(value, int) or isinstance(value, bool)
        checker.checks(name)(_width)
    return checker


class Conformance:
    """Validates responses against the document, its known errors neutralised (unless told not to:
    the tests of the harness show what each one rejects)."""

    def __init__(self, document: dict | None = None, *, neutralise: bool = True):
        document = document if document is not None else load_document()
        self.document = neutralise_known_errors(document) if neutralise else document
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.format_checker = format_checker()
        self._validators: dict[str, Draft202012Validator] = {}
        self._locations = dict(_locations(self.document))  # id of each schema object → its `#/…` pointer
        self.operations = [self._operation(template, method, item)
                           for template, path_item in self.document["paths"].items()
                           for method, item in path_item.items() if method in METHODS]
        self._templates = sorted(
            {(op.template, _template_pattern(op.template)) for op in self.operations},
            key=lambda pair: (-_literal_segments(pair[0]), pair[0]))  # concrete paths before templated ones

    def _operation(self, template: str, method: str, item: dict) -> Operation:
        """The operation, each declared status mapped to the pointer of its JSON body schema (None: no body)."""
        bodies = {}
        for code, response in item["responses"].items():
            pointer = "#/" + "/".join(_escape(p) for p in ("paths", template, method, "responses", str(code)))
            while "$ref" in response:  # responses shared through `#/components/responses/…`
                pointer = response["$ref"]
                response = self.registry.resolver(DOCUMENT_URI).lookup(pointer).contents
            content = response.get("content")
            bodies[str(code)] = None if content is None else (
                pointer + "/content/application~1json/schema" if "application/json" in content else "")
        return Operation(method.upper(), template, item["operationId"], bodies)

    def template_of(self, url: str) -> str:
        """The path template a concrete URL or path (query and host ignored) falls under."""
        path = urlsplit(url).path.rstrip("/") or "/"
        for template, pattern in self._templates:
            if pattern.fullmatch(path):
                return template
        raise Nonconformance(f"{path}: no path of the document matches")

    def operation(self, method: str, url: str) -> Operation:
        """The document's operation for `METHOD url`."""
        template = self.template_of(url)
        for op in self.operations:
            if op.template == template and op.method == method.upper():
                return op
        raise Nonconformance(f"{method.upper()} {template}: the document declares no such operation")

    def operations_of(self, api: str) -> set[str]:
        """The operationIds of one API version ("v1" or "v2")."""
        return {op.operation_id for op in self.operations if op.api == api}

    def schema_pointer(self, op: Operation, status: int) -> str | None:
        """The JSON pointer of the response's JSON schema, or None when the document gives no body."""
        if str(status) not in op.responses:
            raise Nonconformance(f"{op.operation_id} ({op.method} {op.template}): status {status} is not declared "
                                 f"(declared: {', '.join(op.responses)})")
        pointer = op.responses[str(status)]
        if pointer == "":
            raise Nonconformance(f"{op.operation_id} {status}: the document declares no application/json body")
        return pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        """A 2020-12 validator for the schema at `pointer` (e.g. `#/components/schemas/BatchTile`)."""
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{DOCUMENT_URI}{pointer}"}, registry=self.registry, format_checker=self.format_checker)
        return self._validators[pointer]

    def problems(self, pointer: str, instance: Any) -> list[str]:
        """Why `instance` fails the schema at `pointer` (empty when it conforms): each failing leaf of
        the error tree (the branches of a failed oneOf/anyOf included) with its place and schema path."""
        found = []
        for error in self.validator(pointer).iter_errors(instance):
            for leaf in _leaves(error):
                where = self._locations.get(id(leaf.schema), "?")
                line = (f"at {leaf.json_path}: {_short(leaf.message)}\n"
                        f"    schema: {where}/{leaf.validator} (path: {'/'.join(map(str, leaf.absolute_schema_path))})")
                if line not in found:
                    found.append(line)
        return found

    def check(self, method: str, url: str, status: int, content_type: str | None, body: bytes) -> Operation:
        """Raises Nonconformance unless the response is one the document allows; returns the operation."""
        op = self.operation(method, url)
        pointer = self.schema_pointer(op, status)
        if status == 204 and body:
            raise Nonconformance(f"{op.operation_id} 204: the body must be empty, got {body[:200]!r}")
        if pointer is None:
            return op  # the document describes no body for this status: nothing more to hold it to
        if (content_type or "").split(";")[0].strip() != "application/json":
            raise Nonconformance(f"{op.operation_id} {status}: Content-Type {content_type!r}, not application/json")
        try:
            instance = json.loads(body, parse_constant=_no_constant)
        except ValueError as e:
            raise Nonconformance(f"{op.operation_id} {status}: the body is not JSON ({e}): {body[:200]!r}") from None
        problems = self.problems(pointer, instance)
        if problems:
            raise Nonconformance(f"{op.operation_id} {status} does not match {pointer}:\n  "
                                 + "\n  ".join(problems) + f"\n  body: {_excerpt(instance)}")
        return op


@dataclass
class Ledger:
    """Every response checked in a session: the (operationId, status) pairs validated and the
    disagreements, kept instead of raised so that one run shows them all (each distinct one once,
    with the first body that showed it and how often it came back)."""

    conformance: Conformance
    validated: set[tuple[str, int]] = field(default_factory=set)
    _failures: dict[str, list] = field(default_factory=dict)

    def check(self, response, expect: int | None = None):
        """Checks a `requests` response against the document (and, first, the status the step expects).
        The pair counts as validated once its operation and status are found, whether the body conforms or not."""
        request = response.request
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{request.method} {request.url}: expected {expect}, got {response.status_code}: "
                                 f"{response.text[:500]}")
        op = None
        try:
            op = self.conformance.operation(request.method, request.url)
            self.conformance.check(request.method, request.url, response.status_code,
                                   response.headers.get("Content-Type"), response.content)
        except Nonconformance as e:
            where = op.template if op else urlsplit(request.url).path
            message = f"{request.method} {where} → {response.status_code}: {e}"
            self._failures.setdefault(message.split("\n  body: ")[0], [message, 0])[1] += 1
        if op is not None and str(response.status_code) in op.responses:
            self.validated.add((op.operation_id, response.status_code))
        return response

    def __repr__(self) -> str:
        return f"Ledger({len(self.validated)} (operation, status) pairs validated, {len(self._failures)} disagreements)"

    @property
    def failures(self) -> list[str]:
        return [message + (f"\n  ({count} responses)" if count > 1 else "")
                for message, count in self._failures.values()]

    def operations(self) -> set[str]:
        return {operation for operation, _ in self.validated}

    def table(self) -> str:
        """The validated statuses per operation, one line each."""
        by_operation: dict[str, list[int]] = {}
        for operation, status in sorted(self.validated):
            by_operation.setdefault(operation, []).append(status)
        return "\n".join(f"{op}: {', '.join(map(str, codes))}" for op, codes in by_operation.items())


def _template_pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _literal_segments(template: str) -> int:
    return sum(1 for segment in template.split("/") if segment and "{" not in segment)


def _locations(node: Any, pointer: str = "#"):
    if isinstance(node, dict):
        yield id(node), pointer
        for key, value in node.items():
            yield from _locations(value, f"{pointer}/{_escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _locations(value, f"{pointer}/{index}")


def _leaves(error: ValidationError):
    if not error.context:
        yield error
    for child in error.context:
        yield from _leaves(child)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _excerpt(instance: Any, limit: int = 2000) -> str:
    """The body as JSON, long strings (evalscripts) cut short."""
    def cut(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: cut(value) for key, value in node.items()}
        if isinstance(node, list):
            return [cut(value) for value in node]
        return node[:40] + "…" if isinstance(node, str) and len(node) > 60 else node

    text = json.dumps(cut(instance), sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"
