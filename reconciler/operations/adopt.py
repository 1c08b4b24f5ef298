"""Taking live requests under management without creating anything: `import NAME ID` (one
request, and a manifest written for it) and `state rebuild` (a lost lockfile recovered from the
ownership markers of the live requests)."""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from datetime import datetime, timezone

from reconciler.api.client import BatchClient
from reconciler.api.errors import ApiError, NotFound
from reconciler.api.jobs import JobsApi, LiveJob
from reconciler.canonical import canonical, spec_hash
from reconciler.engine.identity import owner, with_marker, without_marker
from reconciler.errors import ReconcilerError
from reconciler.manifests.manifest import Manifest
from reconciler.redaction import CREDENTIAL_KEYS
from reconciler.state.lease import whoami
from reconciler.state.model import HistoryEntry, JobState
from reconciler.state.operations import LeaseOptions, locked
from reconciler.state.statefile import StateFile

STATE_OF_STATUS = {"CREATED": "created", "ANALYSING": "analysed", "ANALYSIS_DONE": "analysed",
                   "STOPPED": "stopped", "CANCELED": "stopped"}


@dataclass(frozen=True)
class Imported:
    job: LiveJob
    manifest_yaml: str
    secrets: tuple[str, ...]  # env variables the written manifest expects
    marked: bool  # the marker could be added to the live description now
    adopted: bool = True  # recorded in the lockfile (not when only previewed)


def find_live(client: BatchClient, request_id: str, api: str | None) -> LiveJob:
    for version in ([api] if api else ["v2", "v1"]):
        try:
            return JobsApi(client, version).get(request_id)
        except NotFound:
            continue
    raise ReconcilerError(f"no live request {request_id}" + (f" in the {api} API" if api else " in v1 or v2"))


def import_job(client: BatchClient, state: StateFile, name: str, request_id: str, api: str | None,
               lease: LeaseOptions, adopt: bool = True) -> Imported:
    """The manifest of the live request `request_id` as `name`; with `adopt`, also take the
    request under management (lockfile record and marker). Without it nothing is changed: a
    request recorded without its manifest would only be forgotten by the next plan."""
    live = find_live(client, request_id, api)
    if (marked_for := owner(live.description)) not in (None, name):
        raise ReconcilerError(f"request {request_id} is marked for {marked_for!r}, not {name!r}")
    if not adopt:
        _check_free(state.read().lockfile.jobs, name, request_id)
        manifest_yaml, secrets, _ = manifest_for(name, live)
        return Imported(live, manifest_yaml, secrets, marked=False, adopted=False)
    with locked(state, "import", lease):
        snapshot = state.read()
        _check_free(snapshot.lockfile.jobs, name, request_id)
        manifest_yaml, secrets, masked = manifest_for(name, live)
        marked = _mark(client, live, name)
        journal = state.journal(state.compact(snapshot))
        job = JobState(id=live.id, api=live.api, specHash=spec_hash(live.api, live.request, masked), status=live.status,
                       observedAt=datetime.now(timezone.utc),
                       sensitivePaths=JobState.paths(masked))
        journal.record(name, job, HistoryEntry(at=datetime.now(timezone.utc), who=whoami(), action="import",
                                               result="ok", requestId=live.id))
        journal.compact()
    return Imported(live, manifest_yaml, secrets, marked)


def _check_free(records, name: str, request_id: str) -> None:
    for other, record in records.items():
        if record.id == request_id and other != name:
            raise ReconcilerError(f"request {request_id} is already managed as {other!r}")
    if name in records and records[name].id not in (None, request_id):
        raise ReconcilerError(f"{name!r} already manages request {records[name].id}",
                              f"`reconciler state rm {name}` first if that is intended")


def _mark(client: BatchClient, live: LiveJob, name: str) -> bool:
    """Append the marker now if the service allows it (not while processing); plan does it later otherwise."""
    if owner(live.description) == name:
        return True
    try:
        JobsApi(client, live.api).update_description(live.id, with_marker(without_marker(live.description), name))
        return True
    except ApiError:
        return False


def manifest_for(name: str, live: LiveJob) -> tuple[str, tuple[str, ...], frozenset[tuple]]:
    """A manifest reproducing the live request; credentials become `${env:…}` references. Also
    the variables it expects and their paths in the body (sensitive from now on)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    request = {k: v for k, v in copy.deepcopy(live.request).items() if k != "description"}
    found: list[tuple[str, tuple]] = _externalise_secrets(request, name, [])
    secrets = [variable for variable, _ in found]
    evalscript = request.get("processRequest", {}).get("evalscript")
    if isinstance(evalscript, str) and "\n" in evalscript:
        request["processRequest"]["evalscript"] = LiteralScalarString(evalscript)
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "BatchJob",
        "metadata": {"name": name},
        "spec": {"api": live.api, "state": STATE_OF_STATUS.get(live.status, "started"),
                 "description": without_marker(live.description), "request": request},
    }
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    text = io.StringIO()
    text.write(f"# Imported from {live.api} request {live.id}.\n")
    text.write("# Editors: `reconciler schema > batchjob.schema.json`, then a first line\n"
               "# `# yaml-language-server: $schema=<its path>` checks this file as you type.\n")
    yaml.dump(document, text)
    return text.getvalue(), tuple(secrets), frozenset(path for _, path in found)


def _externalise_secrets(node, name: str, found: list[tuple[str, tuple]], path: tuple = ()) -> list[tuple[str, tuple]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CREDENTIAL_KEYS and isinstance(value, str):
                variable = f"{name.upper().replace('-', '_')}_{'_'.join(str(p).upper() for p in (*path, key))}"
                node[key] = f"${{env:{variable}}}"
                found.append((variable, (*path, key)))
            else:
                _externalise_secrets(value, name, found, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _externalise_secrets(value, name, found, (*path, i))
    return found


@dataclass(frozen=True)
class Rebuilt:
    added: tuple[tuple[str, str], ...]  # (name, request id)
    kept: tuple[str, ...]
    conflicts: tuple[tuple[str, str, str], ...]  # (name, recorded id, marked id)
    elsewhere: tuple[tuple[str, str], ...] = ()  # (name, request id) another lockfile records


def rebuild(client: BatchClient, state: StateFile, manifests: list[Manifest], lease: LeaseOptions,
            taken: frozenset[str] = frozenset()) -> Rebuilt:
    """Record the live requests marked for one of `manifests` (this lockfile's own: its paths or
    shard), unless another lockfile of the repository records them (`taken`, request ids); names
    already recorded are kept as they are."""
    by_name = {m.name: m for m in manifests}
    with locked(state, "state rebuild", lease):
        marked: dict[str, LiveJob] = {}
        elsewhere: list[tuple[str, str]] = []
        for api in ("v2", "v1"):
            for job in JobsApi(client, api).list_jobs():
                name = owner(job.description)
                if name not in by_name:
                    continue  # another shard's, or of a manifest no longer anywhere: not ours to take
                if job.id in taken:
                    elsewhere.append((name, job.id))
                elif name not in marked or (job.created and marked[name].created and job.created > marked[name].created):
                    marked[name] = job
        snapshot = state.compact(state.read())
        journal = state.journal(snapshot)
        added, kept, conflicts = [], [], []
        for name, job in sorted(marked.items()):
            record = snapshot.lockfile.jobs.get(name)
            if record is not None:
                (kept.append(name) if record.id == job.id else conflicts.append((name, record.id or "-", job.id)))
                continue
            manifest = by_name.get(name)
            masked = manifest.sent_sensitive if manifest is not None else frozenset()
            journal.record(name, JobState(id=job.id, api=job.api, specHash=_hash(manifest, job), status=job.status,
                                          observedAt=datetime.now(timezone.utc), sensitivePaths=JobState.paths(masked)),
                           HistoryEntry(at=datetime.now(timezone.utc), who=whoami(), action="rebuild", result="ok",
                                        requestId=job.id, detail="recovered from its ownership marker"))
            added.append((name, job.id))
        journal.compact()
    return Rebuilt(tuple(added), tuple(kept), tuple(conflicts), tuple(sorted(elsewhere)))


def _hash(manifest: Manifest | None, job: LiveJob) -> str:
    """The manifest's spec hash when the live request matches it; the live request's otherwise."""
    if manifest is not None and manifest.job.spec.api == job.api:
        sensitive = manifest.body_sensitive
        if canonical(manifest.body, sensitive) == canonical(job.request, sensitive):
            return spec_hash(job.api, manifest.body, sensitive)
    return spec_hash(job.api, job.request)
