"""Validation of one interpolated compose file against the Compose specification schema.

The schema is ``shared/reference/compose-spec.json`` when run from a checkout, else the copy
vendored next to this module (byte for byte the same file).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from dockyard.errors import InvalidArgument

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (
    _HERE.parents[2] / "shared" / "reference" / "compose-spec.json",  # <repo>/../shared
    _HERE / "compose-spec.json",
)
_TYPE_NAMES = {"object": "mapping", "array": "array", "string": "string", "number": "number",
               "integer": "integer", "boolean": "boolean", "null": "null"}


class SchemaError(InvalidArgument):
    """The file does not conform to the Compose specification."""


def schema_path() -> Path:
    return next(p for p in _CANDIDATES if p.is_file())


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path().read_text())
    return jsonschema.Draft7Validator(schema)


def _local_ref(ref: str) -> Any:
    """``#/definitions/x`` → that part of the schema (the spec only has local refs)."""
    node: Any = _validator().schema
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node


def _dotted(path: Any) -> str:
    return ".".join(str(p) for p in path)


def _types_of(error: ValidationError) -> list[str]:
    """The JSON types accepted where ``error`` failed (looking through oneOf/anyOf)."""
    found: list[str] = []
    schemas = [error.schema]
    while schemas:
        s = schemas.pop(0)
        if not isinstance(s, dict):
            continue
        if "$ref" in s:
            s = _local_ref(s["$ref"])
        t = s.get("type")
        if isinstance(t, str):
            found.append(t)
        elif isinstance(t, list):
            found += t
        schemas += s.get("oneOf", []) + s.get("anyOf", [])
    seen: list[str] = []
    for t in found:
        name = _TYPE_NAMES.get(t, t)
        if name not in seen:
            seen.append(name)
    return seen


def _message(error: ValidationError) -> str:
    path = _dotted(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [e for e in extra if not any(re.search(p, e) for p in patterns)]
        names = ", ".join(extra) or "?"
        where = f"{path} " if path else ""
        return f"{where}Additional property {names} is not allowed"
    if error.validator in ("type", "oneOf", "anyOf"):
        types = _types_of(error)
        if types:
            article = "an" if types[0][0] in "aeiou" else "a"
            return f"{path or '(root)'} must be {article} {' or '.join(types)}"
    if error.validator == "required":
        return f"{path or '(root)'} {error.message}"
    if error.validator == "enum":
        return f"{path} must be one of {', '.join(map(str, error.validator_value))}"
    return f"{path or '(root)'}: {error.message}"


def _deepest(error: ValidationError) -> ValidationError:
    """For a oneOf failure, prefer the explanation from the branch that got furthest, unless
    every branch failed on type alone (then say which types are accepted)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    if all(e.validator == "type" and not e.relative_path for e in error.context):
        return error
    deeper = [e for e in error.context if e.validator != "type" or e.relative_path]
    return _deepest(best_match(deeper))


def validate(data: Any, source: str) -> None:
    """Raise :class:`SchemaError` ``"<source>: <path> <problem>"`` for the first problem."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: top-level object must be a mapping")
    errors = list(_validator().iter_errors(data))
    if not errors:
        return
    first = min(errors, key=lambda e: (len(e.absolute_path), _dotted(e.absolute_path)))
    raise SchemaError(f"{source}: {_message(_deepest(first))}")
