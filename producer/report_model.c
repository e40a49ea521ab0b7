/*
 * report_model.c - see report_model.h.
 *
 * Results are keyed tenant/action, so the newest record of a key is that
 * action's state for that tenant (a compacted topic keeps exactly that).
 * The newest registry.published says which actions exist, whether they are
 * auto or manual, and so which never-run actions are pending.
 */
#include "producer/report_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "producer/cli.h"

/* Copies s to *pp and returns where it points (NULL if s is). */
static const char *result_str(char **pp, const char *s) {
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
static pd_result_t *result_new(const pd_event_t *ev) {
        const char *strs[] = {ev->release, ev->reactor, ev->error,
                              ev->output_tail};
        size_t tlen = strlen(ev->tenant), alen = strlen(ev->action);
        size_t size = tlen + 1 + alen + 1 + tlen + 1 + alen + 1;
        pd_result_t *res;
        char *p;

        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                if (strs[i])
                        size += strlen(strs[i]) + 1;
        res                = pd_xmalloc(sizeof(*res) + size);
        res->type          = ev->type;
        res->status        = ev->status;
        res->retrying      = ev->retrying;
        res->queued        = ev->type == PD_EVT_ACTION_STARTED && ev->queued;
        res->has_exit_code = ev->has_exit_code;
        res->exit_code     = ev->exit_code;
        res->attempt       = ev->attempt;
        res->started_at    = ev->started_at;
        res->finished_at   = ev->finished_at;
        res->duration_ms   = ev->duration_ms;
        p                  = res->key;
        memcpy(p, ev->tenant, tlen);
        p[tlen] = '/';
        memcpy(p + tlen + 1, ev->action, alen + 1);
        p += tlen + 1 + alen + 1;
        res->tenant      = result_str(&p, ev->tenant);
        res->action      = result_str(&p, ev->action);
        res->release     = result_str(&p, ev->release);
        res->reactor     = result_str(&p, ev->reactor);
        res->error       = result_str(&p, ev->error);
        res->output_tail = result_str(&p, ev->output_tail);
        return res;
}

const char *pd_state_name(pd_state_t s) {
        static const char *const names[] = {
            "pending",     "running", "succeeded",   "failed", "timed_out",
            "interrupted", "skipped", "unavailable", "queued", "cancelled"};
        return names[s];
}

/*
 * Whether res records a step the reactor left out because a dependency did
 * not succeed. Its status is SKIPPED, as a skip on request is, but only the
 * requested skip marks the action done (pd__txn_verdict's set_done in
 * consumer/reactor.c); this one leaves it pending, and the next deploy plans
 * it again. The reactor's reason tells them apart: "dependency NAME STATUS"
 * here, "skipped on request of WHO" for a requested skip
 * (pd_job_process).
 */
static int result_dependency_skipped(const pd_result_t *res) {
        return res->type == PD_EVT_ACTION_FINISHED &&
               res->status == PD_ST_SKIPPED && res->error &&
               !strncmp(res->error, "dependency ", 11);
}

int pd_result_is_verdict(const pd_result_t *res) {
        return res->type == PD_EVT_ACTION_FINISHED &&
               (res->status == PD_ST_SKIPPED || res->status == PD_ST_RESET);
}

/* The state the reactor holds the action in, as far as the newest result
 * tells: what it will do on the next deploy. */
static pd_state_t row_state(const pd_row_t *row) {
        if (!row->reg)
                return PD_STATE_UNAVAILABLE;
        if (!row->res)
                return PD_STATE_PENDING;
        if (row->res->type == PD_EVT_ACTION_STARTED)
                return row->res->queued ? PD_STATE_QUEUED : PD_STATE_RUNNING;
        switch (row->res->status) {
        case PD_ST_SUCCEEDED:
                return PD_STATE_SUCCEEDED;
        case PD_ST_TIMED_OUT:
                return PD_STATE_TIMED_OUT;
        case PD_ST_INTERRUPTED:
                return row->res->retrying ? PD_STATE_RUNNING
                                          : PD_STATE_INTERRUPTED;
        case PD_ST_SKIPPED:
                return result_dependency_skipped(row->res) ? PD_STATE_PENDING
                                                           : PD_STATE_SKIPPED;
        case PD_ST_RESET:
                return PD_STATE_PENDING;
        case PD_ST_CANCELLED:
                return PD_STATE_CANCELLED;
        default:
                return PD_STATE_FAILED;
        }
}

const char *pd_report_paused_by(const pd_report_t *rp, const char *tenant) {
        const char *by = pd_map_get(rp->paused, tenant, strlen(tenant));

        return by ? by : rp->all_paused_by;
}

/* A pause's or a resume's record: the newest of its key says. */
static void report_pause(pd_report_t *rp, const pd_event_t *ev) {
        int pause      = ev->type == PD_EVT_PAUSE_REQUESTED;
        const char *by = ev->requested_by ? ev->requested_by : "";
        void **vp;

        if (ev->all_tenants) {
                free(rp->all_paused_by);
                rp->all_paused_by = pause ? pd_xstrdup(by) : NULL;
                return;
        }
        if (!ev->tenant)
                return;
        if (!rp->paused)
                rp->paused = pd_map_new();
        vp = pd_map_put(rp->paused, ev->tenant, strlen(ev->tenant));
        free(*vp);
        *vp = pause ? pd_xstrdup(by) : NULL;
}

/* An action.progress: kept if it is the newest of its (tenant, action). */
static void report_progress(pd_report_t *rp, const pd_event_t *ev) {
        char key[512];
        pd_result_progress_t *pg;
        void **vp;
        int n;

        if (!ev->tenant || !ev->action)
                return;
        n = snprintf(key, sizeof(key), "%s/%s", ev->tenant, ev->action);
        if (n < 0 || (size_t)n >= sizeof(key))
                return;
        if (!rp->progress)
                rp->progress = pd_map_new();
        vp = pd_map_put(rp->progress, key, (size_t)n);
        if (*vp && ((pd_result_progress_t *)*vp)->at > ev->at)
                return;
        if (!*vp)
                *vp = pd_xmalloc(sizeof(*pg));
        pg          = *vp;
        pg->attempt = ev->attempt;
        pg->done    = ev->done;
        pg->total   = ev->total;
        pg->at      = ev->at;
}

const pd_result_progress_t *pd_report_progress(const pd_report_t *rp,
                                               const pd_row_t *row) {
        const pd_result_progress_t *pg;

        if (row->state != PD_STATE_RUNNING || !row->res || !rp->progress)
                return NULL;
        pg = pd_map_get(rp->progress, row->res->key, strlen(row->res->key));
        /* One of an earlier run (a crash may lose a run's last one) is not
         * this run's. */
        if (!pg || pg->attempt != row->res->attempt ||
            pg->at < row->res->started_at)
                return NULL;
        return pg;
}

void pd_progress_text(int64_t done, int64_t total, char *buf, size_t size) {
        if (total > 0)
                snprintf(buf, size, "%d%% (%lld/%lld)",
                         (int)(done * 100 / total), (long long)done,
                         (long long)total);
        else
                snprintf(buf, size, "%lld done", (long long)done);
}

/* When what res records happened. */
static int64_t result_time(const pd_result_t *res) {
        return res->type == PD_EVT_ACTION_FINISHED ? res->finished_at
                                                   : res->started_at;
}

void pd_report_add(pd_report_t *rp, pd_event_t *ev) {
        if (ev->type == PD_EVT_ACTION_PROGRESS) {
                report_progress(rp, ev);
        } else if (ev->type == PD_EVT_PAUSE_REQUESTED ||
                   ev->type == PD_EVT_RESUME_REQUESTED) {
                report_pause(rp, ev);
        } else if (ev->type == PD_EVT_REGISTRY_PUBLISHED) {
                if (!rp->registry ||
                    ev->published_at >= rp->registry->published_at) {
                        pd_event_destroy(rp->registry);
                        rp->registry = ev;
                        return;
                }
        } else if ((ev->type == PD_EVT_ACTION_STARTED ||
                    ev->type == PD_EVT_ACTION_FINISHED) &&
                   ev->tenant && ev->action) {
                pd_result_t *res = result_new(ev);
                void **vp;

                if (!rp->results)
                        rp->results = pd_map_new();
                vp = pd_map_put(rp->results, res->key, strlen(res->key));
                /* The newest by its own time, not by reading order: one
                 * (tenant, action) may have records on two partitions
                 * (written before results were co-partitioned, or by
                 * another writer), read one partition after the other. */
                if (*vp && result_time(res) < result_time(*vp)) {
                        free(res);
                } else {
                        free(*vp);
                        *vp = res;
                }
        }
        pd_event_destroy(ev);
}

void pd_report_only(pd_report_t *rp, const char *tenant) {
        pd_strv_add(&rp->only, tenant);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Results by key, "tenant/action": a tenant's results end up together. */
/* By tenant, then action: the order of rp->tenants (cmp_str). A sort by
 * the "tenant/action" key is not that order ("a-b/x" comes before "a/y"),
 * and the rows of tenant "a" beside "a-b" went missing. */
static int cmp_result(const void *a, const void *b) {
        const pd_result_t *x = *(pd_result_t *const *)a;
        const pd_result_t *y = *(pd_result_t *const *)b;
        int c                = strcmp(x->tenant, y->tenant);

        return c ? c
                 : strcmp(x->action ? x->action : "",
                          y->action ? y->action : "");
}

static const pd_regentry_t *report_reg(const pd_report_t *rp,
                                       const char *action) {
        for (size_t i = 0; rp->registry && i < rp->registry->registry_cnt; i++)
                if (!strcmp(rp->registry->registry[i].id, action))
                        return &rp->registry->registry[i];
        return NULL;
}

static void report_add_row(pd_report_t *rp, const char *tenant,
                           const char *action, const pd_regentry_t *reg,
                           const pd_result_t *res) {
        pd_row_t *row;

        rp->rows    = pd_xgrow(rp->rows, &rp->row_cap, rp->row_cnt + 1,
                               sizeof(*rp->rows));
        row         = &rp->rows[rp->row_cnt++];
        row->tenant = tenant;
        row->action = action;
        row->reg    = reg;
        row->res    = res;
        row->state  = row_state(row);
}

/* Whether `tenant` is one to show. */
static int report_wants(const pd_report_t *rp, const char *tenant) {
        return !rp->only.cnt || pd_strv_find(&rp->only, tenant) >= 0;
}

/*
 * One row per registered action of each tenant, then its unavailable ones
 * (results of actions no longer registered). One sort of the results by
 * key groups each tenant's entries, so the whole build is O(n log n) in
 * results, whatever the number of tenants.
 */
void pd_report_build(pd_report_t *rp) {
        pd_result_t **sorted =
            pd_xcalloc(pd_map_count(rp->results) + 1, sizeof(*sorted));
        size_t n = 0, e = 0, it = 0;
        pd_strv_t extra = {0};
        void *v;

        while (pd_map_next(rp->results, &it, NULL, NULL, &v))
                if (report_wants(rp, ((pd_result_t *)v)->tenant))
                        sorted[n++] = v;
        qsort(sorted, n, sizeof(*sorted), cmp_result);
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
                        if (!rp->tenants.cnt ||
                            !bsearch(&extra.v[i], rp->tenants.v,
                                     rp->tenants.cnt, sizeof(char *), cmp_str))
                                pd_strv_add(&rp->tenants, extra.v[i]);
                qsort(rp->tenants.v, rp->tenants.cnt, sizeof(char *), cmp_str);
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
                        report_add_row(
                            rp, tenant, reg->id, reg,
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
                        if (report_reg(rp, res->action))
                                continue;
                        /* A name nobody ever registered was rejected: it
                         * is no action, not even an unavailable one. */
                        if (res->type == PD_EVT_ACTION_FINISHED &&
                            res->status == PD_ST_REJECTED)
                                continue;
                        report_add_row(rp, tenant, res->action, NULL, res);
                }
        }
        rp->tenant_rows[rp->tenants.cnt] = rp->row_cnt;
        free(sorted);
}

/* Newest first, for the completed section. */
static int cmp_row_newest(const void *a, const void *b) {
        const pd_row_t *x = *(pd_row_t *const *)a, *y = *(pd_row_t *const *)b;
        int64_t tx = x->res ? x->res->finished_at : 0;
        int64_t ty = y->res ? y->res->finished_at : 0;
        return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->action, y->action);
}

pd_section_t pd_row_section(const pd_row_t *row) {
        switch (row->state) {
        case PD_STATE_PENDING:
                /* A pending row is a registered action's. */
                return row->reg->is_auto ? PD_SECTION_PENDING_AUTO
                                         : PD_SECTION_PENDING_MANUAL;
        case PD_STATE_RUNNING:
        case PD_STATE_QUEUED: /* it will run: shown with what runs */
                return PD_SECTION_RUNNING;
        case PD_STATE_FAILED:
        case PD_STATE_TIMED_OUT:
        case PD_STATE_INTERRUPTED:
        case PD_STATE_CANCELLED:
                return PD_SECTION_FAILED;
        case PD_STATE_SUCCEEDED:
        case PD_STATE_SKIPPED:
                return PD_SECTION_COMPLETED;
        default:
                return PD_SECTION_UNAVAILABLE;
        }
}

size_t pd_report_section_rows(const pd_report_t *rp, size_t t,
                              pd_section_t section, const pd_row_t ***rowsp) {
        size_t from = rp->tenant_rows[t], to = rp->tenant_rows[t + 1];
        const pd_row_t **sel = pd_xcalloc(to - from + 1, sizeof(*sel));
        size_t cnt           = 0;

        for (size_t i = from; i < to; i++)
                if (pd_row_section(&rp->rows[i]) == section)
                        sel[cnt++] = &rp->rows[i];
        /* What finished is read newest first: the latest is the news. */
        if (section == PD_SECTION_COMPLETED ||
            section == PD_SECTION_UNAVAILABLE)
                qsort(sel, cnt, sizeof(*sel), cmp_row_newest);
        *rowsp = sel;
        return cnt;
}

/* Forgets the rows pd_report_build made, keeping the results: the next
 * build starts from them again. */
void pd_report_unbuild(pd_report_t *rp) {
        pd_strv_clear(&rp->tenants);
        free(rp->tenant_rows);
        rp->tenant_rows = NULL;
        pd_strv_clear(&rp->missing);
        free(rp->rows);
        rp->rows    = NULL;
        rp->row_cnt = 0;
        rp->row_cap = 0;
}

static void report_clear(pd_report_t *rp) {
        pd_report_unbuild(rp);
        pd_map_destroy(rp->results, free);
        rp->results = NULL;
        pd_event_destroy(rp->registry);
        rp->registry = NULL;
        pd_strv_clear(&rp->only);
        pd_map_destroy(rp->paused, free);
        rp->paused = NULL;
        free(rp->all_paused_by);
        rp->all_paused_by = NULL;
        pd_map_destroy(rp->progress, free);
        rp->progress = NULL;
}

pd_report_t *pd_report_new(pd_cli_t *cli) {
        pd_report_t *rp = pd_xcalloc(1, sizeof(*rp));

        rp->cli = cli;
        return rp;
}

void pd_report_destroy(pd_report_t *rp) {
        if (!rp)
                return;
        report_clear(rp);
        free(rp);
}
