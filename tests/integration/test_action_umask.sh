#!/usr/bin/env bash
# Actions get the umask the operator started the reactor with, not the
# supervisor's 077 (files an action writes must be readable by the app),
# or their own: umask = 0077. The reactor's own files stay 0600.
source "$(dirname "$0")/lib.sh"
pd_require_broker
cat >"$T/mk.sh" <<'SH'
#!/bin/sh
# usage: mk.sh NAME TENANT: creates a file and prints its mode
f=$MARKERS/$2.$1.file
: >"$f"
stat -c %a "$f" >"$MARKERS/$2.$1"
SH
chmod +x "$T/mk.sh"
pd_config <<INI
[action m.default]
run = $T/mk.sh m.default {tenant}
auto = true
[action m.private]
run = $T/mk.sh m.private {tenant}
auto = true
umask = 0077
INI
umask 022
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "deploy" 0 "$rc"
pd_eq "under the reactor's umask 022: 0644" 644 "$(cat "$T/markers/acme.m.default")"
pd_eq "under the action's umask = 0077: 0600" 600 "$(cat "$T/markers/acme.m.private")"
pd_eq "the state file stays 0600" 600 "$(stat -c %a "$T/state/state.db")"
pd_reactor_stop
pd_done
