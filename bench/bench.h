/*
 * bench.h - what the benchmark programs in bench/ share.
 *
 * The benchmarks are not tests: bench/run.sh starts these programs against
 * the real broker and prints one table (docs/BENCHMARKS.md says how to read
 * it). Every program reads the same generated INI file as the reactor under
 * test, so topics, partitions and [kafka] properties cannot drift between
 * the reactor and its floor. Programs print their figures on stdout as
 * `name=value` lines, which run.sh collects; diagnostics go to stderr.
 */
#ifndef PD_BENCH_H
#define PD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/*
 * The reactor's own client settings (consumer/reactor.c, pd_reactor_new).
 * They are private there, so they are copied here: keep them in step, or
 * the floors stop being the reactor's floors.
 */
extern const char *const pd_bench_reactor_producer_defaults[];
extern const char *const pd_bench_reactor_consumer_defaults[];

/* Microseconds on CLOCK_MONOTONIC: every latency here is a difference of
 * two of these, taken in one process. */
int64_t pd_bench_now_us(void);

/* Sleeps until CLOCK_MONOTONIC reaches at_us (returns at once if past). */
void pd_bench_sleep_until(int64_t at_us);

/*
 * Loads the generated config at path. Returns a new config (caller
 * destroys) or NULL with errstr.
 */
pd_config_t *pd_bench_config(const char *path, char *errstr,
                             size_t errstr_size);

/*
 * A Kafka client of `type` with `defaults` (NULL-terminated name, value
 * list, may be NULL), then conf's [kafka], then `extra` (same form, may be
 * NULL), and the config's brokers. dr_cb is set for producers when not
 * NULL; opaque is the client's opaque. Returns NULL with errstr.
 */
rd_kafka_t *pd_bench_client(
    const pd_config_t *conf, rd_kafka_type_t type, const char *const *defaults,
    const char *const *extra,
    void (*dr_cb)(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque),
    void *opaque, char *errstr, size_t errstr_size);

/*
 * The number of partitions of `topic` once each has a leader (waits up to
 * 30 s for a new topic). Returns it, or -1 with errstr.
 */
int pd_bench_partition_cnt(rd_kafka_t *rk, const char *topic, char *errstr,
                           size_t errstr_size);

/*
 * Assigns every partition of `topic` to rkc at its current end, so that
 * whatever is produced afterwards is read and nothing before it: one
 * metadata request, then one ListOffsets request per broker. Returns 0 or
 * -1 with errstr.
 */
int pd_bench_follow_end(rd_kafka_t *rkc, const char *topic, char *errstr,
                        size_t errstr_size);

/*
 * The value at quantile q (0..1, nearest rank) of v[0..cnt), in the same
 * unit; sorts v. 0 when cnt is 0.
 */
double pd_bench_quantile(int64_t *v, size_t cnt, double q);

/* This process's peak resident set (VmHWM), in KiB; -1 if unknown. */
long pd_bench_peak_rss_kb(void);

/*
 * Parses a non-negative decimal count into *np. Returns 0 or
 * -1 when it is not one.
 */
int pd_bench_count(const char *s, long *np);

#endif
