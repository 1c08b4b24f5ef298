"""A corpus of malformed lockfiles (DESIGN §3, the strict reader): wrong types, negative or huge
serials, foreign lineages, missing and extra fields, at the top and in job records and history
entries. Stored, each one makes `state list`, `plan` and `apply` exit 1 with one line naming the
field; pushed (`state push FILE`, with or without --force), the same; and nothing is written, in a
local folder or on the sandbox's S3."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from tests.conftest import example_job
from tests.state_helpers import STATE_BUCKET, raw_local_objects, raw_s3_objects, s3_client

LINEAGE = "5b0e6f3c-2d1a-4c8e-9f7b-0a1b2c3d4e5f"
BASE = {
    "version": 2, "lineage": LINEAGE, "serial": 3, "journalSeq": 0,
    "jobs": {"corsica": {
        "id": "id-0", "api": "v2", "specHash": "hash0", "status": "DONE", "observedAt": "2026-11-01T00:00:00Z",
        "restarts": 0, "onRemove": "forget",
        "history": [{"at": "2026-11-01T00:00:00Z", "who": "ci@runner", "action": "create", "result": "ok"}]}},
}
MISSING = object()
JOB = ("jobs", "corsica")
ENTRY = (*JOB, "history", 0)

# (id, where in BASE, the value put there (MISSING: removed), what the one error line must say)
CORPUS = [
    ("serial-string", ("serial",), "7", "serial: Input should be a valid integer, not a string"),
    ("serial-negative", ("serial",), -5, "serial: Input should be greater than or equal to 0"),
    ("serial-huge", ("serial",), 10**40, "serial: Input should be less than or equal to 9007199254740992"),
    ("serial-bool", ("serial",), True, "serial: Input should be a valid integer, not a boolean"),
    ("serial-float", ("serial",), 3.5, "serial: Input should be a valid integer, not a number"),
    ("serial-null", ("serial",), None, "serial: Input should be a valid integer, not null"),
    ("serial-missing", ("serial",), MISSING, "serial: Field required"),
    ("version-bool", ("version",), True, "version: should be an integer, not a boolean"),
    ("version-string", ("version",), "2", "version: should be an integer, not a string"),
    ("version-newer", ("version",), 99, "has format version 99; this reconciler reads up to 3"),
    ("version-zero", ("version",), 0, "has format version 0, which cannot be upgraded"),
    ("version-missing", ("version",), MISSING, "is not a reconciler lockfile (no version)"),
    ("lineage-foreign", ("lineage",), "terraform-7f3a", "lineage: should be a UUID (lowercase, with hyphens), not 'terraform-7f3a'"),
    ("lineage-uppercase", ("lineage",), LINEAGE.upper(), "lineage: should be a UUID"),
    ("lineage-number", ("lineage",), 7, "lineage: should be a UUID (lowercase, with hyphens), not an integer"),
    ("lineage-missing", ("lineage",), MISSING, "lineage: Field required"),
    ("journal-seq-huge", ("journalSeq",), 2**60, "journalSeq: Input should be less than or equal to"),
    ("journal-seq-missing", ("journalSeq",), MISSING, "journalSeq: Field required"),
    ("jobs-missing", ("jobs",), MISSING, "jobs: Field required"),
    ("jobs-a-list", ("jobs",), [], "jobs: Input should be a valid dictionary, not a list"),
    ("extra-field", ("owner",), "someone", "owner: Extra inputs are not permitted"),
    ("job-extra-field", (*JOB, "colour"), "red", "jobs.corsica.colour: Extra inputs are not permitted"),
    ("job-api", (*JOB, "api"), "v3", "jobs.corsica.api: Input should be 'v1' or 'v2'"),
    ("job-spec-hash-missing", (*JOB, "specHash"), MISSING, "jobs.corsica.specHash: Field required"),
    ("job-id-number", (*JOB, "id"), 12, "jobs.corsica.id: Input should be a valid string, not an integer"),
    ("job-restarts-string", (*JOB, "restarts"), "1", "jobs.corsica.restarts: Input should be a valid integer, not a string"),
    ("job-restarts-negative", (*JOB, "restarts"), -1, "jobs.corsica.restarts: Input should be greater than or equal to 0"),
    ("job-observed-number", (*JOB, "observedAt"), 1_790_000_000, "jobs.corsica.observedAt: Value error, should be an ISO 8601"),
    ("job-observed-naive", (*JOB, "observedAt"), "2026-11-01T00:00:00", "jobs.corsica.observedAt: Input should have timezone info"),
    ("job-on-remove", (*JOB, "onRemove"), "delete", "jobs.corsica.onRemove: Input should be 'forget' or 'stop'"),
    ("history-not-a-list", (*JOB, "history"), {"at": "x"}, "jobs.corsica.history: Input should be a valid list"),
    ("history-at-number", (*ENTRY, "at"), 0, "jobs.corsica.history.0.at: Value error, should be an ISO 8601"),
    ("history-result-missing", (*ENTRY, "result"), MISSING, "jobs.corsica.history.0.result: Field required"),
    ("history-extra-field", (*ENTRY, "by"), "me", "jobs.corsica.history.0.by: Extra inputs are not permitted"),
    ("history-who-number", (*ENTRY, "who"), 5, "jobs.corsica.history.0.who: Input should be a valid string, not an integer"),
    ("job-name-quote", ("jobs", 'x")or(true)or("'), copy.deepcopy(BASE["jobs"]["corsica"]),
     """jobs: 'x")or(true)or("' is not a job name: a name is 1-63 lowercase letters, digits and '-'"""),
    ("job-name-64-characters", ("jobs", "a" * 64), copy.deepcopy(BASE["jobs"]["corsica"]),
     f"jobs: '{'a' * 64}' is not a job name: a name is 1-63"),
]


def malformed(path: tuple, value: object) -> bytes:
    document = copy.deepcopy(BASE)
    *parents, last = path
    holder = document
    for step in parents:
        holder = holder[step]
    if value is MISSING:
        del holder[last]
    else:
        holder[last] = value
    return json.dumps(document).encode()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    """(location, write(bytes), stored()) for a lockfile in a local folder or on the sandbox's S3."""
    sandbox = request.getfixturevalue("sandbox")  # plan and apply need the Batch API either way
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NO_COLOR", "1")
    if request.param == "local":
        folder = tmp_path / "state"
        folder.mkdir()
        location = str(folder / "state.json")

        def write(data: bytes) -> None:
            (folder / "state.json").write_bytes(data)

        def stored() -> dict[str, bytes]:  # the store's own flock file aside
            return {k: v for k, v in raw_local_objects(folder).items() if not k.endswith(".flock")}
    else:
        client, prefix = s3_client(sandbox.env), f"malformed-{uuid.uuid4().hex}/"
        location = f"s3://{STATE_BUCKET}/{prefix}state.json"

        def write(data: bytes) -> None:
            client.put_object(Bucket=STATE_BUCKET, Key=f"{prefix}state.json", Body=data)

        def stored() -> dict[str, bytes]:
            return raw_s3_objects(client, STATE_BUCKET, prefix)
    monkeypatch.setenv("RECONCILER_STATE", location)
    job = example_job(tmp_path)
    job.write_text(job.read_text().replace("name: corsica-max-ndvi", f"name: malformed-{uuid.uuid4().hex[:8]}"))
    return location, write, stored


def _one_line(code: int, err: str, expected: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err and "unexpected" not in err, err
    assert expected in errors[0], err
    assert len(err.splitlines()) <= 2  # the line and its hint


@pytest.mark.parametrize("path, value, expected", [case[1:] for case in CORPUS], ids=[case[0] for case in CORPUS])
def test_a_malformed_lockfile_is_one_line_and_nothing_is_written(store, run_cli, tmp_path, path, value, expected):
    location, write, stored = store
    write(malformed(path, value))
    before = stored()
    for args in (("state", "list"), ("plan",), ("apply", "--auto-approve")):
        code, _, err = run_cli(*args)
        _one_line(code, err, expected)
        assert location in err
    assert stored() == before

    write(json.dumps(BASE).encode())
    before = stored()
    pushed = tmp_path / "pushed.json"
    pushed.write_bytes(malformed(path, value))
    for force in ((), ("--force",)):
        code, _, err = run_cli("state", "push", *force, str(pushed))
        _one_line(code, err, expected)
        assert str(pushed) in err
    assert stored() == before



def test_a_lockfile_is_read_in_the_encoding_json_finds_and_bytes_that_are_no_text_are_one_line(store, run_cli):
    """The lockfile's bytes are made text before they are parsed (and let go): as `json.loads`
    reads bytes, a UTF-8 byte order mark or UTF-16 is read, and bytes that are no text are an error."""
    location, write, stored = store
    for data in (json.dumps(BASE).encode("utf-8-sig"), json.dumps(BASE).encode("utf-16")):
        write(data)
        code, out, err = run_cli("state", "list")
        assert code == 0 and "corsica" in out, err
    write(json.dumps(BASE).encode()[:-1] + b"\xff}")
    before = stored()
    code, _, err = run_cli("state", "list")
    _one_line(code, err, "is not JSON")
    assert location in err and stored() == before

def test_a_lockfile_of_a_foreign_lineage_is_not_pushed(store, run_cli, tmp_path):
    _, write, stored = store
    write(json.dumps(BASE).encode())
    before = stored()
    pushed = tmp_path / "pushed.json"
    pushed.write_text(json.dumps({**BASE, "lineage": str(uuid.uuid4()), "serial": 9}))
    code, _, err = run_cli("state", "push", str(pushed))
    _one_line(code, err, "the file belongs to lineage")
    assert stored() == before


def test_the_valid_base_of_the_corpus_is_read(store, run_cli):
    _, write, _ = store
    write(json.dumps(BASE).encode())
    code, out, err = run_cli("state", "list")
    assert code == 0 and f"lineage {LINEAGE}  serial 3  1 job(s)" in out, err


# (id, the lockfile's text with a key written twice, the one error line's end): the last of two
# would win unseen in Python, the first in other readers; the reader refuses to guess
CORSICA = json.dumps(BASE["jobs"]["corsica"])
DUPLICATES = [
    ("top-level", json.dumps(BASE).replace('"serial": 3', '"serial": 3, "serial": 4'), "the key 'serial' appears twice"),
    ("job", json.dumps(BASE).replace('"jobs": {', f'"jobs": {{"corsica": {CORSICA}, '), "the key 'corsica' appears twice"),
    ("in-a-job", json.dumps(BASE).replace('"restarts": 0', '"restarts": 0, "restarts": 1'), "the key 'restarts' appears twice"),
    ("in-history", json.dumps(BASE).replace('"result": "ok"', '"result": "ok", "result": "failed"'),
     "the key 'result' appears twice"),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in DUPLICATES], ids=[case[0] for case in DUPLICATES])
def test_a_lockfile_with_a_key_written_twice_is_refused(store, run_cli, tmp_path, text, expected):
    location, write, stored = store
    write(text.encode())
    before = stored()
    for args in (("state", "list"), ("plan",)):
        code, _, err = run_cli(*args)
        _one_line(code, err, f"is not a valid lockfile: {expected} in one object")
        assert location in err
    assert stored() == before
    pushed = tmp_path / "pushed.json"
    pushed.write_text(text)
    code, _, err = run_cli("state", "push", "--force", str(pushed))
    _one_line(code, err, expected)
    assert stored() == before


def test_strict_json_loads_refuses_a_repeated_key_at_any_depth_and_names_it_cut_short():
    from reconciler.state.format import strict_json_loads

    assert strict_json_loads(b'{"a": [{"b": 1}, {"b": 2}], "c": {"a": 1}}') == {"a": [{"b": 1}, {"b": 2}], "c": {"a": 1}}
    for text, key in [('{"a": 1, "a": 1}', "'a'"), ('[{"x": {"y": [{"k": 1, "j": 2, "k": 3}]}}]', "'k'"),
                      ('{"' + "q" * 500 + '": 1, "' + "q" * 500 + '": 2}', repr("q" * 60) + "…"),
                      ('{"a\\nb": 1, "a\\nb": 2}', "'a\\nb'")]:
        with pytest.raises(ValueError) as info:
            strict_json_loads(text)
        assert str(info.value) == f"the key {key} appears twice in one object"
    with pytest.raises(ValueError, match="nested too deeply"):
        strict_json_loads("[" * 100_000)
    with pytest.raises(ValueError):
        strict_json_loads(b"\xff")


def test_a_lockfile_read_holds_each_repeated_short_value_once():
    """A lockfile repeats the same few values in every job and history entry: read, equal short
    strings are one object (what a plan over many jobs holds), long ones are left as read."""
    from reconciler.state.format import decode

    document = copy.deepcopy(BASE)
    document["jobs"]["elba"] = copy.deepcopy(BASE["jobs"]["corsica"]) | {"id": "id-1", "specHash": "x" * 65}
    document["jobs"]["corsica"]["specHash"] = "x" * 65
    jobs = decode(json.dumps(document).encode(), "test").jobs
    corsica, elba = jobs["corsica"], jobs["elba"]
    assert corsica.status == "DONE" and corsica.status is elba.status
    assert corsica.history[0].who is elba.history[0].who and corsica.history[0].result is elba.history[0].result
    assert corsica.specHash == elba.specHash and corsica.specHash is not elba.specHash
    assert corsica.id != elba.id


def _journal_entry(state, lockfile, text: str) -> None:
    state.store.put(f"{state.journal_prefix}{lockfile.journalSeq + 1:012d}-{lockfile.lineage[:8]}.json", text.encode())


JOURNAL_CASES = [
    ("key-twice", '{{"seq": {seq}, "lineage": "{lineage}", "name": "corsica", "name": "other", "removed": true}}',
     "the key 'name' appears twice in one object"),
    ("name-quote", '{{"seq": {seq}, "lineage": "{lineage}", "name": "x\\")or(true)or(\\"", "removed": true}}',
     """name: 'x")or(true)or("' is not a job name: a name is 1-63"""),
    ("name-uppercase", '{{"seq": {seq}, "lineage": "{lineage}", "name": "Corsica", "removed": true}}',
     "name: 'Corsica' is not a job name"),
    ("name-a-number", '{{"seq": {seq}, "lineage": "{lineage}", "name": 7, "removed": true}}',
     "name: Input should be a valid string"),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in JOURNAL_CASES], ids=[case[0] for case in JOURNAL_CASES])
def test_a_journal_entry_with_a_key_twice_or_a_bad_name_is_refused_naming_it(tmp_path, run_cli, text, expected):
    from reconciler.errors import StateError
    from reconciler.state.objects import LocalStore
    from reconciler.state.statefile import StateFile

    (tmp_path / "state").mkdir()
    state = StateFile(LocalStore(tmp_path / "state"), "state.json")
    state.store.put("state.json", json.dumps(BASE).encode())
    lockfile = state.read().lockfile
    _journal_entry(state, lockfile, text.replace("{seq}", str(lockfile.journalSeq + 1)).replace("{lineage}", LINEAGE)
                   .replace("{{", "{").replace("}}", "}"))
    with pytest.raises(StateError) as info:
        state.read()
    assert "journal entry" in info.value.message and expected in info.value.message, info.value.message
    code, _, err = run_cli("state", "list", "--state", str(tmp_path / "state" / "state.json"))
    _one_line(code, err, expected)
