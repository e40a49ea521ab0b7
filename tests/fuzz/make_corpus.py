#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/corpus/<target>/) and the libFuzzer
dictionaries (tests/fuzz/dict/<target>.dict) of the fuzz targets.

The event seeds are built from the schemas alone: the event types and their
ce_type names come from schemas/event.h (enum pd_evtype_e, in its order,
which is the order the targets number them in), a sample datum of each kind
(typical, empty, extreme) is made from each .avsc, and the Avro values are
written by a small encoder below that can also write the forms fastavro
never writes (negative block counts, one block per item); its plain output
is checked byte for byte against fastavro's. The config seeds are the
example config and pieces of tests/unit/test_config.c.

Re-run it when a schema, an event type or a config key changes, and commit
what it writes (each file is well under 4 KiB):

    ~/.cache/postdeploy/venv/bin/python tests/fuzz/make_corpus.py

(the venv of tests/interop/venv.sh has fastavro). The input layouts are
described at the top of each tests/fuzz/fuzz_<target>.c.
"""
import io
import json
import os
import re
import shutil
import sys

from fastavro import schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SEED_MAX = 4096

TRIGGER = "6f9b2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"

# Typical string values, by field name; any other field gets its name.
STRINGS = {
    "tenant": "acme", "action": "core.reindex_search",
    "id": "core.reindex_search", "release": "4.2.0", "trigger_id": TRIGGER,
    "reactor": "reactor-1:4242", "policy": "once",
    "output_tail": "caf\u00e9 \u2713 \U0001f680\nValueError: boom\n",
    "error": "exit code 253", "environment": "production",
    "requested_by": "ci/pipeline#1234",
    "description": "Rebuild the search index",
}
NAMES = ["core.reindex_search", "billing.fix_invoices", "core.warm_cache"]


def event_types():
    """[(index from 1, schema file stem, ce_type)] in enum pd_evtype_e order."""
    with open(os.path.join(ROOT, "schemas", "event.h")) as f:
        text = f.read()
    body = re.search(r"enum pd_evtype_e \{(.*?)\}", text, re.S).group(1)
    types = []
    for m in re.finditer(r"PD_EVT_(\w+),\s*/\*\s*\w+:\s*\"([^\"]+)\"", body):
        types.append((len(types) + 1, m.group(1).lower(), m.group(2)))
    if not types:
        sys.exit("make_corpus.py: no event types found in schemas/event.h")
    return types


# ---- sample data from a schema ----

def sample(schema, variant, field="", named=None):
    """A datum of `schema` (parsed JSON of an .avsc, not fastavro's form)."""
    named = {} if named is None else named
    if isinstance(schema, list):  # only ["null", X] unions here
        if variant == "empty":
            return None
        return sample(schema[1], variant, field, named)
    if isinstance(schema, str):
        if schema in named:
            return sample(named[schema], variant, field, named)
        t = schema
        schema = {"type": t}
    t = schema["type"]
    if isinstance(t, (dict, list)):
        return sample(t, variant, field, named)
    if t == "string":
        if variant == "empty":
            return ""
        s = STRINGS.get(field, field)
        # Non-ASCII everywhere but in the tenant, which must stay a valid
        # tenant name for the message to get past the header checks.
        if variant == "extreme" and field != "tenant":
            s += " \u00e9\U0001f680"
        return s
    if t == "int":
        return {"typical": 1, "empty": 0, "extreme": -2**31}[variant]
    if t == "long":
        return {"typical": 1764079200123, "empty": 0,
                "extreme": -2**63}[variant]
    if t == "boolean":
        return variant != "empty"
    if t == "enum":
        named[schema["name"]] = schema
        syms = schema["symbols"]
        return {"typical": syms[1 % len(syms)], "empty": syms[0],
                "extreme": syms[-1]}[variant]
    if t == "array":
        n = {"typical": 2, "empty": 0, "extreme": 3}[variant]
        items = schema["items"]
        if items == "string":
            return (NAMES + [""])[:n] if variant == "extreme" else NAMES[:n]
        return [sample(items, "typical" if k % 2 == 0 else "extreme", field,
                       named) for k in range(n)]
    if t == "record":
        named[schema["name"]] = schema
        return {f["name"]: sample(f["type"], variant, f["name"], named)
                for f in schema["fields"]}
    raise ValueError("no sample for type %r" % (t,))


# ---- a small Avro binary encoder ----

def zigzag(n):
    u = (n << 1) ^ (n >> 63)
    out = bytearray()
    u &= (1 << 64) - 1
    while u >= 0x80:
        out.append((u & 0x7f) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def encode(schema, datum, blocks="one", named=None):
    """blocks: "one" (one block, as everyone writes), "negative" (a negative
    count followed by the block's size), "each" (one block per item)."""
    named = {} if named is None else named
    if isinstance(schema, list):
        if datum is None:
            return zigzag(0)
        return zigzag(1) + encode(schema[1], datum, blocks, named)
    if isinstance(schema, str):
        if schema in named:
            return encode(named[schema], datum, blocks, named)
        schema = {"type": schema}
    t = schema["type"]
    if isinstance(t, (dict, list)):
        return encode(t, datum, blocks, named)
    if t == "string":
        b = datum.encode()
        return zigzag(len(b)) + b
    if t in ("int", "long"):
        return zigzag(datum)
    if t == "boolean":
        return b"\x01" if datum else b"\x00"
    if t == "enum":
        named[schema["name"]] = schema
        return zigzag(schema["symbols"].index(datum))
    if t == "array":
        items = [encode(schema["items"], d, blocks, named) for d in datum]
        if not items:
            return zigzag(0)
        if blocks == "each":
            return b"".join(zigzag(1) + i for i in items) + zigzag(0)
        body = b"".join(items)
        if blocks == "negative":
            return zigzag(-len(items)) + zigzag(len(body)) + body + zigzag(0)
        return zigzag(len(items)) + body + zigzag(0)
    if t == "record":
        named[schema["name"]] = schema
        return b"".join(encode(f["type"], datum[f["name"]], blocks, named)
                        for f in schema["fields"])
    raise ValueError("cannot encode type %r" % (t,))


def has_array(schema):
    return '"array"' in json.dumps(schema)


# ---- output ----

def write_seeds(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    if len({name for name, _ in seeds}) != len(seeds):
        sys.exit("make_corpus.py: two %s seeds have the same name" % target)
    for name, data in seeds:
        if len(data) >= SEED_MAX:
            sys.exit("make_corpus.py: seed %s/%s is %d bytes" %
                     (target, name, len(data)))
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%-12s %3d seeds" % (target, len(seeds)))


def dict_escape(b):
    out = []
    for c in b:
        if c in (0x22, 0x5c):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7f:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return '"' + "".join(out) + '"'


def write_dict(target, words):
    d = os.path.join(HERE, "dict")
    os.makedirs(d, exist_ok=True)
    seen, lines = set(), []
    for w in words:
        b = w.encode() if isinstance(w, str) else w
        if b and b not in seen:
            seen.add(b)
            lines.append(dict_escape(b))
    with open(os.path.join(d, target + ".dict"), "w") as f:
        f.write("# Generated by tests/fuzz/make_corpus.py.\n")
        f.write("\n".join(lines) + "\n")


# ---- the targets ----

def avro_header(fp):
    return b"\xc3\x01" + fp


def main():
    types = event_types()
    by_stem = {stem: idx for idx, stem, _ in types}
    schemas, fps, data = {}, {}, {}
    for idx, stem, _ in types:
        with open(os.path.join(ROOT, "schemas", stem + ".avsc")) as f:
            schemas[idx] = json.load(f)
        parsed = parse_schema(schemas[idx])
        # fastavro returns the fingerprint's bytes in wire order.
        fps[idx] = bytes.fromhex(
            fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        data[idx] = {v: sample(schemas[idx], v)
                     for v in ("typical", "empty", "extreme")}
        for v, datum in data[idx].items():
            out = io.BytesIO()
            schemaless_writer(out, parsed, datum)
            if out.getvalue() != encode(schemas[idx], datum):
                sys.exit("make_corpus.py: the encoder disagrees with "
                         "fastavro on %s %s" % (stem, v))

    def datum_bytes(idx, variant="typical", blocks="one"):
        return encode(schemas[idx], data[idx][variant], blocks)

    def value(idx, variant="typical", blocks="one"):
        return avro_header(fps[idx]) + datum_bytes(idx, variant, blocks)

    def json_value(idx, variant="typical", ascii=False):
        return json.dumps(data[idx][variant], ensure_ascii=ascii).encode()

    # fuzz_avro: type byte (bit 6: NULL content type, bit 7: raw value).
    seeds = []
    for idx, stem, _ in types:
        b = idx - 1
        for v in ("typical", "empty", "extreme"):
            seeds.append(("%s.%s" % (stem, v),
                          bytes([b]) + datum_bytes(idx, v)))
        seeds.append((stem + ".raw", bytes([0x80 | b]) + value(idx)))
        seeds.append((stem + ".null-ctype", bytes([0x40 | b]) +
                      datum_bytes(idx)))
        d = datum_bytes(idx)
        seeds.append((stem + ".truncated", bytes([b]) + d[:len(d) // 2]))
        seeds.append((stem + ".trailing", bytes([b]) + d + b"\x00"))
        if has_array(schemas[idx]):
            seeds.append((stem + ".negative-blocks", bytes([b]) +
                          datum_bytes(idx, "extreme", "negative")))
            seeds.append((stem + ".block-per-item", bytes([b]) +
                          datum_bytes(idx, "extreme", "each")))
    other = types[1][0]
    seeds.append(("fingerprint-of-another-type.raw",
                  bytes([0x80]) + value(other)))
    seeds.append(("bad-magic.raw", bytes([0x80]) + b"\xc3\x02" +
                  value(1)[2:]))
    seeds.append(("header-only.raw", bytes([0x80]) + avro_header(fps[1])))
    write_seeds("fuzz_avro", seeds)

    # fuzz_json: type byte (bit 7: "; charset=utf-8"), then the JSON.
    seeds = []
    for idx, stem, _ in types:
        b = idx - 1
        for v in ("typical", "empty", "extreme"):
            seeds.append(("%s.%s.json" % (stem, v),
                          bytes([b]) + json_value(idx, v)))
        seeds.append((stem + ".escaped.json",
                      bytes([0x80 | b]) + json_value(idx, "extreme", True)))
        # Only the fields without a default: the decoder fills in the rest.
        required = {f["name"]: data[idx]["typical"][f["name"]]
                    for f in schemas[idx]["fields"] if "default" not in f}
        seeds.append((stem + ".required-only.json",
                      bytes([b]) + json.dumps(required).encode()))
    rd = data[1]["typical"]
    bad = {
        "wrong-type": dict(rd, deployed_at="yesterday"),
        "bad-symbol": dict(rd, selection="SOME"),
        "extra-member": dict(rd, extra={"a": [1, 2.5, None]}),
        "real-number": dict(rd, deployed_at=1.5),
        "item-not-string": dict(rd, actions=["a", 1]),
    }
    for name, obj in bad.items():
        seeds.append(("release_deployed.%s.json" % name,
                      b"\x00" + json.dumps(obj).encode()))
    for name, text in [
            ("duplicate-key", '{"release":"1","release":"2",'
                              '"selection":"AUTO"}'),
            ("nul-escape", '{"release":"a\\u0000b","selection":"AUTO"}'),
            ("surrogates", '{"release":"\\ud83d\\ude80 \\udc00",'
                           '"selection":"AUTO"}'),
            ("too-deep", '{"release":"1","selection":"AUTO","x":' +
                         "[" * 20 + "]" * 20 + "}"),
            ("big-integer", '{"release":"1","selection":"AUTO",'
                            '"deployed_at":9223372036854775808}'),
            ("not-an-object", '["release","4.2.0"]'),
            ("truncated", '{"release":"4.2.0","selection":"AU'),
            ("no-bytes", "")]:
        seeds.append(("release_deployed.%s.json" % name,
                      b"\x00" + text.encode()))
    if "action_finished" in by_stem:
        idx = by_stem["action_finished"]
        fin = dict(data[idx]["typical"], exit_code=2**31)
        seeds.append(("action_finished.int-overflow.json",
                      bytes([idx - 1]) + json.dumps(fin).encode()))
    write_seeds("fuzz_json", seeds)

    # fuzz_event: seven header selectors, the tombstone byte, the value.
    def event(type_idx, val, spec=0, id_=0, src=0, time=0, tenant=0, ct=0,
              tomb=0, extra=b""):
        sels = [spec, id_, src, ((type_idx - 1) << 4) if type_idx else 1,
                time, tenant, ct]
        return bytes(sels) + extra + bytes([tomb]) + val

    seeds = []
    for idx, stem, _ in types:
        seeds.append((stem + ".avro", event(idx, value(idx))))
        seeds.append((stem + ".json", event(idx, json_value(idx), ct=0x20)))
    seeds.append(("release_deployed.no-optional-headers",
                  event(1, value(1), time=1, tenant=1, ct=1)))
    seeds.append(("release_deployed.decoys",
                  bytes([0x08] * 7) + b"\x00" + value(1)))
    seeds.append(("release_deployed.tombstone",
                  event(1, b"", tomb=0x0f)))
    seeds.append(("release_deployed.specversion-0.3",
                  event(1, value(1), spec=0x10)))
    seeds.append(("release_deployed.no-type", event(0, value(1))))
    seeds.append(("release_deployed.charset-json",
                  event(1, json_value(1), ct=0x30)))
    seeds.append(("release_deployed.text-plain",
                  event(1, value(1), ct=0x50)))
    seeds.append(("release_deployed.empty-id", event(1, value(1), id_=2)))
    if "action_started" in by_stem:
        idx = by_stem["action_started"]
        seeds.append(("action_started.tenant-mismatch",
                      event(idx, value(idx), tenant=0x10)))
    # ce_id of 256 bytes (the longest accepted) and 257, from the input:
    # selector 3, length 0xff plus a second byte.
    for n in (256, 257):
        sels = bytes([0, 3, 0xff, n - 255]) + b"i" * n + bytes(
            [0, 0, 0, 0, 0, 0])
        seeds.append(("release_deployed.id-%d" % n, sels + value(1)))
    seeds.append(("unknown-type",
                  bytes([0, 0, 0, 3, 19]) + b"release.deployed.v2" +
                  bytes([0, 0, 0, 0]) + value(1)))
    write_seeds("fuzz_event", seeds)

    # fuzz_config: config files.
    with open(os.path.join(ROOT, "examples", "postdeploy.ini"), "rb") as f:
        example = f.read()
    configs = [
        ("example.ini", example),
        ("full.ini", FULL_CONFIG.encode()),
        ("minimal-action.ini", b"[action core.reindex]\nrun = reindex\n"),
        ("comments.ini", b"# a comment\n; another\n\n   \t\n"
                         b"  # indented comment\n"
                         b"[reactor]   # why this section\nworkers = 5\n"),
        ("inline-comments.ini",
         b"[reactor]\ngroup.id = grp # the group\n"
         b"state = /x/state.db\t; why\nlog_dir = /tmp/a#b\nname = r;1\n"
         b"[action b]\nrun = echo a#b c;d # says hello\n"
         b"description =#not a comment\nworkdir = # a comment: empty\n"),
        ("shell-quotes.ini",
         b"[action a]\nrun = echo 'x # y' \"p ; q\" \\#z it\\'s # note\n"),
        ("quoted-program.ini",
         b"[action a]\nrun = \"/opt/my app/tool\" --flag "
         b"\"{tenant}\" --release={release} \"a\\\"b\\\\c\\$d\"\n"),
        ("quoted-value.ini",
         b"[action a]\nrun = x\ndescription = \"  two # kept ; \"  "
         b"# dropped\n[kafka]\nsasl.password = \"#secret\"\n"),
        ("crlf-bom.ini", b"\xef\xbb\xbf[reactor]\r\nworkers = 7\r\n"
                         b"group.id = g\r\n"),
        ("no-final-newline.ini", b"[reactor]\nworkers = 9"),
        ("tenants.ini", b"[cli]\ntenants = acme,  beta ,, acme,gamma,\n"),
        ("repeated-keys.ini", b"[reactor]\nworkers = 2\nworkers = 3\n"
                              b"[cli]\ntenants = a, b\ntenants = c\n"),
        ("env.ini", b"[action a]\nrun = env\nenv.FOO = bar baz\n"
                    b"env.EMPTY =\nenv._X1 = a=b\n"),
        ("after-chain.ini", b"[action a]\nrun = a\n[action b]\nrun = b\n"
                            b"after = a\n[action c]\nrun = c\n"
                            b"after = a, b\n"),
        ("after-cycle.ini", b"[action a]\nrun = a\nafter = c\n"
                            b"[action b]\nrun = b\nafter = a\n"
                            b"[action c]\nrun = c\nafter = b\n"),
        ("after-inner-cycle.ini", b"[action a]\nrun = a\nafter = b\n"
                                  b"[action b]\nrun = b\nafter = c\n"
                                  b"[action c]\nrun = c\nafter = b\n"),
        ("after-self.ini", b"[action a]\nrun = a\nafter = a\n"),
        ("after-unknown.ini", b"[action a]\nrun = a\nafter = nope\n"),
        ("duplicate-action.ini", b"[action a]\nrun = a\n[action a]\n"
                                 b"run = b\n"),
        ("durations.ini", b"[reactor]\nshutdown_grace = 1.5\n"
                          b"[action a]\nrun = a\ntimeout = 500ms\n"
                          b"retry_backoff = 2h\n[action b]\nrun = b\n"
                          b"timeout = 0.0001s\nretry_backoff = 3m\n"),
        ("bad-duration.ini", b"[action a]\nrun = x\n"
                             b"timeout = 10 minutes\n"),
        ("bad-int.ini", b"[reactor]\nworkers = 257\n"),
        ("bad-bool.ini", b"[reactor]\nstate_sync = maybe\n"),
        ("unknown-section.ini", b"[reactor]\n[nope]\n"),
        ("unknown-key.ini", b"[action a]\nrun = x\nrunn = y\n"),
        ("unclosed-section.ini", b"[reactor\n"),
        ("no-equals.ini", b"[reactor]\njust some words\n"),
        ("unterminated-quote.ini", b"[action a]\nrun = echo 'oops\n"),
        ("trailing-backslash.ini", b"[action a]\nrun = echo \\\n"),
        ("no-run.ini", b"[action a]\nauto = true\n"),
        ("bad-tenant.ini", b"[reactor]\ndefault_tenant = -bad\n"),
        ("nul-byte.ini", b"[reactor]\nworkers = 4\x00\n"),
        ("long-line.ini", b"[reactor]\nlog_dir = " + b"x" * 3000 + b"\n"),
        # Overrides after "%%": SECTION TAB KEY TAB VALUE, as -s sets them.
        ("example-overrides.ini", example + b"\n%%\n"
         b"reactor\tworkers\t8\n"
         b"kafka\tsocket.timeout.ms\t1000\n"
         b"action core.reindex_search\ttimeout\t90s\n"
         b"action core.reindex_search\trun\techo '{tenant}' \"{release}\"\n"
         b"action core.reindex_search\tenv.MODE\tfast\n"
         b"action core.warm_cache\tafter\tbilling.backfill_invoices\n"
         b"cli\ttenants\tacme, beta\n"),
        ("override-makes-cycle.ini", b"[action a]\nrun = a\n[action b]\n"
         b"run = b\nafter = a\n%%\naction a\tafter\tb\n"),
        ("override-unknown-action.ini", b"[reactor]\n%%\n"
         b"action nope\trun\tx\n"),
        ("override-unknown-key.ini", b"[reactor]\n%%\n"
         b"reactor\tbogus\t1\n"),
        ("split-and-durations.txt",
         b"echo \"a\\\nb\" 'c d' e\\ f\n1.5\n250ms\n10m\n2h\n"
         b"99999999999999999999s\n0.1234567890123h\n{tenant}{{tenant}}\n"),
    ]
    write_seeds("fuzz_config", configs)

    # Dictionaries.
    field_names, symbols = set(), set()

    def walk(s):
        if isinstance(s, dict):
            for f in s.get("fields", []):
                field_names.add(f["name"])
                walk(f["type"])
            symbols.update(s.get("symbols", []))
            for k in ("items", "type"):
                if isinstance(s.get(k), (dict, list)):
                    walk(s[k])
        elif isinstance(s, list):
            for x in s:
                walk(x)

    for s in schemas.values():
        walk(s)
    avro_words = [b"\xc3\x01"] + [avro_header(fp) for fp in fps.values()] + [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # the longest varint
        b"\x80\x80\x80\x80\x10",  # 2^31 as an int would be read
        b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80",  # bad UTF-8
        b"\xf0\x9f\x9a\x80",
    ]
    json_words = ['"%s":' % n for n in sorted(field_names)] + [
        '"%s"' % s for s in sorted(symbols)] + [
        "null", "true", "false", "[]", "{}", "\\u0000", "\\ud83d\\ude80",
        "\\udc00", "9223372036854775807", "-9223372036854775808",
        "2147483648", "1e3", '"type":', '"ce_id":']
    type_words = [t[2] for t in types]
    write_dict("fuzz_avro", avro_words)
    write_dict("fuzz_json", json_words)
    write_dict("fuzz_event", type_words + [
        "1.0", "application/avro", "application/json", "; charset=utf-8",
        "acme"] + avro_words + json_words)

    config_words = ["[kafka]", "[reactor]", "[topics]", "[cli]", "[action ",
                    "]\n"]
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        for m in re.finditer(r"^\| `\[(\w+)(?: NAME)?\]` \| `([^`]+)`",
                             f.read(), re.M):
            key = m.group(2)
            if key == "PROPERTY":
                key = "bootstrap.servers"
            config_words.append("\n%s = " % key.replace("NAME", "X"))
    config_words += [
        "true", "false", "yes", "off", "once", "always", "error", "debug",
        "ms", "s", "m", "h", "1.5", "{tenant}", "{release}", "{action}",
        " # ", " ; ", "'", '"', "\\", "\\\n", "\r\n", b"\xef\xbb\xbf", ",",
        "acme, beta", "core.reindex_search", "\n%%\n", "\t",
        "action core.reindex_search\t"]
    write_dict("fuzz_config", config_words)


FULL_CONFIG = """[kafka]
bootstrap.servers = 127.0.0.1:9092

[reactor]
group.id = grp
state = /var/lib/pd/state.db
state_sync = yes
log_dir = /var/log/pd
default_tenant = acme
name = reactor-1
workers = 16
shutdown_grace = 1m
log_level = debug
[topics]
events = ev
results = res
dlq = dead
partitions = 12
replication = 3
[cli]
tenants = acme, beta
[action core.migrate]
run = migrate
[action core.reindex]
run = reindex
[action core.fix]
run = /usr/bin/fix --tenant {tenant}
auto = on
policy = always
description = Fixes invoices
timeout = 10m
retries = 2
retry_backoff = 250ms
workdir = /srv/app
after = core.migrate, core.reindex
env.MODE = fast
env.LEVEL = 3
"""

if __name__ == "__main__":
    main()
