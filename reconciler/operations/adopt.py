"""Taking live requests under management without creating anything: `import NAME ID` (one
request, and a manifest written for it) and `state rebuild` (a lost lockfile recovered from the
ownership markers of the live requests)."""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.api.client import BatchClient
from reconciler.api.errors import ApiError, NotFound
from reconciler.api.jobs import JobsApi
from reconciler.batch import API_VERSIONS, ApiVersion
from reconciler.batch.live import LiveJob
from reconciler.batch.statuses import Status
from reconciler.canonical import canonical, spec_hash
from reconciler.engine.identity import owner, with_marker, without_marker
from reconciler.errors import ReconcilerError
from reconciler.manifests.envrefs import VARIABLE
from reconciler.manifests.files import source_of
from reconciler.manifests.manifest import Manifest
from reconciler.redaction import SECRET_KEYS, remember
from reconciler.state.lease import whoami
from reconciler.state.model import HistoryEntry, JobState
from reconciler.state.operations import LeaseOptions, locked
from reconciler.state.statefile import StateFile

STATE_OF_STATUS: dict[str, str] = {  # a live job's status (the service's string) → the spec.state written
    Status.CREATED: "created", Status.ANALYSING: "analysed", Status.ANALYSIS_DONE: "analysed",
    Status.STOPPED: "stopped", Status.CANCELED: "stopped"}


@dataclass(frozen=True)
class Imported:
    job: LiveJob
    manifest_yaml: str
    secrets: tuple[str, ...]  # env variables the written manifest expects
    marked: bool  # the marker could be added to the live description now
    adopted: bool = True  # recorded in the lockfile (not when only previewed)


def find_live(client: BatchClient, request_id: str, api: ApiVersion | None) -> LiveJob:
    for version in ((api,) if api else API_VERSIONS):
        try:
            return JobsApi(client, version).get(request_id)
        except NotFound:
            continue
    raise ReconcilerError(f"no live request {request_id}" + (f" in the {api} API" if api else " in v1 or v2"))


def import_job(client: BatchClient, state: StateFile, name: str, request_id: str, api: ApiVersion | None,
               lease: LeaseOptions, adopt: bool = True, file: str | None = None) -> Imported:
    """The manifest of the live request `request_id` as `name`; with `adopt`, also take the
    request under management (lockfile record and marker), recorded as declared in `file` (where
    the manifest is written). Without it nothing is changed: a request recorded without its
    manifest would only be forgotten by the next plan."""
    live = find_live(client, request_id, api)
    if (marked_for := owner(live.description)) not in (None, name):
        raise ReconcilerError(f"request {request_id} is marked for {marked_for!r}, not {name!r}")
    if not adopt:
        jobs = state.read().lockfile.jobs
        _check_free(jobs, name, request_id)
        manifest_yaml, secrets, _ = manifest_for(name, live, _recorded_sensitive(jobs, name, request_id))
        return Imported(live, manifest_yaml, secrets, marked=False, adopted=False)
    with locked(state, "import", lease):
        snapshot = state.read()
        _check_free(snapshot.lockfile.jobs, name, request_id)
        recorded = _recorded_sensitive(snapshot.lockfile.jobs, name, request_id)
        manifest_yaml, secrets, masked = manifest_for(name, live, recorded)
        masked |= recorded  # sensitive until the live value changes (docs/security.md), even where absent now
        marked = _mark(client, live, name)
        journal = state.journal(state.compact(snapshot))
        body_masked = frozenset(path for path in masked if path != ("description",))
        job = JobState(id=live.id, api=live.api, specHash=spec_hash(live.api, live.body, body_masked),
                       status=live.status, observedAt=datetime.now(UTC),
                       sensitivePaths=JobState.paths(masked), file=source_of(file) if file else None)
        journal.record(name, job, HistoryEntry(at=datetime.now(UTC), who=whoami(), action="import",
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


def _recorded_sensitive(jobs: Mapping[str, JobState], name: str, request_id: str) -> frozenset[tuple]:
    """The paths the lockfile records as sensitive for request `request_id` (taken as `name`): those
    of its record, by id, and of the record of `name`."""
    return frozenset(path for other, record in jobs.items() if record.id == request_id or other == name
                     for path in record.masked)


def manifest_for(name: str, live: LiveJob, recorded: frozenset[tuple] = frozenset()
                 ) -> tuple[str, tuple[str, ...], frozenset[tuple]]:
    """A manifest reproducing the live request, in which every sensitive value is an `${env:…}`
    reference: at a credential key, or at a path of `recorded` (body paths, ("description",) for
    the description). Also the variables it expects and those paths (sensitive from now on)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    request = {k: v for k, v in copy.deepcopy(live.body).items() if k != "description"}
    variables = _Variables(name)
    found: list[tuple[str, tuple]] = _externalise_secrets(request, variables, recorded, [])
    description: str = without_marker(live.description)
    if ("description",) in recorded:
        remember([description])
        found.append((variables.new(("description",)), ("description",)))
        description = f"${{env:{found[-1][0]}}}"
    secrets = [variable for variable, _ in found]
    evalscript = request.get("processRequest", {}).get("evalscript")
    if isinstance(evalscript, str) and "\n" in evalscript:
        request["processRequest"]["evalscript"] = LiteralScalarString(evalscript)
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "BatchJob",
        "metadata": {"name": name},
        "spec": {"api": live.api, "state": STATE_OF_STATUS.get(live.status, "started"),
                 "description": description, "request": request},
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


class _Variables:
    """Names of the environment variables of one imported manifest: NAME_PATH_PARTS in upper
    case, made a valid name (`envrefs.VARIABLE`), and made unique when two paths would share one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._taken: set[str] = set()

    def new(self, path: tuple) -> str:
        base = re.sub(r"[^A-Z0-9_]", "_", "_".join(str(p).upper() for p in (self._name, *path)))
        base = base if VARIABLE.fullmatch(base) else f"_{base}"  # a name may start with a digit
        variable, n = base, 1
        while variable in self._taken:
            n += 1
            variable = f"{base}_{n}"
        self._taken.add(variable)
        return variable


def _externalise_secrets(node, variables: _Variables, recorded: frozenset[tuple], found: list[tuple[str, tuple]],
                         path: tuple = ()) -> list[tuple[str, tuple]]:
    """Replace by a reference, in place, every value of `node` that is sensitive: at a key
    `redaction` holds secret, or at a `recorded` path; list (variable, path) of each in `found`."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        at = (*path, key)
        if value is not None and (at in recorded or key in SECRET_KEYS):
            remember([value] if isinstance(value, str) else [])  # an error may echo it: every output hides it
            found.append((variables.new(at), at))
            node[key] = f"${{env:{found[-1][0]}}}"
        else:
            _externalise_secrets(value, variables, recorded, found, at)
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
                elif (current := marked.get(name)) is None or (job.created and current.created
                                                                and job.created > current.created):
                    marked[name] = job
        snapshot = state.read()
        jobs = dict(snapshot.lockfile.jobs)  # once: every job recovered is added to it, then one write
        added, kept, conflicts = [], [], []
        now, who = datetime.now(UTC), whoami()
        for name, job in sorted(marked.items()):
            record = jobs.get(name)
            if record is not None:
                (kept.append(name) if record.id == job.id else conflicts.append((name, record.id or "-", job.id)))
                continue
            manifest = by_name[name]
            jobs[name] = JobState(id=job.id, api=job.api, specHash=_hash(manifest, job), status=job.status,
                                  observedAt=now, sensitivePaths=JobState.paths(manifest.sent_sensitive),
                                  file=source_of(manifest.file),
                                  history=[HistoryEntry(at=now, who=who, action="rebuild", result="ok", requestId=job.id,
                                                        detail="recovered from its ownership marker")])
            added.append((name, job.id))
        if added:  # one conditional write, whatever the number of jobs (the journal it folds in included)
            state.write(snapshot.lockfile.model_copy(update={"jobs": jobs}), snapshot)
    return Rebuilt(tuple(added), tuple(kept), tuple(conflicts), tuple(sorted(elsewhere)))


def _hash(manifest: Manifest | None, job: LiveJob) -> str:
    """The manifest's spec hash when the live request matches it; the live request's otherwise."""
    if manifest is not None and manifest.api == job.api:
        sensitive = manifest.body_sensitive
        if canonical(manifest.body, sensitive) == canonical(job.body, sensitive):
            return spec_hash(job.api, manifest.body, sensitive)
    return spec_hash(job.api, job.body)
