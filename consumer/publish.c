/*
 * publish.c - the Kafka transaction of a shared group (reactor.shared_group,
 * KIP-447 as in librdkafka's examples/transactions.c). Records whose batch
 * committed in the store are produced into the open Kafka transaction; one
 * thread, the publisher, commits it with the offsets of the events they
 * answer (pd__publish_offsets) whenever it holds anything. A record leaves
 * the outbox only once the transaction holding it committed; an abortable
 * error aborts and the records go again in the next transaction; a fatal
 * one (fenced by a newer incarnation of this instance) leaves the producer
 * to be rebuilt by the main thread (pd__publish_rebuild), which treats
 * every partition as lost (partition.c).
 *
 * Solo mode never comes here: outbox.c produces with the idempotent
 * producer and deletes on the delivery report.
 */

#include "consumer/reactor_int.h"

/* How often the publisher looks for something to commit. A commit costs a
 * round trip or two to the transaction coordinator, so under load commits
 * follow each other back to back and this only bounds the idle latency. */
#define PD_PUBLISH_MS 5

/* How long one transactional call may block: the publisher's stop (and so
 * the reactor's) waits for the call in flight. A stop's last commit gets
 * what is left of shutdown_grace instead (pd__publish_flush). */
#define PD_TXN_CALL_MS 10000

/* How long one init_transactions attempt may block (a stop waits for
 * it), and the pause between attempts while the broker is away. */
#define PD_INIT_CALL_MS  2000
#define PD_INIT_RETRY_MS 1000

static void pub_recs_free(pd_pubrec_t *recs, size_t cnt) {
        for (size_t i = 0; i < cnt; i++)
                pd__outrec_clear(&recs[i].rec);
}

/* Produces recs[nprod] into the open transaction (lock held). Returns 0 or
 * librdkafka's error; the record then stays unproduced. */
static rd_kafka_resp_err_t pub_produce_next(pd_reactor_t *r) {
        pd_pub_t *pb    = &r->pub;
        pd_pubrec_t *p  = &pb->recs[pb->nprod];
        const char *key = p->rec.key;
        rd_kafka_resp_err_t err;

        for (;;) {
                rd_kafka_headers_t *hdrs =
                    pd__headers_unpack(p->rec.headers, p->rec.headers_len);

                err = rd_kafka_producev(
                    r->producer, RD_KAFKA_V_TOPIC(p->rec.topic),
                    RD_KAFKA_V_PARTITION(
                        pd__produce_partition(key, p->rec.part)),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE(p->rec.value, p->rec.value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(hdrs),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)p->seq),
                    RD_KAFKA_V_END);
                if (!err) {
                        pb->nprod++;
                        return 0;
                }
                rd_kafka_headers_destroy(hdrs);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return err;
                rd_kafka_poll(r->producer, 10);
        }
}

/* Produces every record not yet in the open transaction, in order (lock
 * held). Returns 0 or the first error. */
static rd_kafka_resp_err_t pub_produce_all(pd_reactor_t *r) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

        while (!err && r->pub.nprod < r->pub.cnt)
                err = pub_produce_next(r);
        return err;
}

/* Forgets the first n records, which a committed transaction published:
 * their outbox rows may go (lock held). */
static void pub_settle(pd_reactor_t *r, size_t n) {
        pd_pub_t *pb  = &r->pub;
        int64_t *seqs = pd_xmalloc((n ? n : 1) * sizeof(*seqs));
        size_t k      = 0;

        for (size_t i = 0; i < n; i++)
                if (pb->recs[i].seq != PD_OUTBOX_NONE)
                        seqs[k++] = pb->recs[i].seq;
        pub_recs_free(pb->recs, n);
        memmove(pb->recs, pb->recs + n, (pb->cnt - n) * sizeof(*pb->recs));
        pb->cnt -= n;
        pb->nprod -= n;
        pd__outbox_delivered(r, seqs, k);
        pd_metrics_outbox_add(-(int64_t)k);
        free(seqs);
}

/* Drops from the pending offsets those a commit carried, unless they moved
 * on meanwhile (lock held). */
static void pub_offsets_settle(pd_pub_t *pb,
                               const rd_kafka_topic_partition_list_t *sent) {
        for (int i = 0; sent && i < sent->cnt; i++) {
                const rd_kafka_topic_partition_t *s = &sent->elems[i];
                rd_kafka_topic_partition_t *cur =
                    rd_kafka_topic_partition_list_find(pb->offsets, s->topic,
                                                       s->partition);

                if (cur && cur->offset == s->offset)
                        rd_kafka_topic_partition_list_del(pb->offsets, s->topic,
                                                          s->partition);
        }
}

/* After a failed transactional call (lock held, not committing): an
 * abortable error aborts, and every record is produced again in the next
 * transaction; a fatal one (fenced, or the producer is gone) waits for the
 * main thread's rebuild. Takes error. */
static void pub_failed(pd_reactor_t *r, rd_kafka_error_t *error,
                       const char *what) {
        pd_pub_t *pb = &r->pub;
        int fatal    = rd_kafka_error_is_fatal(error);

        if (!fatal) {
                rd_kafka_error_t *aerr;

                pb->committing = 1;
                pthread_mutex_unlock(&pb->lock);
                /* librdkafka 2.0.2 may send the abort's EndTxn before the
                 * coordinator has added the transaction's first partition;
                 * the coordinator, still Empty, refuses it with the fatal
                 * INVALID_TXN_STATE (librdkafka issue 4849), and every
                 * partition would be lost for a rebuild. A delivered record
                 * proves its partition added: wait for those in flight
                 * (aborted with the rest a moment later). Nothing in
                 * flight: returns at once. */
                rd_kafka_flush(r->producer, pb->call_ms);
                aerr = rd_kafka_abort_transaction(r->producer, pb->call_ms);
                pthread_mutex_lock(&pb->lock);
                pb->committing = 0;
                pthread_cond_broadcast(&pb->cond);
                if (aerr) {
                        pd_log(PD_LOG_ERROR,
                               "Kafka transaction: %s failed (%s) and so "
                               "did the abort (%s): rebuilding the producer",
                               what, rd_kafka_error_string(error),
                               rd_kafka_error_string(aerr));
                        rd_kafka_error_destroy(aerr);
                        fatal = 1;
                } else {
                        /* Not at once again: an abort that repeats (a
                         * member the group dropped) waits 100 ms, then
                         * twice as long each time, up to 2 s, for the
                         * rebalance that settles it. */
                        pb->backoff_ms =
                            pb->backoff_ms ? pb->backoff_ms * 2 : 100;
                        if (pb->backoff_ms > 2000)
                                pb->backoff_ms = 2000;
                        pb->retry_ms = pd_mono_ms() + pb->backoff_ms;
                        pb->aborts++;
                        pd_log(PD_LOG_WARN,
                               "Kafka transaction: %s failed (%s): aborted; "
                               "its %zu record(s) go again in the next one",
                               what, rd_kafka_error_string(error), pb->nprod);
                }
        } else {
                pd_log(PD_LOG_ERROR,
                       "Kafka transaction: %s: %s: this instance (%s) cannot "
                       "transact any more (another one with its "
                       "transactional.id took over?): rebuilding the "
                       "producer, every partition taken as lost",
                       what, rd_kafka_error_string(error), pb->txn_id);
        }
        pb->txn_open = 0;
        pb->nprod    = 0;
        if (fatal)
                pb->fenced = 1;
        rd_kafka_error_destroy(error);
}

/* Opens the next transaction, so that records go out as they come and a
 * commit has little left to flush (lock held, ready, none open). Returns
 * 0, or -1 (pub_failed). */
static int pub_begin(pd_reactor_t *r) {
        rd_kafka_error_t *error = rd_kafka_begin_transaction(r->producer);

        if (error) {
                pub_failed(r, error, "begin");
                return -1;
        }
        r->pub.txn_open = 1;
        return 0;
}

/*
 * Commits the open transaction with every pending record and offset (lock
 * held, ready, nothing committing). The Kafka calls run outside the lock,
 * with committing set: records added meanwhile wait for the next
 * transaction. Returns 0, or -1 (aborted or fenced: pub_failed).
 */
static int pub_commit(pd_reactor_t *r) {
        pd_pub_t *pb                             = &r->pub;
        rd_kafka_topic_partition_list_t *offs    = NULL;
        rd_kafka_consumer_group_metadata_t *cgmd = NULL;
        rd_kafka_error_t *error                  = NULL;
        rd_kafka_resp_err_t err;
        size_t n;

        if (!pb->txn_open && pub_begin(r))
                return -1;
        if ((err = pub_produce_all(r))) {
                pub_failed(r,
                           rd_kafka_error_new(err, "produce: %s",
                                              rd_kafka_err2str(err)),
                           "produce");
                return -1;
        }
        n = pb->nprod;
        /* Every partition's position, moved or not: the generation they
         * carry is what fences a member the group dropped. */
        if (pb->positions->cnt)
                offs = rd_kafka_topic_partition_list_copy(pb->positions);
        pb->txn_open   = 0;
        pb->committing = 1;
        pthread_mutex_unlock(&pb->lock);

        pd__crashpoint("publish.before_commit");
        if (offs) {
                cgmd  = rd_kafka_consumer_group_metadata(r->consumer);
                error = rd_kafka_send_offsets_to_transaction(r->producer, offs,
                                                             cgmd, -1);
                rd_kafka_consumer_group_metadata_destroy(cgmd);
        }
        if (!error)
                error = rd_kafka_commit_transaction(r->producer, pb->call_ms);

        pthread_mutex_lock(&pb->lock);
        pb->committing = 0;
        pthread_cond_broadcast(&pb->cond);
        if (error) {
                /* offs is NULL when no partition is assigned (a member with
                 * none, committing the registry alone). */
                if (offs)
                        rd_kafka_topic_partition_list_destroy(offs);
                pub_failed(r, error, offs ? "commit (with offsets)" : "commit");
                return -1;
        }
        pb->commits++;
        pb->backoff_ms = 0;
        pub_settle(r, n);
        pub_offsets_settle(pb, offs);
        if (offs)
                rd_kafka_topic_partition_list_destroy(offs);
        pd__crashpoint("publish.after_commit");
        return pub_begin(r);
}

static int pub_holds(const pd_pub_t *pb) {
        return pb->cnt || pb->offsets->cnt;
}

/* The publisher thread: init_transactions (again after a rebuild), then a
 * commit whenever the transaction holds something. */
static void *pub_main(void *arg) {
        pd_reactor_t *r = arg;
        pd_pub_t *pb    = &r->pub;

        pthread_mutex_lock(&pb->lock);
        while (!pb->stop) {
                if (pb->wait_topics) {
                        pthread_cond_wait(&pb->cond, &pb->lock);
                        continue;
                }
                if (!pb->ready && !pb->fenced && !pb->committing) {
                        rd_kafka_error_t *error;

                        pb->committing = 1;
                        pthread_mutex_unlock(&pb->lock);
                        /* Fences the previous incarnation of this instance
                         * and settles what it left open. */
                        error = rd_kafka_init_transactions(r->producer,
                                                           PD_INIT_CALL_MS);
                        pthread_mutex_lock(&pb->lock);
                        pb->committing = 0;
                        pthread_cond_broadcast(&pb->cond);
                        if (!error) {
                                pb->ready = 1;
                                pd_log(PD_LOG_INFO,
                                       "Kafka transactions ready "
                                       "(transactional.id %s)",
                                       pb->txn_id);
                                pub_begin(r);
                                continue;
                        }
                        if (rd_kafka_error_is_fatal(error))
                                pb->fenced = 1;
                        pd_log(PD_LOG_WARN, "Kafka init_transactions: %s%s",
                               rd_kafka_error_string(error),
                               pb->fenced ? "" : "; trying again");
                        rd_kafka_error_destroy(error);
                        pd__cond_wait_ms(&pb->cond, &pb->lock,
                                         PD_INIT_RETRY_MS);
                        continue;
                }
                if (pb->ready && !pb->fenced && !pb->committing && !pb->hold &&
                    pd_mono_ms() >= pb->retry_ms && pub_holds(pb) &&
                    !pub_commit(r))
                        continue; /* more may have come meanwhile */
                pd__cond_wait_ms(&pb->cond, &pb->lock, PD_PUBLISH_MS);
        }
        pthread_mutex_unlock(&pb->lock);
        return NULL;
}

int pd__publish_init(pd_reactor_t *r, char *errstr, size_t size) {
        pd_pub_t *pb = &r->pub;

        pthread_mutex_init(&pb->lock, NULL);
        pthread_cond_init(&pb->cond, NULL);
        pb->offsets   = rd_kafka_topic_partition_list_new(8);
        pb->positions = rd_kafka_topic_partition_list_new(8);
        pb->call_ms   = PD_TXN_CALL_MS;
        if (pthread_create(&pb->thread, NULL, pub_main, r)) {
                snprintf(errstr, size, "cannot start the publisher");
                return -1;
        }
        pb->started = 1;
        return 0;
}

/* The topics exist with their partitions: the publisher may start. */
void pd__publish_topics_ready(pd_reactor_t *r) {
        pthread_mutex_lock(&r->pub.lock);
        r->pub.wait_topics = 0;
        pthread_cond_broadcast(&r->pub.cond);
        pthread_mutex_unlock(&r->pub.lock);
}

/* Stops the publisher; what it did not commit stays in the outbox. */
void pd__publish_stop(pd_reactor_t *r) {
        pd_pub_t *pb = &r->pub;

        if (!pb->started)
                return;
        pthread_mutex_lock(&pb->lock);
        pb->stop = 1;
        pthread_cond_broadcast(&pb->cond);
        pthread_mutex_unlock(&pb->lock);
        pthread_join(pb->thread, NULL);
        pb->started = 0;
        pd_log(PD_LOG_INFO,
               "Kafka transactions: %" PRId64 " committed, %" PRId64
               " aborted, %" PRId64 " producer rebuild(s)",
               pb->commits, pb->aborts, pb->rebuilds);
        pub_recs_free(pb->recs, pb->cnt);
        free(pb->recs);
        pb->recs = NULL;
        pb->cnt = pb->nprod = pb->size = 0;
        rd_kafka_topic_partition_list_destroy(pb->offsets);
        pb->offsets = NULL;
        rd_kafka_topic_partition_list_destroy(pb->positions);
        pb->positions = NULL;
        pthread_mutex_destroy(&pb->lock);
        pthread_cond_destroy(&pb->cond);
}

/* A record whose store batch committed: into the open transaction now if
 * one is open and nothing is left before it, else at the next commit
 * (any thread, in commit order). The data is copied. */
void pd__publish_add(pd_reactor_t *r, int64_t seq, int32_t part,
                     const char *topic, const char *key, const void *headers,
                     size_t headers_len, const void *value, size_t value_len) {
        pd_pub_t *pb = &r->pub;
        pd_pubrec_t *p;

        pthread_mutex_lock(&pb->lock);
        pb->recs =
            pd_xgrow(pb->recs, &pb->size, pb->cnt + 1, sizeof(*pb->recs));
        p = &pb->recs[pb->cnt++];
        memset(p, 0, sizeof(*p));
        p->seq             = seq;
        p->rec.part        = part;
        p->rec.topic       = pd_xstrdup(topic);
        p->rec.key         = key ? pd_xstrdup(key) : NULL;
        p->rec.headers     = pd_xmalloc(headers_len + 1);
        p->rec.headers_len = headers_len;
        p->rec.value       = pd_xmalloc(value_len + 1);
        p->rec.value_len   = value_len;
        memcpy(p->rec.headers, headers, headers_len);
        memcpy(p->rec.value, value, value_len);
        if (seq != PD_OUTBOX_NONE)
                pd_metrics_outbox_add(1);
        /* An error leaves it to the commit, which produces it again or
         * aborts. */
        if (pb->txn_open && !pb->committing && pb->nprod == pb->cnt - 1)
                (void)pub_produce_next(r);
        pthread_cond_broadcast(&pb->cond);
        pthread_mutex_unlock(&pb->lock);
}

/* Sets partition's position (lock held); unless always, only if it has
 * none yet. */
static void pub_position(pd_pub_t *pb, const char *topic, int32_t partition,
                         int64_t offset, int always) {
        rd_kafka_topic_partition_t *cur =
            rd_kafka_topic_partition_list_find(pb->positions, topic, partition);

        if (!cur)
                rd_kafka_topic_partition_list_add(pb->positions, topic,
                                                  partition)
                    ->offset = offset;
        else if (always)
                cur->offset = offset;
}

/* An event read at offset of partition (main thread): before any is
 * done, the partition's position is that offset (nothing consumed). */
void pd__publish_seen(pd_reactor_t *r, const char *topic, int32_t partition,
                      int64_t offset) {
        pd_pub_t *pb = &r->pub;

        pthread_mutex_lock(&pb->lock);
        pub_position(pb, topic, partition, offset, 0);
        pthread_mutex_unlock(&pb->lock);
}

/* The next offset of each partition, for the next transaction to commit
 * with the results that precede it (main thread). */
void pd__publish_offsets(pd_reactor_t *r,
                         const rd_kafka_topic_partition_list_t *offsets) {
        pd_pub_t *pb = &r->pub;

        pthread_mutex_lock(&pb->lock);
        for (int i = 0; i < offsets->cnt; i++) {
                const rd_kafka_topic_partition_t *o = &offsets->elems[i];
                rd_kafka_topic_partition_t *cur =
                    rd_kafka_topic_partition_list_find(pb->offsets, o->topic,
                                                       o->partition);

                if (!cur)
                        cur = rd_kafka_topic_partition_list_add(
                            pb->offsets, o->topic, o->partition);
                cur->offset = o->offset;
                pub_position(pb, o->topic, o->partition, o->offset, 1);
        }
        pthread_cond_broadcast(&pb->cond);
        pthread_mutex_unlock(&pb->lock);
}

/* Waits until no Kafka call of the publisher runs (lock held). */
static void pub_quiet(pd_pub_t *pb) {
        while (pb->committing)
                pthread_cond_wait(&pb->cond, &pb->lock);
}

/* Before joining the group (main thread): waits (up to timeout_ms, or a
 * stop) for transactions to be ready, then commits what recovery left.
 * Another member may own our old partitions by now and restores them
 * from the results topic: what ran here while we were down must be
 * there first. Returns 0, or -1 (not committed in time). */
int pd__publish_settle(pd_reactor_t *r, int timeout_ms) {
        pd_pub_t *pb = &r->pub;
        int64_t end  = pd_mono_ms() + timeout_ms;
        int ready;

        for (;;) {
                pthread_mutex_lock(&pb->lock);
                ready = pb->ready || pb->fenced;
                pthread_mutex_unlock(&pb->lock);
                if (ready || pd_mono_ms() >= end || (r->stop && *r->stop))
                        break;
                pd__reactor_lease_ping(r);
                pd__sleep_ms(20);
        }
        return ready ? pd__publish_flush(r, timeout_ms) : -1;
}

/* Commits now what the transaction holds, before a revoke hands the
 * partitions on (main thread). Returns 0, or -1 (aborted, fenced, or
 * transactions never became ready): nothing of it is committed then. */
int pd__publish_flush(pd_reactor_t *r, int timeout_ms) {
        pd_pub_t *pb = &r->pub;
        int ret      = 0;

        pthread_mutex_lock(&pb->lock);
        pub_quiet(pb);
        if (!pb->ready || pb->fenced) {
                ret = pub_holds(pb) ? -1 : 0;
        } else if (pub_holds(pb)) {
                pb->call_ms = timeout_ms;
                ret         = pub_commit(r);
                pb->call_ms = PD_TXN_CALL_MS;
        }
        pthread_mutex_unlock(&pb->lock);
        return ret;
}

/* Forgets parts' offsets and positions (lock held). */
static void pub_forget_parts(pd_pub_t *pb,
                             const rd_kafka_topic_partition_list_t *parts) {
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_list_del(pb->offsets,
                                                  parts->elems[i].topic,
                                                  parts->elems[i].partition);
                rd_kafka_topic_partition_list_del(pb->positions,
                                                  parts->elems[i].topic,
                                                  parts->elems[i].partition);
        }
}

/* Partitions handed on after their last commit (main thread): later
 * transactions say nothing of them. */
void pd__publish_unassign(pd_reactor_t *r,
                          const rd_kafka_topic_partition_list_t *parts) {
        pd_pub_t *pb = &r->pub;

        pthread_mutex_lock(&pb->lock);
        pub_forget_parts(pb, parts);
        pthread_mutex_unlock(&pb->lock);
}

/* Forgets the records and offsets of lost partitions: their next owner
 * decides what they say. If the open transaction holds some of them it is
 * aborted (the others go again in the next one). Main thread. */
void pd__publish_drop(pd_reactor_t *r,
                      const rd_kafka_topic_partition_list_t *parts) {
        pd_pub_t *pb  = &r->pub;
        int64_t *seqs = NULL;
        size_t k = 0, j = 0, seqs_size = 0;
        int abort = 0;

        pthread_mutex_lock(&pb->lock);
        pub_quiet(pb);
        for (size_t i = 0; i < pb->cnt; i++) {
                pd_pubrec_t *p = &pb->recs[i];

                if (p->rec.part < 0 || !pd__parts_has(parts, p->rec.part)) {
                        pb->recs[j++] = *p;
                        continue;
                }
                abort |= i < pb->nprod;
                if (p->seq != PD_OUTBOX_NONE) {
                        seqs = pd_xgrow(seqs, &seqs_size, k + 1, sizeof(*seqs));
                        seqs[k++] = p->seq;
                }
                pd__outrec_clear(&p->rec);
        }
        pb->cnt = j;
        if (pb->nprod > pb->cnt)
                pb->nprod = pb->cnt;
        pub_forget_parts(pb, parts);
        if (abort && pb->txn_open)
                pub_failed(r,
                           rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE,
                                              "partitions lost"),
                           "lost partitions");
        pthread_mutex_unlock(&pb->lock);
        pd__outbox_delivered(r, seqs, k); /* deleted, not published */
        pd_metrics_outbox_add(-(int64_t)k);
        free(seqs);
}

int pd__publish_fenced(pd_reactor_t *r) {
        int fenced;

        pthread_mutex_lock(&r->pub.lock);
        fenced = r->pub.fenced;
        pthread_mutex_unlock(&r->pub.lock);
        return fenced;
}

/* Makes a new producer after a fatal error, to init_transactions again
 * (main thread: the only other user of r->producer). What the old one
 * held of partitions is dropped (the caller treats them as lost); the
 * registry stays. Returns 0, or -1 (errstr). */
int pd__publish_rebuild(pd_reactor_t *r, char *errstr, size_t size) {
        pd_pub_t *pb = &r->pub;
        rd_kafka_t *rk;

        pthread_mutex_lock(&pb->lock);
        pub_quiet(pb);
        rk = pd__reactor_producer_new(r, errstr, size);
        if (!rk) {
                pthread_mutex_unlock(&pb->lock);
                return -1;
        }
        rd_kafka_destroy(r->producer);
        r->producer  = rk;
        pb->ready    = 0;
        pb->fenced   = 0;
        pb->txn_open = 0;
        pb->nprod    = 0;
        pb->rebuilds++;
        pthread_cond_broadcast(&pb->cond);
        pthread_mutex_unlock(&pb->lock);
        return 0;
}
