/*
 * bench_load.c - the load generator and results follower of benchmarks 1 to
 * 4 and 6. One process publishes real release.deployed events (through
 * pd_event_produce) and reads the results topic, so send and receive times
 * come from one CLOCK_MONOTONIC.
 *
 * Each event's ce_id is "bench-<pid>-<index>", and every result names it
 * (trigger_id in the reactor's records, the key's prefix in the floor's), so
 * a result is matched to its event without a lookup table. Event 0 is a
 * warm-up: it is published first and waited for, so that the consumer
 * group has formed and the clients are connected before anything is timed.
 *
 * An event is complete when the reactor's deploy.planned has been seen and
 * as many final action.finished (retrying = false) as it planned; with
 * --raw (the floor's records) when -a records have arrived.
 *
 * Modes:
 *   burst   publish -n events as fast as possible (tenant PREFIX%06d,
 *           i = 1..n); figures: actions, seconds (first publish to the
 *           record that completes the last event), rate (actions/s)
 *   steady  publish -n events at -r per second from a thread of its own;
 *           figures: publish-to-start and publish-to-finished p50, p99 and
 *           max in ms (start: the first action.started seen; --raw: the
 *           first record), and pickup (the reactor's started_at minus the
 *           send time, wall clock in ms)
 *   once    no warm-up: publish one event for tenant -t and wait for it
 *           (the bare client of benchmark 4's floor)
 *   drain   publish nothing: read the whole results topic, up to its end
 *           when we started, with the report's consumer settings and no
 *           decoding (the floor of benchmark 5); figures: records, bytes
 *
 * Usage: bench_load -c CONFIG -m burst|steady|once|drain [-n EVENTS] [-r RATE]
 *                   [-a ACTIONS] [-p PREFIX] [-t TENANT] [--raw]
 *                   [-T TIMEOUT_S] [-w WARM] [-o TRACE]
 * -w: in steady mode, the first WARM events are sent at the same rate but
 * left out of the figures (the clients' first seconds are not the steady
 * state: leaders and metadata of partitions not yet used are looked up).
 * -o writes one line per event: index, then the send, first-result and
 * completion times in µs after the first send (-1: never), for plots.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
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

typedef enum pd_mode_e {
        PD_MODE_BURST,
        PD_MODE_STEADY,
        PD_MODE_ONCE,
        PD_MODE_DRAIN,
} pd_mode_t;

/* What became of one published event. Times are CLOCK_MONOTONIC µs. */
typedef struct pd_trig_s {
        int64_t sent_us;      /* written by the sender only */
        int64_t sent_wall_ms; /* written by the sender only */
        int64_t first_us;     /* first action.started (or record) */
        int64_t done_us;      /* complete */
        int64_t started_at;   /* the reactor's clock, first started */
        long planned;         /* -1: no deploy.planned yet */
        long finished;
} pd_trig_t;

typedef struct pd_load_s {
        pd_config_t *conf;
        pd_mode_t mode;
        int raw;
        long events, actions, rate;
        long warm; /* -w */
        const char *prefix, *tenant;
        const char *trace; /* -o */
        int64_t timeout_us;
        rd_kafka_t *rkp, *rkc;
        pd_trig_t *trigs; /* events + 1, [0] = warm-up */
        long completed;   /* timed events complete */
        char source[64];
        int failed; /* a publish failed */
} pd_load_t;

/* Publishes event i. The send time is taken right before the produce. */
static int load_publish(pd_load_t *ld, long i, const char *tenant) {
        pd_event_t *ev = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        char id[64], errstr[256];
        rd_kafka_resp_err_t err;

        snprintf(id, sizeof(id), "bench-%d-%ld", (int)getpid(), i);
        ev->ce_id                 = strdup(id);
        ev->ce_source             = strdup(ld->source);
        ev->tenant                = strdup(tenant);
        ev->release               = strdup("1.0.0");
        ev->environment           = strdup("bench");
        ev->selection             = PD_SEL_AUTO;
        ev->requested_by          = strdup("bench_load");
        ev->deployed_at           = pd_now_ms();
        ld->trigs[i].sent_wall_ms = ev->deployed_at;
        ld->trigs[i].sent_us      = pd_bench_now_us();
        for (;;) {
                err = pd_event_produce(ld->rkp, ld->conf->topic_events, tenant,
                                       ev, NULL, errstr, sizeof(errstr));
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(ld->rkp, 10);
        }
        pd_event_destroy(ev);
        rd_kafka_poll(ld->rkp, 0);
        if (err) {
                fprintf(stderr, "bench_load: %s\n", errstr);
                ld->failed = 1;
                return -1;
        }
        return 0;
}

static long load_index(const pd_load_t *ld, const char *id, size_t len) {
        char buf[64];
        const char *dash;
        long i;

        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, id, len);
        buf[len] = '\0';
        if (!(dash = strrchr(buf, '-')) || pd_bench_count(dash + 1, &i) ||
            i > ld->events)
                return -1;
        return i;
}

static void load_check_done(pd_load_t *ld, long i, int64_t now) {
        pd_trig_t *t = &ld->trigs[i];

        if (t->done_us || t->planned < 0 || t->finished < t->planned)
                return;
        t->done_us = now;
        if (i > 0)
                ld->completed++;
}

/* Accounts one results record received at `now`. */
static void load_record(pd_load_t *ld, const rd_kafka_message_t *rkm,
                        int64_t now) {
        char errstr[256];
        pd_event_t *ev;
        pd_trig_t *t;
        long i;

        if (ld->raw) {
                const char *slash;

                if (!rkm->key)
                        return;
                slash = memchr(rkm->key, '/', rkm->key_len);
                i     = load_index(ld, rkm->key,
                               slash ? (size_t)(slash - (const char *)rkm->key)
                                         : rkm->key_len);
                if (i < 0)
                        return;
                t = &ld->trigs[i];
                if (!t->first_us)
                        t->first_us = now;
                t->planned = ld->actions;
                t->finished++;
                load_check_done(ld, i, now);
                return;
        }
        if (!(ev = pd_event_from_message(rkm, errstr, sizeof(errstr))))
                return;
        i = ev->trigger_id
                ? load_index(ld, ev->trigger_id, strlen(ev->trigger_id))
                : -1;
        if (i >= 0) {
                t = &ld->trigs[i];
                switch (ev->type) {
                case PD_EVT_DEPLOY_PLANNED:
                        if (t->planned < 0)
                                t->planned = (long)ev->actions.cnt;
                        break;
                case PD_EVT_ACTION_STARTED:
                        if (!t->first_us) {
                                t->first_us   = now;
                                t->started_at = ev->started_at;
                        }
                        break;
                case PD_EVT_ACTION_FINISHED:
                        if (!t->first_us)
                                t->first_us = now;
                        if (!ev->retrying)
                                t->finished++;
                        break;
                default:
                        break;
                }
                load_check_done(ld, i, now);
        }
        pd_event_destroy(ev);
}

/* Reads results until `until()` holds or the deadline passes. Returns 0,
 * or -1 on timeout. */
static int load_follow(pd_load_t *ld, int (*until)(const pd_load_t *ld),
                       int64_t deadline_us) {
        while (!until(ld)) {
                rd_kafka_message_t *rkm;

                if (pd_bench_now_us() > deadline_us)
                        return -1;
                rkm = rd_kafka_consumer_poll(ld->rkc, 100);
                if (!rkm)
                        continue;
                if (!rkm->err)
                        load_record(ld, rkm, pd_bench_now_us());
                rd_kafka_message_destroy(rkm);
        }
        return 0;
}

static int load_warm(const pd_load_t *ld) {
        return ld->trigs[0].done_us != 0;
}

static int load_all(const pd_load_t *ld) {
        return ld->completed == ld->events;
}

/* The steady sender: event i at t0 + i / rate. */
typedef struct pd_sender_s {
        pd_load_t *ld;
        int64_t t0;
} pd_sender_t;

static void *sender_main(void *arg) {
        pd_sender_t *s = arg;
        pd_load_t *ld  = s->ld;
        char tenant[64];

        for (long i = 1; i <= ld->events; i++) {
                pd_bench_sleep_until(s->t0 + (i - 1) * 1000000 / ld->rate);
                snprintf(tenant, sizeof(tenant), "%s%06ld", ld->prefix, i);
                if (load_publish(ld, i, tenant))
                        break;
        }
        rd_kafka_flush(ld->rkp, 10000);
        return NULL;
}

static void load_print_lat(const char *name, int64_t *v, size_t cnt) {
        printf("%s_p50_ms=%.2f\n", name,
               pd_bench_quantile(v, cnt, 0.50) / 1000.0);
        printf("%s_p99_ms=%.2f\n", name,
               pd_bench_quantile(v, cnt, 0.99) / 1000.0);
        printf("%s_max_ms=%.2f\n", name,
               pd_bench_quantile(v, cnt, 1.0) / 1000.0);
}

static void load_trace(const pd_load_t *ld) {
        int64_t t0 = ld->trigs[1].sent_us;
        FILE *fp   = fopen(ld->trace, "w");

        if (!fp) {
                perror(ld->trace);
                return;
        }
        fprintf(fp, "# event sent_us first_us done_us\n");
        for (long i = 1; i <= ld->events; i++) {
                const pd_trig_t *t = &ld->trigs[i];
                fprintf(fp, "%ld %" PRId64 " %" PRId64 " %" PRId64 "\n", i,
                        t->sent_us - t0, t->first_us ? t->first_us - t0 : -1,
                        t->done_us ? t->done_us - t0 : -1);
        }
        fclose(fp);
}

/* Prints the figures of the mode; returns 0 when every event completed. */
static int load_report(pd_load_t *ld) {
        long lost = ld->events - ld->completed;

        if (ld->trace)
                load_trace(ld);
        printf("events=%ld\nlost=%ld\n", ld->events - ld->warm, lost);
        if (ld->mode == PD_MODE_BURST) {
                int64_t first = ld->trigs[1].sent_us, last = 0;
                long actions = 0;

                for (long i = 1; i <= ld->events; i++) {
                        actions += ld->trigs[i].finished;
                        if (ld->trigs[i].done_us > last)
                                last = ld->trigs[i].done_us;
                }
                printf("actions=%ld\nseconds=%.3f\nrate=%.1f\n", actions,
                       (double)(last - first) / 1e6,
                       last > first
                           ? (double)actions * 1e6 / (double)(last - first)
                           : 0.0);
        } else if (ld->mode == PD_MODE_STEADY) {
                int64_t *start =
                    calloc((size_t)ld->events + 1, sizeof(int64_t));
                int64_t *fin = calloc((size_t)ld->events + 1, sizeof(int64_t));
                int64_t *pickup =
                    calloc((size_t)ld->events + 1, sizeof(int64_t));
                size_t cnt = 0, pcnt = 0;

                if (!start || !fin || !pickup)
                        abort();
                for (long i = 1 + ld->warm; i <= ld->events; i++) {
                        const pd_trig_t *t = &ld->trigs[i];
                        if (!t->done_us)
                                continue;
                        start[cnt] = t->first_us - t->sent_us;
                        fin[cnt++] = t->done_us - t->sent_us;
                        if (t->started_at)
                                pickup[pcnt++] =
                                    (t->started_at - t->sent_wall_ms) * 1000;
                }
                printf("sent_rate=%.1f\n",
                       ld->events > 1
                           ? (double)(ld->events - 1) * 1e6 /
                                 (double)(ld->trigs[ld->events].sent_us -
                                          ld->trigs[1].sent_us)
                           : 0.0);
                load_print_lat("start", start, cnt);
                load_print_lat("finish", fin, cnt);
                if (pcnt)
                        load_print_lat("pickup", pickup, pcnt);
                free(start);
                free(fin);
                free(pickup);
        }
        return lost ? -1 : 0;
}

/* Reads the results topic from its start to the end offsets it has now,
 * the way `postdeploy report` does, without decoding. */
static int load_drain(pd_load_t *ld, char *errstr, size_t errstr_size) {
        const char *topic = ld->conf->topic_results;
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        pd_kafka_wm_t *wm;
        size_t cnt, left = 0;
        long records  = 0;
        int64_t bytes = 0;

        if (pd_kafka_watermarks(ld->rkc, topic, 10000, &wm, &cnt, errstr,
                                errstr_size))
                return -1;
        parts = rd_kafka_topic_partition_list_new((int)cnt);
        for (size_t i = 0; i < cnt; i++)
                if (wm[i].hi > wm[i].lo) {
                        rd_kafka_topic_partition_list_add(parts, topic,
                                                          wm[i].partition)
                            ->offset = wm[i].lo;
                        left++;
                }
        err = rd_kafka_assign(ld->rkc, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (!err && left) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(ld->rkc, 500);

                if (!rkm)
                        continue;
                if (!rkm->err) {
                        records++;
                        bytes += (int64_t)rkm->len;
                        for (size_t i = 0; i < cnt; i++)
                                if (wm[i].partition == rkm->partition &&
                                    rkm->offset + 1 == wm[i].hi)
                                        left--;
                }
                rd_kafka_message_destroy(rkm);
        }
        free(wm);
        if (err) {
                snprintf(errstr, errstr_size, "cannot read %s: %s", topic,
                         rd_kafka_err2str(err));
                return -1;
        }
        printf("records=%ld\nbytes=%" PRId64 "\n", records, bytes);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"raw", no_argument, NULL, 'R'}, {NULL, 0, NULL, 0}};
        static const char *const producer_defaults[] = {
            /* The CLI's publish settings (producer/deploy.c). */
            "enable.idempotence", "true", "linger.ms", "0", NULL};
        static const char *const consumer_defaults[] = {
            /* The CLI's (producer/report.c, deploy.c). */
            "enable.auto.commit",
            "false",
            "enable.partition.eof",
            "false",
            "group.id",
            "bench-follow",
            "fetch.max.bytes",
            "104857600",
            NULL};
        pd_load_t ld     = {.events     = 1,
                            .actions    = 1,
                            .rate       = 100,
                            .prefix     = "t",
                            .tenant     = "ci",
                            .timeout_us = 300 * 1000000LL};
        const char *path = NULL, *mode = "burst";
        char errstr[512] = "";
        long timeout_s;
        int opt, ret = 1;

        while ((opt = getopt_long(argc, argv, "c:m:n:r:a:p:t:T:o:w:", longopts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'c':
                        path = optarg;
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 'n':
                        if (pd_bench_count(optarg, &ld.events) || !ld.events)
                                goto usage;
                        break;
                case 'r':
                        if (pd_bench_count(optarg, &ld.rate) || !ld.rate)
                                goto usage;
                        break;
                case 'a':
                        if (pd_bench_count(optarg, &ld.actions))
                                goto usage;
                        break;
                case 'p':
                        ld.prefix = optarg;
                        break;
                case 't':
                        ld.tenant = optarg;
                        break;
                case 'T':
                        if (pd_bench_count(optarg, &timeout_s) || !timeout_s)
                                goto usage;
                        ld.timeout_us = timeout_s * 1000000LL;
                        break;
                case 'R':
                        ld.raw = 1;
                        break;
                case 'o':
                        ld.trace = optarg;
                        break;
                case 'w':
                        if (pd_bench_count(optarg, &ld.warm))
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (!path)
                goto usage;
        if (!strcmp(mode, "burst"))
                ld.mode = PD_MODE_BURST;
        else if (!strcmp(mode, "steady"))
                ld.mode = PD_MODE_STEADY;
        else if (!strcmp(mode, "once"))
                ld.mode = PD_MODE_ONCE;
        else if (!strcmp(mode, "drain"))
                ld.mode = PD_MODE_DRAIN;
        else
                goto usage;
        if (ld.mode == PD_MODE_ONCE)
                ld.events = 1;
        if (ld.mode == PD_MODE_STEADY)
                ld.events += ld.warm;
        pd_log_level = PD_LOG_ERROR;
        snprintf(ld.source, sizeof(ld.source), "bench-load/%d", (int)getpid());

        ld.trigs = calloc((size_t)ld.events + 1, sizeof(*ld.trigs));
        if (!ld.trigs)
                abort();
        for (long i = 0; i <= ld.events; i++)
                ld.trigs[i].planned = -1;
        if (!(ld.conf = pd_bench_config(path, errstr, sizeof(errstr))))
                goto done;
        ld.rkp = pd_bench_client(ld.conf, RD_KAFKA_PRODUCER, producer_defaults,
                                 NULL, NULL, NULL, errstr, sizeof(errstr));
        if (ld.rkp)
                ld.rkc = pd_bench_client(ld.conf, RD_KAFKA_CONSUMER,
                                         consumer_defaults, NULL, NULL, NULL,
                                         errstr, sizeof(errstr));
        if (ld.mode == PD_MODE_DRAIN) {
                if (ld.rkc && !load_drain(&ld, errstr, sizeof(errstr)))
                        ret = 0;
                goto done;
        }
        if (!ld.rkp || !ld.rkc ||
            pd_kafka_topics_ensure(ld.rkp, ld.conf, 10000, errstr,
                                   sizeof(errstr)) ||
            pd_bench_follow_end(ld.rkc, ld.conf->topic_results, errstr,
                                sizeof(errstr)))
                goto done;

        if (ld.mode == PD_MODE_ONCE) {
                if (load_publish(&ld, 1, ld.tenant) ||
                    load_follow(&ld, load_all,
                                pd_bench_now_us() + ld.timeout_us)) {
                        snprintf(errstr, sizeof(errstr),
                                 "the event did not complete");
                        goto done;
                }
                ret = 0;
                goto done;
        }

        /* Warm-up: the group has formed and every client is connected. */
        if (load_publish(&ld, 0, "warmup") ||
            load_follow(&ld, load_warm, pd_bench_now_us() + 120 * 1000000LL)) {
                snprintf(errstr, sizeof(errstr),
                         "the warm-up event did not complete in 120 s: is "
                         "the reactor (or the floor) running?");
                goto done;
        }

        if (ld.mode == PD_MODE_BURST) {
                char tenant[64];

                for (long i = 1; i <= ld.events; i++) {
                        snprintf(tenant, sizeof(tenant), "%s%06ld", ld.prefix,
                                 i);
                        if (load_publish(&ld, i, tenant))
                                goto done;
                }
                rd_kafka_flush(ld.rkp, 10000);
                load_follow(&ld, load_all, pd_bench_now_us() + ld.timeout_us);
        } else {
                pd_sender_t s = {&ld, pd_bench_now_us() + 10000};
                pthread_t thread;

                if (pthread_create(&thread, NULL, sender_main, &s)) {
                        snprintf(errstr, sizeof(errstr), "no thread");
                        goto done;
                }
                /* Only this thread reads results; the sender only writes
                 * send times, which are read once it has been joined. */
                load_follow(
                    &ld, load_all,
                    s.t0 + ld.events * 1000000LL / ld.rate + ld.timeout_us);
                pthread_join(thread, NULL);
        }
        if (ld.failed)
                goto done;
        ret = load_report(&ld) ? 1 : 0;
        if (ret)
                snprintf(errstr, sizeof(errstr), "%ld event(s) not complete",
                         ld.events - ld.completed);

done:
        if (ret && *errstr)
                fprintf(stderr, "bench_load: %s\n", errstr);
        if (ld.rkc) {
                rd_kafka_consumer_close(ld.rkc);
                rd_kafka_destroy(ld.rkc);
        }
        if (ld.rkp)
                rd_kafka_destroy(ld.rkp);
        pd_config_destroy(ld.conf);
        free(ld.trigs);
        return ret;

usage:
        fprintf(stderr,
                "Usage: bench_load -c CONFIG -m burst|steady|once|drain [-n "
                "EVENTS] [-r RATE]\n"
                "                  [-a ACTIONS] [-p PREFIX] [-t TENANT] "
                "[--raw] [-T TIMEOUT_S] [-w WARM] [-o TRACE]\n");
        return 2;
}
