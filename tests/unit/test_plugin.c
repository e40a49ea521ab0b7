/*
 * test_plugin.c - C plugins: loading, every reason to refuse a plugin, and
 * running in-process actions (outcomes, output capture, timeouts and
 * cancellation, threads).
 *
 * The plugins loaded here are real shared objects built by CMake from
 * tests/unit/plugins/NAME.c into PD_TEST_PLUGIN_DIR/NAME.so, each one right
 * or wrong in one way; the example plugin is PD_EXAMPLE_PLUGIN. Whether a
 * plugin is still mapped after a failed load or an unload is asked of the
 * dynamic loader itself (dlopen with RTLD_NOLOAD).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include "consumer/plugin.h"

#ifndef PD_TEST_PLUGIN_DIR
#error "PD_TEST_PLUGIN_DIR is set by tests/CMakeLists.txt"
#endif

typedef struct fx_s {
        char dir[PATH_MAX]; /* the test's own temporary folder */
        char path[4][PATH_MAX];
        pd_plugins_t *pl;
} fx_t;

static int setup(void **state) {
        fx_t *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        pd_test_tmpdir(fx->dir, sizeof(fx->dir), "test_plugin", 0);
        *state = fx;
        return 0;
}


static int teardown(void **state) {
        fx_t *fx = *state;

        pd_plugins_unload(fx->pl);
        pd_test_rmtree(fx->dir);
        free(fx);
        return 0;
}

/* The path of fixture plugin `name`, kept in fx->path[slot]. */
static const char *fixture(fx_t *fx, int slot, const char *name) {
        snprintf(fx->path[slot], sizeof(fx->path[slot]), "%s/%s.so",
                 PD_TEST_PLUGIN_DIR, name);
        return fx->path[slot];
}

/* Whether the library at path is mapped in this process. */
static int is_loaded(const char *path) {
        void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);

        if (h)
                dlclose(h);
        return h != NULL;
}

/* Loads fixture plugins by name (NULL-terminated) into fx->pl. */
static pd_plugins_t *load(fx_t *fx, char *errstr, size_t errstr_size, ...) {
        const char *paths[4];
        size_t cnt = 0;
        const char *name;
        va_list ap;

        va_start(ap, errstr_size);
        while ((name = va_arg(ap, const char *)) != NULL) {
                assert_true(cnt < 4);
                paths[cnt] = fixture(fx, (int)cnt, name);
                cnt++;
        }
        va_end(ap);
        errstr[0] = '\0';
        fx->pl    = pd_plugins_load(paths, cnt, NULL, errstr, errstr_size);
        return fx->pl;
}

/* Loads fixtures that must be refused, and checks the error and that
 * nothing stays loaded. */
static void assert_refused(fx_t *fx, const char *expected, ...) {
        const char *paths[4];
        size_t cnt = 0;
        const char *name;
        char errstr[2048] = "";
        va_list ap;

        va_start(ap, expected);
        while ((name = va_arg(ap, const char *)) != NULL) {
                assert_true(cnt < 4);
                paths[cnt] = fixture(fx, (int)cnt, name);
                cnt++;
        }
        va_end(ap);
        assert_null(pd_plugins_load(paths, cnt, NULL, errstr, sizeof(errstr)));
        assert_string_equal(errstr, expected);
        for (size_t i = 0; i < cnt; i++)
                if (is_loaded(paths[i]))
                        fail_msg("%s is still loaded", paths[i]);
}

/* Loads good.so into fx->pl. */
static void load_good(fx_t *fx) {
        char errstr[512];

        if (!load(fx, errstr, sizeof(errstr), "good", NULL))
                fail_msg("%s", errstr);
}

/* Runs the action called name from fx->pl. */
static int run(fx_t *fx, const char *name, const pd_plugin_call_t *call,
               pd_runner_result_t *res) {
        const pd_plugin_action_t *act = pd_plugins_find(fx->pl, name);

        if (!act)
                fail_msg("no action %s", name);
        return pd_plugins_run(act, call, res);
}

static pd_plugin_call_t basic_call(void) {
        pd_plugin_call_t call = {0};

        call.tenant      = "acme";
        call.release     = "4.2.0";
        call.event_id    = "ev-1";
        call.environment = "staging";
        call.attempt     = 1;
        return call;
}

static char *read_file(const char *path, size_t *lenp) {
        FILE *fp  = fopen(path, "rb");
        char *buf = NULL;
        long size;

        if (!fp)
                fail_msg("%s: %s", path, strerror(errno));
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        size = ftell(fp);
        assert_true(size >= 0);
        rewind(fp);
        buf = malloc((size_t)size + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
        buf[size] = '\0';
        fclose(fp);
        *lenp = (size_t)size;
        return buf;
}

static void assert_mode(const char *path, mode_t mode) {
        struct stat sb;

        if (stat(path, &sb))
                fail_msg("stat(%s): %s", path, strerror(errno));
        if ((sb.st_mode & 07777) != mode)
                fail_msg("%s: mode %04o, expected %04o", path,
                         (unsigned)(sb.st_mode & 07777), (unsigned)mode);
}

static int ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && !strcmp(s + n - m, suffix);
}

/* ---- loading ---- */

static void test_load_keeps_every_action_in_registration_order(void **state) {
        fx_t *fx = *state;
        const pd_plugin_action_t *act;
        pd_policy_t policy = PD_POLICY_ALWAYS;
        const char *path   = NULL;
        char errstr[512];

        assert_non_null(
            load(fx, errstr, sizeof(errstr), "good", "other", NULL));
        assert_int_equal(pd_plugins_count(fx->pl), 14);

        act = pd_plugins_action(fx->pl, 0, &policy, &path);
        assert_string_equal(act->name, "good.hello");
        assert_int_equal(act->is_auto, 1);
        assert_int_equal(policy, PD_POLICY_ONCE);
        assert_string_equal(act->policy, "once");
        assert_string_equal(act->description, "Says hello");
        assert_non_null(act->after);
        assert_null(act->after[0]);
        assert_string_equal(path, fx->path[0]);

        act = pd_plugins_action(fx->pl, 1, NULL, NULL);
        assert_string_equal(act->name, "good.fail");
        assert_int_equal(act->is_auto, 0);

        act = pd_plugins_action(fx->pl, 13, &policy, &path);
        assert_string_equal(act->name, "other.task");
        assert_int_equal(act->is_auto, 1);
        assert_int_equal(policy, PD_POLICY_ONCE);
        assert_string_equal(act->description, "Runs after good's");
        assert_string_equal(act->after[0], "good.hello");
        assert_string_equal(act->after[1], "good.stack");
        assert_null(act->after[2]);
        assert_string_equal(path, fx->path[1]);
}

static void test_description_left_out_reads_empty(void **state) {
        fx_t *fx = *state;

        load_good(fx);
        assert_string_equal(
            pd_plugins_find(fx->pl, "good.fail_silently")->description, "");
}

static void test_registered_strings_are_copied(void **state) {
        fx_t *fx = *state;
        const pd_plugin_action_t *act;
        pd_policy_t policy = PD_POLICY_ONCE;

        /* good.so wrote over its buffers right after registering. */
        load_good(fx);
        act = pd_plugins_action(fx->pl, pd_plugins_count(fx->pl) - 1, &policy,
                                NULL);
        assert_string_equal(act->name, "good.stack");
        assert_string_equal(act->description, "registered from the stack");
        assert_string_equal(act->policy, "always");
        assert_int_equal(policy, PD_POLICY_ALWAYS);
        assert_int_equal(act->is_auto, 1);
        assert_string_equal(act->after[0], "good.hello");
        assert_null(act->after[1]);
}

static void test_find_returns_the_named_action_or_null(void **state) {
        fx_t *fx = *state;

        load_good(fx);
        assert_ptr_equal(pd_plugins_find(fx->pl, "good.hello"),
                         pd_plugins_action(fx->pl, 0, NULL, NULL));
        assert_null(pd_plugins_find(fx->pl, "good.nope"));
        assert_null(pd_plugins_find(fx->pl, "good"));
}

static void test_no_paths_is_an_empty_set(void **state) {
        fx_t *fx = *state;
        char errstr[512];

        fx->pl = pd_plugins_load(NULL, 0, NULL, errstr, sizeof(errstr));
        assert_non_null(fx->pl);
        assert_int_equal(pd_plugins_count(fx->pl), 0);
        assert_null(pd_plugins_find(fx->pl, "good.hello"));
}

static void test_plugin_registering_nothing_loads(void **state) {
        fx_t *fx = *state;
        char errstr[512];

        assert_non_null(load(fx, errstr, sizeof(errstr), "empty", NULL));
        assert_int_equal(pd_plugins_count(fx->pl), 0);
}

static void test_unload_closes_every_plugin(void **state) {
        fx_t *fx = *state;
        char errstr[512];

        assert_non_null(
            load(fx, errstr, sizeof(errstr), "good", "other", NULL));
        assert_true(is_loaded(fx->path[0]));
        assert_true(is_loaded(fx->path[1]));
        pd_plugins_unload(fx->pl);
        fx->pl = NULL;
        assert_false(is_loaded(fx->path[0]));
        assert_false(is_loaded(fx->path[1]));
        pd_plugins_unload(NULL);
}

static void test_example_plugin_loads_and_runs(void **state) {
        fx_t *fx              = *state;
        const char *paths[]   = {PD_EXAMPLE_PLUGIN};
        pd_plugin_call_t call = basic_call();
        const pd_plugin_action_t *act;
        pd_runner_result_t res;
        pd_policy_t policy;
        char errstr[512];

        fx->pl = pd_plugins_load(paths, 1, NULL, errstr, sizeof(errstr));
        if (!fx->pl)
                fail_msg("%s", errstr);
        assert_int_equal(pd_plugins_count(fx->pl), 2);

        act = pd_plugins_find(fx->pl, "example.count_orders");
        assert_non_null(act);
        assert_true(act->is_auto);
        assert_int_equal(pd_plugins_run(act, &call, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_true(ends_with(res.tail, "all 5 batches done\n"));

        act = pd_plugins_action(fx->pl, 1, &policy, NULL);
        assert_string_equal(act->name, "example.close_books");
        assert_false(act->is_auto);
        assert_int_equal(policy, PD_POLICY_ALWAYS);
        assert_string_equal(act->after[0], "example.count_orders");
        assert_int_equal(pd_plugins_run(act, &call, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_string_equal(res.error,
                            "ledger of tenant 'acme' is locked by "
                            "another job; retry later");
}

/* ---- refusing a plugin ---- */

static void test_missing_file_cannot_load(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s/nope.so: cannot load: %s/nope.so: cannot open "
                 "shared object file: No such file or directory",
                 PD_TEST_PLUGIN_DIR, PD_TEST_PLUGIN_DIR);
        assert_refused(fx, expected, "nope", NULL);
}

static void test_unresolved_symbol_cannot_load(void **state) {
        fx_t *fx          = *state;
        char errstr[1024] = "";
        const char *paths[1];

        /* RTLD_NOW: refused at start-up, not when the action first runs. */
        paths[0] = fixture(fx, 0, "undefined");
        assert_null(pd_plugins_load(paths, 1, NULL, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, ": cannot load: "));
        assert_non_null(strstr(errstr,
                               "undefined symbol: "
                               "pd_reactor_internal_function"));
        assert_false(is_loaded(paths[0]));
}

static void test_name_without_slash_is_refused(void **state) {
        char errstr[512]    = "";
        const char *paths[] = {"libc.so.6"};

        (void)state;
        assert_null(pd_plugins_load(paths, 1, NULL, errstr, sizeof(errstr)));
        assert_string_equal(errstr,
                            "plugin libc.so.6: not a path (write "
                            "./libc.so.6 for a file in the current "
                            "folder)");
}

static void test_library_without_init_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: no postdeploy_plugin_init",
                 fixture(fx, 0, "no_init"));
        assert_refused(fx, expected, "no_init", NULL);
}

static void test_init_without_abi_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: no postdeploy_plugin_abi (define the init "
                 "function with PD_PLUGIN_INIT)",
                 fixture(fx, 0, "no_abi"));
        assert_refused(fx, expected, "no_abi", NULL);
}

static void test_other_abi_is_refused_before_init_runs(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: ABI 4 not supported (this reactor has 3)",
                 fixture(fx, 0, "bad_abi"));
        assert_refused(fx, expected, "bad_abi", NULL);
}

static void test_failing_init_is_refused_with_its_status(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: init failed (returned 3)",
                 fixture(fx, 0, "init_fails"));
        assert_refused(fx, expected, "init_fails", NULL);
}

static void test_name_registered_twice_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        /* The plugin ignored the refusal, went on and returned 0: the
         * first refusal is the error, and the plugin is refused. */
        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'dup.same' registered twice",
                 fixture(fx, 0, "duplicate"));
        assert_refused(fx, expected, "duplicate", NULL);
}

static void test_name_of_another_plugin_is_refused_naming_it(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'good.hello' registered twice (also by "
                 "%s)",
                 fixture(fx, 1, "clash"), fixture(fx, 0, "good"));
        /* good.so loaded fine, and is unloaded with the rest. */
        assert_refused(fx, expected, "good", "clash", NULL);
}

static void test_invalid_name_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action name 'x y' is invalid",
                 fixture(fx, 0, "bad_name"));
        assert_refused(fx, expected, "bad_name", NULL);
}

static void test_invalid_policy_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'bad_policy.noop': policy 'sometimes' is "
                 "invalid (expected once or always)",
                 fixture(fx, 0, "bad_policy"));
        assert_refused(fx, expected, "bad_policy", NULL);
}

static void test_action_without_function_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'no_fn.nothing' has no function",
                 fixture(fx, 0, "no_fn"));
        assert_refused(fx, expected, "no_fn", NULL);
}

static void test_invalid_after_name_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'bad_after.noop': after 'no way' is not "
                 "a valid action name",
                 fixture(fx, 0, "bad_after"));
        assert_refused(fx, expected, "bad_after", NULL);
}

static void test_action_after_itself_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: action 'after_self.noop' cannot run after itself",
                 fixture(fx, 0, "after_self"));
        assert_refused(fx, expected, "after_self", NULL);
}

static void test_same_plugin_listed_twice_is_refused(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected), "plugin %s: already loaded as %s",
                 fixture(fx, 1, "good"), fixture(fx, 0, "good"));
        assert_refused(fx, expected, "good", "good", NULL);
}

static void test_good_plugins_before_a_bad_one_are_unloaded(void **state) {
        fx_t *fx = *state;
        char expected[3 * PATH_MAX];

        snprintf(expected, sizeof(expected),
                 "plugin %s: init failed (returned 3)",
                 fixture(fx, 2, "init_fails"));
        assert_refused(fx, expected, "good", "other", "init_fails", NULL);
}

/* ---- reloading ---- */

/* Copies the file at from to to, through a new file renamed over it (as
 * `install` and most build tools replace a library). */
static void replace_file(const char *from, const char *to) {
        char tmp[PATH_MAX + 8], buf[65536];
        FILE *in, *out;
        size_t n;

        snprintf(tmp, sizeof(tmp), "%s.new", to);
        assert_non_null(in = fopen(from, "rb"));
        assert_non_null(out = fopen(tmp, "wb"));
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                assert_int_equal(fwrite(buf, 1, n, out), n);
        assert_int_equal(fclose(in), 0);
        assert_int_equal(fclose(out), 0);
        assert_int_equal(rename(tmp, to), 0);
}

/* Loads path as a reload would, with running in use; returns the set and
 * what was logged meanwhile in logged. */
static pd_plugins_t *reload(const char *path, const pd_plugins_t *running,
                            char *logged, size_t size) {
        char errstr[512];
        pd_plugins_t *pl;
        FILE *log = tmpfile();
        int saved;
        size_t n;

        assert_non_null(log);
        fflush(stderr);
        assert_true((saved = dup(2)) >= 0);
        assert_true(dup2(fileno(log), 2) >= 0);
        pl = pd_plugins_load(&path, 1, running, errstr, sizeof(errstr));
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(log);
        n         = fread(logged, 1, size - 1, log);
        logged[n] = '\0';
        fclose(log);
        if (!pl)
                fail_msg("%s", errstr);
        return pl;
}

static void test_reload_of_a_changed_plugin_keeps_its_code_and_says_so(
    void **state) {
        fx_t *fx = *state;
        char path[PATH_MAX + 16], logged[4096], want[PATH_MAX + 64];
        pd_plugins_t *next;

        snprintf(path, sizeof(path), "%s/plugin.so", fx->dir);
        replace_file(fixture(fx, 0, "good"), path);
        fx->pl = reload(path, NULL, logged, sizeof(logged));
        snprintf(want, sizeof(want), "plugin %s: the file changed", path);

        /* The same file again: nothing to say. */
        next = reload(path, fx->pl, logged, sizeof(logged));
        assert_null(strstr(logged, want));
        pd_plugins_unload(next);

        /* Another plugin's code in its place: dlopen still hands back the
         * library loaded from the old file, so the operator is told. */
        replace_file(fixture(fx, 1, "other"), path);
        next = reload(path, fx->pl, logged, sizeof(logged));
        if (!strstr(logged, want))
                fail_msg("no warning; logged: '%s'", logged);
        assert_non_null(strstr(logged, "restart the reactor"));
        assert_non_null(pd_plugins_find(next, "good.hello"));
        assert_null(pd_plugins_find(next, "other.task"));

        /* The loaded code's file stays the reference: a reload after that
         * one still says it. */
        {
                pd_plugins_t *again =
                    reload(path, next, logged, sizeof(logged));
                assert_non_null(strstr(logged, want));
                pd_plugins_unload(again);
        }
        pd_plugins_unload(next);
}

/* ---- running ---- */

static void test_success_is_succeeded_without_exit_code(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        load_good(fx);
        assert_int_equal(run(fx, "good.hello", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.error, "");
        assert_false(res.has_exit_code);
        assert_int_equal(res.exit_code, 0);
        assert_int_equal(res.term_signal, 0);
        assert_true(res.duration_ms >= 0);
}

static void test_context_carries_the_call(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.attempt = 3;
        load_good(fx);
        assert_int_equal(run(fx, "good.hello", &call, &res), 0);
        assert_string_equal(res.tail,
                            "action=good.hello\n"
                            "tenant=acme\n"
                            "release=4.2.0\n"
                            "environment=staging\n"
                            "event_id=ev-1\n"
                            "attempt=3\n"
                            "abi=3\n"
                            "cancelled=0\n");
        assert_int_equal(res.tail_len, strlen(res.tail));
        assert_int_equal(res.output_bytes, res.tail_len);
}

static void test_a_plugin_reads_the_deploys_parameters(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_strv_t params      = {0};
        pd_runner_result_t res;

        pd_strv_add(&params, "batch_size");
        pd_strv_add(&params, "500");
        load_good(fx);
        assert_int_equal(run(fx, "good.params", &call, &res), 0);
        assert_string_equal(res.tail, "batch_size=-\nsince=-\n");
        call.params = &params;
        assert_int_equal(run(fx, "good.params", &call, &res), 0);
        assert_string_equal(res.tail, "batch_size=500\nsince=-\n");
        pd_strv_clear(&params);
}

static void test_a_plugin_built_for_abi_1_still_loads_and_runs(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        char errstr[512];
        pd_runner_result_t res;

        if (!load(fx, errstr, sizeof(errstr), "abi1", NULL))
                fail_msg("%s", errstr);
        assert_int_equal(run(fx, "abi1.hello", &call, &res), 0);
        assert_string_equal(res.tail, "abi1 says hello to acme\n");
}

static void test_a_plugin_built_for_abi_2_still_loads_and_runs(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_strv_t params      = {0};
        char errstr[512];
        pd_runner_result_t res;

        pd_strv_add(&params, "batch_size");
        pd_strv_add(&params, "500");
        call.params = &params;
        if (!load(fx, errstr, sizeof(errstr), "abi2", NULL))
                fail_msg("%s", errstr);
        assert_int_equal(run(fx, "abi2.hello", &call, &res), 0);
        assert_string_equal(res.tail,
                            "abi2 says hello to acme, batch_size=500\n");
        pd_strv_clear(&params);
}

/* What ctx->progress handed on: every value, in order. */
typedef struct seen_s {
        int64_t v[16];
        int cnt;
} seen_t;

static void seen_progress(void *opaque, int64_t done, int64_t total) {
        seen_t *seen = opaque;

        assert_true(seen->cnt + 2 <= 16);
        seen->v[seen->cnt++] = done;
        seen->v[seen->cnt++] = total;
}

static void test_a_plugins_progress_reaches_the_caller_and_nonsense_does_not(
    void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        seen_t seen           = {{0}, 0};
        pd_runner_result_t res;

        call.progress        = seen_progress;
        call.progress_opaque = &seen;
        load_good(fx);
        assert_int_equal(run(fx, "good.progress", &call, &res), 0);
        /* 1/4 and 4/4; -1/4, 5/4 and 2/-1 were dropped. */
        assert_int_equal(seen.cnt, 4);
        assert_int_equal(seen.v[0], 1);
        assert_int_equal(seen.v[1], 4);
        assert_int_equal(seen.v[2], 4);
        assert_int_equal(seen.v[3], 4);
        /* Without a taker, a call does nothing. */
        call.progress = NULL;
        assert_int_equal(run(fx, "good.progress", &call, &res), 0);
}

static void test_environment_left_out_reads_empty(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.environment = NULL;
        load_good(fx);
        assert_int_equal(run(fx, "good.hello", &call, &res), 0);
        assert_non_null(strstr(res.tail, "\nenvironment=\n"));
}

static void test_opaque_is_handed_back(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        load_good(fx);
        assert_int_equal(run(fx, "good.opaque", &call, &res), 0);
        assert_string_equal(res.tail, "opaque=handed back\n");
}

static void test_failure_carries_the_message(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        load_good(fx);
        assert_int_equal(run(fx, "good.fail", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_string_equal(res.error, "the ledger of acme is locked");
        assert_false(res.has_exit_code);
        assert_string_equal(res.tail, "about to fail\n");
}

static void test_failure_without_message_names_the_status(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        load_good(fx);
        assert_int_equal(run(fx, "good.fail_silently", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_string_equal(res.error, "failed with status 3");
}

static void test_message_filling_the_buffer_is_cut(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        load_good(fx);
        assert_int_equal(run(fx, "good.fail_overlong", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_int_equal(strlen(res.error), sizeof(res.error) - 1);
        assert_int_equal(strspn(res.error, "e"), sizeof(res.error) - 1);
}

static void test_log_goes_to_tail_and_whole_to_log_file(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;
        char path[PATH_MAX + 64], dir[PATH_MAX + 16];
        char *text, *expected;
        size_t len, exp_len = 0;

        /* The folders do not exist yet: they are made 0700, the file
         * 0600. */
        snprintf(dir, sizeof(dir), "%s/logs/acme", fx->dir);
        snprintf(path, sizeof(path), "%s/run-1.log", dir);
        call.log_path = path;
        load_good(fx);
        assert_int_equal(run(fx, "good.many_lines", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);

        expected = malloc(1000 * 10);
        assert_non_null(expected);
        for (int i = 1; i <= 1000; i++)
                exp_len += (size_t)sprintf(expected + exp_len, "line %d\n", i);
        text = read_file(path, &len);
        assert_int_equal(len, exp_len);
        assert_memory_equal(text, expected, len);
        assert_mode(path, 0600);
        assert_mode(dir, 0700);

        /* Only the last bytes travel with the result. */
        assert_int_equal(res.output_bytes, exp_len);
        assert_int_equal(res.tail_len, PD_OUTPUT_TAIL_MAX);
        assert_memory_equal(res.tail, expected + exp_len - PD_OUTPUT_TAIL_MAX,
                            PD_OUTPUT_TAIL_MAX);
        assert_true(ends_with(res.tail, "\nline 1000\n"));
        free(text);
        free(expected);
}

static void test_log_file_is_appended_to(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;
        char path[PATH_MAX + 16];
        char *text;
        size_t len;

        snprintf(path, sizeof(path), "%s/run.log", fx->dir);
        call.log_path = path;
        load_good(fx);
        assert_int_equal(run(fx, "good.opaque", &call, &res), 0);
        assert_int_equal(run(fx, "good.opaque", &call, &res), 0);
        text = read_file(path, &len);
        assert_string_equal(text, "opaque=handed back\nopaque=handed back\n");
        free(text);
}

static void test_long_line_is_logged_whole(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;
        char path[PATH_MAX + 16];
        char *text;
        size_t len;

        snprintf(path, sizeof(path), "%s/long.log", fx->dir);
        call.log_path = path;
        load_good(fx);
        assert_int_equal(run(fx, "good.long_line", &call, &res), 0);
        text = read_file(path, &len);
        assert_int_equal(len, 10000 + strlen("|end\n"));
        assert_int_equal(strspn(text, "x"), 10000);
        assert_string_equal(text + 10000, "|end\n");
        assert_true(ends_with(res.tail, "xxx|end\n"));
        free(text);
}

static void test_log_from_the_actions_own_threads(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;
        char path[PATH_MAX + 16];
        const size_t line_len = strlen("from a thread: 000\n");
        char *text;
        size_t len;

        snprintf(path, sizeof(path), "%s/threads.log", fx->dir);
        call.log_path = path;
        load_good(fx);
        assert_int_equal(run(fx, "good.threads", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_int_equal(res.output_bytes, 400 * line_len);
        /* Every line arrived whole, none cut into another. */
        text = read_file(path, &len);
        assert_int_equal(len, 400 * line_len);
        for (size_t off = 0; off < len; off += line_len) {
                assert_memory_equal(text + off, "from a thread: ", 15);
                assert_int_equal(text[off + line_len - 1], '\n');
        }
        free(text);
}

static void test_unopenable_log_file_is_an_error(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.log_path = "/dev/null/run.log";
        load_good(fx);
        assert_int_equal(run(fx, "good.hello", &call, &res), -1);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_string_equal(res.error,
                            "cannot open log file "
                            "'/dev/null/run.log': Not a directory");
}

static void test_timeout_is_seen_through_cancelled(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.timeout_ms = 200;
        load_good(fx);
        assert_int_equal(run(fx, "good.wait_cancel", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_string_equal(res.error, "timed out after 200ms");
        assert_true(res.duration_ms >= 200);
        assert_true(res.duration_ms < 5000);
        assert_non_null(strstr(res.tail, "told to stop after about"));
}

static void test_timeout_in_whole_seconds_reads_in_seconds(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.timeout_ms = 1000;
        load_good(fx);
        assert_int_equal(run(fx, "good.wait_cancel", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_string_equal(res.error, "timed out after 1s");
}

static void test_success_after_the_timeout_is_succeeded(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.timeout_ms = 100;
        load_good(fx);
        assert_int_equal(run(fx, "good.finish_anyway", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.error, "");
        assert_true(res.duration_ms >= 100);
        assert_string_equal(res.tail, "finished anyway\n");
}

static void test_failure_before_the_timeout_is_failed(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        pd_runner_result_t res;

        call.timeout_ms = 60000;
        load_good(fx);
        assert_int_equal(run(fx, "good.fail", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_string_equal(res.error, "the ledger of acme is locked");
}

typedef struct canceller_s {
        volatile int *cancel;
        long after_ms;
} canceller_t;

static void *cancel_later(void *arg) {
        canceller_t *c     = arg;
        struct timespec ts = {0, c->after_ms * 1000000};

        nanosleep(&ts, NULL);
        *c->cancel = 1;
        return NULL;
}

static void test_cancel_flag_is_interrupted(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        volatile int cancel   = 0;
        canceller_t c         = {&cancel, 100};
        pd_runner_result_t res;
        pthread_t th;

        /* Set while the action runs, as the reactor does on shutdown. */
        call.cancel     = &cancel;
        call.timeout_ms = 60000;
        load_good(fx);
        assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
        assert_int_equal(run(fx, "good.wait_cancel", &call, &res), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(res.status, PD_ST_INTERRUPTED);
        assert_string_equal(res.error, "interrupted: reactor shutting down");
        assert_true(res.duration_ms >= 100);
}

static void test_cancelled_before_start_is_seen_at_once(void **state) {
        fx_t *fx              = *state;
        pd_plugin_call_t call = basic_call();
        volatile int cancel   = 1;
        pd_runner_result_t res;

        call.cancel = &cancel;
        load_good(fx);
        assert_int_equal(run(fx, "good.wait_cancel", &call, &res), 0);
        assert_int_equal(res.status, PD_ST_INTERRUPTED);
        assert_string_equal(res.tail, "told to stop after about 0 ms\n");
}

typedef struct runner_arg_s {
        const pd_plugin_action_t *act;
        char tenant[32];
        pd_runner_result_t res;
        int ret;
} runner_arg_t;

static void *run_in_thread(void *arg) {
        runner_arg_t *ra      = arg;
        pd_plugin_call_t call = basic_call();

        call.tenant = ra->tenant;
        ra->ret     = pd_plugins_run(ra->act, &call, &ra->res);
        return NULL;
}

static void test_runs_on_several_threads_at_once(void **state) {
        fx_t *fx = *state;
        runner_arg_t ra[8];
        pthread_t th[8];
        char line[64];

        load_good(fx);
        for (int i = 0; i < 8; i++) {
                ra[i].act = pd_plugins_find(fx->pl, "good.hello");
                snprintf(ra[i].tenant, sizeof(ra[i].tenant), "tenant%d", i);
                assert_int_equal(
                    pthread_create(&th[i], NULL, run_in_thread, &ra[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                assert_int_equal(pthread_join(th[i], NULL), 0);
                assert_int_equal(ra[i].ret, 0);
                assert_int_equal(ra[i].res.status, PD_ST_SUCCEEDED);
                /* Each run captured its own output, nobody else's. */
                snprintf(line, sizeof(line), "\ntenant=tenant%d\n", i);
                assert_non_null(strstr(ra[i].res.tail, line));
                assert_int_equal(ra[i].res.output_bytes, ra[i].res.tail_len);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
            T(test_load_keeps_every_action_in_registration_order),
            T(test_description_left_out_reads_empty),
            T(test_registered_strings_are_copied),
            T(test_find_returns_the_named_action_or_null),
            T(test_no_paths_is_an_empty_set),
            T(test_plugin_registering_nothing_loads),
            T(test_unload_closes_every_plugin),
            T(test_example_plugin_loads_and_runs),
            T(test_missing_file_cannot_load),
            T(test_unresolved_symbol_cannot_load),
            T(test_name_without_slash_is_refused),
            T(test_library_without_init_is_refused),
            T(test_init_without_abi_is_refused),
            T(test_other_abi_is_refused_before_init_runs),
            T(test_a_plugin_reads_the_deploys_parameters),
            T(test_a_plugin_built_for_abi_1_still_loads_and_runs),
            T(test_a_plugin_built_for_abi_2_still_loads_and_runs),
            T(test_a_plugins_progress_reaches_the_caller_and_nonsense_does_not),
            T(test_failing_init_is_refused_with_its_status),
            T(test_name_registered_twice_is_refused),
            T(test_name_of_another_plugin_is_refused_naming_it),
            T(test_invalid_name_is_refused),
            T(test_invalid_policy_is_refused),
            T(test_action_without_function_is_refused),
            T(test_invalid_after_name_is_refused),
            T(test_action_after_itself_is_refused),
            T(test_same_plugin_listed_twice_is_refused),
            T(test_good_plugins_before_a_bad_one_are_unloaded),
            T(test_reload_of_a_changed_plugin_keeps_its_code_and_says_so),
            T(test_success_is_succeeded_without_exit_code),
            T(test_context_carries_the_call),
            T(test_environment_left_out_reads_empty),
            T(test_opaque_is_handed_back),
            T(test_failure_carries_the_message),
            T(test_failure_without_message_names_the_status),
            T(test_message_filling_the_buffer_is_cut),
            T(test_log_goes_to_tail_and_whole_to_log_file),
            T(test_log_file_is_appended_to),
            T(test_long_line_is_logged_whole),
            T(test_log_from_the_actions_own_threads),
            T(test_unopenable_log_file_is_an_error),
            T(test_timeout_is_seen_through_cancelled),
            T(test_timeout_in_whole_seconds_reads_in_seconds),
            T(test_success_after_the_timeout_is_succeeded),
            T(test_failure_before_the_timeout_is_failed),
            T(test_cancel_flag_is_interrupted),
            T(test_cancelled_before_start_is_seen_at_once),
            T(test_runs_on_several_threads_at_once),
#undef T
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
