"""Third-party clients talking to postdeploy, using nothing of ours but the
Avro schemas in schemas/*.avsc: confluent-kafka for Kafka, fastavro for Avro.

  interop.py publish  BROKERS TOPIC TENANT RELEASE   -> prints the ce_id
  interop.py results  BROKERS TOPIC TRIGGER_ID COUNT TIMEOUT_S
      waits for COUNT final action.finished records caused by TRIGGER_ID,
      decodes them with fastavro and prints one JSON object per line.

A mixed fleet, where writers run older or newer schemas than the reader:
  interop.py publish-finished BROKERS TOPIC AVSC TENANT ACTION STATUS EXIT
      writes an action.finished with the schema file AVSC (e.g. a released
      one in schemas/history/), as an older reactor would.
  interop.py publish-newer BROKERS TOPIC TENANT RELEASE   -> prints the ce_id
      writes a release.deployed with a schema one change ahead of
      schemas/release_deployed.avsc (a field added), as a newer CLI would.
  interop.py dead-letter BROKERS TOPIC CE_ID TIMEOUT_S
      waits for the dead letter of the record CE_ID; prints its reason.
"""
import io
import json
import glob
import os
import struct
import sys
import time
import uuid

import fastavro
from confluent_kafka import Consumer, Producer, TopicPartition

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")


def fingerprint_of(parsed):
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    # fastavro gives the fingerprint's bytes in wire (little-endian) order.
    return int.from_bytes(bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")), "little")


def load_schemas():
    """Fingerprint -> (name, parsed schema) for every schemas/*.avsc and
    every older released one, schemas/history/NAME.vN.avsc: records an
    older reactor wrote may still be on the results topic."""
    by_fp = {}
    paths = glob.glob(os.path.join(SCHEMAS, "*.avsc")) + \
        glob.glob(os.path.join(SCHEMAS, "history", "*.avsc"))
    for path in sorted(paths):
        with open(path) as f:
            parsed = fastavro.parse_schema(json.load(f))
        by_fp[fingerprint_of(parsed)] = (os.path.basename(path).split(".")[0], parsed)
    return by_fp


def single_object(schema, fp, datum):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, datum)
    return b"\xc3\x01" + struct.pack("<Q", fp) + buf.getvalue()


def decode_single_object(by_fp, value):
    if value[:2] != b"\xc3\x01":
        raise ValueError("not Avro single-object encoding")
    (fp,) = struct.unpack("<Q", value[2:10])
    name, schema = by_fp[fp]
    return name, fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)


def produce(brokers, topic, key, ce_type, tenant, value):
    """Produces one CloudEvent in binary mode; returns its ce_id."""
    ce_id = str(uuid.uuid4())
    headers = [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()),
               ("ce_source", b"interop/confluent-kafka"),
               ("ce_type", ce_type.encode()),
               ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()),
               ("ce_tenant", tenant.encode()),
               ("content-type", b"application/avro")]
    errors = []
    p = Producer({"bootstrap.servers": brokers})
    p.produce(topic, key=key.encode(), value=value, headers=headers,
              on_delivery=lambda err, msg: err and errors.append(err))
    if p.flush(30) or errors:
        sys.exit("publish failed: %s" % errors)
    return ce_id


def deploy_datum(release):
    return {"release": release, "environment": "interop", "selection": "AUTO",
            "actions": [], "requested_by": "interop.py",
            "deployed_at": int(time.time() * 1000)}


def publish(brokers, topic, tenant, release):
    by_fp = load_schemas()
    fp, (_, schema) = next((fp, s) for fp, s in by_fp.items() if s[0] == "release_deployed")
    value = single_object(schema, fp, deploy_datum(release))
    print(produce(brokers, topic, tenant, "release.deployed", tenant, value))


def publish_finished(brokers, topic, avsc, tenant, action, status, exit_code):
    with open(avsc) as f:
        schema = fastavro.parse_schema(json.load(f))
    now = int(time.time() * 1000)
    value = single_object(schema, fingerprint_of(schema), {
        "action": action, "tenant": tenant, "release": "0.9.0",
        "trigger_id": "interop-" + str(uuid.uuid4()), "attempt": 1,
        "started_at": now - 1000, "reactor": "old-reactor", "status": status,
        "exit_code": int(exit_code), "duration_ms": 1000,
        "error": "written with " + os.path.basename(avsc),
        "output_tail": "", "finished_at": now, "retrying": False})
    produce(brokers, topic, tenant + "/" + action, "action.finished", tenant, value)


def publish_newer(brokers, topic, tenant, release):
    with open(os.path.join(SCHEMAS, "release_deployed.avsc")) as f:
        newer = json.load(f)
    newer["fields"].append({"name": "priority", "type": "int", "default": 0})
    schema = fastavro.parse_schema(newer)
    datum = dict(deploy_datum(release), priority=7)
    print(produce(brokers, topic, tenant, "release.deployed", tenant,
                  single_object(schema, fingerprint_of(schema), datum)))


def dead_letter(brokers, topic, ce_id, timeout_s):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "interop-" + str(uuid.uuid4()),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        msg = c.poll(0.5)
        if msg is None or msg.error():
            continue
        hdrs = {k: v.decode(errors="replace") for k, v in (msg.headers() or [])}
        if hdrs.get("ce_id") == ce_id:
            c.close()
            print(hdrs.get("postdeploy_error", ""))
            return
    sys.exit("timed out: no dead letter for %s on %s" % (ce_id, topic))


def results(brokers, topic, trigger_id, count, timeout_s):
    by_fp = load_schemas()
    c = Consumer({"bootstrap.servers": brokers, "group.id": "interop-" + str(uuid.uuid4()),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    found = []
    deadline = time.time() + timeout_s
    while len(found) < count:
        if time.time() > deadline:
            sys.exit("timed out: %d of %d results for %s" % (len(found), count, trigger_id))
        msg = c.poll(0.5)
        if msg is None or msg.error():
            continue
        hdrs = {k: v.decode() for k, v in (msg.headers() or [])}
        if hdrs.get("ce_type") != "action.finished":
            continue
        assert hdrs["ce_specversion"] == "1.0", hdrs
        assert hdrs["content-type"] == "application/avro", hdrs
        name, datum = decode_single_object(by_fp, msg.value())
        assert name == "action_finished", name
        if datum["trigger_id"] != trigger_id or datum["retrying"]:
            continue
        assert msg.key().decode() == "%s/%s" % (datum["tenant"], datum["action"])
        assert hdrs["ce_tenant"] == datum["tenant"]
        found.append(datum)
    c.close()
    for d in found:
        print(json.dumps(d, sort_keys=True, default=str))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "publish":
        publish(*args)
    elif cmd == "results":
        results(args[0], args[1], args[2], int(args[3]), float(args[4]))
    elif cmd == "publish-finished":
        publish_finished(*args)
    elif cmd == "publish-newer":
        publish_newer(*args)
    elif cmd == "dead-letter":
        dead_letter(args[0], args[1], args[2], float(args[3]))
    else:
        sys.exit(__doc__)
