/*
 * restore.c - a partition's ledger rebuilt from the results topic
 * (shared_group mode; see restore.h). The partition lifecycle
 * (consumer/partition.c) restores each partition it is assigned before it
 * dispatches anything of it, and forgets one it lost.
 *
 * What a record changes is what the reactor that published it changed in
 * its own store (consumer/record.c): an action.finished is a finished run
 * (pd_store_run_record); a skip on request also marks the action done, a
 * reset pending again (pd__txn_verdict's set_done); a step skipped for a
 * dependency, or any other outcome, leaves the done flag to the run's
 * status; a name that is no action of the reactor's (rejected "unknown
 * action") was never stored. Every other record (started, queued,
 * planned, registry, cancel and pause answers) changes no ledger.
 */

#include "consumer/reactor_int.h"

/* Decoded records waiting for their transaction. */
typedef struct restore_chunk_s {
        int32_t part;
        pd_event_t **evs;
        int *set_done; /* per event: -1, 0, 1 (pd_store_run_restore) */
        size_t cnt, size;
        int64_t next; /* the checkpoint once they are applied */
        int clear;    /* delete the partition's rows first */
        int dirty;    /* keep the checkpoint dirty: not over yet */
        /* Results of the last try (a retried transaction counts again). */
        int64_t applied, cleared;
} restore_chunk_t;

/* Read by the first transaction. */
typedef struct restore_ckpt_s {
        int32_t part;
        pd_store_part_t sp;
} restore_ckpt_t;

static int chunk_apply(pd_store_t *st, void *arg) {
        restore_chunk_t *c = arg;

        c->applied = c->cleared = 0;
        if (c->clear && pd_store_part_clear(st, c->part, &c->cleared))
                return -1;
        for (size_t i = 0; i < c->cnt; i++) {
                const pd_event_t *ev = c->evs[i];
                pd_run_t run         = {0};
                int applied;

                run.tenant        = ev->tenant;
                run.action        = ev->action;
                run.release       = ev->release;
                run.trigger_id    = ev->trigger_id;
                run.attempt       = ev->attempt;
                run.started_at    = ev->started_at;
                run.status        = ev->status;
                run.has_exit_code = ev->has_exit_code;
                run.exit_code     = ev->exit_code;
                run.error         = ev->error;
                run.output_tail   = ev->output_tail;
                run.finished_at   = ev->finished_at;
                run.duration_ms   = ev->duration_ms;
                if (pd_store_run_restore(st, &run, ev->ce_id, c->set_done[i],
                                         c->part, &applied))
                        return -1;
                c->applied += applied;
        }
        return pd_store_part_set(st, c->part, c->next, c->dirty);
}

static int ckpt_read(pd_store_t *st, void *arg) {
        restore_ckpt_t *ck = arg;

        return pd_store_part_get(st, ck->part, &ck->sp);
}

/* The default transaction: on the caller's own store. */
static int restore_txn_plain(void *opaque, pd_restore_fn_t *fn, void *arg) {
        pd_store_t *st = opaque;

        if (pd_store_begin(st))
                return -1;
        if (fn(st, arg)) {
                pd_store_rollback(st);
                return -1;
        }
        return pd_store_commit(st);
}

static void chunk_clear(restore_chunk_t *c) {
        for (size_t i = 0; i < c->cnt; i++)
                pd_event_destroy(c->evs[i]);
        c->cnt = 0;
}

/* The value of header name, NUL-terminated into buf ("" when absent). */
static const char *header_str(rd_kafka_headers_t *hdrs, const char *name,
                              char *buf, size_t size) {
        const void *val;
        size_t len;

        buf[0] = '\0';
        if (hdrs && !rd_kafka_header_get_last(hdrs, name, &val, &len) && val &&
            len < size) {
                memcpy(buf, val, len);
                buf[len] = '\0';
        }
        return buf;
}

/*
 * What record rkm changes: 1 with *evp (the decoded action.finished, the
 * caller's) and *set_donep, or 0 when it changes nothing here (another
 * type, this store's own when own_too is 0, a bad or unsigned record).
 */
static int record_take(const rd_kafka_message_t *rkm, const char *store_id,
                       int own_too, const pd_restore_opts_t *o,
                       pd_restore_stats_t *stats, pd_event_t **evp,
                       int *set_donep) {
        rd_kafka_headers_t *hdrs = NULL;
        pd_event_t *ev;
        char buf[64], errstr[256];

        if (rd_kafka_message_headers(rkm, &hdrs))
                hdrs = NULL;
        /* The cheap tests first: most records are not action.finished,
         * or are ours. */
        if (strcmp(header_str(hdrs, "ce_type", buf, sizeof(buf)),
                   pd_evtype_name(PD_EVT_ACTION_FINISHED)))
                return 0;
        if (!strcmp(header_str(hdrs, PD_STORE_HEADER, buf, sizeof(buf)),
                    store_id)) {
                stats->own++;
                if (!own_too)
                        return 0;
        }
        if (o->secret &&
            pd_sign_verify(hdrs, rkm->key, rkm->key_len, rkm->payload, rkm->len,
                           o->secret, o->secret_len, errstr, sizeof(errstr))) {
                pd_log(PD_LOG_WARN, "restore: %s [%d] @%" PRId64 ": %s",
                       o->topic, (int)rkm->partition, rkm->offset, errstr);
                return 0;
        }
        if (!(ev = pd_event_from_message(rkm, errstr, sizeof(errstr)))) {
                pd_log(PD_LOG_WARN, "restore: %s [%d] @%" PRId64 ": %s",
                       o->topic, (int)rkm->partition, rkm->offset, errstr);
                return 0;
        }
        if (!ev->ce_id || !ev->tenant || !*ev->tenant || !ev->action ||
            !*ev->action ||
            /* Never stored by the reactor that rejected it. */
            (ev->status == PD_ST_REJECTED && ev->error &&
             !strncmp(ev->error, "unknown action ", 15))) {
                pd_event_destroy(ev);
                return 0;
        }
        /* As pd__txn_verdict was told (worker.c): a skip on request is
         * done, a reset pending; a step skipped because a dependency did
         * not succeed ("dependency NAME STATUS") leaves the state. */
        *set_donep = -1;
        if (ev->status == PD_ST_RESET)
                *set_donep = 0;
        else if (ev->status == PD_ST_SKIPPED &&
                 !(ev->error && !strncmp(ev->error, "dependency ", 11)))
                *set_donep = 1;
        *evp = ev;
        return 1;
}

/* The partition's low and high watermarks; a new topic's leader may take a
 * moment, so errors are retried for a while. */
static int restore_watermarks(rd_kafka_t *rk, const pd_restore_opts_t *o,
                              int64_t *lop, int64_t *hip, char *errstr,
                              size_t errstr_size) {
        int64_t deadline = pd_mono_ms() + 10000;
        rd_kafka_resp_err_t err;

        while ((err = rd_kafka_query_watermark_offsets(rk, o->topic, o->part,
                                                       lop, hip, 2000))) {
                if (pd_mono_ms() > deadline) {
                        snprintf(errstr, errstr_size,
                                 "cannot read the end of %s [%d]: %s", o->topic,
                                 (int)o->part, rd_kafka_err2str(err));
                        return -1;
                }
                pd__sleep_ms(100);
        }
        return 0;
}

/* Applies what c holds (and empties it). */
static int chunk_flush(pd_store_t *st, const pd_restore_opts_t *o,
                       restore_chunk_t *c, pd_restore_stats_t *stats,
                       char *errstr, size_t errstr_size) {
        int ret = o->txn ? o->txn(o->txn_opaque, chunk_apply, c)
                         : restore_txn_plain(st, chunk_apply, c);

        if (ret)
                snprintf(errstr, errstr_size,
                         "cannot restore %s [%d] at offset %" PRId64 ": %s",
                         o->topic, (int)o->part, c->next, pd_store_errmsg(st));
        else {
                stats->applied += c->applied;
                stats->cleared += c->cleared;
                c->clear = 0;
        }
        chunk_clear(c);
        return ret;
}

int pd_restore_apply(pd_store_t *st, rd_kafka_conf_t *kconf,
                     const pd_restore_opts_t *o, pd_restore_stats_t *stats,
                     char *errstr, size_t errstr_size) {
        /* librdkafka 2.0.2's assign() wants a group.id; the consumer
         * never joins it nor commits (assign, no auto commit). */
        static const char *const props[] = {
            "group.id", "postdeploy-restore", "isolation.level",
            "read_committed", "enable.partition.eof", "true",
            "enable.auto.commit", "false", "auto.offset.reset", "earliest",
            /* The end is known by an
             * empty fetch (a commit
             * marker is past the last
             * record): not held 500
             * ms by the broker. */
            "fetch.wait.max.ms", "10", NULL};
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_message_t *batch[256];
        rd_kafka_queue_t *rkqu   = NULL;
        rd_kafka_t *rk           = NULL;
        restore_chunk_t c        = {0};
        restore_ckpt_t ck        = {0};
        pd_restore_stats_t dummy = {0};
        const char *store_id     = pd_store_id(st);
        int64_t lo, hi, from, idle_until;
        rd_kafka_resp_err_t err;
        int ret = -1, done = 0;

        if (!stats)
                stats = &dummy;
        memset(stats, 0, sizeof(*stats));
        for (size_t i = 0; props[i]; i += 2)
                if (rd_kafka_conf_set(kconf, props[i], props[i + 1], errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK) {
                        rd_kafka_conf_destroy(kconf);
                        return -1;
                }
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr,
                                errstr_size))) {
                rd_kafka_conf_destroy(kconf);
                return -1;
        }
        if (restore_watermarks(rk, o, &lo, &hi, errstr, errstr_size))
                goto done;

        ck.part = o->part;
        if (o->txn ? o->txn(o->txn_opaque, ckpt_read, &ck)
                   : restore_txn_plain(st, ckpt_read, &ck)) {
                snprintf(errstr, errstr_size,
                         "cannot read the restore checkpoint of %s [%d]: %s",
                         o->topic, (int)o->part, pd_store_errmsg(st));
                goto done;
        }
        /* Start over when what the store holds of the partition may be
         * ahead of what the topic says: lost (dirty), or a checkpoint
         * past the end (the topic was made again). Rows of its tenants
         * but no checkpoint are a store that ran without shared_group:
         * read from the start, in place, deleting nothing. Its results
         * before co-partitioning may sit on other partitions, and
         * compaction keeps only a key's newest: its own rows are the
         * better record of what it ran. */
        stats->dirty = ck.sp.dirty || (ck.sp.known && ck.sp.next_offset > hi);
        from         = ck.sp.known && !stats->dirty ? ck.sp.next_offset : lo;
        if (from < lo)
                from = lo; /* compacted or deleted below the checkpoint */
        stats->from = stats->to = from;
        c.part                  = o->part;
        c.next                  = from;
        c.clear = c.dirty = stats->dirty;
        if (from >= hi) {
                /* Nothing to read; a dirty restore still clears. */
                c.dirty = 0;
                ret     = stats->dirty || !ck.sp.known
                              ? chunk_flush(st, o, &c, stats, errstr, errstr_size)
                              : 0;
                goto done;
        }

        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, o->topic, o->part)->offset =
            from;
        if ((err = rd_kafka_assign(rk, parts))) {
                snprintf(errstr, errstr_size, "cannot read %s [%d]: %s",
                         o->topic, (int)o->part, rd_kafka_err2str(err));
                goto done;
        }
        rkqu       = rd_kafka_queue_get_consumer(rk);
        idle_until = pd_mono_ms() + o->idle_timeout_ms;
        while (!done) {
                ssize_t n;

                if (o->give_up && o->give_up(o->give_up_opaque)) {
                        snprintf(errstr, errstr_size,
                                 "restore of %s [%d] given up at offset "
                                 "%" PRId64,
                                 o->topic, (int)o->part, c.next);
                        goto done;
                }
                if (pd_mono_ms() > idle_until) {
                        snprintf(errstr, errstr_size,
                                 "timed out restoring %s [%d]: at offset "
                                 "%" PRId64 " of %" PRId64,
                                 o->topic, (int)o->part, c.next, hi);
                        goto done;
                }
                n = rd_kafka_consume_batch_queue(
                    rkqu, 100, batch, sizeof(batch) / sizeof(batch[0]));
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *rkm = batch[i];

                        if (done) {
                                /* Past the end it had: the next one's. */
                        } else if (rkm->err ==
                                   RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                /* The end, or with read_committed the
                                 * last stable offset: what an open
                                 * transaction holds is not applied
                                 * (its producer was fenced, or it is
                                 * read at the next restore). */
                                if (rkm->offset > c.next)
                                        c.next = rkm->offset;
                                done = 1;
                        } else if (rkm->err) {
                                pd_log(PD_LOG_DEBUG, "restore: %s",
                                       rd_kafka_message_errstr(rkm));
                        } else {
                                pd_event_t *ev;
                                int set_done;

                                idle_until = pd_mono_ms() + o->idle_timeout_ms;
                                stats->records++;
                                c.next = rkm->offset + 1;
                                if (record_take(rkm, store_id, stats->dirty, o,
                                                stats, &ev, &set_done)) {
                                        c.evs =
                                            pd_xgrow(c.evs, &c.size, c.cnt + 1,
                                                     sizeof(*c.evs));
                                        c.set_done = pd_xrealloc(
                                            c.set_done,
                                            c.size * sizeof(*c.set_done));
                                        c.evs[c.cnt]        = ev;
                                        c.set_done[c.cnt++] = set_done;
                                }
                                done = c.next >= hi;
                        }
                        rd_kafka_message_destroy(rkm);
                }
                if (done)
                        c.dirty = 0;
                if ((done || c.cnt >= PD_RESTORE_CHUNK) &&
                    chunk_flush(st, o, &c, stats, errstr, errstr_size))
                        goto done;
        }
        ret = 0;
done:
        stats->to = c.next;
        chunk_clear(&c);
        free(c.evs);
        free(c.set_done);
        if (rkqu)
                rd_kafka_queue_destroy(rkqu);
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return ret;
}

/* ------------------------------------------------------------------ */
/* The reactor's side                                                  */

typedef struct restore_part_s {
        pd_restore_fn_t *fn;
        void *arg;
} restore_part_t;

/* A restore transaction is a part of the open batch (consumer/txn.c):
 * crash points restore.*, retried on a busy store like any other. */
static int txn_restore(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        restore_part_t *p = arg;

        (void)oq;
        return p->fn(r->st, p->arg);
}

static int restore_txn_reactor(void *opaque, pd_restore_fn_t *fn, void *arg) {
        restore_part_t p = {fn, arg};

        return pd__reactor_txn_sync((pd_reactor_t *)opaque, txn_restore, &p);
}

/* A stop asked (r->stop is set once pd_reactor_run runs), or a lost batch
 * (the reactor is made again). */
static int restore_give_up(void *opaque) {
        pd_reactor_t *r = opaque;
        int lost;

        /* The main thread restores: the supervisor hears from it. */
        pd__reactor_lease_ping(r);
        pthread_mutex_lock(&r->st_lock);
        lost = r->lost;
        pthread_mutex_unlock(&r->st_lock);
        return (r->stop && *r->stop) || lost;
}

int pd__restore_partition(pd_reactor_t *r, int32_t part, char *errstr,
                          size_t size) {
        pd_restore_opts_t o     = {0};
        pd_restore_stats_t stat = {0};
        int64_t t0              = pd_mono_ms();
        rd_kafka_conf_t *kconf;

        if (!(kconf = pd_kafka_conf(r->conf, NULL, r->brokers, errstr, size)))
                return -1;
        o.topic           = r->conf->topic_results;
        o.part            = part;
        o.secret          = r->secret;
        o.secret_len      = r->secret_len;
        o.idle_timeout_ms = 30000;
        o.txn             = restore_txn_reactor;
        o.txn_opaque      = r;
        o.give_up         = restore_give_up;
        o.give_up_opaque  = r;
        if (pd_restore_apply(r->st, kconf, &o, &stat, errstr, size))
                return -1;
        pd_log(PD_LOG_INFO,
               "restored %s [%d]%s: offsets %" PRId64 "..%" PRId64 ", %" PRId64
               " records, %" PRId64 " runs applied, %" PRId64
               " of ours, %" PRId64 " runs cleared first, %" PRId64 " ms",
               o.topic, (int)part, stat.dirty ? " from the start (dirty)" : "",
               stat.from, stat.to, stat.records, stat.applied, stat.own,
               stat.cleared, pd_mono_ms() - t0);
        return 0;
}

static int txn_restore_forget(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        (void)oq;
        return pd_store_part_forget(r->st, *(int32_t *)arg);
}

void pd__restore_forget(pd_reactor_t *r, int32_t part) {
        /* Fails only when the store cannot be written and the reactor
         * fails with it (r->lost). */
        if (pd__reactor_txn_sync(r, txn_restore_forget, &part))
                pd_log(PD_LOG_ERROR,
                       "cannot mark the restore checkpoint of %s [%d] "
                       "dirty: %s",
                       r->conf->topic_results, (int)part,
                       pd_store_errmsg(r->st));
}
