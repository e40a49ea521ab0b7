/*
 * report.h - the report: the newest result of each (tenant, action) and
 * the newest registry, and the rows derived from them (the model,
 * report_model.h), and their JSON. Both `postdeploy report` and
 * `postdeploy serve` show it, so the status page never says other than the
 * report.
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
 * Writes rows [from, to) of a built model (report_model.h) to fp as one JSON
 * array, an object at a time: memory stays that of one row whatever the
 * number of rows. Every write is checked: returns 0, or 1 once a write
 * failed (nothing more is written; with fp stdout, errno is kept for
 * main's "cannot write output"). One caller at a time (a static buffer);
 * `serve` holds its lock.
 */
int pd_report_json(pd_report_t *rp, size_t from, size_t to, FILE *fp);

/*
 * Writes the rows of every tenant (tenant NULL) or of one tenant to fp,
 * exactly as `report --format json` prints them. Returns 0, or -1 when
 * tenant has no row (nothing is written then), or 1 when a write failed.
 */
int pd_report_json_write(pd_report_t *rp, const char *tenant, FILE *fp);

#endif
