/*
 * cancel.c - `postdeploy cancel --wait`: follows the results topic for the
 * reactors' answers to our cancel requests and for the action.finished of
 * each run they stopped. The two may come in either order (they are keyed
 * differently, so on different partitions): a CANCELLED seen before its
 * answer is kept until the answer says it was ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/map.h"
#include "common/xalloc.h"
#include "producer/cancel.h"
#include "producer/term.h"
#include "schemas/event.h"

struct pd_cancel_wait_s {
        pd_cli_t *cli;
        pd_results_follow_t *follow;
        pd_map_t *requests; /* ce_id -> 1 while unanswered */
        size_t unanswered;
        pd_map_t *stopping; /* "tenant/action" -> 1: answer said stopped */
        pd_map_t *early;    /* "tenant/action" -> pd_event_t*: finished
                             * CANCELLED before its answer came */
        size_t stopping_cnt;
        pd_map_t *pauses; /* "P tenant" / "R tenant" ("P *": every tenant)
                           * -> 1 while not confirmed */
        size_t pause_cnt;
        int failed; /* something was not running, or not CANCELLED */
};

pd_cancel_wait_t *pd_cancel_wait_new(pd_cli_t *cli, rd_kafka_t *rkc) {
        pd_cancel_wait_t *cw = pd_xcalloc(1, sizeof(*cw));

        cw->cli      = cli;
        cw->requests = pd_map_new();
        cw->stopping = pd_map_new();
        cw->early    = pd_map_new();
        cw->pauses   = pd_map_new();
        if (!(cw->follow = pd_results_follow_new(cli, rkc, 1))) {
                pd_cancel_wait_destroy(cw);
                return NULL;
        }
        return cw;
}

void pd_cancel_wait_request(pd_cancel_wait_t *cw, const char *ce_id,
                            const char *tenant) {
        (void)tenant;
        *pd_map_put(cw->requests, ce_id, strlen(ce_id)) = (void *)1;
        cw->unanswered++;
}

void pd_cancel_wait_pause(pd_cancel_wait_t *cw, pd_evtype_t type,
                          const char *tenant) {
        char key[300];

        snprintf(key, sizeof(key), "%c %s",
                 type == PD_EVT_PAUSE_REQUESTED ? 'P' : 'R',
                 tenant ? tenant : "*");
        *pd_map_put(cw->pauses, key, strlen(key)) = (void *)1;
        cw->pause_cnt++;
}

static void finished_print(pd_cancel_wait_t *cw, const pd_event_t *ev) {
        printf("%s %s: %s%s%s\n", ev->tenant, ev->action,
               pd_status_name(ev->status), ev->error ? ": " : "",
               ev->error ? ev->error : "");
        if (ev->status != PD_ST_CANCELLED)
                cw->failed = 1;
}

static void cancel_cb(pd_event_t *ev, void *opaque) {
        pd_cancel_wait_t *cw = opaque;
        char key[300];
        void **vp;

        if (ev->type == PD_EVT_PAUSE_REQUESTED ||
            ev->type == PD_EVT_RESUME_REQUESTED) {
                snprintf(key, sizeof(key), "%c %s",
                         ev->type == PD_EVT_PAUSE_REQUESTED ? 'P' : 'R',
                         ev->all_tenants ? "*"
                         : ev->tenant    ? ev->tenant
                                         : "");
                if (pd_map_get(cw->pauses, key, strlen(key)) == (void *)1) {
                        *pd_map_put(cw->pauses, key, strlen(key)) = (void *)2;
                        cw->pause_cnt--;
                        printf("%s: %s\n",
                               ev->all_tenants ? "every tenant" : ev->tenant,
                               ev->type == PD_EVT_PAUSE_REQUESTED
                                   ? "paused: new runs wait for `postdeploy "
                                     "resume`"
                                   : "resumed");
                        fflush(stdout);
                }
        } else if (ev->type == PD_EVT_CANCEL_ANSWERED && ev->trigger_id &&
                   pd_map_get(cw->requests, ev->trigger_id,
                              strlen(ev->trigger_id)) == (void *)1) {
                vp  = pd_map_put(cw->requests, ev->trigger_id,
                                 strlen(ev->trigger_id));
                *vp = (void *)2;
                cw->unanswered--;
                for (size_t i = 0; i < ev->not_running.cnt; i++) {
                        printf("%s %s: not running: nothing to cancel\n",
                               ev->tenant, ev->not_running.v[i]);
                        cw->failed = 1;
                }
                if (!ev->actions.cnt && !ev->not_running.cnt) {
                        printf("%s: nothing running: nothing to cancel\n",
                               ev->tenant);
                        cw->failed = 1;
                }
                for (size_t i = 0; i < ev->actions.cnt; i++) {
                        pd_event_t *fin;

                        snprintf(key, sizeof(key), "%s/%s", ev->tenant,
                                 ev->actions.v[i]);
                        printf("%s %s: stopping (reactor %s)\n", ev->tenant,
                               ev->actions.v[i], ev->reactor);
                        fin = pd_map_get(cw->early, key, strlen(key));
                        if (fin) {
                                finished_print(cw, fin);
                                continue;
                        }
                        *pd_map_put(cw->stopping, key, strlen(key)) = (void *)1;
                        cw->stopping_cnt++;
                }
                fflush(stdout);
        } else if (ev->type == PD_EVT_ACTION_FINISHED && !ev->retrying &&
                   ev->tenant && ev->action) {
                snprintf(key, sizeof(key), "%s/%s", ev->tenant, ev->action);
                vp = pd_map_put(cw->stopping, key, strlen(key));
                if (*vp == (void *)1) {
                        *vp = (void *)2;
                        cw->stopping_cnt--;
                        finished_print(cw, ev);
                        fflush(stdout);
                } else if (!*vp && ev->status == PD_ST_CANCELLED) {
                        void **ep = pd_map_put(cw->early, key, strlen(key));

                        pd_event_destroy(*ep);
                        *ep = ev;
                        return; /* kept */
                }
        }
        pd_event_destroy(ev);
}

int pd_cancel_wait_run(pd_cancel_wait_t *cw, int64_t timeout_ms) {
        int64_t end = pd_mono_ms() + timeout_ms;

        while (cw->unanswered || cw->stopping_cnt || cw->pause_cnt) {
                if (pd_mono_ms() >= end) {
                        fprintf(stderr,
                                "postdeploy: cancel --wait timed out: %zu "
                                "request(s) unanswered, %zu stop(s) not "
                                "recorded\n",
                                cw->unanswered, cw->stopping_cnt);
                        return PD_EXIT_TIMEOUT;
                }
                pd_results_follow_poll(cw->follow, 200, cancel_cb, cw);
        }
        return cw->failed ? PD_EXIT_FAILED : PD_EXIT_OK;
}

static void early_free(void *v) {
        pd_event_destroy(v);
}

void pd_cancel_wait_destroy(pd_cancel_wait_t *cw) {
        if (!cw)
                return;
        if (cw->follow)
                pd_results_follow_destroy(cw->follow);
        pd_map_destroy(cw->requests, NULL);
        pd_map_destroy(cw->stopping, NULL);
        pd_map_destroy(cw->early, early_free);
        pd_map_destroy(cw->pauses, NULL);
        free(cw);
}
