#!/usr/bin/env bash
# Known problem 7: nothing stopped the same action from running twice when
# two deploys overlapped. Here the same (tenant, action) never runs twice at
# once, while other tenants run side by side.
source "$(dirname "$0")/lib.sh"
pd_require_broker
# excl.sh: takes a per-tenant lock directory; finding it taken means two
# runs overlap (exit 99). It holds the lock for a moment of work.
cat >"$T/excl.sh" <<'SH'
#!/bin/sh
mkdir "$MARKERS/$1.lock" 2>/dev/null || { echo "overlap" >>"$MARKERS/$1.overlap"; exit 99; }
echo run >>"$MARKERS/$1.excl"
/bin/sleep 0.3
rmdir "$MARKERS/$1.lock"
SH
chmod +x "$T/excl.sh"
pd_config <<INI
[action t.excl]
run = $T/excl.sh {tenant}
auto = true
policy = always
INI
pd_reactor_start
pids=()
for i in 1 2 3; do
	pd_cli deploy --auto --release "1.$i" --tenant acme --tenant globex \
		--wait --timeout 90s >"$T/d$i.out" 2>&1 &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
pd_eq "three overlapping deploys all succeed" 0 "$fails"
pd_eq "acme's action ran three times" 3 "$(pd_lines "$T/markers/acme.excl")"
pd_eq "globex's action ran three times" 3 "$(pd_lines "$T/markers/globex.excl")"
pd_eq "never two at once for one tenant" 0 "$(pd_lines "$T/markers/acme.overlap")"
pd_reactor_stop
pd_done
