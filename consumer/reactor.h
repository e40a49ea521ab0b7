/*
 * reactor.h - the postdeploy reactor: consumes release.deployed events,
 * runs the selected actions per tenant, records every run and publishes the
 * outcome.
 *
 * Threads: the caller's thread runs pd_reactor_run(), which polls the
 * consumer, queues each event, serves delivery reports and stores offsets.
 * `workers` worker threads take the oldest queued event whose tenant no
 * other worker is busy with: a tenant's actions run in order and the same
 * (tenant, action) never runs twice at once, while a slow tenant holds up
 * no other. Every record the reactor produces goes
 * through the store's outbox first, in the same transaction as the outcome
 * it reports, so nothing is acknowledged that is not durable and no result
 * is lost.
 */
#ifndef PD_REACTOR_H
#define PD_REACTOR_H

#include <signal.h>
#include <stddef.h>

#include "common/config.h"

typedef struct pd_reactor_s pd_reactor_t;

/*
 * Opens the store, creates the Kafka clients for `brokers`, makes sure the
 * topics exist, recovers what a previous run left (unfinished runs,
 * unpublished results) and publishes the registry. `conf` is borrowed and
 * must outlive the reactor. Returns NULL with errstr on failure.
 */
pd_reactor_t *pd_reactor_new(const pd_config_t *conf, const char *brokers,
                             char *errstr, size_t errstr_size);

/*
 * Makes the producer and the consumer pd_reactor_new would make from conf,
 * with no broker list so that they never connect, and destroys them: what
 * librdkafka refuses only across properties (`acks` below `all` with the
 * idempotence the reactor sets) is then a configuration error at --check
 * and before start-up creates anything. Returns 0, or -1 with
 * "FILE: [kafka] for the producer: librdkafka's message" in errstr.
 */
int pd_reactor_kafka_check(const pd_config_t *conf, char *errstr,
                           size_t errstr_size);

/*
 * Runs until *stop becomes non-zero (set it from a signal handler), then
 * shuts down cleanly: no new events, running actions get shutdown_grace to
 * finish and are then interrupted, results are flushed, offsets committed,
 * the group left. Returns 0 on a clean stop, -1 on a fatal error (logged),
 * 1 when the state store lost a batch to a fault that may clear (disk
 * full, an I/O error): what the reactor holds in memory is then ahead of
 * what is durable, so the caller destroys it and makes a new one, which
 * recovers from the durable state as a restart does.
 */
int pd_reactor_run(pd_reactor_t *r, volatile sig_atomic_t *stop);

/*
 * Config reload (SIGHUP). When *reload becomes non-zero, pd_reactor_run asks
 * load() for a new, validated config (NULL with errstr: the running one is
 * kept and the error logged), stops handing out events, waits until no
 * action runs, swaps the configs, republishes the registry and goes on.
 * Settings that only take effect at start (the [kafka] section, group.id,
 * state, name, workers, the topics, signing_key, state_sync) keep their
 * running values, with a warning. Then release(old) is called for the
 * config that was replaced. Both run on the caller's thread.
 */
typedef struct pd_reload_s {
        volatile sig_atomic_t *reload;
        pd_config_t *(*load)(void *opaque, char *errstr, size_t errstr_size);
        void (*release)(void *opaque, const pd_config_t *old);
        void *opaque;
} pd_reload_t;

/* Sets how to reload; reload may be NULL (no reloads). */
void pd_reactor_set_reload(pd_reactor_t *r, const pd_reload_t *reload);

/* Frees the reactor; call after pd_reactor_run returned. */
void pd_reactor_destroy(pd_reactor_t *r);

/*
 * For fault-injection tests: hook(point) is called at every named point of
 * an event's life that PD_CRASH_AT can name ("event_done.before_commit",
 * "run.before_spawn", ...), on the thread that passes it, so a test can
 * inject a fault exactly there (an I/O error in the commit that follows,
 * a dead supervisor). NULL (the default) turns it off. Process-wide; set
 * it before pd_reactor_new.
 */
void pd_reactor_set_fault_hook(void (*hook)(const char *point));

#endif
