/*
 * results.c - see results.h.
 */
#include "producer/results.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/log.h"

rd_kafka_t *pd_results_consumer(pd_cli_t *cli) {
        static const char *const defaults[] = {
            "enable.auto.commit", "false",
            "enable.partition.eof", "false",
            "group.id", "postdeploy-cli", /* never joins nor commits */
            "fetch.max.bytes", "104857600",
            NULL};
        return pd_cli_kafka(cli, RD_KAFKA_CONSUMER, defaults);
}

/* What to do with each consumed record. */
typedef void(pd_results_msg_cb_t)(const rd_kafka_message_t *rkm,
                                  void *opaque);

/* Reads every partition (or partition 0) from its start to the end it had
 * when called, handing each record to msg_cb. */
static int pd_results_read(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                           int64_t timeout_ms, pd_results_msg_cb_t *msg_cb,
                           void *opaque) {
        const char *topic = cli->conf->topic_results;
        rd_kafka_topic_partition_list_t *parts = NULL;
        int64_t deadline = pd_now_ms() + timeout_ms;
        pd_kafka_wm_t *wm = NULL;
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
        while (left) {
                rd_kafka_message_t *rkm;

                if (pd_now_ms() > deadline) {
                        pd_cli_error(cli,
                                     "timed out reading %s (%zu partition(s) "
                                     "not read to the end)",
                                     topic, left);
                        goto done;
                }
                rkm = rd_kafka_consumer_poll(rkc, 500);
                if (!rkm)
                        continue;
                if (rkm->err) {
                        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                pd_log(PD_LOG_DEBUG, "results: %s",
                                       rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                for (size_t i = 0; i < cnt; i++)
                        if (wm[i].partition == rkm->partition &&
                            rkm->offset + 1 == wm[i].hi)
                                left--;
                msg_cb(rkm, opaque);
                rd_kafka_message_destroy(rkm);
        }
        ret = 0;

done:
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
static void pd_results_decode(const rd_kafka_message_t *rkm, void *opaque) {
        pd_results_dec_t *d = opaque;
        char errstr[512];
        pd_event_t *ev = pd_event_from_message(rkm, errstr, sizeof(errstr));

        if (ev)
                d->cb(ev, d->opaque);
        else
                pd_log(PD_LOG_DEBUG, "skipping %s [%d] @%" PRId64 ": %s",
                       rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                       rkm->offset, errstr);
}

int pd_results_scan(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                    int64_t timeout_ms, pd_results_cb_t *cb, void *opaque) {
        pd_results_dec_t d = {cb, opaque};

        return pd_results_read(cli, rkc, registry_only, timeout_ms,
                               pd_results_decode, &d);
}

/* The newest record of one key, undecoded. */
typedef struct pd_latest_s {
        char *key;                 /* NULL: a free slot */
        rd_kafka_headers_t *hdrs;  /* owned copy */
        void *value;
        size_t len;
} pd_latest_t;

typedef struct pd_latest_map_s {
        pd_latest_t *slots;
        size_t size, cnt;
} pd_latest_map_t;

static pd_latest_t *pd_latest_slot(pd_latest_map_t *m, const char *key,
                                   size_t key_len) {
        uint64_t h = 1469598103934665603ull;
        size_t i;

        for (i = 0; i < key_len; i++)
                h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
        for (i = h & (m->size - 1);
             m->slots[i].key && (strlen(m->slots[i].key) != key_len ||
                                 memcmp(m->slots[i].key, key, key_len));
             i = (i + 1) & (m->size - 1))
                ;
        return &m->slots[i];
}

/* Keeps rkm as the newest record of its key (records of a key are in one
 * partition, read in order, so the last one read is the newest). */
static void pd_latest_put(const rd_kafka_message_t *rkm, void *opaque) {
        pd_latest_map_t *m = opaque;
        rd_kafka_headers_t *hdrs = NULL;
        pd_latest_t *e;

        if (!rkm->key || !rkm->key_len || !rkm->payload)
                return; /* not a result; tombstones keep nothing */
        if (2 * (m->cnt + 1) > m->size) {
                pd_latest_map_t bigger = {
                    calloc(m->size ? m->size * 2 : 4096, sizeof(pd_latest_t)),
                    m->size ? m->size * 2 : 4096, m->cnt};
                if (!bigger.slots)
                        abort();
                for (size_t i = 0; i < m->size; i++)
                        if (m->slots[i].key)
                                *pd_latest_slot(&bigger, m->slots[i].key,
                                                strlen(m->slots[i].key)) =
                                    m->slots[i];
                free(m->slots);
                *m = bigger;
        }
        e = pd_latest_slot(m, rkm->key, rkm->key_len);
        if (e->key) {
                rd_kafka_headers_destroy(e->hdrs);
                free(e->value);
        } else {
                if (!(e->key = strndup(rkm->key, rkm->key_len)))
                        abort();
                m->cnt++;
        }
        e->hdrs = rd_kafka_message_headers(rkm, &hdrs) || !hdrs
                      ? rd_kafka_headers_new(0)
                      : rd_kafka_headers_copy(hdrs);
        e->len   = rkm->len;
        e->value = malloc(rkm->len ? rkm->len : 1);
        if (!e->value)
                abort();
        memcpy(e->value, rkm->payload, rkm->len);
}

int pd_results_scan_latest(pd_cli_t *cli, rd_kafka_t *rkc,
                           int64_t timeout_ms, pd_results_cb_t *cb,
                           void *opaque) {
        pd_latest_map_t m = {0};
        char errstr[512];
        int ret;

        ret = pd_results_read(cli, rkc, 0, timeout_ms, pd_latest_put, &m);
        for (size_t i = 0; i < m.size; i++) {
                pd_latest_t *e = &m.slots[i];
                pd_event_t *ev;

                if (!e->key)
                        continue;
                if (!ret && (ev = pd_event_from_parts(e->hdrs, e->value,
                                                      e->len, errstr,
                                                      sizeof(errstr))))
                        cb(ev, opaque);
                free(e->key);
                rd_kafka_headers_destroy(e->hdrs);
                free(e->value);
        }
        free(m.slots);
        return ret;
}

/* Keeps the newest registry.published. */
static void pd_results_keep_registry(pd_event_t *ev, void *opaque) {
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
        ret   = pd_results_scan(cli, rkc, 1, timeout_ms,
                                pd_results_keep_registry, regp);
        if (ret) {
                pd_event_destroy(*regp);
                *regp = NULL;
        }
        return ret;
}
