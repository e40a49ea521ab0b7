#!/usr/bin/env bash
# What `postdeploy deploy --wait` shows a person: each tenant's lines in the
# order things ran (the plan first, then each action's lines in run order,
# though results arrive from different partitions), a line when an action
# starts, plain lines without a terminal, a status line with the running
# time on one, red failures only where color is allowed, and a Ctrl-C or a
# timeout that says the actions go on and how to see them.
source "$(dirname "$0")/lib.sh"
pd_require_broker
# gate.sh NAME TENANT: says it started on the started FIFO, then waits for a
# line on the release FIFO.
cat >"$T/gate.sh" <<'SH'
#!/bin/sh
echo "$1 $2" >"$MARKERS/started"
read _ <"$MARKERS/release"
echo "$1 $2" >>"$MARKERS/$2.$1"
SH
chmod +x "$T/gate.sh"
pd_action_script
pd_config <<INI
[action c.third]
run = /bin/true
auto = true
after = c.second
[action c.second]
run = /bin/true
auto = true
after = c.first
[action c.first]
run = /bin/true
auto = true
[action t.fail]
run = $T/act.sh t.fail {tenant} 3
auto = false
[action t.slow]
run = /bin/sleep 1.5
auto = false
[action t.gated]
run = $T/gate.sh t.gated {tenant}
auto = false
INI
mkfifo "$T/markers/started" "$T/markers/release"
pd_reactor_start

# --- 200 tenants x a chain of three: every tenant's lines in run order ---
for i in $(seq 1 200); do echo "tenant$i"; done >"$T/tenants"
pd_rc rc pd_cli deploy --auto --release 1 --tenants-file "$T/tenants" --wait --timeout 300s
pd_eq "200 tenants x 3 chained actions succeed" 0 "$rc"
pd_check "it counted 600 finished" grep -q "^600 action(s) finished, 0 failed" "$T/out"
cp "$T/out" "$T/order.out"
# For each tenant, its lines must read: the plan, then started and
# SUCCEEDED of c.first, then of c.second, then of c.third.
python3 - "$T/order.out" >"$T/order.check" <<'PY' || true
import re, sys
seen = {}
for line in open(sys.argv[1]):
    m = re.match(r"^(tenant\d+): +(\S+)(?: +(started|SUCCEEDED))?", line)
    if not m:
        continue
    t, what, verb = m.group(1), m.group(2), m.group(3)
    seen.setdefault(t, []).append("plan" if verb is None else f"{what} {verb}")
want = ["plan"] + [f"c.{a} {v}" for a in ("first", "second", "third") for v in ("started", "SUCCEEDED")]
bad = [t for t in seen if seen[t] != want]
print(len(seen), len(bad), *(f"{t}: {seen[t]}" for t in bad[:3]))
PY
pd_eq "every tenant: plan, then each action's start and finish in run order" \
	"200 0" "$(cut -d' ' -f1,2 <"$T/order.check")"
[ "$(cut -d' ' -f2 <"$T/order.check")" = 0 ] || head -c 600 "$T/order.check"

# --- without a terminal: plain lines, a start line per action ---
pd_rc rc env PD_WAIT_HEARTBEAT_MS=400 "$PD_BIN/postdeploy" deploy --one t.fail t.slow \
	--release 2 --tenant acme --wait --timeout 60s -c "$T/postdeploy.ini"
pd_eq "a failure makes the wait exit 1" 1 "$rc"
cp "$T/out" "$T/plain.out"
pd_check "a start line names tenant, action and attempt" \
	grep -Eq "^acme: t.fail +started \(attempt 1\)$" "$T/plain.out"
pd_check "a finish line gives the exit code and a duration in human units" \
	grep -Eq "^acme: t.fail +FAILED \(exit 3\) in [0-9]+ ms" "$T/plain.out"
pd_check "seconds are shown as seconds" \
	grep -Eq "^acme: t.slow +SUCCEEDED in 1\.[0-9] s$" "$T/plain.out"
pd_check "while it runs, a plain line says what runs and for how long" \
	grep -Eq "^\[1/2 done, 1 failed\] running: acme t.slow [0-9]+ ms|^\[1/2 done, 1 failed\] running: acme t.slow 1\.[0-9] s" "$T/plain.out"
pd_check "no carriage return nor escape sequence without a terminal" \
	bash -c "! grep -q \$'[\r\033]' '$T/plain.out'"

# --- on a terminal (script gives it one) ---
on_tty() { # on_tty ENV... : the deploy on a pseudo-terminal, its bytes in $T/tty.out
	env "$@" script -qec "'$PD_BIN/postdeploy' deploy --one t.fail t.slow --release 3 \
		--tenant acme --wait --timeout 60s -c '$T/postdeploy.ini'" /dev/null >"$T/tty.out" 2>&1 || true
}
on_tty TERM=xterm NO_COLOR=
pd_check "on a terminal FAILED is red" grep -q $'\033\\[1;31mFAILED\033\\[0m' "$T/tty.out"
pd_check "on a terminal the status line is redrawn with the running time" \
	grep -Eq $'\r\033\\[K\\[1/2 done, 1 failed\\] running: acme t.slow [0-9.]+ (ms|s)' "$T/tty.out"
cp "$T/tty.out" "$T/tty-color.out"
on_tty TERM=xterm NO_COLOR=1
pd_check "NO_COLOR: no color on a terminal" bash -c "! grep -q \$'\033\\\\[1;31m' '$T/tty.out'"
pd_check "NO_COLOR: FAILED still said" grep -q "t.fail .*FAILED (exit 3)" "$T/tty.out"
on_tty TERM=dumb
pd_check "TERM=dumb: no escape sequence at all" bash -c "! grep -q \$'\033' '$T/tty.out'"
pd_check "TERM=dumb: the lines are there" grep -q "t.slow .*SUCCEEDED" "$T/tty.out"

# --- Ctrl-C: the wait ends, the action goes on, and it says so ---
# With job control on, the background job does not ignore SIGINT (as a
# script's background jobs otherwise do), like a command run at a prompt.
set -m
"$PD_BIN/postdeploy" deploy --one t.gated --release 4 --tenant acme --wait --timeout 60s \
	-c "$T/postdeploy.ini" >"$T/int.out" 2>"$T/int.err" &
cli=$!
set +m
read -r started <"$T/markers/started" # the action runs
pd_eq "the gated action started" "t.gated acme" "$started"
# The CLI is waiting once it has printed the start line.
for _ in $(seq 1 300); do grep -q "t.gated .*started" "$T/int.out" && break; sleep 0.1; done
pd_check "the start line was printed while the action runs" grep -q "acme: t.gated .*started (attempt 1)" "$T/int.out"
kill -INT "$cli"
rc=0; wait "$cli" || rc=$?
pd_eq "Ctrl-C exits 130" 130 "$rc"
pd_check "it says it was interrupted" grep -q "postdeploy deploy: interrupted (Interrupt) while waiting; 0 of 1 action(s) had finished" "$T/int.err"
pd_check "it says the actions keep running" grep -q "the actions keep running on the reactors" "$T/int.err"
pd_check "it gives the command that shows them" \
	grep -qx "  postdeploy report --tenant acme -c $T/postdeploy.ini" "$T/int.err"
echo go >"$T/markers/release"
pd_rc rc pd_cli deploy --one t.fail --release 5 --tenant acme --wait --timeout 60s # behind t.gated
pd_check "the interrupted wait's action ran on to its end" grep -q "t.gated acme" "$T/markers/acme.t.gated"

# --- --wait's timeout says the same ---
pd_rc rc pd_cli deploy --one t.gated --release 6 --tenant globex --wait --timeout 1s
pd_eq "a timed-out wait exits 3" 3 "$rc"
pd_check "it says how long it waited" grep -q "postdeploy deploy: timed out after 1.0 s waiting for results" "$T/out"
pd_check "it says the actions keep running, and how to see them" \
	grep -q "the actions keep running on the reactors" "$T/out"
pd_check "the command names the tenant still running" \
	grep -qx "  postdeploy report --tenant globex -c $T/postdeploy.ini" "$T/out"
# globex's next event waits behind the gated action: no plan comes, and a
# wait without a terminal still says it is alive.
pd_rc rc env PD_WAIT_HEARTBEAT_MS=300 "$PD_BIN/postdeploy" deploy --one t.fail --release 6 \
	--tenant globex --wait --timeout 1s -c "$T/postdeploy.ini"
pd_eq "waiting for a plan that does not come times out" 3 "$rc"
pd_check "meanwhile a plain line says what it waits for" \
	grep -q "^\[0/0 done\] waiting for the plan of 1 tenant(s)$" "$T/out"
read -r _ <"$T/markers/started"
echo go >"$T/markers/release"

# --- SIGTERM (a CI job cancelled) says the same, with 143 ---
"$PD_BIN/postdeploy" deploy --one t.gated --release 7 --tenant globex --wait --timeout 60s \
	-c "$T/postdeploy.ini" >"$T/term.out" 2>"$T/term.err" &
cli=$!
read -r _ <"$T/markers/started"
for _ in $(seq 1 300); do grep -q "t.gated .*started" "$T/term.out" && break; sleep 0.1; done
kill -TERM "$cli"
rc=0; wait "$cli" || rc=$?
pd_eq "SIGTERM exits 143" 143 "$rc"
pd_check "it says why it stopped waiting, and that the actions go on" \
	bash -c "grep -q 'interrupted (Terminated) while waiting' '$T/term.err' &&
		grep -q 'the actions keep running on the reactors' '$T/term.err'"
echo go >"$T/markers/release"

# --- the exit status of Ctrl-C is in the help ---
pd_check "deploy --help names Ctrl-C's exit status" \
	bash -c "'$PD_BIN/postdeploy' deploy --help | grep -q '130 --wait interrupted (Ctrl-C'"
pd_check "postdeploy --help names it too" \
	bash -c "'$PD_BIN/postdeploy' --help | grep -q '130 --wait interrupted (Ctrl-C)'"

pd_reactor_stop
pd_done
