#!/usr/bin/env bash
# scripts/check-includes.sh — the include graph stays layered:
#  1. no header includes itself through others, and no two modules of
#     common/ need each other (a module is NAME.c with NAME.h; NAME_int.h
#     and NAME_*.c belong to NAME): argv used config for pd_strv_t while
#     config used argv to split `run`;
#  2. common/ includes nothing from the programs' folders;
#  3. state/ and consumer/runner.c never reach librdkafka's headers, even
#     through another header: they build without librdkafka.
# Prints every "#include" edge with --list. Exit 1 on a violation.
# ctest runs it (lint.include_graph, tests/CMakeLists.txt).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
python3 - "$@" <<'PY'
import os, re, sys

dirs = ["common", "consumer", "producer", "state", "schemas", "include"]
files = [os.path.join(d, f) for top in dirs for d, _, fs in os.walk(top)
         for f in fs if f.endswith((".c", ".h"))]
inc = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
edges = {}
for f in files:
    out = edges.setdefault(f, set())
    for kind, name in inc.findall(open(f, errors="replace").read()):
        if kind == '"':
            for cand in (name, os.path.join("include", name)):
                if os.path.exists(cand):
                    out.add(cand)
                    break
        elif name.startswith("librdkafka/"):
            out.add("<" + name + ">")
if "--list" in sys.argv:
    for f in sorted(edges):
        for t in sorted(edges[f]):
            print(f, "->", t)

def module(path):
    stem = os.path.splitext(path)[0]
    if stem.endswith("_int"):
        return stem[:-4]
    base = re.sub(r"_[a-z]+$", "", stem)
    return base if base != stem and os.path.exists(base + ".h") else stem

bad = 0
# 1. cycles: between headers anywhere, between modules within common/
def cycles(graph, what):
    global bad
    state, stack = {}, []
    def visit(m):
        global bad
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                print(what, "cycle:", " -> ".join(stack[stack.index(n):] + [n]))
                bad = 1
            elif not state.get(n):
                visit(n)
        stack.pop()
        state[m] = 2
    for m in sorted(graph):
        if not state.get(m):
            visit(m)
headers, modules = {}, {}
for f, ts in edges.items():
    for t in ts:
        if t.startswith("<"):
            continue
        if f.endswith(".h"):
            headers.setdefault(f, set()).add(t)
        if f.startswith("common/") and module(t) != module(f):
            modules.setdefault(module(f), set()).add(module(t))
cycles(headers, "header include")
cycles(modules, "common/ module")
# 2. the base layer depends on nothing above it
for f, ts in edges.items():
    if f.startswith("common/"):
        for t in ts:
            if not t.startswith(("common/", "<")):
                print("common/ includes a program's header:", f, "->", t)
                bad = 1
# 3. no librdkafka in state/ and the runner
def reach(f, seen):
    for t in edges.get(f, ()):
        if t not in seen:
            seen.add(t)
            reach(t, seen)
    return seen
for f in files:
    if f.startswith("state/") or f in ("consumer/runner.c", "consumer/runner.h"):
        if "<librdkafka/rdkafka.h>" in reach(f, set()):
            print("reaches librdkafka/rdkafka.h:", f)
            bad = 1
sys.exit(bad)
PY
