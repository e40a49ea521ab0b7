#!/usr/bin/env python3
"""Writes, with fastavro and only the .avsc files, one single-object encoded
value per event type, as the C array literals pasted into
tests/unit/test_event.c (test_decodes_values_written_by_fastavro and
test_encoding_is_byte_identical_to_fastavro), then the same data written
with every older released schema in schemas/history/ (<type>.v<N>.avsc), as
fastavro_history_<type>_v<N> (test_decodes_values_written_with_old_schemas).
Re-run it and paste its output there if a schema changes.

Usage: make_vectors.py [SCHEMAS_DIR]   (needs `pip install fastavro`)
"""
import glob
import io
import json
import os
import sys

from fastavro import schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

TRIGGER = "6f9b2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"

DATA = {
    "release_deployed": {
        "release": "4.2.0", "environment": "production", "selection": "ONE",
        "actions": ["core.reindex_search", "billing.fix_invoices"],
        "requested_by": "ci/pipeline#1234", "deployed_at": 1764079200123,
    },
    "deploy_planned": {
        "tenant": "acme", "release": "4.2.0", "trigger_id": TRIGGER,
        "actions": ["core.reindex_search"], "reactor": "reactor-1:4242",
        "planned_at": 1764079200500,
    },
    "action_started": {
        "action": "core.reindex_search", "tenant": "acme", "release": "4.2.0",
        "trigger_id": TRIGGER, "attempt": 1, "started_at": 1764079201000,
        "reactor": "reactor-1:4242", "queued": False,
    },
    "action_finished": {
        "action": "core.reindex_search", "tenant": "acme", "release": "4.2.0",
        "trigger_id": TRIGGER, "attempt": 2, "started_at": 1764079201000,
        "reactor": "reactor-1:4242", "status": "FAILED", "exit_code": -3,
        "duration_ms": 1099511627776, "error": "exit code 253",
        "output_tail": "caf\u00e9 \u2713 \U0001f680\nValueError: boom\n",
        "finished_at": -1, "retrying": True,
    },
    "registry_published": {
        "reactor": "reactor-1:4242", "published_at": 1764079199000,
        "actions": [
            {"id": "core.reindex_search", "auto": True, "policy": "once",
             "description": "Rebuild the search index", "after": []},
            {"id": "billing.fix_invoices", "auto": False, "policy": "always",
             "description": "", "after": ["core.reindex_search", "x"]},
        ],
    },
    "skip_requested": {
        "release": "4.2.0",
        "actions": ["core.reindex_search", "billing.fix_invoices"],
        "all_pending": False, "requested_by": "ops/alice",
        "requested_at": 1764079300000,
    },
    "reset_requested": {
        "release": "", "actions": [], "all_pending": True,
        "requested_by": "ops/bob", "requested_at": 1764079400000,
    },
    "cancel_requested": {
        "actions": ["core.reindex_search"], "all_running": False,
        "requested_by": "ops/carol", "requested_at": 1764079500000,
    },
    "cancel_answered": {
        "tenant": "acme", "trigger_id": TRIGGER, "reactor": "reactor-1:4242",
        "actions": ["core.reindex_search"],
        "not_running": ["billing.fix_invoices"], "requested_by": "ops/carol",
    },
    "pause_requested": {
        "all_tenants": False, "requested_by": "ops/dave",
        "requested_at": 1764079600000,
    },
    "resume_requested": {
        "all_tenants": True, "requested_by": "ops/dave",
        "requested_at": 1764079700000,
    },
    "action_progress": {
        "tenant": "acme", "action": "core.reindex_search", "release": "4.2.0",
        "trigger_id": TRIGGER, "attempt": 1, "reactor": "reactor-1:4242",
        "done": 400, "total": 1000, "at": 1764079202000,
    },
}


def vector(cname, path, datum):
    with open(path) as f:
        schema = parse_schema(json.load(f))
    fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    out = io.BytesIO()
    out.write(b"\xc3\x01" + bytes.fromhex(fp))  # single-object header
    schemaless_writer(out, schema, datum)
    b = out.getvalue()
    print(f"static const uint8_t {cname}[] = {{")
    for i in range(0, len(b), 12):
        print("        " + " ".join(f"0x{x:02x}," for x in b[i:i + 12]))
    print("};")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "schemas")
    for name, datum in DATA.items():
        vector(f"fastavro_{name}", os.path.join(d, name + ".avsc"), datum)
    for path in sorted(glob.glob(os.path.join(d, "history", "*.avsc"))):
        name, version = os.path.basename(path)[:-len(".avsc")].split(".")
        vector(f"fastavro_history_{name}_{version}", path, DATA[name])


if __name__ == "__main__":
    main()
