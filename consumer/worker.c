/*
 * worker.c - the worker threads: each takes an event off the queue, plans
 * it and runs its actions in order, one function per kind of run (a run a
 * crashed reactor left to the supervisor is adopted, an in-process plugin
 * action, a command under the supervisor), with the retries, the backoff
 * a stop or reload cuts short, and the crash points of each step.
 */

#include <ctype.h>

#include "consumer/reactor_int.h"

extern char **environ;

/*
 * The name of a command run at the supervisor: a hash of its trigger,
 * tenant, action and its place among the commands the trigger started for
 * that action (1 for the first; pd_store_trigger_runs). The run's row is
 * written whole at its end, so a crash while it runs leaves none; the
 * redelivered event then starts the same place again, under the same name, and
 * the supervisor, which knows that name until the reactor has durably recorded
 * the outcome (FORGET), hands back the run it has instead of starting another.
 * A row that did become durable counts, so a run after it gets a new place and
 * a new name.
 *
 * FNV-1a over the parts (each with its NUL, so "ab","c" is not "a","bc")
 * and the place, then splitmix64's finaliser so that names of nearby
 * places share no bits: 63 bits against accidental collisions among the
 * few runs a supervisor holds. (SHA-256 through EVP cost 4% of the
 * reactor's CPU in benchmark 2.)
 */
static int64_t run_sup_id(const pd_job_t *job, const char *action,
                          int64_t place) {
        const char *parts[] = {job->ev->ce_source, job->ev->ce_id, job->tenant,
                               action};
        uint64_t h          = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < sizeof(parts) / sizeof(*parts); i++) {
                const unsigned char *p = (const unsigned char *)parts[i];

                do
                        h = (h ^ *p) * 0x100000001b3ULL;
                while (*p++);
        }
        for (int i = 0; i < 8; i++)
                h = (h ^ (unsigned char)((uint64_t)place >> (8 * i))) *
                    0x100000001b3ULL;
        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebULL;
        h ^= h >> 31;
        h >>= 1;
        return h ? (int64_t)h : 1;
}

/* ------------------------------------------------------------------ */
/* Running one deploy event (worker threads)                           */

/* Appends NAME=value to env, the value whole whatever its length: the
 * environment must say what argv says. */
static void env_add(pd_strv_t *env, const char *name, const char *value) {
        size_t nlen = strlen(name), vlen = strlen(value);
        char *s = pd_xmalloc(nlen + 1 + vlen + 1);

        memcpy(s, name, nlen);
        s[nlen] = '=';
        memcpy(s + nlen + 1, value, vlen + 1);
        pd_strv_add(env, s);
        free(s);
}

/* The child's environment: POSTDEPLOY_*, the action's env.*, then ours. */
static void step_env(const pd_job_t *job, const pd_action_def_t *def,
                     int32_t attempt, pd_strv_t *env) {
        char num[16];
        size_t set;
        char **e;

        snprintf(num, sizeof(num), "%d", (int)attempt);
        env_add(env, "POSTDEPLOY_TENANT", job->tenant);
        env_add(env, "POSTDEPLOY_RELEASE", job->ev->release);
        env_add(env, "POSTDEPLOY_ACTION", def->name);
        env_add(env, "POSTDEPLOY_EVENT_ID", job->ev->ce_id);
        env_add(env, "POSTDEPLOY_ENVIRONMENT",
                job->ev->environment ? job->ev->environment : "");
        env_add(env, "POSTDEPLOY_ATTEMPT", num);
        /* A parameter after env.*: the deploy's value wins over the
         * config's for the same name. */
        for (size_t i = 0; i < def->env.cnt; i++)
                pd_strv_add(env, def->env.v[i]);
        for (size_t i = 0; i + 1 < job->ev->params.cnt; i += 2) {
                char name[96];
                size_t n =
                    (size_t)snprintf(name, sizeof(name), "POSTDEPLOY_PARAM_%s",
                                     job->ev->params.v[i]);

                for (size_t j = 17; j < n && j < sizeof(name); j++)
                        name[j] = (char)toupper((unsigned char)name[j]);
                env_add(env, name, job->ev->params.v[i + 1]);
        }
        /* Ours only need checking against what was set above (environ's
         * names are unique): linear in the environment, not quadratic. */
        set = env->cnt;
        for (e = environ; *e; e++) {
                size_t nlen  = strcspn(*e, "=");
                int shadowed = 0;
                for (size_t i = 0; i < set && !shadowed; i++)
                        shadowed = !strncmp(env->v[i], *e, nlen) &&
                                   env->v[i][nlen] == '=';
                if (!shadowed)
                        pd_strv_add(env, *e);
        }
}

/* Where the full output of a run goes, or NULL when log_dir is unset. */
static const char *step_log_path(pd_reactor_t *r, const pd_job_t *job,
                                 const pd_attempt_t *a, char *buf,
                                 size_t size) {
        if (!r->conf->log_dir || !*r->conf->log_dir)
                return NULL;
        snprintf(buf, size, "%s/%s/%s/run-%" PRId64 ".log", r->conf->log_dir,
                 job->tenant, a->step->name, a->run.id);
        return buf;
}

/* Runs a command action with its retries. Returns 0, or -1 if the store
 * failed for good. Sets step->status. */
/* Takes the run to adopt for this step, if a crashed reactor left one
 * running under the supervisor. Returns 1 and fills *ad (caller frees its
 * strings with pd__adopt_clear), or 0. */
static int adopt_take(pd_reactor_t *r, const pd_job_t *job, const char *action,
                      pd_adopt_t *ad) {
        int found = 0;

        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->adopt_cnt && !found; i++) {
                pd_adopt_t *x = &r->adopt[i];
                if (strcmp(x->tenant, job->tenant) ||
                    strcmp(x->action, action) ||
                    strcmp(x->trigger_source, job->ev->ce_source) ||
                    strcmp(x->trigger_id, job->ev->ce_id))
                        continue;
                *ad         = *x;
                r->adopt[i] = r->adopt[--r->adopt_cnt];
                found       = 1;
        }
        pthread_mutex_unlock(&r->lock);
        return found;
}

void pd__adopt_clear(pd_adopt_t *ad) {
        free(ad->tenant);
        free(ad->action);
        free(ad->trigger_source);
        free(ad->trigger_id);
}

/* The binary that serves as supervisor: this one, unless a program that
 * embeds the reactor (a test) names the real postdeploy-reactor. */
const char *pd__sup_exe(void) {
        const char *exe = getenv("PD_SUPERVISOR_EXE");
        return exe && *exe ? exe : NULL;
}

/* This worker's supervisor connection, made on first use. NULL (logged,
 * and the reactor stops) if no supervisor can be reached. */
static pd_sup_t *worker_sup(pd_worker_t *w) {
        char errstr[512];

        if (!w->sup && !(w->sup = pd_sup_connect(w->r->sup_dir, pd__sup_exe(),
                                                 0, errstr, sizeof(errstr)))) {
                pd_log(PD_LOG_ERROR, "supervisor: %s", errstr);
                pthread_mutex_lock(&w->r->lock);
                w->r->fatal = 1;
                pthread_mutex_unlock(&w->r->lock);
        } else {
                pd_sup_set_timeout(w->sup, w->r->conf->supervisor_timeout_ms);
        }
        return w->sup;
}

/* Remembers that the supervisor may forget sup_id once batch gen is
 * durable. */
static void worker_forget_later(pd_worker_t *w, int64_t sup_id, int64_t gen) {
        w->forget = pd_xgrow(w->forget, &w->forget_size, w->forget_cnt + 1,
                             sizeof(*w->forget));
        w->forget[w->forget_cnt].sup_id = sup_id;
        w->forget[w->forget_cnt].gen    = gen;
        w->forget_cnt++;
}

/*
 * Tells the supervisor to forget the runs whose outcome is durable; with
 * wait, waits for the last of them first (a lost batch forgets nothing).
 * A run forgotten late only keeps its outcome file a little longer.
 */
static void worker_forget(pd_worker_t *w, int wait) {
        size_t i, kept = 0;

        if (!w->forget_cnt)
                return;
        if (wait && pd__batch_wait(w->r, w->forget[w->forget_cnt - 1].gen)) {
                w->forget_cnt = 0; /* not durable: the outcomes stay */
                return;
        }
        for (i = 0; i < w->forget_cnt; i++) {
                if (pd__batch_produced(w->r, w->forget[i].gen))
                        pd_sup_forget(w->sup, w->forget[i].sup_id);
                else
                        w->forget[kept++] = w->forget[i];
        }
        w->forget_cnt = kept;
}

/* How often a run its supervisor lost is started again within one event
 * before it is left INTERRUPTED (and pending, for the next deploy). */
#define PD_LOST_RUNS_MAX 3

/* Whether the worker's reactor is stopping (or failed), so that what it
 * cut short is to be done again after the next start. */
static int worker_stopping(pd_worker_t *w) {
        pd_reactor_t *r = w->r;
        int stopping;

        pthread_mutex_lock(&r->lock);
        stopping = r->draining || r->fatal || w->cancel ||
                   (r->stop && *r->stop) || (w->job && w->job->revoked);
        pthread_mutex_unlock(&r->lock);
        return stopping;
}

/* Why a worker's wait ended before its time. */
#define PD_NAP_STOP   1 /* the reactor stops (or failed) */
#define PD_NAP_RELOAD 2 /* a reload waits for the workers to be idle */
#define PD_NAP_PARK   3 /* a throttled run's job goes back to the queue */
#define PD_NAP_CANCEL 4 /* an operator cancelled the action (its retry) */

/* Why a wait of w's must end now, under r->lock: PD_NAP_STOP (the reactor
 * stops or failed, or w is told to), PD_NAP_RELOAD (a reload waits for
 * idle workers), else 0. Every wait of a worker asks this one question. */
static int worker_interrupted(const pd_worker_t *w) {
        const pd_reactor_t *r = w->r;

        if (r->draining || r->fatal || w->cancel || (r->stop && *r->stop) ||
            (w->job && w->job->revoked))
                return PD_NAP_STOP;
        return r->paused ? PD_NAP_RELOAD : 0;
}

/*
 * Waits ms, the backoff before a retry, unless the reactor stops, fails
 * or wants to reload first, or the action is cancelled: none of them
 * should wait out a backoff of minutes. Returns 0 after the whole wait,
 * else PD_NAP_STOP, PD_NAP_RELOAD or PD_NAP_CANCEL.
 */
static int worker_nap(pd_worker_t *w, int64_t ms) {
        pd_reactor_t *r = w->r;
        int64_t end     = pd_now_ms() + ms, left;
        int why         = 0;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                if (w->cancel == PD_CANCEL_ASKED) {
                        why = PD_NAP_CANCEL;
                        break;
                }
                if ((why = worker_interrupted(w)))
                        break;
                if ((left = end - pd_now_ms()) <= 0)
                        break;
                pd__cond_wait_ms(
                    &r->cond, &r->lock,
                    left < PD_STOP_POLL_MS ? left : PD_STOP_POLL_MS);
        }
        pthread_mutex_unlock(&r->lock);
        return why;
}

/*
 * Throttle: at most slot_limit(def) runs of one action at once in this
 * reactor (concurrency, else [reactor] max_running_per_action; 0 is no
 * limit). The count is the reactor's, not the group's: two reactors may
 * each run that many. It lives in r->running under r->lock, keyed by the
 * action's name, so a reload (which waits for idle workers) keeps it right.
 */
static int slot_limit(const pd_reactor_t *r, const pd_action_def_t *def) {
        return def->concurrency ? def->concurrency
                                : r->conf->max_running_per_action;
}

/* Whether def has a free slot. Under r->lock. */
static int slot_free(const pd_reactor_t *r, const pd_action_def_t *def) {
        int limit = slot_limit(r, def);

        return !limit || (intptr_t)pd_map_get(r->running, def->name,
                                              strlen(def->name)) < limit;
}

/* Adds delta to def's count and returns the new count. Under r->lock. */
static intptr_t slot_add(pd_reactor_t *r, const pd_action_def_t *def,
                         intptr_t delta) {
        void **vp  = pd_map_put(r->running, def->name, strlen(def->name));
        intptr_t n = (intptr_t)*vp + delta;

        *vp = (void *)n;
        return n;
}

/*
 * Takes a slot of def for one run. When its limit is reached, a first
 * attempt parks (PD_NAP_PARK: its job goes back to the queue, the worker
 * takes other work, and queue_take hands the job out again once a slot is
 * free), so waiting runs hold no worker; a retry waits here, holding its
 * worker (its attempts must stay one run of one job). A run being adopted
 * takes its slot at once (force): it is running already. The wait ends, no slot
 * held, when the reactor stops or fails (PD_NAP_STOP) or wants to reload
 * (PD_NAP_RELOAD): neither may hang behind a queue. A run that has to wait says
 * so once, in an action.started with queued true (pd__txn_queued). Returns 0
 * with the slot held, -1 if the store failed.
 */
static int slot_take(pd_worker_t *w, pd_attempt_t *a, int force, int park) {
        pd_reactor_t *r            = w->r;
        const pd_job_t *job        = a->plan->job;
        const pd_action_def_t *def = a->step->def;
        int limit                  = slot_limit(r, def);
        int waited                 = 0;
        int why                    = 0;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                if (force || slot_free(r, def)) {
                        slot_add(r, def, 1);
                        break;
                }
                if ((why = worker_interrupted(w)))
                        break;
                if (!waited) {
                        waited = 1;
                        pd_log(PD_LOG_INFO,
                               "%s %s: queued, %d run(s) of it already",
                               job->tenant, def->name, limit);
                        pthread_mutex_unlock(&r->lock);
                        if (pd__reactor_txn(r, pd__txn_queued, a))
                                return -1;
                        if (park)
                                return PD_NAP_PARK;
                        pthread_mutex_lock(&r->lock);
                        continue; /* a slot may have freed meanwhile */
                }
                pd__cond_wait_ms(&r->cond, &r->lock, PD_STOP_POLL_MS);
        }
        pthread_mutex_unlock(&r->lock);
        if (why)
                pd_log(PD_LOG_INFO, "%s %s: %s while queued; not started",
                       job->tenant, def->name,
                       why == PD_NAP_STOP ? "stopping" : "reloading");
        return why;
}

/* Gives def's slot back: a queued run of it may start. */
static void slot_give(pd_worker_t *w, const pd_action_def_t *def) {
        pd_reactor_t *r = w->r;

        pthread_mutex_lock(&r->lock);
        slot_add(r, def, -1);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

/*
 * Records that retry `attempt` of step was not started because a stop or
 * a reload cut its backoff short: action.finished INTERRUPTED with the
 * reason, and a run row saying so, so that the event, when it runs again,
 * runs the action again instead of taking the failure before as final.
 * A stop publishes it as final (retrying false), as it does an action it
 * interrupts: `deploy --wait` ends, and the next start runs it again. A
 * reload runs the event again at once under the new config, so the record
 * says more will come. A cancel is recorded CANCELLED, the action done
 * with. Returns 0 (a stop, a cancel), 1 (a reload: run the job again
 * once the config is swapped) or -1 (the store failed or gave up).
 */
static int step_cut(pd_worker_t *w, pd_plan_t *plan, pd_step_t *step,
                    int32_t attempt, int32_t max_attempts, int why) {
        char reason[512];
        pd_verdict_t v = {plan, step,    PD_ST_INTERRUPTED,   reason,
                          -1,   attempt, why == PD_NAP_RELOAD};

        if (why == PD_NAP_CANCEL) {
                pd_reactor_t *r = w->r;
                char *by;

                /* The cancel reached the action between two attempts:
                 * it is over, like a run stopped on it. */
                pthread_mutex_lock(&r->lock);
                w->action = NULL;
                if (w->cancel == PD_CANCEL_ASKED)
                        w->cancel = 0;
                by           = w->cancel_by;
                w->cancel_by = NULL;
                pthread_mutex_unlock(&r->lock);
                snprintf(reason, sizeof(reason),
                         "cancelled on request of %s (retry %d of %d not "
                         "started)",
                         by ? by : "?", (int)attempt - 1,
                         (int)max_attempts - 1);
                free(by);
                v.status = PD_ST_CANCELLED;
                pd_log(PD_LOG_WARN, "%s %s: %s", plan->job->tenant, step->name,
                       reason);
                if (pd__reactor_txn(w->r, pd__txn_verdict, &v))
                        return -1;
                step->status = PD_ST_CANCELLED;
                return 0;
        }
        snprintf(reason, sizeof(reason), "retry %d of %d not started: %s",
                 (int)attempt - 1, (int)max_attempts - 1,
                 why == PD_NAP_RELOAD
                     ? "the config is reloaded; the action runs again under "
                       "the new one"
                     : "the reactor is stopping; the action runs again at its "
                       "next start");
        pd_log(PD_LOG_WARN, "%s %s: %s", plan->job->tenant, step->name, reason);
        if (pd__reactor_txn(w->r, pd__txn_verdict, &v))
                return -1;
        step->status = PD_ST_INTERRUPTED;
        return why == PD_NAP_RELOAD;
}

/* One kind of run each: the step's attempt a, its outcome into res. */

/* Waits for a run a crashed reactor left to the supervisor (adopted). */
static void run_adopted(pd_worker_t *w, const pd_job_t *job,
                        const pd_adopt_t *ad, pd_runner_result_t *res) {
        pd_log(PD_LOG_INFO,
               "%s %s: adopting run %" PRId64 " from before the restart",
               job->tenant, ad->action, ad->run_id);
        if (pd_sup_wait(w->sup, ad->sup_id, &w->cancel, res) ==
            PD_SUP_UNKNOWN) {
                res->status = PD_ST_INTERRUPTED;
                snprintf(res->error, sizeof(res->error),
                         "interrupted: the supervisor lost "
                         "the run");
        }
}

/* In-process: a C action from a plugin. */
static void run_plugin(pd_worker_t *w, const pd_attempt_t *a,
                       pd_progress_t *prog, pd_runner_result_t *res) {
        const pd_job_t *job        = a->plan->job;
        const pd_action_def_t *def = a->step->def;
        pd_plugin_call_t call      = {0};
        char log_path[1024];

        call.tenant          = job->tenant;
        call.release         = job->ev->release;
        call.event_id        = job->ev->ce_id;
        call.environment     = job->ev->environment;
        call.attempt         = a->run.attempt;
        call.cancel          = &w->cancel;
        call.timeout_ms      = def->timeout_ms;
        call.params          = &job->ev->params;
        call.progress        = pd__progress_report;
        call.progress_opaque = prog;
        call.log_path = step_log_path(w->r, job, a, log_path, sizeof(log_path));
        if (pd_plugins_run(def->plugin_action, &call, res) && !*res->error)
                snprintf(res->error, sizeof(res->error),
                         "the plugin runner failed");
}

/* Under the supervisor, so the run and its outcome outlive a crash of
 * ours. argv: the action's command line, expanded. */
/* The START is out, its run's row maybe not yet committed. */
static void run_sent(void *opaque) {
        (void)opaque;
        pd__crashpoint("run.after_start");
}

static void run_command(pd_worker_t *w, const pd_attempt_t *a,
                        const pd_strv_t *argv, pd_progress_t *prog,
                        pd_runner_result_t *res) {
        const pd_job_t *job        = a->plan->job;
        const pd_action_def_t *def = a->step->def;
        pd_strv_t env              = {0};
        pd_runner_job_t rj         = {0};
        char log_path[1024];

        step_env(job, def, a->run.attempt, &env);
        rj.argv       = argv->v;
        rj.envp       = env.v;
        rj.workdir    = def->workdir;
        rj.timeout_ms = def->timeout_ms;
        /* None: the supervisor's starter's, ours. */
        rj.has_umask = def->umask >= 0;
        rj.umask     = (unsigned)def->umask;
        rj.log_path  = step_log_path(w->r, job, a, log_path, sizeof(log_path));
        rj.cancel    = &w->cancel;
        rj.sent      = run_sent;
        rj.progress  = pd__progress_report;
        rj.opaque    = prog;
        if (pd_sup_run(w->sup, a->run.sup_id, &rj, res) && !*res->error)
                snprintf(res->error, sizeof(res->error), "the runner failed");
        pd_strv_clear(&env);
}

/*
 * The run is over: a cancel request can no longer reach it. One that did
 * (the run was stopped on it: INTERRUPTED) makes the outcome CANCELLED,
 * with who asked, and no retry follows. A run that ended by itself before
 * the request got to it keeps its own outcome, but is not retried: the
 * answer said it was stopped. Returns whether a cancel reached it. A stop
 * of the reactor
 * (PD_CANCEL_STOP) stays set: the event is cut short as before.
 */
static int run_cancel_settle(pd_worker_t *w, pd_runner_result_t *res) {
        pd_reactor_t *r = w->r;
        char *by        = NULL;
        int asked;

        pthread_mutex_lock(&r->lock);
        w->action = NULL;
        asked     = w->cancel == PD_CANCEL_ASKED;
        if (asked)
                w->cancel = 0;
        by           = w->cancel_by;
        w->cancel_by = NULL;
        pthread_mutex_unlock(&r->lock);
        if (asked && res->status == PD_ST_INTERRUPTED) {
                res->status = PD_ST_CANCELLED;
                snprintf(res->error, sizeof(res->error),
                         "cancelled on request of %s", by ? by : "?");
        }
        free(by);
        return asked;
}

/* Runs a command action with its retries. Returns 0, 1 when a reload cut
 * a backoff short (the job runs again after the reload), or -1 if the
 * store or the supervisor failed for good. Sets step->status. */
static int step_run(pd_worker_t *w, pd_plan_t *plan, pd_step_t *step) {
        pd_reactor_t *r            = w->r;
        pd_job_t *job              = plan->job;
        const pd_action_def_t *def = step->def;
        int32_t max_attempts       = 1 + def->retries;
        pd_subst_t *vars           = NULL;
        pd_strv_t names            = {0};
        pd_strv_t argv             = {0};
        pd_adopt_t ad              = {0};
        int adopting               = 0;
        int lost_runs              = 0;
        int32_t attempt            = 1;
        int ret                    = 0;
        int64_t backoff;
        int cut, cancelled;

        if (!def->plugin_action) {
                /* {param.NAME} of each declared parameter: its value, or
                 * "" for an optional one not given. Substituted inside
                 * words after the split, so a value never adds or splits
                 * a word. */
                vars    = pd_xcalloc(3 + def->params.cnt, sizeof(*vars));
                vars[0] = (pd_subst_t){"tenant", job->tenant};
                vars[1] = (pd_subst_t){"release", job->ev->release};
                vars[2] = (pd_subst_t){"action", def->name};
                for (size_t i = 0; i < def->params.cnt; i++) {
                        const char *d = def->params.v[i];
                        size_t len    = strlen(d) - (d[strlen(d) - 1] == '?');
                        char *pname   = pd_xmalloc(len + 7);
                        const char *value;

                        snprintf(pname, len + 7, "param.%.*s", (int)len, d);
                        pd_strv_add(&names, pname);
                        value = pd__plan_param(job->ev, pname + 6);
                        vars[3 + i] =
                            (pd_subst_t){names.v[i], value ? value : ""};
                        free(pname);
                }
                pd_argv_expand(&def->argv, vars, 3 + def->params.cnt, &argv);
                free(vars);
                pd_strv_clear(&names);
                if (!worker_sup(w))
                        return -1;
                if ((adopting = adopt_take(r, job, def->name, &ad)))
                        attempt = ad.attempt;
        }

        for (; attempt <= max_attempts; attempt++) {
                pd_runner_result_t *res = pd_xcalloc(1, sizeof(*res));
                pd_attempt_t a          = {plan, step, {0}, NULL, 0, 0, {0}};
                int64_t gen;

                a.run.tenant         = job->tenant;
                a.run.action         = def->name;
                a.run.release        = job->ev->release;
                a.run.trigger_source = job->ev->ce_source;
                a.run.trigger_id     = job->ev->ce_id;
                a.run.attempt        = attempt;
                a.run.started_at     = pd_now_ms();
                a.run.sup_id         = def->plugin_action
                                           ? 0
                                           : run_sup_id(job, def->name, step->runs + 1);
                if ((cut = slot_take(w, &a, adopting, attempt == 1))) {
                        free(res);
                        if (cut < 0) {
                                ret = -1;
                        } else if (cut == PD_NAP_PARK) {
                                /* Nothing started: the job waits in the
                                 * queue and runs this step when a slot
                                 * frees (worker main, queue_take). */
                                job->parked = pd_xstrdup(def->name);
                                ret         = 1;
                        } else if (attempt > 1) {
                                ret = step_cut(w, plan, step, attempt,
                                               max_attempts, cut);
                        } else {
                                /* Nothing started, nothing to record: a
                                 * stop leaves the event to its redelivery,
                                 * a reload runs it again at once. */
                                step->status = PD_ST_INTERRUPTED;
                                ret          = cut == PD_NAP_RELOAD;
                        }
                        break;
                }
                a.run.started_at = pd_now_ms(); /* not when it queued */
                if (adopting) {
                        /* Its row and action.started are there already
                         * (a row a reactor before 2026-12-05 wrote at a
                         * command's start). */
                        a.run.id         = ad.run_id;
                        a.run.sup_id     = ad.sup_id;
                        a.run.started_at = ad.started_at;
                } else if (pd__attempt_start_whole(r, &a)) {
                        /* Every run, a command's too, is one row written
                         * at its end: a command's START is its record
                         * until then. A crash while it runs leaves no row;
                         * the redelivered event sends the same START
                         * (run_sup_id), and the supervisor, which keeps
                         * the run until FORGET, answers with it. A row
                         * at the start cost a second write of the run's
                         * pages and indexes, and an outbox row for
                         * action.started to insert and trim: 12% of the
                         * reactor's CPU per command (docs/BENCHMARKS.md,
                         * "2 on 2026-12-05"). */
                        slot_give(w, def);
                        free(res);
                        ret = -1;
                        break;
                }
                if (!adopting && !def->plugin_action)
                        step->runs++;

                /* What finished before and is durable now: its FORGET
                 * goes out with this START. */
                if (!def->plugin_action)
                        worker_forget(w, 0);
                pd__crashpoint("run.before_spawn");
                /* From here a cancel request finds it (cancel_handle,
                 * dispatch.c). */
                pthread_mutex_lock(&r->lock);
                w->action = def->name;
                pthread_mutex_unlock(&r->lock);
                pd_metrics_running_add(1);
                if (adopting) {
                        run_adopted(w, job, &ad, res);
                        adopting = 0;
                } else {
                        /* What it says of its progress goes out as it
                         * comes, at a bounded rate (progress.c); the last
                         * value before its action.finished. */
                        pd_progress_t *prog =
                            pd__progress_begin(r, &a.run, job->partition);

                        if (def->plugin_action)
                                run_plugin(w, &a, prog, res);
                        else
                                run_command(w, &a, &argv, prog, res);
                        pd__progress_end(prog);
                }

                pd_metrics_running_add(-1);
                slot_give(w, def);
                pd__crashpoint("run.after_exit");
                cancelled = run_cancel_settle(w, res);
                a.res     = res;
                /* A run stopped because we were silent past the lease
                 * is not lost to its supervisor: we may have lost its
                 * partition meanwhile, and a new owner may run it. */
                if (res->status == PD_ST_INTERRUPTED && !w->cancel &&
                    !def->plugin_action && !pd_sup_lease_cut(res) &&
                    lost_runs < PD_LOST_RUNS_MAX) {
                        /* Not by us: its supervisor died (or hung and was
                         * killed) and a new one stopped what was left. It
                         * runs again, and that costs none of its retries. */
                        lost_runs++;
                        max_attempts++;
                        a.retrying = 1;
                } else {
                        a.retrying = res->status != PD_ST_SUCCEEDED &&
                                     res->status != PD_ST_INTERRUPTED &&
                                     res->status != PD_ST_CANCELLED &&
                                     !cancelled && attempt < max_attempts;
                }
                pd_logf(
                    res->status == PD_ST_SUCCEEDED ? PD_LOG_INFO : PD_LOG_WARN,
                    (&(pd_log_fields_t){
                        .tenant       = job->tenant,
                        .action       = def->name,
                        .event_id     = job->ev->ce_id,
                        .attempt      = (int)attempt,
                        .status       = pd_status_name(res->status),
                        .reason       = *res->error ? res->error : NULL,
                        .has_duration = 1,
                        .duration_ms  = res->duration_ms,
                        .run_id       = a.run.id,
                        /* Written with its batch (txn.c): one write per
                         * attempt was 4% of an in-process action. */
                        .deferrable = def->plugin_action != NULL}),
                    "%s %s attempt %d: %s%s%s (%" PRId64 " ms)", job->tenant,
                    def->name, (int)attempt, pd_status_name(res->status),
                    *res->error ? ": " : "", res->error, res->duration_ms);
                pd__attempt_finish(r, &a);
                ret = pd__reactor_txn_gen(r, pd__txn_finished, &a, &gen);
                pd__outrec_clear(&a.out);
                if (ret) {
                        free(res);
                        ret = -1;
                        break;
                }
                pd_metrics_action_done(def->name, pd_status_name(res->status),
                                       res->duration_ms);
                /* The supervisor may forget it once that is durable. */
                if (!def->plugin_action)
                        worker_forget_later(w, a.run.sup_id, gen);
                step->status   = res->status;
                step->finished = 1;
                free(res);
                if (!a.retrying)
                        break;
                backoff = pd_action_backoff_ms(def, attempt);
                if (attempt <= def->retries)
                        pd_log(PD_LOG_INFO,
                               "%s %s: retry %d of %d in %" PRId64 " ms",
                               job->tenant, def->name, (int)attempt,
                               (int)def->retries, backoff);
                else /* an interrupted run goes again, whatever retries */
                        pd_log(PD_LOG_INFO,
                               "%s %s: interrupted; runs again in %" PRId64
                               " ms",
                               job->tenant, def->name, backoff);
                /* Between attempts it is still going: a cancel finds it
                 * and ends the wait (run_cancel_settle cleared it). */
                pthread_mutex_lock(&r->lock);
                w->action = def->name;
                pthread_mutex_unlock(&r->lock);
                cut = worker_nap(w, backoff);
                /* A cancel that came after the wait ended was answered
                 * "stopped" all the same: it wins over a reload, and
                 * must not be left set for whatever runs next. */
                pthread_mutex_lock(&r->lock);
                if (w->cancel == PD_CANCEL_ASKED)
                        cut = PD_NAP_CANCEL;
                else
                        w->action = NULL;
                pthread_mutex_unlock(&r->lock);
                if (cut) {
                        ret = step_cut(w, plan, step, attempt + 1, max_attempts,
                                       cut);
                        break;
                }
        }
        if (ad.tenant) /* taken, whether or not it got to run */
                pd__adopt_clear(&ad);
        pd_strv_clear(&argv);
        return ret;
}

int pd__held(const pd_reactor_t *r, const char *tenant, const char **byp,
             int *allp) {
        long i = pd_strv_find(&r->held, PD_STORE_ALL_TENANTS);

        if (allp)
                *allp = i >= 0;
        if (i < 0)
                i = pd_strv_find(&r->held, tenant);
        if (i >= 0 && byp)
                *byp = r->held_by.v[i];
        return i >= 0;
}

/*
 * A pause that came while this event was going: the step under way has
 * finished, the next waits for the resume. Returns 0 once the tenant is
 * not held, else PD_NAP_STOP or PD_NAP_RELOAD, as worker_nap.
 */
static int worker_hold(pd_worker_t *w, const pd_job_t *job) {
        pd_reactor_t *r = w->r;
        int why = 0, said = 0;

        pthread_mutex_lock(&r->lock);
        while (pd__held(r, job->tenant, NULL, NULL) || pd__reactor_suspect(r)) {
                if ((why = worker_interrupted(w)))
                        break;
                if (!pd__held(r, job->tenant, NULL, NULL))
                        ; /* suspect: pd__reactor_lease_ping says why */
                else if (!said++)
                        pd_log(PD_LOG_INFO,
                               "%s: paused: the rest of event %s waits for "
                               "the resume",
                               job->tenant, job->ev->ce_id);
                pd__cond_wait_ms(&r->cond, &r->lock, PD_STOP_POLL_MS);
        }
        pthread_mutex_unlock(&r->lock);
        return why;
}

/* Processes one release.deployed for its tenant. Returns 0 when the event
 * is done (its offset may be stored), -1 when it was cut short, 1 when a
 * reload cut it short and it goes back to the queue. */
static int job_process(pd_worker_t *w, pd_job_t *job) {
        pd_reactor_t *r = w->r;
        pd_plan_t plan  = {job, NULL, 0, {0}, {0}};
        int ret         = -1;
        int dry = job->ev->type == PD_EVT_RELEASE_DEPLOYED && job->ev->dry_run;

        if (pd__reactor_txn(r, pd__txn_plan, &plan))
                goto done;
        pd_logf(PD_LOG_INFO,
                (&(pd_log_fields_t){.tenant     = job->tenant,
                                    .event_id   = job->ev->ce_id,
                                    .deferrable = 1}),
                "%s: %s %s %s: %zu action(s)%s", job->tenant,
                pd_evtype_name(job->ev->type),
                job->ev->type == PD_EVT_RELEASE_DEPLOYED
                    ? pd_selection_name(job->ev->selection)
                : job->ev->all_pending ? "all"
                                       : "named",
                job->ev->ce_id, plan.cnt,
                dry ? " would run (dry run: none runs)" : "");
        /* A dry run's answer is its deploy.planned: nothing runs, and the
         * event is marked done like any other. Redelivered after a crash,
         * it is planned and answered again; nothing runs either time. */
        if (dry)
                plan.cnt = 0;

        for (size_t i = 0; i < plan.cnt; i++) {
                pd_step_t *step = &plan.steps[i];
                const pd_step_t *blocker;
                char reason[512];
                pd_verdict_t v = {&plan, step, PD_ST_REJECTED, reason, -1,
                                  1,     0};
                int stop, hold;

                if (step->finished)
                        continue;
                pthread_mutex_lock(&r->lock);
                /* Revoked: the partition's next owner redelivers it. */
                stop = r->draining || r->fatal || job->revoked;
                pthread_mutex_unlock(&r->lock);
                if (stop)
                        goto done; /* redelivered after restart */

                if (!step->def) {
                        snprintf(reason, sizeof(reason), "unknown action '%s'",
                                 step->name);
                        if (pd__reactor_txn(r, pd__txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = PD_ST_REJECTED;
                        continue;
                }
                if (job->ev->type != PD_EVT_RELEASE_DEPLOYED) {
                        int skip = job->ev->type == PD_EVT_SKIP_REQUESTED;
                        snprintf(reason, sizeof(reason), "%s on request of %s",
                                 skip ? "skipped" : "reset",
                                 job->ev->requested_by && *job->ev->requested_by
                                     ? job->ev->requested_by
                                     : job->ev->ce_source);
                        v.status   = skip ? PD_ST_SKIPPED : PD_ST_RESET;
                        v.set_done = skip;
                        if (pd__reactor_txn(r, pd__txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = v.status;
                        continue;
                }
                if ((blocker = pd__plan_blocker(&plan, step))) {
                        snprintf(reason, sizeof(reason), "dependency %s %s",
                                 blocker->name,
                                 pd_status_name(blocker->status));
                        v.status = PD_ST_SKIPPED;
                        if (pd__reactor_txn(r, pd__txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = PD_ST_SKIPPED;
                        continue;
                }
                if (job->ev->type == PD_EVT_RELEASE_DEPLOYED &&
                    pd__plan_params_refused(step->def, job->ev, reason,
                                            sizeof(reason))) {
                        if (pd__reactor_txn(r, pd__txn_verdict, &v))
                                goto done;
                        step->finished = 1;
                        step->status   = PD_ST_REJECTED;
                        continue;
                }
                if ((hold = worker_hold(w, job))) {
                        ret = hold == PD_NAP_RELOAD ? 1 : -1;
                        goto done;
                }
                if ((ret = step_run(w, &plan, step)))
                        goto done; /* -1 failed, 1 runs again */
                ret = -1;
                /* Cut short by our stop: the event is redelivered. Any
                 * other interruption (a run its supervisor lost, again and
                 * again) is an outcome like a failure. */
                if (step->status == PD_ST_INTERRUPTED && worker_stopping(w))
                        goto done;
        }
        /* The main thread stores the offset once job->gen is durable; the
         * worker goes on meanwhile. */
        ret = pd__reactor_txn_gen(r, pd__txn_event_done, job, &job->gen);
        if (!ret)
                pd_metrics_event(PD_METRICS_PROCESSED);

done:
        free(plan.steps);
        pd_strv_clear(&plan.skipped);
        pd_strv_clear(&plan.skipped_why);
        return ret;
}

/*
 * Takes the oldest queued job whose tenant no other worker is busy with, so
 * a tenant's events run one at a time and in order, while a slow tenant
 * never holds up the others. Called with r->lock held; NULL if none.
 */
static pd_job_t *queue_take(pd_reactor_t *r) {
        pd_job_t **pp = &r->queue_head, *prev = NULL;
        int parked = 0; /* tenants in r->parked_tenants this scan */

        if (r->paused || pd__reactor_suspect(r))
                return NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next) {
                pd_job_t *job = *pp;
                size_t tlen   = strlen(job->tenant);
                int busy      = 0;

                /* Paused by an operator: it waits for the resume, and so
                 * do the tenant's later events, in order. */
                if (pd__held(r, job->tenant, NULL, NULL))
                        continue;

                for (int i = 0; i < r->worker_cnt && !busy; i++)
                        busy = r->workers[i].tenant &&
                               !strcmp(r->workers[i].tenant, job->tenant);
                if (busy)
                        continue;
                /* A tenant whose parked job waits holds its later jobs
                 * back: its events run in order. */
                if (parked && pd_map_get(r->parked_tenants, job->tenant, tlen))
                        continue;
                if (job->parked) {
                        const pd_action_def_t *def =
                            pd_config_action(r->conf, job->parked);

                        if (def && !slot_free(r, def)) {
                                if (!parked++)
                                        pd_map_clear(r->parked_tenants, NULL);
                                *pd_map_put(r->parked_tenants, job->tenant,
                                            tlen) = job;
                                continue;
                        }
                        free(job->parked);
                        job->parked = NULL;
                }
                *pp = job->next;
                if (r->queue_tail == job)
                        r->queue_tail = prev;
                job->next = NULL;
                return job;
        }
        return NULL;
}

void *pd__worker_main(void *arg) {
        pd_worker_t *w  = arg;
        pd_reactor_t *r = w->r;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                pd_job_t *job = NULL;
                int rc;

                while (!r->draining && !(job = queue_take(r))) {
                        if (w->forget_cnt) {
                                /* Idle: settle with the supervisor first. */
                                pthread_mutex_unlock(&r->lock);
                                worker_forget(w, 1);
                                if (w->sup)
                                        pd_sup_forget_flush(w->sup);
                                pthread_mutex_lock(&r->lock);
                                continue;
                        }
                        pthread_cond_wait(&r->cond, &r->lock);
                }
                if (!job)
                        break;
                w->tenant = job->tenant;
                w->job    = job;
                /* A revoke interrupted the last one; this one is ours. */
                if (w->cancel == PD_CANCEL_STOP && r->conf->shared_group)
                        w->cancel = 0;
                pthread_mutex_unlock(&r->lock);

                rc = job_process(w, job);

                pthread_mutex_lock(&r->lock);
                w->tenant = NULL;
                w->job    = NULL;
                if (rc > 0 && !job->revoked) {
                        /* First in line again, ahead of its tenant's later
                         * events: it runs once the new config is in. */
                        job->next     = r->queue_head;
                        r->queue_head = job;
                        if (!r->queue_tail)
                                r->queue_tail = job;
                } else if (!rc) {
                        /* Hand it back to the main thread to store the
                         * offset. A job cut short is not: its offset must
                         * not move past it. */
                        pd_event_destroy(job->ev);
                        job->ev      = NULL;
                        job->next    = r->done_head;
                        r->done_head = job;
                }
                /* The tenant is free: its next job may go now. */
                pthread_cond_broadcast(&r->cond);
        }
        pthread_mutex_unlock(&r->lock);
        worker_forget(w, 1);
        free(w->forget);
        w->forget = NULL;
        pd_sup_close(w->sup);
        w->sup = NULL;
        return NULL;
}
