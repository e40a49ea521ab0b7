/*
 * reactor_int.h - private to the reactor's files (consumer/reactor.c and
 * the files it is cut into; see the list at the top of reactor.c): the
 * reactor's struct, the job, worker, outbox, batch and plan types, and the
 * functions one part calls in another. Callers outside the reactor use
 * consumer/reactor.h only.
 */

#ifndef PD_REACTOR_INT_H
#define PD_REACTOR_INT_H

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
#include "common/map.h"
#include "common/random.h"
#include "common/sign.h"
#include "common/xalloc.h"
#include "consumer/metrics.h"
#include "consumer/plugin.h"
#include "consumer/restore.h"
#include "consumer/runner.h"
#include "consumer/supervisor.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"
#include "state/store.h"

/* An event taken from a partition; also its place in the partition's list
 * of events whose offsets are not stored yet. */
typedef struct pd_job_s {
        struct pd_job_s *next;  /* worker queue / done queue */
        struct pd_job_s *pnext; /* partition order */
        pd_event_t *ev;         /* owned until the worker is done */
        char *tenant;           /* resolved tenant, owned */
        int32_t partition;
        int64_t offset;
        int64_t gen; /* the batch that marks it done */
        int done;
        int revoked;  /* its partition is being taken from us: cut it
                       * short after the running action (under r->lock) */
        char *parked; /* owned: the action whose concurrency it waits for,
                       * back in the queue (not holding a worker); NULL
                       * when not parked. Under r->lock. */
} pd_job_t;

/* Events of one partition, oldest first, whose offsets are not stored. */
typedef struct pd_partq_s {
        pd_job_t *head, *tail;
        size_t cnt; /* jobs in the list */
        int paused; /* fetching paused: too many wait (shared_group) */
} pd_partq_t;

/* A shared group's reactor stops fetching a partition this many events
 * ahead of its workers, and fetches again at half: what waits costs
 * memory, and the other members could take it at the next rebalance. */
#define PD_PARTQ_PAUSE 1000

/* A finished command run the supervisor may forget once the batch that
 * records its outcome is durable. */
typedef struct pd_forget_s {
        int64_t sup_id; /* the run's name at the supervisor */
        int64_t gen;
} pd_forget_t;

typedef struct pd_worker_s {
        struct pd_reactor_s *r;
        int idx;
        pthread_t thread;
        const char *tenant;  /* whose job it runs, under r->lock */
        pd_job_t *job;       /* the job it runs, under r->lock */
        const char *action;  /* the action it runs now, under r->lock */
        volatile int cancel; /* kills the running action: PD_CANCEL_* */
        char *cancel_by;     /* who asked (PD_CANCEL_ASKED), under r->lock */
        pd_sup_t *sup;       /* this worker's supervisor connection */
        pd_forget_t *forget; /* runs to forget once durable */
        size_t forget_cnt, forget_size;
} pd_worker_t;

/* Why w->cancel is set. A stop cuts the event short (it comes again after
 * the restart); an operator's cancel ends the one action, recorded
 * CANCELLED, and the event goes on. */
#define PD_CANCEL_STOP  1
#define PD_CANCEL_ASKED 2

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
        int32_t part; /* the partition it goes to; PD_PART_ANY: the
                       * partitioner chooses */
        /* The headers as encoded, owned, handed to the producer as they
         * are (NULL: built again from `headers`, e.g. after a restart). */
        rd_kafka_headers_t *hdrs;
} pd_outrec_t;

/* The seq of a record produced without the outbox (an in-process
 * action.started): its delivery report deletes nothing. Outbox seqs are
 * rowids, from 1. */
#define PD_OUTBOX_NONE 0

typedef struct pd_outq_s {
        pd_outrec_t *recs;
        size_t cnt, size;
        /* Where records added now go: the partition of the event whose
         * job the transaction records (co-partitioning: a tenant's
         * results sit in the results partition numbered as the events
         * partition they answer), PD_PART_ANY for what belongs to no
         * job. pd__outq_for_job sets it. */
        int32_t part;
} pd_outq_t;

#define PD_OUTQ_INIT                                                           \
        { NULL, 0, 0, PD_PART_ANY }

/* The records a job's transaction adds go to its event's partition. */
static inline void pd__outq_for_job(pd_outq_t *oq, const pd_job_t *job) {
        if (oq)
                oq->part = job->partition;
}

/* Records a batch to produce once it commits, and the names of its parts
 * for their crash points. Taken whole by the committing thread. */
typedef struct pd_batch_s {
        pd_outq_t oq;
        const char **names;
        size_t name_cnt, name_size;
} pd_batch_t;

typedef struct pd_progress_s pd_progress_t;
typedef struct pd_progress_hub_s pd_progress_hub_t;

/* A record of the open Kafka transaction (shared_group): a copy of its
 * outbox row, kept until the transaction that holds it commits, to be
 * produced again in the next one if it aborts. */
typedef struct pd_pubrec_s {
        pd_outrec_t rec;
        int64_t seq; /* its outbox row, PD_OUTBOX_NONE if none */
} pd_pubrec_t;

/* The Kafka transaction (shared_group only, publish.c). Under lock. */
typedef struct pd_pub_s {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* work came, a commit ended, or stop */
        pthread_t thread;
        int started, stop;
        char txn_id[600];  /* transactional.id */
        int ready;         /* init_transactions done */
        int txn_open;      /* begun: records may be produced into it */
        int committing;    /* a commit or abort runs outside the lock */
        int fenced;        /* the producer can no longer transact: the main
                            * thread rebuilds it and drops every partition */
        int call_ms;       /* timeout of a commit or abort */
        int wait_topics;   /* nothing is produced before the topics are
                            * made with their partitions: a record to a
                            * missing topic would have the broker make it
                            * with its default count */
        int hold;          /* tests: the publisher commits nothing (records
                            * still go into the open transaction) */
        pd_pubrec_t *recs; /* in produce order */
        size_t cnt, size;
        size_t nprod; /* recs[0..nprod) are in the open transaction */
        /* Next offset per events partition, to commit with the records. */
        rd_kafka_topic_partition_list_t *offsets;
        /* Every assigned partition's next offset as far as we know it
         * (what `offsets` last said, or the first event read of it): sent
         * whole with every transaction, so that a member the group no
         * longer knows has each of its transactions refused (KIP-447
         * fences by the offsets' generation; records alone are not). */
        rd_kafka_topic_partition_list_t *positions;
        int64_t commits, aborts, rebuilds; /* counters, for tests and logs */
        int64_t backoff_ms, retry_ms;      /* after an abort: no commit before
                                            * retry_ms (mono) */
} pd_pub_t;

struct pd_reactor_s {
        const pd_config_t *conf;     /* replaced only while no worker runs */
        pd_progress_hub_t *progress; /* progress.c's; set under lock */
        char name[256];   /* the `reactor` field of what we publish */
        char source[300]; /* ce_source of what we publish */
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        char brokers[512];  /* as given, for messages */
        char instance[300]; /* shared_group: group.instance.id */

        pd_store_t *st;
        pd_store_t *ckpt_st;     /* the committer's, for checkpoints */
        pthread_mutex_t st_lock; /* serialises every store call */
        /* Group commit (see "Transactions"); under st_lock: */
        int batch_open;            /* a store transaction is open */
        int64_t batch_gen;         /* the open (or next) batch's number */
        pd_batch_t batch;          /* what the open batch holds */
        pthread_cond_t batch_cond; /* a batch opened, or stop */
        int lost;                  /* a batch was lost: what is in memory
                                    * is ahead of the disk, so no later
                                    * batch may commit (it would make the
                                    * lost one look durable) until the
                                    * reactor is made again */
        int committer_stop;
        int committer_idle; /* waits on batch_cond */
        int wal_restart;    /* the WAL is long: the next commit copies
                             * what is left of it, so it starts over */
        int committer_started;
        pthread_t committer;
        /* Under pr_lock, held while a committed batch is produced: */
        pthread_mutex_t pr_lock;
        pthread_cond_t pr_cond; /* produced_gen moved, or failed */
        int64_t produced_gen;   /* last batch committed and produced */
        int batch_failed;       /* a batch was lost: the reactor stops */
        int restart;            /* ... by a store fault that may clear
                                 * (disk full, I/O): pd_reactor_run
                                 * returns 1, to be made again */
        int64_t keep_runs_ms;   /* retention; 0: keep everything */
        char sup_dir[512];      /* the supervisor's folder */
        unsigned char *secret;  /* signing key; NULL: unsigned is fine */
        size_t secret_len;
        pd_sup_t *sup; /* the main thread's connection */
        /* How long the supervisor keeps our runs going without hearing
         * from us (0: for ever); the main thread pings it well within
         * that (pd__reactor_lease_ping), last at lease_pinged (mono ms). */
        int64_t lease_ms;
        int64_t lease_pinged;
        /* The main thread's last sign of life (mono ms, any thread). A
         * gap past the lease means we were stopped (SIGSTOP, a frozen
         * host): the group may have given our partitions to another
         * member, which learns nothing from us. Until the group says
         * otherwise (a rebalance) or had time to (suspect_until), no
         * worker starts anything: pd__reactor_suspect. */
        _Atomic int64_t alive_ms;
        int64_t suspect_until; /* mono ms, under lock; 0: none */
        pd_adopt_t *adopt;     /* runs to adopt, under r->lock */
        size_t adopt_cnt;

        pthread_mutex_t lock; /* worker queues, done queue, flags */
        pthread_cond_t cond;  /* signalled on new work and stop */
        pd_worker_t *workers;
        int worker_cnt;
        pd_job_t *queue_head; /* events waiting for a worker, in the */
        pd_job_t *queue_tail; /* order they were consumed */
        pd_job_t *done_head;  /* finished jobs for the main thread */
        int draining;         /* workers: finish the job, take no more */
        int paused;           /* workers: take no new job (reload) */
        /* Action name -> how many runs of it hold a slot (intptr_t), for
         * concurrency / max_running_per_action; under lock. */
        pd_map_t *running;
        pd_map_t *parked_tenants; /* queue_take's scratch: tenants of
                                   * parked jobs */
        pd_strv_t held;           /* tenants paused by an operator (postdeploy
                                   * pause; PD_STORE_ALL_TENANTS: every one):
                                   * their events wait; as in the store */
        pd_strv_t held_by;        /* who paused each */
        pd_reload_t reload;
        pd_config_t *next_conf;      /* loaded, waiting for idle workers */
        int fatal;                   /* a worker hit an unrecoverable error */
        volatile sig_atomic_t *stop; /* pd_reactor_run's: a stop is asked */
        /* When a stop must be over (shutdown_grace after it was first
         * seen), 0 before; any thread, lock-free (see pd__reactor_deadline).
         */
        _Atomic int64_t stop_deadline;
        _Atomic int64_t grace_ms;        /* the config's shutdown_grace */
        rd_kafka_resp_err_t offsets_err; /* last offsets_store error */

        pthread_mutex_t dr_lock; /* delivered outbox seqs */
        int64_t *delivered;
        size_t delivered_cnt, delivered_size;

        pd_pub_t pub; /* the Kafka transaction (shared_group) */
        /* The partitions assigned to us (shared_group; main thread). */
        rd_kafka_topic_partition_list_t *assigned;

        pd_partq_t *partqs; /* main thread only */
        int32_t partq_cnt;
        size_t inflight;
};

/* Whether an operator's pause holds tenant's events (under r->lock); *byp
 * (may be NULL) says who paused it, *allp (may be NULL) whether it was a
 * pause of every tenant. */
int pd__held(const pd_reactor_t *r, const char *tenant, const char **byp,
             int *allp);

/* How often a waiting thread looks at the stop flag, which a signal
 * handler sets and so cannot signal a condition variable. */
#define PD_STOP_POLL_MS 100

typedef int(pd_txn_fn_t)(pd_reactor_t *r, pd_outq_t *oq, void *arg);

/* Whether partition p is in parts. */
static inline int pd__parts_has(const rd_kafka_topic_partition_list_t *parts,
                                int32_t p) {
        for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition == p)
                        return 1;
        return 0;
}

/* "pd__txn_event_done" or "txn_event_done" -> "event_done". */
static inline const char *pd__txn_strip(const char *fn_name) {
        const char *name = strstr(fn_name, "txn_");

        return name ? name + 4 : fn_name;
}

/* Every transaction is named after its function, pd__txn_NAME (shared by
 * the reactor's files) or txn_NAME (one file's own), for the crash points
 * NAME.before_commit, NAME.after_commit, NAME.after_produce (passed when
 * the batch holding it commits and is produced).
 * pd__reactor_txn returns once the change is in the open batch;
 * pd__reactor_txn_sync once it is committed and its records produced;
 * pd__reactor_txn_gen like pd__reactor_txn, and sets *genp to the batch
 * holding the change (durable once pd__batch_produced says so). */
#define pd__txn_name(fn) pd__txn_strip(#fn)
#define pd__reactor_txn(r, fn, arg)                                            \
        pd__reactor_txn_named((r), (fn), (arg), pd__txn_name(fn), 0, NULL)
#define pd__reactor_txn_sync(r, fn, arg)                                       \
        pd__reactor_txn_named((r), (fn), (arg), pd__txn_name(fn), 1, NULL)
#define pd__reactor_txn_gen(r, fn, arg, genp)                                  \
        pd__reactor_txn_named((r), (fn), (arg), pd__txn_name(fn), 0, (genp))

/* One action of a plan. */
typedef struct pd_step_s {
        const pd_action_def_t *def; /* NULL for a rejected name */
        const char *name;
        int finished; /* has a final outcome */
        pd_status_t status;
        /* Commands its trigger started of it when planned, plus those
         * started since: the next one's place, which names it at the
         * supervisor (pd_store_trigger_runs). */
        int64_t runs;
} pd_step_t;

typedef struct pd_plan_s {
        pd_job_t *job;
        pd_step_t *steps;
        size_t cnt;
        /* A dry run's answer (pd__plan_dry): what would not run, and why,
         * one reason per name. Empty for a real run. */
        pd_strv_t skipped, skipped_why;
} pd_plan_t;

/* Outcome of a step decided without running it (rejected, skipped). */
typedef struct pd_verdict_s {
        pd_plan_t *plan;
        pd_step_t *step;
        pd_status_t status;
        const char *error;
        int set_done;    /* -1: leave the state; 1: done (skip); 0: reset */
        int32_t attempt; /* 0 means 1 */
        int retrying;    /* the action is not done with: more will come */
} pd_verdict_t;

/* One attempt of a command action: the store side. */
typedef struct pd_attempt_s {
        pd_plan_t *plan;
        pd_step_t *step;
        pd_run_t run;
        const pd_runner_result_t *res; /* NULL when starting */
        int retrying;
        int whole;       /* in-process: its run is written whole,
                          * at its end (pd__attempt_start_whole) */
        pd_outrec_t out; /* its action.finished, encoded before the
                          * store lock is taken (pd__attempt_finish);
                          * emptied once it is in the outbox */
} pd_attempt_t;

/* progress.c: action.progress records, advisory, at most one per run per
 * progress_interval plus the last. pd__progress_begin before a run (any
 * thread), pd__progress_report with each value (any thread, the opaque of
 * a runner job's or plugin call's progress), pd__progress_end after the
 * run, before its action.finished: the last value goes out if it has
 * not, and p is freed. pd__progress_hub_destroy once no worker runs. */
pd_progress_t *pd__progress_begin(pd_reactor_t *r, const pd_run_t *run,
                                  int32_t part);
void pd__progress_report(void *opaque, int64_t done, int64_t total);
void pd__progress_end(pd_progress_t *p);
void pd__progress_hub_destroy(pd_reactor_t *r);

/* fault.c */
void pd__crash_init(void);
void pd__crashpoint(const char *name);
void pd__crashpoint2(const char *name, const char *suffix);

/* outbox.c */
void pd__outq_clear(pd_outq_t *oq);
void pd__outq_destroy(pd_outq_t *oq);
int pd__outbox_put(pd_reactor_t *r, pd_outq_t *oq, const char *topic,
                   const char *key, rd_kafka_headers_t *hdrs, void *value,
                   size_t value_len);
void pd__outrec_clear(pd_outrec_t *o);
void pd__outq_put_unstored(pd_outq_t *oq, pd_outrec_t *o);
void pd__produce_advisory(pd_reactor_t *r, int32_t partition,
                          const pd_outrec_t *o);
int pd__outbox_put_rec(pd_reactor_t *r, pd_outq_t *oq, pd_outrec_t *o);
void pd__emit_encode(pd_reactor_t *r, pd_event_t *ev, const char *key,
                     pd_outrec_t *o);
int pd__emit(pd_reactor_t *r, pd_outq_t *oq, pd_event_t *ev, const char *key);
void pd__produce_rec(pd_reactor_t *r, int64_t seq, int32_t part,
                     const char *topic, const char *key, const void *headers,
                     size_t headers_len, const void *value, size_t value_len);
void pd__outq_produce(pd_reactor_t *r, pd_outq_t *oq);
void pd__dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);
void pd__outbox_reap(pd_reactor_t *r);

/* Where a record goes: the registry to partition 0 (a client finds it
 * without reading every partition), the rest to part (PD_PART_ANY: the
 * partitioner). */
static inline int32_t pd__produce_partition(const char *key, int32_t part) {
        if (key && !strcmp(key, PD_REGISTRY_KEY))
                return 0;
        return part >= 0 ? part : RD_KAFKA_PARTITION_UA;
}
void pd__outbox_delivered(pd_reactor_t *r, const int64_t *seqs, size_t cnt);
rd_kafka_headers_t *pd__headers_unpack(const void *buf, size_t len);

/* publish.c (shared_group: the Kafka transaction) */
int pd__publish_init(pd_reactor_t *r, char *errstr, size_t size);
void pd__publish_stop(pd_reactor_t *r);
void pd__publish_topics_ready(pd_reactor_t *r);
int pd__publish_settle(pd_reactor_t *r, int timeout_ms);
void pd__publish_add(pd_reactor_t *r, int64_t seq, int32_t part,
                     const char *topic, const char *key, const void *headers,
                     size_t headers_len, const void *value, size_t value_len);
void pd__publish_unassign(pd_reactor_t *r,
                          const rd_kafka_topic_partition_list_t *parts);
void pd__publish_seen(pd_reactor_t *r, const char *topic, int32_t partition,
                      int64_t offset);
void pd__publish_offsets(pd_reactor_t *r,
                         const rd_kafka_topic_partition_list_t *offsets);
int pd__publish_flush(pd_reactor_t *r, int timeout_ms);
void pd__publish_drop(pd_reactor_t *r,
                      const rd_kafka_topic_partition_list_t *parts);
int pd__publish_fenced(pd_reactor_t *r);
int pd__publish_rebuild(pd_reactor_t *r, char *errstr, size_t size);

/* partition.c (shared_group: the partition lifecycle) */
void pd__partition_backpressure(pd_reactor_t *r);
void pd__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque);
void pd__partition_lost_all(pd_reactor_t *r);

/* restore.c (each partition's ledger from the results topic) */
int pd__restore_partition(pd_reactor_t *r, int32_t part, char *errstr,
                          size_t size);
void pd__restore_forget(pd_reactor_t *r, int32_t part);

/* txn.c */
int pd__batch_produced(pd_reactor_t *r, int64_t gen);
int pd__batch_wait(pd_reactor_t *r, int64_t gen);
int pd__batch_flush(pd_reactor_t *r);
void *pd__committer_main(void *arg);
int pd__reactor_txn_named(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                          const char *name, int sync, int64_t *genp);
int pd__reactor_txn_try(pd_reactor_t *r, pd_txn_fn_t *fn, void *arg,
                        const char *what);

/* plan.c */
void pd__plan_named(const pd_config_t *conf, const pd_event_t *ev,
                    pd_plan_t *plan);
int pd__plan_takes(const pd_action_def_t *def, pd_evtype_t type,
                   const pd_action_state_t *as);
int pd__plan_finished(const pd_action_def_t *def, int found, pd_status_t status,
                      int32_t attempt);
void pd__plan_order(pd_plan_t *plan);
int pd__plan_build(pd_reactor_t *r, pd_plan_t *plan);
void pd__plan_dry(pd_plan_t *plan);
int pd__plan_params_refused(const pd_action_def_t *def, const pd_event_t *ev,
                            char *why, size_t why_size);
const char *pd__plan_param(const pd_event_t *ev, const char *name);
const pd_step_t *pd__plan_blocker(const pd_plan_t *plan, const pd_step_t *step);

/* record.c */
void pd__result_key(char *buf, size_t size, const char *tenant,
                    const char *action);
void pd__finished_encode(pd_reactor_t *r, const pd_run_t *run, const char *tail,
                         int retrying, pd_outrec_t *o);
int pd__emit_finished(pd_reactor_t *r, pd_outq_t *oq, const pd_run_t *run,
                      const char *tail, int retrying);
int pd__attempt_start_whole(pd_reactor_t *r, pd_attempt_t *a);
void pd__attempt_finish(pd_reactor_t *r, pd_attempt_t *a);
int pd__txn_verdict(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__txn_plan(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__txn_started(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__txn_queued(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__txn_finished(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__txn_event_done(pd_reactor_t *r, pd_outq_t *oq, void *arg);

/* worker.c */
void pd__adopt_clear(pd_adopt_t *ad);
const char *pd__sup_exe(void);
void pd__reactor_lease_ping(pd_reactor_t *r);
int pd__reactor_suspect(pd_reactor_t *r);
void *pd__worker_main(void *arg);

/* dispatch.c */
void pd__offsets_advance(pd_reactor_t *r);
void pd__reactor_dispatch(pd_reactor_t *r, rd_kafka_message_t *rkm);

/* restore.c: partition part of the results topic read into the store
 * from its checkpoint (pd_restore_apply), before anything of part is
 * dispatched; 0 or -1 with errstr. _forget marks part's checkpoint dirty
 * (lost, fenced): its next restore deletes its tenants' rows and starts
 * over. Main thread. */
int pd__restore_partition(pd_reactor_t *r, int32_t part, char *errstr,
                          size_t size);
void pd__restore_forget(pd_reactor_t *r, int32_t part);

/* recover.c */
int pd__txn_registry(pd_reactor_t *r, pd_outq_t *oq, void *arg);
int pd__reactor_recover(pd_reactor_t *r, char *errstr, size_t errstr_size);

/* reactor.c */
rd_kafka_t *pd__reactor_producer_new(pd_reactor_t *r, char *errstr,
                                     size_t size);
void pd__sleep_ms(int64_t ms);
void pd__cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms);
int64_t pd__reactor_deadline(pd_reactor_t *r);
int pd__reactor_grace_over(pd_reactor_t *r);

#endif /* PD_REACTOR_INT_H */
