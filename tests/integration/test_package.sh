#!/usr/bin/env bash
# The .deb, as an operator meets it: cpack builds it, dpkg installs it on
# this machine, every file is where a Debian service's files go, the man
# pages render without a warning, the example plugin builds against the
# INSTALLED header through pkg-config, systemd-analyze verifies the unit,
# the installed reactor runs the way the unit starts it (its user, its
# working and state directory, its ExecStart) against the real broker, the
# installed CLI's deploy --auto --wait exits 0, and dpkg --purge leaves the
# machine as it was.
#
# systemd is not PID 1 here (a container), so the unit cannot be started:
# the test does what systemd would do with the unit's own settings, read
# from the installed file, and systemd-analyze checks the file itself.
source "$(dirname "$0")/lib.sh"
pd_require_broker

[ "$EUID" -eq 0 ] || pd_die "must run as root: it installs and purges a package"
for tool in cpack dpkg-deb systemd-analyze man groff pkg-config cc setpriv nm; do
	command -v "$tool" >/dev/null ||
		pd_die "$tool is not installed (run scripts/setup.sh)"
done
if dpkg-query -W -f='${db:Status-Status}' postdeploy 2>/dev/null | grep -q .; then
	pd_die "a postdeploy package is already on this machine; this test installs and purges its own (dpkg --purge postdeploy first)"
fi
getent passwd postdeploy >/dev/null &&
	pd_die "a user postdeploy exists already; the package must create it"
[ -e /etc/postdeploy ] && pd_die "/etc/postdeploy exists already"

UNIT=/usr/lib/systemd/system/postdeploy-reactor.service
CONF=/etc/postdeploy/postdeploy.ini

# Whatever happens, the machine is left clean: the reactor and its
# supervisor stopped (by pid: the processes of the test's own user), the
# test's config removed, the package purged.
pkg_cleanup() {
	[ "$BASHPID" = "$$" ] || return 0
	local pid
	if getent passwd postdeploy >/dev/null; then
		for pid in $(pgrep -u postdeploy || true); do kill -KILL "$pid" 2>/dev/null || true; done
	fi
	rm -rf /etc/postdeploy
	dpkg --purge postdeploy >/dev/null 2>&1 || true
	pd_cleanup
}
trap pkg_cleanup EXIT

# 1. Build the .deb in a build folder of its own, for the prefix it
# installs to.
chmod 0755 "$T"
cmake -S "$PD_SOURCE_DIR" -B "$T/build" -DCMAKE_INSTALL_PREFIX=/usr \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPD_WERROR=ON -DPD_TESTS=OFF \
	-DPD_BENCH=OFF >"$T/cmake.log" 2>&1 || { cat "$T/cmake.log"; pd_die "cmake failed"; }
nice -n 10 cmake --build "$T/build" -j2 --target postdeploy postdeploy-reactor pd_man \
	>>"$T/cmake.log" 2>&1 || { tail -n 40 "$T/cmake.log"; pd_die "the build failed"; }
(cd "$T/build" && cpack) >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; pd_die "cpack failed"; }
deb=$(ls "$T"/build/postdeploy_*_*.deb)
echo "built $deb"
pd_eq "the .deb depends on the runtime libraries" \
	"librdkafka1, libavro23, libsqlite3-0, libjansson4, libssl3, libmicrohttpd12, libc6, passwd" \
	"$(dpkg-deb -f "$deb" Depends)"
# Every library the programs link directly comes from a package the .deb
# depends on, so a library added to the build cannot be forgotten there.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in $(dpkg-deb -x "$deb" "$T/unpacked" && readelf -d "$T/unpacked/usr/bin/postdeploy" \
	"$T/unpacked/usr/sbin/postdeploy-reactor" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u); do
	path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p { p = $NF } END { print p }')
	# dpkg knows a file by the path its package ships it at: /lib or
	# /usr/lib, whichever it is on a merged /usr.
	pkg=$( { dpkg -S "$path" || dpkg -S "$(readlink -f "$path")" || true; } 2>/dev/null |
		awk -F: 'NR == 1 { print $1 }')
	pd_check "$lib comes from ${pkg:-no package}, a dependency of the .deb" \
		bash -c '[ -n "$1" ] && grep -qw -- "$1" <<<"$2"' _ "$pkg" "$depends"
done

# 2. Install it as an operator would.
if ! dpkg -i "$deb" >"$T/dpkg.log" 2>&1; then
	apt-get -q -y -f install >>"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; pd_die "the .deb does not install"; }
fi
pd_eq "dpkg says the package is installed" installed \
	"$(dpkg-query -W -f='${db:Status-Status}' postdeploy)"

for f in /usr/bin/postdeploy /usr/sbin/postdeploy-reactor \
	/usr/include/postdeploy/plugin.h /usr/share/pkgconfig/postdeploy-plugin.pc \
	/usr/share/man/man1/postdeploy.1 /usr/share/man/man5/postdeploy.ini.5 \
	/usr/share/man/man8/postdeploy-reactor.8 \
	/usr/share/bash-completion/completions/postdeploy \
	/usr/share/doc/postdeploy/examples/postdeploy.ini \
	/usr/share/doc/postdeploy/examples/plugin/example_plugin.c \
	"$UNIT" /usr/lib/sysusers.d/postdeploy.conf \
	/usr/share/postdeploy/schemas/release_deployed.avsc; do
	pd_check "installed: $f" test -s "$f"
done
pd_check "the programs find every library they link" \
	bash -c '! ldd /usr/bin/postdeploy /usr/sbin/postdeploy-reactor | grep -q "not found"'
pd_check "the installed reactor runs (--version)" \
	bash -c '/usr/sbin/postdeploy-reactor --version | grep -q "^postdeploy"'

# The account the unit runs as: a system user without a login or a home
# made for it.
pw=$(getent passwd postdeploy || true)
pd_check "postinst made the user postdeploy" test -n "$pw"
uid=$(echo "$pw" | cut -d: -f3)
pd_check "postdeploy is a system user (uid $uid < 1000)" test "${uid:-1000}" -lt 1000
pd_check "postdeploy cannot log in" bash -c "getent passwd postdeploy | grep -Eq ':(/usr/sbin/nologin|/sbin/nologin|/bin/false)$'"

# 3. The man pages render without a warning, and the config one has every
# key of the parser's table.
for page in /usr/share/man/man1/postdeploy.1 /usr/share/man/man8/postdeploy-reactor.8 \
	/usr/share/man/man5/postdeploy.ini.5; do
	name=$(basename "$page"); name=${name%.*}
	{ LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 "$page" ||
		echo "(man exited $?)" >&2; } 2>"$T/man.err" | col -bx >"$T/man.out"
	pd_eq "man -l $name: no warning" "" "$(cat "$T/man.err")"
	pd_check "man -l $name: its NAME section names it" \
		grep -qE "^ +$name - " "$T/man.out"
done
keys=$(/usr/sbin/postdeploy-reactor --help-config-md | tail -n +3 | wc -l)
pd_eq "postdeploy.ini(5) has one entry per config key" "$keys" \
	"$(grep -c '^\.TP$' /usr/share/man/man5/postdeploy.ini.5)"
pd_check "postdeploy.ini(5) documents shutdown_grace" \
	grep -q '^\.B "shutdown_grace"$' /usr/share/man/man5/postdeploy.ini.5

# 4. A plugin author's build: the installed example, the installed header,
# nothing from the source tree.
mkdir -p "$T/plugin"
cp /usr/share/doc/postdeploy/examples/plugin/example_plugin.c "$T/plugin/"
pd_eq "pkg-config: the header's folder" /usr/include \
	"$(pkg-config --variable=includedir postdeploy-plugin)"
cflags=$(pkg-config --cflags postdeploy-plugin) || pd_die "pkg-config does not know postdeploy-plugin"
# shellcheck disable=SC2086
pd_check "the example plugin builds against the installed header" \
	cc -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror $cflags \
	-Wl,--no-undefined -o "$T/plugin/libexample.so" "$T/plugin/example_plugin.c"
pd_check "the plugin exports its init function" \
	bash -c "nm -D --defined-only '$T/plugin/libexample.so' | grep -q ' postdeploy_plugin_init$'"

# 5. The unit: systemd's own check (it prints, but does not fail on, an
# unknown key or a missing program: any output is a failure), then the
# settings the reactor needs.
systemd-analyze verify "$UNIT" >"$T/verify.out" 2>&1 || echo "(systemd-analyze exited $?)" >>"$T/verify.out"
pd_eq "systemd-analyze verify: no complaint" "" "$(cat "$T/verify.out")"
for line in 'Type=exec' 'User=postdeploy' 'StateDirectory=postdeploy' \
	'ConfigurationDirectory=postdeploy' 'WorkingDirectory=/var/lib/postdeploy' \
	'ExecStart=/usr/sbin/postdeploy-reactor -c /etc/postdeploy/postdeploy.ini' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'KillMode=process' 'Restart=on-failure' \
	'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' \
	'ReadWritePaths=/var/lib/postdeploy /var/log/postdeploy' \
	'WantedBy=multi-user.target'; do
	pd_check "unit: $line" grep -qxF "$line" "$UNIT"
done

# 6. Run the installed reactor as the unit starts it. What systemd does
# first: ConfigurationDirectory (the admin's config), StateDirectory (0700,
# the unit's user), then ExecStart as User= in WorkingDirectory= with
# NoNewPrivileges.
unit_get() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
exec_start=$(unit_get ExecStart)
unit_user=$(unit_get User)
workdir=$(unit_get WorkingDirectory)
# Enabled before its config is written, the unit fails at once and says
# why.
rc=0
# shellcheck disable=SC2086
setpriv --reuid="$unit_user" --regid="$unit_user" --init-groups $exec_start \
	>"$T/noconf.out" 2>&1 || rc=$?
pd_eq "without its config the reactor exits 2" 2 "$rc"
pd_check "... naming the file" grep -qF "$CONF: No such file or directory" "$T/noconf.out"
mkdir -p /etc/postdeploy "/var/lib/$(unit_get StateDirectory)"
chown "$unit_user:$unit_user" "/var/lib/$(unit_get StateDirectory)"
chmod "$(unit_get StateDirectoryMode)" "/var/lib/$(unit_get StateDirectory)"
mkdir -p "$T/markers" && chown "$unit_user" "$T/markers"
cat >"$T/act.sh" <<'SH'
#!/bin/sh
# Says who ran it and where, for the checks below.
echo "$(id -un) $(pwd) $POSTDEPLOY_TENANT $POSTDEPLOY_RELEASE" >>"$MARKERS/$POSTDEPLOY_TENANT"
SH
chmod 0755 "$T/act.sh"
cat >"$CONF" <<INI
[kafka]
bootstrap.servers = $PD_BROKERS
session.timeout.ms = 6000
[reactor]
group.id = pdtest-$RUN_ID
plugins = $T/plugin/libexample.so
shutdown_grace = 5s
[topics]
events = pdtest.$RUN_ID.events
results = pdtest.$RUN_ID.results
dlq = pdtest.$RUN_ID.dlq
partitions = 1
[action pkg.whoami]
run = $T/act.sh
auto = true
env.MARKERS = $T/markers
INI
chgrp "$unit_user" "$CONF" && chmod 0640 "$CONF"
# shellcheck disable=SC2086
(cd "$workdir" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	setpriv --reuid="$unit_user" --regid="$unit_user" --init-groups --no-new-privs \
	$exec_start) >"$T/reactor.log" 2>&1 &
PD_REACTOR_PID=$!

rc=0; /usr/bin/postdeploy deploy --auto --release 1.0.0 --tenant acme --wait \
	--timeout 90s -c "$CONF" >"$T/deploy.out" 2>&1 || rc=$?
cat "$T/deploy.out"
pd_eq "the installed CLI's deploy --auto --wait exits 0" 0 "$rc"
pd_eq "the command action ran as postdeploy in the state directory" \
	"postdeploy /var/lib/postdeploy acme 1.0.0" "$(cat "$T/markers/acme" 2>/dev/null)"
pd_check "the plugin's action ran too" grep -q "example.count_orders.*SUCCEEDED" "$T/deploy.out"
pd_eq "the store is in the state directory, the user's" postdeploy \
	"$(stat -c %U /var/lib/postdeploy/postdeploy-state.db 2>/dev/null)"
sup=$(pgrep -u postdeploy -x pd-supervisor || true)
pd_check "the supervisor runs as postdeploy" test -n "$sup"

rc=0; pd_reactor_stop || rc=$?
pd_eq "SIGTERM (systemctl stop) stops the reactor cleanly" 0 "$rc"
# KillMode=process: the supervisor is meant to outlive the reactor.
pd_check "the supervisor outlives the reactor" kill -0 "${sup:-0}"

# 7. Purge: nothing of the package or its service is left.
for pid in $sup; do kill -TERM "$pid"; done
for pid in $sup; do timeout 10 tail --pid="$pid" -f /dev/null || true; done
rm -rf /etc/postdeploy
dpkg --purge postdeploy >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; pd_die "dpkg --purge failed"; }
pd_check "purged: dpkg no longer knows the package" \
	bash -c '! dpkg-query -W -f="\${db:Status-Status}" postdeploy 2>/dev/null | grep -q .'
pd_check "purged: the user is gone" bash -c '! getent passwd postdeploy'
pd_check "purged: the group is gone" bash -c '! getent group postdeploy'
pd_check "purged: the state directory is gone" test ! -e /var/lib/postdeploy
pd_check "purged: the programs are gone" test ! -e /usr/sbin/postdeploy-reactor -a ! -e /usr/bin/postdeploy
pd_check "purged: the unit is gone" test ! -e "$UNIT"
pd_done
