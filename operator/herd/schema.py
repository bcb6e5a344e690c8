"""A small vocabulary for declaring OpenAPI v3 schemas with Kubernetes extensions.

The WebService API (`herd.api`) is written in it once; the CRD, server-side-equivalent defaulting
for offline use, and the API reference are all derived from that one declaration.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

_UNSET: Any = object()


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule (`x-kubernetes-validations`) with the message users see."""

    rule: str
    message: str
    field_path: str | None = None


@dataclass(frozen=True)
class Schema:
    type: str | None
    description: str
    default: Any = _UNSET
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_properties: int | None = None
    properties: Mapping[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Schema | None = None
    values: Schema | None = None  # additionalProperties: a map's value schema
    rules: tuple[Rule, ...] = ()
    int_or_string: bool = False
    preserve_unknown: bool = False
    list_map_keys: tuple[str, ...] = ()

    @property
    def has_default(self) -> bool:
        return self.default is not _UNSET

    def openapi(self) -> dict[str, Any]:
        """The structural schema as the apiextensions.k8s.io/v1 CRD expects it."""
        out: dict[str, Any] = {}
        if self.int_or_string:
            out["x-kubernetes-int-or-string"] = True
        elif self.type:
            out["type"] = self.type
        out["description"] = self.description
        if self.has_default:
            out["default"] = copy.deepcopy(self.default)
        if self.enum:
            out["enum"] = list(self.enum)
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("pattern", self.pattern),
            ("maxLength", self.max_length),
            ("minItems", self.min_items),
            ("maxItems", self.max_items),
            ("maxProperties", self.max_properties),
        ):
            if value is not None:
                out[key] = value
        if self.properties:
            out["properties"] = {name: prop.openapi() for name, prop in self.properties.items()}
        if self.required:
            out["required"] = list(self.required)
        if self.items is not None:
            out["items"] = self.items.openapi()
        if self.list_map_keys:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = list(self.list_map_keys)
        if self.values is not None:
            out["additionalProperties"] = self.values.openapi()
        if self.preserve_unknown:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if self.rules:
            out["x-kubernetes-validations"] = [
                {
                    "rule": r.rule,
                    "message": r.message,
                    **({"fieldPath": r.field_path} if r.field_path else {}),
                }
                for r in self.rules
            ]
        return out

    def apply_defaults(self, value: Any) -> Any:
        """Fill defaults the way the API server does: only inside objects that are present,
        recursing into defaulted values too."""
        if self.type == "object" and isinstance(value, dict):
            result = dict(value)
            for name, prop in self.properties.items():
                if name not in result and prop.has_default:
                    result[name] = copy.deepcopy(prop.default)
                if name in result:
                    result[name] = prop.apply_defaults(result[name])
            if self.values is not None:
                result = {k: self.values.apply_defaults(v) for k, v in result.items()}
            return result
        if self.type == "array" and isinstance(value, list) and self.items is not None:
            return [self.items.apply_defaults(item) for item in value]
        return value

    def walk(self, path: str = "") -> Iterator[tuple[str, Schema]]:
        """Every field below this one with its dotted path (`[]` marks list items)."""
        for name, prop in self.properties.items():
            here = f"{path}.{name}" if path else name
            yield here, prop
            yield from prop.walk(here)
        if self.items is not None:
            yield f"{path}[]", self.items
            yield from self.items.walk(f"{path}[]")


def defaulted_object(schema: Schema) -> Schema:
    """The object, defaulting to its children's defaults when absent. Written out in full: the
    API server validates a default against CEL rules before nested defaults apply to it."""
    return replace(schema, default=schema.apply_defaults({}))


def string(description: str, **kw: Any) -> Schema:
    return Schema("string", description, **kw)


def integer(description: str, **kw: Any) -> Schema:
    return Schema("integer", description, **kw)


def number(description: str, **kw: Any) -> Schema:
    return Schema("number", description, **kw)


def boolean(description: str, **kw: Any) -> Schema:
    return Schema("boolean", description, **kw)


def obj(description: str, properties: Mapping[str, Schema] | None = None, **kw: Any) -> Schema:
    return Schema("object", description, properties=properties or {}, **kw)


def array(description: str, items: Schema, **kw: Any) -> Schema:
    return Schema("array", description, items=items, **kw)


def string_map(description: str, **kw: Any) -> Schema:
    return Schema("object", description, values=string("A value."), **kw)
