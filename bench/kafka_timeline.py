#!/usr/bin/env python3
"""kafka_timeline.py - the Kafka requests a program made, from an strace.

Benchmark 4 asks how much of `postdeploy deploy --wait` is broker round
trips. librdkafka sends each request with one sendmsg() (size, api key,
version, correlation id first) and reads each response's size and
correlation id with an 8-byte recvmsg(), so an strace of those two calls
gives every request, its API and its round trip:

  strace -f -ttt -e trace=sendmsg,recvmsg -xx -s 12 -o trace.txt \\
      postdeploy deploy --auto --release 1.0.0 --tenant acme --wait -c cfg.ini
  python3 bench/kafka_timeline.py trace.txt

Prints one line per request (start in ms after the first request, API, round
trip) and a summary: the time during which at least one request other than
a Fetch was waiting for the broker, and the same for Fetch (a Fetch is a
long poll: it waits for the reactor's results, not only for the broker).
strace slows every traced call down, so the round trips it shows are upper
bounds; the count and the order are exact.
"""
import re
import sys

APIS = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata",
        8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator",
        11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
        18: "ApiVersions", 19: "CreateTopics", 22: "InitProducerId",
        32: "DescribeConfigs", 60: "DescribeCluster"}

LINE = re.compile(r'^(\d+)\s+([\d.]+)\s+(sendmsg|recvmsg)\((\d+), .*?iov_base="([^"]*)"')


def hexbytes(s):
    return bytes(int(h, 16) for h in re.findall(r'\\x([0-9a-f]{2})', s))


def main(path):
    pending = {}   # (pid, fd, corrid) -> (t, api)
    done = []      # (t0, t1, api)
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        pid, t, call, fd, data = m.groups()
        t, b = float(t), hexbytes(data)
        if call == "sendmsg" and len(b) >= 12:
            api = int.from_bytes(b[4:6], "big")
            corr = int.from_bytes(b[8:12], "big")
            pending[(pid, fd, corr)] = (t, APIS.get(api, "api%d" % api))
        elif call == "recvmsg" and len(b) == 8:
            corr = int.from_bytes(b[4:8], "big")
            if (pid, fd, corr) in pending:
                t0, api = pending.pop((pid, fd, corr))
                done.append((t0, t, api))
    if not done:
        sys.exit("no Kafka request found in %s" % path)
    done.sort()
    base = done[0][0]
    for t0, t1, api in done:
        print("%8.1f ms  %-16s %6.1f ms" % ((t0 - base) * 1e3, api, (t1 - t0) * 1e3))

    def busy(spans):
        total, end = 0.0, None
        for t0, t1 in sorted(spans):
            if end is None or t0 > end:
                total += t1 - t0
                end = t1
            elif t1 > end:
                total += t1 - end
                end = t1
        return total * 1e3

    rt = [(a, b) for a, b, api in done if api != "Fetch"]
    fe = [(a, b) for a, b, api in done if api == "Fetch"]
    print("requests: %d (%d Fetch); span %.1f ms" %
          (len(done), len(fe), (max(b for _, b, _ in done) - base) * 1e3))
    print("waiting on round trips other than Fetch: %.1f ms" % busy(rt))
    print("waiting on Fetch (includes the reactor's work): %.1f ms" % busy(fe))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
