/*
 * results.c - see results.h.
 */
#include "producer/results.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/map.h"
#include "common/xalloc.h"
#include "common/sign.h"
#include "producer/term.h"
#include "schemas/cloudevents.h"

/*
 * Whether rkm ends its partition's history as it stood at the start (the
 * last record below wm.hi, or the partition's end, reached first when a
 * transaction's commit marker is last): returns 1 once per partition (it
 * is then marked read: lo = hi), else 0.
 */
static int results_at_end(pd_kafka_wm_t *wm, size_t cnt,
                          const rd_kafka_message_t *rkm) {
        for (size_t p = 0; p < cnt; p++) {
                if (wm[p].partition != rkm->partition || wm[p].hi <= wm[p].lo)
                        continue;
                if (rkm->err || rkm->offset + 1 >= wm[p].hi) {
                        wm[p].lo = wm[p].hi;
                        return 1;
                }
        }
        return 0;
}

rd_kafka_t *pd_results_consumer(pd_cli_t *cli) {
        static const char *const defaults[] = {
            /* The end of a partition is where a read_committed reader
             * stops, which is not the offset of a record when the last
             * thing written is a transaction's commit marker (the
             * reactors of a shared group publish in transactions). */
            "enable.auto.commit", "false", "enable.partition.eof", "true",
            "group.id", "postdeploy-cli", /* never joins nor commits */
            "fetch.max.bytes", "104857600",
            /* A short queue: the report consumes more slowly than the
             * fetcher, so what it holds is memory, not speed (see
             * results_wake). 10,000 records of benchmark 5 are ~5 MB
             * with their buffers; one fetch adds at most 256 KB per
             * partition. */
            "queued.min.messages", "10000", "queued.max.messages.kbytes",
            "16384", "max.partition.fetch.bytes", "262144", NULL};
        return pd_cli_kafka(cli, RD_KAFKA_CONSUMER, defaults);
}

/* Warnings printed one per refused record; past that many only the count
 * grows, so a flood of forged records does not bury the output. */
#define PD_RESULTS_WARN_MAX 20

int pd_results_check(pd_cli_t *cli, const rd_kafka_message_t *rkm) {
        rd_kafka_headers_t *hdrs = NULL;
        char errstr[256];

        if (!cli->secret || !rkm->payload)
                return 0;
        if (rd_kafka_message_headers(rkm, &hdrs))
                hdrs = NULL;
        if (!pd_sign_verify(hdrs, rkm->key, rkm->key_len, rkm->payload,
                            rkm->len, cli->secret, cli->secret_len, errstr,
                            sizeof(errstr)))
                return 0;
        if (cli->rejected < PD_RESULTS_WARN_MAX)
                fprintf(stderr,
                        "postdeploy %s: warning: rejected %s [%" PRId32
                        "] @%" PRId64 ": %s (not counted)\n",
                        cli->cmd, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                        rkm->offset, errstr);
        else if (cli->rejected == PD_RESULTS_WARN_MAX)
                fprintf(stderr,
                        "postdeploy %s: warning: more rejected records: "
                        "counted, not shown\n",
                        cli->cmd);
        cli->rejected++;
        return -1;
}

/* What to do with each consumed record. */
typedef void(pd_results_msg_cb_t)(const rd_kafka_message_t *rkm, void *opaque);

/* Records taken from the queue at once: one lock and one clock read per
 * batch rather than per record. */
#define PD_RESULTS_BATCH 1024

/* The next records, up to PD_RESULTS_BATCH in batch: those already queued,
 * or else the first to arrive within 500 ms. Returns how many (0: none). */
static size_t results_next(rd_kafka_t *rkc, rd_kafka_queue_t *rkqu,
                           rd_kafka_message_t **batch) {
        ssize_t n =
            rd_kafka_consume_batch_queue(rkqu, 0, batch, PD_RESULTS_BATCH);

        if (n > 0)
                return (size_t)n;
        /* A batch with a timeout waits until it is full: wait for one. */
        return (batch[0] = rd_kafka_consumer_poll(rkc, 500)) ? 1 : 0;
}

/*
 * Keeping the fetcher awake. librdkafka 2.0.2 stops fetching while the
 * consumer queue holds queued.min.messages (or queued.max.messages.kbytes),
 * and its broker thread then sleeps until a response, an operation or 1 s
 * (rd_kafka_max_block_ms; fetch.queue.backoff.ms in librdkafka 2.1,
 * confluentinc/librdkafka#2879). The report parses every record's headers,
 * so it consumes more slowly than a broker thread fetches, and would wait
 * that second over and over. A ListOffsets request is an operation for the
 * leaders' broker threads: sent once the queue is down to half the limit,
 * it makes them fetch again before the queue runs dry.
 */
typedef struct pd_results_wake_s {
        rd_kafka_topic_partition_list_t *parts; /* every partition read */
        size_t max_msgs;                        /* queued.min.messages */
        size_t max_bytes; /* queued.max.messages.kbytes, in bytes */
        size_t taken;     /* records consumed since the last wake-up */
        size_t cnt;       /* records consumed, and their bytes: the */
        size_t bytes;     /* average size turns bytes into records */
} pd_results_wake_t;

/* The client's setting `name` as a number (0 if it cannot be read). */
static size_t results_conf_num(rd_kafka_t *rkc, const char *name) {
        char buf[32];
        size_t size = sizeof(buf);
        long v;

        if (rd_kafka_conf_get(rd_kafka_conf(rkc), name, buf, &size) !=
            RD_KAFKA_CONF_OK)
                return 0;
        v = strtol(buf, NULL, 10);
        return v > 0 ? (size_t)v : 0;
}

static void results_wake_init(pd_results_wake_t *wk, rd_kafka_t *rkc,
                              const rd_kafka_topic_partition_list_t *parts) {
        wk->parts    = pd_xalloc(rd_kafka_topic_partition_list_copy(parts));
        wk->max_msgs = results_conf_num(rkc, "queued.min.messages");
        wk->max_bytes =
            results_conf_num(rkc, "queued.max.messages.kbytes") * 1024;
}

/* Wakes the fetcher once the queue is down to half of whichever limit it
 * reaches first; at most once per that many records, so a fetcher that
 * was awake anyway costs one request per half queue. */
static void results_wake(rd_kafka_t *rkc, rd_kafka_queue_t *rkqu,
                         pd_results_wake_t *wk, size_t taken, size_t bytes) {
        size_t low = wk->max_msgs / 2, avg;

        wk->taken += taken;
        wk->cnt += taken;
        wk->bytes += bytes;
        avg = wk->cnt && wk->bytes > wk->cnt ? wk->bytes / wk->cnt : 1;
        if (wk->max_bytes / 2 / avg < low)
                low = wk->max_bytes / 2 / avg;
        if (wk->taken < low || rd_kafka_queue_length(rkqu) >= low)
                return;
        wk->taken = 0;
        for (int i = 0; i < wk->parts->cnt; i++)
                wk->parts->elems[i].offset = RD_KAFKA_OFFSET_END;
        /* Only the requests matter: their answers and errors do not, so
         * they are not waited for. A broker answers a connection's
         * requests in order: one behind a fetch parked at the end of the
         * topic (fetch.wait.max.ms) waited 500 ms for it, which was the
         * slow half of report --tenant runs (debug=fetch). */
        (void)rd_kafka_offsets_for_times(rkc, wk->parts, 1);
}

/*
 * Whether rkm is a record of one of tenants (any record when there are
 * none). Results are keyed "tenant/action": a look at the key spares a
 * record of another tenant its signature check, its headers' parsing and
 * its copy, which were most of a report's time for one tenant among a
 * thousand. Records keyed otherwise (the registry) pass.
 */
static int results_key_wanted(const rd_kafka_message_t *rkm,
                              const pd_strv_t *tenants) {
        const char *slash;
        size_t len;

        if (!tenants || !tenants->cnt || !rkm->key ||
            !(slash = memchr(rkm->key, '/', rkm->key_len)))
                return 1;
        len = (size_t)(slash - (const char *)rkm->key);
        for (size_t i = 0; i < tenants->cnt; i++)
                if (strlen(tenants->v[i]) == len &&
                    !memcmp(tenants->v[i], rkm->key, len))
                        return 1;
        return 0;
}

/*
 * Reading only what a report of a few tenants needs. Events are keyed by
 * tenant, and today's reactors publish every record of an event to the
 * results partition numbered as the event's, marked PD_COPART_HEADER.
 * Reactors before them keyed results "tenant/action" and let the
 * partitioner choose, so a tenant's older records may sit on any
 * partition, before that partition's first marked record. So the
 * partitions of the tenants are read in full, partition 0 too (the
 * newest registry may be anywhere in it) and those of the pause records
 * that belong to no event (placed by their key), and every other
 * partition up to its first marked record: one fetch on a topic written
 * only by today's reactors.
 *
 * When that cannot be sure, everything is read: the two topics' partition
 * counts differ (a reactor then sends a record meant for a partition the
 * results topic lacks where its key says, marked all the same), the
 * [kafka] partitioner is not the CLI's default (events are then not where
 * we look), or a partition's first marked record is not of a tenant whose
 * events go to that partition (such a topic holds marked records that
 * were not co-partitioned: a run recovered without its tenant's
 * partition, partition counts changed since).
 */

/* The key of a pause's record (consumer/dispatch.c): "~pause" for every
 * tenant, "T/~pause" for one. */
#define PD_RESULTS_PAUSE_KEY "~pause"

/* Returned by results_read when a marked record is not where its tenant's
 * events go: what was read is incomplete, read it all again. */
#define PD_RESULTS_REREAD (-2)

/* The events partition of tenant: where the CLI's producer sends its
 * events (librdkafka's default partitioner, consistent_random: CRC-32 of
 * a non-empty key modulo the partition count). */
static int32_t results_part_of(const char *tenant, size_t len, int32_t cnt) {
        return rd_kafka_msg_partitioner_consistent(NULL, tenant, len, cnt, NULL,
                                                   NULL);
}

/* The partition count of topic (-1 if unknown). */
static int results_part_cnt(rd_kafka_t *rkc, const char *topic) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rkc, topic, NULL);
        int cnt               = -1;

        if (!rkt)
                return -1;
        if (!rd_kafka_metadata(rkc, 0, rkt, &md, 10000) && md->topic_cnt == 1 &&
            !md->topics[0].err)
                cnt = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

/* Sets full[p] for each partition (of cnt) a read for tenants must read to
 * its end; the others stop at their first marked record. Returns 0, or -1
 * if every partition must be read in full (full untouched). */
static int results_plan(pd_cli_t *cli, rd_kafka_t *rkc,
                        const pd_strv_t *tenants, const pd_kafka_wm_t *wm,
                        size_t cnt, unsigned char *full) {
        const char *partitioner = pd_config_kafka(cli->conf, "partitioner");

        if (!tenants || !tenants->cnt)
                return -1;
        if (partitioner && strcmp(partitioner, "consistent_random") &&
            strcmp(partitioner, "consistent"))
                return -1;
        if (results_part_cnt(rkc, cli->conf->topic_events) != (int)cnt)
                return -1;
        /* Partitions numbered 0 to cnt - 1, as Kafka numbers them. */
        for (size_t i = 0; i < cnt; i++)
                if (wm[i].partition < 0 || (size_t)wm[i].partition >= cnt)
                        return -1;
        memset(full, 0, cnt);
        full[0] = 1; /* the registry */
        /* Records of no one event go where their key says: a pause of
         * every tenant ("~pause"), and the "T/~pause" records of a resume
         * of every tenant and of an event held by a pause. */
        full[results_part_of(PD_RESULTS_PAUSE_KEY, strlen(PD_RESULTS_PAUSE_KEY),
                             (int32_t)cnt)] = 1;
        for (size_t i = 0; i < tenants->cnt; i++) {
                char key[512];
                int len = snprintf(key, sizeof(key), "%s/" PD_RESULTS_PAUSE_KEY,
                                   tenants->v[i]);

                full[results_part_of(tenants->v[i], strlen(tenants->v[i]),
                                     (int32_t)cnt)] = 1;
                if (len < 0 || (size_t)len >= sizeof(key))
                        return -1;
                full[results_part_of(key, (size_t)len, (int32_t)cnt)] = 1;
        }
        return 0;
}

/* Whether rkm's key is a pause's: "~pause" or ending "/~pause". */
static int results_pause_key(const rd_kafka_message_t *rkm) {
        size_t n = strlen(PD_RESULTS_PAUSE_KEY);

        return rkm->key_len >= n &&
               !memcmp((const char *)rkm->key + rkm->key_len - n,
                       PD_RESULTS_PAUSE_KEY, n) &&
               (rkm->key_len == n ||
                ((const char *)rkm->key)[rkm->key_len - n - 1] == '/');
}

/* Whether rkm, read on a partition that stops at its first marked record,
 * is that record: 1 if so (its tenant's events go to its partition), 0 if
 * it is not marked (or is the registry, which is on partition 0 whoever
 * wrote it), PD_RESULTS_REREAD if it is marked but not co-partitioned. */
static int results_marked(const rd_kafka_message_t *rkm, int32_t cnt) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *val;
        const char *slash;
        size_t size, len;

        if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs ||
            rd_kafka_header_get_last(hdrs, PD_COPART_HEADER, &val, &size) ||
            !rkm->key || !rkm->key_len ||
            (rkm->key_len == strlen(PD_REGISTRY_KEY) &&
             !memcmp(rkm->key, PD_REGISTRY_KEY, rkm->key_len)))
                return 0;
        /* "tenant/action", "tenant/action/progress", or "tenant"; a pause's
         * record ("~pause", "tenant/~pause") may be placed by its key. */
        slash = memchr(rkm->key, '/', rkm->key_len);
        len   = slash ? (size_t)(slash - (const char *)rkm->key) : rkm->key_len;
        if (len && results_part_of(rkm->key, len, cnt) == rkm->partition)
                return 1;
        if (results_pause_key(rkm) &&
            results_part_of(rkm->key, rkm->key_len, cnt) == rkm->partition)
                return 1;
        return PD_RESULTS_REREAD;
}

/* full[p] of a partition read up to its first marked record, and past it:
 * what follows is other tenants'. */
#define PD_RESULTS_STOPPED 2

/* Stops rkm's partition at rkm, its first marked record: counted as read
 * to its end, and no longer fetched. */
static void results_stop(rd_kafka_t *rkc, pd_kafka_wm_t *wm, size_t cnt,
                         const rd_kafka_message_t *rkm, unsigned char *full,
                         size_t *leftp) {
        rd_kafka_topic_partition_list_t *one =
            rd_kafka_topic_partition_list_new(1);

        pd_log(
            PD_LOG_DEBUG,
            "results: partition %d read to its first marked record (@%" PRId64
            ")",
            (int)rkm->partition, rkm->offset);
        full[rkm->partition] = PD_RESULTS_STOPPED;
        for (size_t p = 0; p < cnt; p++)
                if (wm[p].partition == rkm->partition && wm[p].hi > wm[p].lo) {
                        wm[p].lo = wm[p].hi;
                        (*leftp)--;
                }
        /* Records of it already fetched are passed over as they come. */
        rd_kafka_topic_partition_list_add(one, rd_kafka_topic_name(rkm->rkt),
                                          rkm->partition);
        (void)rd_kafka_pause_partitions(rkc, one);
        rd_kafka_topic_partition_list_destroy(one);
}

/* Reads every partition (or partition 0) from its start to the end it had
 * when called, handing each record of tenants (NULL: of all) to msg_cb.
 * With narrow, only what tenants' records need (results_plan); returns
 * PD_RESULTS_REREAD if that turns out unsure, once msg_cb may have had
 * some records. */
static int results_read(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                        const pd_strv_t *tenants, int narrow,
                        int64_t timeout_ms, pd_results_msg_cb_t *msg_cb,
                        void *opaque) {
        const char *topic                      = cli->conf->topic_results;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_message_t **batch             = NULL;
        rd_kafka_queue_t *rkqu                 = NULL;
        pd_results_wake_t wk                   = {0};
        int64_t deadline                       = pd_now_ms() + timeout_ms;
        pd_kafka_wm_t *wm                      = NULL;
        unsigned char *full                    = NULL;
        size_t cnt = 0, left = 0;
        rd_kafka_resp_err_t err;
        char errstr[512];
        int ret = PD_EXIT_KAFKA;

        if (pd_kafka_watermarks(rkc, topic, 10000, &wm, &cnt, errstr,
                                sizeof(errstr))) {
                pd_cli_error(cli, "%s (are the brokers %s right?)", errstr,
                             cli->brokers);
                return PD_EXIT_KAFKA;
        }
        if (narrow && cnt) {
                full = pd_xmalloc(cnt);
                if (results_plan(cli, rkc, tenants, wm, cnt, full)) {
                        free(full);
                        full = NULL;
                        pd_log(PD_LOG_DEBUG,
                               "results: every partition read "
                               "in full");
                } else {
                        size_t n = 0;

                        for (size_t i = 0; i < cnt; i++)
                                n += full[i];
                        pd_log(PD_LOG_DEBUG,
                               "results: %zu partition(s) read in full, the "
                               "other %zu up to their first marked record",
                               n, cnt - n);
                }
        }
        parts = rd_kafka_topic_partition_list_new((int)cnt);
        for (size_t i = 0; i < cnt; i++) {
                if (registry_only && wm[i].partition != 0)
                        wm[i].hi = wm[i].lo; /* nothing to read there */
                if (wm[i].hi > wm[i].lo) {
                        rd_kafka_topic_partition_list_add(parts, topic,
                                                          wm[i].partition)
                            ->offset = wm[i].lo;
                        left++;
                }
        }
        if (!left) {
                ret = 0;
                goto done;
        }
        if ((err = rd_kafka_assign(rkc, parts))) {
                pd_cli_error(cli, "cannot read %s: %s", topic,
                             rd_kafka_err2str(err));
                goto done;
        }
        if (!(rkqu = rd_kafka_queue_get_consumer(rkc))) {
                pd_cli_error(cli, "cannot read %s: no consumer queue", topic);
                goto done;
        }
        batch = pd_xmalloc(PD_RESULTS_BATCH * sizeof(*batch));
        results_wake_init(&wk, rkc, parts);
        while (left) {
                size_t n, i, bytes = 0;

                if (pd_now_ms() > deadline) {
                        pd_cli_error(cli,
                                     "timed out reading %s (%zu partition(s) "
                                     "not read to the end)",
                                     topic, left);
                        goto done;
                }
                n = results_next(rkc, rkqu, batch);
                /* Each record is destroyed as soon as it is handled: the
                 * chunks of its parsed headers are then reused by the
                 * next record's (malloc's per-thread cache) rather than
                 * piling up until the end of the batch. */
                for (i = 0; i < n; i++) {
                        rd_kafka_message_t *rkm = batch[i];

                        if (!left) {
                                /* Read to the end: the rest is not ours. */
                        } else if (full && !rkm->err && !full[rkm->partition]) {
                                /* Before its first marked record. */
                                int m = results_marked(rkm, (int32_t)cnt);

                                if (m == PD_RESULTS_REREAD) {
                                        rd_kafka_message_destroy(rkm);
                                        for (i++; i < n; i++)
                                                rd_kafka_message_destroy(
                                                    batch[i]);
                                        ret = PD_RESULTS_REREAD;
                                        goto done;
                                }
                                if (m && !pd_results_check(cli, rkm)) {
                                        results_stop(rkc, wm, cnt, rkm, full,
                                                     &left);
                                } else {
                                        /* Not marked, or marked and not
                                         * signed with our key (refused,
                                         * counted): it stops nothing. */
                                        left -= results_at_end(wm, cnt, rkm);
                                        bytes += rkm->len;
                                        if (!m &&
                                            results_key_wanted(rkm, tenants) &&
                                            !pd_results_check(cli, rkm))
                                                msg_cb(rkm, opaque);
                                }
                        } else if (full && !rkm->err &&
                                   full[rkm->partition] == PD_RESULTS_STOPPED) {
                                /* After it: other tenants' records. */
                        } else if (rkm->err) {
                                if (rkm->err ==
                                    RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        left -= results_at_end(wm, cnt, rkm);
                                else
                                        pd_log(PD_LOG_DEBUG, "results: %s",
                                               rd_kafka_message_errstr(rkm));
                        } else {
                                left -= results_at_end(wm, cnt, rkm);
                                bytes += rkm->len;
                                /* Partition 0 holds results too: only
                                 * the registry's are decoded. */
                                if ((!registry_only ||
                                     (rkm->key_len == strlen(PD_REGISTRY_KEY) &&
                                      !memcmp(rkm->key, PD_REGISTRY_KEY,
                                              rkm->key_len))) &&
                                    results_key_wanted(rkm, tenants) &&
                                    !pd_results_check(cli, rkm))
                                        msg_cb(rkm, opaque);
                        }
                        rd_kafka_message_destroy(rkm);
                }
                if (left)
                        results_wake(rkc, rkqu, &wk, n, bytes);
        }
        ret = 0;

done:
        if (wk.parts)
                rd_kafka_topic_partition_list_destroy(wk.parts);
        /* A pause outlives the assignment: the next read of this client
         * would wait on a stopped partition until its timeout. */
        if (full)
                (void)rd_kafka_resume_partitions(rkc, parts);
        free(full);
        free(batch);
        if (rkqu)
                rd_kafka_queue_destroy(rkqu);
        rd_kafka_assign(rkc, NULL);
        free(wm);
        rd_kafka_topic_partition_list_destroy(parts);
        return ret;
}

typedef struct pd_results_dec_s {
        pd_results_cb_t *cb;
        void *opaque;
} pd_results_dec_t;

/* Decodes a record and hands the event on; a bad record is skipped. */
static void results_decode(const rd_kafka_message_t *rkm, void *opaque) {
        pd_results_dec_t *d = opaque;
        char errstr[512];
        pd_event_t *ev = pd_event_from_message(rkm, errstr, sizeof(errstr));

        char *why;

        if (ev) {
                d->cb(ev, d->opaque);
                return;
        }
        /* The reason may quote a header as it came (an unknown ce_type). */
        why = pd_term_escape_dup(errstr);
        pd_log(PD_LOG_DEBUG, "skipping %s [%d] @%" PRId64 ": %s",
               rd_kafka_topic_name(rkm->rkt), (int)rkm->partition, rkm->offset,
               why);
        free(why);
}

int pd_results_scan(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                    int64_t timeout_ms, pd_results_cb_t *cb, void *opaque) {
        pd_results_dec_t d = {cb, opaque};

        return results_read(cli, rkc, registry_only, NULL, 0, timeout_ms,
                            results_decode, &d);
}

/* A follow: the partitions assigned, and how far each had to be read to
 * have read what it held when the follow began. */
struct pd_results_follow_s {
        pd_cli_t *cli;
        rd_kafka_t *rkc;
        pd_kafka_wm_t *wm;
        size_t cnt;  /* partitions */
        size_t left; /* of those, not read yet to the end they had */
};

pd_results_follow_t *pd_results_follow_new(pd_cli_t *cli, rd_kafka_t *rkc,
                                           int from_end) {
        const char *topic                      = cli->conf->topic_results;
        rd_kafka_topic_partition_list_t *parts = NULL;
        pd_results_follow_t *f                 = pd_xcalloc(1, sizeof(*f));
        rd_kafka_resp_err_t err;
        char errstr[512];

        f->cli = cli;
        f->rkc = rkc;
        if (pd_kafka_watermarks(rkc, topic, 10000, &f->wm, &f->cnt, errstr,
                                sizeof(errstr))) {
                pd_cli_error(cli, "%s (are the brokers %s right?)", errstr,
                             cli->brokers);
                free(f);
                return NULL;
        }
        parts = rd_kafka_topic_partition_list_new((int)f->cnt);
        for (size_t i = 0; i < f->cnt; i++) {
                /* From the end: what was there before is not waited for. */
                rd_kafka_topic_partition_list_add(parts, topic,
                                                  f->wm[i].partition)
                    ->offset =
                    from_end ? f->wm[i].hi : RD_KAFKA_OFFSET_BEGINNING;
                if (!from_end && f->wm[i].hi > f->wm[i].lo)
                        f->left++;
        }
        err = rd_kafka_assign(rkc, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                pd_cli_error(cli, "cannot read %s: %s", topic,
                             rd_kafka_err2str(err));
                free(f->wm);
                free(f);
                return NULL;
        }
        return f;
}

int pd_results_follow_caught_up(const pd_results_follow_t *f) {
        return !f->left;
}

int pd_results_follow_poll(pd_results_follow_t *f, int timeout_ms,
                           pd_results_cb_t *cb, void *opaque) {
        pd_results_dec_t d      = {cb, opaque};
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(f->rkc, timeout_ms);

        if (!rkm)
                return 0;
        /* The last record a partition had at the start: once every
         * partition has given its, the history is read. */
        if (f->left &&
            (!rkm->err || rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF))
                f->left -= results_at_end(f->wm, f->cnt, rkm);
        /* A broker gone for a while is librdkafka's to retry: the
         * follower shows what it has until then. */
        if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        pd_log(PD_LOG_DEBUG, "results: %s",
                               rd_kafka_message_errstr(rkm));
        } else if (!pd_results_check(f->cli, rkm)) {
                /* A forged SUCCEEDED must not end a wait with 0. */
                results_decode(rkm, &d);
        }
        rd_kafka_message_destroy(rkm);
        return 1;
}

void pd_results_follow_destroy(pd_results_follow_t *f) {
        if (!f)
                return;
        rd_kafka_assign(f->rkc, NULL);
        free(f->wm);
        free(f);
}

int pd_results_follow(pd_cli_t *cli, rd_kafka_t *rkc,
                      volatile sig_atomic_t *stop, pd_results_cb_t *cb,
                      void (*caught_up)(void *opaque), void *opaque) {
        pd_results_follow_t *f = pd_results_follow_new(cli, rkc, 0);
        int read;

        if (!f)
                return PD_EXIT_KAFKA;
        if ((read = pd_results_follow_caught_up(f)) && caught_up)
                caught_up(opaque);
        while (!*stop) {
                pd_results_follow_poll(f, 200, cb, opaque);
                if (!read && (read = pd_results_follow_caught_up(f)) &&
                    caught_up)
                        caught_up(opaque);
        }
        pd_results_follow_destroy(f);
        return 0;
}

/* The headers pd_event_from_parts reads, in the order a record keeps
 * their values. */
static const char *const latest_hdr_names[] = {
    "ce_specversion", "ce_id",     "ce_source",   "ce_type",
    "ce_time",        "ce_tenant", "content-type"};
#define PD_LATEST_HDR_CNT                                                      \
        (sizeof(latest_hdr_names) / sizeof(latest_hdr_names[0]))

/* Headers whose few values recur on every record (the spec version, the
 * reactor that wrote it, the type, the content type) are kept once per
 * value in the map, and each record refers to its value by number. */
static const int latest_hdr_shared[] = {1, 0, 1, 1, 0, 0, 1};
#define PD_LATEST_HDR_TENANT 5 /* ce_tenant: the key's tenant, as a rule */
#define PD_LATEST_SHARED_MAX 8 /* values kept per header */
#define PD_LATEST_SHARED_LEN 256

/* A record's hdr_len[] that is no length: the header is absent, or its
 * value is the key up to its '/', or it is shared value n. */
#define PD_LATEST_ABSENT     -1
#define PD_LATEST_KEY_TENANT -2
#define PD_LATEST_SHARED(n)  (-3 - (n))

/*
 * The newest record of one key, undecoded, in one allocation: data[] holds
 * the key, the value of each header above that the record has (the last of
 * its name, as rd_kafka_header_get_last finds it) unless hdr_len[] names
 * it otherwise, and the record's value, one after the other. A newer
 * record of the key is written over it when it fits, so reading allocates
 * nothing per record once every key is known.
 */
typedef struct pd_latest_s {
        int64_t ts;   /* the record's timestamp (ms), -1 if none */
        uint32_t cap; /* bytes of data[] */
        uint32_t key_len;
        uint32_t len;                       /* the record's value */
        int32_t hdr_len[PD_LATEST_HDR_CNT]; /* >= 0: in data[] */
        char data[];
} pd_latest_t;

typedef struct pd_latest_shared_s {
        char *v[PD_LATEST_SHARED_MAX];
        size_t len[PD_LATEST_SHARED_MAX];
        int cnt;
} pd_latest_shared_t;

typedef struct pd_latest_map_s {
        pd_map_t *recs; /* record key -> its newest pd_latest_t */
        pd_latest_shared_t shared[PD_LATEST_HDR_CNT];
} pd_latest_map_t;

/* The place of header `name` in latest_hdr_names, PD_LATEST_HDR_CNT if
 * it is not one a record keeps. */
static size_t latest_hdr_index(const char *name) {
        size_t h;

        for (h = 0; h < PD_LATEST_HDR_CNT; h++)
                if (!strcmp(name, latest_hdr_names[h]))
                        break;
        return h;
}

/* The values of the headers a record keeps, into val[] and len[] (-1: not
 * there). */
static void latest_hdrs(const rd_kafka_message_t *rkm,
                        const void *val[PD_LATEST_HDR_CNT],
                        int32_t len[PD_LATEST_HDR_CNT]) {
        rd_kafka_headers_t *hdrs = NULL;
        const char *name;
        const void *v;
        size_t size, i, h;

        for (h = 0; h < PD_LATEST_HDR_CNT; h++) {
                val[h] = NULL;
                len[h] = -1;
        }
        if (rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
                return;
        for (i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &v, &size); i++) {
                /* pd_event_headers writes them in this order: try the
                 * header's own place first. */
                h = i < PD_LATEST_HDR_CNT && !strcmp(name, latest_hdr_names[i])
                        ? i
                        : latest_hdr_index(name);
                if (h < PD_LATEST_HDR_CNT) {
                        /* A null value is as empty as "" to the decoder. */
                        val[h] = v ? v : "";
                        len[h] = (int32_t)size;
                }
        }
}

/* What a record keeps of header h's value v (len bytes): its hdr_len[]. */
static int32_t latest_code(pd_latest_map_t *m, size_t h, const void *v,
                           int32_t len, const char *key, size_t key_len) {
        pd_latest_shared_t *sh = &m->shared[h];
        int n;

        if (len < 0)
                return PD_LATEST_ABSENT;
        if (h == PD_LATEST_HDR_TENANT && (size_t)len < key_len &&
            key[len] == '/' && !memchr(key, '/', (size_t)len) &&
            !memcmp(key, v, (size_t)len))
                return PD_LATEST_KEY_TENANT;
        if (!latest_hdr_shared[h] || len > PD_LATEST_SHARED_LEN)
                return len;
        for (n = 0; n < sh->cnt; n++)
                if (sh->len[n] == (size_t)len && !memcmp(sh->v[n], v, len))
                        return PD_LATEST_SHARED(n);
        if (n == PD_LATEST_SHARED_MAX)
                return len;
        sh->v[n] = pd_xmalloc((size_t)len + 1);
        memcpy(sh->v[n], v, (size_t)len);
        sh->len[n] = (size_t)len;
        sh->cnt++;
        return PD_LATEST_SHARED(n);
}

/* Keeps rkm as the newest record of its key (records of a key are in one
 * partition, read in order, so the last one read is the newest). */
static void latest_put(const rd_kafka_message_t *rkm, void *opaque) {
        pd_latest_map_t *m = opaque;
        const void *hval[PD_LATEST_HDR_CNT];
        int32_t hlen[PD_LATEST_HDR_CNT];
        pd_latest_t *rec;
        int64_t ts;
        size_t need;
        void **vp;
        char *p;

        if (!rkm->key || !rkm->key_len || !rkm->payload)
                return; /* not a result; tombstones keep nothing */
        latest_hdrs(rkm, hval, hlen);
        need = rkm->key_len + rkm->len;
        for (size_t i = 0; i < PD_LATEST_HDR_CNT; i++) {
                hlen[i] =
                    latest_code(m, i, hval[i], hlen[i], rkm->key, rkm->key_len);
                if (hlen[i] > 0)
                        need += (size_t)hlen[i];
        }
        ts  = rd_kafka_message_timestamp(rkm, NULL);
        vp  = pd_map_put(m->recs, rkm->key, rkm->key_len);
        rec = *vp;
        /* The newest by its time, not by reading order: one key may have
         * records on two partitions (results from before they were
         * co-partitioned, another writer), read one after the other. */
        if (rec && ts >= 0 && rec->ts >= 0 && ts < rec->ts)
                return;
        if (!rec || rec->cap < need) {
                size_t cap = (need + 15) & ~(size_t)15;

                free(rec);
                rec      = pd_xmalloc(sizeof(*rec) + cap);
                rec->cap = (uint32_t)cap;
                *vp      = rec;
        }
        rec->ts      = ts;
        rec->key_len = (uint32_t)rkm->key_len;
        rec->len     = (uint32_t)rkm->len;
        p            = rec->data;
        memcpy(p, rkm->key, rkm->key_len);
        p += rkm->key_len;
        for (size_t i = 0; i < PD_LATEST_HDR_CNT; i++) {
                rec->hdr_len[i] = hlen[i];
                if (hlen[i] > 0) {
                        memcpy(p, hval[i], (size_t)hlen[i]);
                        p += hlen[i];
                }
        }
        memcpy(p, rkm->payload, rkm->len);
}

/* Decodes a kept record: its headers are rebuilt for pd_event_from_parts,
 * so a winner is checked exactly as a consumed record would be. */
static pd_event_t *latest_decode(const pd_latest_map_t *m,
                                 const pd_latest_t *rec, char *errstr,
                                 size_t errstr_size) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(PD_LATEST_HDR_CNT);
        const char *p            = rec->data + rec->key_len;
        pd_event_t *ev;

        for (size_t i = 0; i < PD_LATEST_HDR_CNT; i++) {
                const char *name = latest_hdr_names[i];
                int32_t code     = rec->hdr_len[i];

                if (code >= 0) {
                        rd_kafka_header_add(hdrs, name, -1, p, code);
                        p += code;
                } else if (code == PD_LATEST_KEY_TENANT) {
                        const char *slash =
                            memchr(rec->data, '/', rec->key_len);

                        rd_kafka_header_add(hdrs, name, -1, rec->data,
                                            slash - rec->data);
                } else if (code != PD_LATEST_ABSENT) {
                        const pd_latest_shared_t *sh = &m->shared[i];
                        int n = PD_LATEST_SHARED(0) - code;

                        rd_kafka_header_add(hdrs, name, -1, sh->v[n],
                                            (ssize_t)sh->len[n]);
                }
        }
        ev = pd_event_from_parts(hdrs, p, rec->len, errstr, errstr_size);
        rd_kafka_headers_destroy(hdrs);
        return ev;
}

int pd_results_scan_latest(pd_cli_t *cli, rd_kafka_t *rkc,
                           const pd_strv_t *tenants, int64_t timeout_ms,
                           pd_results_cb_t *cb, void *opaque) {
        pd_latest_map_t m = {.recs = pd_map_new()};
        size_t rejected   = cli->rejected;
        char errstr[512];
        size_t it = 0, cnt = 0;
        void *rec, **recs;
        int ret;

        ret = results_read(cli, rkc, 0, tenants, 1, timeout_ms, latest_put, &m);
        if (ret == PD_RESULTS_REREAD) {
                /* What was kept stays: a record read again is kept again
                 * (the newest by its time), nothing is counted twice. */
                pd_log(PD_LOG_DEBUG,
                       "results: a marked record is not on its "
                       "tenant's partition: reading them all");
                cli->rejected = rejected;
                ret = results_read(cli, rkc, 0, tenants, 0, timeout_ms,
                                   latest_put, &m);
        }
        /* The map (its slots and key copies: 10 MB over benchmark 5's
         * 100,000 keys) goes before the caller builds its own, and each
         * record is freed once decoded: the caller's copies take the place
         * of the records rather than adding to them. */
        recs = pd_xmalloc((pd_map_count(m.recs) + 1) * sizeof(*recs));
        while (pd_map_next(m.recs, &it, NULL, NULL, &rec))
                recs[cnt++] = rec;
        pd_map_destroy(m.recs, NULL);
        for (size_t i = 0; i < cnt; i++) {
                pd_event_t *ev;

                if (!ret &&
                    (ev = latest_decode(&m, recs[i], errstr, sizeof(errstr))))
                        cb(ev, opaque);
                free(recs[i]);
        }
        free(recs);
        for (size_t h = 0; h < PD_LATEST_HDR_CNT; h++)
                for (int n = 0; n < m.shared[h].cnt; n++)
                        free(m.shared[h].v[n]);
        return ret;
}

/* Keeps the newest registry.published. */
static void results_keep_registry(pd_event_t *ev, void *opaque) {
        pd_event_t **regp = opaque;

        if (ev->type == PD_EVT_REGISTRY_PUBLISHED &&
            (!*regp || ev->published_at >= (*regp)->published_at)) {
                pd_event_destroy(*regp);
                *regp = ev;
                return;
        }
        pd_event_destroy(ev);
}

int pd_results_registry(pd_cli_t *cli, rd_kafka_t *rkc, int64_t timeout_ms,
                        pd_event_t **regp) {
        int ret;

        *regp = NULL;
        ret   = pd_results_scan(cli, rkc, 1, timeout_ms, results_keep_registry,
                                regp);
        if (ret) {
                pd_event_destroy(*regp);
                *regp = NULL;
        }
        return ret;
}
