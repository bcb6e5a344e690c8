"""docs/api.md, generated from `herd.api` (`make generate`; a test keeps it in sync)."""

from __future__ import annotations

import json
from typing import Any

from herd import api
from herd.schema import Schema


def _type(field: Schema) -> str:
    if field.int_or_string:
        return "int or string"
    if field.type == "array" and field.items is not None:
        return f"[]{field.items.type}"
    if field.values is not None:
        return f"map[string]{field.values.type or 'int or string'}"
    return field.type or "any"


def _constraints(field: Schema) -> str:
    parts: list[str] = []
    if field.has_default and field.default != {}:
        parts.append(f"default `{json.dumps(field.default)}`")
    if field.enum:
        parts.append("one of " + ", ".join(f"`{v}`" for v in field.enum))
    if field.minimum is not None:
        parts.append(f"≥ {field.minimum:g}")
    if field.maximum is not None:
        parts.append(f"≤ {field.maximum:g}")
    if field.pattern:
        parts.append(f"matches `{field.pattern}`")
    if field.min_items:
        parts.append(f"min items: {field.min_items}")
    return "; ".join(parts)


def _table(root: Schema, prefix: str) -> list[str]:
    lines = ["| field | type | required | description | constraints |", "|---|---|---|---|---|"]
    parents: dict[str, Schema] = {prefix: root}
    for path, field in root.walk(prefix):
        parents[path] = field
        parent_path, _, name = path.rpartition(".")
        parent = parents.get(parent_path.removesuffix("[]"), root)
        if parent.items is not None and parent_path.endswith("[]"):
            parent = parent.items
        required = "yes" if name in parent.required else ""
        description = field.description.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| `{path}` | {_type(field)} | {required} | {description} | {_constraints(field)} |"
        )
    return lines


def _rules(root: Schema, prefix: str) -> list[str]:
    lines = []
    for path, field in [(prefix, root), *root.walk(prefix)]:
        lines.extend(f"- `{path}`: {rule.message}" for rule in field.rules)
        if field.values is not None:
            lines.extend(f"- `{path}.*`: {rule.message}" for rule in field.values.rules)
    return lines


def render() -> str:
    out: list[Any] = [
        f"# WebService API reference ({api.GROUP}/{api.VERSION})",
        "",
        "Generated from `operator/herd/api.py` by `make generate`; do not edit by hand.",
        f"Kind `{api.KIND}`, plural `{api.PLURAL}`, short name "
        + ", ".join(f"`{s}`" for s in api.SHORT_NAMES)
        + ". "
        "`kubectl explain webservice.spec` shows the same descriptions.",
        "",
        "## What changed",
        "",
        *(f"- {change}" for change in api.CHANGES),
        "",
        "## spec",
        "",
        *_table(api.SPEC, "spec"),
        "",
        "## Validation rules checked at admission",
        "",
        *(f"- `metadata.name`: {rule.message}" for rule in api.ROOT.rules),
        *_rules(api.SPEC, "spec"),
        "",
        "## status",
        "",
        *_table(api.STATUS, "status"),
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
