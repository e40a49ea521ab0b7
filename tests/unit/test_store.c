/*
 * test_store.c - the state store: what it keeps, across reopens and
 * crashes, and how it reports errors. Every test gets a fresh temporary
 * folder.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <sqlite3.h>

#include "state/store.h"

typedef struct fx_s {
        char dir[PATH_MAX];       /* the test's own temporary folder */
        char path[PATH_MAX + 16]; /* dir/state.db */
        pd_store_t *st;
} fx_t;

static pd_store_t *open_sync(const char *path, int sync_full) {
        char errstr[512] = "";
        pd_store_t *st = pd_store_open(path, sync_full, errstr, sizeof(errstr));

        if (!st)
                fail_msg("pd_store_open(%s): %s", path, errstr);
        return st;
}

static pd_store_t *open_ok(const char *path) {
        return open_sync(path, 0);
}

static int setup(void **state) {
        fx_t *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        pd_test_tmpdir(fx->dir, sizeof(fx->dir), "test_store", 0);
        snprintf(fx->path, sizeof(fx->path), "%s/state.db", fx->dir);
        *state = fx;
        return 0;
}


static int teardown(void **state) {
        fx_t *fx = *state;

        pd_store_close(fx->st);
        pd_test_rmtree(fx->dir);
        free(fx);
        return 0;
}

static void assert_mode(const char *path, mode_t mode) {
        struct stat sb;

        if (stat(path, &sb))
                fail_msg("stat(%s): %s", path, strerror(errno));
        if ((sb.st_mode & 07777) != mode)
                fail_msg("%s: mode %04o, expected %04o", path,
                         (unsigned)(sb.st_mode & 07777), (unsigned)mode);
}

/* A run of (acme, core.reindex) caused by trigger (cli, trigger_id). */
static pd_run_t run_of(const char *action, const char *trigger_id,
                       int32_t attempt) {
        pd_run_t run = {0};

        run.tenant         = "acme";
        run.action         = action;
        run.release        = "4.2.0";
        run.trigger_source = "postdeploy-cli/host";
        run.trigger_id     = trigger_id;
        run.attempt        = attempt;
        run.started_at     = 1000 * attempt;
        return run;
}

static void end_run(pd_store_t *st, pd_run_t *run, pd_status_t status) {
        run->status        = status;
        run->has_exit_code = status != PD_ST_SKIPPED;
        run->exit_code     = status == PD_ST_SUCCEEDED ? 0 : 3;
        run->finished_at   = run->started_at + 250;
        run->duration_ms   = 250;
        run->error         = status == PD_ST_SUCCEEDED ? NULL : "exited 3";
        run->output_tail   = "done\n";
        assert_int_equal(pd_store_run_end(st, run), 0);
}

static pd_action_state_t state_of(pd_store_t *st, const char *action) {
        pd_action_state_t as;

        assert_int_equal(pd_store_action_state(st, "acme", action, &as), 0);
        return as;
}

/* ---- files ---- */

static void test_open_creates_the_file_0600_in_folders_0700(void **state) {
        fx_t *fx = *state;
        char path[PATH_MAX + 32], file[PATH_MAX + 64];
        sqlite3 *db;
        sqlite3_stmt *stmt;

        /* A permissive umask must not leak into the store's files. */
        mode_t old = umask(022);
        snprintf(path, sizeof(path), "%s/var/lib/pd/state.db", fx->dir);
        fx->st = open_ok(path);
        assert_int_equal(umask(old), 022); /* restored after open */

        snprintf(file, sizeof(file), "%s/var", fx->dir);
        assert_mode(file, 0700);
        snprintf(file, sizeof(file), "%s/var/lib", fx->dir);
        assert_mode(file, 0700);
        snprintf(file, sizeof(file), "%s/var/lib/pd", fx->dir);
        assert_mode(file, 0700);
        assert_mode(path, 0600);
        snprintf(file, sizeof(file), "%s-wal", path);
        assert_mode(file, 0600);
        snprintf(file, sizeof(file), "%s-shm", path);
        assert_mode(file, 0600);

        /* The last close removes the -wal file; a reopen makes it again,
         * still private. */
        pd_store_close(fx->st);
        old    = umask(0);
        fx->st = open_ok(path);
        umask(old);
        snprintf(file, sizeof(file), "%s-wal", path);
        assert_mode(file, 0600);

        /* And it is in WAL mode. */
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
        sqlite3_finalize(stmt);
        sqlite3_close(db);
}

static void test_open_keeps_an_existing_folder_as_it_is(void **state) {
        fx_t *fx = *state;

        assert_int_equal(chmod(fx->dir, 0755), 0);
        fx->st = open_ok(fx->path);
        assert_mode(fx->dir, 0755);
        assert_mode(fx->path, 0600);
}

static void test_open_says_why_it_failed(void **state) {
        fx_t *fx = *state;
        char path[PATH_MAX + 32];
        char errstr[512] = "";
        FILE *fp;

        /* A regular file where a folder should be. */
        snprintf(path, sizeof(path), "%s/file", fx->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
        snprintf(path, sizeof(path), "%s/file/sub/state.db", fx->dir);
        assert_null(pd_store_open(path, 0, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "Not a directory"));
        assert_non_null(strstr(errstr, "file/sub"));

        snprintf(path, sizeof(path), "%s/file/state.db", fx->dir);
        assert_null(pd_store_open(path, 1, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, path));
}

static void test_open_refuses_a_newer_schema(void **state) {
        fx_t *fx         = *state;
        char errstr[512] = "";
        sqlite3 *db;

        pd_store_close(open_ok(fx->path));
        assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);

        assert_null(pd_store_open(fx->path, 0, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "schema version 99"));
}

/* A store of schema version 5, from before pauses, upgrades at open, and
 * pauses can be kept and outlive a reopen. */
static void test_a_store_from_before_pauses_upgrades_and_keeps_them(
    void **state) {
        fx_t *fx          = *state;
        pd_strv_t tenants = {0}, by = {0};
        pd_store_t *st = open_ok(fx->path);
        sqlite3 *db;

        pd_store_close(st);
        /* Back to version 5 as it shipped: no paused table, nor what
         * later versions added. */
        assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "DROP TABLE paused;"
                                      "ALTER TABLE outbox DROP COLUMN part;"
                                      "DROP INDEX runs_by_origin;"
                                      "ALTER TABLE runs DROP COLUMN origin;"
                                      "DROP TABLE partitions;"
                                      "DROP TABLE tenant_parts;"
                                      "PRAGMA user_version = 5",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        st = open_ok(fx->path);
        assert_int_equal(pd_store_pause_set(st, "t1", "ops/alice", 1), 0);
        assert_int_equal(pd_store_pause_set(st, NULL, "ops/bob", 2), 0);
        assert_int_equal(pd_store_pause_set(st, "t2", "ops/carol", 3), 0);
        assert_int_equal(pd_store_pause_clear(st, "t2"), 0);
        pd_store_close(st);

        st = open_ok(fx->path);
        assert_int_equal(pd_store_pause_list(st, &tenants, &by), 0);
        assert_int_equal(tenants.cnt, 2);
        assert_string_equal(tenants.v[0], PD_STORE_ALL_TENANTS);
        assert_string_equal(by.v[0], "ops/bob");
        assert_string_equal(tenants.v[1], "t1");
        assert_string_equal(by.v[1], "ops/alice");
        pd_strv_clear(&tenants);
        pd_strv_clear(&by);
        assert_int_equal(pd_store_pause_clear(st, NULL), 0);
        assert_int_equal(pd_store_pause_list(st, &tenants, &by), 0);
        assert_int_equal(tenants.cnt, 0);
        pd_store_close(st);
}

static int outbox_parts_cb(const pd_outbox_rec_t *rec, void *opaque) {
        int32_t **pp = opaque;

        *(*pp)++ = rec->part;
        return 0;
}

/* A store of schema version 6, from before co-partitioning, upgrades at
 * open: what its outbox holds goes where the partitioner says, as it was
 * meant to; new records keep the partition they are given. */
static void test_a_store_from_before_parts_upgrades_its_outbox(void **state) {
        fx_t *fx            = *state;
        pd_outbox_rec_t rec = {0};
        int32_t parts[3], *p = parts;
        pd_store_t *st = open_ok(fx->path);
        sqlite3 *db;

        pd_store_close(st);
        assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db,
                         "ALTER TABLE outbox DROP COLUMN part;"
                         /* and what version 8 (restore) added */
                         "DROP INDEX runs_by_origin;"
                         "ALTER TABLE runs DROP COLUMN origin;"
                         "DROP TABLE partitions;"
                         "DROP TABLE tenant_parts;"
                         "INSERT INTO outbox (topic, key, headers, value)"
                         " VALUES ('results', 't1/a', x'', x'01');"
                         "PRAGMA user_version = 6",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);

        st            = open_ok(fx->path);
        rec.topic     = "results";
        rec.key       = "t2/a";
        rec.value     = "v";
        rec.value_len = 1;
        rec.part      = 4;
        assert_int_equal(pd_store_outbox_add(st, &rec), 0);
        rec.part = PD_PART_ANY;
        assert_int_equal(pd_store_outbox_add(st, &rec), 0);
        assert_int_equal(pd_store_outbox_foreach(st, outbox_parts_cb, &p), 0);
        assert_int_equal(p - parts, 3);
        assert_int_equal(parts[0], PD_PART_ANY);
        assert_int_equal(parts[1], 4);
        assert_int_equal(parts[2], PD_PART_ANY);
        /* A lost partition's records go, the others stay. */
        assert_int_equal(pd_store_outbox_del_part(st, 4), 0);
        p = parts;
        assert_int_equal(pd_store_outbox_foreach(st, outbox_parts_cb, &p), 0);
        assert_int_equal(p - parts, 2);
        pd_store_close(st);
}

/* Version 9's runs_begin records a whole run's outcome itself; a store
 * from before gets it, and what it held stays as it was. */
static void test_a_store_from_before_whole_runs_upgrades_its_trigger(
    void **state) {
        fx_t *fx       = *state;
        pd_run_t old   = run_of("core.reindex", "t1", 1);
        pd_run_t run   = run_of("core.reindex", "t2", 1);
        pd_run_t busy  = run_of("core.other", "t2", 1);
        pd_store_t *st = open_ok(fx->path);
        pd_action_state_t as;
        sqlite3 *db;

        assert_int_equal(pd_store_run_begin(st, &old), 0);
        end_run(st, &old, PD_ST_SUCCEEDED);
        pd_store_close(st);
        assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db,
                         "DROP TRIGGER runs_begin;"
                         "CREATE TRIGGER runs_begin AFTER INSERT ON runs BEGIN"
                         " INSERT INTO actions (tenant, action)"
                         " VALUES (NEW.tenant, NEW.action)"
                         " ON CONFLICT (tenant, action) DO NOTHING;"
                         "END;"
                         "PRAGMA user_version = 8",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);

        fx->st = open_ok(fx->path);
        as     = state_of(fx->st, "core.reindex");
        assert_true(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_SUCCEEDED);
        run.id          = pd_store_run_id_next(fx->st);
        run.status      = PD_ST_FAILED;
        run.finished_at = run.started_at + 5;
        run.error       = "ledger locked";
        assert_int_equal(pd_store_run_record(fx->st, &run), 0);
        as = state_of(fx->st, "core.reindex");
        assert_true(as.ever_succeeded); /* still: it succeeded once */
        assert_int_equal(as.last_status, PD_ST_FAILED);
        /* A run begun, not over, adds its action and no outcome. */
        assert_int_equal(pd_store_run_begin(fx->st, &busy), 0);
        as = state_of(fx->st, "core.other");
        assert_true(as.known);
        assert_true(as.running);
        assert_false(as.ever_succeeded);
        assert_int_equal(state_of(fx->st, "core.reindex").last_status,
                         PD_ST_FAILED);
}

static int outbox_count_cb(const pd_outbox_rec_t *rec, void *opaque) {
        (void)rec;
        (*(int *)opaque)++;
        return 0;
}

static void test_reopen_keeps_everything(void **state) {
        fx_t *fx            = *state;
        pd_run_t run        = run_of("core.reindex", "t1", 1);
        pd_outbox_rec_t rec = {0};
        pd_action_state_t as;
        int done = 0;
        int cnt  = 0;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_begin(fx->st), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        assert_int_equal(pd_store_event_mark(fx->st, "cli", "t1", "acme", 42),
                         0);
        rec.topic     = "postdeploy.results";
        rec.key       = "acme/core.reindex";
        rec.value     = "v";
        rec.value_len = 1;
        assert_int_equal(pd_store_outbox_add(fx->st, &rec), 0);
        assert_int_equal(pd_store_commit(fx->st), 0);
        pd_store_close(fx->st);

        fx->st = open_sync(fx->path, 1); /* the sync mode is no matter */
        as     = state_of(fx->st, "core.reindex");
        assert_true(as.known);
        assert_false(as.running);
        assert_true(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_SUCCEEDED);
        assert_int_equal(pd_store_event_done(fx->st, "cli", "t1", &done), 0);
        assert_true(done);
        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_count_cb, &cnt),
                         0);
        assert_int_equal(cnt, 1);
}

/* ---- events ---- */

static void test_event_mark_is_idempotent(void **state) {
        fx_t *fx = *state;
        int done = -1;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_event_done(fx->st, "cli", "e1", &done), 0);
        assert_false(done);

        assert_int_equal(pd_store_event_mark(fx->st, "cli", "e1", "acme", 1),
                         0);
        assert_int_equal(pd_store_event_mark(fx->st, "cli", "e1", "acme", 2),
                         0);
        assert_int_equal(pd_store_event_done(fx->st, "cli", "e1", &done), 0);
        assert_true(done);

        /* An id is unique per source only. */
        assert_int_equal(pd_store_event_done(fx->st, "ci", "e1", &done), 0);
        assert_false(done);
}

/* ---- runs and action state ---- */

static void test_action_unknown_until_its_first_run(void **state) {
        fx_t *fx = *state;
        pd_action_state_t as;

        fx->st = open_ok(fx->path);
        as     = state_of(fx->st, "core.reindex");
        assert_false(as.known);
        assert_false(as.ever_succeeded);
        assert_false(as.running);
}

static void test_run_begin_makes_the_action_known_and_running(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);
        pd_action_state_t as;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_true(run.id > 0);

        as = state_of(fx->st, "core.reindex");
        assert_true(as.known);
        assert_true(as.running);
        assert_false(as.ever_succeeded);
        assert_int_equal(as.last_attempt, 0); /* nothing finished yet */

        /* Another tenant's same action is another story. */
        {
                pd_action_state_t other;
                assert_int_equal(pd_store_action_state(fx->st, "globex",
                                                       "core.reindex", &other),
                                 0);
                assert_false(other.known);
        }
}

static void test_run_end_records_the_outcome(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);
        pd_action_state_t as;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_FAILED);

        as = state_of(fx->st, "core.reindex");
        assert_true(as.known);
        assert_false(as.running);
        assert_false(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_FAILED);
        assert_int_equal(as.last_attempt, 1);

        run = run_of("core.reindex", "t1", 2);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        as = state_of(fx->st, "core.reindex");
        assert_true(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_SUCCEEDED);
        assert_int_equal(as.last_attempt, 2);
}

static void test_success_is_remembered_after_a_later_failure(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);
        pd_action_state_t as;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        run = run_of("core.reindex", "t2", 1);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_TIMED_OUT);

        as = state_of(fx->st, "core.reindex");
        assert_true(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_TIMED_OUT);
}

static void test_only_success_counts_as_succeeded(void **state) {
        fx_t *fx                   = *state;
        const pd_status_t others[] = {PD_ST_FAILED, PD_ST_TIMED_OUT,
                                      PD_ST_INTERRUPTED, PD_ST_SKIPPED,
                                      PD_ST_REJECTED};

        fx->st = open_ok(fx->path);
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                pd_run_t run = run_of("core.reindex", "t1", (int32_t)i + 1);
                pd_action_state_t as;

                assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
                end_run(fx->st, &run, others[i]);
                as = state_of(fx->st, "core.reindex");
                assert_false(as.ever_succeeded);
                assert_int_equal(as.last_status, others[i]);
        }
}

static void test_store_id_is_kept_and_unique(void **state) {
        fx_t *fx = *state;
        char id[40], other_path[PATH_MAX + 4200];
        pd_store_t *other;

        fx->st = open_ok(fx->path);
        snprintf(id, sizeof(id), "%s", pd_store_id(fx->st));
        assert_int_equal(strlen(id), 16);
        pd_store_close(fx->st);
        fx->st = open_ok(fx->path);
        assert_string_equal(pd_store_id(fx->st), id);

        /* A new file, even at the same place later, is another store. */
        snprintf(other_path, sizeof(other_path), "%s.other", fx->path);
        other = open_ok(other_path);
        assert_string_not_equal(pd_store_id(other), id);
        pd_store_close(other);
}

static void test_skip_marks_done_and_reset_makes_pending_again(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);
        pd_action_state_t other;

        fx->st = open_ok(fx->path);
        /* Skipping an action that never ran makes it known and done. */
        assert_int_equal(
            pd_store_action_set_done(fx->st, "acme", "core.new", 1), 0);
        assert_true(state_of(fx->st, "core.new").known);
        assert_true(state_of(fx->st, "core.new").ever_succeeded);

        /* A reset forgets a success; the run history stays. */
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        assert_int_equal(
            pd_store_action_set_done(fx->st, "acme", "core.reindex", 0), 0);
        assert_false(state_of(fx->st, "core.reindex").ever_succeeded);
        assert_int_equal(state_of(fx->st, "core.reindex").last_status,
                         PD_ST_SUCCEEDED);
        /* Only this tenant's state moved. */
        assert_int_equal(
            pd_store_action_state(fx->st, "other", "core.new", &other), 0);
        assert_false(other.known);
}

static void test_a_late_end_does_not_hide_a_newer_outcome(void **state) {
        fx_t *fx       = *state;
        pd_run_t older = run_of("core.reindex", "t1", 1);
        pd_run_t newer = run_of("core.reindex", "t2", 2);
        pd_action_state_t as;

        /* Recovery may end a run left by a crash after a newer one. */
        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &older), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &newer), 0);
        end_run(fx->st, &newer, PD_ST_SUCCEEDED);
        end_run(fx->st, &older, PD_ST_INTERRUPTED);

        as = state_of(fx->st, "core.reindex");
        assert_int_equal(as.last_status, PD_ST_SUCCEEDED);
        assert_int_equal(as.last_attempt, 2);
        assert_false(as.running);
}

/* An in-process run is written once, whole, when it is over: it must
 * count exactly as a run begun and ended does. */
static void test_a_run_recorded_whole_counts_as_begun_and_ended(void **state) {
        fx_t *fx       = *state;
        pd_run_t run   = run_of("core.reindex", "t1", 1);
        pd_run_t later = run_of("core.reindex", "t2", 2);
        pd_action_state_t as;
        pd_status_t status = PD_ST_SUCCEEDED;
        int32_t attempt    = 0;
        int found          = 0;

        fx->st          = open_ok(fx->path);
        run.id          = pd_store_run_id_next(fx->st);
        run.status      = PD_ST_FAILED;
        run.finished_at = run.started_at + 5;
        run.error       = "ledger locked";
        assert_int_equal(pd_store_run_record(fx->st, &run), 0);
        as = state_of(fx->st, "core.reindex");
        assert_true(as.known);
        assert_false(as.running);
        assert_false(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_FAILED);
        assert_int_equal(as.last_attempt, 1);
        assert_int_equal(pd_store_trigger_outcome(
                             fx->st, "acme", "core.reindex", run.trigger_source,
                             "t1", &found, &status, &attempt),
                         0);
        assert_true(found);
        assert_int_equal(status, PD_ST_FAILED);

        /* A command's run begun meanwhile takes the next id, not the one
         * handed out before. */
        later.id = pd_store_run_id_next(fx->st);
        run      = run_of("core.other", "t2", 1);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_true(run.id > later.id);
        later.status = PD_ST_SUCCEEDED;
        assert_int_equal(pd_store_run_record(fx->st, &later), 0);
        as = state_of(fx->st, "core.reindex");
        assert_true(as.ever_succeeded);
        assert_int_equal(as.last_status, PD_ST_SUCCEEDED);
        assert_int_equal(as.last_attempt, 2);

        /* Reopened, ids go on after the highest in the file. */
        pd_store_close(fx->st);
        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_id_next(fx->st), run.id + 1);
}

static void test_a_run_ends_only_once(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_FAILED);

        run.status = PD_ST_SUCCEEDED;
        assert_int_equal(pd_store_run_end(fx->st, &run), -1);
        assert_false(pd_store_retriable(fx->st));
        assert_non_null(strstr(pd_store_errmsg(fx->st), "already finished"));
        assert_false(state_of(fx->st, "core.reindex").ever_succeeded);

        run.id = 999;
        assert_int_equal(pd_store_run_end(fx->st, &run), -1);
}

/* A command's place among its trigger's runs names it at the supervisor
 * (consumer/worker.c): only runs started under a supervisor count, finished
 * or not, and only the trigger's, of that action. */
static void test_trigger_runs_counts_the_commands_it_started(void **state) {
        fx_t *fx        = *state;
        pd_run_t run    = run_of("core.reindex", "t1", 1);
        pd_run_t other  = run_of("core.reindex", "t2", 1);
        pd_run_t action = run_of("core.warm", "t1", 1);
        pd_run_t cut    = run_of("core.reindex", "t1", 2);
        int64_t n       = -1;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_trigger_runs(fx->st, "acme", "core.reindex",
                                               "postdeploy-cli/host", "t1", &n),
                         0);
        assert_int_equal(n, 0);
        run.sup_id = 11;
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        other.sup_id = 12;
        assert_int_equal(pd_store_run_begin(fx->st, &other), 0);
        action.sup_id = 13;
        assert_int_equal(pd_store_run_begin(fx->st, &action), 0);
        /* A verdict (a cut backoff, a skip) is a row without a name. */
        assert_int_equal(pd_store_run_begin(fx->st, &cut), 0);
        end_run(fx->st, &cut, PD_ST_INTERRUPTED);
        assert_int_equal(pd_store_trigger_runs(fx->st, "acme", "core.reindex",
                                               "postdeploy-cli/host", "t1", &n),
                         0);
        assert_int_equal(n, 1);
        end_run(fx->st, &run, PD_ST_FAILED);
        run        = run_of("core.reindex", "t1", 3);
        run.sup_id = 14;
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_int_equal(pd_store_trigger_runs(fx->st, "acme", "core.reindex",
                                               "postdeploy-cli/host", "t1", &n),
                         0);
        assert_int_equal(n, 2);
}

/* The plan's one probe per event: a trigger is seen once any run names
 * it, running or finished, of any action; another trigger's runs do not
 * count. */
static void test_a_trigger_is_seen_once_any_run_names_it(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);
        int seen     = -1;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_trigger_seen(fx->st, "t1", &seen), 0);
        assert_false(seen);

        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_int_equal(pd_store_trigger_seen(fx->st, "t1", &seen), 0);
        assert_true(seen);
        assert_int_equal(pd_store_trigger_seen(fx->st, "t2", &seen), 0);
        assert_false(seen);

        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        assert_int_equal(pd_store_trigger_seen(fx->st, "t1", &seen), 0);
        assert_true(seen);
}

static void test_trigger_outcome_is_its_latest_finished_run(void **state) {
        fx_t *fx           = *state;
        pd_run_t run       = run_of("core.reindex", "t1", 1);
        pd_status_t status = PD_ST__CNT;
        int32_t attempt    = -1;
        int found          = -1;

        fx->st = open_ok(fx->path);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_false(found);

        /* Running: not an outcome yet. */
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_false(found);

        end_run(fx->st, &run, PD_ST_FAILED);
        run = run_of("core.reindex", "t1", 2);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_true(found);
        assert_int_equal(status, PD_ST_FAILED);
        /* And which attempt it was: a failure with retries left was cut
         * short, not final. */
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, &attempt),
            0);
        assert_int_equal(attempt, 1);

        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_true(found);
        assert_int_equal(status, PD_ST_SUCCEEDED);

        /* Not another trigger's, source's, action's or tenant's. */
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex",
                                     "postdeploy-cli/host", "t2", &found,
                                     &status, NULL),
            0);
        assert_false(found);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.reindex", "other",
                                     "t1", &found, &status, NULL),
            0);
        assert_false(found);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "acme", "core.warm_cache",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_false(found);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "globex", "core.reindex",
                                     "postdeploy-cli/host", "t1", &found,
                                     &status, NULL),
            0);
        assert_false(found);
}

/* ---- unfinished runs ---- */

typedef struct seen_s {
        pd_store_t *st;
        int64_t ids[8];
        char actions[8][64];
        int32_t attempts[8];
        int cnt;
        int end_them; /* the callback ends each run as INTERRUPTED */
        int stop_with;
} seen_t;

static int collect_cb(const pd_run_t *run, void *opaque) {
        seen_t *seen = opaque;

        assert_true(seen->cnt < 8);
        assert_string_equal(run->tenant, "acme");
        assert_string_equal(run->release, "4.2.0");
        assert_string_equal(run->trigger_source, "postdeploy-cli/host");
        assert_string_equal(run->trigger_id, "t1");
        assert_int_equal(run->started_at, 1000 * run->attempt);
        seen->ids[seen->cnt] = run->id;
        snprintf(seen->actions[seen->cnt], sizeof(seen->actions[0]), "%s",
                 run->action);
        seen->attempts[seen->cnt] = run->attempt;
        seen->cnt++;
        if (seen->end_them) {
                pd_run_t copy = *run;
                copy.status   = PD_ST_INTERRUPTED;
                copy.error    = "interrupted";
                assert_int_equal(pd_store_run_end(seen->st, &copy), 0);
        }
        return seen->stop_with;
}

static void test_unfinished_runs_survive_a_crash(void **state) {
        fx_t *fx    = *state;
        pd_run_t a  = run_of("core.a", "t1", 1);
        pd_run_t b  = run_of("core.b", "t1", 2);
        pd_run_t c  = run_of("core.c", "t1", 3);
        seen_t seen = {0};
        pd_action_state_t as;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &a), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &b), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &c), 0);
        end_run(fx->st, &b, PD_ST_SUCCEEDED);
        /* The crash: the process goes away without ending a and c. */
        pd_store_close(fx->st);

        fx->st  = open_ok(fx->path);
        seen.st = fx->st;
        assert_true(state_of(fx->st, "core.a").running);
        assert_int_equal(pd_store_runs_unfinished(fx->st, collect_cb, &seen),
                         0);
        assert_int_equal(seen.cnt, 2);
        assert_int_equal(seen.ids[0], a.id);
        assert_string_equal(seen.actions[0], "core.a");
        assert_int_equal(seen.attempts[0], 1);
        assert_int_equal(seen.ids[1], c.id);
        assert_string_equal(seen.actions[1], "core.c");

        /* Recovery ends them from inside the iteration. */
        memset(&seen, 0, sizeof(seen));
        seen.st       = fx->st;
        seen.end_them = 1;
        assert_int_equal(pd_store_runs_unfinished(fx->st, collect_cb, &seen),
                         0);
        assert_int_equal(seen.cnt, 2);
        as = state_of(fx->st, "core.a");
        assert_false(as.running);
        assert_int_equal(as.last_status, PD_ST_INTERRUPTED);

        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pd_store_runs_unfinished(fx->st, collect_cb, &seen),
                         0);
        assert_int_equal(seen.cnt, 0);
}

static void test_unfinished_runs_stop_at_the_callbacks_answer(void **state) {
        fx_t *fx    = *state;
        pd_run_t a  = run_of("core.a", "t1", 1);
        pd_run_t b  = run_of("core.b", "t1", 2);
        seen_t seen = {0};

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_run_begin(fx->st, &a), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &b), 0);
        seen.stop_with = 7;
        assert_int_equal(pd_store_runs_unfinished(fx->st, collect_cb, &seen),
                         7);
        assert_int_equal(seen.cnt, 1);
}

/* ---- outbox ---- */

typedef struct outbox_seen_s {
        int64_t seqs[8];
        char values[8][16];
        size_t headers_len[8];
        int cnt;
} outbox_seen_t;

static int outbox_cb(const pd_outbox_rec_t *rec, void *opaque) {
        outbox_seen_t *seen = opaque;

        assert_true(seen->cnt < 8);
        assert_string_equal(rec->topic, "postdeploy.results");
        assert_string_equal(rec->key, "acme/core.reindex");
        assert_true(rec->value_len < sizeof(seen->values[0]));
        if (rec->value_len) /* an empty value comes back as NULL */
                memcpy(seen->values[seen->cnt], rec->value, rec->value_len);
        seen->values[seen->cnt][rec->value_len] = '\0';
        seen->headers_len[seen->cnt]            = rec->headers_len;
        if (rec->headers_len)
                assert_memory_equal(rec->headers, "ce_id\0e1\0", 9);
        seen->seqs[seen->cnt++] = rec->seq;
        return 0;
}

static int64_t outbox_add(pd_store_t *st, const char *value) {
        pd_outbox_rec_t rec = {0};

        rec.topic       = "postdeploy.results";
        rec.key         = "acme/core.reindex";
        rec.headers     = "ce_id\0e1\0";
        rec.headers_len = 9;
        rec.value       = value;
        rec.value_len   = strlen(value);
        assert_int_equal(pd_store_outbox_add(st, &rec), 0);
        return rec.seq;
}

static void test_outbox_replays_in_order_until_deleted(void **state) {
        fx_t *fx              = *state;
        outbox_seen_t seen    = {0};
        pd_outbox_rec_t empty = {0};
        int64_t s1, s2, s3, s4;

        fx->st = open_ok(fx->path);
        s1     = outbox_add(fx->st, "one");
        s2     = outbox_add(fx->st, "two");
        s3     = outbox_add(fx->st, "three");
        assert_true(s1 < s2 && s2 < s3);

        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 3);
        assert_int_equal(seen.seqs[0], s1);
        assert_string_equal(seen.values[0], "one");
        assert_string_equal(seen.values[1], "two");
        assert_string_equal(seen.values[2], "three");
        assert_int_equal(seen.headers_len[2], 9);

        assert_int_equal(pd_store_outbox_del(fx->st, s2), 0);
        assert_int_equal(pd_store_outbox_del(fx->st, s2), 0); /* again: ok */
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 2);
        assert_string_equal(seen.values[0], "one");
        assert_string_equal(seen.values[1], "three");

        /* A new record comes after every record still there, so the
         * outbox replays in the order records were added. (A deleted
         * seq may be handed out again: its record was delivered.) */
        assert_int_equal(pd_store_outbox_del(fx->st, s3), 0);
        s4 = outbox_add(fx->st, "four");
        assert_true(s4 > s1);

        /* No headers, empty value: both come back empty. */
        empty.topic = "postdeploy.results";
        empty.key   = "acme/core.reindex";
        assert_int_equal(pd_store_outbox_add(fx->st, &empty), 0);
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 3);
        assert_int_equal(seen.headers_len[2], 0);
        assert_string_equal(seen.values[2], "");
}

static void test_outbox_range_delete_keeps_the_rest(void **state) {
        fx_t *fx           = *state;
        outbox_seen_t seen = {0};
        int64_t s[4];

        fx->st = open_ok(fx->path);
        for (int i = 0; i < 4; i++)
                s[i] = outbox_add(fx->st, i == 3 ? "four" : "one");
        assert_int_equal(pd_store_outbox_del_range(fx->st, s[0], s[2]), 0);
        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 1);
        assert_int_equal(seen.seqs[0], s[3]);
        assert_string_equal(seen.values[0], "four");
}

/* ---- parts of a transaction (group commit) ---- */

static void test_an_undone_part_leaves_the_others(void **state) {
        fx_t *fx           = *state;
        outbox_seen_t seen = {0};

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_begin(fx->st), 0);
        assert_int_equal(pd_store_in_txn(fx->st), 1);
        assert_int_equal(pd_store_part_begin(fx->st), 0);
        outbox_add(fx->st, "kept");
        assert_int_equal(pd_store_part_end(fx->st), 0);
        assert_int_equal(pd_store_part_begin(fx->st), 0);
        outbox_add(fx->st, "undone");
        assert_int_equal(pd_store_part_undo(fx->st), 0);
        assert_int_equal(pd_store_in_txn(fx->st), 1);
        assert_int_equal(pd_store_commit(fx->st), 0);
        assert_int_equal(pd_store_in_txn(fx->st), 0);

        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 1);
        assert_string_equal(seen.values[0], "kept");
}

static void test_a_second_handle_checkpoints(void **state) {
        fx_t *fx = *state;
        char errstr[512];
        pd_store_t *ck;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_checkpoints_manual(fx->st), 0);
        ck = pd_store_open(fx->path, 0, errstr, sizeof(errstr));
        assert_non_null(ck);
        assert_int_equal(pd_store_begin(fx->st), 0);
        outbox_add(fx->st, "one");
        assert_int_equal(pd_store_commit(fx->st), 0);
        assert_int_equal(pd_store_checkpoint(ck), 0);
        pd_store_close(ck);
}

/* The committer's checkpoint runs while the next batch is open, so it
 * never lets the WAL start over (the WAL grew without end under load);
 * one on the writing handle, between a commit and the next begin, does
 * (consumer/txn.c, batch_wal_restart). */
static void test_the_wal_starts_over_after_the_writer_checkpoints(
    void **state) {
        fx_t *fx = *state;
        int log = -1, done = -1, grown;
        char errstr[512];
        pd_store_t *ck;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_checkpoints_manual(fx->st), 0);
        ck = pd_store_open(fx->path, 0, errstr, sizeof(errstr));
        assert_non_null(ck);
        assert_int_equal(pd_store_begin(fx->st), 0);
        for (int i = 0; i < 20; i++) {
                outbox_add(fx->st, "a batch");
                assert_int_equal(pd_store_commit(fx->st), 0);
                assert_int_equal(pd_store_begin(fx->st), 0);
                /* Every frame committed is copied, but a batch is open. */
                assert_int_equal(pd_store_checkpoint_count(ck, &log, &done), 0);
                assert_int_equal(log, done);
        }
        outbox_add(fx->st, "a batch");
        assert_int_equal(pd_store_commit(fx->st), 0);
        assert_int_equal(pd_store_checkpoint_count(ck, &log, &done), 0);
        grown = log;
        assert_true(grown >= 20); /* it only grew */

        assert_int_equal(pd_store_checkpoint_count(fx->st, &log, &done), 0);
        assert_int_equal(log, done);
        assert_int_equal(pd_store_begin(fx->st), 0);
        outbox_add(fx->st, "the next batch");
        assert_int_equal(pd_store_commit(fx->st), 0);
        assert_int_equal(pd_store_checkpoint_count(ck, &log, &done), 0);
        assert_true(log < grown); /* from its first frame again */
        pd_store_close(ck);
}

/* ---- transactions ---- */

static void test_rollback_leaves_nothing(void **state) {
        fx_t *fx           = *state;
        pd_run_t run       = run_of("core.reindex", "t1", 1);
        outbox_seen_t seen = {0};
        int done           = -1;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_begin(fx->st), 0);
        assert_int_equal(pd_store_run_begin(fx->st, &run), 0);
        end_run(fx->st, &run, PD_ST_SUCCEEDED);
        assert_int_equal(pd_store_event_mark(fx->st, "cli", "t1", "acme", 1),
                         0);
        outbox_add(fx->st, "one");
        assert_int_equal(pd_store_rollback(fx->st), 0);

        assert_false(state_of(fx->st, "core.reindex").known);
        assert_int_equal(pd_store_event_done(fx->st, "cli", "t1", &done), 0);
        assert_false(done);
        assert_int_equal(pd_store_outbox_foreach(fx->st, outbox_cb, &seen), 0);
        assert_int_equal(seen.cnt, 0);
}

static void test_commit_without_begin_is_an_error(void **state) {
        fx_t *fx = *state;

        fx->st = open_ok(fx->path);
        assert_int_equal(pd_store_commit(fx->st), -1);
        assert_string_not_equal(pd_store_errmsg(fx->st), "");
        assert_false(pd_store_retriable(fx->st));
}

/* ---- error classification ---- */

static void test_disk_full_is_retriable(void **state) {
        fx_t *fx            = *state;
        size_t big          = 4 << 20;
        char *value         = calloc(1, big);
        pd_outbox_rec_t rec = {0};
        struct rlimit saved, lim;
        void (*old_handler)(int);

        assert_non_null(value);
        fx->st = open_ok(fx->path);

        /* A file size limit makes the writes fail like a full disk, and
         * only for this process. */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
        lim          = saved;
        lim.rlim_cur = 256 * 1024;
        old_handler  = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

        rec.topic     = "postdeploy.results";
        rec.key       = "acme/core.reindex";
        rec.value     = value;
        rec.value_len = big;
        assert_int_equal(pd_store_outbox_add(fx->st, &rec), -1);
        assert_true(pd_store_retriable(fx->st));
        assert_string_not_equal(pd_store_errmsg(fx->st), "");

        /* Once space is back, the same call succeeds. */
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        signal(SIGXFSZ, old_handler);
        assert_int_equal(pd_store_outbox_add(fx->st, &rec), 0);
        free(value);
}

static void test_a_constraint_error_is_not_retriable(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = run_of("core.reindex", "t1", 1);

        fx->st     = open_ok(fx->path);
        run.tenant = NULL;
        assert_int_equal(pd_store_run_begin(fx->st, &run), -1);
        assert_false(pd_store_retriable(fx->st));
        assert_non_null(strstr(pd_store_errmsg(fx->st), "NOT NULL"));
}

/* ---- retention ---- */

/* A finished run of action in tenant acme, begun and ended at at_ms. */
static pd_run_t old_run(pd_store_t *st, const char *action,
                        const char *trigger_id, int64_t at_ms,
                        pd_status_t status) {
        pd_run_t run = run_of(action, trigger_id, 1);

        run.started_at = at_ms;
        assert_int_equal(pd_store_run_begin(st, &run), 0);
        end_run(st, &run, status);
        return run;
}

/* Whether a finished run of (acme, action) caused by trigger_id is kept. */
static int has_trigger(pd_store_t *st, const char *action,
                       const char *trigger_id) {
        pd_status_t status;
        int32_t attempt;
        int found = -1;

        assert_int_equal(
            pd_store_trigger_outcome(st, "acme", action, "postdeploy-cli/host",
                                     trigger_id, &found, &status, &attempt),
            0);
        return found;
}

static int event_is_done(pd_store_t *st, const char *id) {
        int done = -1;

        assert_int_equal(pd_store_event_done(st, "src", id, &done), 0);
        return done;
}

static int first_unfinished_cb(const pd_run_t *run, void *opaque) {
        int64_t *idp = opaque;

        assert_int_equal(*idp, 0); /* only one */
        *idp = run->id;
        return 0;
}

static void assert_same_state(pd_action_state_t a, pd_action_state_t b) {
        assert_int_equal(a.known, b.known);
        assert_int_equal(a.ever_succeeded, b.ever_succeeded);
        assert_int_equal(a.running, b.running);
        assert_int_equal(a.last_status, b.last_status);
        assert_int_equal(a.last_attempt, b.last_attempt);
}

static void test_prune_keeps_what_pending_is_made_of(void **state) {
        static const char *const actions[] = {"core.reindex", "core.backfill",
                                              "core.skipped", "core.reset",
                                              "core.recent",  "core.never"};
        const int64_t cutoff               = 1000000;
        pd_action_state_t before[6];
        pd_run_t stuck, run;
        int64_t unfinished = 0;
        fx_t *fx           = *state;
        int deleted        = -1;

        fx->st = open_ok(fx->path);
        /* Succeeded once long ago, failed since: done, last FAILED. */
        old_run(fx->st, "core.reindex", "r1", 1000, PD_ST_SUCCEEDED);
        old_run(fx->st, "core.reindex", "r2", 2000, PD_ST_FAILED);
        old_run(fx->st, "core.reindex", "r3", 3000, PD_ST_FAILED);
        /* Never succeeded, and a run left unfinished by a crash. */
        old_run(fx->st, "core.backfill", "b1", 1000, PD_ST_FAILED);
        old_run(fx->st, "core.backfill", "b2", 2000, PD_ST_TIMED_OUT);
        stuck            = run_of("core.backfill", "b3", 3);
        stuck.started_at = 4000;
        assert_int_equal(pd_store_run_begin(fx->st, &stuck), 0);
        /* Skipped after a failure; succeeded, then reset. */
        old_run(fx->st, "core.skipped", "s1", 1000, PD_ST_FAILED);
        assert_int_equal(
            pd_store_action_set_done(fx->st, "acme", "core.skipped", 1), 0);
        old_run(fx->st, "core.reset", "x1", 1000, PD_ST_SUCCEEDED);
        old_run(fx->st, "core.reset", "x2", 2000, PD_ST_SUCCEEDED);
        assert_int_equal(
            pd_store_action_set_done(fx->st, "acme", "core.reset", 0), 0);
        /* Old and new runs: only the old go. */
        old_run(fx->st, "core.recent", "n1", 1000, PD_ST_FAILED);
        old_run(fx->st, "core.recent", "n2", cutoff + 1, PD_ST_FAILED);
        old_run(fx->st, "core.recent", "n3", cutoff + 2, PD_ST_SUCCEEDED);
        assert_int_equal(
            pd_store_event_mark(fx->st, "src", "old", "acme", cutoff - 1), 0);
        assert_int_equal(
            pd_store_event_mark(fx->st, "src", "new", "acme", cutoff), 0);
        for (int i = 0; i < 6; i++)
                before[i] = state_of(fx->st, actions[i]);

        assert_int_equal(pd_store_prune(fx->st, cutoff, 100, &deleted), 0);
        /* r1, r2, b1, x1, n1 and the old event. */
        assert_int_equal(deleted, 6);
        for (int i = 0; i < 6; i++)
                assert_same_state(state_of(fx->st, actions[i]), before[i]);
        assert_false(has_trigger(fx->st, "core.reindex", "r1"));
        assert_false(has_trigger(fx->st, "core.reindex", "r2"));
        assert_true(has_trigger(fx->st, "core.reindex", "r3")); /* newest */
        assert_false(has_trigger(fx->st, "core.backfill", "b1"));
        assert_true(has_trigger(fx->st, "core.backfill", "b2"));
        assert_true(has_trigger(fx->st, "core.skipped", "s1"));
        assert_false(has_trigger(fx->st, "core.reset", "x1"));
        assert_true(has_trigger(fx->st, "core.reset", "x2"));
        assert_false(has_trigger(fx->st, "core.recent", "n1"));
        assert_true(has_trigger(fx->st, "core.recent", "n2"));
        assert_true(has_trigger(fx->st, "core.recent", "n3"));
        assert_false(event_is_done(fx->st, "old"));
        assert_true(event_is_done(fx->st, "new"));
        /* The run a crash left is still there to recover. */
        assert_int_equal(
            pd_store_runs_unfinished(fx->st, first_unfinished_cb, &unfinished),
            0);
        assert_int_equal(unfinished, stuck.id);

        /* Nothing is left to prune, and the history goes on as before. */
        assert_int_equal(pd_store_prune(fx->st, cutoff, 100, &deleted), 0);
        assert_int_equal(deleted, 0);
        end_run(fx->st, &stuck, PD_ST_SUCCEEDED);
        assert_true(state_of(fx->st, "core.backfill").ever_succeeded);
        run = old_run(fx->st, "core.reindex", "r4", cutoff + 3, PD_ST_FAILED);
        assert_int_equal(state_of(fx->st, "core.reindex").last_attempt,
                         run.attempt);
}

static void test_prune_goes_oldest_first_a_slice_at_a_time(void **state) {
        fx_t *fx    = *state;
        int deleted = -1;
        char id[16];

        fx->st = open_ok(fx->path);
        /* Inserted newest first: the order is the age, not the row id. So
         * t0, the oldest by its times, is the run ended last: the newest
         * finished run of the action, which is never pruned. */
        for (int i = 9; i >= 0; i--) {
                snprintf(id, sizeof(id), "t%d", i);
                old_run(fx->st, "core.reindex", id, 1000 * (i + 1),
                        PD_ST_SUCCEEDED);
                assert_int_equal(pd_store_event_mark(fx->st, "src", id, "acme",
                                                     1000 * (i + 1)),
                                 0);
        }
        assert_int_equal(pd_store_prune(fx->st, 100000, 3, &deleted), 0);
        assert_int_equal(deleted, 6); /* 3 runs, 3 events */
        for (int i = 0; i < 10; i++) {
                snprintf(id, sizeof(id), "t%d", i);
                assert_int_equal(has_trigger(fx->st, "core.reindex", id),
                                 i == 0 || i >= 4);
                assert_int_equal(event_is_done(fx->st, id), i >= 3);
        }
        for (int pass = 0; pass < 2; pass++) {
                assert_int_equal(pd_store_prune(fx->st, 100000, 3, &deleted),
                                 0);
                assert_int_equal(deleted, 6);
        }
        assert_int_equal(pd_store_prune(fx->st, 100000, 3, &deleted), 0);
        assert_int_equal(deleted, 1); /* the last event; t0's run stays */
        assert_true(has_trigger(fx->st, "core.reindex", "t0"));
        assert_int_equal(pd_store_prune(fx->st, 100000, 3, &deleted), 0);
        assert_int_equal(deleted, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
            T(test_open_creates_the_file_0600_in_folders_0700),
            T(test_open_keeps_an_existing_folder_as_it_is),
            T(test_open_says_why_it_failed),
            T(test_open_refuses_a_newer_schema),
            T(test_a_store_from_before_pauses_upgrades_and_keeps_them),
            T(test_a_store_from_before_parts_upgrades_its_outbox),
            T(test_a_store_from_before_whole_runs_upgrades_its_trigger),
            T(test_reopen_keeps_everything),
            T(test_event_mark_is_idempotent),
            T(test_action_unknown_until_its_first_run),
            T(test_run_begin_makes_the_action_known_and_running),
            T(test_run_end_records_the_outcome),
            T(test_success_is_remembered_after_a_later_failure),
            T(test_only_success_counts_as_succeeded),
            T(test_skip_marks_done_and_reset_makes_pending_again),
            T(test_store_id_is_kept_and_unique),
            T(test_a_late_end_does_not_hide_a_newer_outcome),
            T(test_a_run_ends_only_once),
            T(test_a_run_recorded_whole_counts_as_begun_and_ended),
            T(test_trigger_runs_counts_the_commands_it_started),
            T(test_a_trigger_is_seen_once_any_run_names_it),
            T(test_trigger_outcome_is_its_latest_finished_run),
            T(test_unfinished_runs_survive_a_crash),
            T(test_unfinished_runs_stop_at_the_callbacks_answer),
            T(test_outbox_replays_in_order_until_deleted),
            T(test_outbox_range_delete_keeps_the_rest),
            T(test_an_undone_part_leaves_the_others),
            T(test_a_second_handle_checkpoints),
            T(test_the_wal_starts_over_after_the_writer_checkpoints),
            T(test_rollback_leaves_nothing),
            T(test_commit_without_begin_is_an_error),
            T(test_disk_full_is_retriable),
            T(test_a_constraint_error_is_not_retriable),
            T(test_prune_keeps_what_pending_is_made_of),
            T(test_prune_goes_oldest_first_a_slice_at_a_time),
#undef T
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
