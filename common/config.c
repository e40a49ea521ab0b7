/*
 * config.c - the INI configuration: one key table, its parser, its docs.
 *
 * Every key lives in pd_config_keys[] with its section, type, default and
 * help. The parser, pd_config_set (command line overrides), pd_config_new
 * (defaults) and pd_config_print_keys (--help, docs/CONFIG.md) all read that
 * one table, and every value, defaults included, goes through the same
 * pd_config_apply(), so a key cannot be documented one way and parsed
 * another.
 *
 * The parser is hand-written rather than inih because we want '#' inline
 * comments, exact line numbers in every message and shell-aware comments in
 * `run`. It reads one line at a time into a fixed buffer, so a hostile file
 * cannot make it allocate more than PD_CONFIG_LINE_MAX per line.
 */
#include "common/config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>

#include "common/argv.h"
#include "common/log.h"
#include "common/strerror.h"
#include "common/xalloc.h"

/* Longest line we accept, newline excluded. */
#define PD_CONFIG_LINE_MAX 4096

typedef enum pd_config_type_e {
        PD_CONFIG_STRING,
        PD_CONFIG_TENANT,    /* a string that must be a valid tenant name */
        PD_CONFIG_INT,       /* within [min, max] */
        PD_CONFIG_BOOL,
        PD_CONFIG_DURATION,  /* stored in milliseconds, within [min, max];
                              * a negative min, -m: 0 (off) or [m, max] */
        PD_CONFIG_LIST,      /* comma-separated, into a pd_strv_t */
        PD_CONFIG_TENANTS,   /* a list of valid tenant names */
        PD_CONFIG_POLICY,
        PD_CONFIG_LOG_LEVEL,
        PD_CONFIG_LOG_FORMAT,
        PD_CONFIG_COMMAND,   /* `run`: kept as written and split into argv */
        PD_CONFIG_ENV,       /* env.NAME = VALUE, stored "NAME=VALUE" */
        PD_CONFIG_UMASK,     /* octal 0..0777 into an int; "" = -1 */
        PD_CONFIG_PASS,      /* [kafka]: any name, stored as a pair */
} pd_config_type_t;

typedef struct pd_config_key_s {
        const char *section; /* "action" means every [action NAME] */
        const char *name;
        pd_config_type_t type;
        const char *def;     /* as written in a file; NULL leaves it unset */
        size_t offset;       /* in pd_config_t, or pd_action_def_t */
        int64_t min, max;    /* PD_CONFIG_INT; PD_CONFIG_DURATION in ms */
        const char *help;
} pd_config_key_t;

#define PD_C(field) offsetof(pd_config_t, field)
#define PD_A(field) offsetof(pd_action_def_t, field)

static const pd_config_key_t pd_config_keys[] = {
        {"kafka", "PROPERTY", PD_CONFIG_PASS, NULL, PD_C(kafka), 0, 0,
         "Any librdkafka property (bootstrap.servers, security.protocol, "
         "...), passed to librdkafka untouched."},

        {"reactor", "group.id", PD_CONFIG_STRING, "postdeploy",
         PD_C(group_id), 0, 0,
         "Kafka consumer group that all reactors of a deployment share."},
        {"reactor", "state", PD_CONFIG_STRING, "postdeploy-state.db",
         PD_C(state_path), 0, 0, "Path of the SQLite state database."},
        {"reactor", "state_sync", PD_CONFIG_BOOL, "false",
         PD_C(state_sync_full), 0, 0,
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
        {"reactor", "keep_runs", PD_CONFIG_DURATION, "90d",
         PD_C(keep_runs_ms), -3600 * 1000LL, 3650 * 86400 * 1000LL,
         "History kept in the state store: older runs (but each action's "
         "last finished one) and older records of processed events are "
         "deleted, so an event redelivered after this long runs again; "
         "0 keeps everything."},
        {"reactor", "log_level", PD_CONFIG_LOG_LEVEL, "info",
         PD_C(log_level), 0, 0, "Lowest level of diagnostics written."},
        {"reactor", "log_format", PD_CONFIG_LOG_FORMAT, "text",
         PD_C(log_format), 0, 0,
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
        {"reactor", "signing_key", PD_CONFIG_STRING, NULL, PD_C(signing_key),
         0, 0,
         "File (mode 0600) with the HMAC key events must be signed with; "
         "unsigned or badly signed events go to the dead-letter topic. "
         "Unset: no signature needed. See docs/SIGNING.md."},
        {"reactor", "max_event_age", PD_CONFIG_DURATION, "24h",
         PD_C(max_event_age_ms), 0, 3650 * 86400 * 1000LL,
         "With signing_key: a signed event whose ce_time is older than this, "
         "or more than 5 minutes ahead, goes to the dead-letter topic, so a "
         "copy of an old event is not run again. 0: no age check."},
        {"reactor", "http", PD_CONFIG_STRING, "", PD_C(http), 0, 0,
         "HOST:PORT to serve /metrics (Prometheus), /livez and /readyz on, "
         "e.g. 127.0.0.1:9464; empty: off. An address that is taken stops "
         "the start (exit 2). See \"Metrics and probes\"."},

        {"topics", "events", PD_CONFIG_STRING, "postdeploy.events",
         PD_C(topic_events), 0, 0, "Topic the deploy requests arrive on."},
        {"topics", "results", PD_CONFIG_STRING, "postdeploy.results",
         PD_C(topic_results), 0, 0,
         "Topic of action.started, action.finished and registry.published."},
        {"topics", "dlq", PD_CONFIG_STRING, "postdeploy.dlq", PD_C(topic_dlq),
         0, 0, "Topic for records that cannot be processed."},
        {"topics", "partitions", PD_CONFIG_INT, "6", PD_C(partitions), 1,
         10000, "Partitions of the topics postdeploy creates."},
        {"topics", "replication", PD_CONFIG_INT, "1", PD_C(replication), 1,
         100, "Replication factor of the topics postdeploy creates."},

        {"cli", "signing_key", PD_CONFIG_STRING, NULL,
         PD_C(cli_signing_key), 0, 0,
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
        {"action", "description", PD_CONFIG_STRING, "", PD_A(description), 0,
         0, "One line shown in reports."},
        {"action", "timeout", PD_CONFIG_DURATION, "0", PD_A(timeout_ms), 0,
         PD_TIMEOUT_MAX_MS,
         "A run still going after this long is killed; 0 means no limit."},
        {"action", "retries", PD_CONFIG_INT, "0", PD_A(retries), 0, 100,
         "Further attempts after a failed one."},
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
        {"action", "env.NAME", PD_CONFIG_ENV, NULL, PD_A(env), 0, 0,
         "Sets the environment variable NAME for the command."},
};

#define PD_CONFIG_KEY_CNT (sizeof(pd_config_keys) / sizeof(pd_config_keys[0]))

/* Where the parser is in one file. */
typedef struct pd_config_parser_s {
        pd_config_t *conf;
        int line;
        const char *section;   /* a pd_config_keys[] section, NULL before one */
        size_t act_idx;        /* current action, valid if section is "action" */
        size_t first_action;   /* actions before this index came earlier */
        pd_strv_t seen;        /* keys of the current action section ... */
        int *seen_lines;       /* ... and the lines they were set on */
        size_t seen_cap;       /* room in seen_lines */
} pd_config_parser_t;

/* ---- small helpers ---- */

const char *pd_policy_name(pd_policy_t policy) {
        return policy == PD_POLICY_ALWAYS ? "always" : "once";
}

static int pd_config_is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* Trims blanks from both ends of s, in place. */
static char *pd_config_trim(char *s) {
        char *end;

        while (pd_config_is_blank(*s))
                s++;
        end = s + strlen(s);
        while (end > s && pd_config_is_blank(end[-1]))
                end--;
        *end = '\0';
        return s;
}

/*
 * Hand-coded instead of a regex: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,max-1}$, in
 * ASCII whatever the locale, since these names end up in Kafka keys, file
 * names and SQL rows.
 */
static int pd_config_name_valid(const char *s, size_t max) {
        size_t i;

        if (!s)
                return 0;
        for (i = 0; s[i]; i++) {
                char c = s[i];
                int word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '_';

                if (i == max)
                        return 0;
                if (!word && (i == 0 || (c != '.' && c != '-')))
                        return 0;
        }
        return i > 0;
}

int pd_tenant_valid(const char *tenant) {
        return pd_config_name_valid(tenant, 63);
}

int pd_action_name_valid(const char *name) {
        return pd_config_name_valid(name, 128);
}

/*
 * A release is substituted whole into an action's argv words, so its first
 * byte decides whether a program reads it as an option: only a letter or a
 * digit may start it. '+' and '~' are for semver build metadata and Debian
 * versions; blanks, quotes, '/' and ':' have no place in a version.
 */
int pd_release_valid(const char *release) {
        size_t i;

        if (!release)
                return 0;
        for (i = 0; release[i]; i++) {
                char c    = release[i];
                int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9');

                if (i == 128)
                        return 0;
                if (!alnum && (i == 0 || !strchr("_.+~-", c)))
                        return 0;
        }
        return i > 0;
}

/* POSIX portable environment names: [A-Za-z_][A-Za-z0-9_]*. */
static int pd_config_env_name_valid(const char *s) {
        for (size_t i = 0; s[i]; i++) {
                char c = s[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      c == '_' || (i > 0 && c >= '0' && c <= '9')))
                        return 0;
        }
        return *s != '\0';
}

int pd_duration_parse(const char *s, int64_t *msp) {
        static const struct {
                const char *suffix;
                int64_t ms;
        } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                     {"d", 86400000}, {"", 1000}};
        int64_t whole = 0, frac = 0, frac_div = 1, mult = 0;
        const char *p = s;

        if (!s || *p < '0' || *p > '9')
                return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (whole > (INT64_MAX - (*p - '0')) / 10)
                        return -1;
                whole = whole * 10 + (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -1;
                /* Nine digits are finer than a millisecond in any unit;
                 * the rest must still be digits but no longer count. */
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (frac_div < 1000000000) {
                                frac = frac * 10 + (*p - '0');
                                frac_div *= 10;
                        }
                }
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (!strcmp(p, units[i].suffix)) {
                        mult = units[i].ms;
                        break;
                }
        }
        if (!mult)
                return -1;
        /* frac < frac_div <= 1e9 and mult <= 8.64e7: frac * mult fits. */
        frac = frac * mult / frac_div;
        if (whole > (INT64_MAX - frac) / mult)
                return -1;
        *msp = whole * mult + frac;
        return 0;
}

const char *pd_duration_format(int64_t ms, char *buf, size_t size) {
        if (!ms)
                snprintf(buf, size, "0");
        else if (ms % 3600000 == 0)
                snprintf(buf, size, "%" PRId64 "h", ms / 3600000);
        else if (ms % 60000 == 0)
                snprintf(buf, size, "%" PRId64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(buf, size, "%" PRId64 "s", ms / 1000);
        else
                snprintf(buf, size, "%" PRId64 "ms", ms);
        return buf;
}

int64_t pd_action_backoff_ms(const pd_action_def_t *def, int32_t retry) {
        int64_t backoff = def->retry_backoff_ms;

        if (backoff <= 0)
                return 0;
        /* Doubled only while under the cap, so retries = 100 cannot
         * overflow: at most 42 doublings from 1 ms. */
        for (int32_t n = 1; n < retry && backoff < PD_RETRY_BACKOFF_MAX_MS;
             n++)
                backoff *= 2;
        return backoff < PD_RETRY_BACKOFF_MAX_MS ? backoff
                                                 : PD_RETRY_BACKOFF_MAX_MS;
}

/* ---- the table ---- */

static int pd_config_section_known(const char *section) {
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++)
                if (!strcmp(pd_config_keys[i].section, section))
                        return 1;
        return 0;
}

static const pd_config_key_t *pd_config_key_find(const char *section,
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
 * Replaces *svp with the comma-separated items of value, trimmed, empty ones
 * and repeats dropped (so "a, b," is a, b). With `tenants` every item must
 * be a tenant name. On error *svp is left as it was.
 */
static int pd_config_list_parse(const char *value, int tenants,
                                pd_strv_t *svp, char *msg, size_t msg_size) {
        pd_strv_t sv = {0};
        char *copy, *item, *save = NULL;
        int err = -1;

        copy = pd_xstrdup(value);
        for (item = strtok_r(copy, ",", &save); item;
             item = strtok_r(NULL, ",", &save)) {
                item = pd_config_trim(item);
                if (!*item || pd_strv_find(&sv, item) >= 0)
                        continue;
                if (tenants && !pd_tenant_valid(item)) {
                        pd_errf(msg, msg_size,
                                       "'%s' is not a valid tenant name "
                                       "(letters, digits, '_', '.', '-', at "
                                       "most 63, not starting with '.' or "
                                       "'-')",
                                       item);
                        goto done;
                }
                pd_strv_add(&sv, item);
        }
        pd_strv_clear(svp);
        *svp = sv;
        memset(&sv, 0, sizeof(sv)); /* *svp owns it now */
        err = 0;
done:
        pd_strv_clear(&sv);
        free(copy);
        return err;
}

/*
 * Asks librdkafka itself whether it takes `name = value`, on a conf made for
 * the question and thrown away: a typo such as `bootstrap.server` is then
 * an error naming its file:line at --check and at start-up, before anything
 * exists on disk, instead of when the Kafka clients are made. The client
 * type plays no part here (one property table serves producers and
 * consumers alike), so one conf answers for every client built from the
 * section. Returns 0, or -1 with librdkafka's message in msg.
 */
static int pd_config_kafka_check(const char *name, const char *value,
                                 char *msg, size_t msg_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_conf_res_t res;

        res = rd_kafka_conf_set(kconf, name, value, msg, msg_size);
        rd_kafka_conf_destroy(kconf);
        return res == RD_KAFKA_CONF_OK ? 0 : -1;
}

/*
 * Stores value into the field ck describes inside base (a pd_config_t, or a
 * pd_action_def_t for section "action"). key is the name as written, which
 * only matters for env.NAME and [kafka]. Returns 0, or -1 with a message
 * that names the accepted forms but not the key (the caller adds that).
 * On error the field keeps its previous value.
 */
static int pd_config_apply(const pd_config_key_t *ck, void *base,
                           const char *key, const char *value, char *msg,
                           size_t msg_size) {
        void *field = (char *)base + ck->offset;

        switch (ck->type) {
        case PD_CONFIG_TENANT:
                if (!pd_tenant_valid(value)) {
                        pd_errf(msg, msg_size,
                                       "expected a tenant name (letters, "
                                       "digits, '_', '.', '-', at most 63, "
                                       "not starting with '.' or '-')");
                        return -1;
                }
                /* fall through */
        case PD_CONFIG_STRING: {
                char **sp = field;
                char *copy = NULL;

                /* An empty value resets a key whose default is "unset". */
                if (*value || ck->def)
                        copy = pd_xstrdup(value);
                free(*sp);
                *sp = copy;
                return 0;
        }
        case PD_CONFIG_INT: {
                char *end;
                long l;

                /* strtol alone would also take " 5" and "+5". */
                errno = 0;
                l = strtol(value, &end, 10);
                if (!((*value >= '0' && *value <= '9') || *value == '-') ||
                    *end || errno || l < ck->min || l > ck->max) {
                        pd_errf(msg, msg_size,
                                       "expected an integer from %" PRId64
                                       " to %" PRId64,
                                       ck->min, ck->max);
                        return -1;
                }
                *(int *)field = (int)l;
                return 0;
        }
        case PD_CONFIG_BOOL: {
                static const char *const truths[] = {"true", "yes", "on", "1"};
                static const char *const lies[] = {"false", "no", "off", "0"};

                for (size_t i = 0; i < 4; i++) {
                        if (!strcasecmp(value, truths[i]) ||
                            !strcasecmp(value, lies[i])) {
                                *(int *)field = !strcasecmp(value, truths[i]);
                                return 0;
                        }
                }
                pd_errf(msg, msg_size,
                               "expected true/false, yes/no, on/off or 1/0");
                return -1;
        }
        case PD_CONFIG_DURATION: {
                char lo[32], hi[32];
                int64_t min = ck->min < 0 ? -ck->min : ck->min;
                int64_t ms;

                if (pd_duration_parse(value, &ms)) {
                        pd_errf(msg, msg_size,
                                       "expected a duration such as 500ms, "
                                       "30s, 5m, 1h or 1.5 (seconds)");
                        return -1;
                }
                /* A bound keeps deadlines and doubled backoffs far from
                 * overflow, and catches "shutdown_grace = 30000" meant as
                 * milliseconds. */
                if ((ms || ck->min >= 0) && (ms < min || ms > ck->max)) {
                        pd_errf(msg, msg_size,
                                "expected %sa duration from %s to %s",
                                ck->min < 0 ? "0 or " : "",
                                pd_duration_format(min, lo, sizeof(lo)),
                                pd_duration_format(ck->max, hi, sizeof(hi)));
                        return -1;
                }
                *(int64_t *)field = ms;
                return 0;
        }
        case PD_CONFIG_UMASK: {
                char *end;
                long l;

                /* Octal only, as umask(1) writes it: "22" is 022. */
                errno = 0;
                l     = strtol(value, &end, 8);
                if (!*value) {
                        l = -1;
                } else if (*value < '0' || *value > '7' || *end || errno ||
                           l > 0777) {
                        pd_errf(msg, msg_size,
                                "expected an octal mode mask from 0000 to "
                                "0777, such as 0022");
                        return -1;
                }
                *(int *)field = (int)l;
                return 0;
        }
        case PD_CONFIG_LIST:
        case PD_CONFIG_TENANTS:
                return pd_config_list_parse(value,
                                            ck->type == PD_CONFIG_TENANTS,
                                            field, msg, msg_size);
        case PD_CONFIG_POLICY:
                if (!strcmp(value, "once"))
                        *(pd_policy_t *)field = PD_POLICY_ONCE;
                else if (!strcmp(value, "always"))
                        *(pd_policy_t *)field = PD_POLICY_ALWAYS;
                else {
                        pd_errf(msg, msg_size,
                                       "expected once or always");
                        return -1;
                }
                return 0;
        case PD_CONFIG_LOG_LEVEL: {
                int lvl = pd_log_level_parse(value);

                if (lvl < 0) {
                        pd_errf(msg, msg_size,
                                       "expected error, warn, info or debug");
                        return -1;
                }
                *(int *)field = lvl;
                return 0;
        }
        case PD_CONFIG_LOG_FORMAT: {
                int fmt = pd_log_format_parse(value);

                if (fmt < 0) {
                        pd_errf(msg, msg_size, "expected text or json");
                        return -1;
                }
                *(int *)field = fmt;
                return 0;
        }
        case PD_CONFIG_COMMAND: {
                /* Only actions have commands: the words go next to `run`. */
                pd_action_def_t *act = base;
                pd_strv_t argv = {0};

                if (pd_argv_split(value, &argv, msg, msg_size))
                        return -1;
                free(act->run);
                act->run = pd_xstrdup(value);
                pd_strv_clear(&act->argv);
                act->argv = argv;
                return 0;
        }
        case PD_CONFIG_ENV: {
                pd_strv_t *env = field;
                const char *name = key + 4; /* after "env." */
                size_t name_len = strlen(name), pair_size;
                char *pair;
                size_t i;

                if (!pd_config_env_name_valid(name)) {
                        pd_errf(msg, msg_size,
                                       "invalid environment variable name "
                                       "'%s' (letters, digits and '_', not "
                                       "starting with a digit)",
                                       name);
                        return -1;
                }
                pair_size = name_len + strlen(value) + 2;
                pair = pd_xmalloc(pair_size);
                snprintf(pair, pair_size, "%s=%s", name, value);
                for (i = 0; i < env->cnt; i++)
                        if (!strncmp(env->v[i], pair, name_len + 1))
                                break;
                if (i < env->cnt)
                        pd_strv_set(env, i, pair);
                else
                        pd_strv_add(env, pair);
                free(pair);
                return 0;
        }
        case PD_CONFIG_PASS: {
                pd_strv_t *kv = field;

                /* A file cannot say "= x" with no name; -s kafka.=x can. */
                if (!*key) {
                        pd_errf(msg, msg_size,
                                       "a property name is required");
                        return -1;
                }
                if (pd_config_kafka_check(key, value, msg, msg_size))
                        return -1;
                /* A later value replaces an earlier one, as in librdkafka. */
                for (size_t i = 0; i + 1 < kv->cnt; i += 2) {
                        if (strcmp(kv->v[i], key))
                                continue;
                        pd_strv_set(kv, i + 1, value);
                        return 0;
                }
                pd_strv_add(kv, key);
                pd_strv_add(kv, value);
                return 0;
        }
        }
        assert(!"unknown config type");
        return -1;
}

/*
 * Writes msg about one value into errstr, naming the key the way a reader
 * finds it: "reactor.workers: msg" or "action 'x': retries: msg".
 */
static void pd_config_value_error(const char *section,
                                  const pd_action_def_t *act, const char *key,
                                  const char *msg, char *errstr,
                                  size_t errstr_size) {
        if (act)
                pd_errf(errstr, errstr_size, "action '%s': %s: %s",
                               act->name, key, msg);
        else
                pd_errf(errstr, errstr_size, "%s.%s: %s", section, key,
                               msg);
}

/*
 * Sets key to value in ck's section of conf (act is the action for section
 * "action", else NULL): the code path shared by files, overrides and
 * defaults. Returns 0, or -1 with e.g. "reactor.workers: expected ..." in
 * errstr.
 */
static int pd_config_assign(pd_config_t *conf, pd_action_def_t *act,
                            const pd_config_key_t *ck, const char *key,
                            const char *value, char *errstr,
                            size_t errstr_size) {
        char msg[512];

        if (!pd_config_apply(ck, act ? (void *)act : (void *)conf, key, value,
                             msg, sizeof(msg)))
                return 0;
        pd_config_value_error(ck->section, act, key, msg, errstr, errstr_size);
        return -1;
}

/* "unknown key 'k' in [section]", the same for files and overrides. */
static void pd_config_unknown_key(const char *section,
                                  const pd_action_def_t *act, const char *key,
                                  char *errstr, size_t errstr_size) {
        if (act)
                pd_errf(errstr, errstr_size,
                               "unknown key '%s' in [action %s]", key,
                               act->name);
        else
                pd_errf(errstr, errstr_size,
                               "unknown key '%s' in [%s]", key, section);
}

/*
 * Sets every key of `section` that has a default to that default, parsed
 * like any value. A default that does not parse is a bug in the table,
 * hence the assert.
 */
static void pd_config_defaults(pd_config_t *conf, pd_action_def_t *act,
                               const char *section) {
        char errstr[512];

        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];

                if (!ck->def || strcmp(ck->section, section))
                        continue;
                if (pd_config_assign(conf, act, ck, ck->name, ck->def, errstr,
                                     sizeof(errstr)))
                        assert(!"a default in pd_config_keys does not parse");
        }
}

/* ---- config objects ---- */

static void pd_action_def_clear(pd_action_def_t *act) {
        free(act->name);
        free(act->run);
        pd_strv_clear(&act->argv);
        free(act->description);
        free(act->workdir);
        pd_strv_clear(&act->env);
        pd_strv_clear(&act->after);
        free(act->plugin);
}

pd_config_t *pd_config_new(void) {
        pd_config_t *conf = pd_xcalloc(1, sizeof(*conf));

        pd_config_defaults(conf, NULL, "reactor");
        pd_config_defaults(conf, NULL, "topics");
        pd_config_defaults(conf, NULL, "cli");
        return conf;
}

void pd_config_destroy(pd_config_t *conf) {
        if (!conf)
                return;
        free(conf->path);
        pd_strv_clear(&conf->kafka);
        free(conf->group_id);
        free(conf->state_path);
        free(conf->log_dir);
        free(conf->default_tenant);
        free(conf->reactor_name);
        free(conf->http);
        free(conf->topic_events);
        free(conf->topic_results);
        free(conf->topic_dlq);
        pd_strv_clear(&conf->tenants);
        pd_strv_clear(&conf->plugins);
        free(conf->signing_key);
        free(conf->cli_signing_key);
        for (size_t i = 0; i < conf->action_cnt; i++)
                pd_action_def_clear(&conf->actions[i]);
        free(conf->actions);
        free(conf);
}

const pd_action_def_t *pd_config_action(const pd_config_t *conf,
                                        const char *name) {
        for (size_t i = 0; i < conf->action_cnt; i++)
                if (!strcmp(conf->actions[i].name, name))
                        return &conf->actions[i];
        return NULL;
}

const char *pd_config_kafka(const pd_config_t *conf, const char *name) {
        for (size_t i = 0; i + 1 < conf->kafka.cnt; i += 2)
                if (!strcmp(conf->kafka.v[i], name))
                        return conf->kafka.v[i + 1];
        return NULL;
}

/*
 * Appends a new action with its defaults and returns it. The array may
 * move: pointers into conf->actions do not survive this call.
 */
static pd_action_def_t *pd_config_action_add(pd_config_t *conf,
                                             const char *name, int line) {
        pd_action_def_t *act;

        conf->actions = pd_xgrow(conf->actions, &conf->action_cap,
                                 conf->action_cnt + 1, sizeof(*act));
        act = &conf->actions[conf->action_cnt++];
        memset(act, 0, sizeof(*act));
        act->name = pd_xstrdup(name);
        act->line = line;
        pd_config_defaults(conf, act, "action");
        return act;
}

pd_action_def_t *pd_config_action_new(pd_config_t *conf, const char *name,
                                      char *errstr, size_t errstr_size) {
        pd_action_def_t *act;

        if (!pd_action_name_valid(name)) {
                pd_errf(errstr, errstr_size,
                               "invalid action name '%s'", name);
                return NULL;
        }
        if ((act = (pd_action_def_t *)pd_config_action(conf, name))) {
                if (act->plugin)
                        pd_errf(errstr, errstr_size,
                                       "action '%s' is also registered by "
                                       "plugin %s",
                                       name, act->plugin);
                else
                        pd_errf(errstr, errstr_size,
                                       "action '%s' is also defined at "
                                       "%s:%d",
                                       name, conf->path ? conf->path : "config",
                                       act->line);
                return NULL;
        }
        return pd_config_action_add(conf, name, 0);
}

int pd_config_set(pd_config_t *conf, const char *section, const char *key,
                  const char *value, char *errstr, size_t errstr_size) {
        const pd_config_key_t *ck;
        pd_action_def_t *act = NULL;

        if (!strncmp(section, "action ", 7)) {
                act = (pd_action_def_t *)pd_config_action(conf, section + 7);
                if (!act) {
                        pd_errf(errstr, errstr_size,
                                       "unknown action '%s'", section + 7);
                        return -1;
                }
                section = "action";
        } else if (!strcmp(section, "action") ||
                   !pd_config_section_known(section)) {
                pd_errf(errstr, errstr_size, "unknown section [%s]",
                               section);
                return -1;
        }
        if (!(ck = pd_config_key_find(section, key))) {
                pd_config_unknown_key(section, act, key, errstr, errstr_size);
                return -1;
        }
        return pd_config_assign(conf, act, ck, key, value, errstr,
                                errstr_size);
}

/* ---- the parser ---- */

/*
 * Cuts the inline comment off value (the text after '='), trims it, and
 * returns where it starts. A '#' or ';' after a blank starts a comment. With
 * `shell` (for `run`) one inside shell quotes or after a backslash does
 * not, since it belongs to the command. Without `shell`, a value that
 * starts with '"' runs to the next '"', blanks and '#' included.
 */
static char *pd_config_value_clean(char *value, int shell, char *msg,
                                   size_t msg_size) {
        char quote = 0;
        int after_blank = 0;
        char *p;

        if (!shell) {
                char *start = value, *close, *rest;

                while (pd_config_is_blank(*start))
                        start++;
                if (*start == '"') {
                        if (!(close = strchr(start + 1, '"'))) {
                                pd_errf(msg, msg_size,
                                               "unterminated double quote");
                                return NULL;
                        }
                        for (rest = close + 1; pd_config_is_blank(*rest);
                             rest++)
                                ;
                        if (*rest && !(rest > close + 1 &&
                                       (*rest == '#' || *rest == ';'))) {
                                pd_errf(msg, msg_size,
                                               "unexpected text after the "
                                               "closing quote");
                                return NULL;
                        }
                        *close = '\0';
                        return start + 1;
                }
        }
        for (p = value; *p; p++) {
                if (quote == '\'') {
                        if (*p == '\'')
                                quote = 0;
                } else if (shell && *p == '\\' && p[1]) {
                        p++;
                        after_blank = 0;
                } else if (quote == '"') {
                        if (*p == '"')
                                quote = 0;
                } else if (shell && (*p == '\'' || *p == '"')) {
                        quote = *p;
                        after_blank = 0;
                } else if ((*p == '#' || *p == ';') && after_blank) {
                        *p = '\0';
                        break;
                } else {
                        after_blank = pd_config_is_blank(*p);
                }
        }
        return pd_config_trim(value);
}

/*
 * Closes the current section. Returns -1 with msg when it was an action
 * without `run`, and moves p->line back to that action's header, which is
 * the line to report (parsing stops at the first error).
 */
static int pd_config_section_end(pd_config_parser_t *p, char *msg,
                                 size_t msg_size) {
        const pd_action_def_t *act;

        pd_strv_clear(&p->seen);
        if (!p->section || strcmp(p->section, "action"))
                return 0;
        act = &p->conf->actions[p->act_idx];
        if (act->run)
                return 0;
        /* Until plugins exist, a command is the only thing an action can
         * run: say so on the section's own line. */
        p->line = act->line;
        pd_errf(msg, msg_size, "action '%s': run is required",
                       act->name);
        return -1;
}

/* Handles "[section]" or "[action NAME]" (the line starts at '['). */
static int pd_config_parse_section(pd_config_parser_t *p, char *s, char *msg,
                                   size_t msg_size) {
        const pd_action_def_t *dup;
        char *close, *rest, *name;
        int line = p->line;

        if (pd_config_section_end(p, msg, msg_size))
                return -1;
        p->section = NULL;
        if (!(close = strchr(s, ']'))) {
                pd_errf(msg, msg_size, "expected ']' to close %s", s);
                return -1;
        }
        for (rest = close + 1; pd_config_is_blank(*rest); rest++)
                ;
        if (*rest && *rest != '#' && *rest != ';') {
                pd_errf(msg, msg_size,
                               "unexpected text after the section name");
                return -1;
        }
        *close = '\0';
        s = pd_config_trim(s + 1);
        if (strncmp(s, "action", 6) ||
            (s[6] && !pd_config_is_blank(s[6]))) {
                for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                        /* Point at the table's string: it outlives s. */
                        if (strcmp(pd_config_keys[i].section, "action") &&
                            !strcmp(pd_config_keys[i].section, s)) {
                                p->section = pd_config_keys[i].section;
                                return 0;
                        }
                }
                pd_errf(msg, msg_size, "unknown section [%s]", s);
                return -1;
        }
        name = pd_config_trim(s + 6);
        if (!*name) {
                pd_errf(msg, msg_size,
                               "[action] needs a name: [action NAME]");
                return -1;
        }
        if (!pd_action_name_valid(name)) {
                pd_errf(msg, msg_size,
                               "invalid action name '%s' (letters, digits, "
                               "'_', '.', '-', at most 128, not starting "
                               "with '.' or '-')",
                               name);
                return -1;
        }
        if ((dup = pd_config_action(p->conf, name))) {
                if ((size_t)(dup - p->conf->actions) >= p->first_action)
                        pd_errf(msg, msg_size,
                                       "action '%s' already defined at line "
                                       "%d",
                                       name, dup->line);
                else
                        pd_errf(msg, msg_size,
                                       "action '%s' already defined at line "
                                       "%d of an earlier file",
                                       name, dup->line);
                return -1;
        }
        pd_config_action_add(p->conf, name, line);
        p->act_idx = p->conf->action_cnt - 1;
        p->section = "action";
        return 0;
}

/* Handles "key = value". */
static int pd_config_parse_key(pd_config_parser_t *p, char *s, char *msg,
                               size_t msg_size) {
        const pd_config_key_t *ck;
        pd_action_def_t *act = NULL;
        char *eq, *key, *value;
        char inner[256];

        if (!(eq = strchr(s, '='))) {
                pd_errf(msg, msg_size,
                               "expected [section] or key = value");
                return -1;
        }
        *eq = '\0';
        key = pd_config_trim(s);
        if (!*key) {
                pd_errf(msg, msg_size, "missing key before '='");
                return -1;
        }
        if (!p->section) {
                pd_errf(msg, msg_size, "key '%s' outside any section",
                               key);
                return -1;
        }
        if (!strcmp(p->section, "action"))
                act = &p->conf->actions[p->act_idx];
        if (!(ck = pd_config_key_find(p->section, key))) {
                pd_config_unknown_key(p->section, act, key, msg, msg_size);
                return -1;
        }
        if (!(value = pd_config_value_clean(eq + 1,
                                            ck->type == PD_CONFIG_COMMAND,
                                            inner, sizeof(inner)))) {
                pd_config_value_error(p->section, act, key, inner, msg,
                                      msg_size);
                return -1;
        }
        if (act) {
                /* Two values for one key of one action is a mistake, not
                 * an override: say where the first one is. */
                int i = pd_strv_find(&p->seen, key);

                if (i >= 0) {
                        pd_errf(msg, msg_size,
                                       "action '%s': %s already set at line "
                                       "%d",
                                       act->name, key, p->seen_lines[i]);
                        return -1;
                }
                p->seen_lines = pd_xgrow(p->seen_lines, &p->seen_cap,
                                         p->seen.cnt + 1,
                                         sizeof(*p->seen_lines));
                p->seen_lines[p->seen.cnt] = p->line;
                pd_strv_add(&p->seen, key);
        }
        return pd_config_assign(p->conf, act, ck, key, value, msg, msg_size);
}

static int pd_config_parse_line(pd_config_parser_t *p, char *line, char *msg,
                                size_t msg_size) {
        char *s = line;

        while (pd_config_is_blank(*s))
                s++;
        if (!*s || *s == '#' || *s == ';')
                return 0;
        if (*s == '[')
                return pd_config_parse_section(p, s, msg, msg_size);
        return pd_config_parse_key(p, s, msg, msg_size);
}

/*
 * Reads one line into buf (size PD_CONFIG_LINE_MAX + 1) without its line
 * ending. Returns its length, -1 at end of file or on a read error, -2 when
 * it is too long, -3 when it holds a NUL byte (which C strings cannot
 * carry, so the rest of the line would silently vanish).
 */
static int pd_config_read_line(FILE *fp, char *buf) {
        int c, len = 0;

        while ((c = getc(fp)) != EOF && c != '\n') {
                if (c == '\0')
                        return -3;
                if (len == PD_CONFIG_LINE_MAX)
                        return -2;
                buf[len++] = (char)c;
        }
        if (c == EOF && len == 0)
                return -1;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        buf[len] = '\0';
        return len;
}

int pd_config_load(pd_config_t *conf, const char *path, char *errstr,
                   size_t errstr_size) {
        pd_config_parser_t p = {0};
        char line[PD_CONFIG_LINE_MAX + 1];
        char msg[1024];
        FILE *fp;
        int len, err = -1;

        p.conf = conf;
        p.first_action = conf->action_cnt;
        if (!(fp = fopen(path, "r"))) {
                pd_errf(errstr, errstr_size, "%s: %s", path,
                               pd_strerror(errno));
                goto done;
        }
        free(conf->path);
        conf->path = pd_xstrdup(path);

        while ((len = pd_config_read_line(fp, line)) != -1) {
                char *s = line;

                p.line++;
                if (len < 0) {
                        if (len == -2)
                                pd_errf(errstr, errstr_size,
                                               "%s:%d: line longer than %d "
                                               "bytes",
                                               path, p.line,
                                               PD_CONFIG_LINE_MAX);
                        else
                                pd_errf(errstr, errstr_size,
                                               "%s:%d: NUL byte in line",
                                               path, p.line);
                        goto done;
                }
                /* Editors on some systems start files with a UTF-8 BOM. */
                if (p.line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
                        s += 3;
                if (pd_config_parse_line(&p, s, msg, sizeof(msg))) {
                        pd_errf(errstr, errstr_size, "%s:%d: %s", path,
                                       p.line, msg);
                        goto done;
                }
        }
        if (ferror(fp)) {
                /* Reading a directory fails here, not in fopen. */
                pd_errf(errstr, errstr_size, "%s: %s", path,
                               pd_strerror(errno));
                goto done;
        }
        if (pd_config_section_end(&p, msg, sizeof(msg))) {
                pd_errf(errstr, errstr_size, "%s:%d: %s", path, p.line,
                               msg);
                goto done;
        }
        err = 0;
done:
        pd_strv_clear(&p.seen);
        free(p.seen_lines);
        if (fp)
                fclose(fp);
        return err;
}

/* ---- validation ---- */

/* Where an action was defined: "file:line", or "plugin PATH". */
static const char *pd_config_where(const pd_config_t *conf,
                                   const pd_action_def_t *act, char *buf,
                                   size_t size) {
        if (act->plugin)
                snprintf(buf, size, "plugin %s", act->plugin);
        else
                snprintf(buf, size, "%s:%d",
                         conf->path ? conf->path : "config", act->line);
        return buf;
}

/*
 * Depth-first search from action i over `after` edges. stack holds the path
 * from the search's root; state[] is 0 unvisited, 1 on the path, 2 done.
 * Returns 0, or -1 with "dependency cycle: a -> b -> a" in errstr.
 */
static int pd_config_cycle_visit(const pd_config_t *conf, size_t i,
                                 unsigned char *state, size_t *stack,
                                 size_t depth, char *errstr,
                                 size_t errstr_size) {
        const pd_action_def_t *act = &conf->actions[i];

        state[i] = 1;
        stack[depth] = i;
        for (size_t a = 0; a < act->after.cnt; a++) {
                size_t j = (size_t)(pd_config_action(conf, act->after.v[a]) -
                                    conf->actions);

                if (state[j] == 1) {
                        /* The cycle is the path from j's place to here. */
                        size_t from = 0, off;
                        char where[1100];

                        while (stack[from] != j)
                                from++;
                        off = (size_t)snprintf(
                                errstr, errstr_size, "%s: dependency cycle: ",
                                pd_config_where(conf, &conf->actions[j], where,
                                                sizeof(where)));
                        for (size_t k = from; k <= depth; k++) {
                                if (off < errstr_size)
                                        off += (size_t)snprintf(
                                                errstr + off,
                                                errstr_size - off, "%s -> ",
                                                conf->actions[stack[k]].name);
                        }
                        if (off < errstr_size)
                                snprintf(errstr + off, errstr_size - off, "%s",
                                         conf->actions[j].name);
                        return -1;
                }
                if (state[j] == 0 &&
                    pd_config_cycle_visit(conf, j, state, stack, depth + 1,
                                          errstr, errstr_size))
                        return -1;
        }
        state[i] = 2;
        return 0;
}

int pd_config_validate(pd_config_t *conf, char *errstr, size_t errstr_size) {
        char where[1100];
        unsigned char *state = NULL;
        size_t *stack = NULL;
        int err = -1;

        /* Names first, so the cycle search only meets known actions. */
        for (size_t i = 0; i < conf->action_cnt; i++) {
                const pd_action_def_t *act = &conf->actions[i];

                for (size_t a = 0; a < act->after.cnt; a++) {
                        const char *dep = act->after.v[a];

                        if (!strcmp(dep, act->name)) {
                                pd_errf(errstr, errstr_size,
                                               "%s: action '%s': after "
                                               "names the action itself",
                                               pd_config_where(conf, act, where,
                                                               sizeof(where)),
                                               act->name);
                                goto done;
                        }
                        if (!pd_config_action(conf, dep)) {
                                pd_errf(errstr, errstr_size,
                                               "%s: action '%s': after "
                                               "names unknown action '%s'",
                                               pd_config_where(conf, act, where,
                                                               sizeof(where)),
                                               act->name, dep);
                                goto done;
                        }
                }
        }
        if (!conf->action_cnt) {
                err = 0;
                goto done;
        }
        state = pd_xcalloc(conf->action_cnt, sizeof(*state));
        stack = pd_xcalloc(conf->action_cnt, sizeof(*stack));
        for (size_t i = 0; i < conf->action_cnt; i++)
                if (!state[i] && pd_config_cycle_visit(conf, i, state, stack,
                                                       0, errstr,
                                                       errstr_size))
                        goto done;
        err = 0;
done:
        free(stack);
        free(state);
        return err;
}

/* ---- documentation ---- */

/* The type as a reader should write it, e.g. "integer 1..256". */
static const char *pd_config_type_desc(const pd_config_key_t *ck, char *buf,
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
static void pd_config_md_cell(FILE *fp, const char *s) {
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
                fprintf(fp, "| Section | Key | Type | Default | Description "
                            "|\n|---|---|---|---|---|\n");
                for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                        const pd_config_key_t *ck = &pd_config_keys[i];

                        fprintf(fp, "| `[%s%s]` | `%s` | ", ck->section,
                                strcmp(ck->section, "action") ? "" : " NAME",
                                ck->name);
                        pd_config_md_cell(fp, pd_config_type_desc(
                                                      ck, tbuf, sizeof(tbuf)));
                        fputs(" | ", fp);
                        if (ck->def && *ck->def)
                                fprintf(fp, "`%s`", ck->def);
                        else if (ck->def)
                                fputs("\"\"", fp);
                        fputs(" | ", fp);
                        pd_config_md_cell(fp, ck->help);
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
                n = (int)strlen(pd_config_type_desc(ck, tbuf, sizeof(tbuf)));
                if (n > tw)
                        tw = n;
                if (ck->def && (n = (int)strlen(ck->def) + 2) > dw)
                        dw = n;
        }
        for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                const pd_config_key_t *ck = &pd_config_keys[i];
                char dbuf[128];

                if (!prev || strcmp(prev, ck->section))
                        fprintf(fp, "%s[%s%s]\n", prev ? "\n" : "",
                                ck->section,
                                strcmp(ck->section, "action") ? "" : " NAME");
                prev = ck->section;
                snprintf(dbuf, sizeof(dbuf), "\"%s\"", ck->def ? ck->def : "");
                fprintf(fp, "  %-*s  %-*s  %-*s  %s\n", kw, ck->name, tw,
                        pd_config_type_desc(ck, tbuf, sizeof(tbuf)), dw,
                        ck->def ? dbuf : "-", ck->help);
        }
}
