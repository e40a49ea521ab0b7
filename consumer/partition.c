/*
 * partition.c - the life of an events partition in a shared group
 * (reactor.shared_group): the rebalance callback (eager, range), a
 * partition restored before it is assigned, a revoked one handed on with
 * a last transaction, a lost one (or all of them, after the producer was
 * fenced) dropped without committing anything. Main thread only: the
 * callback runs inside rd_kafka_consumer_poll.
 */

#include "consumer/reactor_int.h"

/* Whether a worker still runs a job of one of parts (r->lock held). */
static int workers_busy_with(const pd_reactor_t *r,
                             const rd_kafka_topic_partition_list_t *parts) {
        for (int i = 0; i < r->worker_cnt; i++)
                if (r->workers[i].job &&
                    pd__parts_has(parts, r->workers[i].job->partition))
                        return 1;
        return 0;
}

/*
 * Takes the events of parts away from the workers: queued ones leave the
 * queue, running ones are marked revoked, so the worker cuts its event
 * short once the action it runs is over (it is redelivered to the next
 * owner, whose restored ledger skips what is done). Waits for them,
 * interrupting what still runs once shutdown_grace is over, as a stop
 * would.
 */
static void partition_quiesce(pd_reactor_t *r,
                              const rd_kafka_topic_partition_list_t *parts) {
        int64_t deadline = pd_mono_ms() + atomic_load(&r->grace_ms);
        int cancelled    = 0;
        pd_job_t **pp;

        pthread_mutex_lock(&r->lock);
        for (pp = &r->queue_head; *pp;) {
                pd_job_t *job = *pp;

                if (!pd__parts_has(parts, job->partition)) {
                        pp = &job->next;
                        continue;
                }
                *pp       = job->next;
                job->next = NULL;
        }
        r->queue_tail = NULL;
        for (pd_job_t *job = r->queue_head; job; job = job->next)
                r->queue_tail = job;
        for (int i = 0; i < r->worker_cnt; i++) {
                pd_job_t *job = r->workers[i].job;

                if (job && pd__parts_has(parts, job->partition))
                        job->revoked = 1;
        }
        pthread_cond_broadcast(&r->cond); /* ends their backoffs */
        while (workers_busy_with(r, parts)) {
                if (!cancelled && pd_mono_ms() >= deadline) {
                        pd_log(PD_LOG_WARN,
                               "rebalance: shutdown grace over: interrupting "
                               "the actions of revoked partitions");
                        for (int i = 0; i < r->worker_cnt; i++)
                                if (r->workers[i].job &&
                                    pd__parts_has(parts,
                                                  r->workers[i].job->partition))
                                        r->workers[i].cancel = PD_CANCEL_STOP;
                        cancelled = 1;
                }
                pd__cond_wait_ms(&r->cond, &r->lock, 50);
                pthread_mutex_unlock(&r->lock);
                /* Results keep flowing while we wait, and the supervisor
                 * hears from us: its lease must not cut the very runs we
                 * wait for. */
                rd_kafka_poll(r->producer, 0);
                pd__reactor_lease_ping(r);
                pthread_mutex_lock(&r->lock);
        }
        pthread_mutex_unlock(&r->lock);
}

/* Frees every job of parts: none is queued or running any more. Jobs
 * done but not yet offset-stored leave the done list too. */
static void partition_forget_jobs(
    pd_reactor_t *r, const rd_kafka_topic_partition_list_t *parts) {
        pd_job_t **pp;

        pthread_mutex_lock(&r->lock);
        for (pp = &r->done_head; *pp;) {
                if (pd__parts_has(parts, (*pp)->partition))
                        *pp = (*pp)->next;
                else
                        pp = &(*pp)->next;
        }
        pthread_mutex_unlock(&r->lock);
        for (int i = 0; i < parts->cnt; i++) {
                int32_t p = parts->elems[i].partition;
                pd_job_t *job, *next;

                if (p >= r->partq_cnt)
                        continue;
                for (job = r->partqs[p].head; job; job = next) {
                        next = job->pnext;
                        pd_event_destroy(job->ev);
                        free(job->tenant);
                        free(job->parked);
                        free(job);
                        r->inflight--;
                }
                r->partqs[p].head = r->partqs[p].tail = NULL;
                r->partqs[p].cnt                      = 0;
                r->partqs[p].paused = 0; /* an assignment starts fetching */
        }
}

static void assigned_remove(pd_reactor_t *r,
                            const rd_kafka_topic_partition_list_t *parts) {
        for (int i = 0; r->assigned && i < parts->cnt; i++)
                rd_kafka_topic_partition_list_del(r->assigned,
                                                  parts->elems[i].topic,
                                                  parts->elems[i].partition);
}

static void parts_log(const char *what,
                      const rd_kafka_topic_partition_list_t *parts) {
        char buf[512];
        size_t len = 0;

        buf[0] = '\0';
        for (int i = 0; i < parts->cnt && len < sizeof(buf) - 16; i++)
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%d",
                                        i ? "," : "",
                                        (int)parts->elems[i].partition);
        pd_log(PD_LOG_INFO, "rebalance: %s partition(s) [%s]", what, buf);
}

/* Revoked, while the generation is still ours: what the workers finished
 * of parts is committed with its offsets in a last transaction. */
static void partition_revoke(pd_reactor_t *r,
                             const rd_kafka_topic_partition_list_t *parts) {
        parts_log("revoked", parts);
        partition_quiesce(r, parts);
        pd__batch_flush(r);
        pd__offsets_advance(r);
        if (pd__publish_flush(r, 10000)) {
                /* Not committed: the next owner does it again; what we
                 * hold of it is stale. */
                pd_log(PD_LOG_WARN,
                       "rebalance: the last transaction of the "
                       "revoked partitions did not commit");
                pd__publish_drop(r, parts);
                for (int i = 0; i < parts->cnt; i++)
                        pd__restore_forget(r, parts->elems[i].partition);
        }
        pd__publish_unassign(r, parts);
        partition_forget_jobs(r, parts);
        assigned_remove(r, parts);
}

/* Lost (the session expired, or our producer was fenced): nothing of
 * parts may be committed any more; their outbox rows are stale and their
 * ledger is to be restored from the start when they come back. */
static void partition_lose(pd_reactor_t *r,
                           const rd_kafka_topic_partition_list_t *parts) {
        parts_log("lost", parts);
        partition_quiesce(r, parts);
        pd__batch_flush(r); /* every record of theirs reaches publish */
        pd__publish_drop(r, parts);
        for (int i = 0; i < parts->cnt; i++)
                pd__restore_forget(r, parts->elems[i].partition);
        partition_forget_jobs(r, parts);
        assigned_remove(r, parts);
}

/* Restores each partition, then takes them. Returns 0, or -1 (a restore
 * failed: the reactor stops rather than run on a ledger it cannot trust;
 * the partitions go to another member once this one has left). */
static int partition_assign(pd_reactor_t *r, rd_kafka_t *rk,
                            rd_kafka_topic_partition_list_t *parts) {
        char errstr[512];

        parts_log("assigned", parts);
        for (int i = 0; i < parts->cnt; i++) {
                int32_t p = parts->elems[i].partition;

                if (pd__restore_partition(r, p, errstr, sizeof(errstr))) {
                        pd_log(PD_LOG_ERROR,
                               "rebalance: cannot restore partition %d: %s",
                               (int)p, errstr);
                        pthread_mutex_lock(&r->lock);
                        r->fatal = 1;
                        pthread_cond_broadcast(&r->cond);
                        pthread_mutex_unlock(&r->lock);
                        return -1;
                }
        }
        if (!r->assigned)
                r->assigned = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++)
                if (!rd_kafka_topic_partition_list_find(
                        r->assigned, parts->elems[i].topic,
                        parts->elems[i].partition))
                        rd_kafka_topic_partition_list_add(
                            r->assigned, parts->elems[i].topic,
                            parts->elems[i].partition);
        rd_kafka_assign(rk, parts);
        /* The group has just said which partitions are ours: whatever a
         * stop past the lease made us doubt is settled. */
        pthread_mutex_lock(&r->lock);
        r->suspect_until = 0;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        atomic_store(&r->alive_ms, pd_mono_ms());
        return 0;
}

/* Pauses fetching a partition whose events pile up ahead of the workers
 * (a long action), and resumes it once half of them are done; the main
 * thread keeps polling meanwhile, so the group never takes the reactor
 * for gone. Main thread, once per loop. */
void pd__partition_backpressure(pd_reactor_t *r) {
        for (int i = 0; r->assigned && i < r->assigned->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &r->assigned->elems[i];
                pd_partq_t *pq;
                rd_kafka_topic_partition_list_t *one;
                int pause;

                if (tp->partition >= r->partq_cnt)
                        continue;
                pq    = &r->partqs[tp->partition];
                pause = !pq->paused && pq->cnt >= PD_PARTQ_PAUSE;
                if (!pause && !(pq->paused && pq->cnt <= PD_PARTQ_PAUSE / 2))
                        continue;
                one = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(one, tp->topic,
                                                  tp->partition);
                if (!(pause ? rd_kafka_pause_partitions(r->consumer, one)
                            : rd_kafka_resume_partitions(r->consumer, one))) {
                        pq->paused = pause;
                        pd_log(PD_LOG_INFO,
                               "partition %d: %zu event(s) wait: fetching "
                               "%s",
                               (int)tp->partition, pq->cnt,
                               pause ? "paused" : "resumed");
                }
                rd_kafka_topic_partition_list_destroy(one);
        }
}

void pd__rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque) {
        pd_reactor_t *r = opaque;

        switch (err) {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                if (partition_assign(r, rk, parts))
                        rd_kafka_assign(rk, NULL);
                break;
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                if (rd_kafka_assignment_lost(rk))
                        partition_lose(r, parts);
                else
                        partition_revoke(r, parts);
                rd_kafka_assign(rk, NULL);
                break;
        default:
                pd_log(PD_LOG_ERROR, "rebalance: %s", rd_kafka_err2str(err));
                partition_lose(r, parts);
                rd_kafka_assign(rk, NULL);
                break;
        }
}

/*
 * After our producer was fenced: every partition is lost (nothing of them
 * committed), the producer is made again (init_transactions), and the
 * partitions are taken again from their committed offsets, each restored
 * first. Main thread.
 */
void pd__partition_lost_all(pd_reactor_t *r) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        char errstr[512];

        if (r->assigned && r->assigned->cnt) {
                parts = rd_kafka_topic_partition_list_copy(r->assigned);
                partition_lose(r, parts);
        }
        if (pd__publish_rebuild(r, errstr, sizeof(errstr))) {
                pd_log(PD_LOG_ERROR, "cannot rebuild the producer: %s", errstr);
                pthread_mutex_lock(&r->lock);
                r->fatal = 1;
                pthread_cond_broadcast(&r->cond);
                pthread_mutex_unlock(&r->lock);
        } else if (parts) {
                for (int i = 0; i < parts->cnt; i++)
                        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
                /* From the committed offsets, as a new owner would. */
                partition_assign(r, r->consumer, parts);
        }
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
}
