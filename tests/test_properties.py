"""Property tests: whatever text arrives, the loader returns manifests or our own diagnostics,
and `fmt` either refuses or keeps the data exactly (and is idempotent)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic
from reconciler.manifests.fmt import format_text
from reconciler.manifests.loader import load
from reconciler.manifests.yamldoc import YamlProblem, read_documents
from tests.conftest import EXAMPLES

EXAMPLE_TEXTS = {p.name: p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))}
PIECES = list("ab:- []{}\n\t#'\"!&*?|>,.019~") + ["\u00e9", "  ", ": ", "\n  ", "- ", "null", "-1", "${env:X}", "v1", "1e9"]


@st.composite
def mutated_example(draw) -> str:
    text = EXAMPLE_TEXTS[draw(st.sampled_from(sorted(EXAMPLE_TEXTS)))]
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 4))):
        start = rng.randrange(len(text))
        end = start + rng.randint(0, 6)
        text = text[:start] + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3))) + text[end:]
    return text


def _assert_loads_or_diagnoses(folder, text: str) -> None:
    path = folder / "job.yaml"
    path.write_text(text)
    result = load([path], use_cache=True)
    for d in result.diagnostics:
        assert isinstance(d, Diagnostic) and d.file == str(path) and d.message
    assert result.manifests or result.errors or result.deferred
    again = load([path], use_cache=True)  # from the load cache when the first load was clean: the same outcome
    assert (again.manifests, again.diagnostics, again.deferred) == (result.manifests, result.diagnostics, result.deferred)
    assert again.cached == (1 if result.manifests and not result.diagnostics and not any(m.sensitive for m in result.manifests) else 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_example())
def test_mutated_examples_load_or_give_our_diagnostics(tmp_path, text):
    (tmp_path / "evalscripts").mkdir(exist_ok=True)
    for script in (EXAMPLES / "evalscripts").iterdir():
        (tmp_path / "evalscripts" / script.name).write_text(script.read_text())
    _assert_loads_or_diagnoses(tmp_path, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_random_yaml_loads_or_gives_our_diagnostics(tmp_path, text):
    _assert_loads_or_diagnoses(tmp_path, text)


@settings(max_examples=300, deadline=None)
@given(text=mutated_example())
def test_fmt_keeps_the_data_and_is_idempotent(text):
    try:
        before = [d.data for d in read_documents(text)]
    except YamlProblem:
        return
    try:
        once = format_text(text)
    except YamlProblem as e:
        assume(False)  # refusing is allowed (the safety net), changing data is not
        raise AssertionError(e.message) from e
    assert [d.data for d in read_documents(once)] == before
    assert format_text(once) == once
