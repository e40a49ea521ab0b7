#!/usr/bin/env bash
# cancel stops a running action: a command's process group gets SIGTERM
# (SIGKILL after the grace), an in-process action sees cancelled(); the run
# is recorded CANCELLED with who asked, the report shows it, and a cancel of
# something not running says so and changes nothing.
source "$(dirname "$0")/lib.sh"
pd_require_broker

# An in-process action that polls cancelled() until it is asked to stop.
cat >"$T/poll.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <postdeploy/plugin.h>
static int poll_cancel(const pd_action_ctx_t *ctx, char *errstr, size_t n) {
	char path[512];
	FILE *fp;
	snprintf(path, sizeof(path), "%s/%s.poll", getenv("MARKERS"), ctx->tenant);
	if ((fp = fopen(path, "a"))) { fputs("started\n", fp); fclose(fp); }
	for (int i = 0; i < 60 * 100; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		if (ctx->cancelled(ctx)) {
			snprintf(errstr, n, "saw cancelled()");
			return 1;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}
PD_PLUGIN_INIT(reg) {
	return PD_ACTION(reg, "t.poll", PD_MANUAL, poll_cancel, "polls cancelled()");
}
C
cc -shared -fPIC -o "$T/poll.so" -I"$PD_SOURCE_DIR/include" "$T/poll.c" ||
	pd_die "cannot build the test plugin"

# The command writes its process group id, then sleeps as a child of it.
cat >"$T/long.sh" <<'SH'
#!/bin/sh
ps -o pgid= -p $$ | tr -d ' ' >"$MARKERS/$1.pgid"
sleep 60
echo "not cancelled" >>"$MARKERS/$1.done"
SH
chmod +x "$T/long.sh"
pd_action_script
pd_config <<INI
[action t.long]
run = $T/long.sh {tenant}
auto = false
retries = 2
[action t.flaky]
run = $T/act.sh flaky {tenant} 1
auto = false
retries = 3
retry_backoff = 60s
[action t.after]
run = $T/act.sh after {tenant} 0
auto = false
after = t.long
INI
sed -i "s|^\[reactor\]|[reactor]\nplugins = $T/poll.so|" "$T/postdeploy.ini"
pd_reactor_start

# Waits (at most 60 s) for a file to appear: the action has started.
await_file() {
	local i
	for ((i = 0; i < 600; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# 1. A command (sleep 60), with a dependent after it.
pd_cli deploy --one t.long t.after --release 1 --tenant acme --wait --timeout 90s \
	>"$T/deploy.out" 2>&1 &
DEPLOY=$!
pd_check "the long command started" await_file "$T/markers/acme.pgid"
PGID=$(cat "$T/markers/acme.pgid")
START=$(date +%s%N)
pd_rc rc pd_cli cancel t.long --tenant acme --requested-by tester --wait --timeout 60s
END=$(date +%s%N)
pd_eq "cancel --wait exits 0" 0 "$rc"
pd_check "it prints CANCELLED with who asked" \
	grep -q "acme t.long: CANCELLED: cancelled on request of tester" "$T/out"
MS=$(((END - START) / 1000000))
echo "cancel --wait of a running sleep 60 took ${MS} ms"
pd_check "within the grace (SIGTERM, SIGKILL 2 s later), not the 60 s" [ "$MS" -lt 10000 ]
# A killed process stays a zombie until its reaper collects it: what counts
# is that nothing of the group runs any more.
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }
pd_check "no process of its group is alive" bash -c "$(declare -f group_alive); ! group_alive $PGID"
ps -o pid,stat,args -g "$PGID" || true
pd_check "the command did not finish" [ ! -e "$T/markers/acme.done" ]
rc=0; wait "$DEPLOY" || rc=$?
pd_eq "the deploy --wait of the cancelled action exits 1" 1 "$rc"
pd_check "and shows CANCELLED" grep -q "t.long.*CANCELLED" "$T/deploy.out"
pd_eq "its dependent did not run" 0 "$(pd_lines "$T/markers/acme.after")"
pd_report
pd_eq "report: cancelled" cancelled "$(pd_state acme t.long state)"
pd_eq "report: who asked" "cancelled on request of tester" "$(pd_state acme t.long error)"
pd_eq "report: one attempt" 1 "$(pd_state acme t.long attempt)"

# 2. Nothing running: said, nothing changed.
pd_rc rc pd_cli cancel t.long --tenant acme --wait --timeout 60s
pd_eq "a cancel of nothing running exits 1" 1 "$rc"
pd_check "and says so" grep -q "acme t.long: not running: nothing to cancel" "$T/out"
pd_report
pd_eq "the state is unchanged" cancelled "$(pd_state acme t.long state)"
pd_eq "nor its record" "cancelled on request of tester" "$(pd_state acme t.long error)"

# 3. An in-process action sees cancelled(); --all-running names nothing.
pd_cli deploy --one t.poll --release 1 --tenant globex >/dev/null
pd_check "the in-process action started" await_file "$T/markers/globex.poll"
pd_rc rc pd_cli cancel --all-running --tenant globex --requested-by ops --wait --timeout 60s
pd_eq "cancel --all-running --wait exits 0" 0 "$rc"
pd_check "the plugin's run is CANCELLED" \
	grep -q "globex t.poll: CANCELLED: cancelled on request of ops" "$T/out"
pd_report
pd_eq "report: cancelled" cancelled "$(pd_state globex t.poll state)"

# 4. Between two attempts (a 60 s retry backoff) the action is still going:
# a cancel ends the wait and no retry starts.
pd_cli deploy --one t.flaky --release 1 --tenant acme >/dev/null
pd_check "the first attempt failed and the retry waits" \
	timeout 60 grep -q -m1 "acme t.flaky: retry 1 of 3 in" <(tail -n +1 -f "$T/reactor.log")
START=$(date +%s%N)
pd_rc rc pd_cli cancel t.flaky --tenant acme --requested-by tester --wait --timeout 60s
END=$(date +%s%N)
pd_eq "cancel during a backoff exits 0" 0 "$rc"
pd_check "CANCELLED, naming the retry not started" \
	grep -q "acme t.flaky: CANCELLED: cancelled on request of tester (retry 1 of 3 not started)" "$T/out"
echo "cancel --wait during a 60 s backoff took $(((END - START) / 1000000)) ms"
pd_eq "no retry ran" 1 "$(pd_lines "$T/markers/acme.flaky")"
pd_report
pd_eq "report: cancelled" cancelled "$(pd_state acme t.flaky state)"

# 5. Usage.
pd_rc rc pd_cli cancel --tenant acme
pd_eq "cancel without names nor --all-running is a usage error" 2 "$rc"
pd_rc rc pd_cli cancel t.long --release 1
pd_eq "--release is not a cancel option" 2 "$rc"
pd_rc rc pd_cli cancel t.nope --tenant acme
pd_eq "an unknown name is refused" 2 "$rc"
pd_reactor_stop
pd_done
