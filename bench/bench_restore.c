/*
 * bench_restore.c - benchmark 10: how long a reactor takes to restore one
 * partition of the results topic (consumer/restore.c, shared_group mode)
 * that holds N tenant/action records, against its floor, a bare consumer
 * reading the same partition to its end with the same settings
 * (read_committed, end of partition reported) and doing nothing with it.
 *
 * It fills the config's results topic, made with one partition, with N
 * action.finished records of another store, encoded as the reactor encodes
 * them (pd__finished_encode: a small share skipped or failed, the rest
 * succeeded), N / ACTIONS tenants x ACTIONS actions, one record per key.
 * Then it reads them back with the floor and restores them into a new
 * store (state_sync false, as the reactor's default), and restores once
 * more, with nothing new, from the checkpoint.
 *
 * Usage: bench_restore -c CONFIG -d DIR -n RECORDS [-a ACTIONS]
 * DIR gets the two state files. Prints records=, floor_ms=, restore_ms=,
 * applied=, again_ms= on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "consumer/reactor_int.h"

static void die(const char *what, const char *why) {
        fprintf(stderr, "bench_restore: %s: %s\n", what, why);
        exit(1);
}

static pd_store_t *store_at(const char *dir, const char *name) {
        char path[1024], errstr[512];
        pd_store_t *st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        unlink(path);
        if (!(st = pd_store_open(path, 0, errstr, sizeof(errstr))))
                die(path, errstr);
        return st;
}

/* Produces n action.finished records through pub's producer. */
static void fill(pd_reactor_t *pub, long n, int actions) {
        char tenant[32], action[32], trig[64];
        int64_t now = pd_now_ms();

        for (long i = 0; i < n; i++) {
                pd_run_t run = {0};
                pd_outrec_t o;

                snprintf(tenant, sizeof(tenant), "t%06ld", i / actions);
                snprintf(action, sizeof(action), "bench.a%ld", i % actions);
                snprintf(trig, sizeof(trig), "trigger-%ld", i / actions);
                run.tenant      = tenant;
                run.action      = action;
                run.release     = "1.0.0";
                run.trigger_id  = trig;
                run.attempt     = 1;
                run.started_at  = now;
                run.finished_at = now + 3;
                run.duration_ms = 3;
                run.status      = PD_ST_SUCCEEDED;
                if (i % 50 == 7) {
                        run.status = PD_ST_SKIPPED;
                        run.error  = "skipped on request of bench";
                } else if (i % 50 == 9) {
                        run.status        = PD_ST_FAILED;
                        run.has_exit_code = 1;
                        run.exit_code     = 1;
                }
                pd__finished_encode(pub, &run, "", 0, &o);
                pd__produce_rec(pub, PD_OUTBOX_NONE, PD_PART_ANY, o.topic,
                                o.key, o.headers, o.headers_len, o.value,
                                o.value_len);
                pd__outrec_clear(&o);
                rd_kafka_poll(pub->producer, 0);
        }
        if (rd_kafka_flush(pub->producer, 60000))
                die("fill", "records not delivered in 60 s");
}

/* The floor: partition 0 read to its end, nothing done with it. Returns
 * the records read. */
static long floor_read(const pd_config_t *conf) {
        static const char *const extra[] = {"group.id",
                                            "bench-restore-floor",
                                            "isolation.level",
                                            "read_committed",
                                            "enable.partition.eof",
                                            "true",
                                            "enable.auto.commit",
                                            "false",
                                            NULL};
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_message_t *batch[256];
        rd_kafka_queue_t *rkqu;
        rd_kafka_t *rk;
        char errstr[512];
        long cnt = 0;
        int done = 0;
        int64_t lo, hi;

        if (!(rk = pd_bench_client(conf, RD_KAFKA_CONSUMER, NULL, extra, NULL,
                                   NULL, errstr, sizeof(errstr))))
                die("floor consumer", errstr);
        /* As the restore does: from the first offset to the end seen at
         * the start, without waiting for the end-of-partition fetch. */
        if (rd_kafka_query_watermark_offsets(rk, conf->topic_results, 0, &lo,
                                             &hi, 10000))
                die("floor", "no watermarks");
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, conf->topic_results, 0)
            ->offset = lo;
        if (rd_kafka_assign(rk, parts))
                die("floor", "cannot assign");
        rkqu = rd_kafka_queue_get_consumer(rk);
        while (!done) {
                ssize_t n = rd_kafka_consume_batch_queue(rkqu, 100, batch, 256);

                for (ssize_t i = 0; i < n; i++) {
                        if (batch[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                done = 1;
                        else if (!batch[i]->err && !done) {
                                cnt++;
                                done = batch[i]->offset + 1 >= hi;
                        }
                        rd_kafka_message_destroy(batch[i]);
                }
        }
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return cnt;
}

static int64_t restore(const pd_config_t *conf, pd_store_t *st,
                       pd_restore_stats_t *stats) {
        pd_restore_opts_t o = {0};
        rd_kafka_conf_t *kconf;
        char brokers[1024], errstr[512];
        int64_t t0;

        pd_kafka_brokers(conf, 0, brokers, sizeof(brokers));
        if (!(kconf =
                  pd_kafka_conf(conf, NULL, brokers, errstr, sizeof(errstr))))
                die("restore", errstr);
        o.topic           = conf->topic_results;
        o.part            = 0;
        o.idle_timeout_ms = 30000;
        t0                = pd_bench_now_us();
        if (pd_restore_apply(st, kconf, &o, stats, errstr, sizeof(errstr)))
                die("restore", errstr);
        return pd_bench_now_us() - t0;
}

int main(int argc, char **argv) {
        const char *cfg = NULL, *dir = NULL;
        pd_restore_stats_t stats;
        pd_reactor_t pub = {0};
        pd_config_t *conf;
        long n      = 100000, floor_cnt;
        int actions = 10, opt;
        char errstr[512];
        int64_t t0, floor_us, restore_us, again_us;

        while ((opt = getopt(argc, argv, "c:d:n:a:")) != -1) {
                switch (opt) {
                case 'c':
                        cfg = optarg;
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'n':
                        n = atol(optarg);
                        break;
                case 'a':
                        actions = atoi(optarg);
                        break;
                default:
                        fprintf(stderr,
                                "usage: bench_restore -c CONFIG -d DIR "
                                "-n RECORDS [-a ACTIONS]\n");
                        return 2;
                }
        }
        if (!cfg || !dir || n <= 0 || actions <= 0) {
                fprintf(stderr,
                        "usage: bench_restore -c CONFIG -d DIR "
                        "-n RECORDS [-a ACTIONS]\n");
                return 2;
        }
        pd_log_level = PD_LOG_ERROR;
        if (!(conf = pd_bench_config(cfg, errstr, sizeof(errstr))))
                die(cfg, errstr);
        /* One partition: every record is the restored partition's. */
        if (pd_config_set(conf, "topics", "partitions", "1", errstr,
                          sizeof(errstr)))
                die("topics.partitions", errstr);

        pub.conf = conf;
        pub.st   = store_at(dir, "theirs.db");
        snprintf(pub.name, sizeof(pub.name), "bench-theirs");
        snprintf(pub.source, sizeof(pub.source), "postdeploy-reactor/bench");
        if (!(pub.producer = pd_bench_client(
                  conf, RD_KAFKA_PRODUCER, pd_bench_reactor_producer_defaults,
                  NULL, NULL, NULL, errstr, sizeof(errstr))))
                die("producer", errstr);
        if (pd_kafka_topics_ensure(pub.producer, conf, 30000, errstr,
                                   sizeof(errstr)))
                die("topics", errstr);
        fill(&pub, n, actions);

        t0        = pd_bench_now_us();
        floor_cnt = floor_read(conf);
        floor_us  = pd_bench_now_us() - t0;

        {
                pd_store_t *st = store_at(dir, "ours.db");

                /* As the reactor's handle: its committer checkpoints the
                 * WAL from a handle of its own (consumer/txn.c). */
                if (pd_store_checkpoints_manual(st))
                        die("store", pd_store_errmsg(st));

                restore_us = restore(conf, st, &stats);
                if (stats.records != floor_cnt)
                        die("restore", "read another count than the floor");
                printf(
                    "records=%ld\nfloor_ms=%.1f\nrestore_ms=%.1f\n"
                    "applied=%" PRId64 "\n",
                    floor_cnt, floor_us / 1000.0, restore_us / 1000.0,
                    stats.applied);
                again_us = restore(conf, st, &stats);
                printf("again_ms=%.1f\nagain_records=%" PRId64 "\n",
                       again_us / 1000.0, stats.records);
                pd_store_close(st);
        }
        rd_kafka_destroy(pub.producer);
        pd_store_close(pub.st);
        pd_config_destroy(conf);
        return 0;
}
