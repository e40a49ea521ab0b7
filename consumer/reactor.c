/*
 * reactor.c - see reactor.h for what the reactor does and which thread does
 * what. The shape of one event's life:
 *
 *   main thread: poll -> decode -> (bad: dead-letter through the outbox)
 *                     -> (seen before: done) -> queue to the tenant's worker
 *   worker:      plan (deploy.planned) -> for each action: started, run,
 *                finished -> mark the event done
 *   main thread: the worker's completion -> store the partition's offset
 *                once every earlier event of that partition is done too
 *
 * Every store change and the result records it implies are written in one
 * transaction part (pd_reactor_txn), and parts are committed in batches
 * (group commit); the records are produced after their batch commits and
 * deleted from the outbox when the broker acknowledges them.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "consumer/reactor.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/argv.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/random.h"
#include "common/sign.h"
#include "consumer/metrics.h"
#include "consumer/plugin.h"
#include "consumer/runner.h"
#include "consumer/supervisor.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"
#include "state/store.h"

extern char **environ;

/* An event taken from a partition; also its place in the partition's list
 * of events whose offsets are not stored yet. */
typedef struct pd_job_s {
        struct pd_job_s *next;      /* worker queue / done queue */
        struct pd_job_s *pnext;     /* partition order */
        pd_event_t *ev;             /* owned until the worker is done */
        char *tenant;               /* resolved tenant, owned */
        int32_t partition;
        int64_t offset;
        int64_t gen;                /* the batch that marks it done */
        int done;
} pd_job_t;

/* Events of one partition, oldest first, whose offsets are not stored. */
typedef struct pd_partq_s {
        pd_job_t *head, *tail;
} pd_partq_t;

/* A finished command run the supervisor may forget once the batch that
 * records its outcome is durable. */
typedef struct pd_forget_s {
        int64_t sup_id;             /* the run's name at the supervisor */
        int64_t gen;
} pd_forget_t;

typedef struct pd_worker_s {
        struct pd_reactor_s *r;
        int idx;
        pthread_t thread;
        const char *tenant;         /* whose job it runs, under r->lock */
        volatile int cancel;        /* kills the running action */
        pd_sup_t *sup;              /* this worker's supervisor connection */
        pd_forget_t *forget;        /* runs to forget once durable */
        size_t forget_cnt, forget_size;
} pd_worker_t;

/* A command run a crashed reactor left to the supervisor, still going:
 * the step of its redelivered event waits for it instead of starting it
 * again. */
typedef struct pd_adopt_s {
        int64_t run_id;
        int64_t sup_id;
        int32_t attempt;
        int64_t started_at;
        char *tenant, *action, *trigger_source, *trigger_id;
} pd_adopt_t;

/* A record written to the outbox in the current transaction, produced once
 * the transaction commits. */
typedef struct pd_outrec_s {
        int64_t seq;
        char *topic;
        char *key;
        void *headers;
        size_t headers_len;
        void *value;
        size_t value_len;
} pd_outrec_t;

typedef struct pd_outq_s {
        pd_outrec_t *recs;
        size_t cnt, size;
} pd_outq_t;

/* Records a batch to produce once it commits, and the names of its parts
 * for their crash points. Taken whole by the committing thread. */
typedef struct pd_batch_s {
        pd_outq_t oq;
        const char **names;
        size_t name_cnt, name_size;
} pd_batch_t;

struct pd_reactor_s {
        const pd_config_t *conf;    /* replaced only while no worker runs */
        char name[256];     /* the `reactor` field of what we publish */
        char source[300];   /* ce_source of what we publish */
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        char brokers[512];  /* as given, for messages */

        pd_store_t *st;
        pd_store_t *ckpt_st;        /* the committer's, for checkpoints */
        pthread_mutex_t st_lock;    /* serialises every store call */
        /* Group commit (see "Transactions"); under st_lock: */
        int batch_open;             /* a store transaction is open */
        int64_t batch_gen;          /* the open (or next) batch's number */
        pd_batch_t batch;           /* what the open batch holds */
        pthread_cond_t batch_cond;  /* a batch opened, or stop */
        int lost;                   /* a batch was lost: what is in memory
                                     * is ahead of the disk, so no later
                                     * batch may commit (it would make the
                                     * lost one look durable) until the
                                     * reactor is made again */
        int committer_stop;
        int committer_idle;         /* waits on batch_cond */
        int committer_started;
        pthread_t committer;
        /* Under pr_lock, held while a committed batch is produced: */
        pthread_mutex_t pr_lock;
        pthread_cond_t pr_cond;     /* produced_gen moved, or failed */
        int64_t produced_gen;       /* last batch committed and produced */
        int batch_failed;           /* a batch was lost: the reactor stops */
        int restart;                /* ... by a store fault that may clear
                                     * (disk full, I/O): pd_reactor_run
                                     * returns 1, to be made again */
        int64_t keep_runs_ms;       /* retention; 0: keep everything */
        char sup_dir[512];          /* the supervisor's folder */
        unsigned char *secret;      /* signing key; NULL: unsigned is fine */
        size_t secret_len;
        pd_sup_t *sup;              /* the main thread's connection */
        pd_adopt_t *adopt;          /* runs to adopt, under r->lock */
        size_t adopt_cnt;

        pthread_mutex_t lock;       /* worker queues, done queue, flags */
        pthread_cond_t cond;        /* signalled on new work and stop */
        pd_worker_t *workers;
        int worker_cnt;
        pd_job_t *queue_head;       /* events waiting for a worker, in the */
        pd_job_t *queue_tail;       /* order they were consumed */
        pd_job_t *done_head;        /* finished jobs for the main thread */
        int draining;               /* workers: finish the job, take no more */
        int paused;                 /* workers: take no new job (reload) */
        pd_reload_t reload;
        pd_config_t *next_conf;     /* loaded, waiting for idle workers */
        int fatal;                  /* a worker hit an unrecoverable error */
        volatile sig_atomic_t *stop; /* pd_reactor_run's: a stop is asked */
        /* When a stop must be over (shutdown_grace after it was first
         * seen), 0 before; any thread, lock-free (see pd_reactor_deadline).
         */
        _Atomic int64_t stop_deadline;
        _Atomic int64_t grace_ms;   /* the config's shutdown_grace */
        rd_kafka_resp_err_t offsets_err; /* last offsets_store error */

        pthread_mutex_t dr_lock;    /* delivered outbox seqs */
        int64_t *delivered;
        size_t delivered_cnt, delivered_size;

        pd_partq_t *partqs;         /* main thread only */
        int32_t partq_cnt;
        size_t inflight;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void *pd_xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size);
        if (!p)
                abort();
        return p;
}

static char *pd_xstrdup(const char *s) {
        char *p = strdup(s ? s : "");
        if (!p)
                abort();
        return p;
}

static void pd_sleep_ms(int64_t ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* pthread_cond_timedwait for at most ms (the conds use CLOCK_REALTIME). */
static void pd_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock,
                            int64_t ms) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(cond, lock, &ts);
}

/* How often a waiting thread looks at the stop flag, which a signal
 * handler sets and so cannot signal a condition variable. */
#define PD_STOP_POLL_MS 100

/*
 * The time by which a stop must be over: shutdown_grace after whichever
 * thread first saw the stop flag (or after pd_reactor_deadline_set), 0
 * while no stop is asked. Lock-free, for the store's busy handler.
 */
static int64_t pd_reactor_deadline(pd_reactor_t *r) {
        int64_t d = atomic_load(&r->stop_deadline);

        if (!d && r->stop && *r->stop) {
                int64_t want = pd_now_ms() + atomic_load(&r->grace_ms);

                d = atomic_compare_exchange_strong(&r->stop_deadline, &d, want)
                        ? want
                        : atomic_load(&r->stop_deadline);
        }
        return d;
}

/* Starts the grace now unless a stop already started it; returns the
 * deadline. For a stop without the flag (a fatal error). */
static int64_t pd_reactor_deadline_set(pd_reactor_t *r) {
        int64_t d = pd_reactor_deadline(r), want;

        if (d)
                return d;
        want = pd_now_ms() + atomic_load(&r->grace_ms);
        return atomic_compare_exchange_strong(&r->stop_deadline, &d, want)
                   ? want
                   : d;
}

/* Whether the grace of a stop is over: whoever still waits to retry
 * something must give up now. */
static int pd_reactor_grace_over(pd_reactor_t *r) {
        int64_t d = pd_reactor_deadline(r);

        return d && pd_now_ms() >= d;
}

/* pd_store_set_give_up's callback: a statement waiting for another
 * process's lock stops waiting once the grace is over. */
static int pd_reactor_store_give_up(void *opaque) {
        return pd_reactor_grace_over(opaque);
}

/* ------------------------------------------------------------------ */
/* Fault injection                                                     */

/*
 * The crash tests kill the reactor at named points of an event's life:
 * PD_CRASH_AT=NAME[:N] makes it SIGKILL itself the N-th time (default the
 * first) it passes point NAME. The environment is read once, so a point
 * costs one pointer test when no test asks for it. In-process tests hook
 * every point instead (pd_reactor_set_fault_hook).
 */
static const char *pd_crash_at;
static int pd_crash_nth = 1;
static atomic_int pd_crash_hits;

static void pd_crash_init(void) {
        static char name[128];
        const char *v = getenv("PD_CRASH_AT");
        char *colon;

        if (!v || !*v)
                return;
        snprintf(name, sizeof(name), "%s", v);
        if ((colon = strchr(name, ':'))) {
                *colon       = '\0';
                pd_crash_nth = atoi(colon + 1) > 0 ? atoi(colon + 1) : 1;
        }
        pd_crash_at = name;
}

static void (*pd_fault_hook)(const char *point);

void pd_reactor_set_fault_hook(void (*hook)(const char *point)) {
        pd_fault_hook = hook;
}

static void pd_crashpoint(const char *name) {
        if (pd_fault_hook)
                pd_fault_hook(name);
        if (!pd_crash_at || strcmp(name, pd_crash_at))
                return;
        if (atomic_fetch_add(&pd_crash_hits, 1) + 1 != pd_crash_nth)
                return;
        pd_log(PD_LOG_WARN, "PD_CRASH_AT=%s: killing myself", name);
        raise(SIGKILL);
}

/* pd_crashpoint("NAME.SUFFIX") for a transaction named NAME. */
static void pd_crashpoint2(const char *name, const char *suffix) {
        char point[160];

        if (!pd_crash_at && !pd_fault_hook)
                return;
        snprintf(point, sizeof(point), "%s.%s", name, suffix);
        pd_crashpoint(point);
}

/* ------------------------------------------------------------------ */
/* Outbox                                                              */

static void pd_outq_clear(pd_outq_t *oq) {
        for (size_t i = 0; i < oq->cnt; i++) {
                free(oq->recs[i].topic);
                free(oq->recs[i].key);
                free(oq->recs[i].headers);
                free(oq->recs[i].value);
        }
        oq->cnt = 0;
}

static void pd_outq_destroy(pd_outq_t *oq) {
        pd_outq_clear(oq);
        free(oq->recs);
        oq->recs = NULL;
        oq->size = 0;
}

/* Serialises headers as name\0value\0 pairs (values are our own text). */
static void *pd_headers_pack(const rd_kafka_headers_t *hdrs, size_t *lenp) {
        const char *name;
        const void *val;
        size_t size, len = 0, i;
        char *buf, *p;

        for (i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++)
                len += strlen(name) + 1 + size + 1;
        p = buf = pd_xcalloc(1, len + 1);
        for (i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size);
             i++) {
                size_t nlen = strlen(name) + 1;
                memcpy(p, name, nlen);
                p += nlen;
                if (size)
                        memcpy(p, val, size);
                p += size;
                *p++ = '\0';
        }
        *lenp = len;
        return buf;
}

static rd_kafka_headers_t *pd_headers_unpack(const void *buf, size_t len) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
        const char *p = buf, *end = p + len;

        while (p < end) {
                const char *name = p;
                const char *val  = name + strnlen(name, (size_t)(end - name)) + 1;
                size_t vlen;

                if (val >= end)
                        break;
                vlen = strnlen(val, (size_t)(end - val));
                rd_kafka_header_add(hdrs, name, -1, val, (ssize_t)vlen);
                p = val + vlen + 1;
        }
        return hdrs;
}

/* Adds a record to the outbox (inside the caller's transaction) and keeps
 * a copy in oq for producing after the commit. Takes ownership of value and
 * hdrs. Returns 0 or -1 (store error). */
static int pd_outbox_put(pd_reactor_t *r, pd_outq_t *oq, const char *topic,
                         const char *key, rd_kafka_headers_t *hdrs,
                         void *value, size_t value_len) {
        pd_outbox_rec_t rec = {0};
        pd_outrec_t *o;

        if (oq->cnt == oq->size) {
                oq->size = oq->size ? oq->size * 2 : 8;
                oq->recs = realloc(oq->recs, oq->size * sizeof(*oq->recs));
                if (!oq->recs)
                        abort();
        }
        o = &oq->recs[oq->cnt];
        memset(o, 0, sizeof(*o));
        o->topic     = pd_xstrdup(topic);
        o->key       = key ? pd_xstrdup(key) : NULL;
        o->headers   = pd_headers_pack(hdrs, &o->headers_len);
        o->value     = value;
        o->value_len = value_len;
        rd_kafka_headers_destroy(hdrs);
        oq->cnt++;

        rec.topic       = o->topic;
        rec.key         = o->key;
        rec.headers     = o->headers;
        rec.headers_len = o->headers_len;
        rec.value       = o->value;
        rec.value_len   = o->value_len;
        if (pd_store_outbox_add(r->st, &rec))
                return -1;
        o->seq = rec.seq;
        return 0;
}

/* Encodes ev (stamped as ours) into the outbox for the results topic.
 * With a signing key it is signed here, before the outbox keeps its
 * headers: results are what `deploy --wait` and `report` believe, so
 * writing to the results topic must not be enough to forge a SUCCEEDED.
 * A record produced again after a restart is the stored one, signature
 * included. */
static int pd_emit(pd_reactor_t *r, pd_outq_t *oq, pd_event_t *ev,
                   const char *key) {
        rd_kafka_headers_t *hdrs;
        char errstr[256];
        void *buf;
        size_t len;

        pd_event_stamp(ev, r->source);
        if (pd_event_encode(ev, &buf, &len, errstr, sizeof(errstr))) {
                /* Our own events always encode: a failure is a bug. */
                pd_log(PD_LOG_ERROR, "cannot encode %s: %s",
                       pd_evtype_name(ev->type), errstr);
                abort();
        }
        if (!key)
                key = ev->tenant;
        hdrs = pd_event_headers(ev);
        /* Our headers and keys never hold a newline: only OpenSSL can
         * fail, and an unsigned result would be refused by every CLI. */
        if (r->secret &&
            pd_sign_headers(hdrs, key, key ? strlen(key) : 0, buf, len,
                            r->secret, r->secret_len, errstr,
                            sizeof(errstr))) {
                pd_log(PD_LOG_ERROR, "cannot sign %s: %s",
                       pd_evtype_name(ev->type), errstr);
                abort();
        }
        return pd_outbox_put(r, oq, r->conf->topic_results, key, hdrs, buf,
                             len);
}

/* Produces one outbox record; its delivery report deletes it. */
static void pd_produce_rec(pd_reactor_t *r, int64_t seq, const char *topic,
                           const char *key, const void *headers,
                           size_t headers_len, const void *value,
                           size_t value_len) {
        rd_kafka_resp_err_t err;
        rd_kafka_headers_t *hdrs;

        for (;;) {
                hdrs = pd_headers_unpack(headers, headers_len);
                err  = rd_kafka_producev(
                    r->producer, RD_KAFKA_V_TOPIC(topic),
                    /* The registry always goes to partition 0, so a
                     * client finds it without reading every partition. */
                    RD_KAFKA_V_PARTITION(key && !strcmp(key, PD_REGISTRY_KEY)
                                             ? 0
                                             : RD_KAFKA_PARTITION_UA),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(hdrs),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);
                if (!err) {
                        pd_metrics_outbox_add(1);
                        return;
                }
                rd_kafka_headers_destroy(hdrs);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* It stays in the outbox and goes out on restart. */
                        pd_log(PD_LOG_ERROR,
                               "cannot produce to %s (outbox #%" PRId64
                               "): %s",
                               topic, seq, rd_kafka_err2str(err));
                        return;
                }
                rd_kafka_poll(r->producer, 100);
        }
}

static void pd_outq_produce(pd_reactor_t *r, pd_outq_t *oq) {
        for (size_t i = 0; i < oq->cnt; i++) {
                pd_outrec_t *o = &oq->recs[i];
                pd_produce_rec(r, o->seq, o->topic, o->key, o->headers,
                               o->headers_len, o->value, o->value_len);
        }
        pd_outq_clear(oq);
}

/* Producer delivery report (main thread, from rd_kafka_poll). */
static void pd_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                     void *opaque) {
        pd_reactor_t *r = opaque;
        int64_t seq     = (int64_t)(intptr_t)rkm->_private;

        (void)rk;
        if (rkm->err) {
                /* With message.timeout.ms=0 only permanent errors get here;
                 * the record stays in the outbox for the next start. */
                pd_log(PD_LOG_ERROR,
                       "delivery to %s failed (outbox #%" PRId64 "): %s",
                       rd_kafka_topic_name(rkm->rkt), seq,
                       rd_kafka_err2str(rkm->err));
                return;
        }
        pd_metrics_outbox_add(-1);
        pthread_mutex_lock(&r->dr_lock);
        if (r->delivered_cnt == r->delivered_size) {
                r->delivered_size = r->delivered_size ? r->delivered_size * 2
                                                      : 256;
                r->delivered = realloc(r->delivered, r->delivered_size *
                                                         sizeof(*r->delivered));
                if (!r->delivered)
                        abort();
        }
        r->delivered[r->delivered_cnt++] = seq;
        pthread_mutex_unlock(&r->dr_lock);
}

/* ------------------------------------------------------------------ */
/* Transactions: group commit                                          */

/*
 * Every change joins one open store transaction, the batch, as a part of
 * its own (a savepoint), and batches commit one after the other. A change
 * is durable when its batch commits; the records it put in the outbox are
 * produced right after that commit, in commit order, and never before. A
 * batch commits when a caller needs its change durable before doing
 * something the world can see (spawning a command, letting the supervisor
 * forget an outcome, storing an offset: pd_reactor_txn_sync), or else
 * within 2 x PD_BATCH_MS, from the committer thread. Since batches commit in
 * order, what is durable after a crash is always a prefix of what was
 * done: a change is never durable without every change made before it.
 * One commit then writes the pages that many actions share instead of
 * writing them again for each action.
 */
#define PD_BATCH_MS 2

static void pd_outq_move(pd_outq_t *dst, pd_outq_t *src) {
        for (size_t i = 0; i < src->cnt; i++) {
                if (dst->cnt == dst->size) {
                        dst->size = dst->size ? dst->size * 2 : 64;
                        dst->recs = realloc(dst->recs,
                                            dst->size * sizeof(*dst->recs));
                        if (!dst->recs)
                                abort();
                }
                dst->recs[dst->cnt++] = src->recs[i];
        }
        src->cnt = 0;
}

static void pd_batch_add_name(pd_batch_t *b, const char *name) {
        if (b->name_cnt == b->name_size) {
                b->name_size = b->name_size ? b->name_size * 2 : 64;
                b->names = realloc(b->names, b->name_size * sizeof(*b->names));
                if (!b->names)
                        abort();
        }
        b->names[b->name_cnt++] = name;
}

static void pd_batch_crashpoints(const pd_batch_t *b, const char *suffix) {
        for (size_t i = 0; i < b->name_cnt; i++)
                pd_crashpoint2(b->names[i], suffix);
}

/*
 * Marks this reactor failed and wakes every waiter of a batch: a batch was
 * lost, so what the reactor holds in memory is ahead of what is durable.
 * may_clear: the store's error is one that can go away (disk full, I/O,
 * locked); the reactor is then made again from the durable state, as a
 * restart would, instead of exiting (pd_reactor_run returns 1).
 */
static void pd_batch_fail(pd_reactor_t *r, const char *msg, int may_clear) {
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
static int pd_batch_open(pd_reactor_t *r) {
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
static int pd_batch_commit(pd_reactor_t *r) {
        pd_batch_t b = r->batch;
        int64_t gen  = r->batch_gen;
        double began;
        char msg[512];

        assert(r->batch_open);
        pd_batch_crashpoints(&b, "before_commit");
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
                pd_batch_fail(r, msg, may_clear);
                pd_outq_destroy(&b.oq);
                free(b.names);
                return -1;
        }
        pd_metrics_commit_observe(pd_metrics_clock() - began);
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);
        r->batch_open = 0;
        memset(&r->batch, 0, sizeof(r->batch));
        r->batch_gen++;
        pthread_mutex_lock(&r->pr_lock);
        pthread_mutex_unlock(&r->st_lock);
        pd_batch_crashpoints(&b, "after_commit");
        pd_outq_produce(r, &b.oq);
        pd_batch_crashpoints(&b, "after_produce");
        r->produced_gen = gen;
        pthread_cond_broadcast(&r->pr_cond);
        pthread_mutex_unlock(&r->pr_lock);
        pd_outq_destroy(&b.oq);
        free(b.names);
        return 0;
}

static int pd_batch_wait(pd_reactor_t *r, int64_t gen);

/*
 * Waits until batch gen is committed and its records produced, committing
 * it now if it is still open. Called with st_lock held, returns with it
 * released. Returns 0, or -1 if the batch was lost (the reactor stops).
 */
static int pd_batch_sync(pd_reactor_t *r, int64_t gen) {
        if (r->batch_open && r->batch_gen == gen) {
                if (pd_batch_commit(r))
                        return -1;
        } else {
                pthread_mutex_unlock(&r->st_lock);
        }
        return pd_batch_wait(r, gen);
}

/* Whether batch gen is committed and its records produced (any thread). */
static int pd_batch_produced(pd_reactor_t *r, int64_t gen) {
        int64_t produced;

        pthread_mutex_lock(&r->pr_lock);
        produced = r->produced_gen;
        pthread_mutex_unlock(&r->pr_lock);
        return produced >= gen;
}

/* Waits until batch gen is committed and produced; -1 if it was lost. */
static int pd_batch_wait(pd_reactor_t *r, int64_t gen) {
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
static int pd_batch_flush(pd_reactor_t *r) {
        pthread_mutex_lock(&r->st_lock);
        return pd_batch_sync(r, r->batch_open ? r->batch_gen
                                              : r->batch_gen - 1);
}

/* How often the committer checkpoints the WAL while batches commit. */
#define PD_CHECKPOINT_MS 200

/* Copies the WAL back into the database through the committer's own
 * handle, so no thread holding st_lock pays for it. */
static void pd_committer_checkpoint(pd_reactor_t *r, int64_t *lastp) {
        int64_t now = pd_now_ms();

        if (!r->ckpt_st || now - *lastp < PD_CHECKPOINT_MS)
                return;
        *lastp = now;
        if (pd_store_checkpoint(r->ckpt_st) &&
            !pd_store_retriable(r->ckpt_st))
                pd_log(PD_LOG_WARN, "state store checkpoint: %s",
                       pd_store_errmsg(r->ckpt_st));
}

static void pd_committer_prune(pd_reactor_t *r, int64_t *nextp);

/* After this long without a batch the committer sleeps until one opens;
 * meanwhile it ticks every PD_BATCH_MS and is never woken per batch. */
#define PD_COMMITTER_IDLE_MS 100

/* The committer thread: a batch nobody waits for commits within two ticks
 * of PD_BATCH_MS, so results keep flowing; and the WAL is checkpointed and
 * the history pruned from here. */
static void *pd_committer_main(void *arg) {
        pd_reactor_t *r   = arg;
        int64_t last_ckpt  = pd_now_ms();
        int64_t next_prune = 0; /* at once: a start may find a backlog */
        int64_t seen_gen   = 0; /* the batch open at the last tick */
        int idle_ticks    = 0;

        pthread_mutex_lock(&r->st_lock);
        while (!r->committer_stop) {
                if (r->batch_open && r->batch_gen == seen_gen) {
                        pd_batch_commit(r); /* open for a whole tick */
                        pthread_mutex_lock(&r->st_lock);
                }
                seen_gen   = r->batch_open ? r->batch_gen : 0;
                idle_ticks = seen_gen ? 0 : idle_ticks + 1;
                if (idle_ticks * PD_BATCH_MS >= PD_COMMITTER_IDLE_MS &&
                    !r->committer_stop) {
                        r->committer_idle = 1;
                        pthread_cond_wait(&r->batch_cond, &r->st_lock);
                        r->committer_idle = 0;
                        idle_ticks        = 0;
                        continue;
                }
                pthread_mutex_unlock(&r->st_lock);
                pd_committer_checkpoint(r, &last_ckpt);
                pd_committer_prune(r, &next_prune);
                pd_sleep_ms(PD_BATCH_MS);
                pthread_mutex_lock(&r->st_lock);
        }
        pthread_mutex_unlock(&r->st_lock);
        return NULL;
}

typedef int(pd_txn_fn_t)(pd_reactor_t *r, pd_outq_t *oq, void *arg);

/* Every transaction is named after its function, pd_txn_NAME, for the
 * crash points NAME.before_commit, NAME.after_commit, NAME.after_produce
 * (passed when the batch holding it commits and is produced).
 * pd_reactor_txn returns once the change is in the open batch;
 * pd_reactor_txn_sync once it is committed and its records produced;
 * pd_reactor_txn_gen like pd_reactor_txn, and sets *genp to the batch
 * holding the change (durable once pd_batch_produced says so). */
#define pd_txn_name(fn) (#fn + sizeof("pd_txn_") - 1)
#define pd_reactor_txn(r, fn, arg)                                             \
        pd_reactor_txn_named((r), (fn), (arg), pd_txn_name(fn), 0, NULL)
#define pd_reactor_txn_sync(r, fn, arg)                                        \
        pd_reactor_txn_named((r), (fn), (arg), pd_txn_name(fn), 1, NULL)
#define pd_reactor_txn_gen(r, fn, arg, genp)                                   \
        pd_reactor_txn_named((r), (fn), (arg), pd_txn_name(fn), 0, (genp))

/* Rolls the whole batch back after SQLite lost part of it (st_lock held).
 * Returns 1 if no other part was in it, 0 if other parts were lost. */
static int pd_batch_drop(pd_reactor_t *r) {
        int empty = r->batch.name_cnt == 0;

        r->lost |= !empty;
        if (pd_store_in_txn(r->st))
                pd_store_rollback(r->st);
        r->batch_open = 0;
        pd_outq_destroy(&r->batch.oq);
        free(r->batch.names);
        memset(&r->batch, 0, sizeof(r->batch));
        return empty;
}

/* Undoes a failed part whose savepoint was opened (st_lock held).
 * Returns 1 if every other part of the batch is intact, 0 if not. */
static int pd_txn_undo(pd_reactor_t *r) {
        if (pd_store_in_txn(r->st) && !pd_store_part_undo(r->st))
                return 1;
        /* SQLite rolled the whole transaction back (disk full, I/O). */
        return pd_batch_drop(r);
}

/* Whether a transaction that keeps failing should stop retrying: the
 * reactor failed (it is made again from what is durable), or a stop's
 * grace is over. */
static int pd_reactor_txn_give_up(pd_reactor_t *r) {
        int fatal;

        pthread_mutex_lock(&r->lock);
        fatal = r->fatal;
        pthread_mutex_unlock(&r->lock);
        return fatal || pd_reactor_grace_over(r);
}

/* Waits ms before a transaction's next try, less if it must give up. */
static void pd_reactor_txn_nap(pd_reactor_t *r, int64_t ms) {
        int64_t end = pd_now_ms() + ms, left;

        pthread_mutex_lock(&r->lock);
        while (!r->fatal && (left = end - pd_now_ms()) > 0) {
                int64_t d = pd_reactor_deadline(r);

                if (d && d - pd_now_ms() < left)
                        left = d - pd_now_ms();
                if (left <= 0)
                        break;
                pd_cond_wait_ms(&r->cond, &r->lock,
                                left < PD_STOP_POLL_MS ? left
                                                       : PD_STOP_POLL_MS);
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
static int pd_reactor_txn_named(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                                const char *name, int sync,
                                int64_t *genp) {
        pd_outq_t oq    = {0};
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
                if (pd_batch_open(r)) {
                        /* Nothing open: nothing to undo. */
                } else if (pd_store_part_begin(r->st)) {
                        intact = pd_store_in_txn(r->st) || pd_batch_drop(r);
                } else if (fn(r, &oq, arg) || pd_store_part_end(r->st)) {
                        snprintf(msg, sizeof(msg), "%s",
                                 pd_store_errmsg(r->st));
                        retriable = pd_store_retriable(r->st);
                        intact    = pd_txn_undo(r);
                        goto failed;
                } else {
                        pd_outq_move(&r->batch.oq, &oq);
                        pd_batch_add_name(&r->batch, name);
                        if (genp)
                                *genp = r->batch_gen;
                        if (sync) {
                                ret = pd_batch_sync(r, r->batch_gen);
                        } else {
                                pthread_mutex_unlock(&r->st_lock);
                                ret = 0;
                        }
                        break;
                }
                snprintf(msg, sizeof(msg), "%s", pd_store_errmsg(r->st));
                retriable = pd_store_retriable(r->st);
        failed:
                pd_outq_clear(&oq);
                /* The others' parts need not wait for our backoff. */
                if (r->batch_open)
                        pd_batch_commit(r);
                else
                        pthread_mutex_unlock(&r->st_lock);
                if (!retriable || !intact) {
                        pd_batch_fail(r,
                                      intact ? msg
                                             : "a failed transaction lost "
                                               "others committed with it",
                                      retriable);
                        break;
                }
                if (pd_reactor_txn_give_up(r)) {
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
                pd_reactor_txn_nap(r, backoff);
                if (backoff < 10000)
                        backoff *= 2;
        }
        pd_outq_destroy(&oq);
        return ret;
}

typedef struct pd_reap_s {
        const int64_t *seqs;
        size_t cnt;
} pd_reap_t;

static int pd_seq_cmp(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Deletes the delivered seqs (sorted), one statement per run of
 * consecutive seqs: records are delivered mostly in order. */
static int pd_txn_reap(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_reap_t *rp = arg;

        (void)oq;
        for (size_t i = 0, j; i < rp->cnt; i = j) {
                for (j = i + 1; j < rp->cnt && rp->seqs[j] <= rp->seqs[j - 1] + 1;
                     j++)
                        ;
                if (pd_store_outbox_del_range(r->st, rp->seqs[i],
                                              rp->seqs[j - 1]))
                        return -1;
        }
        return 0;
}

/*
 * Runs fn once, as a part of the open batch, for housekeeping that is as
 * good done later (trimming the outbox, pruning history): a failure is
 * logged ("cannot WHAT: why") and its part undone, never retried. If
 * SQLite rolled the whole batch back with it, the reactor fails as for any
 * lost batch. Any thread, st_lock not held. Returns 0, or -1.
 */
static int pd_reactor_txn_try(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                              const char *what) {
        char msg[512];
        int ret = -1;

        pthread_mutex_lock(&r->st_lock);
        if (r->lost) {
                /* Left for after the rebuild: nothing joins a batch that
                 * cannot commit. */
        } else if (pd_batch_open(r) || pd_store_part_begin(r->st)) {
                pd_log(PD_LOG_WARN, "cannot %s: %s", what,
                       pd_store_errmsg(r->st));
        } else if (fn(r, NULL, arg) || pd_store_part_end(r->st)) {
                pd_log(PD_LOG_WARN, "cannot %s: %s", what,
                       pd_store_errmsg(r->st));
                if (!pd_txn_undo(r)) {
                        int may_clear = pd_store_retriable(r->st);

                        pthread_mutex_unlock(&r->st_lock);
                        snprintf(msg, sizeof(msg),
                                 "failing to %s lost others committed "
                                 "with it",
                                 what);
                        pd_batch_fail(r, msg, may_clear);
                        return -1;
                }
        } else {
                ret = 0;
        }
        pthread_mutex_unlock(&r->st_lock);
        return ret;
}

/* Deletes delivered records from the outbox, in the open batch. Not
 * retried: a record left behind is produced again on restart. */
static void pd_outbox_reap(pd_reactor_t *r) {
        pd_reap_t rp;
        int64_t *seqs;

        pthread_mutex_lock(&r->dr_lock);
        seqs             = r->delivered;
        rp.seqs          = seqs;
        rp.cnt           = r->delivered_cnt;
        r->delivered     = NULL;
        r->delivered_cnt = r->delivered_size = 0;
        pthread_mutex_unlock(&r->dr_lock);
        if (!rp.cnt)
                return;
        qsort(seqs, rp.cnt, sizeof(*seqs), pd_seq_cmp);

        pd_crashpoint("reap.before_delete");
        pd_reactor_txn_try(r, pd_txn_reap, &rp, "trim the outbox");
        free(seqs);
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
#define PD_PRUNE_MS 5000
#define PD_PRUNE_BACKLOG_MS 50
#define PD_PRUNE_ROWS 500

typedef struct pd_prune_s {
        int64_t before_ms;
        int deleted;
} pd_prune_t;

static int pd_txn_prune(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_prune_t *pr = arg;

        (void)oq;
        return pd_store_prune(r->st, pr->before_ms, PD_PRUNE_ROWS,
                              &pr->deleted);
}

/* One slice of pruning if one is due (the committer's thread). */
static void pd_committer_prune(pd_reactor_t *r, int64_t *nextp) {
        int64_t now = pd_now_ms();
        pd_prune_t pr;

        if (!r->keep_runs_ms || now < *nextp)
                return;
        pr.before_ms = now - r->keep_runs_ms;
        pr.deleted   = 0;
        if (pd_reactor_txn_try(r, pd_txn_prune, &pr, "prune the history")) {
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

/* ------------------------------------------------------------------ */
/* Running one deploy event (worker threads)                           */

/* One action of a plan. */
typedef struct pd_step_s {
        const pd_action_def_t *def; /* NULL for a rejected name */
        const char *name;
        int finished;               /* has a final outcome */
        pd_status_t status;
} pd_step_t;

typedef struct pd_plan_s {
        pd_job_t *job;
        pd_step_t *steps;
        size_t cnt;
} pd_plan_t;

/* Whether step i of plan must wait for a step not placed yet. */
static int pd_plan_waits(const pd_plan_t *plan, const pd_step_t *steps,
                         const int *placed, size_t i) {
        const pd_action_def_t *def = steps[i].def;

        for (size_t a = 0; def && a < def->after.cnt; a++)
                for (size_t j = 0; j < plan->cnt; j++)
                        if (!placed[j] && j != i && steps[j].def &&
                            !strcmp(steps[j].name, def->after.v[a]))
                                return 1;
        return 0;
}

/*
 * Puts every step after the steps it names in `after`, keeping config order
 * otherwise: each round places the first step in config order whose
 * dependencies are placed. The config has no cycles (pd_config_validate),
 * so every round places one.
 */
static void pd_plan_order(pd_plan_t *plan) {
        pd_step_t *sorted = pd_xcalloc(plan->cnt + 1, sizeof(*sorted));
        int *placed       = pd_xcalloc(plan->cnt + 1, sizeof(*placed));

        for (size_t n = 0; n < plan->cnt; n++) {
                size_t i = 0;
                while (i < plan->cnt &&
                       (placed[i] || pd_plan_waits(plan, plan->steps, placed, i)))
                        i++;
                assert(i < plan->cnt);
                placed[i] = 1;
                sorted[n] = plan->steps[i];
        }
        memcpy(plan->steps, sorted, plan->cnt * sizeof(*sorted));
        free(sorted);
        free(placed);
}

/* Builds the list of actions the event selects for its tenant: the named
 * ones (deploy --one, skip or reset by name), or those whose state fits
 * (pending for a deploy or a skip, done for a reset). Called with the store
 * lock held. */
static int pd_plan_build(pd_reactor_t *r, pd_plan_t *plan) {
        const pd_event_t *ev = plan->job->ev;
        const char *tenant   = plan->job->tenant;
        const pd_config_t *conf = r->conf;
        int deploy = ev->type == PD_EVT_RELEASE_DEPLOYED;
        size_t i;

        plan->steps = pd_xcalloc(conf->action_cnt + ev->actions.cnt + 1,
                                 sizeof(*plan->steps));
        plan->cnt   = 0;

        if (deploy ? ev->selection == PD_SEL_ONE : !ev->all_pending) {
                /* Unknown names first (rejected), then the named actions in
                 * config order. */
                for (i = 0; i < ev->actions.cnt; i++) {
                        const char *name = ev->actions.v[i];
                        int dup          = 0;
                        if (pd_config_action(conf, name))
                                continue;
                        for (size_t j = 0; j < plan->cnt; j++)
                                dup |= !strcmp(plan->steps[j].name, name);
                        if (!dup)
                                plan->steps[plan->cnt++].name = name;
                }
                for (i = 0; i < conf->action_cnt; i++)
                        if (pd_strv_find(&ev->actions,
                                         conf->actions[i].name) >= 0) {
                                plan->steps[plan->cnt].def  = &conf->actions[i];
                                plan->steps[plan->cnt].name = conf->actions[i].name;
                                plan->cnt++;
                        }
        } else {
                for (i = 0; i < conf->action_cnt; i++) {
                        const pd_action_def_t *def = &conf->actions[i];
                        pd_action_state_t as;
                        int take;

                        if (deploy && ev->selection == PD_SEL_AUTO &&
                            !def->is_auto)
                                continue;
                        if (pd_store_action_state(r->st, tenant, def->name,
                                                  &as))
                                return -1;
                        if (ev->type == PD_EVT_RESET_REQUESTED)
                                take = as.ever_succeeded;
                        else if (ev->type == PD_EVT_SKIP_REQUESTED)
                                /* An `always` action is never done. */
                                take = def->policy == PD_POLICY_ONCE &&
                                       !as.ever_succeeded;
                        else
                                take = def->policy == PD_POLICY_ALWAYS ||
                                       !as.ever_succeeded;
                        if (!take)
                                continue;
                        plan->steps[plan->cnt].def  = def;
                        plan->steps[plan->cnt].name = def->name;
                        plan->cnt++;
                }
        }

        pd_plan_order(plan);

        /* A redelivered event that was cut short skips what it finished:
         * not a run interrupted, nor a failure that still had retries left
         * (a crash, or a stop that could not record it, came during the
         * backoff: the retry that was promised runs now). */
        for (i = 0; i < plan->cnt; i++) {
                pd_step_t *step = &plan->steps[i];
                int found       = 0;
                int32_t attempt = 0;
                pd_status_t status;
                int retry_due;

                if (!step->def)
                        continue;
                if (pd_store_trigger_outcome(r->st, tenant, step->name,
                                             ev->ce_source, ev->ce_id, &found,
                                             &status, &attempt))
                        return -1;
                retry_due = found &&
                            (status == PD_ST_FAILED ||
                             status == PD_ST_TIMED_OUT) &&
                            attempt < 1 + step->def->retries;
                if (found && status != PD_ST_INTERRUPTED && !retry_due) {
                        step->finished = 1;
                        step->status   = status;
                }
        }
        return 0;
}

/* A finished/started event for step, pre-filled from the trigger. */
static pd_event_t *pd_step_event(pd_reactor_t *r, const pd_plan_t *plan,
                                 pd_evtype_t type, const char *action,
                                 int32_t attempt, int64_t started_at) {
        const pd_event_t *tev = plan->job->ev;
        pd_event_t *ev        = pd_event_new(type);

        ev->tenant     = pd_xstrdup(plan->job->tenant);
        ev->action     = pd_xstrdup(action);
        ev->release    = pd_xstrdup(tev->release);
        ev->trigger_id = pd_xstrdup(tev->ce_id);
        ev->reactor    = pd_xstrdup(r->name);
        ev->attempt    = attempt;
        ev->started_at = started_at;
        if (type == PD_EVT_ACTION_FINISHED)
                ev->output_tail = pd_xstrdup("");
        return ev;
}

static void pd_result_key(char *buf, size_t size, const char *tenant,
                          const char *action) {
        snprintf(buf, size, "%s/%s", tenant, action);
}

/* Outcome of a step decided without running it (rejected, skipped). */
typedef struct pd_verdict_s {
        pd_plan_t *plan;
        pd_step_t *step;
        pd_status_t status;
        const char *error;
        int set_done; /* -1: leave the state; 1: done (skip); 0: reset */
        int32_t attempt; /* 0 means 1 */
        int retrying;    /* the action is not done with: more will come */
} pd_verdict_t;

static int pd_txn_verdict(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_verdict_t *v = arg;
        pd_job_t *job   = v->plan->job;
        int64_t now     = pd_now_ms();
        pd_run_t run    = {0};
        pd_event_t *ev;
        char key[256];
        int ret;

        if (v->step->def) {
                /* Skips are history too; rejected names have no action. */
                run.tenant         = job->tenant;
                run.action         = v->step->name;
                run.release        = job->ev->release;
                run.trigger_source = job->ev->ce_source;
                run.trigger_id     = job->ev->ce_id;
                run.attempt        = v->attempt ? v->attempt : 1;
                run.started_at     = now;
                if (pd_store_run_begin(r->st, &run))
                        return -1;
                run.status      = v->status;
                run.finished_at = now;
                run.error       = v->error;
                if (pd_store_run_end(r->st, &run))
                        return -1;
                if (v->set_done >= 0 &&
                    pd_store_action_set_done(r->st, job->tenant,
                                             v->step->name, v->set_done))
                        return -1;
        }
        ev = pd_step_event(r, v->plan, PD_EVT_ACTION_FINISHED, v->step->name,
                           v->attempt ? v->attempt : 1, now);
        ev->retrying    = v->retrying;
        ev->status      = v->status;
        ev->error       = pd_xstrdup(v->error);
        ev->finished_at = now;
        pd_result_key(key, sizeof(key), job->tenant, v->step->name);
        ret = pd_emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

static int pd_txn_plan(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_plan_t *plan = arg;
        pd_job_t *job   = plan->job;
        pd_event_t *ev;
        int ret;

        free(plan->steps);
        plan->steps = NULL;
        if (pd_plan_build(r, plan))
                return -1;
        ev             = pd_event_new(PD_EVT_DEPLOY_PLANNED);
        ev->tenant     = pd_xstrdup(job->tenant);
        ev->release    = pd_xstrdup(job->ev->release);
        ev->trigger_id = pd_xstrdup(job->ev->ce_id);
        ev->reactor    = pd_xstrdup(r->name);
        ev->planned_at = pd_now_ms();
        for (size_t i = 0; i < plan->cnt; i++)
                if (pd_strv_add(&ev->actions, plan->steps[i].name))
                        abort();
        ret = pd_emit(r, oq, ev, job->tenant);
        pd_event_destroy(ev);
        return ret;
}

/* One attempt of a command action: the store side. */
typedef struct pd_attempt_s {
        pd_plan_t *plan;
        pd_step_t *step;
        pd_run_t run;
        const pd_runner_result_t *res; /* NULL when starting */
        int retrying;
} pd_attempt_t;

static int pd_txn_started(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a = arg;
        pd_event_t *ev;
        char key[256];
        int ret;

        if (pd_store_run_begin(r->st, &a->run))
                return -1;
        ev = pd_step_event(r, a->plan, PD_EVT_ACTION_STARTED, a->step->name,
                           a->run.attempt, a->run.started_at);
        pd_result_key(key, sizeof(key), a->plan->job->tenant, a->step->name);
        ret = pd_emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

static int pd_txn_finished(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a                = arg;
        const pd_runner_result_t *res  = a->res;
        pd_event_t *ev;
        char key[256];
        int ret;

        a->run.status        = res->status;
        a->run.has_exit_code = res->has_exit_code;
        a->run.exit_code     = res->exit_code;
        a->run.finished_at   = pd_now_ms();
        a->run.duration_ms   = res->duration_ms;
        a->run.error         = *res->error ? res->error : NULL;
        a->run.output_tail   = res->tail;
        if (pd_store_run_end(r->st, &a->run))
                return -1;

        ev = pd_step_event(r, a->plan, PD_EVT_ACTION_FINISHED, a->step->name,
                           a->run.attempt, a->run.started_at);
        ev->status        = res->status;
        ev->has_exit_code = res->has_exit_code;
        ev->exit_code     = res->exit_code;
        ev->duration_ms   = res->duration_ms;
        ev->error         = *res->error ? pd_xstrdup(res->error) : NULL;
        free(ev->output_tail);
        ev->output_tail = pd_xstrdup(res->tail);
        ev->finished_at = a->run.finished_at;
        ev->retrying    = a->retrying;
        pd_result_key(key, sizeof(key), a->plan->job->tenant, a->step->name);
        ret = pd_emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

static int pd_txn_event_done(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_job_t *job = arg;
        (void)oq;
        return pd_store_event_mark(r->st, job->ev->ce_source, job->ev->ce_id,
                                   job->tenant, pd_now_ms());
}

/* Appends NAME=value to env, the value whole whatever its length: the
 * environment must say what argv says. */
static void pd_env_add(pd_strv_t *env, const char *name, const char *value) {
        size_t nlen = strlen(name), vlen = strlen(value);
        char *s     = malloc(nlen + 1 + vlen + 1);

        if (!s)
                abort();
        memcpy(s, name, nlen);
        s[nlen] = '=';
        memcpy(s + nlen + 1, value, vlen + 1);
        if (pd_strv_add(env, s))
                abort();
        free(s);
}

/* The child's environment: POSTDEPLOY_*, the action's env.*, then ours. */
static void pd_step_env(const pd_job_t *job, const pd_action_def_t *def,
                        int32_t attempt, pd_strv_t *env) {
        char num[16];
        size_t set;
        char **e;

        snprintf(num, sizeof(num), "%d", (int)attempt);
        pd_env_add(env, "POSTDEPLOY_TENANT", job->tenant);
        pd_env_add(env, "POSTDEPLOY_RELEASE", job->ev->release);
        pd_env_add(env, "POSTDEPLOY_ACTION", def->name);
        pd_env_add(env, "POSTDEPLOY_EVENT_ID", job->ev->ce_id);
        pd_env_add(env, "POSTDEPLOY_ENVIRONMENT",
                   job->ev->environment ? job->ev->environment : "");
        pd_env_add(env, "POSTDEPLOY_ATTEMPT", num);
        for (size_t i = 0; i < def->env.cnt; i++)
                if (pd_strv_add(env, def->env.v[i]))
                        abort();
        /* Ours only need checking against what was set above (environ's
         * names are unique): linear in the environment, not quadratic. */
        set = env->cnt;
        for (e = environ; *e; e++) {
                size_t nlen = strcspn(*e, "=");
                int shadowed = 0;
                for (size_t i = 0; i < set && !shadowed; i++)
                        shadowed = !strncmp(env->v[i], *e, nlen) &&
                                   env->v[i][nlen] == '=';
                if (!shadowed && pd_strv_add(env, *e))
                        abort();
        }
}

/* Where the full output of a run goes, or NULL when log_dir is unset. */
static const char *pd_step_log_path(pd_reactor_t *r, const pd_job_t *job,
                                    const pd_attempt_t *a, char *buf,
                                    size_t size) {
        if (!r->conf->log_dir || !*r->conf->log_dir)
                return NULL;
        snprintf(buf, size, "%s/%s/%s/run-%" PRId64 ".log", r->conf->log_dir,
                 job->tenant, a->step->name, a->run.id);
        return buf;
}

/* Runs a command action with its retries. Returns 0, or -1 if the store
 * failed for good. Sets step->status. */
/* Takes the run to adopt for this step, if a crashed reactor left one
 * running under the supervisor. Returns 1 and fills *ad (caller frees its
 * strings with pd_adopt_clear), or 0. */
static int pd_adopt_take(pd_reactor_t *r, const pd_job_t *job,
                         const char *action, pd_adopt_t *ad) {
        int found = 0;

        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->adopt_cnt && !found; i++) {
                pd_adopt_t *x = &r->adopt[i];
                if (strcmp(x->tenant, job->tenant) ||
                    strcmp(x->action, action) ||
                    strcmp(x->trigger_source, job->ev->ce_source) ||
                    strcmp(x->trigger_id, job->ev->ce_id))
                        continue;
                *ad            = *x;
                r->adopt[i]    = r->adopt[--r->adopt_cnt];
                found          = 1;
        }
        pthread_mutex_unlock(&r->lock);
        return found;
}

static void pd_adopt_clear(pd_adopt_t *ad) {
        free(ad->tenant);
        free(ad->action);
        free(ad->trigger_source);
        free(ad->trigger_id);
}

/* The binary that serves as supervisor: this one, unless a program that
 * embeds the reactor (a test) names the real postdeploy-reactor. */
static const char *pd_sup_exe(void) {
        const char *exe = getenv("PD_SUPERVISOR_EXE");
        return exe && *exe ? exe : NULL;
}

/* This worker's supervisor connection, made on first use. NULL (logged,
 * and the reactor stops) if no supervisor can be reached. */
static pd_sup_t *pd_worker_sup(pd_worker_t *w) {
        char errstr[512];

        if (!w->sup &&
            !(w->sup = pd_sup_connect(w->r->sup_dir, pd_sup_exe(), 0, errstr,
                                      sizeof(errstr)))) {
                pd_log(PD_LOG_ERROR, "supervisor: %s", errstr);
                pthread_mutex_lock(&w->r->lock);
                w->r->fatal = 1;
                pthread_mutex_unlock(&w->r->lock);
        } else {
                pd_sup_set_timeout(w->sup, w->r->conf->supervisor_timeout_ms);
        }
        return w->sup;
}

/* Remembers that the supervisor may forget sup_id once batch gen is
 * durable. */
static void pd_worker_forget_later(pd_worker_t *w, int64_t sup_id,
                                   int64_t gen) {
        if (w->forget_cnt == w->forget_size) {
                w->forget_size = w->forget_size ? w->forget_size * 2 : 16;
                w->forget = realloc(w->forget,
                                    w->forget_size * sizeof(*w->forget));
                if (!w->forget)
                        abort();
        }
        w->forget[w->forget_cnt].sup_id = sup_id;
        w->forget[w->forget_cnt].gen    = gen;
        w->forget_cnt++;
}

/*
 * Tells the supervisor to forget the runs whose outcome is durable; with
 * wait, waits for the last of them first (a lost batch forgets nothing).
 * A run forgotten late only keeps its outcome file a little longer.
 */
static void pd_worker_forget(pd_worker_t *w, int wait) {
        size_t i, kept = 0;

        if (!w->forget_cnt)
                return;
        if (wait && pd_batch_wait(w->r, w->forget[w->forget_cnt - 1].gen)) {
                w->forget_cnt = 0; /* not durable: the outcomes stay */
                return;
        }
        for (i = 0; i < w->forget_cnt; i++) {
                if (pd_batch_produced(w->r, w->forget[i].gen))
                        pd_sup_forget(w->sup, w->forget[i].sup_id);
                else
                        w->forget[kept++] = w->forget[i];
        }
        w->forget_cnt = kept;
}

/* How often a run its supervisor lost is started again within one event
 * before it is left INTERRUPTED (and pending, for the next deploy). */
#define PD_LOST_RUNS_MAX 3

/* Whether the worker's reactor is stopping (or failed), so that what it
 * cut short is to be done again after the next start. */
static int pd_worker_stopping(pd_worker_t *w) {
        pd_reactor_t *r = w->r;
        int stopping;

        pthread_mutex_lock(&r->lock);
        stopping = r->draining || r->fatal || w->cancel ||
                   (r->stop && *r->stop);
        pthread_mutex_unlock(&r->lock);
        return stopping;
}

/* Why a worker's wait ended before its time. */
#define PD_NAP_STOP   1 /* the reactor stops (or failed) */
#define PD_NAP_RELOAD 2 /* a reload waits for the workers to be idle */

/*
 * Waits ms, the backoff before a retry, unless the reactor stops, fails
 * or wants to reload first: none of them should wait out a backoff of
 * minutes. Returns 0 after the whole wait, else PD_NAP_STOP or
 * PD_NAP_RELOAD.
 */
static int pd_worker_nap(pd_worker_t *w, int64_t ms) {
        pd_reactor_t *r = w->r;
        int64_t end     = pd_now_ms() + ms, left;
        int why         = 0;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                if (r->draining || r->fatal || w->cancel ||
                    (r->stop && *r->stop)) {
                        why = PD_NAP_STOP;
                        break;
                }
                if (r->paused) {
                        why = PD_NAP_RELOAD;
                        break;
                }
                if ((left = end - pd_now_ms()) <= 0)
                        break;
                pd_cond_wait_ms(&r->cond, &r->lock,
                                left < PD_STOP_POLL_MS ? left
                                                       : PD_STOP_POLL_MS);
        }
        pthread_mutex_unlock(&r->lock);
        return why;
}

/*
 * Records that retry `attempt` of step was not started because a stop or
 * a reload cut its backoff short: action.finished INTERRUPTED with the
 * reason, and a run row saying so, so that the event, when it runs again,
 * runs the action again instead of taking the failure before as final.
 * A stop publishes it as final (retrying false), as it does an action it
 * interrupts: `deploy --wait` ends, and the next start runs it again. A
 * reload runs the event again at once under the new config, so the record
 * says more will come. Returns 0 (a stop), 1 (a reload: run the job again
 * once the config is swapped) or -1 (the store failed or gave up).
 */
static int pd_step_cut(pd_worker_t *w, pd_plan_t *plan, pd_step_t *step,
                       int32_t attempt, int32_t max_attempts, int why) {
        char reason[256];
        pd_verdict_t v = {plan, step, PD_ST_INTERRUPTED, reason, -1, attempt,
                          why == PD_NAP_RELOAD};

        snprintf(reason, sizeof(reason),
                 "retry %d of %d not started: %s", (int)attempt - 1,
                 (int)max_attempts - 1,
                 why == PD_NAP_RELOAD
                     ? "the config is reloaded; the action runs again under "
                       "the new one"
                     : "the reactor is stopping; the action runs again at its "
                       "next start");
        pd_log(PD_LOG_WARN, "%s %s: %s", plan->job->tenant, step->name,
               reason);
        if (pd_reactor_txn(w->r, pd_txn_verdict, &v))
                return -1;
        step->status = PD_ST_INTERRUPTED;
        return why == PD_NAP_RELOAD;
}

/* Runs a command action with its retries. Returns 0, 1 when a reload cut
 * a backoff short (the job runs again after the reload), or -1 if the
 * store or the supervisor failed for good. Sets step->status. */
static int pd_step_run(pd_worker_t *w, pd_plan_t *plan, pd_step_t *step) {
        pd_reactor_t *r            = w->r;
        pd_job_t *job              = plan->job;
        const pd_action_def_t *def = step->def;
        int32_t max_attempts       = 1 + def->retries;
        pd_subst_t vars[]          = {{"tenant", job->tenant},
                                      {"release", job->ev->release},
                                      {"action", def->name}};
        pd_strv_t argv             = {0};
        pd_adopt_t ad              = {0};
        int adopting               = 0;
        int lost_runs              = 0;
        int32_t attempt            = 1;
        int ret                    = 0;
        int64_t backoff;
        int cut;

        if (!def->plugin_action) {
                if (pd_argv_expand(&def->argv, vars, 3, &argv))
                        abort();
                if (!pd_worker_sup(w))
                        return -1;
                if ((adopting = pd_adopt_take(r, job, def->name, &ad)))
                        attempt = ad.attempt;
        }

        for (; attempt <= max_attempts; attempt++) {
                pd_runner_result_t *res = pd_xcalloc(1, sizeof(*res));
                pd_attempt_t a          = {plan, step, {0}, NULL, 0};
                pd_strv_t env           = {0};
                pd_runner_job_t rj      = {0};
                char log_path[1024];
                int64_t gen;

                a.run.tenant         = job->tenant;
                a.run.action         = def->name;
                a.run.release        = job->ev->release;
                a.run.trigger_source = job->ev->ce_source;
                a.run.trigger_id     = job->ev->ce_id;
                a.run.attempt        = attempt;
                a.run.started_at     = pd_now_ms();
                a.run.sup_id         = def->plugin_action ? 0
                                                          : pd_random_id63();
                if (adopting) {
                        /* Its row and action.started are there already. */
                        a.run.id         = ad.run_id;
                        a.run.sup_id     = ad.sup_id;
                        a.run.started_at = ad.started_at;
                } else if (def->plugin_action
                               ? pd_reactor_txn(r, pd_txn_started, &a)
                               : pd_reactor_txn_sync(r, pd_txn_started, &a)) {
                        free(res);
                        ret = -1;
                        break;
                }

                /* What finished before this start is durable now. */
                if (!def->plugin_action)
                        pd_worker_forget(w, 0);
                pd_crashpoint("run.before_spawn");
                pd_metrics_running_add(1);
                if (adopting) {
                        pd_log(PD_LOG_INFO, "%s %s: adopting run %" PRId64
                                            " from before the restart",
                               job->tenant, def->name, ad.run_id);
                        if (pd_sup_wait(w->sup, ad.sup_id, &w->cancel, res) ==
                            PD_SUP_UNKNOWN) {
                                res->status = PD_ST_INTERRUPTED;
                                snprintf(res->error, sizeof(res->error),
                                         "interrupted: the supervisor lost "
                                         "the run");
                        }
                        adopting = 0;
                } else if (def->plugin_action) {
                        /* In-process: a C action from a plugin. */
                        pd_plugin_call_t call = {0};
                        call.tenant      = job->tenant;
                        call.release     = job->ev->release;
                        call.event_id    = job->ev->ce_id;
                        call.environment = job->ev->environment;
                        call.attempt     = attempt;
                        call.cancel      = &w->cancel;
                        call.timeout_ms  = def->timeout_ms;
                        call.log_path    = pd_step_log_path(r, job, &a, log_path,
                                                            sizeof(log_path));
                        if (pd_plugins_run(def->plugin_action, &call, res) &&
                            !*res->error)
                                snprintf(res->error, sizeof(res->error),
                                         "the plugin runner failed");
                } else {
                        /* Under the supervisor, so the run and its outcome
                         * outlive a crash of ours. */
                        pd_step_env(job, def, attempt, &env);
                        rj.argv       = argv.v;
                        rj.envp       = env.v;
                        rj.workdir    = def->workdir;
                        rj.timeout_ms = def->timeout_ms;
                        /* None: the supervisor's starter's, ours. */
                        rj.has_umask  = def->umask >= 0;
                        rj.umask      = (unsigned)def->umask;
                        rj.log_path   = pd_step_log_path(r, job, &a, log_path,
                                                         sizeof(log_path));
                        rj.cancel     = &w->cancel;
                        if (pd_sup_run(w->sup, a.run.sup_id, &rj, res) &&
                            !*res->error)
                                snprintf(res->error, sizeof(res->error),
                                         "the runner failed");
                        pd_strv_clear(&env);
                }

                pd_metrics_running_add(-1);
                pd_crashpoint("run.after_exit");
                a.res = res;
                if (res->status == PD_ST_INTERRUPTED && !w->cancel &&
                    !def->plugin_action && lost_runs < PD_LOST_RUNS_MAX) {
                        /* Not by us: its supervisor died (or hung and was
                         * killed) and a new one stopped what was left. It
                         * runs again, and that costs none of its retries. */
                        lost_runs++;
                        max_attempts++;
                        a.retrying = 1;
                } else {
                        a.retrying = res->status != PD_ST_SUCCEEDED &&
                                     res->status != PD_ST_INTERRUPTED &&
                                     attempt < max_attempts;
                }
                pd_logf(res->status == PD_ST_SUCCEEDED ? PD_LOG_INFO
                                                       : PD_LOG_WARN,
                        (&(pd_log_fields_t){
                            .tenant       = job->tenant,
                            .action       = def->name,
                            .event_id     = job->ev->ce_id,
                            .attempt      = (int)attempt,
                            .status       = pd_status_name(res->status),
                            .reason       = *res->error ? res->error : NULL,
                            .has_duration = 1,
                            .duration_ms  = res->duration_ms,
                            .run_id       = a.run.id}),
                        "%s %s attempt %d: %s%s%s (%" PRId64 " ms)",
                        job->tenant, def->name, (int)attempt,
                        pd_status_name(res->status), *res->error ? ": " : "",
                        res->error, res->duration_ms);
                if (pd_reactor_txn_gen(r, pd_txn_finished, &a, &gen)) {
                        free(res);
                        ret = -1;
                        break;
                }
                pd_metrics_action_done(def->name, pd_status_name(res->status),
                                       res->duration_ms);
                /* The supervisor may forget it once that is durable. */
                if (!def->plugin_action)
                        pd_worker_forget_later(w, a.run.sup_id, gen);
                step->status   = res->status;
                step->finished = 1;
                free(res);
                if (!a.retrying)
                        break;
                backoff = pd_action_backoff_ms(def, attempt);
                pd_log(PD_LOG_INFO,
                       "%s %s: retry %d of %d in %" PRId64 " ms",
                       job->tenant, def->name, (int)attempt, (int)def->retries,
                       backoff);
                if ((cut = pd_worker_nap(w, backoff))) {
                        ret = pd_step_cut(w, plan, step, attempt + 1,
                                          max_attempts, cut);
                        break;
                }
        }
        if (ad.tenant) /* taken, whether or not it got to run */
                pd_adopt_clear(&ad);
        pd_strv_clear(&argv);
        return ret;
}

/* The first dependency of step (within this plan) that did not succeed. */
static const pd_step_t *pd_step_blocker(const pd_plan_t *plan,
                                        const pd_step_t *step) {
        for (size_t i = 0; i < step->def->after.cnt; i++)
                for (size_t j = 0; j < plan->cnt; j++)
                        if (plan->steps[j].def &&
                            !strcmp(plan->steps[j].name,
                                    step->def->after.v[i]) &&
                            plan->steps[j].finished &&
                            plan->steps[j].status != PD_ST_SUCCEEDED)
                                return &plan->steps[j];
        return NULL;
}

/* Processes one release.deployed for its tenant. Returns 0 when the event
 * is done (its offset may be stored), -1 when it was cut short, 1 when a
 * reload cut it short and it goes back to the queue. */
static int pd_job_process(pd_worker_t *w, pd_job_t *job) {
        pd_reactor_t *r = w->r;
        pd_plan_t plan  = {job, NULL, 0};
        int ret         = -1;

        if (pd_reactor_txn(r, pd_txn_plan, &plan))
                goto done;
        pd_logf(PD_LOG_INFO,
                (&(pd_log_fields_t){.tenant   = job->tenant,
                                    .event_id = job->ev->ce_id}),
                "%s: %s %s %s: %zu action(s)", job->tenant,
                pd_evtype_name(job->ev->type),
                job->ev->type == PD_EVT_RELEASE_DEPLOYED
                    ? pd_selection_name(job->ev->selection)
                    : job->ev->all_pending ? "all" : "named",
                job->ev->ce_id, plan.cnt);

        for (size_t i = 0; i < plan.cnt; i++) {
                pd_step_t *step = &plan.steps[i];
                const pd_step_t *blocker;
                char reason[512];
                pd_verdict_t v = {&plan, step, PD_ST_REJECTED, reason, -1,
                                  1, 0};
                int stop;

                if (step->finished)
                        continue;
                pthread_mutex_lock(&r->lock);
                stop = r->draining || r->fatal;
                pthread_mutex_unlock(&r->lock);
                if (stop)
                        goto done; /* redelivered after restart */

                if (!step->def) {
                        snprintf(reason, sizeof(reason),
                                 "unknown action '%s'", step->name);
                        if (pd_reactor_txn(r, pd_txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = PD_ST_REJECTED;
                        continue;
                }
                if (job->ev->type != PD_EVT_RELEASE_DEPLOYED) {
                        int skip = job->ev->type == PD_EVT_SKIP_REQUESTED;
                        snprintf(reason, sizeof(reason),
                                 "%s on request of %s",
                                 skip ? "skipped" : "reset",
                                 job->ev->requested_by &&
                                         *job->ev->requested_by
                                     ? job->ev->requested_by
                                     : job->ev->ce_source);
                        v.status   = skip ? PD_ST_SKIPPED : PD_ST_RESET;
                        v.set_done = skip;
                        if (pd_reactor_txn(r, pd_txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = v.status;
                        continue;
                }
                if ((blocker = pd_step_blocker(&plan, step))) {
                        snprintf(reason, sizeof(reason),
                                 "dependency %s %s", blocker->name,
                                 pd_status_name(blocker->status));
                        v.status = PD_ST_SKIPPED;
                        if (pd_reactor_txn(r, pd_txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = PD_ST_SKIPPED;
                        continue;
                }
                if ((ret = pd_step_run(w, &plan, step)))
                        goto done; /* -1 failed, 1 runs again */
                ret = -1;
                /* Cut short by our stop: the event is redelivered. Any
                 * other interruption (a run its supervisor lost, again and
                 * again) is an outcome like a failure. */
                if (step->status == PD_ST_INTERRUPTED && pd_worker_stopping(w))
                        goto done;
        }
        /* The main thread stores the offset once job->gen is durable; the
         * worker goes on meanwhile. */
        ret = pd_reactor_txn_gen(r, pd_txn_event_done, job, &job->gen);
        if (!ret)
                pd_metrics_event(PD_METRICS_PROCESSED);

done:
        free(plan.steps);
        return ret;
}

/*
 * Takes the oldest queued job whose tenant no other worker is busy with, so
 * a tenant's events run one at a time and in order, while a slow tenant
 * never holds up the others. Called with r->lock held; NULL if none.
 */
static pd_job_t *pd_queue_take(pd_reactor_t *r) {
        pd_job_t **pp = &r->queue_head, *prev = NULL;

        if (r->paused)
                return NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next) {
                pd_job_t *job = *pp;
                int busy      = 0;

                for (int i = 0; i < r->worker_cnt && !busy; i++)
                        busy = r->workers[i].tenant &&
                               !strcmp(r->workers[i].tenant, job->tenant);
                if (busy)
                        continue;
                *pp = job->next;
                if (r->queue_tail == job)
                        r->queue_tail = prev;
                job->next = NULL;
                return job;
        }
        return NULL;
}

static void *pd_worker_main(void *arg) {
        pd_worker_t *w  = arg;
        pd_reactor_t *r = w->r;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                pd_job_t *job = NULL;
                int rc;

                while (!r->draining && !(job = pd_queue_take(r))) {
                        if (w->forget_cnt) {
                                /* Idle: settle with the supervisor first. */
                                pthread_mutex_unlock(&r->lock);
                                pd_worker_forget(w, 1);
                                pthread_mutex_lock(&r->lock);
                                continue;
                        }
                        pthread_cond_wait(&r->cond, &r->lock);
                }
                if (!job)
                        break;
                w->tenant = job->tenant;
                pthread_mutex_unlock(&r->lock);

                rc = pd_job_process(w, job);

                pthread_mutex_lock(&r->lock);
                w->tenant = NULL;
                if (rc > 0) {
                        /* First in line again, ahead of its tenant's later
                         * events: it runs once the new config is in. */
                        job->next     = r->queue_head;
                        r->queue_head = job;
                        if (!r->queue_tail)
                                r->queue_tail = job;
                } else if (!rc) {
                        /* Hand it back to the main thread to store the
                         * offset. A job cut short is not: its offset must
                         * not move past it. */
                        pd_event_destroy(job->ev);
                        job->ev      = NULL;
                        job->next    = r->done_head;
                        r->done_head = job;
                }
                /* The tenant is free: its next job may go now. */
                pthread_cond_broadcast(&r->cond);
        }
        pthread_mutex_unlock(&r->lock);
        pd_worker_forget(w, 1);
        free(w->forget);
        w->forget = NULL;
        pd_sup_close(w->sup);
        w->sup = NULL;
        return NULL;
}

/* ------------------------------------------------------------------ */
/* Main thread: dispatch and offsets                                   */

static pd_partq_t *pd_partq(pd_reactor_t *r, int32_t partition) {
        if (partition >= r->partq_cnt) {
                int32_t cnt = partition + 16;
                r->partqs   = realloc(r->partqs, (size_t)cnt * sizeof(*r->partqs));
                if (!r->partqs)
                        abort();
                memset(r->partqs + r->partq_cnt, 0,
                       (size_t)(cnt - r->partq_cnt) * sizeof(*r->partqs));
                r->partq_cnt = cnt;
        }
        return &r->partqs[partition];
}

/* Tracks a consumed message in its partition's order. */
static pd_job_t *pd_job_track(pd_reactor_t *r, const rd_kafka_message_t *rkm) {
        pd_job_t *job   = pd_xcalloc(1, sizeof(*job));
        pd_partq_t *pq  = pd_partq(r, rkm->partition);

        job->partition = rkm->partition;
        job->offset    = rkm->offset;
        if (pq->tail)
                pq->tail->pnext = job;
        else
                pq->head = job;
        pq->tail = job;
        r->inflight++;
        return job;
}

/* Stores the offset of each partition's leading run of done events. */
static void pd_offsets_advance(pd_reactor_t *r) {
        rd_kafka_topic_partition_list_t *offsets = NULL;
        pd_job_t *done, *dnext, *later = NULL;

        pthread_mutex_lock(&r->lock);
        done         = r->done_head;
        r->done_head = NULL;
        pthread_mutex_unlock(&r->lock);
        /* Done means marked done in a batch that is durable. */
        for (; done; done = dnext) {
                dnext = done->next;
                if (pd_batch_produced(r, done->gen)) {
                        done->done = 1;
                } else {
                        done->next = later;
                        later      = done;
                }
        }
        if (later) {
                pd_job_t *tail = later;

                while (tail->next)
                        tail = tail->next;
                pthread_mutex_lock(&r->lock);
                tail->next   = r->done_head;
                r->done_head = later;
                pthread_mutex_unlock(&r->lock);
        }

        for (int32_t p = 0; p < r->partq_cnt; p++) {
                pd_partq_t *pq = &r->partqs[p];
                int64_t next   = -1;

                while (pq->head && pq->head->done) {
                        pd_job_t *job = pq->head;
                        pq->head      = job->pnext;
                        next          = job->offset + 1;
                        free(job->tenant);
                        free(job);
                        r->inflight--;
                }
                if (!pq->head)
                        pq->tail = NULL;
                if (next < 0)
                        continue;
                if (!offsets)
                        offsets = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(offsets,
                                                  r->conf->topic_events, p)
                    ->offset = next;
        }
        if (offsets) {
                rd_kafka_resp_err_t err;

                pd_crashpoint("offsets.before_store");
                err = rd_kafka_offsets_store(r->consumer, offsets);
                /* An offset not stored is an event that comes again: worth
                 * a warning, but once per kind of error, not per event. */
                if (err && err != r->offsets_err)
                        pd_log(PD_LOG_WARN,
                               "offsets_store: %s; those events may come "
                               "again after a restart (said once until the "
                               "error changes)",
                               rd_kafka_err2str(err));
                else if (!err && r->offsets_err)
                        pd_log(PD_LOG_INFO, "offsets_store works again");
                r->offsets_err = err;
                rd_kafka_topic_partition_list_destroy(offsets);
        }
}

/* A record that cannot be processed goes to the dead-letter topic with its
 * key, value and headers, plus headers saying why and where from. */
typedef struct pd_dead_s {
        const rd_kafka_message_t *rkm;
        const char *reason;
} pd_dead_t;

static int pd_txn_dead_letter(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_dead_t *d            = arg;
        const rd_kafka_message_t *rkm = d->rkm;
        rd_kafka_headers_t *orig      = NULL;
        rd_kafka_headers_t *hdrs;
        char buf[64], *key = NULL;
        void *value = NULL;
        int ret;

        if (!rd_kafka_message_headers(rkm, &orig))
                hdrs = rd_kafka_headers_copy(orig);
        else
                hdrs = rd_kafka_headers_new(6);
        rd_kafka_header_add(hdrs, "postdeploy_error", -1, d->reason, -1);
        rd_kafka_header_add(hdrs, "postdeploy_topic", -1,
                            rd_kafka_topic_name(rkm->rkt), -1);
        snprintf(buf, sizeof(buf), "%" PRId32, rkm->partition);
        rd_kafka_header_add(hdrs, "postdeploy_partition", -1, buf, -1);
        snprintf(buf, sizeof(buf), "%" PRId64, rkm->offset);
        rd_kafka_header_add(hdrs, "postdeploy_offset", -1, buf, -1);
        rd_kafka_header_add(hdrs, "postdeploy_reactor", -1, r->name, -1);

        /* The outbox keeps keys as text: a binary key is kept up to its
         * first NUL, the value whole. */
        if (rkm->key) {
                key = pd_xcalloc(1, rkm->key_len + 1);
                memcpy(key, rkm->key, rkm->key_len);
        }
        value = pd_xcalloc(1, rkm->len + 1);
        if (rkm->len)
                memcpy(value, rkm->payload, rkm->len);
        ret = pd_outbox_put(r, oq, r->conf->topic_dlq, key, hdrs, value,
                            rkm->len);
        free(key);
        return ret;
}

/* With a signing key, only events signed with it get in: anyone who can
 * write to the topic must not be able to trigger actions. Nor can a signed
 * event older than max_event_age: a copy of last month's event verifies,
 * and the state that would skip it as seen may be gone (a new reactor, a
 * fresh database). Returns 0, or -1 with the reason for the dead-letter
 * topic. */
static int pd_reactor_verify(pd_reactor_t *r, const rd_kafka_message_t *rkm,
                             char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;

        if (!r->secret)
                return 0;
        if (rd_kafka_message_headers(rkm, &hdrs))
                hdrs = NULL;
        if (pd_sign_verify(hdrs, rkm->key, rkm->key_len, rkm->payload,
                           rkm->len, r->secret, r->secret_len, errstr,
                           errstr_size))
                return -1;
        return pd_sign_check_age(hdrs, pd_now_ms(), r->conf->max_event_age_ms,
                                 errstr, errstr_size);
}

/* Whether the record's ce_type is one the events topic takes, checked
 * before decoding so the reason says what is wrong, not what is missing. */
static int pd_reactor_type_check(pd_reactor_t *r,
                                 const rd_kafka_message_t *rkm, char *errstr,
                                 size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *val;
        size_t size;
        pd_evtype_t type;
        char name[64];

        if (rd_kafka_message_headers(rkm, &hdrs) ||
            rd_kafka_header_get_last(hdrs, "ce_type", &val, &size) || !val)
                return 0; /* the decoder names what is missing */
        snprintf(name, sizeof(name), "%.*s", (int)size, (const char *)val);
        type = pd_evtype_parse(name);
        if (type == PD_EVT_UNKNOWN || type == PD_EVT_RELEASE_DEPLOYED ||
            type == PD_EVT_SKIP_REQUESTED || type == PD_EVT_RESET_REQUESTED)
                return 0;
        snprintf(errstr, errstr_size, "ce_type %s is not accepted on %s",
                 name, r->conf->topic_events);
        return -1;
}

/* Handles one consumed message (main thread). */
static void pd_reactor_dispatch(pd_reactor_t *r, rd_kafka_message_t *rkm) {
        pd_job_t *job = pd_job_track(r, rkm);
        pd_metrics_dlq_t why = PD_METRICS_DLQ_INVALID;
        char errstr[512];
        pd_event_t *ev;
        int done = 0;

        pd_crashpoint("dispatch.received");
        if (rkm->len > (size_t)r->conf->max_event_bytes) {
                snprintf(errstr, sizeof(errstr),
                         "record of %zu bytes is over max_event_bytes (%d)",
                         rkm->len, r->conf->max_event_bytes);
                ev  = NULL;
                why = PD_METRICS_DLQ_TOO_LARGE;
        } else if (pd_reactor_verify(r, rkm, errstr, sizeof(errstr))) {
                ev  = NULL;
                why = PD_METRICS_DLQ_SIGNATURE;
        } else if (pd_reactor_type_check(r, rkm, errstr, sizeof(errstr))) {
                ev  = NULL;
                why = PD_METRICS_DLQ_WRONG_TYPE;
        } else {
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
        }
        if (!ev) {
                pd_dead_t d = {rkm, errstr};
                pd_logf(PD_LOG_WARN,
                        (&(pd_log_fields_t){.status = "dead_letter",
                                            .reason = errstr}),
                        "%s [%" PRId32 "] @%" PRId64 ": %s: sent to %s",
                        rd_kafka_topic_name(rkm->rkt), rkm->partition,
                        rkm->offset, errstr, r->conf->topic_dlq);
                if (!pd_reactor_txn_sync(r, pd_txn_dead_letter, &d)) {
                        pd_metrics_dead_letter(why);
                        job->done = 1;
                }
                return;
        }

        pthread_mutex_lock(&r->st_lock);
        if (pd_store_event_done(r->st, ev->ce_source, ev->ce_id, &done))
                done = 0; /* the worker's own transaction will retry */
        pthread_mutex_unlock(&r->st_lock);
        /* It may be marked done in the open batch: acknowledge it only
         * once that is durable. */
        if (done && pd_batch_flush(r))
                done = 0;
        if (done) {
                pd_log(PD_LOG_INFO, "event %s from %s seen before: skipped",
                       ev->ce_id, ev->ce_source);
                pd_metrics_event(PD_METRICS_DUPLICATE);
                pd_event_destroy(ev);
                job->done = 1;
                return;
        }

        job->ev     = ev;
        job->tenant = pd_xstrdup(ev->tenant ? ev->tenant
                                            : r->conf->default_tenant);
        pthread_mutex_lock(&r->lock);
        if (r->queue_tail)
                r->queue_tail->next = job;
        else
                r->queue_head = job;
        r->queue_tail = job;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

/* ------------------------------------------------------------------ */
/* Start-up: recovery and registry                                      */

/*
 * Runs a previous reactor left without an outcome. Command runs live in the
 * supervisor: one that finished meanwhile is recorded with its real outcome,
 * one still going is adopted when its redelivered event reaches it. Only a
 * run nobody knows (an in-process action, or the machine went down) is
 * recorded INTERRUPTED; its event was not marked done, so it runs again.
 */
typedef struct pd_unfinished_s {
        pd_run_t *runs;
        pd_runner_result_t **res; /* per run: the outcome, NULL: lost */
        size_t cnt;
} pd_unfinished_t;

static int pd_unfinished_collect(const pd_run_t *run, void *opaque) {
        pd_unfinished_t *u = opaque;
        pd_run_t *copy;

        u->runs = realloc(u->runs, (u->cnt + 1) * sizeof(*u->runs));
        u->res  = realloc(u->res, (u->cnt + 1) * sizeof(*u->res));
        if (!u->runs || !u->res)
                abort();
        u->res[u->cnt] = NULL;
        copy           = &u->runs[u->cnt++];
        *copy          = *run;
        copy->tenant         = pd_xstrdup(run->tenant);
        copy->action         = pd_xstrdup(run->action);
        copy->release        = pd_xstrdup(run->release);
        copy->trigger_source = pd_xstrdup(run->trigger_source);
        copy->trigger_id     = pd_xstrdup(run->trigger_id);
        return 0;
}

static int pd_txn_recover(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_unfinished_t *u = arg;
        int64_t now        = pd_now_ms();

        for (size_t i = 0; i < u->cnt; i++) {
                pd_run_t *run                = &u->runs[i];
                const pd_runner_result_t *rs = u->res[i];
                pd_event_t *ev;
                char key[256];
                int ret, lost;

                if (!run->tenant)
                        continue; /* adopted: still running */
                if (rs) {
                        run->status        = rs->status;
                        run->has_exit_code = rs->has_exit_code;
                        run->exit_code     = rs->exit_code;
                        run->duration_ms   = rs->duration_ms;
                        run->error         = *rs->error ? rs->error : NULL;
                        run->output_tail   = rs->tail;
                } else {
                        run->status      = PD_ST_INTERRUPTED;
                        run->duration_ms = now - run->started_at;
                        run->error       = "interrupted: the reactor stopped "
                                           "during the run";
                }
                run->finished_at = now;
                if (pd_store_run_end(r->st, run))
                        return -1;
                ev                = pd_event_new(PD_EVT_ACTION_FINISHED);
                ev->tenant        = pd_xstrdup(run->tenant);
                ev->action        = pd_xstrdup(run->action);
                ev->release       = pd_xstrdup(run->release);
                ev->trigger_id    = pd_xstrdup(run->trigger_id);
                ev->reactor       = pd_xstrdup(r->name);
                ev->attempt       = run->attempt;
                ev->started_at    = run->started_at;
                ev->status        = run->status;
                ev->has_exit_code = run->has_exit_code;
                ev->exit_code     = run->exit_code;
                ev->duration_ms   = run->duration_ms;
                ev->error         = run->error ? pd_xstrdup(run->error) : NULL;
                ev->output_tail   = pd_xstrdup(rs ? rs->tail : "");
                ev->finished_at   = now;
                /* Lost, or interrupted under a supervisor that died or
                 * stopped: the redelivered event runs it again. Finished:
                 * its outcome is final, as trigger_outcome will say. */
                lost         = !rs || rs->status == PD_ST_INTERRUPTED;
                ev->retrying = lost;
                pd_result_key(key, sizeof(key), run->tenant, run->action);
                ret = pd_emit(r, oq, ev, key);
                pd_event_destroy(ev);
                if (ret)
                        return -1;
                pd_log(PD_LOG_WARN, "%s %s: %s", run->tenant, run->action,
                       lost ? "interrupted by the last stop"
                            : "finished under the supervisor while we were "
                              "down");
        }
        return 0;
}

/* Asks the supervisor about every unfinished command run: fills u->res
 * for the finished, moves the running to r->adopt. Returns 0 or -1. */
static int pd_recover_ask(pd_reactor_t *r, pd_unfinished_t *u, char *errstr,
                          size_t errstr_size) {
        for (size_t i = 0; i < u->cnt; i++) {
                pd_run_t *run = &u->runs[i];
                const pd_action_def_t *def =
                    pd_config_action(r->conf, run->action);
                pd_runner_result_t *res;
                int st;

                if (def && def->plugin_action)
                        continue; /* in-process: died with us */
                res = pd_xcalloc(1, sizeof(*res));
                st  = pd_sup_status(r->sup, run->sup_id, res);
                if (st < 0) {
                        /* Guessing could run a command twice. */
                        snprintf(errstr, errstr_size,
                                 "supervisor: cannot learn what became of "
                                 "run %" PRId64 ": %s",
                                 run->id, res->error);
                        free(res);
                        return -1;
                }
                if (st == PD_SUP_FINISHED) {
                        u->res[i] = res;
                        continue;
                }
                free(res);
                if (st == PD_SUP_RUNNING) {
                        pd_adopt_t *ad;
                        r->adopt = realloc(r->adopt, (r->adopt_cnt + 1) *
                                                         sizeof(*r->adopt));
                        if (!r->adopt)
                                abort();
                        ad                 = &r->adopt[r->adopt_cnt++];
                        ad->run_id         = run->id;
                        ad->sup_id         = run->sup_id;
                        ad->attempt        = run->attempt;
                        ad->started_at     = run->started_at;
                        ad->tenant         = (char *)run->tenant;
                        ad->action         = (char *)run->action;
                        ad->trigger_source = (char *)run->trigger_source;
                        ad->trigger_id     = (char *)run->trigger_id;
                        free((char *)run->release);
                        memset(run, 0, sizeof(*run)); /* handed over */
                        pd_log(PD_LOG_INFO,
                               "%s %s: still running under the supervisor; "
                               "adopted when its event comes back",
                               ad->tenant, ad->action);
                }
        }
        return 0;
}

static int pd_txn_registry(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_config_t *conf = r->conf;
        pd_event_t *ev          = pd_event_new(PD_EVT_REGISTRY_PUBLISHED);
        int ret;

        (void)arg;
        ev->reactor      = pd_xstrdup(r->name);
        ev->published_at = pd_now_ms();
        ev->registry     = pd_xcalloc(conf->action_cnt, sizeof(*ev->registry));
        ev->registry_cnt = conf->action_cnt;
        for (size_t i = 0; i < conf->action_cnt; i++) {
                const pd_action_def_t *def = &conf->actions[i];
                pd_regentry_t *re          = &ev->registry[i];
                re->id          = pd_xstrdup(def->name);
                re->is_auto     = def->is_auto;
                re->policy      = pd_xstrdup(pd_policy_name(def->policy));
                re->description = pd_xstrdup(def->description);
                for (size_t j = 0; j < def->after.cnt; j++)
                        if (pd_strv_add(&re->after, def->after.v[j]))
                                abort();
        }
        ret = pd_emit(r, oq, ev, PD_REGISTRY_KEY);
        pd_event_destroy(ev);
        return ret;
}

static int pd_outbox_replay_cb(const pd_outbox_rec_t *rec, void *opaque) {
        pd_reactor_t *r = opaque;
        pd_produce_rec(r, rec->seq, rec->topic, rec->key, rec->headers,
                       rec->headers_len, rec->value, rec->value_len);
        return 0;
}

static int pd_reactor_recover(pd_reactor_t *r, char *errstr,
                              size_t errstr_size) {
        pd_unfinished_t u = {0};
        int ret;

        /* First what the last run left unpublished, then what it left
         * unfinished, so results keep their order per key. */
        pthread_mutex_lock(&r->st_lock);
        ret = pd_store_outbox_foreach(r->st, pd_outbox_replay_cb, r) ||
              pd_store_runs_unfinished(r->st, pd_unfinished_collect, &u);
        if (ret)
                snprintf(errstr, errstr_size, "state store: %s",
                         pd_store_errmsg(r->st));
        pthread_mutex_unlock(&r->st_lock);
        if (!ret && u.cnt)
                ret = pd_recover_ask(r, &u, errstr, errstr_size);
        if (!ret && u.cnt)
                ret = pd_reactor_txn_sync(r, pd_txn_recover, &u);
        if (!ret) {
                /* Recorded: the supervisor may forget those outcomes. */
                for (size_t i = 0; i < u.cnt; i++)
                        if (u.res[i])
                                pd_sup_forget(r->sup, u.runs[i].sup_id);
                ret = pd_reactor_txn_sync(r, pd_txn_registry, NULL);
        }
        for (size_t i = 0; i < u.cnt; i++) {
                free((char *)u.runs[i].tenant);
                free((char *)u.runs[i].action);
                free((char *)u.runs[i].release);
                free((char *)u.runs[i].trigger_source);
                free((char *)u.runs[i].trigger_id);
                free(u.res[i]);
        }
        free(u.runs);
        free(u.res);
        if (ret && !*errstr)
                snprintf(errstr, errstr_size, "cannot record recovery");
        return ret ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static void pd_reactor_log_nothing(const rd_kafka_t *rk, int level,
                                   const char *fac, const char *buf) {
        (void)rk, (void)level, (void)fac, (void)buf;
}

/*
 * Makes the reactor's producer or consumer: postdeploy's defaults for it,
 * then the [kafka] section, then `brokers`. The producer's delivery reports
 * go to pd_dr_cb with `r` as opaque (NULL: no reports are expected). Returns
 * the client, or NULL with librdkafka's message in errstr.
 */
static rd_kafka_t *pd_reactor_client(const pd_config_t *conf,
                                     rd_kafka_type_t type,
                                     const char *brokers, pd_reactor_t *r,
                                     char *errstr, size_t errstr_size) {
        static const char *const producer_defaults[] = {
            "enable.idempotence", "true",
            /* Results are few and latency matters (publish-to-start);
             * under load librdkafka batches behind the request in flight
             * anyway. */
            "linger.ms", "1",
            /* Deliveries are retried until they succeed: the outbox
             * holds them meanwhile. */
            "message.timeout.ms", "0",
            NULL};
        static const char *const consumer_defaults[] = {
            "enable.auto.commit", "true",
            "enable.auto.offset.store", "false",
            "auto.offset.reset", "earliest",
            "enable.partition.eof", "false",
            NULL};
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        kconf = pd_kafka_conf(conf,
                              type == RD_KAFKA_PRODUCER ? producer_defaults
                                                        : consumer_defaults,
                              brokers, errstr, errstr_size);
        if (!kconf)
                return NULL;
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set_dr_msg_cb(kconf, pd_dr_cb);
                rd_kafka_conf_set_opaque(kconf, r);
        } else if (rd_kafka_conf_set(kconf, "group.id", conf->group_id, errstr,
                                     errstr_size) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        } else if (r) {
                pd_metrics_kafka_conf(kconf); /* lag, rebalances, joined */
        }
        if (!r) /* a check: "no bootstrap.servers" is what it asked for */
                rd_kafka_conf_set_log_cb(kconf, pd_reactor_log_nothing);
        rk = rd_kafka_new(type, kconf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(kconf);
        return rk;
}

int pd_reactor_kafka_check(const pd_config_t *conf, char *errstr,
                           size_t errstr_size) {
        static const rd_kafka_type_t types[] = {RD_KAFKA_PRODUCER,
                                                RD_KAFKA_CONSUMER};
        char msg[512];

        for (size_t i = 0; i < 2; i++) {
                /* No broker list: the client is made and checked, and
                 * never connects. */
                rd_kafka_t *rk = pd_reactor_client(conf, types[i], "", NULL,
                                                   msg, sizeof(msg));
                if (!rk) {
                        snprintf(errstr, errstr_size,
                                 "%s: [kafka] for the %s: %s",
                                 conf->path ? conf->path : "config",
                                 types[i] == RD_KAFKA_PRODUCER ? "producer"
                                                               : "consumer",
                                 msg);
                        return -1;
                }
                rd_kafka_destroy(rk);
        }
        return 0;
}

pd_reactor_t *pd_reactor_new(const pd_config_t *conf, const char *brokers,
                             char *errstr, size_t errstr_size) {
        pd_reactor_t *r = pd_xcalloc(1, sizeof(*r));
        char host[200];

        *errstr = '\0';
        r->conf = conf;
        atomic_store(&r->grace_ms, conf->shutdown_grace_ms);
        pd_crash_init();
        pthread_mutex_init(&r->st_lock, NULL);
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        pthread_mutex_init(&r->dr_lock, NULL);
        pthread_cond_init(&r->batch_cond, NULL);
        pthread_mutex_init(&r->pr_lock, NULL);
        pthread_cond_init(&r->pr_cond, NULL);
        r->batch_gen = 1;

        if (conf->reactor_name && *conf->reactor_name) {
                snprintf(r->name, sizeof(r->name), "%s", conf->reactor_name);
        } else {
                if (gethostname(host, sizeof(host)))
                        snprintf(host, sizeof(host), "localhost");
                host[sizeof(host) - 1] = '\0';
                snprintf(r->name, sizeof(r->name), "%s:%d", host,
                         (int)getpid());
        }
        snprintf(r->source, sizeof(r->source), "postdeploy-reactor/%s",
                 r->name);

        /* The Kafka clients first: a setting librdkafka refuses then
         * leaves nothing behind on disk, no store, no supervisor folder. */
        r->producer = pd_reactor_client(conf, RD_KAFKA_PRODUCER, brokers, r,
                                        errstr, errstr_size);
        if (!r->producer)
                goto err;
        r->consumer = pd_reactor_client(conf, RD_KAFKA_CONSUMER, brokers, r,
                                        errstr, errstr_size);
        if (!r->consumer)
                goto err;
        rd_kafka_poll_set_consumer(r->consumer);

        if (conf->signing_key && *conf->signing_key &&
            pd_sign_key_load(conf->signing_key, &r->secret, &r->secret_len,
                             errstr, errstr_size))
                goto err;
        r->keep_runs_ms = conf->keep_runs_ms;
        r->st = pd_store_open(conf->state_path, conf->state_sync_full, errstr,
                              errstr_size);
        if (!r->st)
                goto err;
        pd_store_set_give_up(r->st, pd_reactor_store_give_up, r);
        /* A handle of the committer's own checkpoints the WAL off the
         * workers' path; without it, commits checkpoint as SQLite does by
         * default. */
        {
                char ckerr[512];

                r->ckpt_st = pd_store_open(conf->state_path,
                                           conf->state_sync_full, ckerr,
                                           sizeof(ckerr));
                if (!r->ckpt_st)
                        pd_log(PD_LOG_WARN, "checkpoints stay on commits: %s",
                               ckerr);
                else if (pd_store_checkpoints_manual(r->st)) {
                        pd_store_close(r->ckpt_st);
                        r->ckpt_st = NULL;
                }
        }

        /* The supervisor's folder sits beside the store and carries its id:
         * a new store never meets the outcomes of an old one's run ids. */
        {
                char dir[400];
                const char *slash = strrchr(conf->state_path, '/');
                snprintf(dir, sizeof(dir), "%.*s",
                         slash ? (int)(slash - conf->state_path) : 1,
                         slash ? conf->state_path : ".");
                snprintf(r->sup_dir, sizeof(r->sup_dir), "%s/supervisor-%s",
                         *dir ? dir : "/", pd_store_id(r->st));
        }
        r->sup = pd_sup_connect(r->sup_dir, pd_sup_exe(), 0, errstr,
                                errstr_size);
        if (!r->sup)
                goto err;
        pd_sup_set_timeout(r->sup, conf->supervisor_timeout_ms);

        snprintf(r->brokers, sizeof(r->brokers), "%s", brokers);
        if (pthread_create(&r->committer, NULL, pd_committer_main, r)) {
                snprintf(errstr, errstr_size, "cannot start the committer");
                goto err;
        }
        r->committer_started = 1;
        pd_metrics_outbox_set(0); /* what it holds is produced again */
        if (pd_reactor_recover(r, errstr, errstr_size))
                goto err;
        pd_metrics_cond_set(PD_METRICS_RESTORED, 1);
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);

        r->worker_cnt = conf->workers;
        r->workers    = pd_xcalloc((size_t)r->worker_cnt, sizeof(*r->workers));
        for (int i = 0; i < r->worker_cnt; i++) {
                r->workers[i].r   = r;
                r->workers[i].idx = i;
                if (pthread_create(&r->workers[i].thread, NULL, pd_worker_main,
                                   &r->workers[i])) {
                        snprintf(errstr, errstr_size,
                                 "cannot start worker threads");
                        r->worker_cnt = i;
                        goto err;
                }
        }
        pd_log(PD_LOG_INFO,
               "reactor %s: %zu action(s), %d worker(s), state %s, "
               "brokers %s",
               r->name, conf->action_cnt, r->worker_cnt, conf->state_path,
               brokers);
        return r;

err:
        pd_reactor_destroy(r);
        return NULL;
}

/* Stops the workers: each finishes its current action within the grace
 * period (counted from when the stop was first seen), after which running
 * actions are interrupted; a worker waiting to retry stops at once. */
static void pd_reactor_drain(pd_reactor_t *r) {
        int64_t deadline = pd_reactor_deadline_set(r);
        int cancelled    = 0;

        pthread_mutex_lock(&r->lock);
        r->draining = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);

        for (int i = 0; i < r->worker_cnt; i++) {
                for (;;) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 100000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        if (!pthread_timedjoin_np(r->workers[i].thread, NULL,
                                                  &ts))
                                break;
                        /* Keep results flowing while we wait. */
                        rd_kafka_poll(r->producer, 0);
                        if (!cancelled && pd_now_ms() >= deadline) {
                                pd_log(PD_LOG_WARN,
                                       "shutdown grace over: interrupting "
                                       "running actions");
                                pthread_mutex_lock(&r->lock);
                                for (int j = 0; j < r->worker_cnt; j++)
                                        r->workers[j].cancel = 1;
                                pthread_cond_broadcast(&r->cond);
                                pthread_mutex_unlock(&r->lock);
                                cancelled = 1;
                        }
                }
        }
        r->worker_cnt = 0;
}

void pd_reactor_set_reload(pd_reactor_t *r, const pd_reload_t *reload) {
        if (reload)
                r->reload = *reload;
        else
                memset(&r->reload, 0, sizeof(r->reload));
}

/* Keeps in next what only takes effect at start, warning when it changed. */
static void pd_reload_keep(const pd_config_t *cur, pd_config_t *next) {
#define PD_KEEP_STR(f, name)                                                   \
        do {                                                                   \
                if (strcmp(cur->f ? cur->f : "", next->f ? next->f : "")) {    \
                        pd_log(PD_LOG_WARN,                                    \
                               "reload: %s changes at the next start",         \
                               name);                                          \
                        free(next->f);                                         \
                        next->f = cur->f ? pd_xstrdup(cur->f) : NULL;          \
                }                                                              \
        } while (0)
#define PD_KEEP_INT(f, name)                                                   \
        do {                                                                   \
                if (cur->f != next->f) {                                       \
                        pd_log(PD_LOG_WARN,                                    \
                               "reload: %s changes at the next start",         \
                               name);                                          \
                        next->f = cur->f;                                      \
                }                                                              \
        } while (0)
        PD_KEEP_STR(group_id, "reactor.group.id");
        PD_KEEP_STR(state_path, "reactor.state");
        PD_KEEP_STR(reactor_name, "reactor.name");
        PD_KEEP_STR(signing_key, "reactor.signing_key");
        PD_KEEP_STR(http, "reactor.http");
        PD_KEEP_STR(topic_events, "topics.events");
        PD_KEEP_STR(topic_results, "topics.results");
        PD_KEEP_STR(topic_dlq, "topics.dlq");
        PD_KEEP_INT(workers, "reactor.workers");
        PD_KEEP_INT(state_sync_full, "reactor.state_sync");
        PD_KEEP_INT(keep_runs_ms, "reactor.keep_runs");
#undef PD_KEEP_STR
#undef PD_KEEP_INT
        if (cur->kafka.cnt != next->kafka.cnt)
                pd_log(PD_LOG_WARN, "reload: [kafka] changes at the next start");
        else
                for (size_t i = 0; i < cur->kafka.cnt; i++)
                        if (strcmp(cur->kafka.v[i], next->kafka.v[i])) {
                                pd_log(PD_LOG_WARN, "reload: [kafka] changes "
                                                    "at the next start");
                                break;
                        }
}

/*
 * Moves a reload on (main thread, once per loop): loads the new config when
 * asked, then, once no worker runs an event, swaps it in.
 */
static void pd_reactor_reload_step(pd_reactor_t *r) {
        const pd_config_t *old;
        int idle = 1;
        char errstr[1024] = "";

        if (!r->next_conf) {
                if (!r->reload.reload || !*r->reload.reload)
                        return;
                *r->reload.reload = 0;
                pd_log(PD_LOG_INFO, "reloading the config");
                r->next_conf = r->reload.load(r->reload.opaque, errstr,
                                              sizeof(errstr));
                if (!r->next_conf) {
                        pd_log(PD_LOG_ERROR,
                               "config reload failed, the running config "
                               "stays: %s",
                               errstr);
                        return;
                }
                pd_reload_keep(r->conf, r->next_conf);
                pthread_mutex_lock(&r->lock);
                r->paused = 1;
                /* A worker waiting out a retry backoff gives way. */
                pthread_cond_broadcast(&r->cond);
                pthread_mutex_unlock(&r->lock);
        }
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < r->worker_cnt; i++)
                idle &= !r->workers[i].tenant;
        if (idle) {
                old          = r->conf;
                r->conf      = r->next_conf;
                r->next_conf = NULL;
                r->paused    = 0;
                pthread_cond_broadcast(&r->cond);
        }
        pthread_mutex_unlock(&r->lock);
        if (!idle)
                return;
        r->reload.release(r->reload.opaque, old);
        pd_log_level = r->conf->log_level;
        atomic_store(&r->grace_ms, r->conf->shutdown_grace_ms);
        if (pd_reactor_txn_sync(r, pd_txn_registry, NULL))
                return;
        pd_log(PD_LOG_INFO, "config reloaded: %zu action(s)",
               r->conf->action_cnt);
}

/*
 * Waits until the broker answers and the topics exist (creating them as
 * configured). A reactor is a service: started while Kafka is down (a
 * machine boot, a broker restart), it waits for Kafka and says why, with
 * a growing pause (1 s to 30 s) between attempts, until Kafka answers or
 * it is asked to stop. Returns 0 when ready, -1 when stopped first.
 */
static int pd_reactor_await_kafka(pd_reactor_t *r,
                                  volatile sig_atomic_t *stop) {
        int64_t pause_ms = 1000;
        int attempt      = 0;
        char errstr[512];

        while (!*stop) {
                attempt++;
                /* Short: a stop request waits for at most one attempt. */
                if (!pd_kafka_ping(r->producer, r->brokers, 2000, errstr,
                                   sizeof(errstr)) &&
                    !pd_kafka_topics_ensure(r->producer, r->conf, 5000,
                                            errstr, sizeof(errstr))) {
                        if (attempt > 1)
                                pd_log(PD_LOG_INFO,
                                       "Kafka answers at %s (attempt %d)",
                                       r->brokers, attempt);
                        pd_metrics_cond_set(PD_METRICS_BROKER_OK, 1);
                        return 0;
                }
                pd_metrics_cond_set(PD_METRICS_BROKER_OK, 0);
                pd_log(PD_LOG_WARN, "waiting for Kafka (attempt %d): %s; "
                       "next attempt in %" PRId64 " s",
                       attempt, errstr, pause_ms / 1000);
                for (int64_t end = pd_now_ms() + pause_ms;
                     !*stop && pd_now_ms() < end;) {
                        pd_metrics_tick();
                        pd_sleep_ms(100);
                }
                if (pause_ms < 30000)
                        pause_ms = pause_ms * 2 > 30000 ? 30000 : pause_ms * 2;
        }
        return -1;
}

int pd_reactor_run(pd_reactor_t *r, volatile sig_atomic_t *stop) {
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_resp_err_t err;
        int64_t flush_ms;
        int ret = 0;

        r->stop = stop;
        if (pd_reactor_await_kafka(r, stop)) {
                pd_log(PD_LOG_INFO, "stopped before Kafka answered");
                pd_reactor_drain(r);
                pd_batch_flush(r); /* recovery's records wait in the outbox */
                return 0;
        }
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, r->conf->topic_events,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(r->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                pd_log(PD_LOG_ERROR, "cannot subscribe to %s: %s",
                       r->conf->topic_events, rd_kafka_err2str(err));
                return -1;
        }

        while (!*stop) {
                rd_kafka_message_t *rkm;
                int fatal;

                pd_metrics_tick();
                rkm = rd_kafka_consumer_poll(r->consumer, 50);
                if (rkm) {
                        if (!rkm->err)
                                pd_reactor_dispatch(r, rkm);
                        else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                pd_log(PD_LOG_WARN, "consumer: %s",
                                       rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                }
                rd_kafka_poll(r->producer, 0);
                pd_outbox_reap(r);
                pd_offsets_advance(r);
                pd_reactor_reload_step(r);

                pthread_mutex_lock(&r->lock);
                fatal = r->fatal;
                if (fatal)
                        ret = r->restart ? 1 : -1;
                pthread_mutex_unlock(&r->lock);
                if (fatal)
                        break;
        }

        if (r->next_conf) {
                /* Stopping before the swap: the new config was never used. */
                r->reload.release(r->reload.opaque, r->next_conf);
                r->next_conf = NULL;
                pthread_mutex_lock(&r->lock);
                r->paused = 0;
                pthread_mutex_unlock(&r->lock);
        }
        pd_log(PD_LOG_INFO, "stopping: %zu event(s) in flight", r->inflight);
        pd_reactor_drain(r);
        pd_batch_flush(r);
        pd_offsets_advance(r);
        /* Within a second past the grace: what is not delivered by then
         * waits in the outbox for the next start. */
        flush_ms = pd_reactor_deadline(r) + 700 - pd_now_ms();
        rd_kafka_flush(r->producer, (int)(flush_ms < 300 ? 300
                                          : flush_ms > 10000 ? 10000
                                                             : flush_ms));
        pd_outbox_reap(r);
        if ((err = rd_kafka_consumer_close(r->consumer)))
                pd_log(PD_LOG_WARN, "consumer close: %s",
                       rd_kafka_err2str(err));
        pd_log(PD_LOG_INFO, "stopped");
        return ret;
}

void pd_reactor_destroy(pd_reactor_t *r) {
        if (!r)
                return;
        pd_metrics_kafka_reset(); /* not ready until a new one says so */
        if (r->worker_cnt) {
                pthread_mutex_lock(&r->lock);
                r->draining = 1;
                pthread_cond_broadcast(&r->cond);
                pthread_mutex_unlock(&r->lock);
                for (int i = 0; i < r->worker_cnt; i++) {
                        r->workers[i].cancel = 1;
                        pthread_join(r->workers[i].thread, NULL);
                }
        }
        if (r->committer_started) {
                pthread_mutex_lock(&r->st_lock);
                r->committer_stop = 1;
                pthread_cond_signal(&r->batch_cond);
                pthread_mutex_unlock(&r->st_lock);
                pthread_join(r->committer, NULL);
        }
        pd_store_close(r->ckpt_st);
        r->ckpt_st = NULL;
        /* Closing the store would roll the open batch back. */
        if (r->st)
                pd_batch_flush(r);
        /* Every job is in its partition's list, whether queued, cut short
         * or done: jobs never finished are simply redelivered. */
        for (int32_t p = 0; p < r->partq_cnt; p++) {
                pd_job_t *job = r->partqs[p].head, *next;
                for (; job; job = next) {
                        next = job->pnext;
                        pd_event_destroy(job->ev);
                        free(job->tenant);
                        free(job);
                }
        }
        free(r->partqs);
        free(r->workers);
        for (size_t i = 0; i < r->adopt_cnt; i++)
                pd_adopt_clear(&r->adopt[i]);
        free(r->adopt);
        pd_sup_close(r->sup);
        pd_sign_key_free(r->secret, r->secret_len);
        if (r->consumer)
                rd_kafka_destroy(r->consumer);
        if (r->producer)
                rd_kafka_destroy(r->producer);
        if (r->st)
                pd_store_close(r->st);
        free(r->delivered);
        pthread_mutex_destroy(&r->st_lock);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->dr_lock);
        pthread_cond_destroy(&r->batch_cond);
        pthread_mutex_destroy(&r->pr_lock);
        pthread_cond_destroy(&r->pr_cond);
        free(r);
}
