/*
 * metrics.h - what the reactor counts, for Prometheus, and what its health
 * probes answer (served by consumer/http.c).
 *
 * One registry per process: a reactor that a store fault makes again keeps
 * counting into the same counters, as Prometheus expects of a process that
 * did not restart. Every function is thread-safe and cheap enough to call
 * on the reactor's hot paths; none of them fails.
 */
#ifndef PD_METRICS_H
#define PD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* postdeploy_events_total{outcome}: what became of a consumed record. */
typedef enum pd_metrics_outcome_e {
        PD_METRICS_PROCESSED,     /* its actions ran (or had run) */
        PD_METRICS_DUPLICATE,     /* seen before: nothing ran again */
        PD_METRICS_DEAD_LETTERED, /* sent to the dead-letter topic */
        PD_METRICS_OUTCOME_CNT
} pd_metrics_outcome_t;

/* postdeploy_dead_letters_total{reason}: classes of reasons, a bounded set
 * (the free text of the reason is in the record's postdeploy_error). */
typedef enum pd_metrics_dlq_e {
        PD_METRICS_DLQ_TOO_LARGE,  /* over max_event_bytes */
        PD_METRICS_DLQ_SIGNATURE,  /* unsigned, badly signed, too old */
        PD_METRICS_DLQ_WRONG_TYPE, /* a ce_type the topic does not take */
        PD_METRICS_DLQ_INVALID,    /* undecodable or invalid event */
        PD_METRICS_DLQ_CNT
} pd_metrics_dlq_t;

/* Conditions /readyz needs besides what the consumer's statistics say. */
typedef enum pd_metrics_cond_e {
        PD_METRICS_RESTORED,  /* state restored: recovery done */
        PD_METRICS_STORE_OK,  /* the store commits (no lost batch, no
                               * store-fault retry going on) */
        PD_METRICS_BROKER_OK, /* a broker answers; also set from the
                               * consumer's statistics */
        PD_METRICS_COND_CNT
} pd_metrics_cond_t;

/* Turns counting of Kafka statistics on (pd_metrics_kafka_conf does
 * nothing before): called once, when the HTTP server starts. */
void pd_metrics_enable(void);

/* An action's attempt finished with `status` (a pd_status_name) after
 * duration_ms; counted once its outcome is recorded. */
void pd_metrics_action_done(const char *action, const char *status,
                            int64_t duration_ms);
/* An action started (+1) or ended (-1) running. */
void pd_metrics_running_add(int delta);
void pd_metrics_event(pd_metrics_outcome_t outcome);
/* A record went to the dead-letter topic: counts the event outcome too. */
void pd_metrics_dead_letter(pd_metrics_dlq_t reason);
/* Records in the outbox, produced and not yet acknowledged by the broker:
 * add on produce, subtract on delivery; set(0) when a new reactor starts
 * (it produces again what the outbox holds). */
void pd_metrics_outbox_add(int64_t delta);
void pd_metrics_outbox_set(int64_t n);
/* A monotonic clock in seconds, for timing what is observed. */
double pd_metrics_clock(void);
/* A batch commit of the state store took `seconds`. */
void pd_metrics_commit_observe(double seconds);
/* The poll loop turned (for /livez). */
void pd_metrics_tick(void);
void pd_metrics_cond_set(pd_metrics_cond_t cond, int ok);
/* The reactor's consumer is gone: its group membership and broker state
 * are unknown until a new one reports. */
void pd_metrics_kafka_reset(void);

/* When enabled, sets statistics.interval.ms and the statistics callback on
 * a consumer's conf (consumer lag, rebalances, group and broker state). */
void pd_metrics_kafka_conf(rd_kafka_conf_t *kconf);

/* The statistics callback itself, exposed for tests: parses librdkafka's
 * statistics JSON. Returns 0 (librdkafka frees the JSON). */
int pd_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                        void *opaque);

/* The registry in the Prometheus text format 0.0.4. Returns a malloc'd
 * string the caller frees. */
char *pd_metrics_render(void);

/* Whether the poll loop turned in the last `max_ms` before now_ms: 0, or -1
 * with the reason in `reason`. */
int pd_metrics_live(int64_t now_ms, int64_t max_ms, char *reason,
                    size_t reason_size);
/* Whether the reactor is ready: joined the group with an assignment, state
 * restored, store writable, a broker up. 0, or -1 with the first reason
 * that fails in `reason`. */
int pd_metrics_ready(char *reason, size_t reason_size);

/* Back to zero; for tests. */
void pd_metrics_reset(void);

#endif
