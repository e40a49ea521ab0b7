/*
 * report.c - `postdeploy report`: every action's state per tenant, read from
 * the results topic rather than from any reactor's disk, so it works from
 * any machine and with any number of reactors.
 *
 * Results are keyed tenant/action, so the newest record of a key is that
 * action's state for that tenant (a compacted topic keeps exactly that).
 * The newest registry.published says which actions exist, whether they are
 * auto or manual, and so which never-run actions are pending.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/map.h"
#include "common/xalloc.h"
#include "producer/cli.h"
#include "producer/report.h"
#include "producer/results.h"
#include "producer/term.h"
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
        int has_exit_code;
        int32_t exit_code;
        int32_t attempt;
        int64_t started_at;
        int64_t finished_at;
        int64_t duration_ms;
        /* The event's strings (NULL stays NULL), in str[] after key. */
        const char *tenant, *action, *release, *reactor, *error,
            *output_tail;
        char key[]; /* "tenant/action" */
} pd_result_t;

/* Copies s to *pp and returns where it points (NULL if s is). */
static const char *pd_result_str(char **pp, const char *s) {
        size_t n;
        char *d = *pp;

        if (!s)
                return NULL;
        n = strlen(s) + 1;
        memcpy(d, s, n);
        *pp += n;
        return d;
}

/* The result kept of ev (a started or finished action with a tenant and an
 * action), keyed "tenant/action". Never NULL (aborts on OOM). */
static pd_result_t *pd_result_new(const pd_event_t *ev) {
        const char *strs[] = {ev->release, ev->reactor, ev->error,
                              ev->output_tail};
        size_t tlen = strlen(ev->tenant), alen = strlen(ev->action);
        size_t size = tlen + 1 + alen + 1 + tlen + 1 + alen + 1;
        pd_result_t *res;
        char *p;

        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                if (strs[i])
                        size += strlen(strs[i]) + 1;
        res = pd_xmalloc(sizeof(*res) + size);
        res->type          = ev->type;
        res->status        = ev->status;
        res->retrying      = ev->retrying;
        res->has_exit_code = ev->has_exit_code;
        res->exit_code     = ev->exit_code;
        res->attempt       = ev->attempt;
        res->started_at    = ev->started_at;
        res->finished_at   = ev->finished_at;
        res->duration_ms   = ev->duration_ms;
        p = res->key;
        memcpy(p, ev->tenant, tlen);
        p[tlen] = '/';
        memcpy(p + tlen + 1, ev->action, alen + 1);
        p += tlen + 1 + alen + 1;
        res->tenant      = pd_result_str(&p, ev->tenant);
        res->action      = pd_result_str(&p, ev->action);
        res->release     = pd_result_str(&p, ev->release);
        res->reactor     = pd_result_str(&p, ev->reactor);
        res->error       = pd_result_str(&p, ev->error);
        res->output_tail = pd_result_str(&p, ev->output_tail);
        return res;
}

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
} pd_state_t;

static const char *pd_state_name(pd_state_t s) {
        static const char *const names[] = {
            "pending", "running",     "succeeded", "failed",
            "timed_out", "interrupted", "skipped", "unavailable"};
        return names[s];
}

typedef struct pd_row_s {
        const char *tenant;
        const char *action;
        const pd_regentry_t *reg; /* NULL: not registered any more */
        const pd_result_t *res;   /* newest result, NULL: never ran */
        pd_state_t state;
} pd_row_t;

/*
 * Whether res records a step the reactor left out because a dependency did
 * not succeed. Its status is SKIPPED, as a skip on request is, but only the
 * requested skip marks the action done (pd_txn_verdict's set_done in
 * consumer/reactor.c); this one leaves it pending, and the next deploy plans
 * it again. The reactor's reason tells them apart: "dependency NAME STATUS"
 * here, "skipped on request of WHO" for a requested skip
 * (pd_job_process).
 */
static int pd_result_dependency_skipped(const pd_result_t *res) {
        return res->type == PD_EVT_ACTION_FINISHED &&
               res->status == PD_ST_SKIPPED && res->error &&
               !strncmp(res->error, "dependency ", 11);
}

/* Whether res records a request (skip, reset) rather than a run: no
 * attempt nor duration to show, and its error is the request's reason. */
static int pd_result_is_verdict(const pd_result_t *res) {
        return res->type == PD_EVT_ACTION_FINISHED &&
               (res->status == PD_ST_SKIPPED || res->status == PD_ST_RESET);
}

/* The state the reactor holds the action in, as far as the newest result
 * tells: what it will do on the next deploy. */
static pd_state_t pd_row_state(const pd_row_t *row) {
        if (!row->reg)
                return PD_STATE_UNAVAILABLE;
        if (!row->res)
                return PD_STATE_PENDING;
        if (row->res->type == PD_EVT_ACTION_STARTED)
                return PD_STATE_RUNNING;
        switch (row->res->status) {
        case PD_ST_SUCCEEDED:
                return PD_STATE_SUCCEEDED;
        case PD_ST_TIMED_OUT:
                return PD_STATE_TIMED_OUT;
        case PD_ST_INTERRUPTED:
                return row->res->retrying ? PD_STATE_RUNNING
                                         : PD_STATE_INTERRUPTED;
        case PD_ST_SKIPPED:
                return pd_result_dependency_skipped(row->res)
                           ? PD_STATE_PENDING
                           : PD_STATE_SKIPPED;
        case PD_ST_RESET:
                return PD_STATE_PENDING;
        default:
                return PD_STATE_FAILED;
        }
}

typedef struct pd_report_s {
        pd_cli_t *cli;
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
        size_t row_cap;       /* room in rows */
} pd_report_t;

static void pd_report_usage(FILE *fp) {
        fprintf(fp,
                "Usage: postdeploy report [--tenant T]... [--format "
                "table|json] [options]\n"
                "\n"
                "Shows, per tenant: pending auto actions, pending manual "
                "actions, running,\n"
                "failed (with exit code, error and the end of the output) "
                "and completed\n"
                "(newest first). Read from the results topic, so it works "
                "from any machine.\n"
                "Pending is what the reactor runs on the next deploy: "
                "never run, reset, or\n"
                "left out because a dependency failed (with the reason). "
                "Text that came from\n"
                "an event or an action's output is shown with control "
                "characters escaped\n"
                "(\\x1b); --format json keeps it exact.\n"
                "\n"
                "Options:\n"
                "  -t, --tenant T       only this tenant (repeatable); "
                "default every tenant\n"
                "                       seen in the results and listed in "
                "[cli] tenants\n"
                "  -f, --format F       table (default) or json: one array "
                "with an object per\n"
                "                       (tenant, action)\n"
                "      --timeout D      how long to read (default 60s)\n"
                PD_CLI_COMMON_HELP
                "\n"
                "Exit status: 0 shown; 1 a tenant named with --tenant has "
                "no results (said on\n"
                "stderr with the tenants that have; the others are "
                "shown), or the output could\n"
                "not be written; 2 usage or configuration error; 4 Kafka "
                "unreachable.\n");
}

void pd_report_add(pd_report_t *rp, pd_event_t *ev) {

        if (ev->type == PD_EVT_REGISTRY_PUBLISHED) {
                if (!rp->registry ||
                    ev->published_at >= rp->registry->published_at) {
                        pd_event_destroy(rp->registry);
                        rp->registry = ev;
                        return;
                }
        } else if ((ev->type == PD_EVT_ACTION_STARTED ||
                    ev->type == PD_EVT_ACTION_FINISHED) &&
                   ev->tenant && ev->action) {
                pd_result_t *res = pd_result_new(ev);
                void **vp;

                if (!rp->results)
                        rp->results = pd_map_new();
                vp = pd_map_put(rp->results, res->key, strlen(res->key));
                free(*vp);
                *vp = res;
        }
        pd_event_destroy(ev);
}

/* Keeps the newest result of each (tenant, action), and the newest
 * registry. */
static void pd_report_on_event(pd_event_t *ev, void *opaque) {
        pd_report_add(opaque, ev);
}

static int pd_cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Results by key, "tenant/action": a tenant's results end up together. */
/* By tenant, then action: the order of rp->tenants (pd_cmp_str). A sort by
 * the "tenant/action" key is not that order ("a-b/x" comes before "a/y"),
 * and the rows of tenant "a" beside "a-b" went missing. */
static int pd_cmp_result(const void *a, const void *b) {
        const pd_result_t *x = *(pd_result_t *const *)a;
        const pd_result_t *y = *(pd_result_t *const *)b;
        int c                = strcmp(x->tenant, y->tenant);

        return c ? c
                 : strcmp(x->action ? x->action : "",
                          y->action ? y->action : "");
}

static const pd_regentry_t *pd_report_reg(const pd_report_t *rp,
                                          const char *action) {
        for (size_t i = 0; rp->registry && i < rp->registry->registry_cnt; i++)
                if (!strcmp(rp->registry->registry[i].id, action))
                        return &rp->registry->registry[i];
        return NULL;
}

static void pd_report_add_row(pd_report_t *rp, const char *tenant,
                              const char *action, const pd_regentry_t *reg,
                              const pd_result_t *res) {
        pd_row_t *row;

        rp->rows = pd_xgrow(rp->rows, &rp->row_cap, rp->row_cnt + 1,
                            sizeof(*rp->rows));
        row         = &rp->rows[rp->row_cnt++];
        row->tenant = tenant;
        row->action = action;
        row->reg    = reg;
        row->res    = res;
        row->state  = pd_row_state(row);
}

/* Whether `tenant` is one to show. */
static int pd_report_wants(const pd_report_t *rp, const char *tenant) {
        return !rp->only.cnt || pd_strv_find(&rp->only, tenant) >= 0;
}

/*
 * One row per registered action of each tenant, then its unavailable ones
 * (results of actions no longer registered). One sort of the results by
 * key groups each tenant's entries, so the whole build is O(n log n) in
 * results, whatever the number of tenants.
 */
static void pd_report_build(pd_report_t *rp) {
        pd_result_t **sorted =
                pd_xcalloc(pd_map_count(rp->results) + 1, sizeof(*sorted));
        size_t n = 0, e = 0, it = 0;
        pd_strv_t extra = {0};
        void *v;

        while (pd_map_next(rp->results, &it, NULL, NULL, &v))
                if (pd_report_wants(rp, ((pd_result_t *)v)->tenant))
                        sorted[n++] = v;
        qsort(sorted, n, sizeof(*sorted), pd_cmp_result);
        for (size_t i = 0; i < n; i++)
                if (!rp->tenants.cnt ||
                    strcmp(rp->tenants.v[rp->tenants.cnt - 1],
                           sorted[i]->tenant))
                        pd_strv_add(&rp->tenants, sorted[i]->tenant);

        /* Tenants listed in [cli] show even without results: nothing ran
         * there yet, so everything is pending. A tenant named with --tenant
         * that has no results is more likely a typo than a fresh tenant:
         * it is set aside for pd_report_say_missing instead of being shown
         * as all pending. */
        if (rp->only.cnt) {
                for (size_t i = 0; i < rp->only.cnt; i++)
                        if (pd_strv_find(&rp->tenants, rp->only.v[i]) < 0 &&
                            pd_strv_find(&rp->missing, rp->only.v[i]) < 0)
                                pd_strv_add(&rp->missing, rp->only.v[i]);
        } else {
                for (size_t i = 0; i < rp->cli->conf->tenants.cnt; i++)
                        pd_strv_add(&extra, rp->cli->conf->tenants.v[i]);
        }
        if (extra.cnt) {
                for (size_t i = 0; i < extra.cnt; i++)
                        if (!bsearch(&extra.v[i], rp->tenants.v,
                                     rp->tenants.cnt, sizeof(char *),
                                     pd_cmp_str))
                                pd_strv_add(&rp->tenants, extra.v[i]);
                qsort(rp->tenants.v, rp->tenants.cnt, sizeof(char *),
                      pd_cmp_str);
        }
        pd_strv_clear(&extra);

        rp->tenant_rows = pd_xcalloc(rp->tenants.cnt + 1, sizeof(size_t));
        for (size_t t = 0; t < rp->tenants.cnt; t++) {
                const char *tenant = rp->tenants.v[t];
                size_t tlen        = strlen(tenant);
                char key[512];

                rp->tenant_rows[t] = rp->row_cnt;
                for (size_t i = 0;
                     rp->registry && i < rp->registry->registry_cnt; i++) {
                        const pd_regentry_t *reg = &rp->registry->registry[i];
                        snprintf(key, sizeof(key), "%s/%s", tenant, reg->id);
                        pd_report_add_row(rp, tenant, reg->id, reg,
                                          pd_map_get(rp->results, key, strlen(key)));
                }
                /* This tenant's entries, in the sorted run that starts at
                 * e: those of no registered action are unavailable. */
                while (e < n && strcmp(sorted[e]->tenant, tenant) < 0)
                        e++;
                for (; e < n && !strncmp(sorted[e]->key, tenant, tlen) &&
                       sorted[e]->key[tlen] == '/';
                     e++) {
                        const pd_result_t *res = sorted[e];
                        if (pd_report_reg(rp, res->action))
                                continue;
                        /* A name nobody ever registered was rejected: it
                         * is no action, not even an unavailable one. */
                        if (res->type == PD_EVT_ACTION_FINISHED &&
                            res->status == PD_ST_REJECTED)
                                continue;
                        pd_report_add_row(rp, tenant, res->action, NULL, res);
                }
        }
        rp->tenant_rows[rp->tenants.cnt] = rp->row_cnt;
        free(sorted);
}

static char *pd_fmt_time(int64_t ms, char *buf, size_t size) {
        if (ms <= 0)
                snprintf(buf, size, "-");
        else
                pd_time_format(ms, buf, size);
        return buf;
}

/* Newest first, for the completed section. */
static int pd_cmp_row_newest(const void *a, const void *b) {
        const pd_row_t *x = *(pd_row_t *const *)a, *y = *(pd_row_t *const *)b;
        int64_t tx = x->res ? x->res->finished_at : 0;
        int64_t ty = y->res ? y->res->finished_at : 0;
        return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->action, y->action);
}

/* Writes the n bytes at s to stdout with control characters made visible:
 * everything the table shows that came from an event or an action's
 * output goes through here (or pd_print_text). */
static void pd_print_escaped(const char *s, size_t n) {
        if (pd_term_escape(s, n, stdout))
                pd_cli_out_error(errno);
}

static void pd_print_text(const char *s) {
        if (s)
                pd_print_escaped(s, strlen(s));
}

/* s escaped, then blanks up to width columns (at least one). */
static void pd_print_column(const char *s, int width) {
        size_t n = strlen(s);

        pd_print_escaped(s, n);
        printf("%*s", n < (size_t)width ? width - (int)n + 1 : 1, "");
}

/* ", release R" when the result names one: a skip or a reset may carry
 * none, and "release ," tells nothing. */
static void pd_print_release(const pd_result_t *res, const char *sep) {
        if (!res->release || !*res->release)
                return;
        printf("%srelease ", sep);
        pd_print_text(res->release);
}

static void pd_print_output_tail(const char *tail) {
        const char *p = tail;
        int lines     = 0;

        if (!tail || !*tail)
                return;
        /* The last 10 lines are enough to see why; --format json has all. */
        for (const char *q = tail + strlen(tail); q > tail; q--)
                if (q[-1] == '\n' && q[0] && ++lines == 10) {
                        p = q;
                        break;
                }
        while (*p) {
                size_t n = strcspn(p, "\n");
                printf("        | ");
                pd_print_escaped(p, n);
                printf("\n");
                p += n + (p[n] == '\n');
        }
}

/* Prints one row of a section. */
static void pd_report_table_row(const pd_row_t *row) {
        const pd_result_t *res = row->res;
        const char *desc = row->reg ? row->reg->description : NULL;
        char t1[40];

        printf("    ");
        if (row->state == PD_STATE_PENDING) {
                /* Never ran, reset, or left out for a failed dependency:
                 * the reason says which. */
                pd_print_column(row->action, 32);
                pd_print_text(desc);
                printf("\n");
                if (res && res->error) {
                        printf("        reason: ");
                        pd_print_text(res->error);
                        printf(" (%s",
                               pd_fmt_time(res->finished_at, t1, sizeof(t1)));
                        pd_print_release(res, ", ");
                        printf(")\n");
                }
                return;
        }
        if (row->state == PD_STATE_RUNNING) {
                pd_print_column(row->action, 32);
                printf("since %s, attempt %d, on ",
                       pd_fmt_time(res->started_at, t1, sizeof(t1)),
                       (int)res->attempt);
                pd_print_text(res->reactor);
                pd_print_release(res, " (");
                printf("%s\n", res->release && *res->release ? ")" : "");
                return;
        }
        pd_print_column(row->action, 32);
        printf("%-11s %s", pd_state_name(row->state),
               pd_fmt_time(res->finished_at, t1, sizeof(t1)));
        if (pd_result_is_verdict(res)) {
                /* A request was recorded, nothing ran: no attempt, no
                 * duration, and its error is the request's reason. */
                pd_print_release(res, "  ");
                printf("\n");
                if (res->error) {
                        printf("        reason: ");
                        pd_print_text(res->error);
                        printf("\n");
                }
                return;
        }
        pd_print_release(res, "  ");
        printf("%sattempt %d, %" PRId64 " ms",
               res->release && *res->release ? ", " : "  ", (int)res->attempt,
               res->duration_ms);
        if (res->has_exit_code && res->exit_code)
                printf(", exit %d", (int)res->exit_code);
        printf("\n");
        if (row->state != PD_STATE_SUCCEEDED) {
                if (res->error) {
                        printf("        error: ");
                        pd_print_text(res->error);
                        printf("\n");
                }
                pd_print_output_tail(res->output_tail);
        }
}

/* Prints the rows of tenant t that `want` takes, under a title. */
static void pd_report_table_section(pd_report_t *rp, size_t t,
                                    const char *title,
                                    int (*want)(const pd_row_t *),
                                    int newest_first) {
        size_t from = rp->tenant_rows[t], to = rp->tenant_rows[t + 1];
        pd_row_t **sel = pd_xcalloc(to - from + 1, sizeof(*sel));
        size_t cnt     = 0;

        for (size_t i = from; i < to; i++)
                if (want(&rp->rows[i]))
                        sel[cnt++] = &rp->rows[i];
        if (newest_first)
                qsort(sel, cnt, sizeof(*sel), pd_cmp_row_newest);
        printf("  %s (%zu)\n", title, cnt);
        for (size_t i = 0; i < cnt; i++)
                pd_report_table_row(sel[i]);
        free(sel);
}

static int pd_want_pending_auto(const pd_row_t *r) {
        return r->state == PD_STATE_PENDING && r->reg->is_auto;
}
static int pd_want_pending_manual(const pd_row_t *r) {
        return r->state == PD_STATE_PENDING && !r->reg->is_auto;
}
static int pd_want_running(const pd_row_t *r) {
        return r->state == PD_STATE_RUNNING;
}
static int pd_want_failed(const pd_row_t *r) {
        return r->state == PD_STATE_FAILED || r->state == PD_STATE_TIMED_OUT ||
               r->state == PD_STATE_INTERRUPTED;
}
static int pd_want_completed(const pd_row_t *r) {
        return r->state == PD_STATE_SUCCEEDED || r->state == PD_STATE_SKIPPED;
}
static int pd_want_unavailable(const pd_row_t *r) {
        return r->state == PD_STATE_UNAVAILABLE;
}

/*
 * Says on stderr which tenants named with --tenant have no results, with
 * the tenants that have (the first ten), so a typo is seen as one. Returns
 * whether there were any.
 */
static int pd_report_say_missing(pd_report_t *rp) {
        const char **known;
        size_t cnt = 0, shown = 0, it = 0;
        void *res;

        if (!rp->missing.cnt)
                return 0;
        known = pd_xcalloc(pd_map_count(rp->results) + 1, sizeof(*known));
        while (pd_map_next(rp->results, &it, NULL, NULL, &res))
                known[cnt++] = ((pd_result_t *)res)->tenant;
        qsort(known, cnt, sizeof(*known), pd_cmp_str);
        for (size_t i = 0; i < cnt; i++)
                if (!shown || strcmp(known[shown - 1], known[i]))
                        known[shown++] = known[i];
        for (size_t m = 0; m < rp->missing.cnt; m++) {
                fprintf(stderr,
                        "postdeploy report: no results for tenant '%s' (",
                        rp->missing.v[m]);
                if (!shown)
                        fprintf(stderr, "no tenant has results yet");
                for (size_t i = 0; i < shown && i < 10; i++)
                        fprintf(stderr, "%s%s", i ? ", " : "known tenants: ",
                                known[i]);
                if (shown > 10)
                        fprintf(stderr, ", ... %zu more", shown - 10);
                fprintf(stderr, ")\n");
        }
        free(known);
        return 1;
}

static void pd_report_table(pd_report_t *rp) {
        if (!rp->registry)
                printf("No registry.published on %s yet: has a reactor "
                       "started?\n",
                       rp->cli->conf->topic_results);
        if (!rp->tenants.cnt) {
                /* Tenants named but not found are said on stderr. */
                if (!rp->missing.cnt)
                        printf("No tenant has results yet (name one with "
                               "--tenant T).\n");
                return;
        }
        for (size_t t = 0; t < rp->tenants.cnt; t++) {
                printf("%sTenant %s\n", t ? "\n" : "", rp->tenants.v[t]);
                pd_report_table_section(rp, t, "Pending auto",
                                        pd_want_pending_auto, 0);
                pd_report_table_section(rp, t, "Pending manual",
                                        pd_want_pending_manual, 0);
                pd_report_table_section(rp, t, "Running", pd_want_running, 0);
                pd_report_table_section(rp, t, "Failed", pd_want_failed, 0);
                pd_report_table_section(rp, t, "Completed",
                                        pd_want_completed, 1);
                for (size_t i = rp->tenant_rows[t]; i < rp->tenant_rows[t + 1];
                     i++)
                        if (pd_want_unavailable(&rp->rows[i])) {
                                pd_report_table_section(
                                    rp, t, "Unavailable (no longer "
                                           "registered)",
                                    pd_want_unavailable, 1);
                                break;
                        }
        }
}

/*
 * The JSON report is written here rather than through jansson: building and
 * dumping a jansson object per row was a fifth of the report's CPU with
 * 100,000 rows. Strings are escaped as jansson's JSON_ENSURE_ASCII does
 * (\uXXXX in upper case, surrogate pairs); the layout is an array indented
 * by 2, each row's members by 4 (as Python's json.dumps(indent=2) writes).
 */
typedef struct pd_out_s {
        FILE *fp; /* stdout for `report`, a page's buffer for `serve` */
        size_t len;
        int failed; /* a write failed: the rest is not worth formatting */
        char buf[64 * 1024];
} pd_out_t;

/* Writes n bytes of s to out->fp, unless a write failed already. */
static void pd_out_write(pd_out_t *out, const char *s, size_t n) {
        if (out->failed || !n)
                return;
        if (fwrite(s, 1, n, out->fp) != n) {
                if (out->fp == stdout)
                        pd_cli_out_error(errno);
                out->failed = 1;
        }
}

static void pd_out_flush(pd_out_t *out) {
        pd_out_write(out, out->buf, out->len);
        out->len = 0;
}

/* Appends n bytes of s. */
static void pd_out_add(pd_out_t *out, const char *s, size_t n) {
        if (out->failed)
                return;
        if (out->len + n > sizeof(out->buf))
                pd_out_flush(out);
        if (n > sizeof(out->buf)) {
                pd_out_write(out, s, n);
                return;
        }
        memcpy(out->buf + out->len, s, n);
        out->len += n;
}

static void pd_out_cstr(pd_out_t *out, const char *s) {
        pd_out_add(out, s, strlen(s));
}

/* The code point of the UTF-8 sequence at s, and its length in *lenp.
 * Strings here are valid UTF-8 (the decoder checks them); a byte that
 * starts no sequence stands for itself. */
static uint32_t pd_utf8_next(const unsigned char *s, size_t *lenp) {
        size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
        uint32_t cp = n == 1 ? s[0] : s[0] & (0x3F >> (n - 1));

        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80) {
                        *lenp = 1;
                        return s[0];
                }
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        *lenp = n;
        return cp;
}

/* Appends s as a JSON string, escaped as jansson escapes with
 * JSON_ENSURE_ASCII: \\ \" \b \f \n \r \t, other control characters and
 * everything past ASCII as \uXXXX (a surrogate pair past the BMP). */
static void pd_out_str(pd_out_t *out, const char *s) {
        const unsigned char *p = (const unsigned char *)s, *run = p;
        char seq[16];

        pd_out_add(out, "\"", 1);
        while (*p) {
                const char *text = seq;
                size_t len;
                uint32_t cp;

                if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
                        p++;
                        continue;
                }
                pd_out_add(out, (const char *)run, (size_t)(p - run));
                cp = pd_utf8_next(p, &len);
                switch (cp) {
                case '\\': text = "\\\\"; break;
                case '"': text = "\\\""; break;
                case '\b': text = "\\b"; break;
                case '\f': text = "\\f"; break;
                case '\n': text = "\\n"; break;
                case '\r': text = "\\r"; break;
                case '\t': text = "\\t"; break;
                default:
                        if (cp < 0x10000)
                                snprintf(seq, sizeof(seq), "\\u%04X",
                                         (unsigned)cp);
                        else
                                snprintf(seq, sizeof(seq), "\\u%04X\\u%04X",
                                         (unsigned)(0xD800 |
                                                    ((cp - 0x10000) >> 10)),
                                         (unsigned)(0xDC00 |
                                                    ((cp - 0x10000) & 0x3FF)));
                }
                pd_out_cstr(out, text);
                p += len;
                run = p;
        }
        pd_out_add(out, (const char *)run, (size_t)(p - run));
        pd_out_add(out, "\"", 1);
}

/* What a member of a row holds. */
typedef enum pd_val_e {
        PD_VAL_NULL,
        PD_VAL_STR,  /* jansson leaves out a member whose string is NULL */
        PD_VAL_INT,
        PD_VAL_BOOL,
        PD_VAL_TIME, /* ms since the epoch; null if <= 0 */
} pd_val_t;

/* Appends member `name` of a row object; *cntp counts those written. */
static void pd_out_member(pd_out_t *out, size_t *cntp, const char *name,
                          pd_val_t type, const char *str, int64_t num) {
        char buf[40];

        if (type == PD_VAL_TIME && num <= 0)
                type = PD_VAL_NULL;
        if (type == PD_VAL_STR && !str)
                return;
        pd_out_cstr(out, (*cntp)++ ? ",\n    \"" : "{\n    \"");
        pd_out_cstr(out, name);
        pd_out_add(out, "\": ", 3);
        switch (type) {
        case PD_VAL_NULL:
                pd_out_add(out, "null", 4);
                break;
        case PD_VAL_STR:
                pd_out_str(out, str);
                break;
        case PD_VAL_INT:
                snprintf(buf, sizeof(buf), "%" PRId64, num);
                pd_out_cstr(out, buf);
                break;
        case PD_VAL_BOOL:
                pd_out_cstr(out, num ? "true" : "false");
                break;
        case PD_VAL_TIME:
                pd_time_format(num, buf, sizeof(buf));
                pd_out_str(out, buf);
                break;
        }
}

static void pd_report_json_row(pd_out_t *out, const pd_row_t *row) {
        const pd_result_t *res = row->res;
        int finished = res && res->type == PD_EVT_ACTION_FINISHED;
        int has_exit = finished && res->has_exit_code;
        int has_tail = finished && res->output_tail && *res->output_tail;
        int has_release = res && res->release && *res->release;
        size_t cnt   = 0;

        pd_out_member(out, &cnt, "tenant", PD_VAL_STR, row->tenant, 0);
        pd_out_member(out, &cnt, "action", PD_VAL_STR, row->action, 0);
        pd_out_member(out, &cnt, "auto", row->reg ? PD_VAL_BOOL : PD_VAL_NULL,
                      NULL, row->reg && row->reg->is_auto);
        pd_out_member(out, &cnt, "policy", row->reg ? PD_VAL_STR : PD_VAL_NULL,
                      row->reg ? row->reg->policy : NULL, 0);
        pd_out_member(out, &cnt, "state", PD_VAL_STR,
                      pd_state_name(row->state), 0);
        /* null whenever there is no release, never "": a skip or a reset
         * may carry none, like a never-run action. */
        pd_out_member(out, &cnt, "release", has_release ? PD_VAL_STR
                                                        : PD_VAL_NULL,
                      has_release ? res->release : NULL, 0);
        pd_out_member(out, &cnt, "attempt", res ? PD_VAL_INT : PD_VAL_NULL,
                      NULL, res ? res->attempt : 0);
        pd_out_member(out, &cnt, "exit_code",
                      has_exit ? PD_VAL_INT : PD_VAL_NULL, NULL,
                      has_exit ? res->exit_code : 0);
        pd_out_member(out, &cnt, "error",
                      finished && res->error ? PD_VAL_STR : PD_VAL_NULL,
                      finished ? res->error : NULL, 0);
        pd_out_member(out, &cnt, "output_tail",
                      has_tail ? PD_VAL_STR : PD_VAL_NULL,
                      has_tail ? res->output_tail : NULL, 0);
        pd_out_member(out, &cnt, "duration_ms",
                      finished ? PD_VAL_INT : PD_VAL_NULL, NULL,
                      finished ? res->duration_ms : 0);
        pd_out_member(out, &cnt, "started_at", PD_VAL_TIME, NULL,
                      res ? res->started_at : 0);
        pd_out_member(out, &cnt, "finished_at", PD_VAL_TIME, NULL,
                      finished ? res->finished_at : 0);
        pd_out_cstr(out, cnt ? "\n  }" : "{}");
}

/* Writes rows [from, to) to fp as one JSON array, an object at a time:
 * memory stays that of one row whatever the number of rows. Returns 0, or
 * 1 if a write failed. One caller at a time (the buffer is static: 64 KB
 * is not for the stack); `serve` holds its lock. */
static int pd_report_json(pd_report_t *rp, size_t from, size_t to, FILE *fp) {
        static pd_out_t out;

        out.fp     = fp;
        out.failed = 0;
        out.len    = 0;
        pd_out_add(&out, "[", 1);
        for (size_t i = from; i < to; i++) {
                pd_out_cstr(&out, i > from ? ",\n  " : "\n  ");
                pd_report_json_row(&out, &rp->rows[i]);
        }
        pd_out_cstr(&out, to > from ? "\n]\n" : "]\n");
        pd_out_flush(&out);
        return out.failed;
}

/* Forgets the rows pd_report_build made, keeping the results: the next
 * build starts from them again. */
static void pd_report_unbuild(pd_report_t *rp) {
        pd_strv_clear(&rp->tenants);
        free(rp->tenant_rows);
        rp->tenant_rows = NULL;
        pd_strv_clear(&rp->missing);
        free(rp->rows);
        rp->rows    = NULL;
        rp->row_cnt = 0;
        rp->row_cap = 0;
}

static void pd_report_clear(pd_report_t *rp) {
        pd_report_unbuild(rp);
        pd_map_destroy(rp->results, free);
        rp->results = NULL;
        pd_event_destroy(rp->registry);
        rp->registry = NULL;
        pd_strv_clear(&rp->only);
}

pd_report_t *pd_report_new(pd_cli_t *cli) {
        pd_report_t *rp = pd_xcalloc(1, sizeof(*rp));

        rp->cli = cli;
        return rp;
}

void pd_report_destroy(pd_report_t *rp) {
        if (!rp)
                return;
        pd_report_clear(rp);
        free(rp);
}

int pd_report_json_write(pd_report_t *rp, const char *tenant, FILE *fp) {
        size_t from = 0, to, t;
        int ret = -1;

        pd_report_build(rp);
        to = rp->row_cnt;
        if (tenant) {
                for (t = 0; t < rp->tenants.cnt; t++)
                        if (!strcmp(rp->tenants.v[t], tenant))
                                break;
                if (t == rp->tenants.cnt)
                        goto done;
                from = rp->tenant_rows[t];
                to   = rp->tenant_rows[t + 1];
        }
        ret = pd_report_json(rp, from, to, fp);

done:
        pd_report_unbuild(rp);
        return ret;
}

int pd_cmd_report(pd_cli_t *cli, int argc, char **argv) {
        static const struct option longopts[] = {
            {"tenant", required_argument, NULL, 't'},
            {"format", required_argument, NULL, 'f'},
            {"timeout", required_argument, NULL, 'W'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        pd_report_t rp   = {.cli = cli};
        int json = 0, opt, ret = PD_EXIT_USAGE;
        int64_t timeout_ms = 60000;
        rd_kafka_t *rkc  = NULL;

        optind = 1;
        while ((opt = getopt_long(argc, argv, ":t:f:" PD_CLI_COMMON_SHORTOPTS,
                                  longopts, NULL)) != -1) {
                if (pd_cli_swallowed(cli, argv))
                        goto done;
                switch (opt) {
                case 't':
                        if (!pd_tenant_valid(optarg)) {
                                pd_cli_error(cli,
                                             "'%s' is not a valid tenant "
                                             "name",
                                             optarg);
                                goto done;
                        }
                        pd_strv_add(&rp.only, optarg);
                        break;
                case 'f':
                        if (!strcmp(optarg, "json"))
                                json = 1;
                        else if (!strcmp(optarg, "table"))
                                json = 0;
                        else {
                                pd_cli_error(cli,
                                             "--format: 'table' or 'json', "
                                             "not '%s'",
                                             optarg);
                                goto done;
                        }
                        break;
                case 'W':
                        if (pd_duration_parse(optarg, &timeout_ms) ||
                            timeout_ms <= 0) {
                                pd_cli_error(cli,
                                             "--timeout: '%s' is not a "
                                             "duration",
                                             optarg);
                                goto done;
                        }
                        break;
                case 'h':
                        pd_report_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                goto done;
                        break;
                }
        }
        if (optind < argc) {
                pd_cli_error(cli, "unexpected argument '%s'", argv[optind]);
                goto done;
        }
        pd_cli_connect_within(cli, timeout_ms);
        if (pd_cli_finish(cli))
                goto done;
        rkc = pd_results_consumer(cli);
        if (!rkc || (ret = pd_cli_connect(cli, rkc, 0)))
                goto done;
        if ((ret = pd_results_scan_latest(cli, rkc, timeout_ms,
                                          pd_report_on_event, &rp)))
                goto done;
        pd_report_build(&rp);
        if (json)
                pd_report_json(&rp, 0, rp.row_cnt, stdout);
        else
                pd_report_table(&rp);
        /* In the table, not only on stderr: whoever reads the report must
         * know that someone wrote records the reactors did not sign. */
        if (!json && cli->rejected)
                printf("\n%zu record(s) on %s rejected (not signed with "
                       "[cli] signing_key): not in this report\n",
                       cli->rejected, cli->conf->topic_results);
        ret = pd_report_say_missing(&rp) ? PD_EXIT_FAILED : PD_EXIT_OK;

done:
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        pd_report_clear(&rp);
        return ret;
}
