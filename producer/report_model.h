/*
 * report_model.h - the report's model, without a broker: from the newest
 * result records of each (tenant, action) and the newest registry, each
 * tenant's rows (one per registered action, then the unavailable ones),
 * each row's state and the section it is shown in. The printers (report.c's
 * table, report_json.c) and `serve` read the rows; tests/unit/
 * test_report_model.c feeds records straight in. Private to producer/.
 */
#ifndef PD_REPORT_MODEL_H
#define PD_REPORT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/map.h"
#include "producer/report.h"
#include "schemas/event.h"

/*
 * What the report keeps of the newest result of one (tenant, action): the
 * fields it prints, in one allocation. A decoded event is several times
 * larger, and there is one per (tenant, action): 100,000 in benchmark 5.
 */
typedef struct pd_result_s {
        pd_evtype_t type; /* action.started or action.finished */
        pd_status_t status;
        int retrying;
        int queued; /* action.started: waits for a slot (concurrency) */
        int has_exit_code;
        int32_t exit_code;
        int32_t attempt;
        int64_t started_at;
        int64_t finished_at;
        int64_t duration_ms;
        /* The event's strings (NULL stays NULL), in str[] after key. */
        const char *tenant, *action, *release, *reactor, *error, *output_tail;
        char key[]; /* "tenant/action" */
} pd_result_t;


/* The newest action.progress of one (tenant, action) (its key is
 * tenant/action/progress, apart from the run's records). */
typedef struct pd_progress_s {
        int32_t attempt;
        int64_t done;
        int64_t total; /* 0: not known */
        int64_t at;
} pd_result_progress_t;

/* What the report shows for one (tenant, action). */
typedef enum pd_state_e {
        PD_STATE_PENDING,
        PD_STATE_RUNNING,
        PD_STATE_SUCCEEDED,
        PD_STATE_FAILED,
        PD_STATE_TIMED_OUT,
        PD_STATE_INTERRUPTED,
        PD_STATE_SKIPPED,
        PD_STATE_UNAVAILABLE,
        PD_STATE_QUEUED,    /* waits for a slot of its action's concurrency */
        PD_STATE_CANCELLED, /* stopped on request (cancel): pending again */
} pd_state_t;


/* The state's name, as the JSON report and the table show it. */
const char *pd_state_name(pd_state_t s);

typedef struct pd_row_s {
        const char *tenant;
        const char *action;
        const pd_regentry_t *reg; /* NULL: not registered any more */
        const pd_result_t *res;   /* newest result, NULL: never ran */
        pd_state_t state;
} pd_row_t;
/* Where the table shows a row, in the order it shows them. */
typedef enum pd_section_e {
        PD_SECTION_PENDING_AUTO,
        PD_SECTION_PENDING_MANUAL,
        PD_SECTION_RUNNING,
        PD_SECTION_FAILED,    /* failed, timed out, interrupted */
        PD_SECTION_COMPLETED, /* succeeded, skipped on request */
        PD_SECTION_UNAVAILABLE,
        PD_SECTION_CNT
} pd_section_t;

/* The section row belongs to. */
pd_section_t pd_row_section(const pd_row_t *row);

/* Whether res records a request (skip, reset) rather than a run: no
 * attempt nor duration to show, and its error is the request's reason. */
int pd_result_is_verdict(const pd_result_t *res);

/* The model; its layout is shared with the printers. */
struct pd_report_s {
        pd_cli_t *cli;        /* [cli] tenants, and topic_results to show */
        pd_map_t *results;    /* key "tenant/action": its newest
                               * pd_result_t; NULL until the first */
        pd_event_t *registry; /* newest registry.published */
        pd_strv_t tenants;    /* to show, sorted */
        size_t *tenant_rows;  /* rows of tenants.v[t]: [tenant_rows[t],
                               * tenant_rows[t + 1]) */
        pd_strv_t only;       /* --tenant filters */
        pd_strv_t missing;    /* of those, the ones without results */
        pd_row_t *rows;
        size_t row_cnt;
        size_t row_cap;      /* room in rows */
        pd_map_t *paused;    /* tenant -> who paused it (owned), from the
                              * newest tenant/~pause record */
        char *all_paused_by; /* a pause of every tenant: who; NULL: none */
        pd_map_t *progress;  /* "tenant/action" -> its newest
                              * pd_result_progress_t; NULL until the first */
};

/* The progress to show on row: the newest its run reported, if the row is
 * running and the progress is of its attempt (not of an earlier run);
 * else NULL. */
const pd_result_progress_t *pd_report_progress(const pd_report_t *rp,
                                               const pd_row_t *row);

/* Writes progress as people read it: "40% (400/1000)", or "400 done" when
 * the total is not known. The report and `deploy --wait` say it so. */
void pd_progress_text(int64_t done, int64_t total, char *buf, size_t size);

/* Who paused tenant (its own pause or every tenant's), NULL if it is not
 * paused: the reactors hold its new runs. */
const char *pd_report_paused_by(const pd_report_t *rp, const char *tenant);

/* Shows only `tenant` (repeatable: each adds one); a tenant named so that
 * has no results is not shown but listed in rp->missing by the build. */
void pd_report_only(pd_report_t *rp, const char *tenant);

/*
 * Builds the rows from what pd_report_add kept: rp->tenants sorted, and
 * for each, rows [tenant_rows[t], tenant_rows[t + 1]): one per registered
 * action in the registry's order, then the unavailable ones (results of
 * actions no longer registered; rejected names are none) by action name.
 * Tenants of [cli] tenants without results show, all pending.
 * pd_report_unbuild forgets the rows, keeping the results.
 */
void pd_report_build(pd_report_t *rp);
void pd_report_unbuild(pd_report_t *rp);

/*
 * The rows of tenant t (an index in rp->tenants) in `section`, in the order
 * the table shows them: completed and unavailable ones newest first (by
 * finished_at, then action), the others in row order. Returns how many, and
 * in *rowsp an array the caller frees (never NULL). After pd_report_build.
 */
size_t pd_report_section_rows(const pd_report_t *rp, size_t t,
                              pd_section_t section, const pd_row_t ***rowsp);

#endif
