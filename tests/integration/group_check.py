#!/usr/bin/env python3
"""group_check.py - what the multi-reactor tests (lib_group.sh) assert.

  group_check.py dump BROKERS TOPIC ISOLATION
      the results topic, every partition from its beginning to its end,
      read with isolation.level ISOLATION (read_committed or
      read_uncommitted): one JSON object per record (partition, offset,
      timestamp_ms, type, and the decoded tenant, action, status, reactor,
      retrying, started_at, finished_at, release when the record has them).

  group_check.py check --markers DIR --expected FILE --committed JSONL
                       --uncommitted JSONL --report JSON
                       [--allow-interrupted] [--zombie NAME --since NS]
      exit 0 when, for every expected (tenant, action, release):
      - markers/runs holds exactly one finished run, and no run of it
        overlapped another (markers/overlap is empty, and no two runs'
        [start, end] intersect);
      - no run began and never finished, unless --allow-interrupted (a
        run the supervisor's lease stopped);
      - the committed results hold exactly one action.finished SUCCEEDED
        (not retrying) for it, the last action.finished is that one, and it
        names the reactor the marker names;
      - the report says succeeded, with the release, and its started_at and
        finished_at hold the marker's run;
      with --zombie NAME --since NS: no committed record about a tenant
      of reactor NAME was produced at or after NS (the time NAME was SIGSTOPped: anything
      later it wrote after SIGCONT, for partitions it had lost).
      Every problem is printed with the tenant, action and reactors.

Uses confluent-kafka and fastavro (tests/interop/venv.sh), and the decoder
of tests/interop/interop.py.
"""
import argparse
import collections
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))


def dump(brokers, topic, isolation):
    from confluent_kafka import Consumer, TopicPartition, KafkaError
    import interop

    by_fp = interop.load_schemas()
    c = Consumer({"bootstrap.servers": brokers, "group.id": "groupcheck",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=10)
    if topic not in md.topics or md.topics[topic].error:
        sys.exit("no topic %s" % topic)
    parts = sorted(md.topics[topic].partitions)
    todo = set()
    assign = []
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            todo.add(p)
        assign.append(TopicPartition(topic, p, lo))
    c.assign(assign)
    while todo:
        msg = c.poll(10)
        if msg is None:
            sys.exit("no record and no end of partition in 10 s: %s" % sorted(todo))
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                todo.discard(msg.partition())
                continue
            sys.exit("consume: %s" % msg.error())
        hdrs = {k: v.decode(errors="replace") for k, v in (msg.headers() or [])}
        rec = {"partition": msg.partition(), "offset": msg.offset(),
               "timestamp_ms": msg.timestamp()[1], "type": hdrs.get("ce_type"),
               "ce_id": hdrs.get("ce_id"),
               "key": msg.key().decode(errors="replace") if msg.key() else None}
        if hdrs.get("content-type") == "application/avro" and msg.value():
            try:
                _, datum = interop.decode_single_object(by_fp, msg.value())
                for k in ("tenant", "action", "status", "reactor", "retrying",
                          "started_at", "finished_at", "release", "attempt"):
                    if k in datum:
                        v = datum[k]
                        if isinstance(v, datetime.datetime):
                            v = int(v.timestamp() * 1000)
                        rec[k] = v
            except Exception as e:  # a record we cannot read is a finding
                rec["decode_error"] = str(e)
        print(json.dumps(rec, sort_keys=True, default=str))
    c.close()


def ms_of(s):
    """The report's time stamps ("...T..:..:..[.fff]Z") in ms."""
    if s is None:
        return None
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in s else "%Y-%m-%dT%H:%M:%SZ"
    dt = datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() * 1000


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.split() for l in f if l.strip()]


def orphaned(a, run):
    """Why run (reactor, start, end) may have been run again: its reactor
    was killed (kill -9) while it ran or within 2 s after, before its
    outcome was recorded, and the partition went to another member before
    the event came back to the restarted one; "" if not so."""
    if not a.timeline:
        return ""
    events = [l for l in lines(a.timeline) if len(l) >= 3 and l[2] == run[0]]
    for i, e in enumerate(events):
        k = int(e[0])
        if e[1] != "killed" or not (run[1] - 1e9 <= k <= run[2] + 2e9):
            continue
        # Back soon or not: its partitions may have moved at the rebalance
        # its return causes, before its event came back to it.
        back = [int(f[0]) for f in events[i + 1:] if f[1] == "start"]
        return "%s killed %.3f s, back %s" % (
            run[0], k / 1e9 % 1000,
            "%.1f s later" % ((back[0] - k) / 1e9) if back else "never")
    return ""


def check(a):
    problems = []
    say = problems.append
    orphan_runs = {}
    expected = {}
    for f in lines(a.expected):
        expected[(f[0], f[1])] = f[2]

    # Markers: finished runs, runs that began, overlaps.
    runs = collections.defaultdict(list)      # (t, a) -> [(reactor, start, end)]
    for f in lines(os.path.join(a.markers, "runs")):
        runs[(f[0], f[1])].append((f[2], int(f[3]), int(f[4])))
    finished_starts = {(f[0], f[1], f[2], f[3]) for f in lines(os.path.join(a.markers, "runs"))}
    interrupted = []
    for f in lines(os.path.join(a.markers, "begun")):
        if (f[1], f[2], f[3], f[4]) not in finished_starts:
            interrupted.append(f)
    for f in lines(os.path.join(a.markers, "overlap")):
        say("OVERLAP: %s %s: a run on %s began while %s held the lock"
            % (f[1], f[2], f[3], " ".join(f[5:]) or "?"))
    for f in lines(os.path.join(a.markers, "stale")):
        print("note: %s %s: a run on %s found the lock of a killed run (%s)"
              % (f[1], f[2], f[3], " ".join(f[5:]) or "?"))
    for key in sorted(set(runs) - set(expected)):
        say("%s %s: ran but was not expected to" % key)
    for key in sorted(expected):
        rs = sorted(runs.get(key, []), key=lambda r: r[1])
        if not rs:
            began = sorted({f[3] for f in interrupted if (f[1], f[2]) == key})
            say("%s %s: no finished run (began and did not finish on: %s)"
                % (key[0], key[1], ", ".join(began) or "none"))
        elif len(rs) > 1:
            desc = "; ".join("%s %.3f..%.3f s" % (r[0], r[1] / 1e9 % 1000, r[2] / 1e9 % 1000)
                             for r in rs)
            why = [orphaned(a, x) for x in rs[:-1]]
            if all(why):
                # The one case the design leaves open (README, "Not there
                # yet"): a command that ended under the supervisor of a
                # reactor killed before it recorded the outcome, and not
                # back within the session timeout. Run again, never at once.
                print("note: %s %s: ran %d times: %s (allowed: %s)"
                      % (key[0], key[1], len(rs), desc, "; ".join(why)))
                orphan_runs[key] = len(rs)
            else:
                say("%s %s: ran %d times: %s" % (key[0], key[1], len(rs), desc))
            for x, y in zip(rs, rs[1:]):
                if y[1] < x[2]:
                    say("%s %s: runs on %s and %s overlapped in time"
                        % (key[0], key[1], x[0], y[0]))
    for f in interrupted:
        msg = "%s %s: a run on %s began and never finished" % (f[1], f[2], f[3])
        if a.allow_interrupted:
            print("note: " + msg + " (allowed: interrupted)")
        else:
            say(msg)

    # The committed results.
    finished = collections.defaultdict(list)
    seen_ids = set()
    for l in open(a.committed):
        r = json.loads(l)
        if r.get("decode_error"):
            say("committed record %s/%s cannot be decoded: %s"
                % (r["partition"], r["offset"], r["decode_error"]))
        if r.get("type") == "action.finished":
            # The same record twice (its ce_id): the outbox published it
            # again after a kill -9 between the commit and the row's
            # delete. At least once, as RELIABILITY says; a reader dedupes.
            if r.get("ce_id") and r["ce_id"] in seen_ids:
                print("note: %s %s: record %s committed again (same ce_id, from %s)"
                      % (r.get("tenant"), r.get("action"), r["ce_id"], r.get("reactor")))
                continue
            seen_ids.add(r.get("ce_id"))
            finished[(r.get("tenant"), r.get("action"))].append(r)
    for key in sorted(expected):
        fs = sorted(finished.get(key, []), key=lambda r: (r["timestamp_ms"], r["offset"]))
        ok = [r for r in fs if r.get("status") == "SUCCEEDED" and not r.get("retrying")]
        if len(ok) != 1 and not (1 <= len(ok) <= orphan_runs.get(key, 0)):
            say("%s %s: %d committed action.finished SUCCEEDED (want 1), from: %s"
                % (key[0], key[1], len(ok), ", ".join(r.get("reactor", "?") for r in ok) or "none"))
        if fs and fs[-1].get("status") != "SUCCEEDED":
            say("%s %s: the last committed action.finished is %s (from %s)"
                % (key[0], key[1], fs[-1].get("status"), fs[-1].get("reactor")))
        for r in fs:
            if r.get("status") not in ("SUCCEEDED", "INTERRUPTED") or \
                    (r.get("status") == "INTERRUPTED" and not a.allow_interrupted):
                say("%s %s: committed %s from %s" % (key[0], key[1], r.get("status"), r.get("reactor")))
        rs = runs.get(key, [])
        if len(ok) == 1 and len(rs) == 1 and ok[0].get("reactor") != rs[0][0]:
            say("%s %s: the committed result names %s, the marker %s"
                % (key[0], key[1], ok[0].get("reactor"), rs[0][0]))
        if len(ok) == 1 and ok[0].get("release") != expected[key]:
            say("%s %s: the committed result's release is %s, not %s"
                % (key[0], key[1], ok[0].get("release"), expected[key]))

    # What read_committed hid: records of aborted transactions.
    committed = {(json.loads(l)["partition"], json.loads(l)["offset"]) for l in open(a.committed)}
    aborted = [json.loads(l) for l in open(a.uncommitted)]
    aborted = [r for r in aborted if (r["partition"], r["offset"]) not in committed
               and r.get("type") is not None]
    by = collections.Counter(r.get("reactor", "?") for r in aborted)
    print("note: %d record(s) only read_uncommitted sees (aborted)%s" % (
        len(aborted), "".join(", %d from %s" % (n, k) for k, n in sorted(by.items()))))

    if a.zombie:
        late = []
        for l in open(a.committed):
            r = json.loads(l)
            # Records about a tenant: what a lost partition carries (a
            # registry.published of a rebuilt producer is no tenant's).
            if r.get("reactor") == a.zombie and r.get("tenant") and \
                    r["timestamp_ms"] * 1e6 >= a.since:
                late.append(r)
        for r in late:
            say("%s %s: %s committed %s %.1f s after it was stopped (partition %d)"
                % (r.get("tenant"), r.get("action"), a.zombie, r.get("type"),
                   (r["timestamp_ms"] * 1e6 - a.since) / 1e9, r["partition"]))

    # The report against the markers.
    report = {(r["tenant"], r["action"]): r for r in json.load(open(a.report))}
    for key in sorted(expected):
        row = report.get(key)
        if row is None:
            say("%s %s: not in the report" % key)
            continue
        if row.get("state") != "succeeded" or row.get("release") != expected[key]:
            say("%s %s: the report says %s release %s" % (key[0], key[1], row.get("state"), row.get("release")))
            continue
        rs = runs.get(key, [])
        if len(rs) == 1:
            s, e = ms_of(row.get("started_at")), ms_of(row.get("finished_at"))
            # The reactor stamps started before the spawn and finished after
            # the exit; the report's stamps are whole ms.
            if s is None or e is None or s > rs[0][1] / 1e6 + 1 or e < rs[0][2] / 1e6 - 1:
                say("%s %s: the report's run (%s .. %s) is not the marker's (%s, %.3f .. %.3f)"
                    % (key[0], key[1], row.get("started_at"), row.get("finished_at"),
                       rs[0][0], rs[0][1] / 1e9, rs[0][2] / 1e9))

    nruns = sum(len(v) for v in runs.values())
    print("checked %d once-actions: %d finished run(s), %d began and never finished, %d problem(s)"
          % (len(expected), nruns, len(interrupted), len(problems)))
    for p in problems[:60]:
        print("  " + p)
    if len(problems) > 60:
        print("  ... and %d more" % (len(problems) - 60))
    return 1 if problems else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "dump":
        if len(sys.argv) != 5:
            sys.exit(__doc__)
        dump(*sys.argv[2:])
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["check"])
    p.add_argument("--markers", required=True)
    p.add_argument("--expected", required=True)
    p.add_argument("--committed", required=True)
    p.add_argument("--uncommitted", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--allow-interrupted", action="store_true")
    p.add_argument("--timeline")
    p.add_argument("--session-ns", type=int, default=6 * 10**9)
    p.add_argument("--zombie")
    p.add_argument("--since", type=int, default=0)
    return check(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
