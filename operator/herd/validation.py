"""The checks the API server makes when a WebService is admitted, made offline from the same
declaration (`herd.api`): the structural schema, then its CEL rules. `herd render` runs them,
so a spec the cluster would refuse fails there too, with the API server's wording. Pure.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import celpy
import celpy.celtypes

from herd import api, model
from herd.schema import Schema

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_CEL = celpy.Environment()


def _is_quantity(value: Any) -> celpy.celtypes.BoolType:
    return celpy.celtypes.BoolType(model.is_quantity(value))


@functools.cache
def _program(rule: str) -> celpy.Runner:
    """A rule compiled once: parsing CEL costs far more than evaluating it."""
    return _CEL.program(_CEL.compile(rule), functions={"isQuantity": _is_quantity})


def _kind(value: Any) -> str:
    """The JSON type of `value`, as the API server names it."""
    names = {bool: "boolean", str: "string", int: "integer", float: "number", list: "array"}
    return names.get(type(value), "object")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _structural(schema: Schema, value: Any, path: str, out: list[str]) -> None:
    if schema.int_or_string:
        if not isinstance(value, int | str) or isinstance(value, bool):
            out.append(f"{path}: Invalid value: {_json(value)}: must be an integer or a string")
        return
    wanted = _PYTHON_TYPES.get(schema.type or "")
    if wanted and (
        not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)
    ):
        kind = type(value).__name__
        out.append(
            f"{path}: Invalid value: {_json(kind)}: {path} in body must be of type {schema.type}"
        )
        return
    if schema.enum and value not in schema.enum:
        supported = ", ".join(_json(v) for v in schema.enum)
        out.append(f"{path}: Unsupported value: {_json(value)}: supported values: {supported}")
    if schema.minimum is not None and isinstance(value, int | float) and value < schema.minimum:
        out.append(
            f"{path}: Invalid value: {_json(value)}: {path} in body should be greater than or "
            f"equal to {schema.minimum:g}"
        )
    if schema.maximum is not None and isinstance(value, int | float) and value > schema.maximum:
        out.append(
            f"{path}: Invalid value: {_json(value)}: {path} in body should be less than or "
            f"equal to {schema.maximum:g}"
        )
    if isinstance(value, str):
        if schema.max_length is not None and len(value) > schema.max_length:
            out.append(f"{path}: Too long: may not be more than {schema.max_length} bytes")
        if schema.pattern and not re.search(schema.pattern, value):
            out.append(
                f"{path}: Invalid value: {_json(value)}: {path} in body should match "
                f"'{schema.pattern}'"
            )
    if isinstance(value, list):
        _array(schema, value, path, out)
    if isinstance(value, dict):
        _object(schema, value, path, out)


def _array(schema: Schema, value: list[Any], path: str, out: list[str]) -> None:
    if schema.min_items is not None and len(value) < schema.min_items:
        out.append(
            f"{path}: Invalid value: {len(value)}: {path} in body should have at least "
            f"{schema.min_items} items"
        )
    if schema.max_items is not None and len(value) > schema.max_items:
        out.append(f"{path}: Too many: {len(value)}: must have at most {schema.max_items} items")
    seen: set[str] = set()
    for index, item in enumerate(value):
        if schema.items is not None:
            _structural(schema.items, item, f"{path}[{index}]", out)
        if schema.list_map_keys and isinstance(item, dict):
            key = _json({k: item.get(k) for k in schema.list_map_keys})
            if key in seen:
                out.append(f"{path}[{index}]: Duplicate value: {key}")
            seen.add(key)


def _object(schema: Schema, value: dict[str, Any], path: str, out: list[str]) -> None:
    if schema.max_properties is not None and len(value) > schema.max_properties:
        out.append(
            f"{path}: Too many: {len(value)}: must have at most {schema.max_properties} items"
        )
    for name in schema.required:
        if name not in value:
            out.append(f"{_join(path, name)}: Required value")
    for name, item in value.items():
        if name in schema.properties:
            _structural(schema.properties[name], item, _join(path, name), out)
        elif schema.values is not None:
            _structural(schema.values, item, _join(path, name), out)
        elif not schema.preserve_unknown:
            out.append(f'unknown field "{_join(path, name)}"')


def _rules(schema: Schema, value: Any, path: str, out: list[str]) -> None:
    """The CEL rules of `schema` and of everything below it, as the API server evaluates them:
    on values that are present, after defaulting."""
    # The API server gives CEL a `number` field as a double, even when written as 1.
    typed = float(value) if schema.type == "number" and type(value) is int else value
    for rule in schema.rules:
        try:
            passed = bool(_program(rule.rule).evaluate({"self": celpy.json_to_cel(typed)}))
        except celpy.CELEvalError:
            continue  # a rule over a field of the wrong type: the structural error says it
        if not passed:
            where = path + (rule.field_path or "") if path else (rule.field_path or "")[1:]
            prefix = f"{where}: " if where else ""
            out.append(f"{prefix}Invalid value: {_json(_kind(value))}: {rule.message}")
    if isinstance(value, dict):
        for name, item in value.items():
            child = schema.properties.get(name) or schema.values
            if child is not None:
                _rules(child, item, _join(path, name), out)
    if isinstance(value, list) and schema.items is not None:
        for index, item in enumerate(value):
            _rules(schema.items, item, f"{path}[{index}]", out)


def errors(body: dict[str, Any]) -> list[str]:
    """What the API server would answer to creating `body`, one line each; [] admits it."""
    document = {key: body[key] for key in ("spec", "status") if key in body}
    out: list[str] = []
    _structural(api.ROOT, document, "", out)
    if out:
        return out  # the API server stops before the rules when the structure is wrong
    defaulted = api.ROOT.apply_defaults({**document, "metadata": body.get("metadata") or {}})
    _rules(api.ROOT, defaulted, "", out)
    return out
