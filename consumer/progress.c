/*
 * progress.c - action.progress records: how far a running action has got,
 * as it says itself (a plugin's ctx->progress, a command's lines on
 * POSTDEPLOY_PROGRESS_FD, forwarded by the supervisor).
 *
 * An action may report a thousand times a second; the results topic gets
 * at most one record per run per [reactor] progress_interval, plus the
 * last value just before the run's action.finished. Only the newest value
 * of a run is kept. The first report of a run goes out at once; one that
 * comes sooner than the interval after the last record waits, and is sent
 * when the interval has passed by the hub's thread (the worker is busy
 * running the action then), unless a newer value replaced it first.
 *
 * The records only inform, like an in-process action.started: they are
 * produced straight away, without the outbox or the store, and a crash or
 * a full producer queue may lose one. They are keyed tenant/action/progress,
 * so the compaction of the results topic never lets one replace the
 * action's tenant/action record (its action.finished), and go to the
 * partition of the run's event, like its action.started and
 * action.finished: the last progress is on the topic before the finished
 * record. In a shared group they go in the Kafka transaction like every
 * result (publish.c).
 */
#include "consumer/reactor_int.h"

#include <errno.h>
#include <time.h>

/* What the hub keeps for every run that reports (pd__progress_begin). */
struct pd_progress_s {
        pd_reactor_t *r;
        char *tenant, *action, *release, *trigger_id;
        int32_t attempt;
        int32_t part; /* of the run's event */
        int64_t interval_ms;
        int64_t done, total, at;    /* the newest value */
        int unsent;                 /* ... not produced yet */
        int64_t sent_ms;            /* monotonic, of the last record; -1 */
        pd_progress_t *next, *prev; /* in the hub's list while unsent */
        int listed;
};

/* The reactor's: a thread that produces the values that wait. */
struct pd_progress_hub_s {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* a value waits, or stop */
        pthread_t thread;
        int stop;
        pd_progress_t *waiting; /* runs with a value held back */
};

/* Produces p's newest value. Under the hub's lock. */
static void progress_produce(pd_progress_t *p) {
        pd_reactor_t *r = p->r;
        pd_event_t *ev  = pd_event_new(PD_EVT_ACTION_PROGRESS);
        pd_outrec_t o;
        char key[256];

        ev->tenant     = pd_xstrdup(p->tenant);
        ev->action     = pd_xstrdup(p->action);
        ev->release    = pd_xstrdup(p->release);
        ev->trigger_id = pd_xstrdup(p->trigger_id);
        ev->reactor    = pd_xstrdup(r->name);
        ev->attempt    = p->attempt;
        ev->done       = p->done;
        ev->total      = p->total;
        ev->at         = p->at;
        snprintf(key, sizeof(key), "%s/%s/progress", p->tenant, p->action);
        pd__emit_encode(r, ev, key, &o);
        pd_event_destroy(ev);
        pd__produce_advisory(r, p->part, &o);
        pd__outrec_clear(&o);
        p->unsent  = 0;
        p->sent_ms = pd_mono_ms();
}

static void hub_unlist(pd_progress_hub_t *hub, pd_progress_t *p) {
        if (!p->listed)
                return;
        if (p->prev)
                p->prev->next = p->next;
        else
                hub->waiting = p->next;
        if (p->next)
                p->next->prev = p->prev;
        p->next = p->prev = NULL;
        p->listed         = 0;
}

/* The hub's thread: sends each held value once its interval has passed. */
static void *hub_main(void *arg) {
        pd_reactor_t *r        = arg;
        pd_progress_hub_t *hub = r->progress;

        pthread_mutex_lock(&hub->lock);
        while (!hub->stop) {
                int64_t now = pd_mono_ms(), next = now + 1000;
                struct timespec ts;
                pd_progress_t *p, *pnext;

                for (p = hub->waiting; p; p = pnext) {
                        int64_t due = p->sent_ms + p->interval_ms;

                        pnext = p->next;
                        if (due <= now) {
                                hub_unlist(hub, p);
                                progress_produce(p);
                        } else if (due < next) {
                                next = due;
                        }
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += (time_t)((next - now) / 1000);
                ts.tv_nsec += (long)((next - now) % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
        }
        pthread_mutex_unlock(&hub->lock);
        return NULL;
}

/* The reactor's hub, made with the first run (under r->lock). If its
 * thread cannot start, a value held back goes out only with a newer one
 * or at the run's end. */
static pd_progress_hub_t *hub_get(pd_reactor_t *r) {
        pd_progress_hub_t *hub;
        pthread_condattr_t ca;

        pthread_mutex_lock(&r->lock);
        if ((hub = r->progress)) {
                pthread_mutex_unlock(&r->lock);
                return hub;
        }
        hub = pd_xcalloc(1, sizeof(*hub));
        pthread_mutex_init(&hub->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&hub->cond, &ca);
        pthread_condattr_destroy(&ca);
        r->progress = hub;
        if (pthread_create(&hub->thread, NULL, hub_main, r)) {
                pd_log(PD_LOG_WARN,
                       "cannot start the progress thread: progress is "
                       "published only as it comes");
                hub->stop = -1; /* no thread to join */
        }
        pthread_mutex_unlock(&r->lock);
        return hub;
}

pd_progress_t *pd__progress_begin(pd_reactor_t *r, const pd_run_t *run,
                                  int32_t part) {
        pd_progress_t *p = pd_xcalloc(1, sizeof(*p));

        hub_get(r); /* the thread that sends values held back */
        p->r           = r;
        p->tenant      = pd_xstrdup(run->tenant);
        p->action      = pd_xstrdup(run->action);
        p->release     = pd_xstrdup(run->release);
        p->trigger_id  = pd_xstrdup(run->trigger_id);
        p->attempt     = run->attempt;
        p->part        = part;
        p->interval_ms = r->conf->progress_interval_ms;
        p->sent_ms     = -1;
        return p;
}

void pd__progress_report(void *opaque, int64_t done, int64_t total) {
        pd_progress_t *p       = opaque;
        pd_progress_hub_t *hub = p->r->progress;

        pthread_mutex_lock(&hub->lock);
        p->done   = done;
        p->total  = total;
        p->at     = pd_now_ms();
        p->unsent = 1;
        if (p->sent_ms < 0 || pd_mono_ms() - p->sent_ms >= p->interval_ms) {
                hub_unlist(hub, p);
                progress_produce(p);
        } else if (!p->listed) {
                p->next = hub->waiting;
                if (p->next)
                        p->next->prev = p;
                hub->waiting = p;
                p->listed    = 1;
                pthread_cond_signal(&hub->cond);
        }
        pthread_mutex_unlock(&hub->lock);
}

void pd__progress_end(pd_progress_t *p) {
        pd_progress_hub_t *hub;

        if (!p)
                return;
        hub = p->r->progress;
        pthread_mutex_lock(&hub->lock);
        hub_unlist(hub, p);
        if (p->unsent) /* the last value, before its action.finished */
                progress_produce(p);
        pthread_mutex_unlock(&hub->lock);
        free(p->tenant);
        free(p->action);
        free(p->release);
        free(p->trigger_id);
        free(p);
}

void pd__progress_hub_destroy(pd_reactor_t *r) {
        pd_progress_hub_t *hub = r->progress;

        if (!hub)
                return;
        pthread_mutex_lock(&hub->lock);
        if (!hub->stop) {
                hub->stop = 1;
                pthread_cond_signal(&hub->cond);
                pthread_mutex_unlock(&hub->lock);
                pthread_join(hub->thread, NULL);
        } else {
                pthread_mutex_unlock(&hub->lock);
        }
        pthread_mutex_destroy(&hub->lock);
        pthread_cond_destroy(&hub->cond);
        free(hub);
        r->progress = NULL;
}
