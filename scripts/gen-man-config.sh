#!/usr/bin/env bash
# scripts/gen-man-config.sh REACTOR OUT VERSION - writes postdeploy.ini(5)
# in troff to OUT from the parser's own key table (REACTOR
# --help-config-md), the way scripts/gen-docs.sh writes docs/CONFIG.md, so
# the man page cannot disagree with the code. CMake runs it at build time.
set -euo pipefail
reactor=$1 out=$2 version=$3
table=$("$reactor" --help-config-md)
{
	cat <<MAN
.TH POSTDEPLOY.INI 5 "" "postdeploy $version" "File Formats"
.SH NAME
postdeploy.ini \\- configuration of postdeploy\\-reactor and postdeploy
.SH SYNOPSIS
.I /etc/postdeploy/postdeploy.ini
.SH DESCRIPTION
An INI file read by
.BR postdeploy\\-reactor (8)
(every section) and by
.BR postdeploy (1)
([kafka], [topics] and [cli]).
Lines are
.IB key " = " value\\fR,
under a
.I [section]
header;
.B #
and
.B ;
start a comment.
An unknown key or a bad value is an error that names
.IR file : line ;
.B postdeploy\\-reactor \\-c
.I FILE
.B \\-\\-check
checks a file.
Durations are 500ms, 30s, 5m, 1h, 90d or plain seconds.
.PP
Every key of [kafka] goes to librdkafka untouched (bootstrap.servers,
security.protocol, sasl.*, ssl.*).
Each
.I [action NAME]
section registers a command action; C actions come from plugins.
The file may hold a password (sasl.password): keep it readable by the
reactor's user only.
.SH KEYS
MAN
	# Rows: | `[section]` | `key` | type | default | description |, with
	# \| for a pipe inside a cell.
	printf '%s\n' "$table" | awk '
	function troff(s) {
		gsub(/\\/, "\\e", s); gsub(/`/, "", s); gsub(/\001/, "|", s)
		return s
	}
	# Text from the table never starts a line with a request character.
	function text(s) { if (s ~ /^[.\x27]/) s = "\\&" s; print s }
	NR <= 2 { next }
	{
		gsub(/\\\|/, "\001")
		n = split($0, c, /[ ]*\|[ ]*/)
		section = troff(c[2]); key = troff(c[3]); type = troff(c[4])
		def = troff(c[5]); desc = troff(c[6])
		if (section != last) { print(".SS \"" section "\""); last = section }
		print ".TP"
		print ".B \"" key "\""
		if (def == "\"\"") def = "empty"
		text("(" type (def != "" ? "; default " def : "") ")")
		text(desc)
	}'
	cat <<'MAN'
.SH EXAMPLE
.nf
[kafka]
bootstrap.servers = broker1:9092,broker2:9092

[reactor]
state = /var/lib/postdeploy/state.db

[action core.reindex_search]
run = /srv/app/bin/reindex \-\-tenant {tenant}
auto = true
timeout = 10m
retries = 2
.fi
.PP
The package installs a commented example as
.IR /usr/share/doc/postdeploy/examples/postdeploy.ini .
.SH SEE ALSO
.BR postdeploy (1),
.BR postdeploy\-reactor (8)
MAN
} >"$out.tmp"
mv "$out.tmp" "$out"
