/*
 * outbox.c - the outbox: the result records a transaction writes to the
 * store, produced once their batch commits (pd__outq_produce), and deleted
 * from the store when the broker acknowledges them (pd__dr_cb collects the
 * delivered seqs, pd__outbox_reap trims them). A record is never produced
 * before the change that implies it is durable, and one left behind by a
 * crash is produced again at the next start.
 */

#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Outbox                                                              */

void pd__outq_clear(pd_outq_t *oq) {
        for (size_t i = 0; i < oq->cnt; i++) {
                free(oq->recs[i].topic);
                free(oq->recs[i].key);
                free(oq->recs[i].headers);
                free(oq->recs[i].value);
                if (oq->recs[i].hdrs)
                        rd_kafka_headers_destroy(oq->recs[i].hdrs);
        }
        oq->cnt = 0;
}

void pd__outq_destroy(pd_outq_t *oq) {
        pd__outq_clear(oq);
        free(oq->recs);
        oq->recs = NULL;
        oq->size = 0;
}

/* Serialises headers as name\0value\0 pairs (values are our own text). */
static void *headers_pack(const rd_kafka_headers_t *hdrs, size_t *lenp) {
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

rd_kafka_headers_t *pd__headers_unpack(const void *buf, size_t len) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
        const char *p = buf, *end = p + len;

        while (p < end) {
                const char *name = p;
                const char *val =
                    name + strnlen(name, (size_t)(end - name)) + 1;
                size_t vlen;

                if (val >= end)
                        break;
                vlen = strnlen(val, (size_t)(end - val));
                rd_kafka_header_add(hdrs, name, -1, val, (ssize_t)vlen);
                p = val + vlen + 1;
        }
        return hdrs;
}

static pd_outrec_t *outq_slot(pd_outq_t *oq) {
        oq->recs =
            pd_xgrow(oq->recs, &oq->size, oq->cnt + 1, sizeof(*oq->recs));
        return &oq->recs[oq->cnt++];
}

/* Frees what o holds and empties it. */
void pd__outrec_clear(pd_outrec_t *o) {
        free(o->topic);
        free(o->key);
        free(o->headers);
        free(o->value);
        if (o->hdrs)
                rd_kafka_headers_destroy(o->hdrs);
        memset(o, 0, sizeof(*o));
}

/* Fills o with a record for topic (no store, no lock). Takes ownership of
 * value and hdrs. */
static void outrec_fill(pd_outrec_t *o, const char *topic, const char *key,
                        rd_kafka_headers_t *hdrs, void *value,
                        size_t value_len) {
        memset(o, 0, sizeof(*o));
        o->topic     = pd_xstrdup(topic);
        o->key       = key ? pd_xstrdup(key) : NULL;
        o->headers   = headers_pack(hdrs, &o->headers_len);
        o->value     = value;
        o->value_len = value_len;
        /* Kept for the producer: unpacking them again cost a malloc per
         * header, twice per in-process action. */
        o->hdrs = hdrs;
}

/* Hands o, a record that only informs (an in-process action.started), to
 * oq without an outbox row: it is produced with the batch once that
 * commits, in order, but a crash may lose it. o is emptied. */
void pd__outq_put_unstored(pd_outq_t *oq, pd_outrec_t *o) {
        pd_outrec_t *q = outq_slot(oq);

        *q      = *o;
        q->seq  = PD_OUTBOX_NONE;
        q->part = oq->part;
        memset(o, 0, sizeof(*o));
}

/* Adds o to the outbox (inside the caller's transaction) and hands it to
 * oq, for producing after the commit: o is emptied either way. Returns 0
 * or -1 (store error). */
int pd__outbox_put_rec(pd_reactor_t *r, pd_outq_t *oq, pd_outrec_t *o) {
        pd_outrec_t *q      = outq_slot(oq);
        pd_outbox_rec_t rec = {0};

        *q      = *o;
        q->part = oq->part;
        memset(o, 0, sizeof(*o));
        rec.part        = q->part;
        rec.topic       = q->topic;
        rec.key         = q->key;
        rec.headers     = q->headers;
        rec.headers_len = q->headers_len;
        rec.value       = q->value;
        rec.value_len   = q->value_len;
        if (pd_store_outbox_add(r->st, &rec))
                return -1;
        q->seq = rec.seq;
        return 0;
}

/* Adds a record to the outbox (inside the caller's transaction) and keeps
 * a copy in oq for producing after the commit. Takes ownership of value and
 * hdrs. Returns 0 or -1 (store error). */
int pd__outbox_put(pd_reactor_t *r, pd_outq_t *oq, const char *topic,
                   const char *key, rd_kafka_headers_t *hdrs, void *value,
                   size_t value_len) {
        pd_outrec_t o;

        outrec_fill(&o, topic, key, hdrs, value, value_len);
        return pd__outbox_put_rec(r, oq, &o);
}

/* Stamps ev as ours and encodes it: returns its headers (the caller
 * destroys them) and sets *bufp (the caller frees it), *lenp, and *keyp
 * when NULL (the tenant). With a signing key it is signed here, before the
 * outbox keeps its headers: results are what `deploy --wait` and `report`
 * believe, so writing to the results topic must not be enough to forge a
 * SUCCEEDED. A record produced again after a restart is the stored one,
 * signature included. Touches no store. */
static rd_kafka_headers_t *emit_seal(pd_reactor_t *r, pd_event_t *ev,
                                     const char **keyp, void **bufp,
                                     size_t *lenp) {
        rd_kafka_headers_t *hdrs;
        const char *key;
        char errstr[256];

        pd_event_stamp(ev, r->source);
        if (pd_event_encode(ev, bufp, lenp, errstr, sizeof(errstr))) {
                /* Our own events always encode: a failure is a bug. */
                pd_log(PD_LOG_ERROR, "cannot encode %s: %s",
                       pd_evtype_name(ev->type), errstr);
                abort();
        }
        if (!*keyp)
                *keyp = ev->tenant;
        key  = *keyp;
        hdrs = pd_event_headers(ev);
        /* Which store recorded it: a restore skips its own store's
         * records, whose rows it holds already (consumer/restore.c). */
        rd_kafka_header_add(hdrs, PD_STORE_HEADER, -1, pd_store_id(r->st), -1);
        rd_kafka_header_add(hdrs, PD_COPART_HEADER, -1, "1", 1);
        /* Our headers and keys never hold a newline: only OpenSSL can
         * fail, and an unsigned result would be refused by every CLI. */
        if (r->secret &&
            pd_sign_headers(hdrs, key, key ? strlen(key) : 0, *bufp, *lenp,
                            r->secret, r->secret_len, errstr, sizeof(errstr))) {
                pd_log(PD_LOG_ERROR, "cannot sign %s: %s",
                       pd_evtype_name(ev->type), errstr);
                abort();
        }
        return hdrs;
}

/* Encodes ev (emit_seal) into o, a record for the results topic.
 * Workers call it before they take the store lock, so encoding and
 * signing never hold up another thread's part or a commit. */
void pd__emit_encode(pd_reactor_t *r, pd_event_t *ev, const char *key,
                     pd_outrec_t *o) {
        rd_kafka_headers_t *hdrs;
        void *buf;
        size_t len;

        hdrs = emit_seal(r, ev, &key, &buf, &len);
        outrec_fill(o, r->conf->topic_results, key, hdrs, buf, len);
}

/* Encodes ev into the outbox for the results topic (pd__emit_encode). */
int pd__emit(pd_reactor_t *r, pd_outq_t *oq, pd_event_t *ev, const char *key) {
        pd_outrec_t o;

        pd__emit_encode(r, ev, key, &o);
        return pd__outbox_put_rec(r, oq, &o);
}

/* pd__produce_rec, with *hdrsp (unless NULL) the record's headers ready
 * made: the producer takes them (*hdrsp = NULL), or they are built from
 * `headers` when there are none. */
static void produce_rec(pd_reactor_t *r, int64_t seq, int32_t part,
                        const char *topic, const char *key, const void *headers,
                        size_t headers_len, const void *value, size_t value_len,
                        rd_kafka_headers_t **hdrsp) {
        rd_kafka_resp_err_t err;
        rd_kafka_headers_t *hdrs;

        if (r->conf->shared_group) {
                /* Inside the Kafka transaction, committed with the
                 * offsets of the events it answers (publish.c). */
                pd__publish_add(r, seq, part, topic, key, headers, headers_len,
                                value, value_len);
                return;
        }
        for (;;) {
                if (hdrsp && *hdrsp) {
                        hdrs   = *hdrsp;
                        *hdrsp = NULL;
                } else {
                        hdrs = pd__headers_unpack(headers, headers_len);
                }
                err = rd_kafka_producev(
                    r->producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(pd__produce_partition(key, part)),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(hdrs),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);
                if (!err) {
                        if (seq != PD_OUTBOX_NONE)
                                pd_metrics_outbox_add(1);
                        return;
                }
                rd_kafka_headers_destroy(hdrs);
                if (err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION && part >= 0) {
                        /* A results topic with fewer partitions than the
                         * events topic (allowed with one reactor per
                         * group): the key's partition, as before. */
                        pd_log(PD_LOG_DEBUG,
                               "%s has no partition %d: outbox #%" PRId64
                               " goes where its key says",
                               topic, (int)part, seq);
                        part = PD_PART_ANY;
                        continue;
                }
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* It stays in the outbox and goes out on restart. */
                        pd_log(PD_LOG_ERROR,
                               "cannot produce to %s (outbox #%" PRId64 "): %s",
                               topic, seq, rd_kafka_err2str(err));
                        return;
                }
                rd_kafka_poll(r->producer, 100);
        }
}

/* Produces one outbox record; its delivery report deletes it. */
void pd__produce_rec(pd_reactor_t *r, int64_t seq, int32_t part,
                     const char *topic, const char *key, const void *headers,
                     size_t headers_len, const void *value, size_t value_len) {
        produce_rec(r, seq, part, topic, key, headers, headers_len, value,
                    value_len, NULL);
}

void pd__outq_produce(pd_reactor_t *r, pd_outq_t *oq) {
        for (size_t i = 0; i < oq->cnt; i++) {
                pd_outrec_t *o = &oq->recs[i];
                produce_rec(r, o->seq, o->part, o->topic, o->key, o->headers,
                            o->headers_len, o->value, o->value_len, &o->hdrs);
        }
        pd__outq_clear(oq);
}

/* A record sent to its event's partition number, which the results topic
 * does not have (fewer partitions than the events topic, allowed with one
 * reactor per group; found once the topic's metadata came): it goes where
 * its key says, as before co-partitioning. Returns 0 if produced again. */
static int dr_repartition(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                          int64_t seq) {
        rd_kafka_headers_t *orig = NULL, *hdrs = NULL;
        rd_kafka_resp_err_t err;

        if (!rd_kafka_message_headers(rkm, &orig))
                hdrs = rd_kafka_headers_copy(orig);
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(rd_kafka_topic_name(rkm->rkt)),
            RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
            RD_KAFKA_V_VALUE(rkm->payload, rkm->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);
        if (err && hdrs)
                rd_kafka_headers_destroy(hdrs);
        return err ? -1 : 0;
}

/* Producer delivery report (main thread, from rd_kafka_poll). */
void pd__dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        pd_reactor_t *r = opaque;
        int64_t seq     = (int64_t)(intptr_t)rkm->_private;

        (void)rk;
        if (rkm->err && r->conf->shared_group) {
                /* An aborted transaction's records: they go again in the
                 * next one (publish.c), or are dropped with a lost
                 * partition. */
                pd_log(PD_LOG_DEBUG, "delivery to %s (outbox #%" PRId64 "): %s",
                       rd_kafka_topic_name(rkm->rkt), seq,
                       rd_kafka_err2str(rkm->err));
                return;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION &&
            rkm->partition >= 0 && dr_repartition(rk, rkm, seq) == 0)
                return;
        if (rkm->err) {
                /* With message.timeout.ms=0 only permanent errors get here;
                 * the record stays in the outbox for the next start. */
                pd_log(PD_LOG_ERROR,
                       "delivery to %s failed (outbox #%" PRId64 "): %s",
                       rd_kafka_topic_name(rkm->rkt), seq,
                       rd_kafka_err2str(rkm->err));
                return;
        }
        if (seq == PD_OUTBOX_NONE)
                return; /* not in the outbox */
        /* In a transaction a delivered record may still be aborted: it
         * leaves the outbox (and the gauge) when its transaction commits
         * or its partition is lost (publish.c). */
        if (r->conf->shared_group)
                return;
        pd_metrics_outbox_add(-1);
        pthread_mutex_lock(&r->dr_lock);
        r->delivered = pd_xgrow(r->delivered, &r->delivered_size,
                                r->delivered_cnt + 1, sizeof(*r->delivered));
        r->delivered[r->delivered_cnt++] = seq;
        pthread_mutex_unlock(&r->dr_lock);
}

/* Marks seqs as delivered: the main thread's next pd__outbox_reap
 * deletes them (any thread). */
void pd__outbox_delivered(pd_reactor_t *r, const int64_t *seqs, size_t cnt) {
        if (!cnt)
                return;
        pthread_mutex_lock(&r->dr_lock);
        r->delivered = pd_xgrow(r->delivered, &r->delivered_size,
                                r->delivered_cnt + cnt, sizeof(*r->delivered));
        memcpy(r->delivered + r->delivered_cnt, seqs, cnt * sizeof(*seqs));
        r->delivered_cnt += cnt;
        pthread_mutex_unlock(&r->dr_lock);
}

typedef struct pd_reap_s {
        const int64_t *seqs;
        size_t cnt;
} pd_reap_t;

static int seq_cmp(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Deletes the delivered seqs (sorted), one statement per run of
 * consecutive seqs: records are delivered mostly in order. */
static int txn_reap(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_reap_t *rp = arg;

        (void)oq;
        for (size_t i = 0, j; i < rp->cnt; i = j) {
                for (j = i + 1;
                     j < rp->cnt && rp->seqs[j] <= rp->seqs[j - 1] + 1; j++)
                        ;
                if (pd_store_outbox_del_range(r->st, rp->seqs[i],
                                              rp->seqs[j - 1]))
                        return -1;
        }
        return 0;
}

/* Deletes delivered records from the outbox, in the open batch. Not
 * retried: a record left behind is produced again on restart. */
void pd__outbox_reap(pd_reactor_t *r) {
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
        qsort(seqs, rp.cnt, sizeof(*seqs), seq_cmp);

        pd__crashpoint("reap.before_delete");
        pd__reactor_txn_try(r, txn_reap, &rp, "trim the outbox");
        free(seqs);
}

/* Produces o, a record that only informs (action.progress), to partition
 * part (PD_PART_ANY: by its key) now, with no outbox row and no batch: a
 * full queue or an error drops it, with a debug line. In a shared group
 * it goes in the Kafka transaction like every record (an abort produces
 * it again). */
void pd__produce_advisory(pd_reactor_t *r, int32_t part, const pd_outrec_t *o) {
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t err;

        if (r->conf->shared_group) {
                pd__publish_add(r, PD_OUTBOX_NONE, part, o->topic, o->key,
                                o->headers, o->headers_len, o->value,
                                o->value_len);
                return;
        }
        for (;;) {
                hdrs = pd__headers_unpack(o->headers, o->headers_len);
                err  = rd_kafka_producev(
                     r->producer, RD_KAFKA_V_TOPIC(o->topic),
                     RD_KAFKA_V_PARTITION(pd__produce_partition(o->key, part)),
                     RD_KAFKA_V_KEY(o->key, o->key ? strlen(o->key) : 0),
                     RD_KAFKA_V_VALUE(o->value, o->value_len),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                     RD_KAFKA_V_HEADERS(hdrs),
                     RD_KAFKA_V_OPAQUE((void *)(intptr_t)PD_OUTBOX_NONE),
                     RD_KAFKA_V_END);
                if (!err)
                        return;
                rd_kafka_headers_destroy(hdrs);
                if (err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION && part >= 0) {
                        part = PD_PART_ANY; /* fewer results partitions */
                        continue;
                }
                pd_log(PD_LOG_DEBUG, "%s: not produced: %s", o->key,
                       rd_kafka_err2str(err));
                return;
        }
}
