/*
 * results.c - see results.h.
 */
#include "producer/results.h"

#include <inttypes.h>
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

int pd_results_scan(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                    int64_t timeout_ms, pd_results_cb_t *cb, void *opaque) {
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
                pd_event_t *ev;

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
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
                if (ev)
                        cb(ev, opaque);
                else
                        pd_log(PD_LOG_DEBUG,
                               "skipping %s [%d] @%" PRId64 ": %s", topic,
                               (int)rkm->partition, rkm->offset, errstr);
                rd_kafka_message_destroy(rkm);
        }
        ret = 0;

done:
        rd_kafka_assign(rkc, NULL);
        free(wm);
        rd_kafka_topic_partition_list_destroy(parts);
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
