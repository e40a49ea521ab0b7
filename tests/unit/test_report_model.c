/*
 * test_report_model.c - what `postdeploy report` (and `serve`) says of each
 * (tenant, action), from result records fed straight in, no broker
 * (producer/report_model.c): the newest record of a key wins; a never-run
 * action is pending, a started one running, a finished one its outcome; a
 * step left out because a dependency failed is pending, as the reactor
 * holds it, while a requested skip is skipped; an action no longer
 * registered is unavailable, a rejected name is no row at all; tenants
 * come sorted ("a" before "a-b"), each one's registered actions in registry
 * order, then its unavailable ones by name; sections group the rows as the
 * table shows them; and the JSON printer reports a stream it cannot write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "producer/cli.h"
#include "producer/report_model.h"

/* A model with [cli] tenants listed (a NULL-terminated list, or NULL). */
typedef struct fixture_s {
        pd_cli_t cli;
        pd_report_t *rp;
} fixture_t;

static int setup(void **state) {
        fixture_t *f = calloc(1, sizeof(*f));

        f->cli.cmd  = "report";
        f->cli.conf = pd_config_new();
        f->rp       = pd_report_new(&f->cli);
        *state      = f;
        return 0;
}

static int teardown(void **state) {
        fixture_t *f = *state;

        pd_report_destroy(f->rp);
        pd_config_destroy(f->cli.conf);
        free(f);
        return 0;
}

/* A registry.published of "name:auto" / "name:manual" entries, published
 * at `at`. */
static void add_registry(pd_report_t *rp, int64_t at, const char *const *ids) {
        pd_event_t *ev = pd_event_new(PD_EVT_REGISTRY_PUBLISHED);
        size_t n       = 0;

        while (ids[n])
                n++;
        ev->registry     = calloc(n, sizeof(*ev->registry));
        ev->registry_cnt = n;
        ev->published_at = at;
        ev->reactor      = strdup("r1");
        for (size_t i = 0; i < n; i++) {
                const char *colon = strchr(ids[i], ':');

                ev->registry[i].id = strndup(ids[i], (size_t)(colon - ids[i]));
                ev->registry[i].is_auto     = !strcmp(colon + 1, "auto");
                ev->registry[i].policy      = strdup("once");
                ev->registry[i].description = strdup("");
        }
        pd_report_add(rp, ev);
}

/* An action.started (status < 0) or action.finished with status. */
static void add_result(pd_report_t *rp, const char *tenant, const char *action,
                       int status, int retrying, const char *error,
                       int64_t finished_at) {
        pd_event_t *ev = pd_event_new(status < 0 ? PD_EVT_ACTION_STARTED
                                                 : PD_EVT_ACTION_FINISHED);

        ev->tenant      = strdup(tenant);
        ev->action      = strdup(action);
        ev->release     = strdup("1.0");
        ev->reactor     = strdup("r1");
        ev->attempt     = 1;
        ev->started_at  = finished_at - 10;
        ev->finished_at = status < 0 ? 0 : finished_at;
        ev->status      = status < 0 ? PD_ST_SUCCEEDED : (pd_status_t)status;
        ev->retrying    = retrying;
        ev->error       = error ? strdup(error) : NULL;
        pd_report_add(rp, ev);
}

/* The row of (tenant, action), or NULL; after pd_report_build. */
static const pd_row_t *row_of(const pd_report_t *rp, const char *tenant,
                              const char *action) {
        for (size_t i = 0; i < rp->row_cnt; i++)
                if (!strcmp(rp->rows[i].tenant, tenant) &&
                    !strcmp(rp->rows[i].action, action))
                        return &rp->rows[i];
        return NULL;
}

static const char *state_of(const pd_report_t *rp, const char *tenant,
                            const char *action) {
        const pd_row_t *row = row_of(rp, tenant, action);

        return row ? pd_state_name(row->state) : "(no row)";
}

static const char *const reg_abc[] = {"a:auto", "b:auto", "c:manual",
                                      "d:auto", "e:auto", "f:auto",
                                      "g:auto", "h:auto", NULL};

static void each_outcome_gives_its_state(void **state) {
        fixture_t *f = *state;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "t", "b", PD_ST_FAILED, 0, "exit 1", 100);
        add_result(f->rp, "t", "d", -1, 0, NULL, 100);
        add_result(f->rp, "t", "e", PD_ST_TIMED_OUT, 0, NULL, 100);
        add_result(f->rp, "t", "f", PD_ST_INTERRUPTED, 0, NULL, 100);
        add_result(f->rp, "t", "g", PD_ST_SKIPPED, 0,
                   "skipped on request of ci@host", 100);
        add_result(f->rp, "t", "h", PD_ST_RESET, 0, "reset by ci@host", 100);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "a"), "succeeded");
        assert_string_equal(state_of(f->rp, "t", "b"), "failed");
        assert_string_equal(state_of(f->rp, "t", "c"), "pending");
        assert_string_equal(state_of(f->rp, "t", "d"), "running");
        assert_string_equal(state_of(f->rp, "t", "e"), "timed_out");
        assert_string_equal(state_of(f->rp, "t", "f"), "interrupted");
        assert_string_equal(state_of(f->rp, "t", "g"), "skipped");
        /* A reset action runs again on the next deploy. */
        assert_string_equal(state_of(f->rp, "t", "h"), "pending");
}

static void interrupted_with_a_retry_to_come_is_running(void **state) {
        fixture_t *f = *state;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_INTERRUPTED, 1, NULL, 100);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "a"), "running");
}

/* The reactor leaves such a step pending (it plans it again): the report
 * must not call it skipped, which the next deploy would not run. */
static void dependency_skipped_is_pending_as_the_reactor_holds_it(
    void **state) {
        fixture_t *f = *state;
        const pd_row_t *row;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_FAILED, 0, "exit 2", 100);
        add_result(f->rp, "t", "b", PD_ST_SKIPPED, 0, "dependency a failed",
                   101);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "b"), "pending");
        row = row_of(f->rp, "t", "b");
        assert_int_equal(pd_row_section(row), PD_SECTION_PENDING_AUTO);
        /* The reason stays with the row, for the table to show. */
        assert_string_equal(row->res->error, "dependency a failed");
}

static void the_newest_record_of_a_key_wins(void **state) {
        fixture_t *f = *state;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_FAILED, 0, "exit 1", 100);
        add_result(f->rp, "t", "a", -1, 0, NULL, 200);
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 300);
        add_result(f->rp, "t", "b", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "t", "b", PD_ST_FAILED, 0, "exit 3", 200);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "a"), "succeeded");
        assert_int_equal(row_of(f->rp, "t", "a")->res->finished_at, 300);
        assert_string_equal(state_of(f->rp, "t", "b"), "failed");
        assert_string_equal(row_of(f->rp, "t", "b")->res->error, "exit 3");
}

/* Read one partition after the other, an older record can come last: a
 * (tenant, action) whose results sit on two partitions (from before
 * co-partitioning, or another writer). The newest in time wins. */
static void an_older_record_read_later_does_not_win(void **state) {
        fixture_t *f = *state;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 300);
        add_result(f->rp, "t", "a", PD_ST_FAILED, 0, "exit 1", 100);
        add_result(f->rp, "t", "a", -1, 0, NULL, 200); /* started at 190 */
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "a"), "succeeded");
        assert_int_equal(row_of(f->rp, "t", "a")->res->finished_at, 300);
}

static void the_newest_registry_says_what_exists(void **state) {
        fixture_t *f                       = *state;
        static const char *const old_reg[] = {"a:auto", "gone:auto", NULL};
        static const char *const new_reg[] = {"a:auto", "b:manual", NULL};

        add_registry(f->rp, 2, new_reg);
        add_registry(f->rp, 1, old_reg); /* older, read later */
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 100);
        pd_report_build(f->rp);

        assert_non_null(row_of(f->rp, "t", "b"));
        assert_null(row_of(f->rp, "t", "gone"));
}

static void actions_no_longer_registered_are_unavailable(void **state) {
        fixture_t *f                   = *state;
        static const char *const reg[] = {"a:auto", NULL};
        const pd_row_t **sel;
        size_t cnt;

        add_registry(f->rp, 1, reg);
        add_result(f->rp, "t", "old", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "t", "older", PD_ST_FAILED, 0, "x", 50);
        /* A name nobody registered was rejected: no action at all. */
        add_result(f->rp, "t", "typo", PD_ST_REJECTED, 0, "unknown", 100);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "old"), "unavailable");
        assert_string_equal(state_of(f->rp, "t", "older"), "unavailable");
        assert_null(row_of(f->rp, "t", "typo"));
        cnt = pd_report_section_rows(f->rp, 0, PD_SECTION_UNAVAILABLE, &sel);
        assert_int_equal(cnt, 2);
        assert_string_equal(sel[0]->action, "old"); /* newest first */
        assert_string_equal(sel[1]->action, "older");
        free(sel);
        /* The registered action keeps its row, never run: pending. */
        assert_string_equal(state_of(f->rp, "t", "a"), "pending");
}

/* "a-b/x" sorts before "a/y" as a key; by tenant, "a" comes first, and
 * the rows of "a" beside "a-b" were once lost that way. */
static void tenants_sort_then_rows_by_registry_then_action(void **state) {
        fixture_t *f                   = *state;
        static const char *const reg[] = {"z:auto", "m:auto", NULL};
        const pd_report_t *rp          = f->rp;

        add_registry(f->rp, 1, reg);
        add_result(f->rp, "a-b", "z", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "a", "y2", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "a", "y1", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "b", "m", PD_ST_FAILED, 0, "x", 100);
        pd_report_build(f->rp);

        assert_int_equal(rp->tenants.cnt, 3);
        assert_string_equal(rp->tenants.v[0], "a");
        assert_string_equal(rp->tenants.v[1], "a-b");
        assert_string_equal(rp->tenants.v[2], "b");
        /* Tenant a: z, m as registered, then y1, y2 by name. */
        assert_int_equal(rp->tenant_rows[0], 0);
        assert_int_equal(rp->tenant_rows[1], 4);
        assert_string_equal(rp->rows[0].action, "z");
        assert_string_equal(rp->rows[1].action, "m");
        assert_string_equal(rp->rows[2].action, "y1");
        assert_string_equal(rp->rows[3].action, "y2");
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(rp->rows[i].tenant, "a");
        assert_int_equal(rp->tenant_rows[2], 6);
        assert_int_equal(rp->tenant_rows[3], 8);
        assert_int_equal(rp->row_cnt, 8);
}

static void listed_tenants_show_all_pending_named_ones_are_missing(
    void **state) {
        fixture_t *f                   = *state;
        static const char *const reg[] = {"a:auto", NULL};

        pd_strv_add(&f->cli.conf->tenants, "fresh");
        add_registry(f->rp, 1, reg);
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 100);
        pd_report_build(f->rp);
        assert_int_equal(f->rp->tenants.cnt, 2);
        assert_string_equal(state_of(f->rp, "fresh", "a"), "pending");
        pd_report_unbuild(f->rp);

        /* Named with --tenant and without results: likely a typo. */
        pd_report_only(f->rp, "t");
        pd_report_only(f->rp, "tpyo");
        pd_report_build(f->rp);
        assert_int_equal(f->rp->tenants.cnt, 1);
        assert_string_equal(f->rp->tenants.v[0], "t");
        assert_int_equal(f->rp->missing.cnt, 1);
        assert_string_equal(f->rp->missing.v[0], "tpyo");
}

static void sections_group_rows_as_the_table_shows_them(void **state) {
        fixture_t *f                     = *state;
        static const pd_section_t want[] = {
            PD_SECTION_COMPLETED,      /* a succeeded */
            PD_SECTION_FAILED,         /* b failed */
            PD_SECTION_PENDING_MANUAL, /* c never ran, manual */
            PD_SECTION_RUNNING,        /* d started */
            PD_SECTION_FAILED,         /* e timed out */
            PD_SECTION_FAILED,         /* f interrupted */
            PD_SECTION_COMPLETED,      /* g skipped on request */
            PD_SECTION_PENDING_AUTO,   /* h reset */
        };
        const pd_row_t **sel;
        size_t cnt;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_result(f->rp, "t", "b", PD_ST_FAILED, 0, "exit 1", 100);
        add_result(f->rp, "t", "d", -1, 0, NULL, 100);
        add_result(f->rp, "t", "e", PD_ST_TIMED_OUT, 0, NULL, 100);
        add_result(f->rp, "t", "f", PD_ST_INTERRUPTED, 0, NULL, 100);
        add_result(f->rp, "t", "g", PD_ST_SKIPPED, 0, "skipped on request",
                   200);
        add_result(f->rp, "t", "h", PD_ST_RESET, 0, "reset", 100);
        pd_report_build(f->rp);

        assert_int_equal(f->rp->row_cnt, 8);
        for (size_t i = 0; i < 8; i++)
                assert_int_equal(pd_row_section(&f->rp->rows[i]), want[i]);
        /* Completed, newest first: g (200) before a (100). */
        cnt = pd_report_section_rows(f->rp, 0, PD_SECTION_COMPLETED, &sel);
        assert_int_equal(cnt, 2);
        assert_string_equal(sel[0]->action, "g");
        assert_string_equal(sel[1]->action, "a");
        free(sel);
        /* Failed, in registry order. */
        cnt = pd_report_section_rows(f->rp, 0, PD_SECTION_FAILED, &sel);
        assert_int_equal(cnt, 3);
        assert_string_equal(sel[0]->action, "b");
        assert_string_equal(sel[2]->action, "f");
        free(sel);
}

static void json_lists_each_row_and_checks_its_writes(void **state) {
        fixture_t *f = *state;
        char buf[4096], tiny[64];
        FILE *fp;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "b", PD_ST_FAILED, 0, "exit \"1\"\n", 100);
        memset(buf, 0, sizeof(buf));
        fp = fmemopen(buf, sizeof(buf) - 1, "w");
        assert_int_equal(pd_report_json_write(f->rp, "t", fp), 0);
        fclose(fp);
        assert_non_null(strstr(buf,
                               "\"action\": \"b\",\n    "
                               "\"auto\": true"));
        assert_non_null(strstr(buf, "\"state\": \"failed\""));
        assert_non_null(strstr(buf, "\"error\": \"exit \\\"1\\\"\\n\""));
        assert_non_null(strstr(buf, "\"state\": \"pending\""));
        /* No such tenant: nothing written. */
        assert_int_equal(pd_report_json_write(f->rp, "nobody", stdout), -1);

        /* A stream too small for the rows: the failure is returned, not
         * dropped. */
        fp = fmemopen(tiny, sizeof(tiny), "w");
        setvbuf(fp, NULL, _IONBF, 0);
        assert_int_equal(pd_report_json_write(f->rp, NULL, fp), 1);
        fclose(fp);
        /* A full disk. */
        fp = fopen("/dev/full", "w");
        assert_non_null(fp);
        assert_int_equal(pd_report_json_write(f->rp, NULL, fp), 1);
        fclose(fp);
}

/* A run waiting for its action's concurrency is queued, shown with what
 * runs; the run's own action.started, newer, makes it running. */
static void a_queued_start_is_queued_until_the_run_starts(void **state) {
        fixture_t *f = *state;
        pd_event_t *ev;

        add_registry(f->rp, 1, reg_abc);
        ev          = pd_event_new(PD_EVT_ACTION_STARTED);
        ev->tenant  = strdup("t");
        ev->action  = strdup("a");
        ev->release = strdup("1.0");
        ev->reactor = strdup("r1");
        ev->attempt = 1;
        ev->queued  = 1;
        pd_report_add(f->rp, ev);
        add_result(f->rp, "u", "a", -1, 0, NULL, 100);
        pd_report_build(f->rp);

        assert_string_equal(state_of(f->rp, "t", "a"), "queued");
        assert_int_equal(pd_row_section(row_of(f->rp, "t", "a")),
                         PD_SECTION_RUNNING);
        assert_string_equal(state_of(f->rp, "u", "a"), "running");
}

/* An action.progress of (tenant, action), attempt 1, said at `at`. */
static void add_progress(pd_report_t *rp, const char *tenant,
                         const char *action, int32_t attempt, int64_t done,
                         int64_t total, int64_t at) {
        pd_event_t *ev = pd_event_new(PD_EVT_ACTION_PROGRESS);

        ev->tenant  = strdup(tenant);
        ev->action  = strdup(action);
        ev->release = strdup("1.0");
        ev->reactor = strdup("r1");
        ev->attempt = attempt;
        ev->done    = done;
        ev->total   = total;
        ev->at      = at;
        pd_report_add(rp, ev);
}

/* The newest progress shows on a running row, and only there: not on a
 * finished one, not one of an earlier attempt or run. */
static void a_running_row_shows_its_runs_newest_progress(void **state) {
        fixture_t *f = *state;
        const pd_result_progress_t *pg;
        char buf[4096], text[64];
        FILE *fp;

        add_registry(f->rp, 1, reg_abc);
        add_result(f->rp, "t", "a", -1, 0, NULL, 100); /* started at 90 */
        add_progress(f->rp, "t", "a", 1, 40, 100, 95);
        add_progress(f->rp, "t", "a", 1, 30, 100, 93); /* older: ignored */
        add_result(f->rp, "t", "b", PD_ST_SUCCEEDED, 0, NULL, 100);
        add_progress(f->rp, "t", "b", 1, 7, 7, 99);
        add_result(f->rp, "t", "c", -1, 0, NULL, 200); /* started at 190 */
        add_progress(f->rp, "t", "c", 1, 5, 0, 150);   /* of an earlier run */
        add_result(f->rp, "t", "d", -1, 0, NULL, 100);
        add_progress(f->rp, "t", "d", 2, 5, 9, 99); /* of another attempt */
        pd_report_build(f->rp);

        pg = pd_report_progress(f->rp, row_of(f->rp, "t", "a"));
        assert_non_null(pg);
        assert_int_equal(pg->done, 40);
        assert_int_equal(pg->total, 100);
        pd_progress_text(pg->done, pg->total, text, sizeof(text));
        assert_string_equal(text, "40% (40/100)");
        pd_progress_text(5, 0, text, sizeof(text));
        assert_string_equal(text, "5 done");
        assert_null(pd_report_progress(f->rp, row_of(f->rp, "t", "b")));
        assert_null(pd_report_progress(f->rp, row_of(f->rp, "t", "c")));
        assert_null(pd_report_progress(f->rp, row_of(f->rp, "t", "d")));
        pd_report_unbuild(f->rp);

        memset(buf, 0, sizeof(buf));
        fp = fmemopen(buf, sizeof(buf) - 1, "w");
        assert_int_equal(pd_report_json_write(f->rp, "t", fp), 0);
        fclose(fp);
        assert_non_null(strstr(buf,
                               "\"progress_done\": 40,\n    "
                               "\"progress_total\": 100,"));
        /* Only the running row with a progress of its run has them. */
        assert_null(
            strstr(strstr(buf, "\"progress_done\"") + 1, "\"progress_done\""));
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
            T(each_outcome_gives_its_state),
            T(interrupted_with_a_retry_to_come_is_running),
            T(a_queued_start_is_queued_until_the_run_starts),
            T(dependency_skipped_is_pending_as_the_reactor_holds_it),
            T(the_newest_record_of_a_key_wins),
            T(an_older_record_read_later_does_not_win),
            T(the_newest_registry_says_what_exists),
            T(actions_no_longer_registered_are_unavailable),
            T(tenants_sort_then_rows_by_registry_then_action),
            T(listed_tenants_show_all_pending_named_ones_are_missing),
            T(sections_group_rows_as_the_table_shows_them),
            T(json_lists_each_row_and_checks_its_writes),
            T(a_running_row_shows_its_runs_newest_progress),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
