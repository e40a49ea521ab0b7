/*
 * report.h - the report's model: the newest result of each (tenant,
 * action) and the newest registry, and the rows derived from them. Both
 * `postdeploy report` and `postdeploy serve` show it, so the status page
 * never says other than the report.
 */
#ifndef PD_REPORT_H
#define PD_REPORT_H

#include <stdio.h>

#include "producer/cli.h"
#include "schemas/event.h"

typedef struct pd_report_s pd_report_t;

/* An empty model; cli (borrowed, outlives it) gives [cli] tenants, which
 * are shown even before they have results. Never NULL. */
pd_report_t *pd_report_new(pd_cli_t *cli);
void pd_report_destroy(pd_report_t *rp);

/* Keeps ev if it is a result or a registry newer than what is kept; takes
 * ownership of ev either way. */
void pd_report_add(pd_report_t *rp, pd_event_t *ev);

/*
 * Writes the rows of every tenant (tenant NULL) or of one tenant to fp,
 * exactly as `report --format json` prints them. Returns 0, or -1 when
 * tenant has no row (nothing is written then), or 1 when a write failed.
 */
int pd_report_json_write(pd_report_t *rp, const char *tenant, FILE *fp);

#endif
