"""The published SARIF 2.1.0 schema (tests/fixtures/sarif/, from OASIS) and a validator of it, built once."""

import functools
import json
from pathlib import Path

import jsonschema

SCHEMA = Path(__file__).resolve().parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


@functools.cache
def validator() -> jsonschema.Draft4Validator:
    """The schema is draft 4 (its $schema says so); it is checked against the draft before use."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)
