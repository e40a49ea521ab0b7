/*
 * reactor.c - the reactor's life cycle: its Kafka clients, pd_reactor_new,
 * the main loop (pd_reactor_run), reload, drain and destroy, and the stop
 * deadline every thread consults. See reactor.h for what the reactor does
 * and which thread does what. The shape of one event's life:
 *
 *   main thread: poll -> decode -> (bad: dead-letter through the outbox)
 *                     -> (seen before: done) -> queue to the tenant's worker
 *   worker:      plan (deploy.planned) -> for each action: started, run,
 *                finished -> mark the event done
 *   main thread: the worker's completion -> store the partition's offset
 *                once every earlier event of that partition is done too
 *
 * Every store change and the result records it implies are written in one
 * transaction part (pd__reactor_txn), and parts are committed in batches
 * (group commit); the records are produced after their batch commits and
 * deleted from the outbox when the broker acknowledges them.
 *
 * The other parts of the reactor, sharing consumer/reactor_int.h: fault.c
 * (crash points), outbox.c (the outbox and producing), txn.c (group
 * commit), plan.c (which actions an event runs, in which order),
 * record.c (the transaction parts that record an event's progress),
 * worker.c (the worker threads), dispatch.c (the main thread's dispatch,
 * offsets and dead letters), recover.c (start-up recovery and registry),
 * and in a shared group (reactor.shared_group) publish.c (the Kafka
 * transaction), partition.c (rebalances) and restore.c (a partition's
 * ledger from the results topic).
 */

#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

void pd__sleep_ms(int64_t ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* pthread_cond_timedwait for at most ms (the conds use CLOCK_REALTIME). */
void pd__cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms) {
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

/*
 * The time by which a stop must be over: shutdown_grace after whichever
 * thread first saw the stop flag (or after reactor_deadline_set), 0
 * while no stop is asked. Lock-free, for the store's busy handler.
 */
int64_t pd__reactor_deadline(pd_reactor_t *r) {
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
static int64_t reactor_deadline_set(pd_reactor_t *r) {
        int64_t d = pd__reactor_deadline(r), want;

        if (d)
                return d;
        want = pd_now_ms() + atomic_load(&r->grace_ms);
        return atomic_compare_exchange_strong(&r->stop_deadline, &d, want)
                   ? want
                   : d;
}

/* Whether the grace of a stop is over: whoever still waits to retry
 * something must give up now. */
int pd__reactor_grace_over(pd_reactor_t *r) {
        int64_t d = pd__reactor_deadline(r);

        return d && pd_now_ms() >= d;
}

/* pd_store_set_give_up's callback: a statement waiting for another
 * process's lock stops waiting once the grace is over. */
static int reactor_store_give_up(void *opaque) {
        return pd__reactor_grace_over(opaque);
}

/* ------------------------------------------------------------------ */
/* The supervisor's lease                                               */

/*
 * Tells the supervisor we are here when a quarter of the lease has passed
 * since we last did (so at least every third of it, whatever the loop was
 * doing in between): silent for the whole lease, the supervisor stops our
 * runs. Cheap, and it never waits for an answer. The main thread's, from
 * every loop it turns in (waiting for Kafka, the main loop, the drain).
 */
/* How long a reactor that was stopped past its lease starts nothing,
 * unless a rebalance comes first: two heartbeats (librdkafka's default
 * heartbeat.interval.ms, 3 s), by which the coordinator has told a member
 * it dropped that it is gone, and librdkafka has called the rebalance
 * callback with the partitions lost. */
#define PD_SUSPECT_MS 6000

void pd__reactor_lease_ping(pd_reactor_t *r) {
        int64_t now = pd_mono_ms(), last;

        if (r->lease_ms <= 0)
                return;
        last = atomic_exchange(&r->alive_ms, now);
        if (last && now - last > r->lease_ms) {
                pd_log(PD_LOG_WARN,
                       "the reactor was stopped for %" PRId64
                       " ms, past its lease: its supervisor cut its runs, "
                       "and the group may have moved its partitions; "
                       "nothing new starts until the group says which "
                       "are still ours",
                       now - last);
                pthread_mutex_lock(&r->lock);
                r->suspect_until = now + PD_SUSPECT_MS;
                pthread_mutex_unlock(&r->lock);
        } else if (r->suspect_until) {
                pthread_mutex_lock(&r->lock);
                if (r->suspect_until && now >= r->suspect_until) {
                        r->suspect_until = 0;
                        pthread_cond_broadcast(&r->cond);
                }
                pthread_mutex_unlock(&r->lock);
        }
        if (now - r->lease_pinged < r->lease_ms / 4)
                return;
        pd_sup_ping(r->sup);
        r->lease_pinged = now;
}

/* Whether workers must start nothing now (under r->lock): the reactor was
 * stopped past its lease, and the group has not yet said which partitions
 * are still ours. Seen by the workers before the main thread, when they
 * wake first: its last sign of life is that old. */
int pd__reactor_suspect(pd_reactor_t *r) {
        int64_t alive;

        if (r->lease_ms <= 0)
                return 0;
        alive = atomic_load(&r->alive_ms);
        return r->suspect_until ||
               (alive && pd_mono_ms() - alive > r->lease_ms);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static void reactor_log_nothing(const rd_kafka_t *rk, int level,
                                const char *fac, const char *buf) {
        (void)rk, (void)level, (void)fac, (void)buf;
}

/*
 * What a shared group needs of its clients, over [kafka] (shared_group):
 * a transactional producer named after this instance, and a consumer that
 * commits only through the transactions, reads only committed results,
 * keeps its place as a static member and hands partitions over eagerly
 * (cooperative-sticky is buggy on librdkafka 2.0.2). r NULL: a check of
 * the config only. Returns 0, or -1 with errstr.
 */
static int reactor_client_shared(const pd_config_t *conf, rd_kafka_type_t type,
                                 rd_kafka_conf_t *kconf, pd_reactor_t *r,
                                 char *errstr, size_t errstr_size) {
        const char *instance = r ? r->instance : "check";
        char txn_id[600];
        const char *set[12];
        size_t n = 0;

        if (type == RD_KAFKA_PRODUCER) {
                snprintf(txn_id, sizeof(txn_id), "postdeploy-%s-%s",
                         conf->group_id, instance);
                set[n++] = "transactional.id";
                set[n++] = txn_id;
                /* A transaction must not outlive its records' timeout:
                 * librdkafka refuses message.timeout.ms=0 with it. */
                if (!pd_config_kafka(conf, "message.timeout.ms")) {
                        set[n++] = "message.timeout.ms";
                        set[n++] = "50000";
                }
        } else {
                set[n++] = "enable.auto.commit";
                set[n++] = "false";
                set[n++] = "isolation.level";
                set[n++] = "read_committed";
                set[n++] = "group.instance.id";
                set[n++] = instance;
                set[n++] = "partition.assignment.strategy";
                set[n++] = "range";
        }
        for (size_t i = 0; i < n; i += 2)
                if (rd_kafka_conf_set(kconf, set[i], set[i + 1], errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        return -1;
        if (type == RD_KAFKA_CONSUMER && r) {
                rd_kafka_conf_set_rebalance_cb(kconf, pd__rebalance_cb);
                rd_kafka_conf_set_opaque(kconf, r);
        }
        return 0;
}

/*
 * Makes the reactor's producer or consumer: postdeploy's defaults for it,
 * then the [kafka] section, then `brokers`. The producer's delivery reports
 * go to pd__dr_cb with `r` as opaque (NULL: no reports are expected). Returns
 * the client, or NULL with librdkafka's message in errstr.
 */
static rd_kafka_t *reactor_client(const pd_config_t *conf, rd_kafka_type_t type,
                                  const char *brokers, pd_reactor_t *r,
                                  char *errstr, size_t errstr_size) {
        static const char *const producer_defaults[] = {
            "enable.idempotence", "true",
            /* The reactor creates its topics itself (compacted results,
             * as many partitions as events): a record produced before
             * that must not make the broker create one its own way. */
            "allow.auto.create.topics", "false",
            /* Results are few and latency matters (publish-to-start);
             * under load librdkafka batches behind the request in flight
             * anyway. */
            "linger.ms", "1",
            /* Deliveries are retried until they succeed: the outbox
             * holds them meanwhile. */
            "message.timeout.ms", "0", NULL};
        static const char *const consumer_defaults[] = {
            "enable.auto.commit",
            "true",
            "enable.auto.offset.store",
            "false",
            "auto.offset.reset",
            "earliest",
            "enable.partition.eof",
            "false",
            NULL};
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        kconf = pd_kafka_conf(
            conf,
            type == RD_KAFKA_PRODUCER ? producer_defaults : consumer_defaults,
            brokers, errstr, errstr_size);
        if (!kconf)
                return NULL;
        if (conf->shared_group &&
            reactor_client_shared(conf, type, kconf, r, errstr, errstr_size)) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        }
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set_dr_msg_cb(kconf, pd__dr_cb);
                rd_kafka_conf_set_opaque(kconf, r);
        } else if (rd_kafka_conf_set(kconf, "group.id", conf->group_id, errstr,
                                     errstr_size) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        } else if (r) {
                pd_metrics_kafka_conf(kconf); /* lag, rebalances, joined */
        }
        if (!r) /* a check: "no bootstrap.servers" is what it asked for */
                rd_kafka_conf_set_log_cb(kconf, reactor_log_nothing);
        rk = rd_kafka_new(type, kconf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(kconf);
        return rk;
}

rd_kafka_t *pd__reactor_producer_new(pd_reactor_t *r, char *errstr,
                                     size_t size) {
        return reactor_client(r->conf, RD_KAFKA_PRODUCER, r->brokers, r, errstr,
                              size);
}

/* Makes the producer and the consumer. Returns 0, or -1 (errstr). */
static int reactor_clients(pd_reactor_t *r, char *errstr, size_t errstr_size) {
        r->producer = reactor_client(r->conf, RD_KAFKA_PRODUCER, r->brokers, r,
                                     errstr, errstr_size);
        if (!r->producer)
                return -1;
        r->consumer = reactor_client(r->conf, RD_KAFKA_CONSUMER, r->brokers, r,
                                     errstr, errstr_size);
        if (!r->consumer)
                return -1;
        rd_kafka_poll_set_consumer(r->consumer);
        return 0;
}

int pd_reactor_kafka_check(const pd_config_t *conf, char *errstr,
                           size_t errstr_size) {
        static const rd_kafka_type_t types[] = {RD_KAFKA_PRODUCER,
                                                RD_KAFKA_CONSUMER};
        char msg[512];

        if (conf->shared_group && conf->lease_ms) {
                /* The lease keeps two runs of one (tenant, action) apart:
                 * the old owner's runs must stop before a new owner can
                 * be given the partition, which takes at least the
                 * session timeout. Half of it leaves room for the
                 * rebalance itself. */
                const char *st = pd_config_kafka(conf, "session.timeout.ms");
                long long session_ms = st ? strtoll(st, NULL, 10) : 45000;

                if (conf->lease_ms * 2 > session_ms) {
                        snprintf(errstr, errstr_size,
                                 "%s: [reactor] lease (%" PRId64
                                 " ms) must be at most half of [kafka] "
                                 "session.timeout.ms (%lld ms)",
                                 conf->path ? conf->path : "config",
                                 conf->lease_ms, session_ms);
                        return -1;
                }
        }
        for (size_t i = 0; i < 2; i++) {
                /* No broker list: the client is made and checked, and
                 * never connects. */
                rd_kafka_t *rk =
                    reactor_client(conf, types[i], "", NULL, msg, sizeof(msg));
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
        pd__crash_init();
        pthread_mutex_init(&r->st_lock, NULL);
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        r->running        = pd_map_new();
        r->parked_tenants = pd_map_new();
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

        snprintf(r->brokers, sizeof(r->brokers), "%s", brokers);
        /* The Kafka clients first: a setting librdkafka refuses then
         * leaves nothing behind on disk, no store, no supervisor folder.
         * A shared group's are named after the store (its instance), so
         * they come after it; pd_reactor_kafka_check vetted the settings
         * when the config was loaded. */
        if (!conf->shared_group && reactor_clients(r, errstr, errstr_size))
                goto err;

        if (conf->signing_key && *conf->signing_key &&
            pd_sign_key_load(conf->signing_key, &r->secret, &r->secret_len,
                             errstr, errstr_size))
                goto err;
        r->keep_runs_ms = conf->keep_runs_ms;
        r->st = pd_store_open(conf->state_path, conf->state_sync_full, errstr,
                              errstr_size);
        if (!r->st)
                goto err;
        if (conf->shared_group) {
                /* Stable per state file: a restart is the same static
                 * member, and its init_transactions fences the old one. */
                if (conf->instance && *conf->instance)
                        snprintf(r->instance, sizeof(r->instance), "%s",
                                 conf->instance);
                else
                        snprintf(r->instance, sizeof(r->instance),
                                 "postdeploy-%s", pd_store_id(r->st));
                snprintf(r->pub.txn_id, sizeof(r->pub.txn_id),
                         "postdeploy-%s-%s", conf->group_id, r->instance);
                r->pub.wait_topics = 1; /* until reactor_await_kafka */
                if (reactor_clients(r, errstr, errstr_size) ||
                    pd__publish_init(r, errstr, errstr_size))
                        goto err;
        }
        pd_store_set_give_up(r->st, reactor_store_give_up, r);
        /* A pause outlives a restart: what an operator held stays held. */
        if (pd_store_pause_list(r->st, &r->held, &r->held_by)) {
                snprintf(errstr, errstr_size, "cannot read the pauses");
                goto err;
        }
        for (size_t i = 0; i < r->held.cnt; i++)
                pd_log(PD_LOG_WARN,
                       "tenant %s is paused (by %s): its events wait for "
                       "postdeploy resume",
                       r->held.v[i], r->held_by.v[i]);
        /* A handle of the committer's own checkpoints the WAL off the
         * workers' path; without it, commits checkpoint as SQLite does by
         * default. */
        {
                char ckerr[512];

                r->ckpt_st =
                    pd_store_open(conf->state_path, conf->state_sync_full,
                                  ckerr, sizeof(ckerr));
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
        r->sup =
            pd_sup_connect(r->sup_dir, pd__sup_exe(), 0, errstr, errstr_size);
        if (!r->sup)
                goto err;
        pd_sup_set_timeout(r->sup, conf->supervisor_timeout_ms);
        /* Only a shared group has a lease: alone, a reactor's runs wait
         * for it however long it is away, and it adopts them. */
        r->lease_ms = conf->shared_group ? conf->lease_ms : 0;
        /* Told even when 0: a lease an earlier reactor of this folder set
         * (shared group, then solo) must not outlive it. */
        pd_sup_set_lease(r->sup, r->lease_ms);
        r->lease_pinged = pd_mono_ms();

        if (pthread_create(&r->committer, NULL, pd__committer_main, r)) {
                snprintf(errstr, errstr_size, "cannot start the committer");
                goto err;
        }
        r->committer_started = 1;
        pd_metrics_outbox_set(0); /* what it holds is produced again */
        if (pd__reactor_recover(r, errstr, errstr_size))
                goto err;
        pd_metrics_cond_set(PD_METRICS_RESTORED, 1);
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);

        r->worker_cnt = conf->workers;
        r->workers    = pd_xcalloc((size_t)r->worker_cnt, sizeof(*r->workers));
        for (int i = 0; i < r->worker_cnt; i++) {
                r->workers[i].r   = r;
                r->workers[i].idx = i;
                if (pthread_create(&r->workers[i].thread, NULL, pd__worker_main,
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
static void reactor_drain(pd_reactor_t *r) {
        int64_t deadline = reactor_deadline_set(r);
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
                        /* Keep results flowing while we wait, and the
                         * runs we wait for within their lease. */
                        rd_kafka_poll(r->producer, 0);
                        pd__reactor_lease_ping(r);
                        if (!cancelled && pd_now_ms() >= deadline) {
                                pd_log(PD_LOG_WARN,
                                       "shutdown grace over: interrupting "
                                       "running actions");
                                pthread_mutex_lock(&r->lock);
                                for (int j = 0; j < r->worker_cnt; j++)
                                        r->workers[j].cancel = PD_CANCEL_STOP;
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
static void reload_keep(const pd_config_t *cur, pd_config_t *next) {
#define PD_KEEP_STR(f, name)                                                   \
        do {                                                                   \
                if (strcmp(cur->f ? cur->f : "", next->f ? next->f : "")) {    \
                        pd_log(PD_LOG_WARN,                                    \
                               "reload: %s changes at the next start", name);  \
                        free(next->f);                                         \
                        next->f = cur->f ? pd_xstrdup(cur->f) : NULL;          \
                }                                                              \
        } while (0)
#define PD_KEEP_INT(f, name)                                                   \
        do {                                                                   \
                if (cur->f != next->f) {                                       \
                        pd_log(PD_LOG_WARN,                                    \
                               "reload: %s changes at the next start", name);  \
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
        /* Its clients, its transactions and its offsets are made for the
         * mode it started in. */
        PD_KEEP_INT(shared_group, "reactor.shared_group");
        PD_KEEP_STR(instance, "reactor.instance");
        PD_KEEP_INT(lease_ms, "reactor.lease");
#undef PD_KEEP_STR
#undef PD_KEEP_INT
        if (cur->kafka.cnt != next->kafka.cnt)
                pd_log(PD_LOG_WARN,
                       "reload: [kafka] changes at the next start");
        else
                for (size_t i = 0; i < cur->kafka.cnt; i++)
                        if (strcmp(cur->kafka.v[i], next->kafka.v[i])) {
                                pd_log(PD_LOG_WARN,
                                       "reload: [kafka] changes "
                                       "at the next start");
                                break;
                        }
}

/*
 * Moves a reload on (main thread, once per loop): loads the new config when
 * asked, then, once no worker runs an event, swaps it in.
 */
static void reactor_reload_step(pd_reactor_t *r) {
        const pd_config_t *old;
        int idle          = 1;
        char errstr[1024] = "";

        if (!r->next_conf) {
                if (!r->reload.reload || !*r->reload.reload)
                        return;
                *r->reload.reload = 0;
                pd_log(PD_LOG_INFO, "reloading the config");
                r->next_conf =
                    r->reload.load(r->reload.opaque, errstr, sizeof(errstr));
                if (!r->next_conf) {
                        pd_log(PD_LOG_ERROR,
                               "config reload failed, the running config "
                               "stays: %s",
                               errstr);
                        return;
                }
                reload_keep(r->conf, r->next_conf);
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
        if (pd__reactor_txn_sync(r, pd__txn_registry, NULL))
                return;
        pd_log(PD_LOG_INFO, "config reloaded: %zu action(s)",
               r->conf->action_cnt);
}

/*
 * Waits until the broker answers and the topics exist (creating them as
 * configured). A reactor is a service: started while Kafka is down (a
 * machine boot, a broker restart), it waits for Kafka and says why, with
 * a growing pause (1 s to 30 s) between attempts, until Kafka answers or
 * it is asked to stop. Returns 0 when ready, -1 when stopped first, -2
 * when Kafka answers with what no wait mends (a shared group's topics of
 * unequal partition counts).
 */
static int reactor_await_kafka(pd_reactor_t *r, volatile sig_atomic_t *stop) {
        int64_t pause_ms = 1000;
        int attempt      = 0;
        char errstr[512];

        while (!*stop) {
                attempt++;
                /* Short: a stop request waits for at most one attempt. */
                int match = 0;

                if (!pd_kafka_ping(r->producer, r->brokers, 2000, errstr,
                                   sizeof(errstr)) &&
                    !pd_kafka_topics_ensure(r->producer, r->conf, 5000, errstr,
                                            sizeof(errstr)) &&
                    (!r->conf->shared_group ||
                     !(match = pd_kafka_partitions_match(
                           r->producer, r->conf->topic_events,
                           r->conf->topic_results, 5000, errstr,
                           sizeof(errstr))))) {
                        if (attempt > 1)
                                pd_log(PD_LOG_INFO,
                                       "Kafka answers at %s (attempt %d)",
                                       r->brokers, attempt);
                        pd_metrics_cond_set(PD_METRICS_BROKER_OK, 1);
                        return 0;
                }
                if (match > 0) {
                        /* Waiting does not mend it: an operator must. */
                        pd_log(PD_LOG_ERROR, "cannot start: %s", errstr);
                        return -2;
                }
                pd_metrics_cond_set(PD_METRICS_BROKER_OK, 0);
                pd_log(PD_LOG_WARN,
                       "waiting for Kafka (attempt %d): %s; "
                       "next attempt in %" PRId64 " s",
                       attempt, errstr, pause_ms / 1000);
                for (int64_t end = pd_now_ms() + pause_ms;
                     !*stop && pd_now_ms() < end;) {
                        pd_metrics_tick();
                        pd__reactor_lease_ping(r);
                        pd__sleep_ms(100);
                }
                if (pause_ms < 30000)
                        pause_ms = pause_ms * 2 > 30000 ? 30000 : pause_ms * 2;
        }
        return -1;
}

/*
 * The consumer cannot go on (a static member fenced by another with its
 * group.instance.id: two reactors run as one instance). Its partitions
 * are someone else's now, so this reactor stops at once, with an error,
 * rather than run their events beside their owner.
 */
static void reactor_consumer_fatal(pd_reactor_t *r) {
        char why[512];

        rd_kafka_fatal_error(r->consumer, why, sizeof(why));
        pd_log(PD_LOG_ERROR, "consumer: %s%s%s: stopping", why,
               r->conf->shared_group ? "; is another reactor running as "
                                       "instance "
                                     : "",
               r->conf->shared_group ? r->instance : "");
        pthread_mutex_lock(&r->lock);
        r->fatal = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

int pd_reactor_run(pd_reactor_t *r, volatile sig_atomic_t *stop) {
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_resp_err_t err;
        int64_t flush_ms;
        int ret = 0;

        r->stop = stop;
        if ((ret = reactor_await_kafka(r, stop))) {
                if (ret == -1)
                        pd_log(PD_LOG_INFO, "stopped before Kafka answered");
                reactor_drain(r);
                pd__batch_flush(r); /* recovery's records wait in the outbox */
                return ret == -1 ? 0 : -1;
        }
        if (r->conf->shared_group) {
                pd__publish_topics_ready(r);
                /* What recovery found (runs that ended while we were
                 * down) is on the results topic before we join: the
                 * member that took our partitions meanwhile, or takes
                 * them at this join, restores from there. */
                pd__batch_flush(r);
                if (pd__publish_settle(r, 30000))
                        pd_log(PD_LOG_WARN,
                               "recovery's outcomes are not committed yet: "
                               "joining the group anyway");
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
                pd__reactor_lease_ping(r);
                rkm = rd_kafka_consumer_poll(r->consumer, 50);
                if (rkm) {
                        if (!rkm->err)
                                pd__reactor_dispatch(r, rkm);
                        else if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
                                reactor_consumer_fatal(r);
                        else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                pd_log(PD_LOG_WARN, "consumer: %s",
                                       rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                }
                rd_kafka_poll(r->producer, 0);
                pd__outbox_reap(r);
                pd__offsets_advance(r);
                if (r->conf->shared_group && pd__publish_fenced(r))
                        pd__partition_lost_all(r);
                if (r->conf->shared_group)
                        pd__partition_backpressure(r);
                reactor_reload_step(r);

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
        reactor_drain(r);
        pd__batch_flush(r);
        pd__offsets_advance(r);
        /* What is done goes with its offsets, while the partitions are
         * ours; what does not commit is done again by their next owner. */
        flush_ms = pd__reactor_deadline(r) + 700 - pd_now_ms();
        if (r->conf->shared_group &&
            pd__publish_flush(r, (int)(flush_ms < 300     ? 300
                                       : flush_ms > 10000 ? 10000
                                                          : flush_ms)))
                pd_log(PD_LOG_WARN,
                       "the last Kafka transaction did not "
                       "commit: its events come again");
        /* Within a second past the grace: what is not delivered by then
         * waits in the outbox for the next start. */
        flush_ms = pd__reactor_deadline(r) + 700 - pd_now_ms();
        rd_kafka_flush(r->producer, (int)(flush_ms < 300     ? 300
                                          : flush_ms > 10000 ? 10000
                                                             : flush_ms));
        pd__outbox_reap(r);
        if (r->conf->shared_group) {
                /* Our own revoke, then no close: librdkafka 2.0.2's
                 * rd_kafka_consumer_close can hang for ever in the
                 * rd_kafka_assign it makes while closing (librdkafka
                 * issue 4884; seen here in the rebalance storm test). A
                 * static member sends no LeaveGroup anyway: its
                 * partitions wait for it for session.timeout.ms either
                 * way, and the offsets went with the last transaction. */
                if (r->assigned && r->assigned->cnt) {
                        rd_kafka_topic_partition_list_t *parts =
                            rd_kafka_topic_partition_list_copy(r->assigned);

                        pd__rebalance_cb(r->consumer,
                                         RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS,
                                         parts, r);
                        rd_kafka_topic_partition_list_destroy(parts);
                }
                /* The last transaction committed: its rows go. */
                pd__outbox_reap(r);
        } else if ((err = rd_kafka_consumer_close(r->consumer))) {
                pd_log(PD_LOG_WARN, "consumer close: %s",
                       rd_kafka_err2str(err));
        }
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
                        r->workers[i].cancel = PD_CANCEL_STOP;
                        pthread_join(r->workers[i].thread, NULL);
                }
        }
        pd__progress_hub_destroy(r); /* no worker reports any more */
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
                pd__batch_flush(r);
        /* Uncommitted records stay in the outbox for the next start. */
        pd__publish_stop(r);
        if (r->assigned)
                rd_kafka_topic_partition_list_destroy(r->assigned);
        /* Every job is in its partition's list, whether queued, cut short
         * or done: jobs never finished are simply redelivered. */
        for (int32_t p = 0; p < r->partq_cnt; p++) {
                pd_job_t *job = r->partqs[p].head, *next;
                for (; job; job = next) {
                        next = job->pnext;
                        pd_event_destroy(job->ev);
                        free(job->tenant);
                        free(job->parked);
                        free(job);
                }
        }
        free(r->partqs);
        free(r->workers);
        pd_strv_clear(&r->held);
        pd_strv_clear(&r->held_by);
        for (size_t i = 0; i < r->adopt_cnt; i++)
                pd__adopt_clear(&r->adopt[i]);
        free(r->adopt);
        pd_sup_close(r->sup);
        pd_sign_key_free(r->secret, r->secret_len);
        if (r->consumer && r->conf->shared_group)
                rd_kafka_destroy_flags(r->consumer,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        else if (r->consumer)
                rd_kafka_destroy(r->consumer);
        if (r->producer)
                rd_kafka_destroy(r->producer);
        if (r->st)
                pd_store_close(r->st);
        free(r->delivered);
        pthread_mutex_destroy(&r->st_lock);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        pd_map_destroy(r->running, NULL);
        pd_map_destroy(r->parked_tenants, NULL);
        pthread_mutex_destroy(&r->dr_lock);
        pthread_cond_destroy(&r->batch_cond);
        pthread_mutex_destroy(&r->pr_lock);
        pthread_cond_destroy(&r->pr_cond);
        free(r);
}
