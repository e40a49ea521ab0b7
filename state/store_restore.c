/*
 * store_restore.c - the store's side of a restore (shared_group mode,
 * consumer/restore.c): runs another reactor recorded, written from their
 * action.finished on the results topic; each results partition's
 * checkpoint; and the partition of each tenant, so that what this store
 * holds of a partition it lost can be deleted before it is restored again.
 *
 * Kept apart from store.c, which owns the schema (its migration 6 -> 7
 * adds the tables used here) and the runs and state everything else
 * writes.
 */
#include "state/store_int.h"

#include <assert.h>
#include <string.h>

const char *const pd__store_restore_sql[PD_STMT__CNT] = {
    /* The runs_begin trigger adds the action with this outcome; DO
     * NOTHING on a known origin adds nothing, and sqlite3_changes()
     * says so. */
    [PD_STMT_RUN_RESTORE] =
        "INSERT INTO runs (tenant, action, release, trigger_id, attempt,"
        " started_at, id, status, exit_code, error, output_tail,"
        " finished_at, duration_ms, origin)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14)"
        " ON CONFLICT (origin) WHERE origin IS NOT NULL DO NOTHING",
    /* A tenant moves only if the events topic's partitions change;
     * the WHERE keeps the usual case a read. */
    [PD_STMT_TENANT_PART] =
        "INSERT INTO tenant_parts (tenant, part) VALUES (?1, ?2)"
        " ON CONFLICT (tenant) DO UPDATE SET part = excluded.part"
        " WHERE part <> excluded.part",
    [PD_STMT_TENANT_PART_OF] =
        "SELECT part FROM tenant_parts WHERE tenant = ?1",
    [PD_STMT_PART_GET] =
        "SELECT next_offset, dirty FROM partitions"
        " WHERE part = ?1",
    [PD_STMT_PART_SET] =
        "INSERT INTO partitions (part, next_offset, dirty) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (part) DO UPDATE SET next_offset = ?2, dirty = ?3",
    [PD_STMT_PART_FORGET] =
        "INSERT INTO partitions (part, next_offset, dirty) VALUES (?1, 0, 1)"
        " ON CONFLICT (part) DO UPDATE SET dirty = 1",
    [PD_STMT_PART_HAS_TENANTS] =
        "SELECT EXISTS (SELECT 1 FROM tenant_parts WHERE part = ?1)",
    /* actions first: its last_run_id is a foreign key into runs. A
     * rare, whole-history pass: runs and events have no tenant index,
     * which every run and event would pay for. */
    [PD_STMT_PART_CLEAR_ACTIONS] =
        "DELETE FROM actions WHERE tenant IN"
        " (SELECT tenant FROM tenant_parts WHERE part = ?1)",
    [PD_STMT_PART_CLEAR_RUNS] =
        "DELETE FROM runs WHERE tenant IN"
        " (SELECT tenant FROM tenant_parts WHERE part = ?1)",
    [PD_STMT_PART_CLEAR_EVENTS] =
        "DELETE FROM events WHERE tenant IN"
        " (SELECT tenant FROM tenant_parts WHERE part = ?1)",
};

int pd_store_tenant_part(pd_store_t *st, const char *tenant, int32_t part) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_TENANT_PART];

        pd__store_bind_str(stmt, 1, tenant);
        sqlite3_bind_int(stmt, 2, part);
        return pd__store_exec(st, stmt);
}

int pd_store_tenant_part_of(pd_store_t *st, const char *tenant,
                            int32_t *partp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_TENANT_PART_OF];
        int rc;

        *partp = PD_PART_ANY;
        pd__store_bind_str(stmt, 1, tenant);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                *partp = sqlite3_column_int(stmt, 0);
        pd__store_done(stmt);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                     : pd__store_fail(st, rc);
}

int pd_store_run_restore(pd_store_t *st, const pd_run_t *run,
                         const char *origin, int set_done, int32_t part,
                         int *appliedp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_RUN_RESTORE];
        int64_t id         = pd_store_run_id_next(st);

        assert(origin);
        if (appliedp)
                *appliedp = 0;
        pd__store_bind_str(stmt, 1, run->tenant);
        pd__store_bind_str(stmt, 2, run->action);
        pd__store_bind_str(stmt, 3, run->release);
        pd__store_bind_str(stmt, 4, run->trigger_id);
        sqlite3_bind_int(stmt, 5, run->attempt);
        sqlite3_bind_int64(stmt, 6, run->started_at);
        sqlite3_bind_int64(stmt, 7, id);
        sqlite3_bind_int(stmt, 8, (int)run->status);
        if (run->has_exit_code)
                sqlite3_bind_int(stmt, 9, run->exit_code);
        pd__store_bind_str(stmt, 10, run->error);
        pd__store_bind_str(stmt, 11, run->output_tail);
        sqlite3_bind_int64(stmt, 12, run->finished_at);
        sqlite3_bind_int64(stmt, 13, run->duration_ms);
        pd__store_bind_str(stmt, 14, origin);
        if (pd__store_exec(st, stmt))
                return -1;
        if (sqlite3_changes(st->db) == 0)
                return 0; /* applied before */
        /* The runs_begin trigger recorded the outcome in actions, as
         * for pd_store_run_record. */
        if (set_done >= 0 &&
            pd_store_action_set_done(st, run->tenant, run->action, set_done))
                return -1;
        if (pd_store_tenant_part(st, run->tenant, part))
                return -1;
        if (appliedp)
                *appliedp = 1;
        return 0;
}

int pd_store_part_get(pd_store_t *st, int32_t part, pd_store_part_t *sp) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_PART_GET];
        int rc;

        memset(sp, 0, sizeof(*sp));
        sqlite3_bind_int(stmt, 1, part);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                sp->known       = 1;
                sp->next_offset = sqlite3_column_int64(stmt, 0);
                sp->dirty       = sqlite3_column_int(stmt, 1) != 0;
        }
        pd__store_done(stmt);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return pd__store_fail(st, rc);
        stmt = st->stmt[PD_STMT_PART_HAS_TENANTS];
        sqlite3_bind_int(stmt, 1, part);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                sp->has_tenants = sqlite3_column_int(stmt, 0) != 0;
        pd__store_done(stmt);
        return rc == SQLITE_ROW ? 0 : pd__store_fail(st, rc);
}

int pd_store_part_set(pd_store_t *st, int32_t part, int64_t next_offset,
                      int dirty) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_PART_SET];

        sqlite3_bind_int(stmt, 1, part);
        sqlite3_bind_int64(stmt, 2, next_offset);
        sqlite3_bind_int(stmt, 3, dirty ? 1 : 0);
        return pd__store_exec(st, stmt);
}

int pd_store_part_forget(pd_store_t *st, int32_t part) {
        sqlite3_stmt *stmt = st->stmt[PD_STMT_PART_FORGET];

        sqlite3_bind_int(stmt, 1, part);
        return pd__store_exec(st, stmt);
}

int pd_store_part_clear(pd_store_t *st, int32_t part, int64_t *deletedp) {
        static const int clear[] = {PD_STMT_PART_CLEAR_ACTIONS,
                                    PD_STMT_PART_CLEAR_RUNS,
                                    PD_STMT_PART_CLEAR_EVENTS};

        for (size_t i = 0; i < sizeof(clear) / sizeof(clear[0]); i++) {
                sqlite3_stmt *stmt = st->stmt[clear[i]];

                sqlite3_bind_int(stmt, 1, part);
                if (pd__store_exec(st, stmt))
                        return -1;
                if (deletedp && clear[i] == PD_STMT_PART_CLEAR_RUNS)
                        *deletedp = sqlite3_changes(st->db);
        }
        return 0;
}
