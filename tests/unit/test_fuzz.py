"""Property: for every WebService the CRD's own schema admits, parsing, rendering and status
either succeed or say why (InvalidSpec, a Degraded reason); never an exception.

The specs come from `herd.api` itself, so a field added to the API is fuzzed the day it is
added. `make test` runs HERD_FUZZ_EXAMPLES (default 200) of them; `make fuzz` many more.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herd import api, desired, status
from herd.model import InvalidSpec, parse
from herd.schema import Schema

EXAMPLES = int(os.environ.get("HERD_FUZZ_EXAMPLES", "200"))

#: Quantities as users write them, the odd ones included (1Ei, 1e400, 100u, .5).
QUANTITY = st.one_of(
    st.integers(min_value=0, max_value=10**20),
    st.from_regex(
        r"[0-9]{1,22}(\.[0-9]{0,4})?(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]{1,3})?",
        fullmatch=True,
    ),
)
DURATION = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.from_regex(r"([0-9]{1,5}(ms|s|m|h)){1,3}", fullmatch=True),
)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)


def _string(schema: Schema) -> st.SearchStrategy[Any]:
    if schema.enum:
        return st.sampled_from(schema.enum)
    if schema.pattern:
        return st.from_regex(schema.pattern, fullmatch=True).filter(
            lambda s: schema.max_length is None or len(s) <= schema.max_length
        )
    return st.text(max_size=min(schema.max_length or 40, 40))


def strategy(schema: Schema, path: str = "") -> st.SearchStrategy[Any]:
    """Values `schema` admits (CEL rules aside: those are what InvalidSpec must catch)."""
    if schema.int_or_string:
        return DURATION if "duration" in path else QUANTITY
    if schema.type == "object" and schema.values is not None:
        return st.dictionaries(
            st.from_regex(r"[a-z]([a-z0-9.-]{0,20}/)?[a-z0-9-]{1,20}", fullmatch=True),
            strategy(schema.values, path + ".*"),
            max_size=3,
        )
    if schema.type == "object":
        if schema.preserve_unknown and not schema.properties:
            return st.just({})
        required = {
            n: strategy(s, f"{path}.{n}")
            for n, s in schema.properties.items()
            if n in schema.required
        }
        optional = {
            n: strategy(s, f"{path}.{n}")
            for n, s in schema.properties.items()
            if n not in schema.required
        }
        return st.fixed_dictionaries(required, optional=optional)
    if schema.type == "array":
        assert schema.items is not None
        items = strategy(schema.items, path + "[]")
        if schema.list_map_keys:  # a list-map: one item per key
            key = schema.list_map_keys[0]
            items = st.fixed_dictionaries({key: NAME}, optional={"value": st.text(max_size=8)})
            return st.lists(items, max_size=4, unique_by=lambda i: i[key])
        return st.lists(
            items, min_size=schema.min_items or 0, max_size=min(schema.max_items or 4, 4)
        )
    if schema.type == "string":
        return _string(schema)
    if schema.type == "integer":
        low = int(schema.minimum) if schema.minimum is not None else -(2**31)
        high = int(schema.maximum) if schema.maximum is not None else 2**31
        return st.integers(min_value=low, max_value=high)
    if schema.type == "number":
        return st.floats(
            min_value=schema.minimum,
            max_value=schema.maximum,
            allow_nan=False,
            allow_infinity=False,
        )
    if schema.type == "boolean":
        return st.booleans()
    raise AssertionError(f"no strategy for {path}: {schema.type}")


SPECS = strategy(api.SPEC, "spec")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(SPECS)
def test_every_admitted_spec_renders_or_says_why(spec):
    body = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": spec,
    }
    try:
        ws = parse(body)
    except InvalidSpec as error:
        assert str(error) and error.reason
        return
    want = desired.desired(ws)
    assert want.objects and want.objects[0]["kind"] == "Deployment"
    computed = status.compute(ws, want, None, [], {}, "2026-01-01T00:00:00Z")
    assert {c["type"] for c in computed["conditions"]} == {"Ready", "Progressing", "Degraded"}
