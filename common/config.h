/*
 * config.h - the INI configuration shared by the reactor and the CLI.
 *
 * One table (config_keys.c: pd_config_keys[]) lists every key with its
 * section, type, default and help text. The parser, `--help`, and
 * docs/CONFIG.md are all generated from that table, so they cannot
 * disagree.
 *
 * File format:
 *   [kafka]              any librdkafka property, passed through untouched
 *   [reactor]            group.id, state, default_tenant, workers, ...
 *   [topics]             events, results, dlq, partitions
 *   [cli]                tenants (used by the CLI's --all-tenants)
 *   [action NAME]        one registered action; NAME must be unique
 * Comments start with '#' or ';' at the start of a line or after
 * whitespace. Values may not span lines. Every error names "file:line: ".
 */
#ifndef PD_CONFIG_H
#define PD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/strv.h"

typedef enum pd_policy_e {
        PD_POLICY_ONCE = 0, /* runs until one success (default) */
        PD_POLICY_ALWAYS,   /* runs on every matching deploy */
} pd_policy_t;

/* "once" / "always". */
const char *pd_policy_name(pd_policy_t policy);

/* One registered action, from an [action NAME] section. */
typedef struct pd_action_def_s {
        char *name;                /* "core.reindex_search", validated */
        char *run;                 /* the command line as written */
        pd_strv_t argv;            /* `run` split into words (see argv.h) */
        int is_auto;               /* auto = true|false (default false) */
        pd_policy_t policy;        /* policy = once|always */
        char *description;         /* may be "" */
        int64_t timeout_ms;        /* timeout = DURATION, 0 = none */
        int retries;               /* retries = N (default 0) */
        int64_t retry_backoff_ms;  /* retry_backoff = DURATION (default 1s) */
        int concurrency;           /* concurrency = N: at most N tenants run
                                    * it at once in one reactor; 0 = the
                                    * reactor's max_running_per_action */
        char *workdir;             /* workdir = DIR, NULL = inherit */
        int umask;                 /* umask = 0022, -1 = the reactor's */
        pd_strv_t env;             /* env.NAME = VALUE, stored "NAME=VALUE" */
        pd_strv_t after;           /* after = a, b (names of other actions) */
        pd_strv_t params;          /* params = batch_size, since? (a '?'
                                    * marks an optional one) */
        int line;                  /* line of the section header; 0 for a
                                    * plugin's action */
        char *plugin;              /* path of the plugin that registered it;
                                    * NULL for an [action] section */
        const void *plugin_action; /* that plugin's pd_plugin_action_t
                                    * (not owned) */
} pd_action_def_t;

typedef struct pd_config_s {
        char *path; /* file loaded last, NULL if none */

        /* [kafka]: librdkafka properties in file order, name/value pairs. */
        pd_strv_t kafka; /* kafka.v[2*i] = name, kafka.v[2*i+1] = value */

        /* [reactor] */
        char *group_id;             /* group.id (default "postdeploy") */
        char *state_path;           /* state (default "postdeploy-state.db") */
        int state_sync_full;        /* state_sync: 1 = SQLite synchronous=FULL,
                                     * 0 = NORMAL (default false) */
        char *log_dir;              /* log_dir: full action output, "" = none */
        char *default_tenant;       /* default_tenant (default "default") */
        char *reactor_name;         /* name (default "HOST:PID" at run time) */
        int workers;                /* workers (default 4) */
        int max_running_per_action; /* max_running_per_action: the
                                     * concurrency of an action that sets
                                     * none; 0 = no limit (default) */
        int64_t shutdown_grace_ms;  /* shutdown_grace (default 30s) */
        int64_t supervisor_timeout_ms; /* supervisor_timeout (30s) */
        int64_t progress_interval_ms;  /* progress_interval (1s) */
        int64_t keep_runs_ms;          /* keep_runs: history older than this is
                                        * pruned (default 90d, 0 = never) */
        int log_level;                 /* log_level = error|warn|info|debug */
        int log_format;                /* log_format = text|json
                                        * (pd_log_format_t) */
        pd_strv_t plugins;             /* plugins = a.so, b.so */
        int max_event_bytes;           /* max_event_bytes: larger records are
                                        * dead-lettered unread */
        char *signing_key;             /* signing_key = FILE: accept only events
                                        * signed with it; NULL = unsigned ok */
        int64_t max_event_age_ms;      /* max_event_age (default 24h): older
                                        * signed events are dead-lettered; 0 =
                                        * no check */
        int shared_group;              /* shared_group: several reactors
                                        * per group.id (default false) */
        char *instance;                /* instance: static member name;
                                        * NULL = postdeploy-<store id> */
        int64_t lease_ms;              /* lease (default 10s): the
                                        * supervisor's patience, shared
                                        * mode only */
        char *http;                    /* http = HOST:PORT of /metrics, /livez,
                                        * /readyz; "" = off (default) */

        /* [topics] */
        char *topic_events;  /* events  (default "postdeploy.events") */
        char *topic_results; /* results (default "postdeploy.results") */
        char *topic_dlq;     /* dlq     (default "postdeploy.dlq") */
        int partitions;      /* partitions for topics we create (default 6) */
        int replication;     /* replication factor for them (default 1) */

        /* [cli] */
        pd_strv_t tenants;     /* tenants = a, b, c */
        char *cli_signing_key; /* signing_key = FILE: sign what we send */

        /* [action NAME] sections, in file order. */
        pd_action_def_t *actions;
        size_t action_cnt;
        size_t action_cap; /* room in actions (pd_xgrow) */
} pd_config_t;

/* Returns a config holding every default. Never NULL (aborts on OOM). */
pd_config_t *pd_config_new(void);

/* Frees conf and everything it owns. NULL is fine. */
void pd_config_destroy(pd_config_t *conf);

/*
 * Reads an INI file into conf, on top of what conf already holds. It does
 * not cross-check actions: call pd_config_validate once every source is in
 * (files, overrides, the actions plugins register). Returns 0, or -1 with
 * "file:line: message" (or "file: message" for an unreadable file) in errstr.
 * An action section that appears twice, an unknown section or key, a bad
 * value, a `run` whose quotes do not close: each is an error. After an
 * error conf holds part of the file: destroy it rather than use it.
 *
 * A value may be wrapped in double quotes to keep leading or trailing blanks
 * or a " #" (the quotes cannot contain a '"'); `run` is the exception: its
 * quotes are the shell's (argv.h), and a '#' or ';' inside them or after a
 * backslash does not start a comment.
 */
int pd_config_load(pd_config_t *conf, const char *path, char *errstr,
                   size_t errstr_size);

/*
 * Sets one key as if it stood in section `section` of a file (used for
 * command line overrides; the "kafka" section takes any name, and section
 * "action NAME" sets a key of an action already loaded). The value is taken
 * literally: no comment stripping, no quotes. Returns 0 or -1 with a message
 * in errstr (without "file:line: ").
 */
int pd_config_set(pd_config_t *conf, const char *section, const char *key,
                  const char *value, char *errstr, size_t errstr_size);

/*
 * Cross-checks actions: `after` names must exist and form no cycle.
 * Returns 0 or -1 with "file:line: message" ("plugin PATH: message" for a
 * plugin's action).
 */
int pd_config_validate(pd_config_t *conf, char *errstr, size_t errstr_size);

/*
 * Appends an action named `name` holding every default, for a source other
 * than a file (a plugin). Returns it (valid until the next action is added),
 * or NULL with errstr if the name is invalid or taken.
 */
pd_action_def_t *pd_config_action_new(pd_config_t *conf, const char *name,
                                      char *errstr, size_t errstr_size);

/* Returns the action named `name`, or NULL. */
const pd_action_def_t *pd_config_action(const pd_config_t *conf,
                                        const char *name);

/* Value of a [kafka] property, or NULL if not set. */
const char *pd_config_kafka(const pd_config_t *conf, const char *name);

/*
 * Upper bounds of durations (milliseconds); a larger value is a config
 * error naming file:line. The wait before a retry doubles up to
 * PD_RETRY_BACKOFF_MAX_MS and stays there.
 */
#define PD_SHUTDOWN_GRACE_MAX_MS (3600 * 1000LL)          /* 1h */
#define PD_RETRY_BACKOFF_MAX_MS  (3600 * 1000LL)          /* 1h */
#define PD_TIMEOUT_MAX_MS        (7 * 24 * 3600 * 1000LL) /* 168h */

/*
 * The wait before retry number `retry` (1 = the first retry) of def:
 * retry_backoff * 2^(retry-1), at most PD_RETRY_BACKOFF_MAX_MS. Never
 * overflows, whatever retries says.
 */
int64_t pd_action_backoff_ms(const pd_action_def_t *def, int32_t retry);

/* Writes ms the way a config would say it ("1h", "90s", "250ms") into buf
 * and returns buf. */
const char *pd_duration_format(int64_t ms, char *buf, size_t size);

/*
 * Parses a duration: "500ms", "30s", "5m", "1h", "90d", or plain seconds ("30",
 * "1.5"). Returns 0 and sets *msp, or -1 if s is not a duration.
 */
int pd_duration_parse(const char *s, int64_t *msp);

/* Names valid for tenants: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$. 1 if valid. */
int pd_tenant_valid(const char *tenant);
/* Names valid for actions: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$. 1 if valid. */
int pd_action_name_valid(const char *name);
/* Names valid for an action's parameters: ^[a-z][a-z0-9_]{0,63}$, so
 * {param.NAME} and POSTDEPLOY_PARAM_NAME are unambiguous. 1 if valid. */
int pd_param_name_valid(const char *name);

/* Largest parameter value, and most parameters one deploy carries. */
#define PD_PARAM_VALUE_MAX 4096
#define PD_PARAMS_MAX      32
/* Releases: ^[A-Za-z0-9][A-Za-z0-9_.+~-]{0,127}$, so 1.2.3+build.4 and
 * v4.2.0-rc.1 pass and nothing that a program would read as an option
 * (`--delete`) does. 1 if valid. */
int pd_release_valid(const char *release);
/* The rule above, in words, for error messages. */
#define PD_RELEASE_RULE                                                        \
        "1-128 of A-Z a-z 0-9 _ . + ~ -, starting with a letter or digit"

/*
 * Prints the key table: fmt 't' a plain-text list for --help, 'm' a
 * Markdown table for docs/CONFIG.md.
 */
void pd_config_print_keys(FILE *fp, int fmt);

#endif
