/*
 * store_int.h - private to the store's files (state/store.c, and
 * state/store_restore.c, what a restore from the results topic needs):
 * the handle's layout, its prepared statements, and the helpers both use.
 * Callers outside state/ use state/store.h only.
 */
#ifndef PD_STORE_INT_H
#define PD_STORE_INT_H

#include "state/store.h"

#include <stdatomic.h>
#include <time.h>

#include <sqlite3.h>

/* Every statement, prepared once at open (store_setup): SQL in store.c's
 * store_sql, or store_restore.c's pd__store_restore_sql for the restore's
 * own. */
enum {
        PD_STMT_BEGIN,
        PD_STMT_COMMIT,
        PD_STMT_ROLLBACK,
        PD_STMT_SAVEPOINT,
        PD_STMT_RELEASE,
        PD_STMT_ROLLBACK_TO,
        PD_STMT_EVENT_DONE,
        PD_STMT_EVENT_MARK,
        PD_STMT_RUN_BEGIN,
        PD_STMT_RUN_END,
        PD_STMT_RUN_RECORD,
        PD_STMT_ACTION_STATE,
        PD_STMT_ACTION_SET_DONE,
        PD_STMT_TRIGGER_OUTCOME,
        PD_STMT_TRIGGER_RUNS,
        PD_STMT_TRIGGER_SEEN,
        PD_STMT_RUN_NEXT_UNFINISHED,
        PD_STMT_OUTBOX_ADD,
        PD_STMT_OUTBOX_DEL_PART,
        PD_STMT_OUTBOX_DEL,
        PD_STMT_OUTBOX_DEL_RANGE,
        PD_STMT_OUTBOX_NEXT,
        PD_STMT_PRUNE_RUNS,
        PD_STMT_PRUNE_EVENTS,
        PD_STMT_PAUSE_SET,
        PD_STMT_PAUSE_CLEAR,
        PD_STMT_PAUSE_CLEAR_ALL,
        PD_STMT_PAUSE_LIST,
        /* store_restore.c's (pd__store_restore_sql): */
        PD_STMT_RUN_RESTORE,
        PD_STMT_TENANT_PART,
        PD_STMT_TENANT_PART_OF,
        PD_STMT_PART_GET,
        PD_STMT_PART_SET,
        PD_STMT_PART_FORGET,
        PD_STMT_PART_HAS_TENANTS,
        PD_STMT_PART_CLEAR_ACTIONS,
        PD_STMT_PART_CLEAR_RUNS,
        PD_STMT_PART_CLEAR_EVENTS,
        PD_STMT__CNT
};

/* The restore's statements' SQL, indexed like store_sql (NULL elsewhere). */
extern const char *const pd__store_restore_sql[PD_STMT__CNT];

struct pd_store_s {
        sqlite3 *db;
        char id[40]; /* meta.store_id */
        sqlite3_stmt *stmt[PD_STMT__CNT];
        int errcode;      /* primary SQLite code of the last error, 0 if
                           * it did not come from SQLite */
        char errmsg[512]; /* the last error, "" if none yet */
        int (*give_up)(void *opaque); /* see pd_store_set_give_up */
        void *give_up_opaque;
        struct timespec busy_since; /* when the current wait began */
        /* The last run id handed out (pd_store_run_id_next): a run written
         * whole at its end has its id, and names its log, before it runs,
         * so every run takes its id from here, never from the rowid. */
        _Atomic int64_t last_run_id;
};

/* Records SQLite's message for rc as the last error. Returns -1. */
int pd__store_fail(pd_store_t *st, int rc);
/* Records an error of ours (never retriable). Returns -1. */
int pd__store_failf(pd_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes stmt ready for its next use. */
void pd__store_done(sqlite3_stmt *stmt);
/* Steps a statement that returns no rows, then resets it. 0 or -1. */
int pd__store_exec(pd_store_t *st, sqlite3_stmt *stmt);
/* Binds a string, or NULL, that outlives the statement's use. */
void pd__store_bind_str(sqlite3_stmt *stmt, int idx, const char *s);

#endif
