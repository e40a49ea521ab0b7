/*
 * bench_floor_kafka.c - the Kafka floor of benchmarks 1, 3, 4 and 6: a bare
 * librdkafka pipeline that does what the reactor must do on the wire and
 * nothing else.
 *
 * It joins the reactor's consumer group on the events topic with the
 * reactor's consumer settings, and for each event produces `-a` records to
 * the results topic with the reactor's producer settings (linger,
 * idempotence, one copy per record, the same headers and a value of the
 * same size as a real action.finished). It stores each event's offset as the
 * reactor does. No decoding, no state, no actions: whatever the reactor
 * spends beyond this is its own work.
 *
 * Each record's key is "<ce_id>/<n>", so bench_load --raw can tell which
 * event caused it without decoding anything.
 *
 * Usage: bench_floor_kafka -c CONFIG -a ACTIONS [-n EVENTS]
 * Stops after EVENTS events (0: at SIGTERM/SIGINT), flushes, prints
 * events=, records= and peak_rss_kb= on stdout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/clock.h"
#include "common/log.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void)sig;
        stop = 1;
}

/* An action.finished as the reactor writes it for a no-op action: the
 * floor sends its bytes, so both sides put records of one size on the
 * wire. The caller owns *valuep and *hdrsp. */
static int floor_template(void **valuep, size_t *lenp,
                          rd_kafka_headers_t **hdrsp) {
        pd_event_t *ev = pd_event_new(PD_EVT_ACTION_FINISHED);
        char errstr[256];
        int ret;

        ev->tenant        = strdup("t000000");
        ev->action        = strdup("bench.a0");
        ev->release       = strdup("1.0.0");
        ev->trigger_id    = strdup("00000000-0000-4000-8000-000000000000");
        ev->reactor       = strdup("bench-floor:00000");
        ev->attempt       = 1;
        ev->started_at    = pd_now_ms();
        ev->finished_at   = ev->started_at;
        ev->output_tail   = strdup("");
        ev->status        = PD_ST_SUCCEEDED;
        ev->has_exit_code = 1;
        pd_event_stamp(ev, "postdeploy-reactor/bench-floor:00000");
        ret = pd_event_encode(ev, valuep, lenp, errstr, sizeof(errstr));
        if (ret)
                fprintf(stderr, "bench_floor_kafka: %s\n", errstr);
        else
                *hdrsp = pd_event_headers(ev);
        pd_event_destroy(ev);
        return ret;
}

static void floor_produce(rd_kafka_t *rkp, const char *topic, const char *key,
                          const void *value, size_t len,
                          const rd_kafka_headers_t *hdrs) {
        for (;;) {
                rd_kafka_headers_t *copy = rd_kafka_headers_copy(hdrs);
                rd_kafka_resp_err_t err =
                    rd_kafka_producev(rkp, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_END);

                if (!err)
                        return;
                rd_kafka_headers_destroy(copy);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        fprintf(stderr, "bench_floor_kafka: produce: %s\n",
                                rd_kafka_err2str(err));
                        return;
                }
                rd_kafka_poll(rkp, 10);
        }
}

int main(int argc, char **argv) {
        const char *path = NULL;
        long actions = 1, events = 0, seen = 0, records = 0;
        pd_config_t *conf = NULL;
        rd_kafka_t *rkc = NULL, *rkp = NULL;
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_headers_t *hdrs = NULL;
        const char *group[]      = {"group.id", NULL, NULL};
        void *value              = NULL;
        size_t len               = 0;
        char errstr[512]         = "";
        int opt, ret = 1;

        while ((opt = getopt(argc, argv, "c:a:n:")) != -1) {
                switch (opt) {
                case 'c':
                        path = optarg;
                        break;
                case 'a':
                        if (pd_bench_count(optarg, &actions) || !actions)
                                goto usage;
                        break;
                case 'n':
                        if (pd_bench_count(optarg, &events))
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (!path)
                goto usage;
        pd_log_level = PD_LOG_ERROR;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        if (!(conf = pd_bench_config(path, errstr, sizeof(errstr))) ||
            floor_template(&value, &len, &hdrs))
                goto done;
        group[1] = conf->group_id;
        rkp      = pd_bench_client(conf, RD_KAFKA_PRODUCER,
                                   pd_bench_reactor_producer_defaults, NULL, NULL,
                                   NULL, errstr, sizeof(errstr));
        if (rkp)
                rkc = pd_bench_client(conf, RD_KAFKA_CONSUMER,
                                      pd_bench_reactor_consumer_defaults, group,
                                      NULL, NULL, errstr, sizeof(errstr));
        if (!rkp || !rkc)
                goto done;
        rd_kafka_poll_set_consumer(rkc);
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, conf->topic_events,
                                          RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(rkc, topics)) {
                snprintf(errstr, sizeof(errstr), "cannot subscribe");
                rd_kafka_topic_partition_list_destroy(topics);
                goto done;
        }
        rd_kafka_topic_partition_list_destroy(topics);

        /* The reactor's loop: poll 50 ms, serve the producer, store the
         * offset of what is done. */
        while (!stop && (!events || seen < events)) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rkc, 50);
                rd_kafka_headers_t *mh;
                const void *id;
                size_t id_len;

                rd_kafka_poll(rkp, 0);
                if (!rkm)
                        continue;
                if (rkm->err) {
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                if (!rd_kafka_message_headers(rkm, &mh) &&
                    !rd_kafka_header_get_last(mh, "ce_id", &id, &id_len)) {
                        for (long i = 0; i < actions; i++) {
                                char key[320];
                                snprintf(key, sizeof(key), "%.*s/%ld",
                                         (int)id_len, (const char *)id, i);
                                floor_produce(rkp, conf->topic_results, key,
                                              value, len, hdrs);
                                records++;
                        }
                }
                rd_kafka_offset_store(rkm->rkt, rkm->partition, rkm->offset);
                rd_kafka_message_destroy(rkm);
                seen++;
        }
        if (rd_kafka_flush(rkp, 30000)) {
                snprintf(errstr, sizeof(errstr), "flush timed out");
                goto done;
        }
        printf("events=%ld\nrecords=%ld\npeak_rss_kb=%ld\n", seen, records,
               pd_bench_peak_rss_kb());
        ret = 0;

done:
        if (ret)
                fprintf(stderr, "bench_floor_kafka: %s\n", errstr);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        if (rkp)
                rd_kafka_destroy(rkp);
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        free(value);
        pd_config_destroy(conf);
        return ret;

usage:
        fprintf(stderr,
                "Usage: bench_floor_kafka -c CONFIG -a ACTIONS [-n EVENTS]\n");
        return 2;
}
