/*
 * txn.c - the group-commit transaction engine: every store change is a
 * part (savepoint) of the open batch; batches commit in order, from the
 * caller that needs its change durable or from the committer thread, which
 * also checkpoints the WAL and prunes the history (reactor.keep_runs).
 * pd__reactor_txn_named retries a retriable store error; a lost batch sets
 * r->lost and fails the reactor so it is made again from what is durable.
 */

#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Transactions: group commit                                          */

/*
 * Every change joins one open store transaction, the batch, as a part of
 * its own (a savepoint), and batches commit one after the other. A change
 * is durable when its batch commits; the records it put in the outbox are
 * produced right after that commit, in commit order, and never before. A
 * batch commits when a caller needs its change durable before doing
 * something the world can see (spawning a command, letting the supervisor
 * forget an outcome, storing an offset: pd__reactor_txn_sync), or else
 * within 2 x PD_BATCH_MS, from the committer thread. Since batches commit in
 * order, what is durable after a crash is always a prefix of what was
 * done: a change is never durable without every change made before it.
 * One commit then writes the pages that many actions share instead of
 * writing them again for each action.
 */
#define PD_BATCH_MS 2

static void outq_move(pd_outq_t *dst, pd_outq_t *src) {
        for (size_t i = 0; i < src->cnt; i++) {
                dst->recs = pd_xgrow(dst->recs, &dst->size, dst->cnt + 1,
                                     sizeof(*dst->recs));
                dst->recs[dst->cnt++] = src->recs[i];
        }
        src->cnt = 0;
}

static void batch_add_name(pd_batch_t *b, const char *name) {
        b->names = pd_xgrow(b->names, &b->name_size, b->name_cnt + 1,
                            sizeof(*b->names));
        b->names[b->name_cnt++] = name;
}

static void batch_crashpoints(const pd_batch_t *b, const char *suffix) {
        for (size_t i = 0; i < b->name_cnt; i++)
                pd__crashpoint2(b->names[i], suffix);
}

/*
 * Marks this reactor failed and wakes every waiter of a batch: a batch was
 * lost, so what the reactor holds in memory is ahead of what is durable.
 * may_clear: the store's error is one that can go away (disk full, I/O,
 * locked); the reactor is then made again from the durable state, as a
 * restart would, instead of exiting (pd_reactor_run returns 1).
 */
static void batch_fail(pd_reactor_t *r, const char *msg, int may_clear) {
        pd_logf(PD_LOG_ERROR, (&(pd_log_fields_t){.reason = msg}),
                "state store: %s%s", msg,
                may_clear ? "; starting again from what is durable" : "");
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 0);
        pthread_mutex_lock(&r->lock);
        r->fatal = 1;
        r->restart |= may_clear;
        pthread_cond_broadcast(&r->cond); /* wakes waits that must end */
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_lock(&r->pr_lock);
        r->batch_failed = 1;
        pthread_cond_broadcast(&r->pr_cond);
        pthread_mutex_unlock(&r->pr_lock);
}

/* Opens the batch if none is (st_lock held). Returns 0 or -1 (store
 * error: pd_store_errmsg, pd_store_retriable). */
static int batch_begin(pd_reactor_t *r) {
        if (r->batch_open)
                return 0;
        if (pd_store_begin(r->st))
                return -1;
        r->batch_open = 1;
        if (r->committer_idle)
                pthread_cond_signal(&r->batch_cond);
        return 0;
}

/*
 * Commits the open batch. Called with st_lock held, returns with it
 * released: the next batch fills while this one's records are produced
 * (under pr_lock, so batches are produced in commit order). A failed
 * commit loses changes other threads were told were made: from then on no
 * batch commits (r->lost), since a later one would make the lost one look
 * durable to the offset gate, the supervisor's FORGET and the final flush;
 * the reactor stops, and is made again from what is durable. Returns 0, or
 * -1 after that.
 */
/*
 * Copies the few WAL frames the committer's last checkpoint left, on the
 * writing handle, between a commit and the next begin (st_lock held): the
 * next batch then writes the WAL from its start. Under a steady load a
 * batch is always open while the committer checkpoints, the WAL never
 * started over, and it grew by ~2.3 KB per in-process action (140 MB over
 * 60,000), each new page zeroed by the file system (5% of the reactor's
 * CPU). A checkpoint that another one holds up is tried at the next commit.
 */
static void batch_wal_restart(pd_reactor_t *r) {
        int log = -1, done = -1;

        if (!pd_store_checkpoint_count(r->st, &log, &done) && log == done)
                r->wal_restart = 0;
}

static int batch_commit(pd_reactor_t *r) {
        pd_batch_t b = r->batch;
        int64_t gen  = r->batch_gen;
        double began;
        char msg[512];

        assert(r->batch_open);
        batch_crashpoints(&b, "before_commit");
        began = pd_metrics_clock();
        if (r->lost || pd_store_commit(r->st)) {
                int may_clear = r->lost || pd_store_retriable(r->st);

                snprintf(msg, sizeof(msg), "%s",
                         r->lost ? "an earlier batch was lost"
                                 : pd_store_errmsg(r->st));
                r->lost = 1;
                if (pd_store_in_txn(r->st))
                        pd_store_rollback(r->st);
                r->batch_open = 0;
                memset(&r->batch, 0, sizeof(r->batch));
                r->batch_gen++;
                pthread_mutex_unlock(&r->st_lock);
                batch_fail(r, msg, may_clear);
                pd__outq_destroy(&b.oq);
                free(b.names);
                return -1;
        }
        pd_metrics_commit_observe(pd_metrics_clock() - began);
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);
        if (r->wal_restart)
                batch_wal_restart(r);
        r->batch_open = 0;
        memset(&r->batch, 0, sizeof(r->batch));
        r->batch_gen++;
        pthread_mutex_lock(&r->pr_lock);
        pthread_mutex_unlock(&r->st_lock);
        /* The attempt lines of this batch's runs were deferred before
         * their parts: in the log before any of their records leaves. */
        pd_log_flush();
        batch_crashpoints(&b, "after_commit");
        pd__outq_produce(r, &b.oq);
        batch_crashpoints(&b, "after_produce");
        r->produced_gen = gen;
        pthread_cond_broadcast(&r->pr_cond);
        pthread_mutex_unlock(&r->pr_lock);
        pd__outq_destroy(&b.oq);
        free(b.names);
        return 0;
}

/*
 * Waits until batch gen is committed and its records produced, committing
 * it now if it is still open. Called with st_lock held, returns with it
 * released. Returns 0, or -1 if the batch was lost (the reactor stops).
 */
static int batch_sync(pd_reactor_t *r, int64_t gen) {
        if (r->batch_open && r->batch_gen == gen) {
                if (batch_commit(r))
                        return -1;
        } else {
                pthread_mutex_unlock(&r->st_lock);
        }
        return pd__batch_wait(r, gen);
}

/* Whether batch gen is committed and its records produced (any thread). */
int pd__batch_produced(pd_reactor_t *r, int64_t gen) {
        int64_t produced;

        pthread_mutex_lock(&r->pr_lock);
        produced = r->produced_gen;
        pthread_mutex_unlock(&r->pr_lock);
        return produced >= gen;
}

/* Waits until batch gen is committed and produced; -1 if it was lost. */
int pd__batch_wait(pd_reactor_t *r, int64_t gen) {
        int failed;

        pthread_mutex_lock(&r->pr_lock);
        while (r->produced_gen < gen && !r->batch_failed)
                pthread_cond_wait(&r->pr_cond, &r->pr_lock);
        failed = r->produced_gen < gen;
        pthread_mutex_unlock(&r->pr_lock);
        return failed ? -1 : 0;
}

/* Commits whatever is open and waits for it: before a store is closed,
 * and when a decision rests on what was read (any thread). */
int pd__batch_flush(pd_reactor_t *r) {
        pthread_mutex_lock(&r->st_lock);
        return batch_sync(r, r->batch_open ? r->batch_gen : r->batch_gen - 1);
}

/* How often the committer checkpoints the WAL while batches commit. */
#define PD_CHECKPOINT_MS 200

/* WAL frames (pages) past which the next commit makes it start over
 * (batch_wal_restart): 16 MiB of 4 KiB pages, about 7,000 in-process
 * actions. */
#define PD_WAL_RESTART_FRAMES 4096

/* Copies the WAL back into the database through the committer's own
 * handle, so no thread holding st_lock pays for most of it. */
static void committer_checkpoint(pd_reactor_t *r, int64_t *lastp) {
        int64_t now = pd_now_ms();
        int log = 0, done = 0;

        if (!r->ckpt_st || now - *lastp < PD_CHECKPOINT_MS)
                return;
        *lastp = now;
        if (pd_store_checkpoint_count(r->ckpt_st, &log, &done)) {
                if (!pd_store_retriable(r->ckpt_st))
                        pd_log(PD_LOG_WARN, "state store checkpoint: %s",
                               pd_store_errmsg(r->ckpt_st));
                return;
        }
        if (log >= PD_WAL_RESTART_FRAMES) {
                pthread_mutex_lock(&r->st_lock);
                r->wal_restart = 1;
                pthread_mutex_unlock(&r->st_lock);
        }
}

static void committer_prune(pd_reactor_t *r, int64_t *nextp);

/* After this long without a batch the committer sleeps until one opens;
 * meanwhile it ticks every PD_BATCH_MS and is never woken per batch. */
#define PD_COMMITTER_IDLE_MS 100

/* The committer thread: a batch nobody waits for commits within two ticks
 * of PD_BATCH_MS, so results keep flowing; and the WAL is checkpointed and
 * the history pruned from here. */
void *pd__committer_main(void *arg) {
        pd_reactor_t *r    = arg;
        int64_t last_ckpt  = pd_now_ms();
        int64_t next_prune = 0; /* at once: a start may find a backlog */
        int64_t seen_gen   = 0; /* the batch open at the last tick */
        int idle_ticks     = 0;

        /* Attempt lines wait for the flush after each commit, or for
         * this thread's next tick (pd_log_defer). */
        pd_log_defer(1);
        pthread_mutex_lock(&r->st_lock);
        while (!r->committer_stop) {
                if (r->batch_open && r->batch_gen == seen_gen) {
                        batch_commit(r); /* open for a whole tick */
                        pthread_mutex_lock(&r->st_lock);
                }
                seen_gen   = r->batch_open ? r->batch_gen : 0;
                idle_ticks = seen_gen ? 0 : idle_ticks + 1;
                if (idle_ticks * PD_BATCH_MS >= PD_COMMITTER_IDLE_MS &&
                    !r->committer_stop) {
                        pd_log_flush();
                        r->committer_idle = 1;
                        pthread_cond_wait(&r->batch_cond, &r->st_lock);
                        r->committer_idle = 0;
                        idle_ticks        = 0;
                        continue;
                }
                pthread_mutex_unlock(&r->st_lock);
                pd_log_flush();
                committer_checkpoint(r, &last_ckpt);
                committer_prune(r, &next_prune);
                pd__sleep_ms(PD_BATCH_MS);
                pthread_mutex_lock(&r->st_lock);
        }
        pthread_mutex_unlock(&r->st_lock);
        pd_log_defer(0);
        return NULL;
}

/* Rolls the whole batch back after SQLite lost part of it (st_lock held).
 * Returns 1 if no other part was in it, 0 if other parts were lost. */
static int batch_drop(pd_reactor_t *r) {
        int empty = r->batch.name_cnt == 0;

        r->lost |= !empty;
        if (pd_store_in_txn(r->st))
                pd_store_rollback(r->st);
        r->batch_open = 0;
        pd__outq_destroy(&r->batch.oq);
        free(r->batch.names);
        memset(&r->batch, 0, sizeof(r->batch));
        return empty;
}

/* Undoes a failed part whose savepoint was opened (st_lock held).
 * Returns 1 if every other part of the batch is intact, 0 if not. */
static int txn_undo(pd_reactor_t *r) {
        if (pd_store_in_txn(r->st) && !pd_store_part_undo(r->st))
                return 1;
        /* SQLite rolled the whole transaction back (disk full, I/O). */
        return batch_drop(r);
}

/* Whether a transaction that keeps failing should stop retrying: the
 * reactor failed (it is made again from what is durable), or a stop's
 * grace is over. */
static int reactor_txn_give_up(pd_reactor_t *r) {
        int fatal;

        pthread_mutex_lock(&r->lock);
        fatal = r->fatal;
        pthread_mutex_unlock(&r->lock);
        return fatal || pd__reactor_grace_over(r);
}

/* Waits ms before a transaction's next try, less if it must give up. */
static void reactor_txn_nap(pd_reactor_t *r, int64_t ms) {
        int64_t end = pd_now_ms() + ms, left;

        pthread_mutex_lock(&r->lock);
        while (!r->fatal && (left = end - pd_now_ms()) > 0) {
                int64_t d = pd__reactor_deadline(r);

                if (d && d - pd_now_ms() < left)
                        left = d - pd_now_ms();
                if (left <= 0)
                        break;
                pd__cond_wait_ms(
                    &r->cond, &r->lock,
                    left < PD_STOP_POLL_MS ? left : PD_STOP_POLL_MS);
        }
        pthread_mutex_unlock(&r->lock);
}

/*
 * Runs fn as one part of the open batch; its outbox records are produced
 * after the batch commits. A retriable store error (busy, disk full,
 * read-only) is retried with backoff until it clears, so nothing is
 * acknowledged that was not recorded, or until the reactor fails or a
 * stop's grace is over; any other error, or one that cost other parts of
 * the batch, is fatal for the reactor. Returns 0, or -1 (fatal, or the
 * reactor is stopping).
 */
int pd__reactor_txn_named(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                          const char *name, int sync, int64_t *genp) {
        pd_outq_t oq    = PD_OUTQ_INIT;
        int64_t backoff = 100;
        int ret         = -1;

        for (;;) {
                int intact = 1, retriable;
                char msg[512];

                pthread_mutex_lock(&r->st_lock);
                if (r->lost) {
                        /* Nothing more joins a batch that cannot commit. */
                        pthread_mutex_unlock(&r->st_lock);
                        break;
                }
                if (batch_begin(r)) {
                        /* Nothing open: nothing to undo. */
                } else if (pd_store_part_begin(r->st)) {
                        intact = pd_store_in_txn(r->st) || batch_drop(r);
                } else if (fn(r, &oq, arg) || pd_store_part_end(r->st)) {
                        snprintf(msg, sizeof(msg), "%s",
                                 pd_store_errmsg(r->st));
                        retriable = pd_store_retriable(r->st);
                        intact    = txn_undo(r);
                        goto failed;
                } else {
                        outq_move(&r->batch.oq, &oq);
                        batch_add_name(&r->batch, name);
                        if (genp)
                                *genp = r->batch_gen;
                        if (sync) {
                                ret = batch_sync(r, r->batch_gen);
                        } else {
                                pthread_mutex_unlock(&r->st_lock);
                                ret = 0;
                        }
                        break;
                }
                snprintf(msg, sizeof(msg), "%s", pd_store_errmsg(r->st));
                retriable = pd_store_retriable(r->st);
        failed:
                pd__outq_clear(&oq);
                /* The others' parts need not wait for our backoff. */
                if (r->batch_open)
                        batch_commit(r);
                else
                        pthread_mutex_unlock(&r->st_lock);
                if (!retriable || !intact) {
                        batch_fail(r,
                                   intact ? msg
                                          : "a failed transaction lost "
                                            "others committed with it",
                                   retriable);
                        break;
                }
                if (reactor_txn_give_up(r)) {
                        /* Nothing was recorded: the event is not
                         * acknowledged and comes again after a restart. */
                        pd_log(PD_LOG_WARN,
                               "state store: %s; giving up: the reactor is "
                               "stopping",
                               msg);
                        break;
                }
                pd_metrics_cond_set(PD_METRICS_STORE_OK, 0);
                pd_log(PD_LOG_WARN,
                       "state store: %s; retrying in %" PRId64 " ms", msg,
                       backoff);
                reactor_txn_nap(r, backoff);
                if (backoff < 10000)
                        backoff *= 2;
        }
        pd__outq_destroy(&oq);
        return ret;
}

/*
 * Runs fn once, as a part of the open batch, for housekeeping that is as
 * good done later (trimming the outbox, pruning history): a failure is
 * logged ("cannot WHAT: why") and its part undone, never retried. If
 * SQLite rolled the whole batch back with it, the reactor fails as for any
 * lost batch. Any thread, st_lock not held. Returns 0, or -1.
 */
int pd__reactor_txn_try(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                        const char *what) {
        char msg[512];
        int ret = -1;

        pthread_mutex_lock(&r->st_lock);
        if (r->lost) {
                /* Left for after the rebuild: nothing joins a batch that
                 * cannot commit. */
        } else if (batch_begin(r) || pd_store_part_begin(r->st)) {
                pd_log(PD_LOG_WARN, "cannot %s: %s", what,
                       pd_store_errmsg(r->st));
        } else if (fn(r, NULL, arg) || pd_store_part_end(r->st)) {
                pd_log(PD_LOG_WARN, "cannot %s: %s", what,
                       pd_store_errmsg(r->st));
                if (!txn_undo(r)) {
                        int may_clear = pd_store_retriable(r->st);

                        pthread_mutex_unlock(&r->st_lock);
                        snprintf(msg, sizeof(msg),
                                 "failing to %s lost others committed "
                                 "with it",
                                 what);
                        batch_fail(r, msg, may_clear);
                        return -1;
                }
        } else {
                ret = 0;
        }
        pthread_mutex_unlock(&r->st_lock);
        return ret;
}

/*
 * Retention (reactor.keep_runs). The committer prunes the history every
 * PD_PRUNE_MS, PD_PRUNE_ROWS rows of each table at a time, as a part of
 * the open batch, so a pruned row is gone exactly when the batch commits
 * and never holds up a worker for more than one slice. While slices come
 * back full (a long backlog, say the first start with retention on), the
 * next one follows PD_PRUNE_BACKLOG_MS later instead: under
 * PD_COMMITTER_IDLE_MS, so the committer stays awake through a backlog
 * even when no event comes. An idle committer prunes nothing, and needs
 * not: nothing is added meanwhile, and what aged goes at the next batch.
 */
#define PD_PRUNE_MS         5000
#define PD_PRUNE_BACKLOG_MS 50
#define PD_PRUNE_ROWS       500

typedef struct pd_prune_s {
        int64_t before_ms;
        int deleted;
} pd_prune_t;

static int txn_prune(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_prune_t *pr = arg;

        (void)oq;
        return pd_store_prune(r->st, pr->before_ms, PD_PRUNE_ROWS,
                              &pr->deleted);
}

/* One slice of pruning if one is due (the committer's thread). */
static void committer_prune(pd_reactor_t *r, int64_t *nextp) {
        int64_t now = pd_now_ms();
        pd_prune_t pr;

        if (!r->keep_runs_ms || now < *nextp)
                return;
        pr.before_ms = now - r->keep_runs_ms;
        pr.deleted   = 0;
        if (pd__reactor_txn_try(r, txn_prune, &pr, "prune the history")) {
                *nextp = now + PD_PRUNE_MS;
                return;
        }
        if (pr.deleted)
                pd_log(PD_LOG_DEBUG,
                       "state store: pruned %d row(s) older than %" PRId64
                       " ms",
                       pr.deleted, r->keep_runs_ms);
        *nextp = now + (pr.deleted >= PD_PRUNE_ROWS ? PD_PRUNE_BACKLOG_MS
                                                    : PD_PRUNE_MS);
}
