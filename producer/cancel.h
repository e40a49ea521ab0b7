/*
 * cancel.h - `postdeploy cancel --wait`: the reactors' answers to the
 * cancel requests (actions.cancel_answered) and the CANCELLED outcomes of
 * what they stopped, read from the results topic.
 */
#ifndef PD_CANCEL_H
#define PD_CANCEL_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "producer/cli.h"
#include "producer/results.h"

typedef struct pd_cancel_wait_s pd_cancel_wait_t;

/* Starts following the results topic from its end, before the requests
 * are published, so that no answer slips past. NULL with the error
 * printed. */
pd_cancel_wait_t *pd_cancel_wait_new(pd_cli_t *cli, rd_kafka_t *rkc);
/* A request published: its ce_id and tenant (the default one if NULL). */
void pd_cancel_wait_request(pd_cancel_wait_t *cw, const char *ce_id,
                            const char *tenant);
/* A pause or resume (type) published for tenant (NULL: every tenant):
 * --wait waits for the reactor's record of it on the results topic. */
void pd_cancel_wait_pause(pd_cancel_wait_t *cw, pd_evtype_t type,
                          const char *tenant);
/* Prints each answer and each stop as it comes, until every request is
 * answered and what it stopped is recorded. Returns PD_EXIT_OK (every
 * named action was running and is CANCELLED), PD_EXIT_FAILED (one was not
 * running, or ended otherwise), or PD_EXIT_TIMEOUT. */
int pd_cancel_wait_run(pd_cancel_wait_t *cw, int64_t timeout_ms);
void pd_cancel_wait_destroy(pd_cancel_wait_t *cw);

#endif
