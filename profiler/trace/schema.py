"""The JSON Schema of the trace file (schema version 2, what `profiler schema` prints), from the columns read."""

from typing import Any

from profiler.column_kinds import (
    Column,
)
from profiler.trace.columns import (
    _DROPPED,
    PATH_COUNTERS,
    PATH_TABLES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    TABLES,
    _run_fields,
)


def _described(column: Column) -> dict[str, Any]:
    schema = column.kind.json_schema()
    return {**schema, "description": column.description} if column.description else schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the trace file profiler writes (schema version 2)."""
    run_fields = _run_fields(escaped=True)
    tables = {
        name: {
            "type": "object",
            "required": ["columns", "rows"],
            "additionalProperties": False,
            "properties": {
                "columns": {"const": [column.name for column in columns]},
                "rows": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "prefixItems": [_described(column) for column in columns],
                        "items": False,
                        "minItems": len(columns),
                    },
                },
            },
        }
        for name, columns in {**TABLES, **PATH_TABLES}.items()
    }
    dropped = {column.name: column.kind.json_schema() for column in _DROPPED}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://profiler.invalid/schema/trace-v{SCHEMA_VERSION}.json",
        "title": "profiler trace",
        "description": "See docs/trace-format.md. Readers skip tables they do not know (a later profiler's).",
        "type": "object",
        "required": ["schema", "schema_version", "run", "tables"],
        "additionalProperties": False,
        "properties": {
            "schema": {"const": SCHEMA_NAME},
            "schema_version": {"const": SCHEMA_VERSION},
            "run": {
                "type": "object",
                "required": [*(column.name for column in run_fields), "dropped"],
                "additionalProperties": False,
                "properties": {
                    **{column.name: _described(column) for column in run_fields},
                    "dropped": {
                        "type": "object",
                        "required": [name for name in dropped if name not in PATH_COUNTERS],
                        "additionalProperties": False,
                        "properties": dropped,
                    },
                },
            },
            "tables": {
                "type": "object",
                "required": list(TABLES),
                "properties": tables,
                # The tables of files and kernel interfaces: both where the run recorded them, else neither.
                "dependentRequired": {name: [other for other in PATH_TABLES if other != name] for name in PATH_TABLES},
            },
        },
    }
