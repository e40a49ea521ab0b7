/*
 * store.h - the reactor's durable state, in one SQLite file.
 *
 * What lives here:
 *   runs     one row per attempt of an action for a tenant (the history);
 *   actions  per (tenant, action): the last run and whether it ever
 *            succeeded, which is what "pending" means;
 *   events   the (ce_source, ce_id) of every event fully processed, so a
 *            redelivered event runs nothing again (within the retention
 *            window: pd_store_prune);
 *   outbox   result records not yet acknowledged by the broker; they are
 *            written in the same transaction as the outcome they report and
 *            deleted once delivered, so no result is ever lost.
 *
 * Everything is keyed by tenant, so a partition's state can later be rebuilt
 * or moved on its own. The file is created 0600 (its folder 0700 if we make
 * it), in WAL mode.
 *
 * A pd_store_t is NOT thread-safe: the caller serialises access (the reactor
 * holds one mutex around its store calls). Every call returns 0 on success
 * and -1 on error, with the message available from pd_store_errmsg(), and
 * classifies busy/locked/full/readonly errors as retriable
 * (pd_store_retriable()).
 */
#ifndef PD_STORE_H
#define PD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h" /* pd_status_t */

typedef struct pd_store_s pd_store_t;

/*
 * Opens (creating if needed) the store at path. sync_full: 1 for
 * synchronous=FULL (an fsync per commit), 0 for NORMAL (durable across a
 * process crash; the last commits can be lost on power loss).
 * Returns NULL with errstr on failure.
 */
pd_store_t *pd_store_open(const char *path, int sync_full, char *errstr,
                          size_t errstr_size);
void pd_store_close(pd_store_t *st);

/* The last error's message, and whether it was retriable (busy, locked,
 * disk full, I/O, read-only): then the caller backs off and tries again. */
const char *pd_store_errmsg(const pd_store_t *st);
int pd_store_retriable(const pd_store_t *st);

/*
 * A statement that meets another connection's lock waits for it up to 5 s
 * before failing retriable (busy). give_up, if set, is asked every 10 ms
 * of that wait, on the waiting thread: when it returns non-zero the
 * statement fails at once, so a caller that is stopping is not held up.
 * It must not call into the store.
 */
void pd_store_set_give_up(pd_store_t *st, int (*give_up)(void *opaque),
                          void *opaque);

/* A random id made with the store (16 hex digits): what is kept beside the
 * store under it cannot outlive the store unnoticed. */
const char *pd_store_id(const pd_store_t *st);

/* Explicit transactions; calls outside one are each their own. */
int pd_store_begin(pd_store_t *st);
int pd_store_commit(pd_store_t *st);
int pd_store_rollback(pd_store_t *st);
/* 1 while an explicit transaction is open. SQLite itself may roll one back
 * on some errors (disk full, I/O): this tells whether it did. */
int pd_store_in_txn(pd_store_t *st);

/*
 * Parts of an open transaction (a savepoint): several callers' changes can
 * share one commit, and one caller's failed part is undone without undoing
 * the others'. part_undo rolls the part back and closes it.
 */
int pd_store_part_begin(pd_store_t *st);
int pd_store_part_end(pd_store_t *st);
int pd_store_part_undo(pd_store_t *st);

/*
 * Checkpoints. By default a commit that grows the WAL past 1000 pages
 * copies it back into the database, on the committing thread. After
 * pd_store_checkpoints_manual that is left to pd_store_checkpoint (a
 * PASSIVE checkpoint: it copies what no reader needs and never blocks a
 * writer), which a second handle on the same file can run on a thread of
 * its own while the first one writes.
 */
int pd_store_checkpoints_manual(pd_store_t *st);
int pd_store_checkpoint(pd_store_t *st);

/*
 * pd_store_checkpoint, saying how many frames the WAL holds (*logp) and how
 * many of them are in the database now (*donep). The WAL starts over from
 * its first frame only at a write that begins once every frame was copied:
 * when a transaction is always open on another handle, only that handle,
 * between its commit and its next begin, can make it so.
 */
int pd_store_checkpoint_count(pd_store_t *st, int *logp, int *donep);

/* ---- events (idempotency) ---- */

/* Sets *donep to 1 if (source, id) was marked done, else 0. */
int pd_store_event_done(pd_store_t *st, const char *source, const char *id,
                        int *donep);
/* Marks (source, id) done for tenant at time `at_ms`. Idempotent. */
int pd_store_event_mark(pd_store_t *st, const char *source, const char *id,
                        const char *tenant, int64_t at_ms);

/* ---- runs and action state ---- */

/* One attempt of an action. Strings are borrowed by the store calls. */
typedef struct pd_run_s {
        int64_t id; /* set by pd_store_run_begin */
        /* The run's name at the supervisor, set by the caller (0: none):
         * a hash of the trigger, the action and the run's place among
         * the trigger's runs of it (pd_store_trigger_runs), never a rowid,
         * which can come back; pd_store_runs_unfinished gives id for rows
         * that have none. */
        int64_t sup_id;
        const char *tenant;
        const char *action;
        const char *release;
        const char *trigger_source;
        const char *trigger_id;
        int32_t attempt;
        int64_t started_at; /* ms since epoch */
        /* filled when finished: */
        pd_status_t status;
        int has_exit_code;
        int32_t exit_code;
        int64_t finished_at;
        int64_t duration_ms;
        const char *error;       /* NULL if none */
        const char *output_tail; /* NULL if none */
} pd_run_t;

/* Inserts a run in state running; sets run->id (pd_store_run_id_next). */
int pd_store_run_begin(pd_store_t *st, pd_run_t *run);
/* A new run id, never handed out before by this handle nor found in the
 * file when it was opened. Any thread, no transaction needed. */
int64_t pd_store_run_id_next(pd_store_t *st);
/* Inserts a run that is over, whole (run->id from pd_store_run_id_next,
 * its outcome filled in), and updates the (tenant, action) state as
 * pd_store_run_end does: one row instead of a row and its update. */
int pd_store_run_record(pd_store_t *st, const pd_run_t *run);
/* Records run->id's outcome and updates the (tenant, action) state. */
int pd_store_run_end(pd_store_t *st, const pd_run_t *run);

/* The tenant a pause of every tenant is kept under (no tenant name has
 * a '*'). */
#define PD_STORE_ALL_TENANTS "*"

/*
 * Pauses (postdeploy pause): tenant paused by `by` at `at` (ms), or every
 * tenant when tenant is NULL; a pause again replaces who and when.
 * _clear ends the tenant's pause, or every pause when tenant is NULL.
 * _list appends each paused tenant (PD_STORE_ALL_TENANTS for all) and who
 * paused it, in tenant order. Each returns 0 or -1.
 */
int pd_store_pause_set(pd_store_t *st, const char *tenant, const char *by,
                       int64_t at);
int pd_store_pause_clear(pd_store_t *st, const char *tenant);
int pd_store_pause_list(pd_store_t *st, pd_strv_t *tenants, pd_strv_t *by);

/*
 * Marks (tenant, action) done (done = 1: a skip; it is no longer pending)
 * or pending again (done = 0: a reset), whatever its runs say. History is
 * kept either way.
 */
int pd_store_action_set_done(pd_store_t *st, const char *tenant,
                             const char *action, int done);

/* What the store knows of one (tenant, action). */
typedef struct pd_action_state_s {
        int known;               /* any run at all */
        int ever_succeeded;      /* done: succeeded or skipped since the last
                                  * reset; pending = !ever_succeeded */
        int running;             /* a run without an outcome */
        pd_status_t last_status; /* of the last finished run, if known */
        int32_t last_attempt;
} pd_action_state_t;

int pd_store_action_state(pd_store_t *st, const char *tenant,
                          const char *action, pd_action_state_t *as);

/*
 * If a run of (tenant, action) caused by trigger (source, id) finished,
 * sets *foundp to 1, *statusp to its last status and *attemptp (unless
 * NULL) to that run's attempt; else *foundp = 0. Lets a redelivered event
 * that was cut short skip what it already did.
 */
int pd_store_trigger_outcome(pd_store_t *st, const char *tenant,
                             const char *action, const char *trigger_source,
                             const char *trigger_id, int *foundp,
                             pd_status_t *statusp, int32_t *attemptp);

/*
 * Sets *seenp to whether any run, of any tenant, action or status, names
 * trigger_id as its trigger. When it does not, pd_store_trigger_outcome
 * finds nothing and pd_store_trigger_runs counts 0 for every action of
 * that trigger, so a new event's plan asks once instead of per action.
 */
int pd_store_trigger_seen(pd_store_t *st, const char *trigger_id, int *seenp);

/*
 * Sets *countp to how many runs of (tenant, action) trigger (source, id)
 * has that were started under a supervisor (sup_id set), finished or not;
 * verdicts (rejected, skipped, a cut backoff) do not count. A command's
 * name at the supervisor is made from it (consumer/worker.c), so a run
 * whose row a crash lost gets the same name again when its event comes
 * back: the rows of started commands are a prefix of the STARTs sent, in
 * order, whatever else was lost with them.
 */
int pd_store_trigger_runs(pd_store_t *st, const char *tenant,
                          const char *action, const char *trigger_source,
                          const char *trigger_id, int64_t *countp);

/*
 * Calls cb for every run still marked running (left by a crash). The cb's
 * run and strings are valid during the call only. Returns 0, -1 on error,
 * or the first non-zero value cb returned.
 */
typedef int(pd_store_run_cb_t)(const pd_run_t *run, void *opaque);
int pd_store_runs_unfinished(pd_store_t *st, pd_store_run_cb_t *cb,
                             void *opaque);

/* ---- restore (shared_group: state/store_restore.c) ---- */

/*
 * Records that tenant's events come from partition part of the events
 * topic (its results go to the same partition number), so that a dirty
 * restore of part knows whose rows to delete. Cheap when it is known
 * already. Returns 0 or -1.
 */
int pd_store_tenant_part(pd_store_t *st, const char *tenant, int32_t part);
/* Sets *partp to tenant's events partition as last planned, PD_PART_ANY
 * if never. */
int pd_store_tenant_part_of(pd_store_t *st, const char *tenant, int32_t *partp);

/*
 * Writes run, a finished run another reactor recorded and published in
 * an action.finished whose ce_id is origin, as a finished run of this
 * store (no trigger source: pd_store_trigger_outcome finds it by the
 * trigger's id), and changes the (tenant, action) state as that reactor
 * changed its own: the run's outcome as pd_store_run_record does, then
 * set_done (-1: leave it; 1: done, a skip; 0: pending, a reset). The
 * tenant is recorded as part's (pd_store_tenant_part). A record applied
 * already (its origin is known) changes nothing: *appliedp (unless NULL)
 * says whether this one did. Returns 0 or -1.
 */
int pd_store_run_restore(pd_store_t *st, const pd_run_t *run,
                         const char *origin, int set_done, int32_t part,
                         int *appliedp);

/* A results partition's restore checkpoint. */
typedef struct pd_store_part_s {
        int known;           /* a checkpoint was saved (or forgotten) */
        int64_t next_offset; /* the next offset to read */
        int dirty;           /* this store may hold more than the topic:
                              * start over (pd_store_part_clear) */
        int has_tenants;     /* tenants of part are known here */
} pd_store_part_t;

int pd_store_part_get(pd_store_t *st, int32_t part, pd_store_part_t *sp);
/* Saves next_offset as part's checkpoint, and its dirty flag: a restore
 * from the start keeps it until it is over. */
int pd_store_part_set(pd_store_t *st, int32_t part, int64_t next_offset,
                      int dirty);
/* Marks part's checkpoint dirty (the partition was lost). */
int pd_store_part_forget(pd_store_t *st, int32_t part);
/* Deletes every run, action state and done event of part's tenants
 * (pd_store_tenant_part), before part is restored from its start. Sets
 * *deletedp (unless NULL) to the runs deleted. Returns 0 or -1. */
int pd_store_part_clear(pd_store_t *st, int32_t part, int64_t *deletedp);

/* ---- retention ---- */

/*
 * Deletes history older than before_ms (ms since epoch), at most limit rows
 * of each table, oldest first, so a caller can prune a long history in
 * small steps between other work:
 *   runs    finished before before_ms, except each (tenant, action)'s
 *           newest finished run; unfinished runs are never deleted. The
 *           actions table (what is pending) is not touched, so every
 *           pd_store_action_state answer is the same before and after.
 *   events  done before before_ms: a redelivery of such an event is no
 *           longer recognised and runs its actions again (the dedupe
 *           window is the retention).
 * Sets *deletedp to the rows deleted (runs and events together); a pass
 * that deletes fewer than limit of each left nothing older behind.
 * Returns 0, or -1 on error.
 */
int pd_store_prune(pd_store_t *st, int64_t before_ms, int limit, int *deletedp);

/* ---- outbox ---- */

/* One record to produce. headers: name\0value\0 pairs, hdrs_len bytes. */
typedef struct pd_outbox_rec_s {
        int64_t seq;
        const char *topic;
        const char *key;
        const void *headers;
        size_t headers_len;
        const void *value;
        size_t value_len;
        int32_t part; /* partition it goes to; PD_PART_ANY: the
                       * partitioner chooses */
} pd_outbox_rec_t;

/* No partition of its own: the partitioner chooses (the registry, dead
 * letters). */
#define PD_PART_ANY (-1)

/* Appends rec; sets rec->seq. */
int pd_store_outbox_add(pd_store_t *st, pd_outbox_rec_t *rec);
/* Deletes the record seq (delivered). */
int pd_store_outbox_del(pd_store_t *st, int64_t seq);
/* Deletes the records first..last, every one of them delivered. */
int pd_store_outbox_del_range(pd_store_t *st, int64_t first, int64_t last);
/* Deletes the records bound for partition part (a partition lost: its
 * next owner decides what they say). */
int pd_store_outbox_del_part(pd_store_t *st, int32_t part);
/* Calls cb for every record in seq order (data valid during the call). */
typedef int(pd_store_outbox_cb_t)(const pd_outbox_rec_t *rec, void *opaque);
int pd_store_outbox_foreach(pd_store_t *st, pd_store_outbox_cb_t *cb,
                            void *opaque);

#endif
