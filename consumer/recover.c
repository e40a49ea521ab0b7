/*
 * recover.c - start-up: the runs a previous reactor left without an
 * outcome are settled (finished under the supervisor, adopted while still
 * running, or recorded INTERRUPTED), the outbox left behind is produced
 * again, and this reactor's actions are registered.
 */

#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Start-up: recovery and registry                                      */

/*
 * Runs a previous reactor left without an outcome. Command runs live in the
 * supervisor: one that finished meanwhile is recorded with its real outcome,
 * one still going is adopted when its redelivered event reaches it. Only a
 * run nobody knows (an in-process action, or the machine went down) is
 * recorded INTERRUPTED; its event was not marked done, so it runs again.
 */
typedef struct pd_unfinished_s {
        pd_run_t *runs;
        pd_runner_result_t **res; /* per run: the outcome, NULL: lost */
        size_t cnt;
        size_t runs_cap, res_cap; /* room in runs, in res */
} pd_unfinished_t;

static int unfinished_collect(const pd_run_t *run, void *opaque) {
        pd_unfinished_t *u = opaque;
        pd_run_t *copy;

        u->runs = pd_xgrow(u->runs, &u->runs_cap, u->cnt + 1, sizeof(*u->runs));
        u->res  = pd_xgrow(u->res, &u->res_cap, u->cnt + 1, sizeof(*u->res));
        u->res[u->cnt]       = NULL;
        copy                 = &u->runs[u->cnt++];
        *copy                = *run;
        copy->tenant         = pd_xstrdup(run->tenant);
        copy->action         = pd_xstrdup(run->action);
        copy->release        = pd_xstrdup(run->release);
        copy->trigger_source = pd_xstrdup(run->trigger_source);
        copy->trigger_id     = pd_xstrdup(run->trigger_id);
        return 0;
}

static int txn_recover(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_unfinished_t *u = arg;
        int64_t now        = pd_now_ms();

        for (size_t i = 0; i < u->cnt; i++) {
                pd_run_t *run                = &u->runs[i];
                const pd_runner_result_t *rs = u->res[i];
                int lost;

                if (!run->tenant)
                        continue; /* adopted: still running */
                if (rs) {
                        run->status        = rs->status;
                        run->has_exit_code = rs->has_exit_code;
                        run->exit_code     = rs->exit_code;
                        run->duration_ms   = rs->duration_ms;
                        run->error         = *rs->error ? rs->error : NULL;
                        run->output_tail   = rs->tail;
                } else {
                        run->status      = PD_ST_INTERRUPTED;
                        run->duration_ms = now - run->started_at;
                        run->error =
                            "interrupted: the reactor stopped "
                            "during the run";
                }
                run->finished_at = now;
                if (pd_store_run_end(r->st, run))
                        return -1;
                /* Lost, or interrupted under a supervisor that died or
                 * stopped: the redelivered event runs it again. Finished:
                 * its outcome is final, as trigger_outcome will say. */
                lost = !rs || rs->status == PD_ST_INTERRUPTED;
                /* To the tenant's partition, where the owner of its
                 * events restores its ledger from. */
                if (pd_store_tenant_part_of(r->st, run->tenant, &oq->part))
                        return -1;
                if (pd__emit_finished(r, oq, run, rs ? rs->tail : "", lost))
                        return -1;
                pd_log(PD_LOG_WARN, "%s %s: %s", run->tenant, run->action,
                       lost ? "interrupted by the last stop"
                            : "finished under the supervisor while we were "
                              "down");
        }
        return 0;
}

/* Asks the supervisor about every unfinished command run: fills u->res
 * for the finished, moves the running to r->adopt. Returns 0 or -1. */
static int recover_ask(pd_reactor_t *r, pd_unfinished_t *u, char *errstr,
                       size_t errstr_size) {
        for (size_t i = 0; i < u->cnt; i++) {
                pd_run_t *run = &u->runs[i];
                const pd_action_def_t *def =
                    pd_config_action(r->conf, run->action);
                pd_runner_result_t *res;
                int st;

                if (def && def->plugin_action)
                        continue; /* in-process: died with us */
                res = pd_xcalloc(1, sizeof(*res));
                st  = pd_sup_status(r->sup, run->sup_id, res);
                if (st < 0) {
                        /* Guessing could run a command twice. */
                        snprintf(errstr, errstr_size,
                                 "supervisor: cannot learn what became of "
                                 "run %" PRId64 ": %s",
                                 run->id, res->error);
                        free(res);
                        return -1;
                }
                if (st == PD_SUP_FINISHED) {
                        u->res[i] = res;
                        continue;
                }
                free(res);
                if (st == PD_SUP_RUNNING) {
                        pd_adopt_t *ad;
                        r->adopt = pd_xrealloc(
                            r->adopt, (r->adopt_cnt + 1) * sizeof(*r->adopt));
                        ad                 = &r->adopt[r->adopt_cnt++];
                        ad->run_id         = run->id;
                        ad->sup_id         = run->sup_id;
                        ad->attempt        = run->attempt;
                        ad->started_at     = run->started_at;
                        ad->tenant         = (char *)run->tenant;
                        ad->action         = (char *)run->action;
                        ad->trigger_source = (char *)run->trigger_source;
                        ad->trigger_id     = (char *)run->trigger_id;
                        free((char *)run->release);
                        memset(run, 0, sizeof(*run)); /* handed over */
                        pd_log(PD_LOG_INFO,
                               "%s %s: still running under the supervisor; "
                               "adopted when its event comes back",
                               ad->tenant, ad->action);
                }
        }
        return 0;
}

int pd__txn_registry(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_config_t *conf = r->conf;
        pd_event_t *ev          = pd_event_new(PD_EVT_REGISTRY_PUBLISHED);
        int ret;

        (void)arg;
        ev->reactor      = pd_xstrdup(r->name);
        ev->published_at = pd_now_ms();
        ev->registry     = pd_xcalloc(conf->action_cnt, sizeof(*ev->registry));
        ev->registry_cnt = conf->action_cnt;
        for (size_t i = 0; i < conf->action_cnt; i++) {
                const pd_action_def_t *def = &conf->actions[i];
                pd_regentry_t *re          = &ev->registry[i];
                re->id                     = pd_xstrdup(def->name);
                re->is_auto                = def->is_auto;
                re->policy      = pd_xstrdup(pd_policy_name(def->policy));
                re->description = pd_xstrdup(def->description);
                for (size_t j = 0; j < def->after.cnt; j++)
                        pd_strv_add(&re->after, def->after.v[j]);
                for (size_t j = 0; j < def->params.cnt; j++)
                        pd_strv_add(&re->params, def->params.v[j]);
                /* A plugin's action declares none and takes any. */
                if (def->plugin_action)
                        pd_strv_add(&re->params, "*");
        }
        ret = pd__emit(r, oq, ev, PD_REGISTRY_KEY);
        pd_event_destroy(ev);
        return ret;
}

static int outbox_replay_cb(const pd_outbox_rec_t *rec, void *opaque) {
        pd_reactor_t *r = opaque;
        pd__produce_rec(r, rec->seq, rec->part, rec->topic, rec->key,
                        rec->headers, rec->headers_len, rec->value,
                        rec->value_len);
        return 0;
}

int pd__reactor_recover(pd_reactor_t *r, char *errstr, size_t errstr_size) {
        pd_unfinished_t u = {0};
        int ret;

        /* First what the last run left unpublished, then what it left
         * unfinished, so results keep their order per key. */
        pthread_mutex_lock(&r->st_lock);
        ret = pd_store_outbox_foreach(r->st, outbox_replay_cb, r) ||
              pd_store_runs_unfinished(r->st, unfinished_collect, &u);
        if (ret)
                snprintf(errstr, errstr_size, "state store: %s",
                         pd_store_errmsg(r->st));
        pthread_mutex_unlock(&r->st_lock);
        if (!ret && u.cnt)
                ret = recover_ask(r, &u, errstr, errstr_size);
        if (!ret && u.cnt)
                ret = pd__reactor_txn_sync(r, txn_recover, &u);
        if (!ret) {
                /* Recorded: the supervisor may forget those outcomes. */
                for (size_t i = 0; i < u.cnt; i++)
                        if (u.res[i])
                                pd_sup_forget(r->sup, u.runs[i].sup_id);
                ret = pd__reactor_txn_sync(r, pd__txn_registry, NULL);
        }
        for (size_t i = 0; i < u.cnt; i++) {
                free((char *)u.runs[i].tenant);
                free((char *)u.runs[i].action);
                free((char *)u.runs[i].release);
                free((char *)u.runs[i].trigger_source);
                free((char *)u.runs[i].trigger_id);
                free(u.res[i]);
        }
        free(u.runs);
        free(u.res);
        if (ret && !*errstr)
                snprintf(errstr, errstr_size, "cannot record recovery");
        return ret ? -1 : 0;
}
