"""Canonical bodies: what compares equal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import canonical as normalize
from reconciler.canonical import canonical, desired, request_digest, spec_hash, stable_json

KEYS = st.sampled_from(["output", "overwrite", "skipExisting", "instanceType", "bounds", "properties", "crs",
                        "data", "a", "b", "coordinates", "origin", "description"])
LEAVES = st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.sampled_from(["normal", "topLeft", normalize.CRS84, "x", ""])
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=30)


def test_nulls_empties_defaults_and_whole_floats_are_dropped_or_made_one():
    body = {"description": "x", "instanceType": "normal", "input": {"resolution": 60.0, "empty": {}, "none": None},
            "output": {"overwrite": False, "skipExisting": True},
            "processRequest": {"input": {"bounds": {"bbox": [1.0, 2.5], "properties": {"crs": normalize.CRS84}}}}}
    assert canonical(body) == {"input": {"resolution": 60}, "output": {"skipExisting": True},
                               "processRequest": {"input": {"bounds": {"bbox": [1, 2.5]}}}}


def test_sensitive_values_become_digests_or_a_mask():
    body = {"output": {"delivery": {"s3": {"accessKey": "AKIA", "url": "s3://b"}}}}
    path = frozenset({("output", "delivery", "s3", "accessKey")})
    assert canonical(body, path)["output"]["delivery"]["s3"]["accessKey"].startswith("(sensitive:")
    assert canonical(body, path, mask=True)["output"]["delivery"]["s3"] == {"accessKey": "(sensitive)", "url": "s3://b"}


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(KEYS, JSON, max_size=6), api=st.sampled_from(["v1", "v2"]))
def test_what_a_manifest_records_is_its_canonical_digest_and_spec_hash(body, api):
    assert desired(api, body) == (request_digest(api, canonical(body)), spec_hash(api, body))
    assert canonical(canonical(body)) == canonical(body)  # the form of a form is itself


def test_equal_texts_tell_true_from_one():
    # dict equality says {"a": True} == {"a": 1}; the texts compared by a plan do not
    assert stable_json({"a": True}) != stable_json({"a": 1})


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.tuples(st.text(max_size=8), st.integers(), st.none() | st.floats(allow_nan=False)),
                      max_size=30),
       batch=st.integers(min_value=1, max_value=7), key=st.sampled_from([b"", b"a plan key"]))
def test_a_list_hashed_a_batch_at_a_time_has_the_digest_of_the_whole_list(items, batch, key):
    """The plan's fingerprint hashes its 100,000 items without making their whole text: the digest
    must stay what the whole list's stable JSON gives, keyed or not, at every batch boundary."""
    from reconciler.engine.payload import keyed, keyed_list

    assert keyed_list(key, items, batch) == keyed(key, items)
