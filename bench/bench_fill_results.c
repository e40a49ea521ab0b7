/*
 * bench_fill_results.c - fills the results topic of benchmark 5 with real
 * result records, fast: one registry.published naming -a auto actions, then
 * for each of -n tenants x -a actions, -e events (action.started and
 * action.finished in turn, attempt 1, 2, ...), round by round so that every
 * key's history is spread over the topic as it would be in production. One
 * finished run in ten fails, with an exit code, an error and an output
 * tail, so the report has something to print.
 *
 * Records go through pd_event_produce, batched (linger 100 ms, 1 MB
 * batches): the fill is not what is measured.
 *
 * By default the records are written as reactors wrote them before results
 * were co-partitioned: keyed tenant/action, the partitioner chooses, no
 * PD_COPART_HEADER. With -p, as today's reactors write them: each to the
 * partition of its tenant's events (CRC-32 of the tenant, librdkafka's
 * default partitioner, over the results topic's partition count, which
 * equals the events topic's), the registry to partition 0, every record
 * marked with PD_COPART_HEADER.
 *
 * Usage: bench_fill_results -c CONFIG -n TENANTS -a ACTIONS -e EVENTS [-p]
 * Prints records= and seconds=.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"

static int fill_failed;

static void fill_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                       void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->err && !fill_failed) {
                fprintf(stderr, "bench_fill_results: delivery: %s\n",
                        rd_kafka_err2str(rkm->err));
                fill_failed = 1;
        }
}

/* The results topic's partition count with -p, else 0. */
static int32_t fill_copart;

/* Produces ev as today's reactor does (-p): to its tenant's partition
 * (the registry to 0), marked. */
static rd_kafka_resp_err_t fill_produce_copart(rd_kafka_t *rkp,
                                               const char *topic,
                                               const char *key, pd_event_t *ev,
                                               char *errstr,
                                               size_t errstr_size) {
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t err;
        int32_t part = 0;
        void *buf;
        size_t len;

        pd_event_stamp(ev, NULL);
        if (pd_event_encode(ev, &buf, &len, errstr, errstr_size))
                return RD_KAFKA_RESP_ERR__INVALID_ARG;
        hdrs = pd_event_headers(ev);
        rd_kafka_header_add(hdrs, PD_COPART_HEADER, -1, "1", 1);
        if (ev->tenant)
                part = rd_kafka_msg_partitioner_consistent(
                    NULL, ev->tenant, strlen(ev->tenant), fill_copart, NULL,
                    NULL);
        err = rd_kafka_producev(
            rkp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_END);
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                free(buf);
                snprintf(errstr, errstr_size, "cannot produce: %s",
                         rd_kafka_err2str(err));
        }
        return err;
}

static int fill_produce(rd_kafka_t *rkp, const char *topic, const char *key,
                        pd_event_t *ev) {
        char errstr[256];
        rd_kafka_resp_err_t err;

        while ((err = fill_copart ? fill_produce_copart(rkp, topic, key, ev,
                                                        errstr, sizeof(errstr))
                                  : pd_event_produce(rkp, topic, key, ev, NULL,
                                                     errstr, sizeof(errstr))) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rkp, 10);
        rd_kafka_poll(rkp, 0);
        if (err)
                fprintf(stderr, "bench_fill_results: %s\n", errstr);
        return err ? -1 : 0;
}

static int fill_registry(rd_kafka_t *rkp, const char *topic, long actions) {
        pd_event_t *ev = pd_event_new(PD_EVT_REGISTRY_PUBLISHED);
        int ret;

        ev->reactor      = strdup("bench-fill");
        ev->published_at = pd_now_ms();
        ev->registry     = calloc((size_t)actions, sizeof(*ev->registry));
        if (!ev->registry)
                abort();
        ev->registry_cnt = (size_t)actions;
        for (long a = 0; a < actions; a++) {
                char name[64];
                snprintf(name, sizeof(name), "bench.a%ld", a);
                ev->registry[a].id          = strdup(name);
                ev->registry[a].is_auto     = 1;
                ev->registry[a].policy      = strdup("once");
                ev->registry[a].description = strdup("benchmark action");
        }
        ret = fill_produce(rkp, topic, "registry", ev);
        pd_event_destroy(ev);
        return ret;
}

int main(int argc, char **argv) {
        static const char *const producer_defaults[] = {
            "linger.ms",
            "100",
            "batch.size",
            "1000000",
            "queue.buffering.max.messages",
            "1000000",
            "queue.buffering.max.kbytes",
            "1048576",
            NULL};
        const char *path = NULL;
        long tenants = 100, actions = 10, events = 10, records = 0;
        pd_config_t *conf = NULL;
        rd_kafka_t *rkp   = NULL;
        char errstr[512]  = "";
        int64_t t0, now_ms = pd_now_ms();
        int opt, ret = 1, copart = 0;

        while ((opt = getopt(argc, argv, "c:n:a:e:p")) != -1) {
                switch (opt) {
                case 'p':
                        copart = 1;
                        break;
                case 'c':
                        path = optarg;
                        break;
                case 'n':
                        if (pd_bench_count(optarg, &tenants) || !tenants)
                                goto usage;
                        break;
                case 'a':
                        if (pd_bench_count(optarg, &actions) || !actions)
                                goto usage;
                        break;
                case 'e':
                        if (pd_bench_count(optarg, &events) || !events ||
                            events % 2)
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (!path)
                goto usage;
        pd_log_level = PD_LOG_ERROR;
        if (!(conf = pd_bench_config(path, errstr, sizeof(errstr))))
                goto done;
        rkp = pd_bench_client(conf, RD_KAFKA_PRODUCER, producer_defaults, NULL,
                              fill_dr_cb, NULL, errstr, sizeof(errstr));
        if (!rkp ||
            pd_kafka_topics_ensure(rkp, conf, 10000, errstr, sizeof(errstr)))
                goto done;
        if (copart) {
                pd_kafka_wm_t *wm = NULL;
                size_t cnt;

                if (pd_kafka_watermarks(rkp, conf->topic_results, 10000, &wm,
                                        &cnt, errstr, sizeof(errstr)))
                        goto done;
                free(wm);
                fill_copart = (int32_t)cnt;
        }

        t0 = pd_bench_now_us();
        if (fill_registry(rkp, conf->topic_results, actions))
                goto done;
        records++;
        for (long round = 0; round < events / 2; round++)
                for (long t = 0; t < tenants; t++)
                        for (long a = 0; a < actions; a++) {
                                char tenant[32], action[32], key[80];
                                char trigger[64];
                                int fails = (t + a + round) % 10 == 0;

                                snprintf(tenant, sizeof(tenant), "t%06ld", t);
                                snprintf(action, sizeof(action), "bench.a%ld",
                                         a);
                                snprintf(key, sizeof(key), "%s/%s", tenant,
                                         action);
                                snprintf(trigger, sizeof(trigger),
                                         "fill-%ld-%ld", round, t);
                                for (int fin = 0; fin < 2; fin++) {
                                        pd_event_t *ev = pd_event_new(
                                            fin ? PD_EVT_ACTION_FINISHED
                                                : PD_EVT_ACTION_STARTED);
                                        int r;

                                        ev->ce_source = strdup(
                                            "postdeploy-reactor/bench-fill");
                                        ev->tenant     = strdup(tenant);
                                        ev->action     = strdup(action);
                                        ev->release    = strdup("1.0.0");
                                        ev->trigger_id = strdup(trigger);
                                        ev->reactor    = strdup("bench-fill");
                                        ev->attempt    = (int32_t)round + 1;
                                        ev->started_at = now_ms + round * 1000;
                                        if (fin) {
                                                ev->finished_at =
                                                    ev->started_at + 7;
                                                ev->duration_ms   = 7;
                                                ev->has_exit_code = 1;
                                                ev->status =
                                                    fails ? PD_ST_FAILED
                                                          : PD_ST_SUCCEEDED;
                                                ev->exit_code = fails ? 3 : 0;
                                                ev->error =
                                                    fails ? strdup(
                                                                "exited with "
                                                                "status 3")
                                                          : NULL;
                                                ev->output_tail = strdup(
                                                    fails ? "backfill: 1200 "
                                                            "rows\nerror: "
                                                            "constraint "
                                                            "violated on "
                                                            "row 811\n"
                                                          : "");
                                        }
                                        r = fill_produce(
                                            rkp, conf->topic_results, key, ev);
                                        pd_event_destroy(ev);
                                        if (r)
                                                goto done;
                                        records++;
                                }
                        }
        if (rd_kafka_flush(rkp, 120000) || fill_failed) {
                snprintf(errstr, sizeof(errstr), "flush failed");
                goto done;
        }
        printf("records=%ld\nseconds=%.3f\n", records,
               (double)(pd_bench_now_us() - t0) / 1e6);
        ret = 0;

done:
        if (ret && *errstr)
                fprintf(stderr, "bench_fill_results: %s\n", errstr);
        if (rkp)
                rd_kafka_destroy(rkp);
        pd_config_destroy(conf);
        return ret;

usage:
        fprintf(stderr,
                "Usage: bench_fill_results -c CONFIG -n TENANTS -a "
                "ACTIONS -e EVENTS (even) [-p]\n");
        return 2;
}
