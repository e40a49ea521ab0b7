/*
 * results.h - every read of the results topic by the CLI: the whole topic up
 * to the end it had when the read began (report), its newest record per key
 * (report), only partition 0, where the registry lives (the registered
 * actions), or followed as records arrive (serve, deploy --wait).
 */
#ifndef PD_RESULTS_H
#define PD_RESULTS_H

#include <signal.h>
#include <stdint.h>

#include "producer/cli.h"
#include "schemas/event.h"

/* Called for each decodable event, in partition order; takes ownership. */
typedef void(pd_results_cb_t)(pd_event_t *ev, void *opaque);

/*
 * Reads every partition of the results topic (only partition 0 when
 * registry_only) from its first offset to the end it had when called,
 * calling cb for each event. Records that do not decode are skipped (a
 * debug line says why), and so are those pd_results_check refuses. Returns 0,
 * or an exit code (PD_EXIT_KAFKA) with the error printed.
 */
int pd_results_scan(pd_cli_t *cli, rd_kafka_t *rkc, int registry_only,
                    int64_t timeout_ms, pd_results_cb_t *cb, void *opaque);

/*
 * Like pd_results_scan over every partition, but only for the results of
 * tenants (keyed "tenant/action"; every result when tenants is NULL or
 * empty; records keyed otherwise, the registry, always), and calls cb only
 * for the newest record of each key (what a compacted topic keeps): records are
 * kept undecoded while reading, one allocation per key holding the value
 * and the headers the decoder reads (a newer record is written over it),
 * and only the winners are decoded, after reading, each record being freed
 * as soon as its event is handed to cb. A winner that does not decode is
 * skipped: an older record of its key does not take its place.
 *
 * With tenants, it reads their partitions and partition 0 (the registry) to
 * their end and every other partition only up to its first record marked
 * PD_COPART_HEADER (records before it may be the tenants', written before
 * results were co-partitioned; after it, each tenant's records are on its
 * events' partition); every partition in full when that cannot be sure
 * (partition counts that differ, a [kafka] partitioner of its own, a
 * partition's first marked record not of a tenant whose events go there).
 */
int pd_results_scan_latest(pd_cli_t *cli, rd_kafka_t *rkc,
                           const pd_strv_t *tenants, int64_t timeout_ms,
                           pd_results_cb_t *cb, void *opaque);

/*
 * Reads every partition of the results topic from its start, then each
 * record as it arrives, until *stop is set (polled every 200 ms), calling
 * cb for each event in partition order, as pd_results_scan does; records
 * that do not decode or that pd_results_check refuses are skipped. Once
 * every partition is read to the end it had when called, caught_up (if not
 * NULL) is called, once. The partitions are those the topic has when
 * called. Both callbacks run on the calling thread. Returns 0 once
 * stopped, or an exit code with the error printed.
 */
int pd_results_follow(pd_cli_t *cli, rd_kafka_t *rkc,
                      volatile sig_atomic_t *stop, pd_results_cb_t *cb,
                      void (*caught_up)(void *opaque), void *opaque);

/*
 * A follow of the results topic, for a caller that runs its own loop
 * (`deploy --wait`: a deadline, a status line, signals). _new assigns
 * every partition the topic has when called: from its start, or with
 * from_end from its end then, so that only records written after the call
 * are read (a wait takes it before publishing, so no result slips past).
 * NULL with the error printed. _destroy unassigns. One thread.
 */
typedef struct pd_results_follow_s pd_results_follow_t;
pd_results_follow_t *pd_results_follow_new(pd_cli_t *cli, rd_kafka_t *rkc,
                                           int from_end);
void pd_results_follow_destroy(pd_results_follow_t *f);

/* Waits up to timeout_ms for the next record and hands its event to cb
 * (which takes ownership), as pd_results_scan does: records that do not
 * decode or that pd_results_check refuses are skipped. Returns 1 if a
 * record (or a consumer error) came, 0 if nothing did. */
int pd_results_follow_poll(pd_results_follow_t *f, int timeout_ms,
                           pd_results_cb_t *cb, void *opaque);

/* Whether every partition has been read to the end it had when the follow
 * began (at once with from_end). */
int pd_results_follow_caught_up(const pd_results_follow_t *f);

/*
 * The newest registry.published, in *regp (NULL if no reactor has published
 * one yet; the caller destroys it). Returns 0 or an exit code.
 */
int pd_results_registry(pd_cli_t *cli, rd_kafka_t *rkc, int64_t timeout_ms,
                        pd_event_t **regp);

/*
 * With a key in cli->secret, whether rkm is a result a reactor signed with
 * it: 0 if so (or if there is no key). Otherwise -1, after a warning on
 * stderr naming the record (partition, offset) and why it is refused, and
 * one more in cli->rejected; the caller then ignores the record. Records
 * without a value (tombstones) carry nothing to trust and are not checked.
 * Every reader below calls it for each record it reads.
 */
int pd_results_check(pd_cli_t *cli, const rd_kafka_message_t *rkm);

/* A consumer for pd_results_scan: assigns partitions itself, never joins a
 * group nor commits. NULL with the error printed. */
rd_kafka_t *pd_results_consumer(pd_cli_t *cli);

#endif
