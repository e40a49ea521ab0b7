/*
 * test_config.c - the INI configuration: defaults, every key, inline
 * comments, overrides, [kafka] pass-through, and every error with the
 * "file:line: " that points a reader at the mistake.
 *
 * Each test writes its files into a fresh folder (fixture.c) that the teardown
 * removes again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

typedef struct fixture_s {
        char dir[64];
        pd_strv_t files; /* full paths written, removed by teardown */
        pd_config_t *conf;
        char errstr[1024];
} fixture_t;

static int fx_setup(void **state) {
        fixture_t *fx = calloc(1, sizeof(*fx));

        if (!fx)
                return -1;
        pd_test_tmpdir(fx->dir, sizeof(fx->dir), "test_config", 0);
        fx->conf = pd_config_new();
        *state   = fx;
        return 0;
}

static int fx_teardown(void **state) {
        fixture_t *fx = *state;

        pd_strv_clear(&fx->files);
        pd_test_rmtree(fx->dir);
        pd_config_destroy(fx->conf);
        free(fx);
        return 0;
}

/* Writes text to dir/name and returns the path (owned by the fixture). */
static const char *fx_write(fixture_t *fx, const char *name, const char *text) {
        char path[PATH_MAX];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        fp = fopen(path, "w");
        assert_non_null(fp);
        assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
        assert_int_equal(fclose(fp), 0);
        if (pd_strv_find(&fx->files, path) < 0)
                pd_strv_add(&fx->files, path);
        return fx->files.v[pd_strv_find(&fx->files, path)];
}

/* Writes text to "pd.conf" and loads it into a fresh config, since a
 * failed load leaves part of a file behind. */
static int fx_load(fixture_t *fx, const char *text) {
        const char *path = fx_write(fx, "pd.conf", text);

        pd_config_destroy(fx->conf);
        fx->conf      = pd_config_new();
        fx->errstr[0] = '\0';
        /* What a program does: load every source, then cross-check. */
        if (pd_config_load(fx->conf, path, fx->errstr, sizeof(fx->errstr)))
                return -1;
        return pd_config_validate(fx->conf, fx->errstr, sizeof(fx->errstr));
}

/* Asserts that loading text fails with "DIR/pd.conf:" + the rest. */
static void fx_expect_error(fixture_t *fx, const char *text, const char *rest) {
        char want[1024];

        assert_int_equal(fx_load(fx, text), -1);
        snprintf(want, sizeof(want), "%s/pd.conf:%s", fx->dir, rest);
        assert_string_equal(fx->errstr, want);
}

static void assert_strv(const pd_strv_t *sv, const char *const *want,
                        size_t cnt) {
        assert_int_equal(sv->cnt, cnt);
        for (size_t i = 0; i < cnt; i++)
                assert_string_equal(sv->v[i], want[i]);
        assert_null(sv->v ? sv->v[cnt] : NULL);
}

/* ---- defaults and keys ---- */

static void test_new_config_holds_every_default(void **state) {
        fixture_t *fx     = *state;
        pd_config_t *conf = fx->conf;

        assert_null(conf->path);
        assert_int_equal(conf->kafka.cnt, 0);
        assert_string_equal(conf->group_id, "postdeploy");
        assert_string_equal(conf->state_path, "postdeploy-state.db");
        assert_int_equal(conf->state_sync_full, 0);
        assert_string_equal(conf->log_dir, "");
        assert_string_equal(conf->default_tenant, "default");
        assert_null(conf->reactor_name);
        assert_int_equal(conf->workers, 4);
        assert_int_equal(conf->shutdown_grace_ms, 30000);
        assert_int_equal(conf->keep_runs_ms, 90LL * 86400000);
        assert_int_equal(conf->log_level, PD_LOG_INFO);
        assert_string_equal(conf->topic_events, "postdeploy.events");
        assert_string_equal(conf->topic_results, "postdeploy.results");
        assert_string_equal(conf->topic_dlq, "postdeploy.dlq");
        assert_int_equal(conf->partitions, 6);
        assert_int_equal(conf->replication, 1);
        assert_int_equal(conf->tenants.cnt, 0);
        assert_int_equal(conf->action_cnt, 0);
}

static void test_action_gets_defaults_for_keys_not_written(void **state) {
        fixture_t *fx = *state;
        const pd_action_def_t *act;

        assert_int_equal(fx_load(fx,
                                 "[action core.reindex]\n"
                                 "run = reindex\n"),
                         0);
        act = pd_config_action(fx->conf, "core.reindex");
        assert_non_null(act);
        assert_string_equal(act->name, "core.reindex");
        assert_string_equal(act->run, "reindex");
        assert_int_equal(act->is_auto, 0);
        assert_int_equal(act->policy, PD_POLICY_ONCE);
        assert_string_equal(act->description, "");
        assert_int_equal(act->timeout_ms, 0);
        assert_int_equal(act->retries, 0);
        assert_int_equal(act->retry_backoff_ms, 1000);
        assert_null(act->workdir);
        assert_int_equal(act->umask, -1); /* the reactor's own */
        assert_int_equal(act->env.cnt, 0);
        assert_int_equal(act->after.cnt, 0);
        assert_int_equal(act->line, 1);
}

static void test_umask_is_octal_and_at_most_0777(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "[action a]\nrun = x\numask = 0022\n"
                                 "[action b]\nrun = x\numask = 77\n"
                                 "[action c]\nrun = x\numask = 0\n"),
                         0);
        assert_int_equal(pd_config_action(fx->conf, "a")->umask, 0022);
        assert_int_equal(pd_config_action(fx->conf, "b")->umask, 0077);
        assert_int_equal(pd_config_action(fx->conf, "c")->umask, 0);
        fx_expect_error(fx, "[action a]\nrun = x\numask = 0888\n",
                        "3: action 'a': umask: expected an octal mode mask "
                        "from 0000 to 0777, such as 0022");
        fx_expect_error(fx, "[action a]\nrun = x\numask = 01000\n",
                        "3: action 'a': umask: expected an octal mode mask "
                        "from 0000 to 0777, such as 0022");
        fx_expect_error(fx, "[action a]\nrun = x\numask = -22\n",
                        "3: action 'a': umask: expected an octal mode mask "
                        "from 0000 to 0777, such as 0022");
        fx_expect_error(fx, "[action a]\nrun = x\numask = 0x12\n",
                        "3: action 'a': umask: expected an octal mode mask "
                        "from 0000 to 0777, such as 0022");
}

static void test_keep_runs_is_days_or_0_never_under_an_hour(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx, "[reactor]\nkeep_runs = 30d\n"), 0);
        assert_int_equal(fx->conf->keep_runs_ms, 30LL * 86400000);
        assert_int_equal(fx_load(fx, "[reactor]\nkeep_runs = 0\n"), 0);
        assert_int_equal(fx->conf->keep_runs_ms, 0);
        assert_int_equal(fx_load(fx, "[reactor]\nkeep_runs = 1h\n"), 0);
        assert_int_equal(fx->conf->keep_runs_ms, 3600000);
        /* Shorter than the time a processed event may wait for its
         * offset to be committed: its redelivery would run again. */
        fx_expect_error(fx, "[reactor]\nkeep_runs = 59m\n",
                        "2: reactor.keep_runs: expected 0 or a duration "
                        "from 1h to 87600h");
}

static void test_every_key_is_read_from_a_full_file(void **state) {
        fixture_t *fx = *state;
        const pd_config_t *conf;
        const pd_action_def_t *act;
        static const char *const tenants[] = {"acme", "beta"};
        static const char *const argv[]    = {"/usr/bin/fix", "--tenant",
                                              "{tenant}"};
        static const char *const env[]     = {"MODE=fast", "LEVEL=3"};
        static const char *const after[]   = {"core.migrate", "core.reindex"};

        assert_int_equal(fx_load(fx,
                                 "[kafka]\n"
                                 "bootstrap.servers = 127.0.0.1:9092\n"
                                 "\n"
                                 "[reactor]\n"
                                 "group.id = grp\n"
                                 "state = /var/lib/pd/state.db\n"
                                 "state_sync = yes\n"
                                 "log_dir = /var/log/pd\n"
                                 "default_tenant = acme\n"
                                 "name = reactor-1\n"
                                 "workers = 16\n"
                                 "shutdown_grace = 1m\n"
                                 "keep_runs = 7d\n"
                                 "log_level = debug\n"
                                 "[topics]\n"
                                 "events = ev\n"
                                 "results = res\n"
                                 "dlq = dead\n"
                                 "partitions = 12\n"
                                 "replication = 3\n"
                                 "[cli]\n"
                                 "tenants = acme, beta\n"
                                 "[action core.migrate]\n"
                                 "run = migrate\n"
                                 "[action core.reindex]\n"
                                 "run = reindex\n"
                                 "[action core.fix]\n"
                                 "run = /usr/bin/fix --tenant {tenant}\n"
                                 "auto = on\n"
                                 "policy = always\n"
                                 "description = Fixes invoices\n"
                                 "timeout = 10m\n"
                                 "retries = 2\n"
                                 "retry_backoff = 250ms\n"
                                 "workdir = /srv/app\n"
                                 "umask = 0027\n"
                                 "after = core.migrate, core.reindex\n"
                                 "env.MODE = fast\n"
                                 "env.LEVEL = 3\n"),
                         0);
        conf = fx->conf;
        assert_string_equal(pd_config_kafka(conf, "bootstrap.servers"),
                            "127.0.0.1:9092");
        assert_string_equal(conf->group_id, "grp");
        assert_string_equal(conf->state_path, "/var/lib/pd/state.db");
        assert_int_equal(conf->state_sync_full, 1);
        assert_string_equal(conf->log_dir, "/var/log/pd");
        assert_string_equal(conf->default_tenant, "acme");
        assert_string_equal(conf->reactor_name, "reactor-1");
        assert_int_equal(conf->workers, 16);
        assert_int_equal(conf->shutdown_grace_ms, 60000);
        assert_int_equal(conf->keep_runs_ms, 7LL * 86400000);
        assert_int_equal(conf->log_level, PD_LOG_DEBUG);
        assert_string_equal(conf->topic_events, "ev");
        assert_string_equal(conf->topic_results, "res");
        assert_string_equal(conf->topic_dlq, "dead");
        assert_int_equal(conf->partitions, 12);
        assert_int_equal(conf->replication, 3);
        assert_strv(&conf->tenants, tenants, 2);

        assert_int_equal(conf->action_cnt, 3);
        assert_string_equal(conf->actions[0].name, "core.migrate");
        assert_string_equal(conf->actions[2].name, "core.fix");
        act = pd_config_action(conf, "core.fix");
        assert_ptr_equal(act, &conf->actions[2]);
        assert_int_equal(act->line, 27);
        assert_string_equal(act->run, "/usr/bin/fix --tenant {tenant}");
        assert_strv(&act->argv, argv, 3);
        assert_int_equal(act->is_auto, 1);
        assert_int_equal(act->policy, PD_POLICY_ALWAYS);
        assert_string_equal(act->description, "Fixes invoices");
        assert_int_equal(act->timeout_ms, 600000);
        assert_int_equal(act->retries, 2);
        assert_int_equal(act->retry_backoff_ms, 250);
        assert_string_equal(act->workdir, "/srv/app");
        assert_int_equal(act->umask, 0027);
        assert_strv(&act->after, after, 2);
        assert_strv(&act->env, env, 2);
        assert_null(pd_config_action(conf, "core.missing"));
}

static void test_load_remembers_the_path(void **state) {
        fixture_t *fx = *state;
        char want[256];

        assert_int_equal(fx_load(fx, "# nothing but a comment\n"), 0);
        snprintf(want, sizeof(want), "%s/pd.conf", fx->dir);
        assert_string_equal(fx->conf->path, want);
}

static void test_bool_accepts_every_documented_spelling(void **state) {
        fixture_t *fx = *state;
        static const struct {
                const char *value;
                int want;
        } cases[] = {{"true", 1}, {"yes", 1}, {"on", 1},    {"1", 1},
                     {"TRUE", 1}, {"Yes", 1}, {"false", 0}, {"no", 0},
                     {"off", 0},  {"0", 0},   {"OFF", 0}};

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                fx->conf->state_sync_full = !cases[i].want;
                assert_int_equal(pd_config_set(fx->conf, "reactor",
                                               "state_sync", cases[i].value,
                                               fx->errstr, sizeof(fx->errstr)),
                                 0);
                assert_int_equal(fx->conf->state_sync_full, cases[i].want);
        }
}

static void test_log_level_takes_the_four_names(void **state) {
        fixture_t *fx = *state;
        static const struct {
                const char *value;
                int want;
        } cases[] = {{"error", PD_LOG_ERROR},
                     {"warn", PD_LOG_WARN},
                     {"info", PD_LOG_INFO},
                     {"debug", PD_LOG_DEBUG}};

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(pd_config_set(fx->conf, "reactor", "log_level",
                                               cases[i].value, fx->errstr,
                                               sizeof(fx->errstr)),
                                 0);
                assert_int_equal(fx->conf->log_level, cases[i].want);
        }
}

static void test_tenant_list_is_trimmed_without_empties_or_repeats(
    void **state) {
        fixture_t *fx                   = *state;
        static const char *const want[] = {"acme", "beta", "gamma"};

        assert_int_equal(fx_load(fx,
                                 "[cli]\n"
                                 "tenants = acme,  beta ,, acme,gamma,\n"),
                         0);
        assert_strv(&fx->conf->tenants, want, 3);
}

static void test_later_value_replaces_earlier_outside_actions(void **state) {
        fixture_t *fx                   = *state;
        static const char *const want[] = {"c"};

        assert_int_equal(fx_load(fx,
                                 "[reactor]\n"
                                 "workers = 2\n"
                                 "workers = 3\n"
                                 "[cli]\n"
                                 "tenants = a, b\n"
                                 "tenants = c\n"),
                         0);
        assert_int_equal(fx->conf->workers, 3);
        assert_strv(&fx->conf->tenants, want, 1);
}

static void test_env_keys_append_name_equals_value(void **state) {
        fixture_t *fx                   = *state;
        static const char *const want[] = {"FOO=bar baz", "EMPTY=", "_X1=a=b"};

        assert_int_equal(fx_load(fx,
                                 "[action a]\n"
                                 "run = env\n"
                                 "env.FOO = bar baz\n"
                                 "env.EMPTY =\n"
                                 "env._X1 = a=b\n"),
                         0);
        assert_strv(&pd_config_action(fx->conf, "a")->env, want, 3);
}

/* ---- syntax: comments, quotes, line endings ---- */

static void test_comment_lines_and_blank_lines_are_skipped(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "# a comment\n"
                                 "; another\n"
                                 "\n"
                                 "   \t\n"
                                 "  # indented comment\n"
                                 "[reactor]   # why this section\n"
                                 "workers = 5\n"),
                         0);
        assert_int_equal(fx->conf->workers, 5);
}

static void test_inline_comment_needs_a_blank_before_it(void **state) {
        fixture_t *fx                   = *state;
        static const char *const argv[] = {"echo", "a#b", "c;d"};
        const pd_action_def_t *act;

        assert_int_equal(fx_load(fx,
                                 "[reactor]\n"
                                 "group.id = grp # the group\n"
                                 "state = /x/state.db\t; why\n"
                                 "log_dir = /tmp/a#b\n"
                                 "name = r;1\n"
                                 "[action b]\n"
                                 "run = echo a#b c;d # says hello\n"
                                 "description =#not a comment\n"
                                 "workdir = # a comment: empty value\n"),
                         0);
        assert_string_equal(fx->conf->group_id, "grp");
        assert_string_equal(fx->conf->state_path, "/x/state.db");
        assert_string_equal(fx->conf->log_dir, "/tmp/a#b");
        assert_string_equal(fx->conf->reactor_name, "r;1");
        act = pd_config_action(fx->conf, "b");
        assert_string_equal(act->run, "echo a#b c;d");
        assert_strv(&act->argv, argv, 3);
        assert_string_equal(act->description, "#not a comment");
        assert_null(act->workdir);
}

static void test_run_keeps_comment_characters_inside_shell_quotes(
    void **state) {
        fixture_t *fx                   = *state;
        static const char *const argv[] = {"echo", "x # y", "p ; q", "#z",
                                           "it's"};
        const pd_action_def_t *act;

        assert_int_equal(
            fx_load(fx,
                    "[action a]\n"
                    "run = echo 'x # y' \"p ; q\" \\#z it\\'s # note\n"),
            0);
        act = pd_config_action(fx->conf, "a");
        assert_string_equal(act->run, "echo 'x # y' \"p ; q\" \\#z it\\'s");
        assert_strv(&act->argv, argv, 5);
}

static void test_run_may_start_with_a_quoted_program(void **state) {
        fixture_t *fx                   = *state;
        static const char *const argv[] = {"/opt/my app/tool", "--flag"};
        const pd_action_def_t *act;

        assert_int_equal(fx_load(fx,
                                 "[action a]\n"
                                 "run = \"/opt/my app/tool\" --flag\n"),
                         0);
        act = pd_config_action(fx->conf, "a");
        assert_string_equal(act->run, "\"/opt/my app/tool\" --flag");
        assert_strv(&act->argv, argv, 2);
}

static void test_double_quoted_value_keeps_blanks_and_hash(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "[action a]\n"
                                 "run = x\n"
                                 "description = \"  two # kept ; \"  "
                                 "# dropped\n"
                                 "[kafka]\n"
                                 "sasl.password = \"#secret\"\n"),
                         0);
        assert_string_equal(pd_config_action(fx->conf, "a")->description,
                            "  two # kept ; ");
        assert_string_equal(pd_config_kafka(fx->conf, "sasl.password"),
                            "#secret");
}

static void test_crlf_line_endings_and_utf8_bom_are_accepted(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "\xef\xbb\xbf[reactor]\r\n"
                                 "workers = 7\r\n"
                                 "group.id = g\r\n"),
                         0);
        assert_int_equal(fx->conf->workers, 7);
        assert_string_equal(fx->conf->group_id, "g");
}

static void test_last_line_needs_no_newline(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx, "[reactor]\nworkers = 9"), 0);
        assert_int_equal(fx->conf->workers, 9);
}

static void test_line_of_exactly_4096_bytes_is_accepted(void **state) {
        fixture_t *fx = *state;
        char text[5000];
        int n;

        n = snprintf(text, sizeof(text), "[reactor]\nlog_dir = ");
        /* Pad the second line to exactly 4096 bytes. */
        memset(text + n, 'x', 4096 - strlen("log_dir = "));
        n += 4096 - (int)strlen("log_dir = ");
        snprintf(text + n, sizeof(text) - (size_t)n, "\n");
        assert_int_equal(fx_load(fx, text), 0);
        assert_int_equal(strlen(fx->conf->log_dir), 4096 - 10);
}

/* ---- kafka pass-through ---- */

static void test_kafka_properties_pass_through_in_file_order(void **state) {
        fixture_t *fx                   = *state;
        static const char *const want[] = {"bootstrap.servers",  "b1:9092",
                                           "security.protocol",  "SSL",
                                           "enable.idempotence", "true"};

        assert_int_equal(fx_load(fx,
                                 "[kafka]\n"
                                 "bootstrap.servers = b1:9092\n"
                                 "security.protocol = SSL\n"
                                 "enable.idempotence = true\n"),
                         0);
        assert_strv(&fx->conf->kafka, want, 6);
        assert_string_equal(pd_config_kafka(fx->conf, "security.protocol"),
                            "SSL");
        assert_null(pd_config_kafka(fx->conf, "client.id"));
}

static void test_kafka_duplicate_key_replaces_earlier_value(void **state) {
        fixture_t *fx                   = *state;
        static const char *const want[] = {"bootstrap.servers", "b2:9092",
                                           "client.id", "pd"};

        assert_int_equal(fx_load(fx,
                                 "[kafka]\n"
                                 "bootstrap.servers = b1:9092\n"
                                 "client.id = pd\n"
                                 "bootstrap.servers = b2:9092\n"),
                         0);
        assert_strv(&fx->conf->kafka, want, 4);
}

static void test_kafka_property_librdkafka_refuses_is_an_error_at_its_line(
    void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx,
                        "[kafka]\n"
                        "client.id = pd\n"
                        "bootstrap.server = b1:9092\n",
                        "3: kafka.bootstrap.server: No such configuration "
                        "property: \"bootstrap.server\"");
        assert_int_equal(pd_config_set(fx->conf, "kafka", "linger.ms", "soon",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_non_null(strstr(fx->errstr, "kafka.linger.ms: "));
}

/* ---- overrides ---- */

static void test_set_overrides_a_loaded_value(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx, "[reactor]\nworkers = 2\n"), 0);
        assert_int_equal(pd_config_set(fx->conf, "reactor", "workers", "8",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(fx->conf->workers, 8);
        assert_int_equal(pd_config_set(fx->conf, "topics", "events", "e2",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_string_equal(fx->conf->topic_events, "e2");
}

static void test_set_takes_the_value_literally(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(
            pd_config_set(fx->conf, "reactor", "log_dir", "/a b # c",
                          fx->errstr, sizeof(fx->errstr)),
            0);
        assert_string_equal(fx->conf->log_dir, "/a b # c");
}

static void test_set_error_has_no_file_and_line(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(pd_config_set(fx->conf, "reactor", "workers", "0",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr,
                            "reactor.workers: expected an integer from 1 to "
                            "256");
        assert_int_equal(fx->conf->workers, 4);
        assert_int_equal(pd_config_set(fx->conf, "reactor", "workers", " 5",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_int_equal(pd_config_set(fx->conf, "nope", "x", "1", fx->errstr,
                                       sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr, "unknown section [nope]");
        assert_int_equal(pd_config_set(fx->conf, "topics", "x", "1", fx->errstr,
                                       sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr, "unknown key 'x' in [topics]");
        assert_int_equal(pd_config_set(fx->conf, "action", "run", "x",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr, "unknown section [action]");
}

static void test_set_kafka_accepts_any_property(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(pd_config_set(fx->conf, "kafka", "debug", "all",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "kafka", "debug", "broker",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(fx->conf->kafka.cnt, 2);
        assert_string_equal(pd_config_kafka(fx->conf, "debug"), "broker");
}

static void test_set_reaches_a_loaded_action(void **state) {
        fixture_t *fx = *state;
        const pd_action_def_t *act;
        static const char *const env[]  = {"A=2", "B=1"};
        static const char *const argv[] = {"new", "cmd"};

        assert_int_equal(fx_load(fx,
                                 "[action a]\n"
                                 "run = old\n"
                                 "env.A = 1\n"),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "action a", "timeout", "5m",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "action a", "env.A", "2",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "action a", "env.B", "1",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "action a", "run", "new cmd",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        act = pd_config_action(fx->conf, "a");
        assert_int_equal(act->timeout_ms, 300000);
        assert_strv(&act->env, env, 2);
        assert_strv(&act->argv, argv, 2);

        assert_int_equal(pd_config_set(fx->conf, "action a", "retries", "x",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr,
                            "action 'a': retries: expected an "
                            "integer from 0 to 100");
        assert_int_equal(pd_config_set(fx->conf, "action a", "run", "'x",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr,
                            "action 'a': run: unterminated single quote");
        assert_strv(&act->argv, argv, 2);
        assert_int_equal(pd_config_set(fx->conf, "action zz", "run", "x",
                                       fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr, "unknown action 'zz'");
}

static void test_set_empty_value_unsets_key_without_default(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(pd_config_set(fx->conf, "reactor", "name", "r1",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_string_equal(fx->conf->reactor_name, "r1");
        assert_int_equal(pd_config_set(fx->conf, "reactor", "name", "",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_null(fx->conf->reactor_name);
        /* log_dir's default is "", so "" stays a string. */
        assert_int_equal(pd_config_set(fx->conf, "reactor", "log_dir", "",
                                       fx->errstr, sizeof(fx->errstr)),
                         0);
        assert_string_equal(fx->conf->log_dir, "");
}

static void test_second_file_layers_on_the_first(void **state) {
        fixture_t *fx = *state;
        const char *second;
        char want[512];

        assert_int_equal(fx_load(fx,
                                 "[reactor]\n"
                                 "workers = 2\n"
                                 "group.id = g1\n"
                                 "[action a]\n"
                                 "run = x\n"),
                         0);
        second = fx_write(fx, "second.conf", "[reactor]\nworkers = 3\n");
        assert_int_equal(
            pd_config_load(fx->conf, second, fx->errstr, sizeof(fx->errstr)),
            0);
        assert_int_equal(fx->conf->workers, 3);
        assert_string_equal(fx->conf->group_id, "g1");
        assert_string_equal(fx->conf->path, second);

        second = fx_write(fx, "third.conf", "\n[action a]\nrun = y\n");
        assert_int_equal(
            pd_config_load(fx->conf, second, fx->errstr, sizeof(fx->errstr)),
            -1);
        snprintf(want, sizeof(want),
                 "%s:2: action 'a' already defined at line 4 of an earlier "
                 "file",
                 second);
        assert_string_equal(fx->errstr, want);
}

/* ---- errors, each with file:line ---- */

static void test_missing_file_names_file_and_reason(void **state) {
        fixture_t *fx = *state;
        char path[256], want[512];

        snprintf(path, sizeof(path), "%s/absent.conf", fx->dir);
        assert_int_equal(
            pd_config_load(fx->conf, path, fx->errstr, sizeof(fx->errstr)), -1);
        snprintf(want, sizeof(want), "%s: No such file or directory", path);
        assert_string_equal(fx->errstr, want);
}

static void test_directory_is_not_a_config_file(void **state) {
        fixture_t *fx = *state;
        char want[512];

        assert_int_equal(
            pd_config_load(fx->conf, fx->dir, fx->errstr, sizeof(fx->errstr)),
            -1);
        snprintf(want, sizeof(want), "%s: Is a directory", fx->dir);
        assert_string_equal(fx->errstr, want);
}

static void test_unknown_section_names_file_and_line(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\n[nope]\n", "2: unknown section [nope]");
        fx_expect_error(fx, "[actions]\n", "1: unknown section [actions]");
        fx_expect_error(fx, "[reactor extra]\n",
                        "1: unknown section [reactor extra]");
}

static void test_malformed_section_header_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor\n", "1: expected ']' to close [reactor");
        fx_expect_error(fx, "[reactor] x\n",
                        "1: unexpected text after the section name");
}

static void test_unknown_key_names_file_and_line(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nworkers = 2\nbogus = 1\n",
                        "3: unknown key 'bogus' in [reactor]");
}

static void test_unknown_action_key_names_the_action_section(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\nrunn = y\n",
                        "3: unknown key 'runn' in [action a]");
}

static void test_key_outside_any_section_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "# header\nworkers = 2\n",
                        "2: key 'workers' outside any section");
}

static void test_line_that_is_neither_section_nor_key_is_an_error(
    void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\njust some words\n",
                        "2: expected [section] or key = value");
        fx_expect_error(fx, "[reactor]\n = 3\n", "2: missing key before '='");
}

static void test_bad_int_names_key_and_range(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nworkers = many\n",
                        "2: reactor.workers: expected an integer from 1 to "
                        "256");
        fx_expect_error(fx, "[reactor]\nworkers = 4x\n",
                        "2: reactor.workers: expected an integer from 1 to "
                        "256");
        fx_expect_error(fx, "[reactor]\nworkers =\n",
                        "2: reactor.workers: expected an integer from 1 to "
                        "256");
}

static void test_int_out_of_range_names_key_and_range(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nworkers = 257\n",
                        "2: reactor.workers: expected an integer from 1 to "
                        "256");
        fx_expect_error(fx, "[reactor]\nworkers = 0\n",
                        "2: reactor.workers: expected an integer from 1 to "
                        "256");
        fx_expect_error(fx, "[topics]\npartitions = 10001\n",
                        "2: topics.partitions: expected an integer from 1 to "
                        "10000");
        fx_expect_error(fx, "[topics]\nreplication = 99999999999999999999\n",
                        "2: topics.replication: expected an integer from 1 "
                        "to 100");
        fx_expect_error(fx, "[action a]\nrun = x\nretries = -1\n",
                        "3: action 'a': retries: expected an integer from 0 "
                        "to 100");
}

static void test_bad_bool_lists_accepted_forms(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nstate_sync = maybe\n",
                        "2: reactor.state_sync: expected true/false, yes/no, "
                        "on/off or 1/0");
        fx_expect_error(fx, "[action a]\nrun = x\nauto = sometimes\n",
                        "3: action 'a': auto: expected true/false, yes/no, "
                        "on/off or 1/0");
}

static void test_bad_duration_lists_accepted_forms(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nshutdown_grace = -5s\n",
                        "2: reactor.shutdown_grace: expected a duration such "
                        "as 500ms, 30s, 5m, 1h or 1.5 (seconds)");
        fx_expect_error(fx, "[action a]\nrun = x\ntimeout = 10 minutes\n",
                        "3: action 'a': timeout: expected a duration such as "
                        "500ms, 30s, 5m, 1h or 1.5 (seconds)");
}

/* Bounds keep deadlines and doubled backoffs far from overflow and catch
 * milliseconds written as seconds. */
static void test_duration_over_its_bound_names_key_and_range(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nshutdown_grace = 30000\n",
                        "2: reactor.shutdown_grace: expected a duration from "
                        "0 to 1h");
        fx_expect_error(fx, "[reactor]\nshutdown_grace = 3600001ms\n",
                        "2: reactor.shutdown_grace: expected a duration from "
                        "0 to 1h");
        fx_expect_error(fx, "[action a]\nrun = x\nretry_backoff = 61m\n",
                        "3: action 'a': retry_backoff: expected a duration "
                        "from 0 to 1h");
        fx_expect_error(fx, "[action a]\nrun = x\ntimeout = 169h\n",
                        "3: action 'a': timeout: expected a duration from 0 "
                        "to 168h");
        /* Far past INT64_MAX milliseconds is still the same error. */
        fx_expect_error(fx,
                        "[action a]\nrun = x\ntimeout = "
                        "9999999999999999999h\n",
                        "3: action 'a': timeout: expected a duration such as "
                        "500ms, 30s, 5m, 1h or 1.5 (seconds)");
}

static void test_duration_at_its_bound_is_accepted(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "[reactor]\nshutdown_grace = 1h\n"
                                 "[action a]\nrun = x\n"
                                 "retry_backoff = 60m\ntimeout = 168h\n"),
                         0);
        assert_int_equal(fx->conf->shutdown_grace_ms, 3600000);
        assert_int_equal(fx->conf->actions[0].retry_backoff_ms, 3600000);
        assert_int_equal(fx->conf->actions[0].timeout_ms,
                         7LL * 24 * 3600 * 1000);
}

static void test_set_duration_over_its_bound_keeps_the_old_value(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(pd_config_set(fx->conf, "reactor", "shutdown_grace",
                                       "2h", fx->errstr, sizeof(fx->errstr)),
                         -1);
        assert_string_equal(fx->errstr,
                            "reactor.shutdown_grace: expected a "
                            "duration from 0 to 1h");
        assert_int_equal(fx->conf->shutdown_grace_ms, 30000);
}

/* The wait before retry n is retry_backoff * 2^(n-1), capped at 1h. */
static void test_backoff_doubles_per_retry_up_to_an_hour(void **state) {
        pd_action_def_t def = {0};

        (void)state;
        def.retry_backoff_ms = 1000;
        assert_int_equal(pd_action_backoff_ms(&def, 1), 1000);
        assert_int_equal(pd_action_backoff_ms(&def, 2), 2000);
        assert_int_equal(pd_action_backoff_ms(&def, 3), 4000);
        assert_int_equal(pd_action_backoff_ms(&def, 12), 2048000);
        assert_int_equal(pd_action_backoff_ms(&def, 13), 3600000);
        def.retry_backoff_ms = 0;
        assert_int_equal(pd_action_backoff_ms(&def, 100), 0);
        assert_int_equal(pd_action_backoff_ms(&def, INT32_MAX), 0);
}

static void test_backoff_never_overflows_with_a_hundred_retries(void **state) {
        pd_action_def_t def = {0};

        (void)state;
        def.retry_backoff_ms = PD_RETRY_BACKOFF_MAX_MS; /* the largest */
        def.retries          = 100;
        for (int32_t n = 1; n <= def.retries; n++)
                assert_int_equal(pd_action_backoff_ms(&def, n), 3600000);
        def.retry_backoff_ms = 1;
        for (int32_t n = 1; n <= def.retries; n++) {
                int64_t b = pd_action_backoff_ms(&def, n);
                assert_true(b > 0);
                assert_true(b <= 3600000);
                assert_true(b >= pd_action_backoff_ms(&def, n > 1 ? n - 1 : 1));
        }
        assert_int_equal(pd_action_backoff_ms(&def, 100), 3600000);
        assert_int_equal(pd_action_backoff_ms(&def, INT32_MAX), 3600000);
}

static void test_bad_policy_lists_accepted_forms(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\npolicy = twice\n",
                        "3: action 'a': policy: expected once or always");
}

static void test_bad_log_level_lists_accepted_forms(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\nlog_level = loud\n",
                        "2: reactor.log_level: expected error, warn, info or "
                        "debug");
}

static void test_invalid_tenant_names_are_rejected(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[reactor]\ndefault_tenant = -bad\n",
                        "2: reactor.default_tenant: expected a tenant name "
                        "(letters, digits, '_', '.', '-', at most 63, not "
                        "starting with '.' or '-')");
        fx_expect_error(fx, "[cli]\ntenants = acme, a b\n",
                        "2: cli.tenants: 'a b' is not a valid tenant name "
                        "(letters, digits, '_', '.', '-', at most 63, not "
                        "starting with '.' or '-')");
}

static void test_unterminated_quoted_value_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\ndescription = \"abc\n",
                        "3: action 'a': description: unterminated double "
                        "quote");
        fx_expect_error(fx, "[reactor]\nname = \"abc\" def\n",
                        "2: reactor.name: unexpected text after the closing "
                        "quote");
}

static void test_invalid_action_name_in_header_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action -x]\nrun = y\n",
                        "1: invalid action name '-x' (letters, digits, '_', "
                        "'.', '-', at most 128, not starting with '.' or "
                        "'-')");
        fx_expect_error(fx, "[action a b]\nrun = y\n",
                        "1: invalid action name 'a b' (letters, digits, '_', "
                        "'.', '-', at most 128, not starting with '.' or "
                        "'-')");
        fx_expect_error(fx, "\n[action]\n",
                        "2: [action] needs a name: [action NAME]");
}

static void test_duplicate_action_names_the_first_line(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\n\n[action a]\nrun = y\n",
                        "4: action 'a' already defined at line 1");
}

static void test_duplicate_key_in_action_section_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\nretries = 1\nretries = 2\n",
                        "4: action 'a': retries already set at line 3");
        fx_expect_error(fx, "[action a]\nrun = x\nenv.A = 1\nenv.A = 2\n",
                        "4: action 'a': env.A already set at line 3");
}

static void test_action_without_run_errors_on_its_header_line(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nauto = true\n[action b]\nrun = x\n",
                        "1: action 'a': run is required");
        fx_expect_error(fx, "[action b]\nrun = x\n\n[action a]\nauto = true\n",
                        "4: action 'a': run is required");
}

static void test_run_rejected_by_the_splitter_passes_its_message(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = echo 'oops\n",
                        "2: action 'a': run: unterminated single quote");
        fx_expect_error(fx, "[action a]\nrun = echo \"oops\n",
                        "2: action 'a': run: unterminated double quote");
        fx_expect_error(fx, "[action a]\nrun = echo \\\n",
                        "2: action 'a': run: trailing backslash");
        fx_expect_error(fx, "[action a]\nrun =   # nothing\n",
                        "2: action 'a': run: empty command");
}

static void test_invalid_env_var_name_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\nenv.1BAD = v\n",
                        "3: action 'a': env.1BAD: invalid environment "
                        "variable name '1BAD' (letters, digits and '_', not "
                        "starting with a digit)");
        fx_expect_error(fx, "[action a]\nrun = x\nenv.A-B = v\n",
                        "3: action 'a': env.A-B: invalid environment "
                        "variable name 'A-B' (letters, digits and '_', not "
                        "starting with a digit)");
        fx_expect_error(fx, "[action a]\nrun = x\nenv. = v\n",
                        "3: action 'a': env.: invalid environment variable "
                        "name '' (letters, digits and '_', not starting with "
                        "a digit)");
}

static void test_line_longer_than_4096_bytes_is_an_error(void **state) {
        fixture_t *fx = *state;
        char text[5000];
        int n;

        n = snprintf(text, sizeof(text), "[reactor]\nlog_dir = ");
        memset(text + n, 'x', 4097 - strlen("log_dir = "));
        n += 4097 - (int)strlen("log_dir = ");
        snprintf(text + n, sizeof(text) - (size_t)n, "\n");
        fx_expect_error(fx, text, "2: line longer than 4096 bytes");
}

static void test_nul_byte_in_a_line_is_an_error(void **state) {
        fixture_t *fx = *state;
        char path[256], want[512];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/pd.conf", fx->dir);
        fx_write(fx, "pd.conf", "");
        fp = fopen(path, "w");
        assert_non_null(fp);
        fwrite("[reactor]\nname = a\0b\n", 1, 22, fp);
        fclose(fp);
        assert_int_equal(
            pd_config_load(fx->conf, path, fx->errstr, sizeof(fx->errstr)), -1);
        snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
        assert_string_equal(fx->errstr, want);
}

/* ---- validation of `after` ---- */

static void test_after_naming_unknown_action_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx,
                        "[action b]\nrun = x\n[action a]\nrun = x\n"
                        "after = b, z\n",
                        "3: action 'a': after names unknown action 'z'");
}

static void test_a_bad_parameter_name_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\nparams = ok, since?, Bad\n",
                        "1: action 'a': params: 'Bad' is not a parameter "
                        "name (a-z first, then a-z 0-9 _, at most 64, a '?' "
                        "after an optional one; at most 32)");
}

static void test_after_naming_the_action_itself_is_an_error(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx, "[action a]\nrun = x\nafter = a\n",
                        "1: action 'a': after names the action itself");
}

static void test_dependency_cycle_is_reported_with_its_path(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx,
                        "[action a]\nrun = x\nafter = b\n"
                        "[action b]\nrun = x\nafter = c\n"
                        "[action c]\nrun = x\nafter = a\n",
                        "1: dependency cycle: a -> b -> c -> a");
}

static void test_dependency_cycle_away_from_the_first_action(void **state) {
        fixture_t *fx = *state;

        fx_expect_error(fx,
                        "[action x]\nrun = x\n"
                        "[action a]\nrun = x\nafter = x, b\n"
                        "[action b]\nrun = x\nafter = a\n",
                        "3: dependency cycle: a -> b -> a");
}

static void test_load_leaves_cross_checks_to_validate(void **state) {
        fixture_t *fx = *state;
        const char *path =
            fx_write(fx, "pd.conf", "[action a]\nrun = x\nafter = p.x\n");

        /* A plugin loaded after the file may still register p.x. */
        assert_int_equal(
            pd_config_load(fx->conf, path, fx->errstr, sizeof(fx->errstr)), 0);
        assert_int_equal(
            pd_config_validate(fx->conf, fx->errstr, sizeof(fx->errstr)), -1);
        assert_non_null(pd_config_action_new(fx->conf, "p.x", fx->errstr,
                                             sizeof(fx->errstr)));
        assert_int_equal(
            pd_config_validate(fx->conf, fx->errstr, sizeof(fx->errstr)), 0);
}

static void test_action_new_refuses_a_taken_or_invalid_name(void **state) {
        fixture_t *fx = *state;
        char want[1024];

        assert_int_equal(fx_load(fx, "[action a]\nrun = x\n"), 0);
        assert_null(pd_config_action_new(fx->conf, "a", fx->errstr,
                                         sizeof(fx->errstr)));
        snprintf(want, sizeof(want),
                 "action 'a' is also defined at %s/pd.conf:1", fx->dir);
        assert_string_equal(fx->errstr, want);
        assert_null(pd_config_action_new(fx->conf, "-x", fx->errstr,
                                         sizeof(fx->errstr)));
        assert_string_equal(fx->errstr, "invalid action name '-x'");
}

static void test_plugin_action_errors_name_the_plugin(void **state) {
        fixture_t *fx = *state;
        pd_action_def_t *act;

        assert_int_equal(fx_load(fx, "[action a]\nrun = x\n"), 0);
        act = pd_config_action_new(fx->conf, "p.y", fx->errstr,
                                   sizeof(fx->errstr));
        assert_non_null(act);
        act->plugin = strdup("/x/p.so");
        pd_strv_add(&act->after, "zz");
        assert_int_equal(
            pd_config_validate(fx->conf, fx->errstr, sizeof(fx->errstr)), -1);
        assert_string_equal(fx->errstr,
                            "plugin /x/p.so: action 'p.y': after names "
                            "unknown action 'zz'");
}

static void test_after_forming_a_diamond_is_valid(void **state) {
        fixture_t *fx = *state;

        assert_int_equal(fx_load(fx,
                                 "[action d]\nrun = x\nafter = b, c\n"
                                 "[action b]\nrun = x\nafter = a\n"
                                 "[action c]\nrun = x\nafter = a\n"
                                 "[action a]\nrun = x\n"),
                         0);
        assert_int_equal(
            pd_config_validate(fx->conf, fx->errstr, sizeof(fx->errstr)), 0);
}

/* ---- durations and names ---- */

static void test_duration_parse_accepts_documented_forms(void **state) {
        static const struct {
                const char *s;
                int64_t ms;
        } good[] = {
            {"0", 0},
            {"500ms", 500},
            {"30s", 30000},
            {"5m", 300000},
            {"1h", 3600000},
            {"90d", 7776000000},
            {"1.5d", 129600000},
            {"1.5", 1500},
            {"30", 30000},
            {"1.5s", 1500},
            {"0.25m", 15000},
            {"2.5ms", 2},
            {"0.0001", 0},
            {"0.1234567891234h", 444444},
            {"9223372036854775807ms", INT64_MAX},
        };
        int64_t ms;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ms = -1;
                assert_int_equal(pd_duration_parse(good[i].s, &ms), 0);
                assert_int_equal(ms, good[i].ms);
        }
}

static void test_duration_parse_rejects_everything_else(void **state) {
        static const char *const bad[] = {
            "",
            "-1",
            "-5s",
            "5x",
            "5 s",
            " 5",
            "5s ",
            "1.",
            ".5",
            "s",
            "ms",
            "1e3",
            "+5",
            "5S",
            "1h30m",
            "1..5",
            "0x10",
            "5sec",
            "9223372036854775808ms",   /* one past INT64_MAX */
            "9223372036854775807s",    /* overflows in milliseconds */
            "99999999999999999999999", /* overflows while reading */
        };
        int64_t ms;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(pd_duration_parse(bad[i], &ms), -1);
        assert_int_equal(pd_duration_parse(NULL, &ms), -1);
}

static void test_tenant_name_validation_edges(void **state) {
        char name[80];

        (void)state;
        memset(name, 'a', sizeof(name));
        name[63] = '\0';
        assert_int_equal(pd_tenant_valid(name), 1);
        name[63] = 'a';
        name[64] = '\0';
        assert_int_equal(pd_tenant_valid(name), 0);

        assert_int_equal(pd_tenant_valid("acme"), 1);
        assert_int_equal(pd_tenant_valid("a"), 1);
        assert_int_equal(pd_tenant_valid("0"), 1);
        assert_int_equal(pd_tenant_valid("_x"), 1);
        assert_int_equal(pd_tenant_valid("a.b-c_D9"), 1);
        assert_int_equal(pd_tenant_valid("a-"), 1);
        assert_int_equal(pd_tenant_valid("a."), 1);
        assert_int_equal(pd_tenant_valid(""), 0);
        assert_int_equal(pd_tenant_valid(NULL), 0);
        assert_int_equal(pd_tenant_valid("-a"), 0);
        assert_int_equal(pd_tenant_valid(".a"), 0);
        assert_int_equal(pd_tenant_valid("a b"), 0);
        assert_int_equal(pd_tenant_valid("a/b"), 0);
        assert_int_equal(pd_tenant_valid("a:b"), 0);
        assert_int_equal(pd_tenant_valid("\xc3\xa9"), 0);
}

static void test_action_name_validation_edges(void **state) {
        char name[140];

        (void)state;
        memset(name, 'a', sizeof(name));
        name[128] = '\0';
        assert_int_equal(pd_action_name_valid(name), 1);
        name[128] = 'a';
        name[129] = '\0';
        assert_int_equal(pd_action_name_valid(name), 0);

        assert_int_equal(pd_action_name_valid("core.reindex_search"), 1);
        assert_int_equal(pd_action_name_valid("_private-1"), 1);
        assert_int_equal(pd_action_name_valid(""), 0);
        assert_int_equal(pd_action_name_valid(NULL), 0);
        assert_int_equal(pd_action_name_valid("-x"), 0);
        assert_int_equal(pd_action_name_valid(".x"), 0);
        assert_int_equal(pd_action_name_valid("a b"), 0);
        assert_int_equal(pd_action_name_valid("a/b"), 0);
}

static void test_release_is_a_version_never_an_option(void **state) {
        static const char *const good[] = {"4.2.0",
                                           "1.2.3+build.4",
                                           "v4.2.0-rc.1",
                                           "1.0~beta1",
                                           "2025.11.25_1",
                                           "0",
                                           "a",
                                           "R"};
        static const char *const bad[]  = {
             "--delete", "-rf",  "-",   "+1",    "~1",   ".1",  "_1",      "",
             "1.0 beta", "1;rm", "1/2", "1:2.0", "$(x)", "1\n", "\xc3\xa9"};
        char release[140];

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (!pd_release_valid(good[i]))
                        fail_msg("'%s' refused", good[i]);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (pd_release_valid(bad[i]))
                        fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(pd_release_valid(NULL), 0);

        memset(release, '1', sizeof(release));
        release[128] = '\0';
        assert_int_equal(pd_release_valid(release), 1);
        release[128] = '1';
        release[129] = '\0';
        assert_int_equal(pd_release_valid(release), 0);
}

/* ---- helpers ---- */

static void test_strv_adds_finds_and_clears(void **state) {
        pd_strv_t sv = {0};

        (void)state;
        assert_int_equal(pd_strv_find(&sv, "a"), -1);
        pd_strv_add(&sv, "a");
        pd_strv_add(&sv, "b");
        assert_int_equal(sv.cnt, 2);
        assert_null(sv.v[2]);
        assert_int_equal(pd_strv_find(&sv, "b"), 1);
        assert_int_equal(pd_strv_find(&sv, "c"), -1);
        pd_strv_clear(&sv);
        assert_null(sv.v);
        assert_int_equal(sv.cnt, 0);
        /* Cleared is reusable. */
        pd_strv_add(&sv, "c");
        assert_int_equal(pd_strv_find(&sv, "c"), 0);
        pd_strv_clear(&sv);
}

static void test_policy_names(void **state) {
        (void)state;
        assert_string_equal(pd_policy_name(PD_POLICY_ONCE), "once");
        assert_string_equal(pd_policy_name(PD_POLICY_ALWAYS), "always");
}

static void test_destroy_accepts_null(void **state) {
        (void)state;
        pd_config_destroy(NULL);
}

/* Prints the key table in fmt into a string the caller frees. */
/* Not inlined: GCC 12 at -O2 then takes the strstr() results in the caller
 * for pointers into print_keys' local `buf` (a -Wdangling-pointer false
 * positive; the memory is open_memstream's heap buffer). */
__attribute__((noinline)) static char *print_keys(int fmt) {
        char *buf   = NULL;
        size_t size = 0;
        FILE *fp    = open_memstream(&buf, &size);

        assert_non_null(fp);
        pd_config_print_keys(fp, fmt);
        assert_int_equal(fclose(fp), 0);
        return buf;
}

static void test_markdown_key_table_lists_every_key(void **state) {
        char *md = print_keys('m');

        (void)state;
        assert_non_null(strstr(md,
                               "| Section | Key | Type | Default | "
                               "Description |\n|---|---|---|---|---|\n"));
        assert_non_null(strstr(md,
                               "| `[reactor]` | `workers` | integer "
                               "1..256 | `4` | "));
        assert_non_null(strstr(md,
                               "| `[reactor]` | `log_dir` | string | "
                               "\"\" | "));
        assert_non_null(strstr(md, "| `[reactor]` | `name` | string |  | "));
        assert_non_null(strstr(md,
                               "| `[action NAME]` | `policy` | "
                               "once\\|always | `once` | "));
        assert_non_null(strstr(md, "| `[action NAME]` | `env.NAME` | "));
        assert_non_null(strstr(md, "| `[kafka]` | `PROPERTY` | "));
        assert_non_null(strstr(md,
                               "| `[reactor]` | `state_sync` | bool | "
                               "`false` | "));
        free(md);
}

static void test_text_key_list_groups_keys_by_section(void **state) {
        char *txt = print_keys('t');
        const char *reactor, *workers, *topics;

        (void)state;
        reactor = strstr(txt, "[reactor]\n");
        workers = strstr(txt, "  workers ");
        topics  = strstr(txt, "[topics]\n");
        assert_non_null(reactor);
        assert_non_null(workers);
        assert_non_null(topics);
        assert_true(reactor < workers && workers < topics);
        assert_non_null(strstr(txt, "[action NAME]\n"));
        assert_non_null(strstr(txt, "integer 1..256"));
        assert_non_null(strstr(txt, "\"30s\""));
        free(txt);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
            T(test_new_config_holds_every_default),
            T(test_action_gets_defaults_for_keys_not_written),
            T(test_every_key_is_read_from_a_full_file),
            T(test_load_remembers_the_path),
            T(test_bool_accepts_every_documented_spelling),
            T(test_log_level_takes_the_four_names),
            T(test_tenant_list_is_trimmed_without_empties_or_repeats),
            T(test_later_value_replaces_earlier_outside_actions),
            T(test_env_keys_append_name_equals_value),
            T(test_comment_lines_and_blank_lines_are_skipped),
            T(test_inline_comment_needs_a_blank_before_it),
            T(test_run_keeps_comment_characters_inside_shell_quotes),
            T(test_run_may_start_with_a_quoted_program),
            T(test_double_quoted_value_keeps_blanks_and_hash),
            T(test_crlf_line_endings_and_utf8_bom_are_accepted),
            T(test_last_line_needs_no_newline),
            T(test_line_of_exactly_4096_bytes_is_accepted),
            T(test_kafka_properties_pass_through_in_file_order),
            T(test_kafka_duplicate_key_replaces_earlier_value),
            T(test_kafka_property_librdkafka_refuses_is_an_error_at_its_line),
            T(test_set_overrides_a_loaded_value),
            T(test_set_takes_the_value_literally),
            T(test_set_error_has_no_file_and_line),
            T(test_set_kafka_accepts_any_property),
            T(test_set_reaches_a_loaded_action),
            T(test_set_empty_value_unsets_key_without_default),
            T(test_second_file_layers_on_the_first),
            T(test_missing_file_names_file_and_reason),
            T(test_directory_is_not_a_config_file),
            T(test_unknown_section_names_file_and_line),
            T(test_malformed_section_header_is_an_error),
            T(test_unknown_key_names_file_and_line),
            T(test_unknown_action_key_names_the_action_section),
            T(test_key_outside_any_section_is_an_error),
            T(test_line_that_is_neither_section_nor_key_is_an_error),
            T(test_bad_int_names_key_and_range),
            T(test_int_out_of_range_names_key_and_range),
            T(test_bad_bool_lists_accepted_forms),
            T(test_bad_duration_lists_accepted_forms),
            T(test_duration_over_its_bound_names_key_and_range),
            T(test_duration_at_its_bound_is_accepted),
            T(test_set_duration_over_its_bound_keeps_the_old_value),
            cmocka_unit_test(test_backoff_doubles_per_retry_up_to_an_hour),
            cmocka_unit_test(
                test_backoff_never_overflows_with_a_hundred_retries),
            T(test_bad_policy_lists_accepted_forms),
            T(test_bad_log_level_lists_accepted_forms),
            T(test_invalid_tenant_names_are_rejected),
            T(test_unterminated_quoted_value_is_an_error),
            T(test_invalid_action_name_in_header_is_an_error),
            T(test_duplicate_action_names_the_first_line),
            T(test_duplicate_key_in_action_section_is_an_error),
            T(test_action_without_run_errors_on_its_header_line),
            T(test_run_rejected_by_the_splitter_passes_its_message),
            T(test_invalid_env_var_name_is_an_error),
            T(test_line_longer_than_4096_bytes_is_an_error),
            T(test_nul_byte_in_a_line_is_an_error),
            T(test_after_naming_unknown_action_is_an_error),
            T(test_a_bad_parameter_name_is_an_error),
            T(test_after_naming_the_action_itself_is_an_error),
            T(test_dependency_cycle_is_reported_with_its_path),
            T(test_dependency_cycle_away_from_the_first_action),
            T(test_after_forming_a_diamond_is_valid),
            T(test_load_leaves_cross_checks_to_validate),
            T(test_action_new_refuses_a_taken_or_invalid_name),
            T(test_plugin_action_errors_name_the_plugin),
            cmocka_unit_test(test_duration_parse_accepts_documented_forms),
            cmocka_unit_test_setup_teardown(
                test_umask_is_octal_and_at_most_0777, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(
                test_keep_runs_is_days_or_0_never_under_an_hour, fx_setup,
                fx_teardown),
            cmocka_unit_test(test_duration_parse_rejects_everything_else),
            cmocka_unit_test(test_tenant_name_validation_edges),
            cmocka_unit_test(test_action_name_validation_edges),
            cmocka_unit_test(test_release_is_a_version_never_an_option),
            cmocka_unit_test(test_strv_adds_finds_and_clears),
            cmocka_unit_test(test_policy_names),
            cmocka_unit_test(test_destroy_accepts_null),
            cmocka_unit_test(test_markdown_key_table_lists_every_key),
            cmocka_unit_test(test_text_key_list_groups_keys_by_section),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
