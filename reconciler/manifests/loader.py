"""Step 2 of loading manifests: paths → validated `Manifest`s, or diagnostics that say where and why.

Every problem is collected (never fail-fast) as a `Diagnostic` with file, line, column and field
path. A manifest is returned only when its document has no error, so callers can trust it.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.batch.checks import Finding, check_parts, check_v1, check_v2
from reconciler.canonical import desired
from reconciler.diagnostics import Diagnostic, Severity, format_path
from reconciler.manifests import envrefs
from reconciler.manifests.cache import LoadCache
from reconciler.manifests.files import (
    DEFAULT_PATHS,
    MAX_EVALSCRIPT_BYTES,
    MAX_FILE_BYTES,
    RULE_HINT,
    decode,
    discover,
    escape,
    read_bytes,
    read_text,
)
from reconciler.manifests.manifest import NOT_SENSITIVE, Manifest, Policy, in_body
from reconciler.manifests.messages import translate
from reconciler.manifests.schema import BatchJob, RequestV1, StoredHeader
from reconciler.manifests.yamldoc import Document, YamlProblem, read_documents
from reconciler.redaction import scrub
from reconciler.strings import StringPool

_TYPE_ERRORS = {"string_type", "int_type", "float_type", "bool_type", "dict_type", "list_type", "model_type"}
_OTHER_API_FIELDS = {
    "v2": ({"tilingGrid", "bucketName", "zarrOutput"}, "it belongs to the v1 API; set `spec.api: v1`, or use v2's `input`/`output`"),
    "v1": ({"input", "instanceType"}, "it belongs to the v2 API; remove `spec.api: v1`, or use v1's `tilingGrid`/`output`"),
}


@dataclass
class LoadResult:
    manifests: list[Manifest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    deferred: list[str] = field(default_factory=list)  # valid as far as unresolved ${env:…} values allow
    cached: int = 0  # files whose outcome came from the load cache

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def load(
    paths: Sequence[str | os.PathLike] = (), *, resolve_env: bool = False, environ: Mapping[str, str] | None = None,
    use_cache: bool = False, warn_unset: bool = False,
) -> LoadResult:
    """Load every manifest under `paths` (files or directories; default `manifests/`). `use_cache`
    lets the load cache stand in for unchanged files: for `validate` and `plan`, never for what
    `apply` sends (reconciler.manifests.cache). Unless `resolve_env`, `${env:…}` references stay as
    written; `warn_unset` then warns about each whose variable `environ` lacks (plan and apply need it)."""
    result = LoadResult()
    files = discover(paths or DEFAULT_PATHS, result.diagnostics)
    result.files = len(files)
    given = os.environ if environ is None else environ
    env = _Env(given if resolve_env or warn_unset else None, resolve_env)
    evalscripts: dict[str, str | YamlProblem | None] = {}
    cache = LoadCache.open(paths or DEFAULT_PATHS, enabled=use_cache)
    strings = StringPool()  # one for every file's documents (yamldoc.read_documents)
    loaded = [item for found in files
              for item in _load_file(found, env, evalscripts, strings, result.diagnostics, cache)]
    cache.save()
    result.cached = cache.hits
    _check_unique_names(loaded, result)
    result.diagnostics.sort(key=Diagnostic.sort_key)
    return result


@dataclass(frozen=True)
class _Env:
    """The environment references are checked against (None: not at all), and whether they are resolved."""

    environ: Mapping[str, str] | None
    resolve: bool


def _load_file(found, env: _Env, evalscripts, strings: StringPool, diagnostics: list[Diagnostic],
               cache: LoadCache) -> list[_Loaded]:
    file, root = found
    try:
        raw = read_bytes(file, MAX_FILE_BYTES, "manifest")
        stored = cache.get(file, raw, lambda key: _read_evalscript(key, root, evalscripts))
        if stored is not None and (loaded := _from_stored(file, stored, evalscripts)) is not None:
            cache.used(file, functools.partial(_stored_forms, loaded))
            return loaded
        text = decode(raw, "manifest")
        documents = read_documents(text, strings)
    except YamlProblem as e:
        diagnostics.append(Diagnostic(file, e.line, e.column, "", e.message, e.hint))
        return []
    if not documents:
        diagnostics.append(Diagnostic(file, 1, 1, "", "the file holds no manifest", "remove it or add a BatchJob"))
        return []
    before = len(diagnostics)
    unscanned = not envrefs.may_refer(text)
    loaded = [_load_document(document, file, root, env, evalscripts, diagnostics, unscanned) for document in documents]
    kept = [(item.index, item.manifest) for item in loaded if item.manifest is not None and not item.manifest.sensitive]
    if len(diagnostics) == before and len(kept) == len(loaded):
        scripts = {key: evalscripts[key] for _, manifest in kept if (key := _script_key(manifest))}
        cache.put(file, raw, scripts, functools.partial(_stored_forms, loaded))
    return loaded


def _script_key(manifest: Manifest) -> str | None:
    """The key `_read_evalscript` reads the manifest's evalscript file under; None when inline."""
    name = manifest.evalscript_file
    return os.path.join(os.path.dirname(manifest.file), name) if name is not None else None


def _stored_forms(loaded: list[_Loaded]) -> list[list[Any]]:
    """What the load cache keeps of a file whose every document loaded to a manifest."""
    return [_to_stored(item.index, item.manifest) for item in loaded if item.manifest is not None]


def _to_stored(index: int, manifest: Manifest) -> list[Any]:
    """A valid document (the `index`th of its file) as plain data for the load cache; a file's
    evalscript is left out of the body (it is stored once, as the file it is)."""
    script = _script_key(manifest)
    body = manifest.body
    if script is not None:
        body = {**body, "processRequest": {k: v for k, v in body["processRequest"].items() if k != "evalscript"}}
    return [index, manifest.line, manifest.header(), body, script, list(manifest.desired)]


def _from_stored(file: str, stored: list, evalscripts: dict) -> list[_Loaded] | None:
    """The documents the load cache kept for `file`; None when any is not what a valid entry holds.
    The entry is bound to the file's bytes (and its evalscripts') by their digests, which prove
    them unchanged since this code validated them: only the header is checked again, by its
    model, and the request is taken as it was stored (a planted entry can make a plan show
    something else, never what apply sends: apply reads the files afresh)."""
    try:
        return [_stored_document(file, document, evalscripts) for document in stored]
    except Exception:  # noqa: BLE001 — an entry is never trusted: whatever is wrong with it, the file is read afresh
        return None


def _stored_document(file: str, stored: list, evalscripts: dict) -> _Loaded:
    index, line, job, body, script, (digest, spec_hash) = stored
    if not (type(index) is int and type(line) is int and type(digest) is str and type(spec_hash) is str):
        raise ValueError("not a stored document")
    if script is not None:  # the cache checked that the file still holds what the entry was made with
        text = evalscripts[script]
        if not isinstance(text, str):
            raise ValueError("its evalscript cannot be read")
        body = {**body, "processRequest": {**body["processRequest"], "evalscript": text}}
    if type(body) is not dict or type(body.get("processRequest")) is not dict:
        raise ValueError("not a create body")
    header = StoredHeader.model_validate(job)
    spec, policy = header.spec, header.spec.policy
    manifest = Manifest(header.metadata.name, spec.api, spec.state, spec.description,
                        Policy(policy.maxRestarts, policy.maxCostPU, policy.onSpecChange, policy.onRemove),
                        file, line, body, NOT_SENSITIVE, (digest, spec_hash), dict(header.metadata.labels),
                        spec.evalscriptFile)
    return _Loaded(file, index, line, manifest.name, manifest)


@dataclass
class _Loaded:
    """One document's outcome: its name (when it has one) and the manifest (when it is valid)."""

    file: str
    index: int  # the document's position in its file
    line: int  # where the document starts
    name: str | None
    manifest: Manifest | None
    deferred: bool = False

    def name_at(self) -> tuple[int, int]:
        """Line and column of metadata.name. Only a name used twice needs them, so the file is
        read again then, rather than every document (and its text) kept until names are checked."""
        try:
            document = read_documents(read_text(Path(self.file), MAX_FILE_BYTES, "manifest"))[self.index]
        except (YamlProblem, IndexError):  # changed since it was loaded
            return self.line, 1
        return document.locate(("metadata", "name"))


@dataclass
class _Reporter:
    document: Document
    file: str
    out: list[Diagnostic]
    errors: int = 0

    def __call__(self, path: tuple, message: str, hint: str | None = None, at_key: bool = False, warning: bool = False):
        line, column = self.document.locate(path, at_key)
        self.errors += not warning
        severity = Severity.WARNING if warning else Severity.ERROR
        hint = scrub(hint) if hint else hint  # a message never quotes a resolved ${env:…} value
        self.out.append(Diagnostic(self.file, line, column, format_path(path), scrub(message), hint, severity))


def _load_document(doc: Document, file: str, root: str, env: _Env, evalscripts, out: list[Diagnostic],
                   unscanned: bool = False) -> _Loaded:
    report = _Reporter(doc, file, out)
    if not isinstance(doc.data, dict):
        report((), "a manifest is a mapping with apiVersion, kind, metadata and spec")
        return _Loaded(file, doc.index, doc.line, None, None)
    data, refs = (doc.data, envrefs.EnvScan()) if unscanned else envrefs.scan(doc.data, env.environ, env.resolve)
    for path, message, hint in refs.problems:
        report(path, message, hint)
    for path, variable in refs.unset:
        report(path, f"environment variable {variable} is not set",
               f"plan and apply need it: export {variable} before running them",
               warning=True)
    for path in sorted(refs.literal_secrets, key=str):
        report(path, "a credential is written in the manifest", "use ${env:NAME} so it stays out of git", warning=True)
    context = {"unresolved": refs.unresolved}
    job = _validate(data, refs, context, report)
    body = _body_with_evalscript(data, file, root, evalscripts, report)
    at = ("spec", "request")
    for f in _findings(job, data, body, context):
        if (*at, *f.path) not in refs.unresolved:
            report((*at, *f.path), f.message, f.hint)
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) and isinstance(metadata.get("name"), str) else None
    manifest = None
    if job is not None and body is not None and not report.errors:  # valid
        manifest = _manifest(job, file, doc.line, body, frozenset(refs.sensitive) or NOT_SENSITIVE)
    deferred = manifest is None and not report.errors  # only ${env:…}-dependent errors: never dropped silently
    return _Loaded(file, doc.index, doc.line, name, manifest, deferred)


def _manifest(job: BatchJob, file: str, line: int, body: dict, sensitive: frozenset[tuple]) -> Manifest:
    return _plain(job, file, line, body, sensitive, desired(job.spec.api, body, in_body(sensitive)))


def _plain(job: BatchJob, file: str, line: int, body: dict, sensitive: frozenset[tuple],
           digests: tuple[str, str]) -> Manifest:
    """The manifest as plain data. The validated model has done its work and is not kept: what is
    sent is `body`, and keeping both would double what 10,000 manifests hold in memory."""
    spec, policy = job.spec, job.spec.policy
    return Manifest(job.metadata.name, spec.api, spec.state, spec.description,
                    Policy(policy.maxRestarts, policy.maxCostPU, policy.onSpecChange, policy.onRemove),
                    file, line, body, sensitive, digests, dict(job.metadata.labels), spec.evalscriptFile)


def _validate(data: dict, refs: envrefs.EnvScan, context: dict, report: _Reporter) -> BatchJob | None:
    """The manifest model; None when it is not valid, with every schema error reported."""
    try:
        return BatchJob.model_validate(data, context=context)
    except ValidationError as e:
        hidden = frozenset(refs.sensitive)
        errors = [translate(error, data, BatchJob, hidden) for error in e.errors(include_url=False)]
    for fe in errors:
        if fe.path in refs.unresolved and fe.kind not in _TYPE_ERRORS and fe.kind != "extra_forbidden":
            continue  # depends on the variable's value: checked with --resolve-env (an unknown field does not)
        hint = fe.hint
        if fe.kind == "extra_forbidden" and fe.path[:2] == ("spec", "request") and len(fe.path) == 3:
            fields, other = _OTHER_API_FIELDS[data["spec"].get("api", "v2")]
            hint = other if fe.path[2] in fields else hint
        if fe.kind in _TYPE_ERRORS and fe.path in refs.unresolved:
            hint = "${env:…} references resolve to strings; write numbers and booleans literally"
        report(fe.path, fe.message, hint, fe.at_key)
    return None


def _findings(job: BatchJob | None, data: dict, body: dict | None, context: dict) -> list[Finding]:
    """The rules of the request beyond its schema: over its model when the manifest is valid, else
    each rule whose parts are valid on their own, so that no error hides another."""
    process = body.get("processRequest") if isinstance(body, dict) else None
    script = process.get("evalscript") if isinstance(process, dict) else None
    script = script if isinstance(script, str) else None
    if job is not None:
        request = job.spec.request
        return check_v1(request, script) if isinstance(request, RequestV1) else check_v2(request, script)
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return []
    api = spec.get("api", "v2")
    return check_parts(api, spec.get("request"), script, context) if api in ("v1", "v2") else []


def _body_with_evalscript(data: dict, file: str, root: str, cache: dict, report: _Reporter) -> dict | None:
    """`spec.request` with the evalscript file read into it (the document's data is this load's
    own: only the two mappings on the way to the evalscript are copied); None when that fails."""
    spec = data.get("spec")
    request = spec.get("request") if isinstance(spec, dict) else None
    process = request.get("processRequest") if isinstance(request, dict) else None
    if not (isinstance(spec, dict) and isinstance(request, dict) and isinstance(process, dict)):
        return None  # the schema errors say why
    inline, name = process.get("evalscript"), spec.get("evalscriptFile")
    if not isinstance(name, str):
        misspelt = any(_names_evalscript(key) for key in (*spec, *process))  # its unknown-field error says it all
        if inline is None and name is None and not misspelt:
            report(("spec", "request", "processRequest", "evalscript"), "no evalscript",
                   "set spec.evalscriptFile, or request.processRequest.evalscript inline", at_key=True)
        return request if inline is not None else None
    at = ("spec", "evalscriptFile")
    if inline is not None:
        report(at, "both spec.evalscriptFile and request.processRequest.evalscript are set", "keep one of them")
        return None
    base = os.path.dirname(file)
    script = _read_evalscript(os.path.join(base, name), root, cache)
    if script is None:
        hint = None if os.path.isabs(name) else f"the path is relative to the manifest's folder ({base or '.'})"
        report(at, f"evalscript file {name} not found", hint)
    elif isinstance(script, YamlProblem):
        report(at, f"evalscript file {name}: {script.message}", script.hint)
    elif not script.strip():
        report(at, f"evalscript file {name} is empty")
    else:
        return {**request, "processRequest": {**process, "evalscript": script}}
    return None


def _names_evalscript(key: object) -> bool:
    """Whether `key` is a misspelling of `evalscriptFile` or `evalscript`."""
    lowered = str(key).lower()
    return key not in ("evalscriptFile", "evalscript") and (
        "evalscript" in lowered or bool(difflib.get_close_matches(lowered, ("evalscript", "evalscriptfile"), cutoff=0.8)))


def _read_evalscript(key: str, root: str, cache: dict[str, str | YamlProblem | None]) -> str | YamlProblem | None:
    """The file's text (None when absent), read once per path as written: 10,000 manifests usually
    name a handful of evalscripts. A path leading out of the repository is a problem, never read."""
    if key not in cache:
        try:
            if not os.path.lexists(key):
                cache[key] = None
            elif (problem := escape(key, root)) is not None:
                cache[key] = YamlProblem(1, 1, f"not read: it {problem}", RULE_HINT)
            elif os.path.isdir(key):
                cache[key] = YamlProblem(1, 1, "is a folder, not a file")
            else:
                cache[key] = read_text(key, MAX_EVALSCRIPT_BYTES, "evalscript")
        except YamlProblem as e:
            cache[key] = e
        except (OSError, ValueError) as e:  # e.g. a NUL in the name
            return YamlProblem(1, 1, f"cannot be read ({e})")
    return cache[key]


def _check_unique_names(loaded: list[_Loaded], result: LoadResult) -> None:
    first: dict[str, _Loaded] = {}
    for item in loaded:
        if item.name is None:
            continue
        earlier = first.setdefault(item.name, item)
        if earlier is not item:
            line, column = item.name_at()
            where = f"{earlier.file}:{earlier.name_at()[0]}"
            result.diagnostics.append(
                Diagnostic(item.file, line, column, "metadata.name", f"the name {item.name!r} is already used at {where}",
                           "names are unique across all manifests")
            )
        elif item.manifest is not None:
            result.manifests.append(item.manifest)
        elif item.deferred:
            result.deferred.append(item.name)
