/*
 * dispatch.c - the main thread's side of an event: a consumed message is
 * verified, decoded and queued to a worker (or dead-lettered through the
 * outbox with why), tracked in its partition's order, and its offset is
 * stored once it and every earlier event of its partition are durably done.
 */

#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Main thread: dispatch and offsets                                   */

static pd_partq_t *partq(pd_reactor_t *r, int32_t partition) {
        if (partition >= r->partq_cnt) {
                int32_t cnt = partition + 16;
                r->partqs =
                    pd_xrealloc(r->partqs, (size_t)cnt * sizeof(*r->partqs));
                memset(r->partqs + r->partq_cnt, 0,
                       (size_t)(cnt - r->partq_cnt) * sizeof(*r->partqs));
                r->partq_cnt = cnt;
        }
        return &r->partqs[partition];
}

/* Tracks a consumed message in its partition's order. */
static pd_job_t *job_track(pd_reactor_t *r, const rd_kafka_message_t *rkm) {
        pd_job_t *job  = pd_xcalloc(1, sizeof(*job));
        pd_partq_t *pq = partq(r, rkm->partition);

        job->partition = rkm->partition;
        job->offset    = rkm->offset;
        if (pq->tail)
                pq->tail->pnext = job;
        else
                pq->head = job;
        pq->tail = job;
        pq->cnt++;
        r->inflight++;
        return job;
}

/* Stores the offset of each partition's leading run of done events. */
void pd__offsets_advance(pd_reactor_t *r) {
        rd_kafka_topic_partition_list_t *offsets = NULL;
        pd_job_t *done, *dnext, *later = NULL;

        pthread_mutex_lock(&r->lock);
        done         = r->done_head;
        r->done_head = NULL;
        pthread_mutex_unlock(&r->lock);
        /* Done means marked done in a batch that is durable. */
        for (; done; done = dnext) {
                dnext = done->next;
                if (pd__batch_produced(r, done->gen)) {
                        done->done = 1;
                } else {
                        done->next = later;
                        later      = done;
                }
        }
        if (later) {
                pd_job_t *tail = later;

                while (tail->next)
                        tail = tail->next;
                pthread_mutex_lock(&r->lock);
                tail->next   = r->done_head;
                r->done_head = later;
                pthread_mutex_unlock(&r->lock);
        }

        for (int32_t p = 0; p < r->partq_cnt; p++) {
                pd_partq_t *pq = &r->partqs[p];
                int64_t next   = -1;

                while (pq->head && pq->head->done) {
                        pd_job_t *job = pq->head;
                        pq->head      = job->pnext;
                        next          = job->offset + 1;
                        free(job->tenant);
                        free(job->parked);
                        free(job);
                        r->inflight--;
                        pq->cnt--;
                }
                if (!pq->head)
                        pq->tail = NULL;
                if (next < 0)
                        continue;
                if (!offsets)
                        offsets = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(offsets,
                                                  r->conf->topic_events, p)
                    ->offset = next;
        }
        if (offsets && r->conf->shared_group) {
                /* Committed with the results they follow, in the next
                 * Kafka transaction (publish.c). */
                pd__crashpoint("offsets.before_store");
                pd__publish_offsets(r, offsets);
                rd_kafka_topic_partition_list_destroy(offsets);
        } else if (offsets) {
                rd_kafka_resp_err_t err;

                pd__crashpoint("offsets.before_store");
                err = rd_kafka_offsets_store(r->consumer, offsets);
                /* An offset not stored is an event that comes again: worth
                 * a warning, but once per kind of error, not per event. */
                if (err && err != r->offsets_err)
                        pd_log(PD_LOG_WARN,
                               "offsets_store: %s; those events may come "
                               "again after a restart (said once until the "
                               "error changes)",
                               rd_kafka_err2str(err));
                else if (!err && r->offsets_err)
                        pd_log(PD_LOG_INFO, "offsets_store works again");
                r->offsets_err = err;
                rd_kafka_topic_partition_list_destroy(offsets);
        }
}

/* A record that cannot be processed goes to the dead-letter topic with its
 * key, value and headers, plus headers saying why and where from. */
typedef struct pd_dead_s {
        const rd_kafka_message_t *rkm;
        const char *reason;
} pd_dead_t;

static int txn_dead_letter(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        const pd_dead_t *d            = arg;
        const rd_kafka_message_t *rkm = d->rkm;
        rd_kafka_headers_t *orig      = NULL;
        rd_kafka_headers_t *hdrs;
        char buf[64], *key = NULL;
        void *value = NULL;
        int ret;

        if (!rd_kafka_message_headers(rkm, &orig))
                hdrs = rd_kafka_headers_copy(orig);
        else
                hdrs = rd_kafka_headers_new(6);
        rd_kafka_header_add(hdrs, "postdeploy_error", -1, d->reason, -1);
        rd_kafka_header_add(hdrs, "postdeploy_topic", -1,
                            rd_kafka_topic_name(rkm->rkt), -1);
        snprintf(buf, sizeof(buf), "%" PRId32, rkm->partition);
        rd_kafka_header_add(hdrs, "postdeploy_partition", -1, buf, -1);
        snprintf(buf, sizeof(buf), "%" PRId64, rkm->offset);
        rd_kafka_header_add(hdrs, "postdeploy_offset", -1, buf, -1);
        rd_kafka_header_add(hdrs, "postdeploy_reactor", -1, r->name, -1);

        /* The outbox keeps keys as text: a binary key is kept up to its
         * first NUL, the value whole. */
        if (rkm->key) {
                key = pd_xcalloc(1, rkm->key_len + 1);
                memcpy(key, rkm->key, rkm->key_len);
        }
        value = pd_xcalloc(1, rkm->len + 1);
        if (rkm->len)
                memcpy(value, rkm->payload, rkm->len);
        ret = pd__outbox_put(r, oq, r->conf->topic_dlq, key, hdrs, value,
                             rkm->len);
        free(key);
        return ret;
}

/* With a signing key, only events signed with it get in: anyone who can
 * write to the topic must not be able to trigger actions. Nor can a signed
 * event older than max_event_age: a copy of last month's event verifies,
 * and the state that would skip it as seen may be gone (a new reactor, a
 * fresh database). Returns 0, or -1 with the reason for the dead-letter
 * topic. */
static int reactor_verify(pd_reactor_t *r, const rd_kafka_message_t *rkm,
                          char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;

        if (!r->secret)
                return 0;
        if (rd_kafka_message_headers(rkm, &hdrs))
                hdrs = NULL;
        if (pd_sign_verify(hdrs, rkm->key, rkm->key_len, rkm->payload, rkm->len,
                           r->secret, r->secret_len, errstr, errstr_size))
                return -1;
        return pd_sign_check_age(hdrs, pd_now_ms(), r->conf->max_event_age_ms,
                                 errstr, errstr_size);
}

/* Whether the record's ce_type is one the events topic takes, checked
 * before decoding so the reason says what is wrong, not what is missing. */
static int reactor_type_check(pd_reactor_t *r, const rd_kafka_message_t *rkm,
                              char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *val;
        size_t size;
        pd_evtype_t type;
        char name[64];

        if (rd_kafka_message_headers(rkm, &hdrs) ||
            rd_kafka_header_get_last(hdrs, "ce_type", &val, &size) || !val)
                return 0; /* the decoder names what is missing */
        snprintf(name, sizeof(name), "%.*s", (int)size, (const char *)val);
        type = pd_evtype_parse(name);
        if (type == PD_EVT_UNKNOWN || type == PD_EVT_RELEASE_DEPLOYED ||
            type == PD_EVT_SKIP_REQUESTED || type == PD_EVT_RESET_REQUESTED ||
            type == PD_EVT_CANCEL_REQUESTED || type == PD_EVT_PAUSE_REQUESTED ||
            type == PD_EVT_RESUME_REQUESTED)
                return 0;
        snprintf(errstr, errstr_size, "ce_type %s is not accepted on %s", name,
                 r->conf->topic_events);
        return -1;
}

/* A cancel request's answer and its event marked done, in one part. */
typedef struct cancel_s {
        pd_job_t *job;   /* the request */
        pd_event_t *ans; /* actions.cancel_answered */
} cancel_t;

static int txn_cancel_answer(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        cancel_t *c = arg;
        char key[300];

        pd__outq_for_job(oq, c->job);
        if (pd_store_event_mark(r->st, c->job->ev->ce_source, c->job->ev->ce_id,
                                c->job->tenant, pd_now_ms()))
                return -1;
        /* One key per tenant: a compacted topic keeps the newest answer. */
        snprintf(key, sizeof(key), "%s/~cancel", c->job->tenant);
        return pd__emit(r, oq, c->ans, key);
}

/*
 * actions.cancel_requested, handled as it is consumed: the run it stops is
 * going now, on the worker busy with its tenant, so the request cannot
 * wait in that tenant's queue behind the deploy it cancels. Each named
 * action (or, with all_running, any) that a worker is running for the
 * tenant gets PD_CANCEL_ASKED; the worker kills it (a command through the
 * supervisor: SIGTERM to its group, SIGKILL after the grace; a plugin sees
 * cancelled()) and records CANCELLED (run_cancel_settle). The answer says
 * which were stopped and which were not running; nothing else changes. Its
 * offset moves once the answer's part is durable, like any event's.
 */
static void cancel_handle(pd_reactor_t *r, pd_job_t *job) {
        const pd_event_t *req = job->ev;
        const char *by        = req->requested_by && *req->requested_by
                                    ? req->requested_by
                                    : req->ce_source;
        pd_event_t *ans       = pd_event_new(PD_EVT_CANCEL_ANSWERED);
        cancel_t c            = {job, ans};

        ans->tenant     = pd_xstrdup(job->tenant);
        ans->trigger_id = pd_xstrdup(req->ce_id);
        ans->reactor    = pd_xstrdup(r->name);
        ans->requested_by =
            pd_xstrdup(req->requested_by ? req->requested_by : "");
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < r->worker_cnt; i++) {
                pd_worker_t *w = &r->workers[i];

                if (!w->tenant || !w->action || strcmp(w->tenant, job->tenant))
                        continue;
                if (!req->all_pending &&
                    pd_strv_find(&req->actions, w->action) < 0)
                        continue;
                /* A stop already cuts it short: it runs again after the
                 * restart, which a cancel must not turn into CANCELLED. */
                if (w->cancel)
                        continue;
                free(w->cancel_by);
                w->cancel_by = pd_xstrdup(by);
                w->cancel    = PD_CANCEL_ASKED;
                pd_strv_add(&ans->actions, w->action);
        }
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; i < req->actions.cnt; i++)
                if (pd_strv_find(&ans->actions, req->actions.v[i]) < 0)
                        pd_strv_add(&ans->not_running, req->actions.v[i]);
        pd_log(PD_LOG_INFO,
               "%s: cancel requested by %s: %zu stopped, %zu not "
               "running",
               job->tenant, by, ans->actions.cnt, ans->not_running.cnt);
        if (!pd__reactor_txn_gen(r, txn_cancel_answer, &c, &job->gen)) {
                pd_event_destroy(job->ev);
                job->ev = NULL;
                pthread_mutex_lock(&r->lock);
                job->next    = r->done_head;
                r->done_head = job;
                pthread_mutex_unlock(&r->lock);
        }
        pd_event_destroy(ans);
}

/* A pause's or resume's record on the results topic: key tenant/~pause,
 * or ~pause for every tenant (a key without a tenant: every report reads
 * it). The newest per key is the pause's state. */
static int pause_emit(pd_reactor_t *r, pd_outq_t *oq, pd_evtype_t type,
                      const char *tenant, const char *by, int64_t at) {
        pd_event_t *ev = pd_event_new(type);
        char key[300];
        int ret;

        ev->tenant       = tenant ? pd_xstrdup(tenant) : NULL;
        ev->all_tenants  = !tenant;
        ev->requested_by = pd_xstrdup(by ? by : "");
        ev->requested_at = at;
        if (tenant)
                snprintf(key, sizeof(key), "%s/~pause", tenant);
        else
                snprintf(key, sizeof(key), "~pause");
        ret = pd__emit(r, oq, ev, key);
        pd_event_destroy(ev);
        return ret;
}

/* Removes sv->v[i], the last one taking its place. */
static void strv_remove(pd_strv_t *sv, size_t i) {
        if (i + 1 < sv->cnt)
                pd_strv_set(sv, i, sv->v[sv->cnt - 1]);
        pd_strv_truncate(sv, sv->cnt - 1);
}

typedef struct pause_s {
        pd_job_t *job;
        pd_strv_t tenants; /* resume of every tenant: those paused one by
                            * one, each told resumed too */
} pause_t;

static int txn_pause(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        pause_t *p            = arg;
        const pd_event_t *req = p->job->ev;
        const char *tenant    = req->all_tenants ? NULL : p->job->tenant;
        int pause             = req->type == PD_EVT_PAUSE_REQUESTED;

        /* A pause of every tenant belongs to no one tenant's partition. */
        if (tenant)
                pd__outq_for_job(oq, p->job);
        if (pd_store_event_mark(r->st, req->ce_source, req->ce_id,
                                p->job->tenant, pd_now_ms()))
                return -1;
        if (pause ? pd_store_pause_set(r->st, tenant, req->requested_by,
                                       req->requested_at)
                  : pd_store_pause_clear(r->st, tenant))
                return -1;
        for (size_t i = 0; i < p->tenants.cnt; i++)
                if (pause_emit(r, oq, PD_EVT_RESUME_REQUESTED, p->tenants.v[i],
                               req->requested_by, req->requested_at))
                        return -1;
        return pause_emit(r, oq, req->type, tenant, req->requested_by,
                          req->requested_at);
}

/*
 * actions.pause_requested / actions.resume_requested, handled as they are
 * consumed: a resume queued behind the tenant's held events would never be
 * reached. The pause is kept in the store (a restart keeps it), held in
 * memory for the workers (queue_take passes the tenant's events by,
 * worker_hold stops an event between two steps), and said on the results
 * topic for the report and --wait.
 */
static void pause_handle(pd_reactor_t *r, pd_job_t *job) {
        pd_event_t *req = job->ev;
        const char *tenant =
            req->all_tenants ? PD_STORE_ALL_TENANTS : job->tenant;
        int pause = req->type == PD_EVT_PAUSE_REQUESTED;
        pause_t p = {job, {0}};

        pthread_mutex_lock(&r->lock);
        if (!pause && req->all_tenants)
                for (size_t i = 0; i < r->held.cnt; i++)
                        if (strcmp(r->held.v[i], PD_STORE_ALL_TENANTS))
                                pd_strv_add(&p.tenants, r->held.v[i]);
        pthread_mutex_unlock(&r->lock);
        if (pd__reactor_txn_gen(r, txn_pause, &p, &job->gen)) {
                pd_strv_clear(&p.tenants);
                return; /* the reactor fails: nothing changes here */
        }
        pd_strv_clear(&p.tenants);
        pthread_mutex_lock(&r->lock);
        if (pause) {
                long i = pd_strv_find(&r->held, tenant);

                if (i < 0) {
                        pd_strv_add(&r->held, tenant);
                        pd_strv_add(&r->held_by,
                                    req->requested_by ? req->requested_by : "");
                } else {
                        pd_strv_set(&r->held_by, (size_t)i,
                                    req->requested_by ? req->requested_by : "");
                }
        } else if (req->all_tenants) {
                pd_strv_clear(&r->held);
                pd_strv_clear(&r->held_by);
        } else {
                long i = pd_strv_find(&r->held, tenant);

                if (i >= 0) {
                        strv_remove(&r->held, (size_t)i);
                        strv_remove(&r->held_by, (size_t)i);
                }
        }
        /* A resume frees the held events for the workers. */
        pthread_cond_broadcast(&r->cond);
        job->ev      = NULL; /* req, ours until destroyed below */
        job->next    = r->done_head;
        r->done_head = job;
        pthread_mutex_unlock(&r->lock);
        pd_log(
            PD_LOG_WARN, "%s %s by %s", pause ? "paused" : "resumed",
            req->all_tenants ? "every tenant" : tenant,
            req->requested_by && *req->requested_by ? req->requested_by : "?");
        pd_event_destroy(req);
}

/* An event that came for a paused tenant waits: it says so on the results
 * topic (the pause's record again), so a `deploy --wait` on it says
 * paused instead of waiting in silence. */
typedef struct held_s {
        const char *tenant; /* NULL: every tenant is paused */
        const char *by;
} held_t;

static int txn_held(pd_reactor_t *r, pd_outq_t *oq, void *arg) {
        held_t *h = arg;

        return pause_emit(r, oq, PD_EVT_PAUSE_REQUESTED, h->tenant, h->by,
                          pd_now_ms());
}

/* Handles one consumed message (main thread). */
void pd__reactor_dispatch(pd_reactor_t *r, rd_kafka_message_t *rkm) {
        pd_job_t *job        = job_track(r, rkm);
        pd_metrics_dlq_t why = PD_METRICS_DLQ_INVALID;
        char errstr[512];
        pd_event_t *ev;
        int done = 0;

        pd__crashpoint("dispatch.received");
        if (r->conf->shared_group)
                pd__publish_seen(r, rd_kafka_topic_name(rkm->rkt),
                                 rkm->partition, rkm->offset);
        if (rkm->len > (size_t)r->conf->max_event_bytes) {
                snprintf(errstr, sizeof(errstr),
                         "record of %zu bytes is over max_event_bytes (%d)",
                         rkm->len, r->conf->max_event_bytes);
                ev  = NULL;
                why = PD_METRICS_DLQ_TOO_LARGE;
        } else if (reactor_verify(r, rkm, errstr, sizeof(errstr))) {
                ev  = NULL;
                why = PD_METRICS_DLQ_SIGNATURE;
        } else if (reactor_type_check(r, rkm, errstr, sizeof(errstr))) {
                ev  = NULL;
                why = PD_METRICS_DLQ_WRONG_TYPE;
        } else {
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
        }
        if (!ev) {
                pd_dead_t d = {rkm, errstr};
                pd_logf(PD_LOG_WARN,
                        (&(pd_log_fields_t){.status = "dead_letter",
                                            .reason = errstr}),
                        "%s [%" PRId32 "] @%" PRId64 ": %s: sent to %s",
                        rd_kafka_topic_name(rkm->rkt), rkm->partition,
                        rkm->offset, errstr, r->conf->topic_dlq);
                if (!pd__reactor_txn_sync(r, txn_dead_letter, &d)) {
                        pd_metrics_dead_letter(why);
                        job->done = 1;
                }
                return;
        }

        pthread_mutex_lock(&r->st_lock);
        if (pd_store_event_done(r->st, ev->ce_source, ev->ce_id, &done))
                done = 0; /* the worker's own transaction will retry */
        pthread_mutex_unlock(&r->st_lock);
        /* It may be marked done in the open batch: acknowledge it only
         * once that is durable. */
        if (done && pd__batch_flush(r))
                done = 0;
        if (done) {
                pd_log(PD_LOG_INFO, "event %s from %s seen before: skipped",
                       ev->ce_id, ev->ce_source);
                pd_metrics_event(PD_METRICS_DUPLICATE);
                pd_event_destroy(ev);
                job->done = 1;
                return;
        }

        job->ev = ev;
        job->tenant =
            pd_xstrdup(ev->tenant ? ev->tenant : r->conf->default_tenant);
        if (ev->type == PD_EVT_CANCEL_REQUESTED) {
                cancel_handle(r, job);
                return;
        }
        if (ev->type == PD_EVT_PAUSE_REQUESTED ||
            ev->type == PD_EVT_RESUME_REQUESTED) {
                pause_handle(r, job);
                return;
        }
        {
                const char *by = NULL;
                char *by_copy  = NULL;
                int all        = 0, held;

                pthread_mutex_lock(&r->lock);
                held = pd__held(r, job->tenant, &by, &all);
                if (held)
                        by_copy = pd_xstrdup(by);
                pthread_mutex_unlock(&r->lock);
                if (held) {
                        held_t h = {all ? NULL : job->tenant, by_copy};

                        pd_log(PD_LOG_INFO,
                               "%s: paused: event %s waits for the resume",
                               job->tenant, ev->ce_id);
                        /* Only said: the event waits whatever happens. */
                        (void)pd__reactor_txn(r, txn_held, &h);
                        free(by_copy);
                }
        }
        pthread_mutex_lock(&r->lock);
        if (r->queue_tail)
                r->queue_tail->next = job;
        else
                r->queue_head = job;
        r->queue_tail = job;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}
