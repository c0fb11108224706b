"""Schemathesis hooks for tests/api/openapi.rs (loaded through SCHEMATHESIS_HOOKS).

Schemathesis sends text bodies only for the media types it knows; these bodies are text in
media types of their own (DHIS2's `application/csv`, SDMX-CSV), so they go on the wire as the
generated text, UTF-8 encoded. A generated value that is not text (negative testing) goes as
JSON, which the service must refuse cleanly like any other unreadable body.
"""

import json

import schemathesis


@schemathesis.serializer(
    "application/csv",
    "application/vnd.sdmx.data+csv;version=2.0.0",
    # A workbook's bytes: generated ones are never a workbook, which must be refused cleanly.
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
def as_text(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")
