/*
 * record.c - the transaction parts that record an event's progress: the
 * plan (deploy.planned), an action started, an action finished or decided
 * without running (action.finished, built in one place for every path:
 * pd_finished_event), and the event marked done. Each writes its store
 * rows and the result record that says so in one part (pd__reactor_txn).
 */

#include "consumer/reactor_int.h"

/* A finished/started event for step, pre-filled from the trigger. */
static pd_event_t *step_event(pd_reactor_t *r, const pd_plan_t *plan,
                              pd_evtype_t type, const char *action,
                              int32_t attempt, int64_t started_at) {
        const pd_event_t *tev = plan->job->ev;
        pd_event_t *ev        = pd_event_new(type);

        ev->tenant     = pd_xstrdup(plan->job->tenant);
        ev->action     = pd_xstrdup(action);
        ev->release    = pd_xstrdup(tev->release);
        ev->trigger_id = pd_xstrdup(tev->ce_id);
        ev->reactor    = pd_xstrdup(r->name);
        ev->attempt    = attempt;
        ev->started_at = started_at;
        if (type == PD_EVT_ACTION_FINISHED)
                ev->output_tail = pd_xstrdup("");
        return ev;
}

void pd__result_key(char *buf, size_t size, const char *tenant,
                    const char *action) {
        snprintf(buf, size, "%s/%s", tenant, action);
}

/*
 * Encodes the action.finished record of run (its outcome filled in) into
 * o, keyed by tenant/action. Every path that ends an action builds it
 * here (a run, a decision without one, recovery), so they all say the
 * same thing the same way. tail: the end of the output ("" for none);
 * retrying: more attempts of the action will come. Touches no store.
 */
void pd__finished_encode(pd_reactor_t *r, const pd_run_t *run, const char *tail,
                         int retrying, pd_outrec_t *o) {
        pd_event_t *ev = pd_event_new(PD_EVT_ACTION_FINISHED);
        char key[256];

        ev->tenant        = pd_xstrdup(run->tenant);
        ev->action        = pd_xstrdup(run->action);
        ev->release       = pd_xstrdup(run->release);
        ev->trigger_id    = pd_xstrdup(run->trigger_id);
        ev->reactor       = pd_xstrdup(r->name);
        ev->attempt       = run->attempt;
        ev->started_at    = run->started_at;
        ev->status        = run->status;
        ev->has_exit_code = run->has_exit_code;
        ev->exit_code     = run->exit_code;
        ev->duration_ms   = run->duration_ms;
        ev->error         = run->error ? pd_xstrdup(run->error) : NULL;
        ev->output_tail   = pd_xstrdup(tail);
        ev->finished_at   = run->finished_at;
        ev->retrying      = retrying;
        pd__result_key(key, sizeof(key), run->tenant, run->action);
        pd__emit_encode(r, ev, key, o);
        pd_event_destroy(ev);
}

/* Puts the action.finished record of run in the outbox
 * (pd__finished_encode). Returns 0 or -1. */
int pd__emit_finished(pd_reactor_t *r, pd_outq_t *oq, const pd_run_t *run,
                      const char *tail, int retrying) {
        pd_outrec_t o;

        pd__finished_encode(r, run, tail, retrying, &o);
        return pd__outbox_put_rec(r, oq, &o);
}

int pd__txn_verdict(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_verdict_t *v = arg;
        pd_job_t *job   = v->plan->job;
        int64_t now     = pd_now_ms();
        pd_run_t run    = {0};

        pd__outq_for_job(oq, job);
        /* The run the record tells of, stored unless the name is rejected
         * (skips are history too; rejected names have no action). */
        run.tenant         = job->tenant;
        run.action         = v->step->name;
        run.release        = job->ev->release;
        run.trigger_source = job->ev->ce_source;
        run.trigger_id     = job->ev->ce_id;
        run.attempt        = v->attempt ? v->attempt : 1;
        run.started_at     = now;
        run.status         = v->status;
        run.finished_at    = now;
        run.error          = v->error;
        if (v->step->def) {
                if (pd_store_run_begin(r->st, &run))
                        return -1;
                if (pd_store_run_end(r->st, &run))
                        return -1;
                if (v->set_done >= 0 &&
                    pd_store_action_set_done(r->st, job->tenant, v->step->name,
                                             v->set_done))
                        return -1;
        }
        return pd__emit_finished(r, oq, &run, "", v->retrying);
}

int pd__txn_plan(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_plan_t *plan = arg;
        pd_job_t *job   = plan->job;
        pd_event_t *ev;
        int ret;

        pd__outq_for_job(oq, job);
        free(plan->steps);
        plan->steps = NULL;
        /* A retried transaction builds the plan again, reasons too. */
        pd_strv_clear(&plan->skipped);
        pd_strv_clear(&plan->skipped_why);
        /* Whose rows a dirty restore of the partition deletes
         * (consumer/restore.c). */
        if (pd_store_tenant_part(r->st, job->tenant, job->partition))
                return -1;
        if (pd__plan_build(r, plan))
                return -1;
        if (job->ev->type == PD_EVT_RELEASE_DEPLOYED && job->ev->dry_run)
                pd__plan_dry(plan);
        ev             = pd_event_new(PD_EVT_DEPLOY_PLANNED);
        ev->tenant     = pd_xstrdup(job->tenant);
        ev->release    = pd_xstrdup(job->ev->release);
        ev->trigger_id = pd_xstrdup(job->ev->ce_id);
        ev->reactor    = pd_xstrdup(r->name);
        ev->planned_at = pd_now_ms();
        for (size_t i = 0; i < plan->cnt; i++)
                pd_strv_add(&ev->actions, plan->steps[i].name);
        ev->dry_run =
            job->ev->type == PD_EVT_RELEASE_DEPLOYED && job->ev->dry_run;
        for (size_t i = 0; i < plan->skipped.cnt; i++) {
                pd_strv_add(&ev->skipped, plan->skipped.v[i]);
                pd_strv_add(&ev->skipped_why, plan->skipped_why.v[i]);
        }
        ret = pd__emit(r, oq, ev, job->tenant);
        pd_event_destroy(ev);
        return ret;
}

int pd__txn_started(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a = arg;
        pd_event_t *ev;
        char key[256];
        int ret;

        pd__outq_for_job(oq, a->plan->job);
        if (pd_store_run_begin(r->st, &a->run))
                return -1;
        ev = step_event(r, a->plan, PD_EVT_ACTION_STARTED, a->step->name,
                        a->run.attempt, a->run.started_at);
        pd__result_key(key, sizeof(key), a->plan->job->tenant, a->step->name);
        ret = pd__emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

/*
 * Attempt a waits for a slot of its action (concurrency): an action.started
 * with queued true, so the report and `deploy --wait` say so. No row: the
 * run has not begun, and a crash while it waits leaves the event to be
 * redelivered and the run's own records to replace this one.
 */
int pd__txn_queued(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a = arg;
        pd_event_t *ev;
        char key[256];
        int ret;

        pd__outq_for_job(oq, a->plan->job);
        ev = step_event(r, a->plan, PD_EVT_ACTION_STARTED, a->step->name,
                        a->run.attempt, a->run.started_at);
        ev->queued = 1;
        pd__result_key(key, sizeof(key), a->plan->job->tenant, a->step->name);
        ret = pd__emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

/* Encodes the action.started record of attempt a into o (no lock). */
static void started_encode(pd_reactor_t *r, const pd_attempt_t *a,
                           pd_outrec_t *o) {
        pd_event_t *ev;
        char key[256];

        ev = step_event(r, a->plan, PD_EVT_ACTION_STARTED, a->step->name,
                        a->run.attempt, a->run.started_at);
        pd__result_key(key, sizeof(key), a->plan->job->tenant, a->step->name);
        pd__emit_encode(r, ev, key, o);
        pd_event_destroy(ev);
}

/* The start of an in-process attempt: no row, only its action.started,
 * encoded beforehand into a->out, with no outbox row. */
static int txn_started_whole(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a = arg;

        pd__outq_for_job(oq, a->plan->job);
        /* A retry: the first try's record went with the undone part. */
        if (!a->out.value)
                started_encode(r, a, &a->out);
        pd__outq_put_unstored(oq, &a->out);
        return 0;
}

/*
 * Starts an attempt whose run is written whole when it is over
 * (pd__txn_finished): an in-process action's, and a command's, whose
 * supervisor's START names the run until then (its name finds it again
 * after a crash: worker.c). Nothing is stored before it runs, and its
 * action.started has no outbox row: it joins the open batch as a part of
 * its own (crash points started.*, as a command's start) and is produced
 * once that commits. A crash while it runs leaves nothing behind in the
 * store: the event, whose offset was not stored, comes back and runs it
 * again, and no INTERRUPTED is recorded for the run that was cut short.
 * The record only informs (an action.finished always follows, from this
 * run or its re-run), so one a crash loses costs nothing. Like every part
 * it waits while the store cannot be written, so nothing new runs then.
 * Returns 0, or -1 (the reactor failed or is stopping).
 */
int pd__attempt_start_whole(pd_reactor_t *r, pd_attempt_t *a) {
        int ret;

        a->whole  = 1;
        a->run.id = pd_store_run_id_next(r->st);
        started_encode(r, a, &a->out);
        /* Named as pd__txn_started, whose crash points it shares. */
        ret =
            pd__reactor_txn_named(r, txn_started_whole, a, "started", 0, NULL);
        pd__outrec_clear(&a->out); /* left by a failure */
        return ret;
}

/*
 * Fills a finished attempt's run from its result and encodes its
 * action.finished record into a->out: the worker calls it before
 * pd__txn_finished, so the encoding is done before the store lock is taken.
 */
void pd__attempt_finish(pd_reactor_t *r, pd_attempt_t *a) {
        const pd_runner_result_t *res = a->res;

        a->run.status        = res->status;
        a->run.has_exit_code = res->has_exit_code;
        a->run.exit_code     = res->exit_code;
        a->run.finished_at   = pd_now_ms();
        a->run.duration_ms   = res->duration_ms;
        /* A command the supervisor handed back to a redelivered event
         * (its first reactor was killed while it ran) ran before this
         * attempt's start: its own times, not the moment it was handed
         * back. For any other run ended - duration is after our start. */
        if (res->ended_at_ms > 0) {
                a->run.finished_at = res->ended_at_ms;
                if (res->ended_at_ms - res->duration_ms < a->run.started_at)
                        a->run.started_at = res->ended_at_ms - res->duration_ms;
        }
        a->run.error       = *res->error ? res->error : NULL;
        a->run.output_tail = res->tail;
        pd__finished_encode(r, &a->run, res->tail, a->retrying, &a->out);
}

int pd__txn_finished(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_attempt_t *a = arg;

        pd__outq_for_job(oq, a->plan->job);
        if (a->whole ? pd_store_run_record(r->st, &a->run)
                     : pd_store_run_end(r->st, &a->run))
                return -1;
        /* A retry after a store error: the first try's record went with
         * the part that was undone. */
        if (!a->out.value)
                pd__finished_encode(r, &a->run, a->res->tail, a->retrying,
                                    &a->out);
        return pd__outbox_put_rec(r, oq, &a->out);
}

int pd__txn_event_done(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pd_job_t *job = arg;
        (void)oq;
        return pd_store_event_mark(r->st, job->ev->ce_source, job->ev->ce_id,
                                   job->tenant, pd_now_ms());
}
