/*
 * plan.c - which actions an event runs for its tenant, and in which order:
 * the named ones or those whose state fits the event, put after the
 * actions they name in `after` and in config order otherwise; and which
 * of them a redelivered event already finished. Pure logic, unit-tested
 * in tests/unit/test_plan.c, but for pd__plan_build, which reads each
 * action's state and the trigger's outcomes from the store.
 */

#include "consumer/reactor_int.h"

/* Whether step i of plan must wait for a step not placed yet. */
static int plan_waits(const pd_plan_t *plan, const pd_step_t *steps,
                      const int *placed, size_t i) {
        const pd_action_def_t *def = steps[i].def;

        for (size_t a = 0; def && a < def->after.cnt; a++)
                for (size_t j = 0; j < plan->cnt; j++)
                        if (!placed[j] && j != i && steps[j].def &&
                            !strcmp(steps[j].name, def->after.v[a]))
                                return 1;
        return 0;
}

/*
 * Puts every step after the steps it names in `after`, keeping config order
 * otherwise: each round places the first step in config order whose
 * dependencies are placed. The config has no cycles (pd_config_validate),
 * so every round places one.
 */
void pd__plan_order(pd_plan_t *plan) {
        pd_step_t *sorted = pd_xcalloc(plan->cnt + 1, sizeof(*sorted));
        int *placed       = pd_xcalloc(plan->cnt + 1, sizeof(*placed));
        size_t first      = 0; /* no step before it is left to place */

        for (size_t n = 0; n < plan->cnt; n++) {
                size_t i;

                /* The search starts past the steps placed in a row from
                 * the top: from 0, it was quadratic even without any
                 * `after` (10,000 actions: 50 million steps looked at). */
                while (placed[first])
                        first++;
                i = first;
                while (i < plan->cnt &&
                       (placed[i] || plan_waits(plan, plan->steps, placed, i)))
                        i++;
                assert(i < plan->cnt);
                placed[i] = 1;
                sorted[n] = plan->steps[i];
        }
        memcpy(plan->steps, sorted, plan->cnt * sizeof(*sorted));
        free(sorted);
        free(placed);
}

/* The steps of an event that names its actions (deploy --one, skip or
 * reset by name): unknown names first (rejected, def NULL), then the
 * named actions in config order. plan->steps has room for them all. */
void pd__plan_named(const pd_config_t *conf, const pd_event_t *ev,
                    pd_plan_t *plan) {
        size_t i;

        for (i = 0; i < ev->actions.cnt; i++) {
                const char *name = ev->actions.v[i];
                int dup          = 0;
                if (pd_config_action(conf, name))
                        continue;
                for (size_t j = 0; j < plan->cnt; j++)
                        dup |= !strcmp(plan->steps[j].name, name);
                if (!dup)
                        plan->steps[plan->cnt++].name = name;
        }
        for (i = 0; i < conf->action_cnt; i++)
                if (pd_strv_find(&ev->actions, conf->actions[i].name) >= 0) {
                        plan->steps[plan->cnt].def  = &conf->actions[i];
                        plan->steps[plan->cnt].name = conf->actions[i].name;
                        plan->cnt++;
                }
}

/* Whether an event that selects by state (a deploy, a skip or a reset of
 * every pending or done action) takes def, whose state is *as. */
int pd__plan_takes(const pd_action_def_t *def, pd_evtype_t type,
                   const pd_action_state_t *as) {
        if (type == PD_EVT_RESET_REQUESTED)
                return as->ever_succeeded;
        if (type == PD_EVT_SKIP_REQUESTED)
                /* An `always` action is never done. */
                return def->policy == PD_POLICY_ONCE && !as->ever_succeeded;
        return def->policy == PD_POLICY_ALWAYS || !as->ever_succeeded;
}

/* Whether a redelivered event already finished the step of def, given
 * the outcome its trigger left (found: there is one): not a run
 * interrupted, nor a failure that still had retries left. */
int pd__plan_finished(const pd_action_def_t *def, int found, pd_status_t status,
                      int32_t attempt) {
        int retry_due = found &&
                        (status == PD_ST_FAILED || status == PD_ST_TIMED_OUT) &&
                        attempt < 1 + def->retries;

        return found && status != PD_ST_INTERRUPTED && !retry_due;
}

/* The value the event gives parameter name, or NULL. */
const char *pd__plan_param(const pd_event_t *ev, const char *name) {
        for (size_t i = 0; i + 1 < ev->params.cnt; i += 2)
                if (!strcmp(ev->params.v[i], name))
                        return ev->params.v[i + 1];
        return NULL;
}

/* Whether def declares parameter name; *optp: as optional ("name?"). */
static int plan_declares(const pd_action_def_t *def, const char *name,
                         int *optp) {
        size_t len = strlen(name);

        for (size_t i = 0; i < def->params.cnt; i++) {
                const char *d = def->params.v[i];

                if (!strncmp(d, name, len) &&
                    (!d[len] || !strcmp(d + len, "?"))) {
                        *optp = d[len] == '?';
                        return 1;
                }
        }
        return 0;
}

/*
 * Whether the event's parameters are refused for def, and why (into why):
 * one def does not declare, a required one missing, a name or a value
 * out of bounds. The CLI refuses these too, but an event may come from
 * any Kafka client: the reactor's check is the one that holds.
 */
int pd__plan_params_refused(const pd_action_def_t *def, const pd_event_t *ev,
                            char *why, size_t why_size) {
        int opt;

        if (ev->params.cnt / 2 > PD_PARAMS_MAX) {
                snprintf(why, why_size, "more than %d parameters",
                         PD_PARAMS_MAX);
                return 1;
        }
        for (size_t i = 0; i + 1 < ev->params.cnt; i += 2) {
                const char *name = ev->params.v[i];

                /* A plugin's action declares no parameters (its
                 * registration has no place for them yet): it gets what
                 * the deploy gives, through ctx->param, and checks them
                 * itself. */
                if (!pd_param_name_valid(name) ||
                    (!def->plugin_action && !plan_declares(def, name, &opt))) {
                        snprintf(why, why_size,
                                 "parameter '%.64s' is not declared by "
                                 "action %s",
                                 name, def->name);
                        return 1;
                }
                if (strlen(ev->params.v[i + 1]) > PD_PARAM_VALUE_MAX) {
                        snprintf(why, why_size,
                                 "parameter '%s': value longer than %d "
                                 "bytes",
                                 name, PD_PARAM_VALUE_MAX);
                        return 1;
                }
        }
        for (size_t i = 0; i < def->params.cnt; i++) {
                const char *d = def->params.v[i];

                if (d[strlen(d) - 1] != '?' && !pd__plan_param(ev, d)) {
                        snprintf(why, why_size,
                                 "missing required parameter '%s' "
                                 "(deploy --one %s --param %s=VALUE)",
                                 d, def->name, d);
                        return 1;
                }
        }
        return 0;
}

/* Notes, for a dry run's answer, that name is left out and why. A real
 * run does not keep the reasons: nothing reads them. */
static void plan_leave_out(pd_plan_t *plan, const char *name, const char *why) {
        if (!plan->job->ev->dry_run)
                return;
        pd_strv_add(&plan->skipped, name);
        pd_strv_add(&plan->skipped_why, why);
}

/* The first dependency of step (within this plan) that has an outcome
 * other than success: a real run skips step for it (worker.c). */
const pd_step_t *pd__plan_blocker(const pd_plan_t *plan,
                                  const pd_step_t *step) {
        for (size_t i = 0; i < step->def->after.cnt; i++)
                for (size_t j = 0; j < plan->cnt; j++)
                        if (plan->steps[j].def &&
                            !strcmp(plan->steps[j].name,
                                    step->def->after.v[i]) &&
                            plan->steps[j].finished &&
                            plan->steps[j].status != PD_ST_SUCCEEDED)
                                return &plan->steps[j];
        return NULL;
}

/*
 * Turns a built plan into a dry run's answer: the steps left are those a
 * real run would start, in its order; each step it would not start (an
 * unknown name, which it would reject; one this event already finished,
 * when redelivered; one whose dependency did not succeed) moves to
 * plan->skipped with its reason, after those pd__plan_build left out.
 * The same decisions as job_process makes, taken before anything runs.
 */
void pd__plan_dry(pd_plan_t *plan) {
        int *out = pd_xcalloc(plan->cnt + 1, sizeof(*out));
        size_t n = 0;

        /* Decided first, removed after: a later step's blocker may be one
         * left out. */
        for (size_t i = 0; i < plan->cnt; i++) {
                const pd_step_t *step = &plan->steps[i];
                const pd_step_t *blocker;
                char why[512];

                out[i] = 1;
                if (!step->def) {
                        plan_leave_out(plan, step->name, "unknown action");
                } else if (step->finished) {
                        plan_leave_out(plan, step->name,
                                       "already finished by this event");
                } else if (pd__plan_params_refused(step->def, plan->job->ev,
                                                   why, sizeof(why))) {
                        plan_leave_out(plan, step->name, why);
                } else if ((blocker = pd__plan_blocker(plan, step))) {
                        snprintf(why, sizeof(why), "dependency %s %s",
                                 blocker->name,
                                 pd_status_name(blocker->status));
                        plan_leave_out(plan, step->name, why);
                } else {
                        out[i] = 0;
                }
        }
        for (size_t i = 0; i < plan->cnt; i++)
                if (!out[i])
                        plan->steps[n++] = plan->steps[i];
        plan->cnt = n;
        free(out);
}

/* Builds the list of actions the event selects for its tenant: the named
 * ones (deploy --one, skip or reset by name), or those whose state fits
 * (pending for a deploy or a skip, done for a reset). Called with the store
 * lock held. */
int pd__plan_build(pd_reactor_t *r, pd_plan_t *plan) {
        const pd_event_t *ev    = plan->job->ev;
        const char *tenant      = plan->job->tenant;
        const pd_config_t *conf = r->conf;
        int deploy              = ev->type == PD_EVT_RELEASE_DEPLOYED;
        int seen                = 0;
        size_t i;

        plan->steps = pd_xcalloc(conf->action_cnt + ev->actions.cnt + 1,
                                 sizeof(*plan->steps));
        plan->cnt   = 0;

        if (deploy ? ev->selection == PD_SEL_ONE : !ev->all_pending) {
                pd__plan_named(conf, ev, plan);
        } else {
                for (i = 0; i < conf->action_cnt; i++) {
                        const pd_action_def_t *def = &conf->actions[i];
                        pd_action_state_t as;

                        if (deploy && ev->selection == PD_SEL_AUTO &&
                            !def->is_auto) {
                                plan_leave_out(plan, def->name, "not auto");
                                continue;
                        }
                        if (pd_store_action_state(r->st, tenant, def->name,
                                                  &as))
                                return -1;
                        if (!pd__plan_takes(def, ev->type, &as)) {
                                /* A deploy leaves out only a `once` action
                                 * that succeeded. */
                                plan_leave_out(plan, def->name,
                                               "already succeeded");
                                continue;
                        }
                        plan->steps[plan->cnt].def  = def;
                        plan->steps[plan->cnt].name = def->name;
                        plan->cnt++;
                }
        }

        pd__plan_order(plan);

        /* A new event's trigger has no runs: nothing below can find one.
         * One probe per event instead of one or two per action. */
        if (plan->cnt && pd_store_trigger_seen(r->st, ev->ce_id, &seen))
                return -1;
        if (!seen)
                return 0;

        /* A redelivered event that was cut short skips what it finished:
         * not a run interrupted, nor a failure that still had retries left
         * (a crash, or a stop that could not record it, came during the
         * backoff: the retry that was promised runs now). */
        for (i = 0; i < plan->cnt; i++) {
                pd_step_t *step = &plan->steps[i];
                int found       = 0;
                int32_t attempt = 0;
                pd_status_t status;

                if (!step->def)
                        continue;
                if (pd_store_trigger_outcome(r->st, tenant, step->name,
                                             ev->ce_source, ev->ce_id, &found,
                                             &status, &attempt))
                        return -1;
                if (pd__plan_finished(step->def, found, status, attempt)) {
                        step->finished = 1;
                        step->status   = status;
                }
                /* A command's runs are named by their place (worker.c):
                 * counted before any of this delivery's start. */
                if (!step->finished && !step->def->plugin_action &&
                    pd_store_trigger_runs(r->st, tenant, step->name,
                                          ev->ce_source, ev->ce_id,
                                          &step->runs))
                        return -1;
        }
        return 0;
}
