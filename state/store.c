/*
 * store.c - the reactor's durable state in SQLite (see store.h).
 *
 * The file is opened in WAL mode so that readers never block the writer and
 * a commit costs one append (plus an fsync with synchronous=FULL). The
 * schema is versioned with PRAGMA user_version and migrated forward at open,
 * inside one write transaction, so two processes opening a new file at once
 * cannot both create it.
 *
 * The actions table is derived from runs by two triggers: inserting a run
 * makes its (tenant, action) known, and giving a run its status moves the
 * action's last_run_id forward and sets ever_succeeded on a success. Keeping
 * that rule in the schema means a run and its action state can never be
 * written apart, in or out of an explicit transaction.
 *
 * Every statement is prepared once at open and reset after each use, so the
 * hot path parses no SQL.
 */
#include "state/store_int.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <sqlite3.h>

#include "common/path.h"
#include "common/strerror.h"
#include "common/xalloc.h"

/* Statuses are stored as integers: their values are part of the file
 * format and must never change. */
_Static_assert(PD_ST_SUCCEEDED == 0 && PD_ST_FAILED == 1 &&
                   PD_ST_TIMED_OUT == 2 && PD_ST_INTERRUPTED == 3 &&
                   PD_ST_SKIPPED == 4 && PD_ST_REJECTED == 5,
               "pd_status_t values are stored on disk");

/*
 * Schema migrations: store_migrations[v] takes a file from version v to
 * v + 1. Append only; never edit a migration that has shipped.
 */
static const char *const store_migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE runs ("
    "        id             INTEGER PRIMARY KEY,"
    "        tenant         TEXT NOT NULL,"
    "        action         TEXT NOT NULL,"
    "        release        TEXT,"
    "        trigger_source TEXT,"
    "        trigger_id     TEXT,"
    "        attempt        INTEGER NOT NULL,"
    "        status         INTEGER," /* pd_status_t, NULL: running */
    "        exit_code      INTEGER,"
    "        error          TEXT,"
    "        output_tail    TEXT,"
    "        started_at     INTEGER NOT NULL,"
    "        finished_at    INTEGER,"
    "        duration_ms    INTEGER"
    ");"
    /* A redelivered event looks up what its trigger already did. */
    "CREATE INDEX runs_by_trigger ON runs (trigger_id, trigger_source);"
    /* Partial: only the few runs in flight, for the running flag and
     * for recovery after a crash. */
    "CREATE INDEX runs_unfinished ON runs (tenant, action)"
    "        WHERE status IS NULL;"
    "CREATE TABLE actions ("
    "        tenant         TEXT NOT NULL,"
    "        action         TEXT NOT NULL,"
    "        last_run_id    INTEGER REFERENCES runs (id),"
    "        ever_succeeded INTEGER NOT NULL DEFAULT 0,"
    "        PRIMARY KEY (tenant, action)"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER runs_begin AFTER INSERT ON runs BEGIN"
    "        INSERT INTO actions (tenant, action)"
    "        VALUES (NEW.tenant, NEW.action)"
    "        ON CONFLICT (tenant, action) DO NOTHING;"
    "END;"
    /* max() keeps last_run_id on the newest finished run even when an
     * older run is ended late (recovery after a crash). */
    "CREATE TRIGGER runs_end AFTER UPDATE OF status ON runs"
    "        WHEN OLD.status IS NULL AND NEW.status IS NOT NULL BEGIN"
    "        UPDATE actions SET"
    "                last_run_id = max(coalesce(last_run_id, 0), NEW.id),"
    "                ever_succeeded = ever_succeeded OR NEW.status = 0"
    "        WHERE tenant = NEW.tenant AND action = NEW.action;"
    "END;"
    "CREATE TABLE events ("
    "        source  TEXT NOT NULL,"
    "        id      TEXT NOT NULL,"
    "        tenant  TEXT,"
    "        done_at INTEGER NOT NULL,"
    "        PRIMARY KEY (source, id)"
    ") WITHOUT ROWID;"
    /* AUTOINCREMENT: a seq is never reused, so a late delivery report
     * can never delete a newer record that took its number. */
    "CREATE TABLE outbox ("
    "        seq     INTEGER PRIMARY KEY AUTOINCREMENT,"
    "        topic   TEXT NOT NULL,"
    "        key     TEXT,"
    "        headers BLOB,"
    "        value   BLOB"
    ");",
    /* 1 -> 2: an id of its own, so what lives beside the store (the
     * supervisor's outcomes, keyed by run id) can never be mistaken
     * for a new store's runs after the file was deleted. */
    "CREATE TABLE meta ("
    "        key   TEXT PRIMARY KEY,"
    "        value TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO meta (key, value)"
    "        VALUES ('store_id', lower(hex(randomblob(8))));",
    /* 2 -> 3: outbox.seq without AUTOINCREMENT, which wrote a page of
     * sqlite_sequence at every insert. A seq may now be reused once
     * its record is deleted, which is harmless: a record is deleted
     * only after the one delivery report its produce gets, and a
     * process never produces a seq twice. */
    "CREATE TABLE outbox3 ("
    "        seq     INTEGER PRIMARY KEY,"
    "        topic   TEXT NOT NULL,"
    "        key     TEXT,"
    "        headers BLOB,"
    "        value   BLOB"
    ");"
    "INSERT INTO outbox3 (seq, topic, key, headers, value)"
    "        SELECT seq, topic, key, headers, value FROM outbox;"
    "DROP TABLE outbox;"
    "ALTER TABLE outbox3 RENAME TO outbox;"
    "DELETE FROM sqlite_sequence WHERE name = 'outbox';",
    /* 3 -> 4: the run's name at the supervisor, random, so it never
     * comes back: a rowid can, after a power loss took the last
     * commits (state_sync = false), and the supervisor would then
     * answer a new run with the outcome of the lost one. Rows from
     * before keep their id as that name. */
    "ALTER TABLE runs ADD COLUMN sup_id INTEGER;",
    /* 4 -> 5: retention (pd_store_prune). Both tables are walked
     * oldest first, a bounded slice at a time, so the pass costs the
     * rows it deletes, not the history it keeps. actions.last_run_id
     * is a foreign key into runs: without its index every deleted run
     * would scan actions to check nothing points at it. */
    "CREATE INDEX runs_by_finished ON runs (finished_at)"
    "        WHERE status IS NOT NULL;"
    "CREATE INDEX events_by_done ON events (done_at);"
    "CREATE INDEX actions_by_last_run ON actions (last_run_id);",
    /* 5 -> 6: pauses (postdeploy pause), kept so that a restart does
     * not run what an operator held. tenant '*': every tenant. */
    "CREATE TABLE paused ("
    "        tenant       TEXT PRIMARY KEY,"
    "        requested_by TEXT NOT NULL,"
    "        paused_at    INTEGER NOT NULL"
    ");",
    /* 6 -> 7: the partition each result record goes to: that of the
     * event it answers (co-partitioning, so the owner of an events
     * partition finds its tenants' results in the same results
     * partition). NULL: the partitioner chooses (the registry). */
    "ALTER TABLE outbox ADD COLUMN part INTEGER;",
    /* 7 -> 8: restore (state/store_restore.c). runs.origin is the ce_id
     * of the action.finished a run was restored from (NULL: run here),
     * unique so that applying a record twice adds nothing. partitions
     * holds each results partition's restore checkpoint: the next offset
     * to read, and dirty once what this store holds of the partition may
     * be ahead of the topic (lost): the next restore starts over.
     * tenant_parts: the partition of each tenant, so that a dirty
     * restore knows whose rows to delete. */
    "ALTER TABLE runs ADD COLUMN origin TEXT;"
    "CREATE UNIQUE INDEX runs_by_origin ON runs (origin)"
    "        WHERE origin IS NOT NULL;"
    "CREATE TABLE partitions ("
    "        part        INTEGER PRIMARY KEY,"
    "        next_offset INTEGER NOT NULL,"
    "        dirty       INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE tenant_parts ("
    "        tenant TEXT PRIMARY KEY,"
    "        part   INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX tenant_parts_by_part ON tenant_parts (part);",
    /* 8 -> 9: a run inserted with its outcome (an in-process run
     * written whole, a restored run) changes its action's state in
     * the trigger's one upsert, as runs_end does for an update: the
     * action row is found once, not by the trigger and then by a
     * second statement (about 3 us of 33 per in-process action). A
     * run inserted running (no status) only adds its action. */
    "DROP TRIGGER runs_begin;"
    "CREATE TRIGGER runs_begin AFTER INSERT ON runs BEGIN"
    "        INSERT INTO actions (tenant, action, last_run_id,"
    "                ever_succeeded)"
    "        VALUES (NEW.tenant, NEW.action,"
    "                CASE WHEN NEW.status IS NULL THEN NULL"
    "                ELSE NEW.id END,"
    "                coalesce(NEW.status = 0, 0))"
    "        ON CONFLICT (tenant, action) DO UPDATE SET"
    "                last_run_id = max(coalesce(last_run_id, 0),"
    "                        excluded.last_run_id),"
    "                ever_succeeded = ever_succeeded"
    "                        OR excluded.ever_succeeded"
    "        WHERE excluded.last_run_id IS NOT NULL;"
    "END;",
};
#define PD_STORE_VERSION                                                       \
        ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))


static const char *const store_sql[PD_STMT__CNT] = {
    /* IMMEDIATE takes the write lock up front: a busy store then fails
     * at begin, where retrying is simple, not halfway through. */
    [PD_STMT_BEGIN]       = "BEGIN IMMEDIATE",
    [PD_STMT_COMMIT]      = "COMMIT",
    [PD_STMT_ROLLBACK]    = "ROLLBACK",
    [PD_STMT_SAVEPOINT]   = "SAVEPOINT pd_part",
    [PD_STMT_RELEASE]     = "RELEASE pd_part",
    [PD_STMT_ROLLBACK_TO] = "ROLLBACK TO pd_part",
    [PD_STMT_EVENT_DONE] = "SELECT 1 FROM events WHERE source = ?1 AND id = ?2",
    [PD_STMT_PAUSE_SET] =
        "INSERT INTO paused (tenant, requested_by, paused_at)"
        " VALUES (?1, ?2, ?3)"
        " ON CONFLICT (tenant) DO UPDATE SET requested_by = ?2, paused_at = ?3",
    [PD_STMT_PAUSE_CLEAR]     = "DELETE FROM paused WHERE tenant = ?1",
    [PD_STMT_PAUSE_CLEAR_ALL] = "DELETE FROM paused",
    [PD_STMT_PAUSE_LIST] =
        "SELECT tenant, requested_by FROM paused ORDER BY tenant",
    [PD_STMT_EVENT_MARK] =
        "INSERT INTO events (source, id, tenant, done_at)"
        " VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (source, id) DO NOTHING",
    [PD_STMT_RUN_BEGIN] =
        "INSERT INTO runs (tenant, action, release, trigger_source,"
        " trigger_id, attempt, started_at, sup_id, id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* A run written whole once it is over; its runs_begin trigger
     * adds the action and does what runs_end does for an update. */
    [PD_STMT_RUN_RECORD] =
        "INSERT INTO runs (tenant, action, release, trigger_source,"
        " trigger_id, attempt, started_at, sup_id, id, status,"
        " exit_code, error, output_tail, finished_at, duration_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
        " ?13, ?14, ?15)",
    [PD_STMT_RUN_END] =
        "UPDATE runs SET status = ?2, exit_code = ?3, error = ?4,"
        " output_tail = ?5, finished_at = ?6, duration_ms = ?7"
        " WHERE id = ?1 AND status IS NULL",
    [PD_STMT_ACTION_STATE] =
        "SELECT a.ever_succeeded, r.status, r.attempt,"
        " EXISTS (SELECT 1 FROM runs u WHERE u.tenant = a.tenant"
        "         AND u.action = a.action AND u.status IS NULL)"
        " FROM actions a LEFT JOIN runs r ON r.id = a.last_run_id"
        " WHERE a.tenant = ?1 AND a.action = ?2",
    [PD_STMT_ACTION_SET_DONE] =
        "INSERT INTO actions (tenant, action, ever_succeeded)"
        " VALUES (?1, ?2, ?3)"
        " ON CONFLICT (tenant, action) DO UPDATE SET"
        " ever_succeeded = excluded.ever_succeeded",
    /* A run restored from another reactor's record has no trigger
     * source (action.finished names only the trigger's id): it matches
     * by id. A run of ours must match both. */
    [PD_STMT_TRIGGER_OUTCOME] =
        "SELECT status, attempt FROM runs"
        " WHERE trigger_id = ?4 AND (trigger_source = ?3"
        " OR (trigger_source IS NULL AND origin IS NOT NULL))"
        " AND tenant = ?1 AND action = ?2 AND status IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
    [PD_STMT_TRIGGER_RUNS] =
        "SELECT count(*) FROM runs"
        " WHERE trigger_id = ?4 AND trigger_source = ?3"
        " AND tenant = ?1 AND action = ?2 AND sup_id IS NOT NULL",
    /* One probe of runs_by_trigger for a whole event: a new trigger,
     * by far the most common, has no runs at all, and then none of
     * its actions needs TRIGGER_OUTCOME or TRIGGER_RUNS. */
    [PD_STMT_TRIGGER_SEEN] = "SELECT 1 FROM runs WHERE trigger_id = ?1 LIMIT 1",
    /* The iterations fetch one row at a time after the last key seen,
     * so the callback may write to the same tables meanwhile. The
     * partial index holds only the runs in flight; without INDEXED BY
     * the planner would walk the whole history by rowid. */
    [PD_STMT_RUN_NEXT_UNFINISHED] =
        "SELECT id, tenant, action, release, trigger_source,"
        " trigger_id, attempt, started_at, coalesce(sup_id, id)"
        " FROM runs INDEXED BY runs_unfinished"
        " WHERE status IS NULL AND id > ?1 ORDER BY id LIMIT 1",
    [PD_STMT_OUTBOX_ADD] =
        "INSERT INTO outbox (topic, key, headers, value, part)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [PD_STMT_OUTBOX_DEL] = "DELETE FROM outbox WHERE seq = ?1",
    [PD_STMT_OUTBOX_DEL_RANGE] =
        "DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2",
    [PD_STMT_OUTBOX_NEXT] =
        "SELECT seq, topic, key, headers, value, part FROM outbox"
        " WHERE seq > ?1 ORDER BY seq LIMIT 1",
    [PD_STMT_OUTBOX_DEL_PART] = "DELETE FROM outbox WHERE part = ?1",
    /* What "pending" is made of must survive: the actions table
     * (ever_succeeded), the run its last_run_id names (the last
     * status and attempt), and every run without a status (the
     * running flag, recovery after a crash). */
    [PD_STMT_PRUNE_RUNS] =
        "DELETE FROM runs WHERE id IN ("
        " SELECT r.id FROM runs r INDEXED BY runs_by_finished"
        " WHERE r.status IS NOT NULL AND r.finished_at < ?1"
        " AND r.id IS NOT (SELECT a.last_run_id FROM actions a"
        "   WHERE a.tenant = r.tenant AND a.action = r.action)"
        " ORDER BY r.finished_at LIMIT ?2)",
    [PD_STMT_PRUNE_EVENTS] =
        "DELETE FROM events WHERE (source, id) IN ("
        " SELECT source, id FROM events INDEXED BY events_by_done"
        " WHERE done_at < ?1 ORDER BY done_at LIMIT ?2)",
};


/* How long a statement waits for another connection's lock before it
 * fails with SQLITE_BUSY, and how often the wait asks whether to give up. */
#define PD_STORE_BUSY_MS      5000
#define PD_STORE_BUSY_STEP_MS 10

/*
 * SQLite's busy handler (the thread of the statement that waits): what
 * sqlite3_busy_timeout(5000) did, in short steps, so that a caller who is
 * stopping learns of it within one step instead of after 5 s.
 */
static int store_busy(void *arg, int count) {
        pd_store_t *st = arg;
        struct timespec now;
        int64_t waited;

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (count == 0)
                st->busy_since = now;
        waited = (int64_t)(now.tv_sec - st->busy_since.tv_sec) * 1000 +
                 (now.tv_nsec - st->busy_since.tv_nsec) / 1000000;
        if (waited >= PD_STORE_BUSY_MS)
                return 0;
        if (st->give_up && st->give_up(st->give_up_opaque))
                return 0;
        sqlite3_sleep(PD_STORE_BUSY_STEP_MS);
        return 1;
}

void pd_store_set_give_up(pd_store_t *st, int (*give_up)(void *opaque),
                          void *opaque) {
        st->give_up        = give_up;
        st->give_up_opaque = opaque;
}

int pd__store_fail(pd_store_t *st, int rc) {
        st->errcode = rc & 0xff;
        snprintf(st->errmsg, sizeof(st->errmsg), "%s",
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        return -1;
}

int pd__store_failf(pd_store_t *st, const char *fmt, ...) {
        va_list ap;

        st->errcode = 0;
        va_start(ap, fmt);
        vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
        va_end(ap);
        return -1;
}

void pd__store_done(sqlite3_stmt *stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
}

int pd__store_exec(pd_store_t *st, sqlite3_stmt *stmt) {
        int rc = sqlite3_step(stmt);

        if (rc != SQLITE_DONE)
                pd__store_fail(st, rc);
        pd__store_done(stmt);
        return rc == SQLITE_DONE ? 0 : -1;
}

/* Binds a string, or NULL. The caller's string outlives the statement's
 * use, so SQLite need not copy it. */
void pd__store_bind_str(sqlite3_stmt *stmt, int idx, const char *s) {
        sqlite3_bind_text(stmt, idx, s, -1, SQLITE_STATIC);
}

static const char *store_col_str(sqlite3_stmt *stmt, int idx) {
        return (const char *)sqlite3_column_text(stmt, idx);
}

/*
 * Creates the missing folders above the file at path, each 0700, the way
 * `mkdir -p` would. Returns 0, or -1 with errstr.
 */
static int store_mkparents(const char *path, char *errstr, size_t errstr_size) {
        char dir[4096];

        if (!pd_mkparents(path, dir, sizeof(dir)))
                return 0;
        snprintf(errstr, errstr_size, "cannot create folder %s: %s", dir,
                 pd_strerror(errno));
        return -1;
}

/* Runs one statement returning one row of one column, e.g. a PRAGMA.
 * Copies a text result into buf or an integer into *intp. */
static int store_query1(pd_store_t *st, const char *sql, char *buf, size_t size,
                        int *intp) {
        sqlite3_stmt *stmt = NULL;
        int rc;
        int ret = -1;

        rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK) {
                pd__store_fail(st, rc);
                goto out;
        }
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW) {
                if (rc == SQLITE_DONE)
                        pd__store_failf(st, "%s: no result", sql);
                else
                        pd__store_fail(st, rc);
                goto out;
        }
        if (buf) {
                const char *s = store_col_str(stmt, 0);

                snprintf(buf, size, "%s", s ? s : "");
        }
        if (intp)
                *intp = sqlite3_column_int(stmt, 0);
        ret = 0;
out:
        sqlite3_finalize(stmt);
        return ret;
}

/* Runs SQL text that returns no rows (one or several statements). */
static int store_exec_sql(pd_store_t *st, const char *sql) {
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : pd__store_fail(st, rc);
}

/*
 * Brings the schema to PD_STORE_VERSION. The version is read inside the
 * write transaction, so a concurrent opener waits and then finds the work
 * done.
 */
static int store_migrate(pd_store_t *st) {
        char sql[64];
        int version;
        int ret = -1;

        if (store_exec_sql(st, "BEGIN IMMEDIATE"))
                return -1;
        if (store_query1(st, "PRAGMA user_version", NULL, 0, &version))
                goto out;
        if (version > PD_STORE_VERSION) {
                pd__store_failf(st,
                                "schema version %d is newer than this "
                                "postdeploy knows (%d); upgrade postdeploy",
                                version, PD_STORE_VERSION);
                goto out;
        }
        for (int v = version; v < PD_STORE_VERSION; v++)
                if (store_exec_sql(st, store_migrations[v]))
                        goto out;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
                 PD_STORE_VERSION);
        if (version < PD_STORE_VERSION && store_exec_sql(st, sql))
                goto out;
        ret = store_exec_sql(st, "COMMIT");
out:
        /* Keeps the first error: the rollback's own is of no interest. */
        if (ret)
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
}

/* Everything after sqlite3_open_v2: pragmas, schema, statements. */
static int store_setup(pd_store_t *st, const char *path, int sync_full) {
        char mode[16], num[32];
        int rc;

        rc = sqlite3_extended_result_codes(st->db, 1);
        if (rc == SQLITE_OK)
                rc = sqlite3_busy_handler(st->db, store_busy, st);
        if (rc != SQLITE_OK)
                return pd__store_fail(st, rc);
        if (store_query1(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode),
                         NULL))
                return -1;
        /* An in-memory database (tests) cannot be in WAL mode. */
        if (strcmp(mode, "wal") && strcmp(path, ":memory:"))
                return pd__store_failf(st, "cannot use WAL (journal mode %s)",
                                       mode);
        if (store_exec_sql(st, sync_full ? "PRAGMA synchronous = FULL"
                                         : "PRAGMA synchronous = NORMAL") ||
            store_exec_sql(st, "PRAGMA foreign_keys = ON") ||
            store_migrate(st) ||
            store_query1(st, "SELECT value FROM meta WHERE key = 'store_id'",
                         st->id, sizeof(st->id), NULL) ||
            store_query1(st, "SELECT coalesce(max(id), 0) FROM runs", num,
                         sizeof(num), NULL))
                return -1;
        atomic_store(&st->last_run_id, strtoll(num, NULL, 10));
        for (int i = 0; i < PD_STMT__CNT; i++) {
                const char *sql =
                    store_sql[i] ? store_sql[i] : pd__store_restore_sql[i];

                rc = sqlite3_prepare_v3(st->db, sql, -1,
                                        SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                        NULL);
                if (rc != SQLITE_OK)
                        return pd__store_fail(st, rc);
        }
        return 0;
}

/*
 * Every change is a savepoint inside the open batch (consumer/txn.c), and
 * SQLite copies each page a savepoint changes into a sub-journal, in
 * memory up to 64 KiB, then in a temporary file that stays until the batch
 * commits: after one large part (the outbox trimmed by range) every later
 * part of the batch wrote each page it touched to that file, 3.5 pwrite
 * calls per in-process action. A 4 MiB bound keeps them in memory.
 * Process-wide, and only before SQLite initialises: the first store
 * opened sets it.
 */
#define PD_STORE_SUBJOURNAL_BYTES (4 << 20)

static void store_config_once(void) {
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, PD_STORE_SUBJOURNAL_BYTES);
}

pd_store_t *pd_store_open(const char *path, int sync_full, char *errstr,
                          size_t errstr_size) {
        static pthread_once_t config_once = PTHREAD_ONCE_INIT;
        pd_store_t *st                    = pd_xcalloc(1, sizeof(*st));
        mode_t old_umask;
        int err = -1;
        int rc;

        if (store_mkparents(path, errstr, errstr_size))
                goto out;
        pthread_once(&config_once, store_config_once);

        /*
         * umask 077 while SQLite creates files: the database, and its -wal
         * and -shm files (created at the first access), hold tenants' data
         * and must never be readable by others, whatever the caller's
         * umask. umask is per process: open the store before starting
         * threads that create files.
         */
        old_umask = umask(077);
        rc        = sqlite3_open_v2(
                   path, &st->db,
                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                   NULL);
        err = rc != SQLITE_OK ? pd__store_fail(st, rc)
                              : store_setup(st, path, sync_full);
        umask(old_umask);
        if (err) {
                int syserr = st->db ? sqlite3_system_errno(st->db) : 0;

                if (syserr && st->errcode)
                        snprintf(errstr, errstr_size, "%s: %s (%s)", path,
                                 st->errmsg, pd_strerror(syserr));
                else
                        snprintf(errstr, errstr_size, "%s: %s", path,
                                 st->errmsg);
        }
out:
        if (err) {
                pd_store_close(st);
                st = NULL;
        }
        return st;
}

void pd_store_close(pd_store_t *st) {
        if (!st)
                return;
        for (int i = 0; i < PD_STMT__CNT; i++)
                sqlite3_finalize(st->stmt[i]);
        /* Rolls back an open transaction; the last connection to close
         * checkpoints and removes the -wal file. */
        sqlite3_close(st->db);
        free(st);
}

const char *pd_store_errmsg(const pd_store_t *st) {
        return st->errmsg;
}

int pd_store_retriable(const pd_store_t *st) {
        switch (st->errcode) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_READONLY:
        case SQLITE_CANTOPEN:
                return 1;
        default:
                return 0;
        }
}

int pd_store_begin(pd_store_t *st) {
        return pd__store_exec(st, st->stmt[PD_STMT_BEGIN]);
}

int pd_store_commit(pd_store_t *st) {
        return pd__store_exec(st, st->stmt[PD_STMT_COMMIT]);
}

int pd_store_rollback(pd_store_t *st) {
        return pd__store_exec(st, st->stmt[PD_STMT_ROLLBACK]);
}

int pd_store_in_txn(pd_store_t *st) {
        return !sqlite3_get_autocommit(st->db);
}

int pd_store_part_begin(pd_store_t *st) {
        return pd__store_exec(st, st->stmt[PD_STMT_SAVEPOINT]);
}

int pd_store_part_end(pd_store_t *st) {
        return pd__store_exec(st, st->stmt[PD_STMT_RELEASE]);
}

int pd_store_part_undo(pd_store_t *st) {
        /* ROLLBACK TO keeps the savepoint open: release it too. */
        int ret = pd__store_exec(st, st->stmt[PD_STMT_ROLLBACK_TO]);

        return pd__store_exec(st, st->stmt[PD_STMT_RELEASE]) || ret ? -1 : 0;
}

/* Steps stmt (bound) once: *existsp is whether it found a row. Returns 0,
 * or -1 (the store failed). */
static int store_step_exists(pd_store_t *st, sqlite3_stmt *stmt, int *existsp) {
        int rc = sqlite3_step(stmt);

        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
                *existsp = rc == SQLITE_ROW;
        else
                pd__store_fail(st, rc);
        pd__store_done(stmt);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* ---- events ---- */

int pd_store_event_done(pd_store_t *st, const char *source, const char *id,
                        int *donep) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_EVENT_DONE];

        pd__store_bind_str(stmt, 1, source);
        pd__store_bind_str(stmt, 2, id);
        return store_step_exists(st, stmt, donep);
}

int pd_store_event_mark(pd_store_t *st, const char *source, const char *id,
                        const char *tenant, int64_t at_ms) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_EVENT_MARK];

        pd__store_bind_str(stmt, 1, source);
        pd__store_bind_str(stmt, 2, id);
        pd__store_bind_str(stmt, 3, tenant);
        sqlite3_bind_int64(stmt, 4, at_ms);
        return pd__store_exec(st, stmt);
}

/* ---- runs and action state ---- */

int pd_store_run_begin(pd_store_t *st, pd_run_t *run) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_RUN_BEGIN];

        pd__store_bind_str(stmt, 1, run->tenant);
        pd__store_bind_str(stmt, 2, run->action);
        pd__store_bind_str(stmt, 3, run->release);
        pd__store_bind_str(stmt, 4, run->trigger_source);
        pd__store_bind_str(stmt, 5, run->trigger_id);
        sqlite3_bind_int(stmt, 6, run->attempt);
        sqlite3_bind_int64(stmt, 7, run->started_at);
        if (run->sup_id)
                sqlite3_bind_int64(stmt, 8, run->sup_id);
        run->id = pd_store_run_id_next(st);
        sqlite3_bind_int64(stmt, 9, run->id);
        return pd__store_exec(st, stmt);
}

int64_t pd_store_run_id_next(pd_store_t *st) {
        return atomic_fetch_add(&st->last_run_id, 1) + 1;
}

int pd_store_run_record(pd_store_t *st, const pd_run_t *run) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_RUN_RECORD];

        assert(run->id);
        pd__store_bind_str(stmt, 1, run->tenant);
        pd__store_bind_str(stmt, 2, run->action);
        pd__store_bind_str(stmt, 3, run->release);
        pd__store_bind_str(stmt, 4, run->trigger_source);
        pd__store_bind_str(stmt, 5, run->trigger_id);
        sqlite3_bind_int(stmt, 6, run->attempt);
        sqlite3_bind_int64(stmt, 7, run->started_at);
        if (run->sup_id)
                sqlite3_bind_int64(stmt, 8, run->sup_id);
        sqlite3_bind_int64(stmt, 9, run->id);
        sqlite3_bind_int(stmt, 10, (int)run->status);
        if (run->has_exit_code)
                sqlite3_bind_int(stmt, 11, run->exit_code);
        pd__store_bind_str(stmt, 12, run->error);
        pd__store_bind_str(stmt, 13, run->output_tail);
        sqlite3_bind_int64(stmt, 14, run->finished_at);
        sqlite3_bind_int64(stmt, 15, run->duration_ms);
        /* The runs_begin trigger records the outcome in actions. */
        return pd__store_exec(st, stmt);
}

int pd_store_run_end(pd_store_t *st, const pd_run_t *run) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_RUN_END];

        sqlite3_bind_int64(stmt, 1, run->id);
        sqlite3_bind_int(stmt, 2, (int)run->status);
        if (run->has_exit_code)
                sqlite3_bind_int(stmt, 3, run->exit_code);
        pd__store_bind_str(stmt, 4, run->error);
        pd__store_bind_str(stmt, 5, run->output_tail);
        sqlite3_bind_int64(stmt, 6, run->finished_at);
        sqlite3_bind_int64(stmt, 7, run->duration_ms);
        if (pd__store_exec(st, stmt))
                return -1;
        /* Ending a run twice would rewrite history: refuse it. */
        if (sqlite3_changes(st->db) != 1)
                return pd__store_failf(st,
                                       "run %lld is unknown or already "
                                       "finished",
                                       (long long)run->id);
        return 0;
}

int pd_store_action_state(pd_store_t *st, const char *tenant,
                          const char *action, pd_action_state_t *as) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_ACTION_STATE];
        int rc;

        memset(as, 0, sizeof(*as));
        pd__store_bind_str(stmt, 1, tenant);
        pd__store_bind_str(stmt, 2, action);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                as->known          = 1;
                as->ever_succeeded = sqlite3_column_int(stmt, 0) != 0;
                /* Both stay 0 until a run has finished. */
                as->last_status  = (pd_status_t)sqlite3_column_int(stmt, 1);
                as->last_attempt = sqlite3_column_int(stmt, 2);
                as->running      = sqlite3_column_int(stmt, 3) != 0;
        } else if (rc != SQLITE_DONE) {
                pd__store_fail(st, rc);
        }
        pd__store_done(stmt);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int pd_store_pause_set(pd_store_t *st, const char *tenant, const char *by,
                       int64_t at) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_PAUSE_SET];
        int rc;

        pd__store_bind_str(stmt, 1, tenant ? tenant : PD_STORE_ALL_TENANTS);
        pd__store_bind_str(stmt, 2, by ? by : "");
        sqlite3_bind_int64(stmt, 3, at);
        rc = sqlite3_step(stmt);
        pd__store_done(stmt);
        return rc == SQLITE_DONE ? 0 : pd__store_fail(st, rc);
}

int pd_store_pause_clear(pd_store_t *st, const char *tenant) {
        sqlite3_stmt *stmt =
            st->stmt[tenant ? PD_STMT_PAUSE_CLEAR : PD_STMT_PAUSE_CLEAR_ALL];
        int rc;

        if (tenant)
                pd__store_bind_str(stmt, 1, tenant);
        rc = sqlite3_step(stmt);
        pd__store_done(stmt);
        return rc == SQLITE_DONE ? 0 : pd__store_fail(st, rc);
}

int pd_store_pause_list(pd_store_t *st, pd_strv_t *tenants, pd_strv_t *by) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_PAUSE_LIST];
        int rc;

        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                pd_strv_add(tenants,
                            (const char *)sqlite3_column_text(stmt, 0));
                pd_strv_add(by, (const char *)sqlite3_column_text(stmt, 1));
        }
        pd__store_done(stmt);
        return rc == SQLITE_DONE ? 0 : pd__store_fail(st, rc);
}

const char *pd_store_id(const pd_store_t *st) {
        return st->id;
}

int pd_store_action_set_done(pd_store_t *st, const char *tenant,
                             const char *action, int done) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_ACTION_SET_DONE];
        int rc;

        pd__store_bind_str(stmt, 1, tenant);
        pd__store_bind_str(stmt, 2, action);
        sqlite3_bind_int(stmt, 3, done ? 1 : 0);
        rc = sqlite3_step(stmt);
        pd__store_done(stmt);
        return rc == SQLITE_DONE ? 0 : pd__store_fail(st, rc);
}

int pd_store_trigger_outcome(pd_store_t *st, const char *tenant,
                             const char *action, const char *trigger_source,
                             const char *trigger_id, int *foundp,
                             pd_status_t *statusp, int32_t *attemptp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_TRIGGER_OUTCOME];
        int rc;

        pd__store_bind_str(stmt, 1, tenant);
        pd__store_bind_str(stmt, 2, action);
        pd__store_bind_str(stmt, 3, trigger_source);
        pd__store_bind_str(stmt, 4, trigger_id);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
                *foundp = rc == SQLITE_ROW;
                if (*foundp)
                        *statusp = (pd_status_t)sqlite3_column_int(stmt, 0);
                if (*foundp && attemptp)
                        *attemptp = sqlite3_column_int(stmt, 1);
        } else {
                pd__store_fail(st, rc);
        }
        pd__store_done(stmt);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int pd_store_trigger_seen(pd_store_t *st, const char *trigger_id, int *seenp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_TRIGGER_SEEN];

        pd__store_bind_str(stmt, 1, trigger_id);
        return store_step_exists(st, stmt, seenp);
}

int pd_store_trigger_runs(pd_store_t *st, const char *tenant,
                          const char *action, const char *trigger_source,
                          const char *trigger_id, int64_t *countp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_TRIGGER_RUNS];
        int rc;

        pd__store_bind_str(stmt, 1, tenant);
        pd__store_bind_str(stmt, 2, action);
        pd__store_bind_str(stmt, 3, trigger_source);
        pd__store_bind_str(stmt, 4, trigger_id);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                *countp = sqlite3_column_int64(stmt, 0);
        else
                pd__store_fail(st, rc);
        pd__store_done(stmt);
        return rc == SQLITE_ROW ? 0 : -1;
}

int pd_store_runs_unfinished(pd_store_t *st, pd_store_run_cb_t *cb,
                             void *opaque) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_RUN_NEXT_UNFINISHED];
        int64_t last_id    = 0;
        int ret            = 0;

        while (!ret) {
                pd_run_t run = {0};
                int rc;

                sqlite3_bind_int64(stmt, 1, last_id);
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_ROW) {
                        run.id             = sqlite3_column_int64(stmt, 0);
                        run.tenant         = store_col_str(stmt, 1);
                        run.action         = store_col_str(stmt, 2);
                        run.release        = store_col_str(stmt, 3);
                        run.trigger_source = store_col_str(stmt, 4);
                        run.trigger_id     = store_col_str(stmt, 5);
                        run.attempt        = sqlite3_column_int(stmt, 6);
                        run.started_at     = sqlite3_column_int64(stmt, 7);
                        run.sup_id         = sqlite3_column_int64(stmt, 8);
                        last_id            = run.id;
                        ret                = cb(&run, opaque);
                } else if (rc != SQLITE_DONE) {
                        ret = pd__store_fail(st, rc);
                }
                pd__store_done(stmt);
                if (rc == SQLITE_DONE)
                        break;
        }
        return ret;
}

/* ---- retention ---- */

/* Deletes up to limit rows of stmt's table older than before_ms; adds the
 * count to *deletedp. */
static int store_prune_one(pd_store_t *st, sqlite3_stmt *stmt,
                           int64_t before_ms, int limit, int *deletedp) {
        sqlite3_bind_int64(stmt, 1, before_ms);
        sqlite3_bind_int(stmt, 2, limit);
        if (pd__store_exec(st, stmt))
                return -1;
        *deletedp += sqlite3_changes(st->db);
        return 0;
}

int pd_store_prune(pd_store_t *st, int64_t before_ms, int limit,
                   int *deletedp) {
        *deletedp = 0;
        if (store_prune_one(st, st->stmt[PD_STMT_PRUNE_RUNS], before_ms, limit,
                            deletedp) ||
            store_prune_one(st, st->stmt[PD_STMT_PRUNE_EVENTS], before_ms,
                            limit, deletedp))
                return -1;
        return 0;
}

/* ---- outbox ---- */

int pd_store_outbox_add(pd_store_t *st, pd_outbox_rec_t *rec) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_OUTBOX_ADD];

        pd__store_bind_str(stmt, 1, rec->topic);
        pd__store_bind_str(stmt, 2, rec->key);
        sqlite3_bind_blob64(stmt, 3, rec->headers, rec->headers_len,
                            SQLITE_STATIC);
        sqlite3_bind_blob64(stmt, 4, rec->value, rec->value_len, SQLITE_STATIC);
        if (rec->part >= 0)
                sqlite3_bind_int(stmt, 5, rec->part);
        else
                sqlite3_bind_null(stmt, 5);
        if (pd__store_exec(st, stmt))
                return -1;
        rec->seq = sqlite3_last_insert_rowid(st->db);
        return 0;
}

int pd_store_outbox_del(pd_store_t *st, int64_t seq) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_OUTBOX_DEL];

        sqlite3_bind_int64(stmt, 1, seq);
        return pd__store_exec(st, stmt);
}

int pd_store_outbox_del_range(pd_store_t *st, int64_t first, int64_t last) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_OUTBOX_DEL_RANGE];

        sqlite3_bind_int64(stmt, 1, first);
        sqlite3_bind_int64(stmt, 2, last);
        return pd__store_exec(st, stmt);
}

int pd_store_outbox_del_part(pd_store_t *st, int32_t part) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_OUTBOX_DEL_PART];

        sqlite3_bind_int(stmt, 1, part);
        return pd__store_exec(st, stmt);
}

int pd_store_checkpoints_manual(pd_store_t *st) {
        int rc = sqlite3_wal_autocheckpoint(st->db, 0);

        return rc == SQLITE_OK ? 0 : pd__store_fail(st, rc);
}

int pd_store_checkpoint(pd_store_t *st) {
        int rc = sqlite3_wal_checkpoint_v2(
            st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

        return rc == SQLITE_OK ? 0 : pd__store_fail(st, rc);
}

int pd_store_checkpoint_count(pd_store_t *st, int *logp, int *donep) {
        int rc = sqlite3_wal_checkpoint_v2(
            st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, logp, donep);

        return rc == SQLITE_OK ? 0 : pd__store_fail(st, rc);
}

int pd_store_outbox_foreach(pd_store_t *st, pd_store_outbox_cb_t *cb,
                            void *opaque) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_OUTBOX_NEXT];
        int64_t last_seq   = 0;
        int ret            = 0;

        while (!ret) {
                pd_outbox_rec_t rec = {0};
                int rc;

                sqlite3_bind_int64(stmt, 1, last_seq);
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_ROW) {
                        rec.seq         = sqlite3_column_int64(stmt, 0);
                        rec.topic       = store_col_str(stmt, 1);
                        rec.key         = store_col_str(stmt, 2);
                        rec.headers     = sqlite3_column_blob(stmt, 3);
                        rec.headers_len = (size_t)sqlite3_column_bytes(stmt, 3);
                        rec.value       = sqlite3_column_blob(stmt, 4);
                        rec.value_len   = (size_t)sqlite3_column_bytes(stmt, 4);
                        rec.part = sqlite3_column_type(stmt, 5) == SQLITE_NULL
                                       ? PD_PART_ANY
                                       : sqlite3_column_int(stmt, 5);
                        last_seq = rec.seq;
                        ret      = cb(&rec, opaque);
                } else if (rc != SQLITE_DONE) {
                        ret = pd__store_fail(st, rc);
                }
                pd__store_done(stmt);
                if (rc == SQLITE_DONE)
                        break;
        }
        return ret;
}
