#!/usr/bin/env python3
"""Prints the Parsing Canonical Form fingerprint (CRC-64-AVRO) of every
schema in schemas/, computed by fastavro, an Avro implementation independent
of ours. tests/unit/test_event.c holds the same values; an interop test can
run this and compare them with `postdeploy`'s own.

Usage: fingerprints.py [SCHEMAS_DIR]   (needs `pip install fastavro`)
Each line: NAME 0xVALUE WIRE, where VALUE is the fingerprint as a 64-bit
number (pd_event_fingerprint()) and WIRE its 8 bytes as they follow C3 01 in
a single-object encoded value (little-endian).
"""
import json
import os
import sys

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

NAMES = ["release_deployed", "deploy_planned", "action_started",
         "action_finished", "registry_published", "skip_requested",
         "reset_requested", "cancel_requested", "cancel_answered",
         "pause_requested", "resume_requested", "action_progress"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "schemas")
    for name in NAMES:
        with open(os.path.join(d, name + ".avsc")) as f:
            schema = parse_schema(json.load(f))
        # fastavro returns the fingerprint's bytes in wire order.
        wire = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
        value = int.from_bytes(bytes.fromhex(wire), "little")
        print(f"{name} 0x{value:016x} {wire}")


if __name__ == "__main__":
    main()
