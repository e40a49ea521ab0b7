/*
 * metrics.c - the reactor's metrics registry and the state its health
 * probes read (see metrics.h).
 *
 * Counters are few and their label sets small (actions are the configured
 * ones, statuses and reasons are fixed sets), so one mutex and flat arrays
 * serve; the reactor's threads take it for a few instructions per action,
 * never while they wait for anything. The text is rendered on the HTTP
 * server's thread, under the same mutex.
 */
#define _POSIX_C_SOURCE 200809L
#include "consumer/metrics.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/map.h"
#include "common/xalloc.h"

/* Actions run from a fraction of a second to an hour. */
static const double action_buckets[] = {0.1, 0.5, 1,   5,    10,  30,
                                        60,  300, 900, 1800, 3600};
#define PD_ACTION_BUCKETS (sizeof(action_buckets) / sizeof(double))
/* A batch commit is a WAL append, an fsync with state_sync. */
static const double commit_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define PD_COMMIT_BUCKETS (sizeof(commit_buckets) / sizeof(double))
#define PD_BUCKETS_MAX    16

typedef struct pd_hist_s {
        uint64_t counts[PD_BUCKETS_MAX]; /* per bucket, not cumulative */
        uint64_t count;
        double sum;
} pd_hist_t;

typedef struct pd_action_m_s {
        char *action;
        char *status; /* NULL: the row of the action's histogram */
        uint64_t count;
        pd_hist_t hist;
} pd_action_m_t;

static const char *const outcome_names[PD_METRICS_OUTCOME_CNT] = {
    "processed", "duplicate", "dead_lettered"};
static const char *const dlq_names[PD_METRICS_DLQ_CNT] = {
    "too_large", "signature", "wrong_type", "invalid_event"};

static pthread_mutex_t m_lock = PTHREAD_MUTEX_INITIALIZER;
static pd_action_m_t *m_actions; /* under m_lock */
static size_t m_action_cnt;
static size_t m_action_cap; /* room in m_actions */
/* The rows by (action, status) (see action_key): each a row's place + 1.
 * Under m_lock. */
static pd_map_t *m_action_idx;
static uint64_t m_events[PD_METRICS_OUTCOME_CNT];
static uint64_t m_dlq[PD_METRICS_DLQ_CNT];
static pd_hist_t m_commit;
static int64_t m_lag = -1; /* -1: not known yet */
static uint64_t m_rebalances;
static int64_t m_rebalance_last; /* the current client's count */
static int m_joined;             /* group up with an assignment */
static int m_have_stats;

static atomic_int m_enabled;
static atomic_llong m_running;
static atomic_llong m_outbox;
static atomic_llong m_tick_ms;
static atomic_int m_cond[PD_METRICS_COND_CNT];

double pd_metrics_clock(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pd_metrics_enable(void) {
        atomic_store(&m_enabled, 1);
}

static void hist_observe(pd_hist_t *h, const double *bounds, size_t n,
                         double v) {
        size_t i = 0;

        while (i < n && v > bounds[i])
                i++;
        h->counts[i]++; /* i == n: only +Inf */
        h->count++;
        h->sum += v;
}

/* The index key of (action, status), its length in *lenp; the caller
 * frees it. "action" alone for the histogram's row (status NULL), else
 * "action\0status": a name holds no NUL, so no two rows share a key. */
static char *action_key(const char *action, const char *status, size_t *lenp) {
        size_t alen = strlen(action), slen = status ? strlen(status) + 1 : 0;
        char *key = pd_xmalloc(alen + slen + 1);

        memcpy(key, action, alen + 1);
        if (status)
                memcpy(key + alen + 1, status, slen);
        *lenp = alen + slen;
        return key;
}

/* The row for (action, status), made if new; status NULL is the action's
 * histogram. Found through the index: a scan of every row per finished
 * run was quadratic, most of the reactor's time for one deploy of 10,000
 * actions (perf: strcmp 45%). Under m_lock. */
static pd_action_m_t *action_row(const char *action, const char *status) {
        pd_action_m_t *m;
        size_t len;
        char *key = action_key(action, status, &len);
        void **slot;

        if (!m_action_idx)
                m_action_idx = pd_map_new();
        slot = pd_map_put(m_action_idx, key, len);
        free(key);
        if (*slot)
                return &m_actions[(uintptr_t)*slot - 1];
        *slot = (void *)(uintptr_t)(m_action_cnt + 1);
        m_actions =
            pd_xgrow(m_actions, &m_action_cap, m_action_cnt + 1, sizeof(*m));
        m = &m_actions[m_action_cnt++];
        memset(m, 0, sizeof(*m));
        m->action = pd_xstrdup(action);
        if (status)
                m->status = pd_xstrdup(status);
        return m;
}

void pd_metrics_action_done(const char *action, const char *status,
                            int64_t duration_ms) {
        char lower[32];
        size_t i;

        /* Prometheus label values are by convention lower case. */
        for (i = 0; status[i] && i < sizeof(lower) - 1; i++)
                lower[i] = (char)tolower((unsigned char)status[i]);
        lower[i] = '\0';
        pthread_mutex_lock(&m_lock);
        action_row(action, lower)->count++;
        hist_observe(&action_row(action, NULL)->hist, action_buckets,
                     PD_ACTION_BUCKETS, (double)duration_ms / 1000.0);
        pthread_mutex_unlock(&m_lock);
}

void pd_metrics_running_add(int delta) {
        atomic_fetch_add(&m_running, delta);
}

void pd_metrics_event(pd_metrics_outcome_t outcome) {
        pthread_mutex_lock(&m_lock);
        m_events[outcome]++;
        pthread_mutex_unlock(&m_lock);
}

void pd_metrics_dead_letter(pd_metrics_dlq_t reason) {
        pthread_mutex_lock(&m_lock);
        m_dlq[reason]++;
        m_events[PD_METRICS_DEAD_LETTERED]++;
        pthread_mutex_unlock(&m_lock);
}

void pd_metrics_outbox_add(int64_t delta) {
        atomic_fetch_add(&m_outbox, delta);
}

void pd_metrics_outbox_set(int64_t n) {
        atomic_store(&m_outbox, n);
}

void pd_metrics_commit_observe(double seconds) {
        pthread_mutex_lock(&m_lock);
        hist_observe(&m_commit, commit_buckets, PD_COMMIT_BUCKETS, seconds);
        pthread_mutex_unlock(&m_lock);
}

void pd_metrics_tick(void) {
        atomic_store(&m_tick_ms, pd_mono_ms());
}

void pd_metrics_cond_set(pd_metrics_cond_t cond, int ok) {
        atomic_store(&m_cond[cond], ok);
}

void pd_metrics_kafka_reset(void) {
        pthread_mutex_lock(&m_lock);
        m_joined         = 0;
        m_have_stats     = 0;
        m_lag            = -1;
        m_rebalance_last = 0;
        pthread_mutex_unlock(&m_lock);
        pd_metrics_cond_set(PD_METRICS_RESTORED, 0);
}

void pd_metrics_kafka_conf(rd_kafka_conf_t *kconf) {
        char errstr[256];

        if (!atomic_load(&m_enabled))
                return;
        /* Once a second: /readyz follows a join or a lost broker within
         * that; the statistics of one consumer cost next to nothing. */
        if (rd_kafka_conf_set(kconf, "statistics.interval.ms", "1000", errstr,
                              sizeof(errstr)) == RD_KAFKA_CONF_OK)
                rd_kafka_conf_set_stats_cb(kconf, pd_metrics_stats_cb);
}

int pd_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                        void *opaque) {
        json_t *root = json_loadb(json, json_len, 0, NULL);
        json_t *topics, *topic, *parts, *part, *brokers, *broker, *cgrp;
        const char *tname, *pname, *state;
        int64_t lag = 0, cnt;
        int up = 0, joined = 0;

        (void)rk, (void)opaque;
        if (!root)
                return 0;
        topics = json_object_get(root, "topics");
        json_object_foreach(topics, tname, topic) {
                parts = json_object_get(topic, "partitions");
                json_object_foreach(parts, pname, part) {
                        json_int_t l = json_integer_value(
                            json_object_get(part, "consumer_lag"));
                        /* -1: not assigned, or its position not known. */
                        if (strcmp(pname, "-1") && l > 0)
                                lag += l;
                }
        }
        brokers = json_object_get(root, "brokers");
        json_object_foreach(brokers, tname, broker) {
                state = json_string_value(json_object_get(broker, "state"));
                if (state && !strcmp(state, "UP"))
                        up = 1;
        }
        cgrp  = json_object_get(root, "cgrp");
        state = json_string_value(json_object_get(cgrp, "state"));
        cnt   = json_integer_value(json_object_get(cgrp, "rebalance_cnt"));
        joined =
            state && !strcmp(state, "up") &&
            json_integer_value(json_object_get(cgrp, "assignment_size")) > 0;

        pthread_mutex_lock(&m_lock);
        m_lag = lag;
        /* Per client; a new client (a reactor made again) starts at 0. */
        m_rebalances +=
            (uint64_t)(cnt >= m_rebalance_last ? cnt - m_rebalance_last : cnt);
        m_rebalance_last = cnt;
        m_joined         = joined;
        m_have_stats     = 1;
        pthread_mutex_unlock(&m_lock);
        pd_metrics_cond_set(PD_METRICS_BROKER_OK, up);
        json_decref(root);
        return 0;
}

/* ---- rendering ---- */

typedef struct pd_buf_s {
        char *p;
        size_t len, size;
} pd_buf_t;

static void buf_printf(pd_buf_t *b, const char *fmt, ...) {
        va_list ap;
        int n;

        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
                va_end(ap);
                if (n < 0)
                        abort();
                if ((size_t)n < b->size - b->len)
                        break;
                b->p = pd_xgrow(b->p, &b->size, b->len + (size_t)n + 1, 1);
        }
        b->len += (size_t)n;
}

/* A label value as the exposition format wants it: \, " and newline
 * escaped. */
static void buf_label(pd_buf_t *b, const char *v) {
        for (; *v; v++) {
                if (*v == '\\')
                        buf_printf(b, "\\\\");
                else if (*v == '"')
                        buf_printf(b, "\\\"");
                else if (*v == '\n')
                        buf_printf(b, "\\n");
                else
                        buf_printf(b, "%c", *v);
        }
}

static void buf_head(pd_buf_t *b, const char *name, const char *type,
                     const char *help) {
        buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; `action` NULL for one without labels. */
static void buf_hist(pd_buf_t *b, const char *name, const char *action,
                     const pd_hist_t *h, const double *bounds, size_t n) {
        uint64_t cum = 0;

        for (size_t i = 0; i <= n; i++) {
                cum += h->counts[i];
                buf_printf(b, "%s_bucket{", name);
                if (action) {
                        buf_printf(b, "action=\"");
                        buf_label(b, action);
                        buf_printf(b, "\",");
                }
                if (i < n)
                        buf_printf(b, "le=\"%g\"} %" PRIu64 "\n", bounds[i],
                                   cum);
                else
                        buf_printf(b, "le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
        buf_printf(b, "%s_sum", name);
        if (action) {
                buf_printf(b, "{action=\"");
                buf_label(b, action);
                buf_printf(b, "\"}");
        }
        buf_printf(b, " %.17g\n%s_count", h->sum, name);
        if (action) {
                buf_printf(b, "{action=\"");
                buf_label(b, action);
                buf_printf(b, "\"}");
        }
        buf_printf(b, " %" PRIu64 "\n", h->count);
}

char *pd_metrics_render(void) {
        pd_buf_t b = {pd_xmalloc(4096), 0, 4096};

        b.p[0] = '\0';
        pthread_mutex_lock(&m_lock);
        buf_head(&b, "postdeploy_actions_total", "counter",
                 "Attempts of actions finished, by action and status.");
        for (size_t i = 0; i < m_action_cnt; i++) {
                const pd_action_m_t *m = &m_actions[i];
                if (!m->status)
                        continue;
                buf_printf(&b, "postdeploy_actions_total{action=\"");
                buf_label(&b, m->action);
                buf_printf(&b, "\",status=\"");
                buf_label(&b, m->status);
                buf_printf(&b, "\"} %" PRIu64 "\n", m->count);
        }
        buf_head(&b, "postdeploy_action_duration_seconds", "histogram",
                 "How long attempts of actions ran, by action.");
        for (size_t i = 0; i < m_action_cnt; i++) {
                const pd_action_m_t *m = &m_actions[i];
                if (!m->status)
                        buf_hist(&b, "postdeploy_action_duration_seconds",
                                 m->action, &m->hist, action_buckets,
                                 PD_ACTION_BUCKETS);
        }
        buf_head(&b, "postdeploy_actions_running", "gauge",
                 "Actions running now.");
        buf_printf(&b, "postdeploy_actions_running %lld\n",
                   (long long)atomic_load(&m_running));
        buf_head(&b, "postdeploy_events_total", "counter",
                 "Records consumed from the events topic, by outcome.");
        for (size_t i = 0; i < PD_METRICS_OUTCOME_CNT; i++)
                buf_printf(&b,
                           "postdeploy_events_total{outcome=\"%s\"} "
                           "%" PRIu64 "\n",
                           outcome_names[i], m_events[i]);
        buf_head(&b, "postdeploy_dead_letters_total", "counter",
                 "Records sent to the dead-letter topic, by class of "
                 "reason.");
        for (size_t i = 0; i < PD_METRICS_DLQ_CNT; i++)
                buf_printf(&b,
                           "postdeploy_dead_letters_total{reason=\"%s\"} "
                           "%" PRIu64 "\n",
                           dlq_names[i], m_dlq[i]);
        buf_head(&b, "postdeploy_outbox_records", "gauge",
                 "Result records produced and not yet acknowledged by "
                 "the broker.");
        buf_printf(&b, "postdeploy_outbox_records %lld\n",
                   (long long)atomic_load(&m_outbox));
        buf_head(&b, "postdeploy_consumer_lag_records", "gauge",
                 "Records of the events topic not yet consumed, summed "
                 "over this reactor's partitions (librdkafka statistics).");
        if (m_lag >= 0)
                buf_printf(&b, "postdeploy_consumer_lag_records %" PRId64 "\n",
                           m_lag);
        buf_head(&b, "postdeploy_consumer_rebalances_total", "counter",
                 "Consumer group rebalances this process took part in.");
        buf_printf(&b, "postdeploy_consumer_rebalances_total %" PRIu64 "\n",
                   m_rebalances);
        buf_head(&b, "postdeploy_state_commit_seconds", "histogram",
                 "How long a batch commit of the state store took.");
        buf_hist(&b, "postdeploy_state_commit_seconds", NULL, &m_commit,
                 commit_buckets, PD_COMMIT_BUCKETS);
        pthread_mutex_unlock(&m_lock);
        return b.p;
}

/* ---- probes ---- */

int pd_metrics_live(int64_t now_ms, int64_t max_ms, char *reason,
                    size_t reason_size) {
        int64_t tick = atomic_load(&m_tick_ms);

        if (!now_ms)
                now_ms = pd_mono_ms();
        if (tick && now_ms - tick <= max_ms)
                return 0;
        if (!tick)
                snprintf(reason, reason_size, "the poll loop has not started");
        else
                snprintf(reason, reason_size,
                         "the poll loop last turned %" PRId64 " ms ago",
                         now_ms - tick);
        return -1;
}

int pd_metrics_ready(char *reason, size_t reason_size) {
        int joined, have_stats;

        pthread_mutex_lock(&m_lock);
        joined     = m_joined;
        have_stats = m_have_stats;
        pthread_mutex_unlock(&m_lock);
        if (!atomic_load(&m_cond[PD_METRICS_RESTORED]))
                snprintf(reason, reason_size, "state not restored yet");
        else if (!atomic_load(&m_cond[PD_METRICS_STORE_OK]))
                snprintf(reason, reason_size, "state store not writable");
        else if (!atomic_load(&m_cond[PD_METRICS_BROKER_OK]))
                snprintf(reason, reason_size, "broker unreachable");
        else if (!joined)
                snprintf(reason, reason_size,
                         have_stats ? "not joined the consumer group (no "
                                      "partitions assigned)"
                                    : "not joined the consumer group yet");
        else
                return 0;
        return -1;
}

void pd_metrics_reset(void) {
        pthread_mutex_lock(&m_lock);
        for (size_t i = 0; i < m_action_cnt; i++) {
                free(m_actions[i].action);
                free(m_actions[i].status);
        }
        free(m_actions);
        m_actions    = NULL;
        m_action_cnt = 0;
        pd_map_destroy(m_action_idx, NULL);
        m_action_idx = NULL;
        memset(m_events, 0, sizeof(m_events));
        memset(m_dlq, 0, sizeof(m_dlq));
        memset(&m_commit, 0, sizeof(m_commit));
        m_rebalances = 0;
        pthread_mutex_unlock(&m_lock);
        pd_metrics_kafka_reset();
        atomic_store(&m_running, 0);
        atomic_store(&m_outbox, 0);
        atomic_store(&m_tick_ms, 0);
        for (int i = 0; i < PD_METRICS_COND_CNT; i++)
                atomic_store(&m_cond[i], 0);
}
