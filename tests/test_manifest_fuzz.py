"""Property-based tests of the manifest parser: whatever JSON a manifest holds, opening the index
either works or raises SemhashError, never another exception (a traceback for the user)."""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_index import saved  # noqa: F401  (the module's built index)

from semhash import Index
from semhash.errors import SemhashError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def copy(saved, tmp_path_factory):  # noqa: F811
    target = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(saved.folder, target)
    return target, (target / "manifest.json").read_text()


def opens_or_explains(folder):
    try:
        Index.open(folder)
    except SemhashError:
        pass


@FUZZ
@given(manifest=JSON)
def test_any_json_as_the_manifest(copy, manifest):
    folder, _ = copy
    (folder / "manifest.json").write_text(json.dumps(manifest))
    opens_or_explains(folder)


@FUZZ
@given(draw=st.data(), value=JSON)
def test_any_value_anywhere_in_a_real_manifest(copy, draw, value):
    folder, original = copy
    manifest = json.loads(original)
    places = [(key,) for key in manifest] + [(key, inner) for key in manifest if isinstance(manifest[key], dict)
                                             for inner in manifest[key]]
    *outer, last = draw.draw(st.sampled_from(places))
    node = manifest[outer[0]] if outer else manifest
    node[last] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    opens_or_explains(folder)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_as_the_manifest(copy, data):
    folder, _ = copy
    (folder / "manifest.json").write_bytes(data)
    opens_or_explains(folder)
