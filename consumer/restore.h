/*
 * restore.h - one partition of the results topic read into a store
 * (shared_group mode): the compacted results topic is the changelog of
 * every reactor's ledger, so a reactor that is given a partition rebuilds
 * what the reactors before it decided for that partition's tenants before
 * it runs anything for them.
 *
 * The reactor calls it through pd__restore_partition (reactor_int.h);
 * pd_restore_apply is the core, which takes only what it needs, so unit
 * tests and the benchmark run it on a store and a Kafka configuration of
 * their own.
 */
#ifndef PD_RESTORE_H
#define PD_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "state/store.h"

/* The header naming the store (pd_store_id) that recorded a result: a
 * restore skips its own store's records, whose rows it holds already. */
#define PD_STORE_HEADER "pd_store"

/* Runs fn(st, arg) in one store transaction and returns 0 once it is
 * committed, or -1 (fn failed or the commit did). */
typedef int(pd_restore_fn_t)(pd_store_t *st, void *arg);
typedef int(pd_restore_txn_t)(void *opaque, pd_restore_fn_t *fn, void *arg);

typedef struct pd_restore_opts_s {
        const char *topic; /* the results topic */
        int32_t part;
        /* The signing key: records that do not verify are not applied
         * (anyone who can write the topic could otherwise mark an action
         * done). NULL: not checked. */
        const unsigned char *secret;
        size_t secret_len;
        /* How long the read may go without a record or the end before it
         * fails. */
        int64_t idle_timeout_ms;
        /* The store transactions: NULL runs pd_store_begin, fn,
         * pd_store_commit on st itself (st must not be in one). */
        pd_restore_txn_t *txn;
        void *txn_opaque;
        /* Asked between reads: non-zero stops the restore (it fails, and
         * the checkpoint keeps what was applied). NULL: never. */
        int (*give_up)(void *opaque);
        void *give_up_opaque;
} pd_restore_opts_t;

typedef struct pd_restore_stats_s {
        int64_t from, to; /* offsets read, [from, to): to is the checkpoint */
        int64_t records;  /* records read (aborted ones are never seen) */
        int64_t applied;  /* runs written from them */
        int64_t own;      /* skipped: this store recorded them */
        int64_t cleared;  /* runs deleted first (a dirty restore) */
        int dirty;        /* started over from the beginning */
} pd_restore_stats_t;

/*
 * Reads partition o->part of o->topic with a consumer of its own (no
 * group, read_committed: records of an aborted or still open transaction
 * are never applied) from st's checkpoint up to the end it finds when it
 * starts (or the last stable offset, if a transaction is open), and
 * applies each action.finished to st (pd_store_run_restore) in
 * transactions of PD_RESTORE_CHUNK records, each saving the checkpoint
 * (the next offset to read) with what it applied. A dirty checkpoint
 * (pd_store_part_forget), a store that holds rows of the partition's
 * tenants but no checkpoint, or a checkpoint past the topic's end (a
 * topic made again) start over: the partition's rows are deleted first,
 * and this store's own records are applied too, until the restore ends.
 * kconf (bootstrap.servers and the [kafka] properties) is taken over in
 * every case. stats (may be NULL) says what was done.
 * Returns 0, or -1 with errstr.
 */
int pd_restore_apply(pd_store_t *st, rd_kafka_conf_t *kconf,
                     const pd_restore_opts_t *o, pd_restore_stats_t *stats,
                     char *errstr, size_t errstr_size);

/* Records applied per store transaction. */
#define PD_RESTORE_CHUNK 2000

#endif
