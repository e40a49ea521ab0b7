/*
 * config_keys.c - the key table: every key of the configuration with its
 * section, type, default and help, and what is made from it.
 *
 * The parser (config_parse.c), pd_config_set (command line overrides),
 * pd_config_new (defaults) and pd_config_print_keys (--help, docs/CONFIG.md
 * and README's key table) all read this one table, and every value,
 * defaults included, goes through the same pd_config_apply()
 * (config_value.c), so a key cannot be documented one way and parsed
 * another.
 */
#include "common/config_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define PD_C(field) offsetof(pd_config_t, field)
#define PD_A(field) offsetof(pd_action_def_t, field)

const pd_config_key_t pd_config_keys[] = {
    {"kafka", "PROPERTY", PD_CONFIG_PASS, NULL, PD_C(kafka), 0, 0,
     "Any librdkafka property (bootstrap.servers, security.protocol, "
     "...), passed to librdkafka untouched."},

    {"reactor", "group.id", PD_CONFIG_STRING, "postdeploy", PD_C(group_id), 0,
     0, "Kafka consumer group that all reactors of a deployment share."},
    {"reactor", "state", PD_CONFIG_STRING, "postdeploy-state.db",
     PD_C(state_path), 0, 0, "Path of the SQLite state database."},
    {"reactor", "state_sync", PD_CONFIG_BOOL, "false", PD_C(state_sync_full), 0,
     0,
     "true: fsync every commit (SQLite synchronous=FULL); false: NORMAL, "
     "which survives a reactor crash but may lose the last commits on "
     "power loss."},
    {"reactor", "log_dir", PD_CONFIG_STRING, "", PD_C(log_dir), 0, 0,
     "Folder for the full output of every run; empty keeps only the "
     "tail sent with the result."},
    {"reactor", "default_tenant", PD_CONFIG_TENANT, "default",
     PD_C(default_tenant), 0, 0,
     "Tenant of events that carry no ce_tenant header."},
    {"reactor", "name", PD_CONFIG_STRING, NULL, PD_C(reactor_name), 0, 0,
     "Name of this reactor in results; unset means HOST:PID."},
    {"reactor", "workers", PD_CONFIG_INT, "4", PD_C(workers), 1, 256,
     "How many actions this reactor runs at once."},
    {"reactor", "max_running_per_action", PD_CONFIG_INT, "0",
     PD_C(max_running_per_action), 0, 100000,
     "How many tenants may run one action at once in this reactor, for "
     "every action that sets no concurrency of its own; the others wait, "
     "shown as queued. 0: no limit but workers. Per reactor, not per "
     "group."},
    {"reactor", "shutdown_grace", PD_CONFIG_DURATION, "30s",
     PD_C(shutdown_grace_ms), 0, PD_SHUTDOWN_GRACE_MAX_MS,
     "How long a stop (SIGTERM, SIGINT) waits for running actions "
     "before it interrupts them; the reactor exits within about a "
     "second after that."},
    {"reactor", "supervisor_timeout", PD_CONFIG_DURATION, "30s",
     PD_C(supervisor_timeout_ms), 1000, 3600 * 1000LL,
     "How long the supervisor of command actions may answer nothing "
     "before it is taken for hung: it is killed and started again, and "
     "the runs it had are recorded INTERRUPTED and run again."},
    {"reactor", "progress_interval", PD_CONFIG_DURATION, "1s",
     PD_C(progress_interval_ms), 100, 3600 * 1000LL,
     "Least time between two action.progress records of one run (what a "
     "plugin's ctx->progress or a command's lines on "
     "POSTDEPLOY_PROGRESS_FD say); the last value is always published "
     "before the action.finished."},
    {"reactor", "keep_runs", PD_CONFIG_DURATION, "90d", PD_C(keep_runs_ms),
     -3600 * 1000LL, 3650 * 86400 * 1000LL,
     "History kept in the state store: older runs (but each action's "
     "last finished one) and older records of processed events are "
     "deleted, so an event redelivered after this long runs again; "
     "0 keeps everything."},
    {"reactor", "log_level", PD_CONFIG_LOG_LEVEL, "info", PD_C(log_level), 0, 0,
     "Lowest level of diagnostics written."},
    {"reactor", "log_format", PD_CONFIG_LOG_FORMAT, "text", PD_C(log_format), 0,
     0,
     "text: lines for people; json: one JSON object per line (time, "
     "level, program, message, and tenant, action, event_id, attempt, "
     "status, duration_ms, run_id where known) for Loki or "
     "Elasticsearch, librdkafka's and the supervisor's lines included. "
     "A reload keeps the format the reactor started with."},
    {"reactor", "plugins", PD_CONFIG_LIST, "", PD_C(plugins), 0, 0,
     "Plugins (.so) whose C actions to load, comma-separated; see "
     "docs/PLUGINS.md."},
    {"reactor", "max_event_bytes", PD_CONFIG_INT, "1048576",
     PD_C(max_event_bytes), 1024, 1048576,
     "Largest event value accepted; a larger record goes to the "
     "dead-letter topic unread."},
    {"reactor", "signing_key", PD_CONFIG_STRING, NULL, PD_C(signing_key), 0, 0,
     "File (mode 0600) with the HMAC key events must be signed with; "
     "unsigned or badly signed events go to the dead-letter topic. "
     "Unset: no signature needed. See docs/SIGNING.md."},
    {"reactor", "max_event_age", PD_CONFIG_DURATION, "24h",
     PD_C(max_event_age_ms), 0, 3650 * 86400 * 1000LL,
     "With signing_key: a signed event whose ce_time is older than this, "
     "or more than 5 minutes ahead, goes to the dead-letter topic, so a "
     "copy of an old event is not run again. 0: no age check."},
    {"reactor", "shared_group", PD_CONFIG_BOOL, "false", PD_C(shared_group), 0,
     0,
     "true: several reactors share group.id and split the events "
     "topic's partitions between them (Kafka transactions, static "
     "membership; see \"Scale out\"); false: one reactor per group."},
    {"reactor", "instance", PD_CONFIG_STRING, NULL, PD_C(instance), 0, 0,
     "With shared_group: this reactor's static member name "
     "(group.instance.id, and its transactional.id "
     "postdeploy-GROUP-INSTANCE); unset means postdeploy-STOREID, "
     "stable per state file. Two running reactors must never share it."},
    {"reactor", "lease", PD_CONFIG_DURATION, "10s", PD_C(lease_ms), 0,
     3600 * 1000LL,
     "With shared_group: how long the supervisor keeps this reactor's "
     "command runs going without hearing from it; 0 = forever. "
     "lease * 2 must not exceed [kafka] session.timeout.ms "
     "(default 45000), or the reactor refuses to start."},
    {"reactor", "http", PD_CONFIG_STRING, "", PD_C(http), 0, 0,
     "HOST:PORT to serve /metrics (Prometheus), /livez and /readyz on, "
     "e.g. 127.0.0.1:9464; empty: off. An address that is taken stops "
     "the start (exit 2). See \"Metrics and probes\"."},

    {"topics", "events", PD_CONFIG_STRING, "postdeploy.events",
     PD_C(topic_events), 0, 0, "Topic the deploy requests arrive on."},
    {"topics", "results", PD_CONFIG_STRING, "postdeploy.results",
     PD_C(topic_results), 0, 0,
     "Topic of action.started, action.finished and registry.published."},
    {"topics", "dlq", PD_CONFIG_STRING, "postdeploy.dlq", PD_C(topic_dlq), 0, 0,
     "Topic for records that cannot be processed."},
    {"topics", "partitions", PD_CONFIG_INT, "6", PD_C(partitions), 1, 10000,
     "Partitions of the topics postdeploy creates."},
    {"topics", "replication", PD_CONFIG_INT, "1", PD_C(replication), 1, 100,
     "Replication factor of the topics postdeploy creates."},

    {"cli", "signing_key", PD_CONFIG_STRING, NULL, PD_C(cli_signing_key), 0, 0,
     "File (mode 0600) with the HMAC key the CLI signs its events with."},
    {"cli", "tenants", PD_CONFIG_TENANTS, "", PD_C(tenants), 0, 0,
     "Tenants that --all-tenants selects, comma-separated."},

    {"action", "run", PD_CONFIG_COMMAND, NULL, PD_A(run), 0, 0,
     "Required. Command line, split with the shell's quoting rules and "
     "run without a shell; {tenant}, {release} and {action} are "
     "replaced inside words."},
    {"action", "auto", PD_CONFIG_BOOL, "false", PD_A(is_auto), 0, 0,
     "true: runs on `deploy --auto`; false: only when asked for."},
    {"action", "policy", PD_CONFIG_POLICY, "once", PD_A(policy), 0, 0,
     "once: runs until it has succeeded for a tenant; always: on every "
     "deploy."},
    {"action", "description", PD_CONFIG_STRING, "", PD_A(description), 0, 0,
     "One line shown in reports."},
    {"action", "timeout", PD_CONFIG_DURATION, "0", PD_A(timeout_ms), 0,
     PD_TIMEOUT_MAX_MS,
     "A run still going after this long is killed; 0 means no limit."},
    {"action", "retries", PD_CONFIG_INT, "0", PD_A(retries), 0, 100,
     "Further attempts after a failed one."},
    {"action", "concurrency", PD_CONFIG_INT, "0", PD_A(concurrency), 0, 100000,
     "At most this many tenants run the action at once in one reactor "
     "(not across the group); the others wait in the queue, shown as "
     "queued, holding no worker. 0: max_running_per_action."},
    {"action", "retry_backoff", PD_CONFIG_DURATION, "1s",
     PD_A(retry_backoff_ms), 0, PD_RETRY_BACKOFF_MAX_MS,
     "Wait before the first retry; it doubles before each further "
     "retry, up to 1h. A stop or a reload cuts it short."},
    {"action", "workdir", PD_CONFIG_STRING, NULL, PD_A(workdir), 0, 0,
     "Working directory of the command; unset means the reactor's."},
    {"action", "umask", PD_CONFIG_UMASK, "", PD_A(umask), 0, 0,
     "File mode mask of the command, in octal (0022: files it creates "
     "are readable by all); empty means the umask the reactor was "
     "started with."},
    {"action", "after", PD_CONFIG_LIST, "", PD_A(after), 0, 0,
     "Actions that must succeed first, comma-separated; a failed one "
     "skips this action."},
    {"action", "params", PD_CONFIG_LIST, "", PD_A(params), 0, 0,
     "Parameters a deploy --one may give (--param NAME=VALUE), "
     "comma-separated: NAME is required, NAME? optional. A value fills "
     "{param.NAME} inside words and POSTDEPLOY_PARAM_NAME."},
    {"action", "env.NAME", PD_CONFIG_ENV, NULL, PD_A(env), 0, 0,
     "Sets the environment variable NAME for the command."},
};

const size_t pd_config_key_cnt =
    sizeof(pd_config_keys) / sizeof(pd_config_keys[0]);

int pd__config_section_known(const char *section) {
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++)
                if (!strcmp(pd_config_keys[i].section, section))
                        return 1;
        return 0;
}

const pd_config_key_t *pd__config_key_find(const char *section,
                                           const char *key) {
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];

                if (strcmp(ck->section, section))
                        continue;
                if (ck->type == PD_CONFIG_PASS)
                        return ck;
                if (ck->type == PD_CONFIG_ENV ? !strncmp(key, "env.", 4)
                                              : !strcmp(key, ck->name))
                        return ck;
        }
        return NULL;
}

/*
 * Sets every key of `section` that has a default to that default, parsed
 * like any value. A default that does not parse is a bug in the table,
 * hence the assert.
 */
void pd__config_defaults(pd_config_t *conf, pd_action_def_t *act,
                         const char *section) {
        char errstr[512];

        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];

                if (!ck->def || strcmp(ck->section, section))
                        continue;
                if (pd__config_assign(conf, act, ck, ck->name, ck->def, errstr,
                                      sizeof(errstr)))
                        assert(!"a default in pd_config_keys does not parse");
        }
}

/* The type as a reader should write it, e.g. "integer 1..256". */
static const char *config_type_desc(const pd_config_key_t *ck, char *buf,
                                    size_t size) {
        switch (ck->type) {
        case PD_CONFIG_STRING:
        case PD_CONFIG_ENV:
        case PD_CONFIG_PASS:
                return "string";
        case PD_CONFIG_TENANT:
                return "tenant";
        case PD_CONFIG_INT:
                snprintf(buf, size, "integer %" PRId64 "..%" PRId64, ck->min,
                         ck->max);
                return buf;
        case PD_CONFIG_BOOL:
                return "bool";
        case PD_CONFIG_DURATION: {
                char lo[32], hi[32];

                snprintf(buf, size, "duration %s%s..%s",
                         ck->min < 0 ? "0 or " : "",
                         pd_duration_format(ck->min < 0 ? -ck->min : ck->min,
                                            lo, sizeof(lo)),
                         pd_duration_format(ck->max, hi, sizeof(hi)));
                return buf;
        }
        case PD_CONFIG_UMASK:
                return "octal";
        case PD_CONFIG_LIST:
                return "list";
        case PD_CONFIG_TENANTS:
                return "list of tenants";
        case PD_CONFIG_POLICY:
                return "once|always";
        case PD_CONFIG_LOG_LEVEL:
                return "error|warn|info|debug";
        case PD_CONFIG_LOG_FORMAT:
                return "text|json";
        case PD_CONFIG_COMMAND:
                return "command";
        }
        return "?";
}

/* Prints s with every '|' escaped, for a Markdown table cell. */
static void config_md_cell(FILE *fp, const char *s) {
        for (; *s; s++) {
                if (*s == '|')
                        fputc('\\', fp);
                fputc(*s, fp);
        }
}

void pd_config_print_keys(FILE *fp, int fmt) {
        const char *prev = NULL;
        char tbuf[64];
        int kw = 0, tw = 0, dw = 0;

        if (fmt == 'm') {
                fprintf(fp,
                        "| Section | Key | Type | Default | Description "
                        "|\n|---|---|---|---|---|\n");
                for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                        const pd_config_key_t *ck = &pd_config_keys[i];

                        fprintf(fp, "| `[%s%s]` | `%s` | ", ck->section,
                                strcmp(ck->section, "action") ? "" : " NAME",
                                ck->name);
                        config_md_cell(
                            fp, config_type_desc(ck, tbuf, sizeof(tbuf)));
                        fputs(" | ", fp);
                        if (ck->def && *ck->def)
                                fprintf(fp, "`%s`", ck->def);
                        else if (ck->def)
                                fputs("\"\"", fp);
                        fputs(" | ", fp);
                        config_md_cell(fp, ck->help);
                        fputs(" |\n", fp);
                }
                return;
        }

        /* Plain text: one aligned line per key, grouped by section. */
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];
                int n;

                if ((n = (int)strlen(ck->name)) > kw)
                        kw = n;
                n = (int)strlen(config_type_desc(ck, tbuf, sizeof(tbuf)));
                if (n > tw)
                        tw = n;
                if (ck->def && (n = (int)strlen(ck->def) + 2) > dw)
                        dw = n;
        }
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];
                char dbuf[128];

                if (!prev || strcmp(prev, ck->section))
                        fprintf(fp, "%s[%s%s]\n", prev ? "\n" : "", ck->section,
                                strcmp(ck->section, "action") ? "" : " NAME");
                prev = ck->section;
                snprintf(dbuf, sizeof(dbuf), "\"%s\"", ck->def ? ck->def : "");
                fprintf(fp, "  %-*s  %-*s  %-*s  %s\n", kw, ck->name, tw,
                        config_type_desc(ck, tbuf, sizeof(tbuf)), dw,
                        ck->def ? dbuf : "-", ck->help);
        }
}
