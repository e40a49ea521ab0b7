/*
 * wait.h - `deploy --wait`, `skip --wait`, `reset --wait`: following the
 * results topic until every action the reactors planned for the published
 * events has a final outcome, and showing it (wait.c).
 */
#ifndef PD_WAIT_H
#define PD_WAIT_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "producer/cli.h"

/* The wait of one deploy (or skip, reset): the name it had in deploy.c. */
typedef struct pd_deploy_s pd_deploy_t;

/*
 * A wait that reads the results topic from the end it has now, on rkc (an
 * assign-only consumer, pd_results_consumer; borrowed, outlives the wait):
 * made *before* publishing, so no result can slip past. cli is borrowed.
 * NULL with the error printed.
 */
pd_deploy_t *pd_wait_new(pd_cli_t *cli, rd_kafka_t *rkc);

/* One published event to wait for: its ce_id, and its tenant as the user
 * named it (NULL: the reactor's default tenant). Both are copied. */
void pd_wait_trigger(pd_deploy_t *d, const char *tenant, const char *ce_id);

/*
 * Waits up to timeout_ms for every planned action of every trigger to
 * finish, printing the plan and each start and outcome on stdout. Ctrl-C
 * (SIGINT, SIGTERM) ends the wait, not the actions. Returns the exit
 * status: PD_EXIT_OK, PD_EXIT_FAILED if an action failed,
 * PD_EXIT_TIMEOUT, or 128 + the signal.
 */
int pd_wait_run(pd_deploy_t *d, int64_t timeout_ms);
/* Makes the wait one for dry runs' plans (deploy --dry-run): it ends when
 * every trigger has its plan, and prints each as text or, with json, as a
 * JSON object per line. */
void pd_wait_dry_run(pd_deploy_t *d, int json);

void pd_wait_destroy(pd_deploy_t *d);

#endif
