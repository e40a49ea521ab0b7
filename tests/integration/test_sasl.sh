#!/usr/bin/env bash
# SASL settings pass through to librdkafka: the README's example [kafka]
# section, taken from README.md itself (the block after the marker
# "tested by tests/integration/test_sasl.sh"), works against the real
# broker's SASL_PLAINTEXT listener, which scripts/kafka.sh opens on the
# client port + 2 (PD_KAFKA_SASL_PORT) with one PLAIN user. A wrong password
# is refused: exit 4 and librdkafka's "Authentication failed" on stderr.
source "$(dirname "$0")/lib.sh"
pd_require_broker

SASL_BROKERS=${PD_SASL_BROKERS:-127.0.0.1:${PD_KAFKA_SASL_PORT:-$((${PD_BROKERS##*:} + 2))}}
SASL_PASSWORD=${PD_KAFKA_SASL_PASSWORD:-postdeploy-test-secret}

# The example, as the README shows it.
awk '/tested by tests\/integration\/test_sasl.sh/ { found = 1; next }
     found && /^```ini/ { inside = 1; next }
     inside && /^```/ { exit }
     inside { print }' "$PD_SOURCE_DIR/README.md" >"$T/example.ini"
pd_check "README.md has the SASL example" grep -q "^security.protocol = SASL_PLAINTEXT" "$T/example.ini"
pd_check "the example logs in as the test broker's user" grep -q "^sasl.username = postdeploy$" "$T/example.ini"

pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
# Our [kafka] section becomes the README's: its lines, then ours but the
# bootstrap (the example names the broker's address and password the
# test's broker may not use).
python3 - "$T/postdeploy.ini" "$T/example.ini" "$SASL_BROKERS" "$SASL_PASSWORD" <<'PY'
import sys
conf, example, brokers, password = sys.argv[1:]
lines = [l for l in open(example).read().splitlines() if l.strip() and not l.startswith("#")]
assert lines[0] == "[kafka]", lines[0]
keys = []
for l in lines[1:]:
    k, v = (x.strip() for x in l.split("=", 1))
    v = {"bootstrap.servers": brokers, "sasl.password": password}.get(k, v)
    keys.append(f"{k} = {v}")
out = []
for l in open(conf).read().splitlines():
    if l.startswith("bootstrap.servers"):
        out.extend(keys)
    else:
        out.append(l)
open(conf, "w").write("\n".join(out) + "\n")
PY
pd_check "the config now logs in with SASL" grep -q "^sasl.mechanisms = PLAIN" "$T/postdeploy.ini"
pd_check "and has no plaintext bootstrap left" bash -c "! grep -q '^bootstrap.servers = $PD_BROKERS\$' '$T/postdeploy.ini'"

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "deploy --wait over SASL exits 0" 0 "$rc"
pd_eq "the action ran once" 1 "$(pd_lines "$T/markers/acme.ok")"
pd_report
pd_eq "report over SASL: acme t.ok succeeded" succeeded "$(pd_state acme t.ok state)"

# A wrong password: refused, exit 4, and the reason is on stderr.
sed -i "s/^sasl.password = .*/sasl.password = not-the-password/" "$T/postdeploy.ini"
rc=0; timeout 60 "$PD_BIN/postdeploy" deploy --auto --release 2 --tenant acme \
	-c "$T/postdeploy.ini" >"$T/badpw.out" 2>&1 || rc=$?
pd_eq "a wrong password exits 4" 4 "$rc"
pd_check "and says authentication failed" grep -q "Authentication failed" "$T/badpw.out"
pd_eq "nothing ran for it" 1 "$(pd_lines "$T/markers/acme.ok")"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
