/*
 * bench.c - see bench.h.
 */
#include "bench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "common/log.h"

/* consumer/reactor.c, pd_reactor_new(): producer_defaults. */
const char *const pd_bench_reactor_producer_defaults[] = {
    "enable.idempotence", "true", "linger.ms", "1",
    "message.timeout.ms", "0",    NULL};

/* consumer/reactor.c, pd_reactor_new(): consumer_defaults. */
const char *const pd_bench_reactor_consumer_defaults[] = {
    "enable.auto.commit",
    "true",
    "enable.auto.offset.store",
    "false",
    "auto.offset.reset",
    "earliest",
    "enable.partition.eof",
    "false",
    NULL};

int64_t pd_bench_now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pd_bench_sleep_until(int64_t at_us) {
        struct timespec ts = {(time_t)(at_us / 1000000),
                              (long)(at_us % 1000000) * 1000L};

        if (at_us <= pd_bench_now_us())
                return;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
               EINTR)
                ;
}

pd_config_t *pd_bench_config(const char *path, char *errstr,
                             size_t errstr_size) {
        pd_config_t *conf = pd_config_new();

        if (pd_config_load(conf, path, errstr, errstr_size)) {
                pd_config_destroy(conf);
                return NULL;
        }
        return conf;
}

static int bench_conf_set(rd_kafka_conf_t *kconf, const char *const *props,
                          char *errstr, size_t errstr_size) {
        for (size_t i = 0; props && props[i]; i += 2)
                if (rd_kafka_conf_set(kconf, props[i], props[i + 1], errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        return -1;
        return 0;
}

rd_kafka_t *pd_bench_client(
    const pd_config_t *conf, rd_kafka_type_t type, const char *const *defaults,
    const char *const *extra,
    void (*dr_cb)(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque),
    void *opaque, char *errstr, size_t errstr_size) {
        char brokers[1024];
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        pd_kafka_brokers(conf, 0, brokers, sizeof(brokers));
        kconf = pd_kafka_conf(conf, defaults, brokers, errstr, errstr_size);
        if (!kconf)
                return NULL;
        if (bench_conf_set(kconf, extra, errstr, errstr_size)) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        }
        if (dr_cb)
                rd_kafka_conf_set_dr_msg_cb(kconf, dr_cb);
        rd_kafka_conf_set_opaque(kconf, opaque);
        rk = rd_kafka_new(type, kconf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(kconf);
        return rk;
}

int pd_bench_partition_cnt(rd_kafka_t *rk, const char *topic, char *errstr,
                           size_t errstr_size) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int64_t deadline      = pd_bench_now_us() + 30000000;
        int cnt               = -1;

        /* A topic just created has partitions without leaders for a
         * moment: ask again until every one has one. */
        while (cnt < 0) {
                const struct rd_kafka_metadata *md = NULL;
                rd_kafka_resp_err_t err;

                err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
                if (!err && md->topic_cnt == 1)
                        err = md->topics[0].err;
                if (!err) {
                        cnt = md->topics[0].partition_cnt;
                        for (int i = 0; i < cnt; i++)
                                if (md->topics[0].partitions[i].leader < 0 ||
                                    md->topics[0].partitions[i].err)
                                        cnt = -1;
                }
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (cnt >= 0)
                        break;
                if (pd_bench_now_us() > deadline) {
                        snprintf(errstr, errstr_size,
                                 "%s: no leader for every partition: %s", topic,
                                 rd_kafka_err2str(err));
                        break;
                }
                rd_kafka_poll(rk, 100);
        }
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

int pd_bench_follow_end(rd_kafka_t *rkc, const char *topic, char *errstr,
                        size_t errstr_size) {
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        int cnt;

        /* The partitions (and that the topic is ready) from the library,
         * then every end offset in one ListOffsets request per broker:
         * offsets_for_times with RD_KAFKA_OFFSET_END as the timestamp
         * asks for the latest offsets. */
        if ((cnt = pd_bench_partition_cnt(rkc, topic, errstr, errstr_size)) < 0)
                return -1;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
                    RD_KAFKA_OFFSET_END;
        /* Leaders of a new topic may still be moving: ask again. */
        for (int tries = 0; tries < 100; tries++) {
                err = rd_kafka_offsets_for_times(rkc, parts, 30000);
                for (int i = 0; !err && i < parts->cnt; i++)
                        err = parts->elems[i].err;
                if (err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
                    err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
                    err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        break;
                for (int i = 0; i < parts->cnt; i++) {
                        parts->elems[i].offset = RD_KAFKA_OFFSET_END;
                        parts->elems[i].err    = 0;
                }
                rd_kafka_poll(rkc, 100);
        }
        if (!err)
                err = rd_kafka_assign(rkc, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                snprintf(errstr, errstr_size, "cannot read %s: %s", topic,
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static int bench_cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

double pd_bench_quantile(int64_t *v, size_t cnt, double q) {
        size_t rank;

        if (!cnt)
                return 0;
        qsort(v, cnt, sizeof(*v), bench_cmp_i64);
        /* Nearest rank: the smallest value with at least q of the samples
         * at or below it. */
        rank = (size_t)(q * (double)cnt + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > cnt)
                rank = cnt;
        return (double)v[rank - 1];
}

long pd_bench_peak_rss_kb(void) {
        FILE *fp = fopen("/proc/self/status", "r");
        char line[256];
        long kb = -1;

        if (!fp)
                return -1;
        while (fgets(line, sizeof(line), fp))
                if (!strncmp(line, "VmHWM:", 6)) {
                        kb = strtol(line + 6, NULL, 10);
                        break;
                }
        fclose(fp);
        return kb;
}

int pd_bench_count(const char *s, long *np) {
        char *end;
        long n;

        errno = 0;
        n     = strtol(s, &end, 10);
        if (errno || end == s || *end || n < 0)
                return -1;
        *np = n;
        return 0;
}
