/*
 * test_reactor_faults.c - the reactor through broker faults, in-process
 * against librdkafka's mock cluster: request errors injected on Produce
 * (while results are being published), on Fetch and on OffsetCommit, and
 * the broker down during a run, shorter and longer than the group session.
 * Each time the reactor must keep running, reconnect, lose no result, run
 * every action exactly once, and leave nothing committed that it had not
 * finished (a restart on the same state runs nothing again).
 *
 * The reactor runs in a thread of its own with a stop flag, exactly
 * as postdeploy-reactor's main runs it. Its command actions run under the
 * supervisor, which the reactor starts as `/proc/self/exe --supervisor
 * DIR --idle S` unless $PD_SUPERVISOR_EXE names another binary: main()
 * below serves that call the way postdeploy-reactor does, so this binary
 * is its own supervisor and needs no other to be built. The test process is a
 * child subreaper, so the detached supervisor becomes its child: teardown stops
 * it and checks it exited 0 (under LeakSanitizer, a leak makes that fail).
 *
 * The actions are shell scripts in the test's folder that append a line to
 * a marker file per (tenant, action), so a marker's line count is how often
 * the action ran. t.gate also blocks, when the test made FIFOs for its
 * tenant, until the test lets it go: that is how a test knows an action is
 * running and holds it there while it takes the broker down. Waits are for
 * events (a FIFO, the state database, the error stacks, committed offsets),
 * bounded by WAIT_MS; the only sleeps are an outage that must outlast the
 * group session, and two commit intervals in which an offset must NOT be
 * committed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "consumer/plugin.h"
#include "consumer/reactor.h"
#include "consumer/supervisor.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"
#include "state/store.h"

/* Kafka protocol request types (rdkafka_protocol.h is not installed). */
#define PD_APIKEY_PRODUCE      0
#define PD_APIKEY_FETCH        1
#define PD_APIKEY_OFFSETCOMMIT 8

#define WAIT_MS    30000 /* anything that takes longer has failed */
#define BROKER_ID  1
#define PARTITIONS 2
#define ACTION_CNT 3
#define EVENT_MAX  8

static const char *const actions[ACTION_CNT] = {"t.gate", "t.one", "t.two"};

/* One action.finished read from the results topic. */
typedef struct fx_result_s {
        char *id; /* ce_id: a record the outbox sent again has the same */
        char *trigger_id, *tenant, *action;
        pd_status_t status;
        int retrying;
} fx_result_t;

/* A release.deployed the test published. */
typedef struct fx_event_s {
        char *id;
        char *tenant;
        int32_t partition; /* where the broker put it */
        int64_t offset;
} fx_event_t;

typedef struct fx_s {
        char base[64];    /* the test's temporary folder */
        char state[96];   /* base/state.db */
        char markers[96]; /* base/m: a file per (tenant, action) */
        char group[64];
        rd_kafka_t *mrk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        pd_config_t *conf;
        rd_kafka_t *rkp;      /* publishes the events */
        int32_t dr_partition; /* where rkp's last event went */
        int64_t dr_offset;
        rd_kafka_t *rkc;          /* reads the results */
        int64_t next[PARTITIONS]; /* next results offset to read */

        pd_reactor_t *r;
        pthread_t thread;
        int thread_started;
        volatile sig_atomic_t stop;
        atomic_int running; /* pd_reactor_run has not returned */
        int run_ret;

        int inproc;          /* events also name t.inproc, in-process */
        atomic_int rebuilds; /* in-process rebuilds after a store fault */

        fx_event_t events[EVENT_MAX];
        size_t event_cnt;
        fx_result_t *results;
        size_t result_cnt;
} fx_t;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void sleep_ms(int ms) {
        poll(NULL, 0, ms > 0 ? ms : 0);
}

static void write_file(const char *path, int mode, const char *fmt, ...) {
        FILE *fp = fopen(path, "w");
        va_list ap;

        assert_non_null(fp);
        va_start(ap, fmt);
        vfprintf(fp, fmt, ap);
        va_end(ap);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, (mode_t)mode), 0);
}

/* Lines in the marker of (tenant, action): how often it ran. */
static int marker_lines(fx_t *fx, const char *tenant, const char *action) {
        char path[256];
        FILE *fp;
        int c, n = 0;

        snprintf(path, sizeof(path), "%s/%s.%s", fx->markers, tenant, action);
        if (!(fp = fopen(path, "r")))
                return 0;
        while ((c = fgetc(fp)) != EOF)
                n += c == '\n';
        fclose(fp);
        return n;
}

static void conf_set(pd_config_t *conf, const char *section, const char *key,
                     const char *value) {
        char errstr[512];

        if (pd_config_set(conf, section, key, value, errstr, sizeof(errstr)))
                fail_msg("[%s] %s = %s: %s", section, key, value, errstr);
}

/* ------------------------------------------------------------------ */
/* The state database, read beside the reactor                         */

/* The integer a query with one optional text parameter returns. */
static int64_t db_int(fx_t *fx, const char *sql, const char *arg1,
                      const char *arg2) {
        sqlite3 *db        = NULL;
        sqlite3_stmt *stmt = NULL;
        int64_t v          = -1;

        if (sqlite3_open_v2(fx->state, &db, SQLITE_OPEN_READWRITE, NULL)) {
                sqlite3_close(db);
                return -1; /* not created yet */
        }
        sqlite3_busy_timeout(db, 5000);
        if (!sqlite3_prepare_v2(db, sql, -1, &stmt, NULL)) {
                if (arg1)
                        sqlite3_bind_text(stmt, 1, arg1, -1, SQLITE_STATIC);
                if (arg2)
                        sqlite3_bind_text(stmt, 2, arg2, -1, SQLITE_STATIC);
                if (sqlite3_step(stmt) == SQLITE_ROW)
                        v = sqlite3_column_int64(stmt, 0);
        }
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return v;
}

/* Whether the reactor recorded the event as fully processed. */
static int event_done(fx_t *fx, const fx_event_t *e) {
        return db_int(fx, "SELECT count(*) FROM events WHERE id = ?1", e->id,
                      NULL) == 1;
}

static void wait_event_done(fx_t *fx, const fx_event_t *e) {
        int64_t deadline = pd_now_ms() + WAIT_MS;

        while (!event_done(fx, e)) {
                if (pd_now_ms() > deadline)
                        fail_msg("%s's event not recorded done within %d ms",
                                 e->tenant, WAIT_MS);
                sleep_ms(20);
        }
}

static int all_events_done(fx_t *fx) {
        for (size_t i = 0; i < fx->event_cnt; i++)
                if (!event_done(fx, &fx->events[i]))
                        return 0;
        return 1;
}

/* Result records recorded but not yet acknowledged by the broker. */
static int64_t outbox_cnt(fx_t *fx) {
        return db_int(fx, "SELECT count(*) FROM outbox", NULL, NULL);
}

/* Waits until every published event is done and every result delivered. */
static void wait_settled(fx_t *fx) {
        int64_t deadline = pd_now_ms() + WAIT_MS;

        while (!all_events_done(fx) || outbox_cnt(fx) != 0) {
                if (pd_now_ms() > deadline)
                        fail_msg("not settled after %d ms: outbox %" PRId64,
                                 WAIT_MS, outbox_cnt(fx));
                sleep_ms(20);
        }
}

/* ------------------------------------------------------------------ */
/* FIFOs: a gated action says it runs, and waits to be let go          */

static void gate_path(fx_t *fx, const char *tenant, const char *what, char *buf,
                      size_t size) {
        snprintf(buf, size, "%s/%s.%s", fx->base, tenant, what);
}

/* Makes t.gate block for tenant; returns the fd to wait on. */
static int gate_arm(fx_t *fx, const char *tenant) {
        char up[128], go[128];
        int fd;

        gate_path(fx, tenant, "up", up, sizeof(up));
        gate_path(fx, tenant, "go", go, sizeof(go));
        assert_int_equal(mkfifo(up, 0600), 0);
        assert_int_equal(mkfifo(go, 0600), 0);
        /* Open now, so that the action's write does not wait for us. */
        fd = open(up, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(fd != -1);
        return fd;
}

/* Waits until t.gate of the armed tenant runs (its line on the FIFO). */
static void gate_wait_up(int fd) {
        int64_t deadline = pd_now_ms() + WAIT_MS;
        size_t got       = 0;
        char buf[16];

        /* Until the action has written its line and closed its end: a
         * reader opened while that end is still open would see its close
         * as a hang-up (Linux suppresses it only for a FIFO that had no
         * writer when the reader opened), and take it for the next run's
         * line. */
        for (;;) {
                struct pollfd pfd = {fd, POLLIN, 0};
                int64_t left      = deadline - pd_now_ms();
                ssize_t n;

                if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
                        fail_msg(
                            "the gated action did not start within "
                            "%d ms",
                            WAIT_MS);
                n = read(fd, buf, sizeof(buf));
                if (n > 0)
                        got += (size_t)n;
                else if (n == 0 && got)
                        break;
                else if (n == 0 || errno != EAGAIN)
                        fail_msg(
                            "the gate's FIFO hung up before a line "
                            "(read returned %zd: %s)",
                            n, n ? strerror(errno) : "end of file");
        }
        close(fd);
}

/* Lets t.gate of tenant go on. Returns 0, or -1 if nobody waits there
 * within ms. */
static int gate_release(fx_t *fx, const char *tenant, int ms) {
        int64_t deadline = pd_now_ms() + ms;
        char go[128];
        int fd;

        gate_path(fx, tenant, "go", go, sizeof(go));
        while ((fd = open(go, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
                if (errno != ENXIO || pd_now_ms() > deadline)
                        return -1;
                sleep_ms(10);
        }
        if (write(fd, "go\n", 3) != 3) {
                close(fd);
                return -1;
        }
        close(fd);
        /* Disarmed: a run of t.gate that should not happen does not
         * block, it only adds its line to the marker. */
        unlink(go);
        gate_path(fx, tenant, "up", go, sizeof(go));
        unlink(go);
        return 0;
}

/* ------------------------------------------------------------------ */
/* The mock cluster, events and results                                */

/* The events producer's delivery report (from rd_kafka_flush, in the
 * test's thread): where the event went. */
static void publish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                          void *opaque) {
        fx_t *fx = opaque;

        (void)rk;
        fx->dr_partition = rkm->err ? -1 : rkm->partition;
        fx->dr_offset    = rkm->err ? -1 : rkm->offset;
}

static rd_kafka_t *client_new(fx_t *fx, rd_kafka_type_t type,
                              const char *group) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set_log_cb(kconf, pd_log_rdkafka_cb);
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set_dr_msg_cb(kconf, publish_dr_cb);
                rd_kafka_conf_set_opaque(kconf, fx);
        }
        assert_int_equal(
            rd_kafka_conf_set(kconf, "bootstrap.servers",
                              rd_kafka_mock_cluster_bootstraps(fx->mcluster),
                              errstr, sizeof(errstr)),
            RD_KAFKA_CONF_OK);
        if (group) {
                assert_int_equal(rd_kafka_conf_set(kconf, "group.id", group,
                                                   errstr, sizeof(errstr)),
                                 RD_KAFKA_CONF_OK);
                assert_int_equal(
                    rd_kafka_conf_set(kconf, "enable.auto.commit", "false",
                                      errstr, sizeof(errstr)),
                    RD_KAFKA_CONF_OK);
        }
        rk = rd_kafka_new(type, kconf, errstr, sizeof(errstr));
        if (!rk)
                fail_msg("rd_kafka_new: %s", errstr);
        return rk;
}

/*
 * Publishes a release.deployed for tenant that names every action (deploy
 * --one): those run whatever their state, so only the reactor's memory of
 * the event (ce_source + ce_id) keeps a redelivered copy from running them
 * again. Waits until the broker has it. Returns the event, which the
 * fixture keeps.
 */
static const fx_event_t *publish(fx_t *fx, const char *tenant,
                                 const char *release) {
        pd_event_t *ev = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        fx_event_t *e;
        char errstr[512];

        assert_true(fx->event_cnt < EVENT_MAX);
        if (!fx->rkp)
                fx->rkp = client_new(fx, RD_KAFKA_PRODUCER, NULL);
        ev->ce_source    = strdup("test_reactor_faults");
        ev->tenant       = strdup(tenant);
        ev->release      = strdup(release);
        ev->environment  = strdup("test");
        ev->requested_by = strdup("test_reactor_faults");
        ev->selection    = PD_SEL_ONE;
        for (int a = 0; a < ACTION_CNT; a++)
                pd_strv_add(&ev->actions, actions[a]);
        if (fx->inproc)
                pd_strv_add(&ev->actions, "t.inproc");
        ev->deployed_at = pd_now_ms();
        if (pd_event_produce(fx->rkp, fx->conf->topic_events, NULL, ev, NULL,
                             errstr, sizeof(errstr)))
                fail_msg("pd_event_produce: %s", errstr);
        fx->dr_partition = -1;
        assert_int_equal(rd_kafka_flush(fx->rkp, WAIT_MS), 0);
        assert_true(fx->dr_partition >= 0);
        e            = &fx->events[fx->event_cnt++];
        e->id        = strdup(ev->ce_id);
        e->tenant    = strdup(tenant);
        e->partition = fx->dr_partition;
        e->offset    = fx->dr_offset;
        pd_event_destroy(ev);
        return e;
}

/* PD_TEST_VERBOSE=1: what the results topic holds, record by record. */
static void result_trace(const rd_kafka_message_t *rkm, const pd_event_t *ev) {
        fprintf(stderr, "result [%d] @%" PRId64 ": %s %s %s %s %s%s\n",
                (int)rkm->partition, rkm->offset, pd_evtype_name(ev->type),
                ev->tenant ? ev->tenant : "-", ev->action ? ev->action : "-",
                ev->trigger_id ? ev->trigger_id : "-",
                ev->type == PD_EVT_ACTION_FINISHED ? pd_status_name(ev->status)
                                                   : "",
                ev->retrying ? " (retrying)" : "");
}

/* Whether an action.finished with this ce_id was read already. */
static int result_seen(const fx_t *fx, const char *id) {
        for (size_t i = 0; i < fx->result_cnt; i++)
                if (!strcmp(fx->results[i].id, id))
                        return 1;
        return 0;
}

/* Reads the results topic up to its current end, keeping every
 * action.finished once: a record the outbox sent again after a lost
 * acknowledgement or a lost delete (at least once) is the same record,
 * with the same ce_id. */
static void results_read(fx_t *fx) {
        const char *topic = fx->conf->topic_results;
        int64_t hi[PARTITIONS], deadline = pd_now_ms() + WAIT_MS;
        char errstr[512];

        if (!fx->rkc) {
                rd_kafka_topic_partition_list_t *parts =
                    rd_kafka_topic_partition_list_new(PARTITIONS);

                fx->rkc = client_new(fx, RD_KAFKA_CONSUMER, "faults-reader");
                for (int p = 0; p < PARTITIONS; p++)
                        rd_kafka_topic_partition_list_add(parts, topic, p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
                assert_int_equal(rd_kafka_assign(fx->rkc, parts), 0);
                rd_kafka_topic_partition_list_destroy(parts);
        }
        for (int p = 0; p < PARTITIONS; p++) {
                int64_t lo;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    fx->rkc, topic, p, &lo, &hi[p], 10000);
                if (err)
                        fail_msg("watermarks of %s [%d]: %s", topic, p,
                                 rd_kafka_err2str(err));
        }
        for (;;) {
                rd_kafka_message_t *rkm;
                pd_event_t *ev;
                int left = 0;

                for (int p = 0; p < PARTITIONS; p++)
                        left += fx->next[p] < hi[p];
                if (!left)
                        break;
                if (pd_now_ms() > deadline)
                        fail_msg("%s not read to its end within %d ms", topic,
                                 WAIT_MS);
                if (!(rkm = rd_kafka_consumer_poll(fx->rkc, 100)))
                        continue;
                if (rkm->err) {
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                fx->next[rkm->partition] = rkm->offset + 1;
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
                if (ev && getenv("PD_TEST_VERBOSE"))
                        result_trace(rkm, ev);
                rd_kafka_message_destroy(rkm);
                if (!ev)
                        fail_msg("undecodable result: %s", errstr);
                if (ev->type == PD_EVT_ACTION_FINISHED &&
                    !result_seen(fx, ev->ce_id)) {
                        fx_result_t *res;
                        fx->results =
                            realloc(fx->results, (fx->result_cnt + 1) *
                                                     sizeof(*fx->results));
                        assert_non_null(fx->results);
                        res             = &fx->results[fx->result_cnt++];
                        res->id         = strdup(ev->ce_id);
                        res->trigger_id = strdup(ev->trigger_id);
                        res->tenant     = strdup(ev->tenant);
                        res->action     = strdup(ev->action);
                        res->status     = ev->status;
                        res->retrying   = ev->retrying;
                }
                pd_event_destroy(ev);
        }
}

/*
 * The heart of every test: for each published event, each action ran
 * exactly once for its tenant (its marker), and exactly one final
 * action.finished, SUCCEEDED, is on the results topic for it.
 */
static void assert_each_action_once(fx_t *fx) {
        results_read(fx);
        for (size_t i = 0; i < fx->event_cnt; i++) {
                const fx_event_t *e = &fx->events[i];

                for (int a = 0; a < ACTION_CNT; a++) {
                        int finished = 0, succeeded = 0;

                        for (size_t j = 0; j < fx->result_cnt; j++) {
                                const fx_result_t *res = &fx->results[j];
                                if (res->retrying ||
                                    strcmp(res->trigger_id, e->id) ||
                                    strcmp(res->tenant, e->tenant) ||
                                    strcmp(res->action, actions[a]))
                                        continue;
                                finished++;
                                succeeded += res->status == PD_ST_SUCCEEDED;
                        }
                        if (finished != 1 || succeeded != 1)
                                fail_msg(
                                    "%s %s (event %s): %d action.finished,"
                                    " %d SUCCEEDED; want exactly 1",
                                    e->tenant, actions[a], e->id, finished,
                                    succeeded);
                        if (marker_lines(fx, e->tenant, actions[a]) != 1)
                                fail_msg(
                                    "%s %s ran %d times; want once", e->tenant,
                                    actions[a],
                                    marker_lines(fx, e->tenant, actions[a]));
                }
        }
}

/* Errors still on the broker's stack for a request type. */
static size_t errors_left(fx_t *fx, int16_t apikey) {
        size_t cnt = 0;

        assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(
                             fx->mcluster, BROKER_ID, apikey, &cnt),
                         0);
        return cnt;
}

/* Waits until the reactor's requests have hit every injected error. */
static void wait_errors_hit(fx_t *fx, int16_t apikey) {
        int64_t deadline = pd_now_ms() + WAIT_MS;

        while (errors_left(fx, apikey)) {
                if (pd_now_ms() > deadline)
                        fail_msg(
                            "%zu injected error(s) of request %d never "
                            "hit within %d ms",
                            errors_left(fx, apikey), (int)apikey, WAIT_MS);
                sleep_ms(20);
        }
}

/*
 * The group's committed offsets of the events topic: fills committed[]
 * (RD_KAFKA_OFFSET_INVALID: none) and returns how many partitions have
 * their committed offset at the end of the partition.
 */
static int committed_at_end(fx_t *fx, int64_t committed[PARTITIONS]) {
        rd_kafka_t *rk = client_new(fx, RD_KAFKA_CONSUMER, fx->group);
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(PARTITIONS);
        rd_kafka_resp_err_t err;
        int at_end = 0;

        for (int p = 0; p < PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(parts, fx->conf->topic_events,
                                                  p);
        err = rd_kafka_committed(rk, parts, 10000);
        for (int p = 0; !err && p < PARTITIONS; p++) {
                int64_t lo, hi;

                committed[p] = parts->elems[p].offset;
                err          = rd_kafka_query_watermark_offsets(
                             rk, fx->conf->topic_events, p, &lo, &hi, 10000);
                /* A partition nothing was published to has nothing to
                 * commit. */
                at_end += !err && (committed[p] == hi ||
                                   (lo == hi && committed[p] < 0));
        }
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        if (err)
                fail_msg("committed offsets: %s", rd_kafka_err2str(err));
        return at_end;
}

/* Waits until the group has committed e's offset: it is done. */
static void wait_committed_past(fx_t *fx, const fx_event_t *e) {
        int64_t deadline = pd_now_ms() + WAIT_MS;
        int64_t committed[PARTITIONS];

        for (;;) {
                committed_at_end(fx, committed);
                if (committed[e->partition] > e->offset)
                        return;
                if (pd_now_ms() > deadline)
                        fail_msg("%s's event [%d] @%" PRId64
                                 " not committed "
                                 "within %d ms",
                                 e->tenant, (int)e->partition, e->offset,
                                 WAIT_MS);
                sleep_ms(100);
        }
}

static void wait_committed_at_end(fx_t *fx) {
        int64_t deadline = pd_now_ms() + WAIT_MS;
        int64_t committed[PARTITIONS];

        while (committed_at_end(fx, committed) != PARTITIONS) {
                if (pd_now_ms() > deadline)
                        fail_msg(
                            "offsets not committed to the end within %d "
                            "ms (committed %" PRId64 ", %" PRId64 ")",
                            WAIT_MS, committed[0], committed[1]);
                sleep_ms(100);
        }
}

/* ------------------------------------------------------------------ */
/* The reactor in a thread                                             */

/*
 * Runs the reactor as postdeploy-reactor's main does: one that lost a
 * batch to a store fault that may clear (pd_reactor_run returns 1) is
 * made again from what is durable, in the same process.
 */
static void *reactor_main(void *arg) {
        fx_t *fx = arg;
        char errstr[512];

        for (;;) {
                fx->run_ret = pd_reactor_run(fx->r, &fx->stop);
                if (fx->run_ret != 1 || fx->stop)
                        break;
                pd_reactor_destroy(fx->r);
                while (!(fx->r = pd_reactor_new(
                             fx->conf,
                             rd_kafka_mock_cluster_bootstraps(fx->mcluster),
                             errstr, sizeof(errstr))) &&
                       !fx->stop)
                        sleep_ms(100);
                if (!fx->r)
                        break;
                atomic_fetch_add(&fx->rebuilds, 1);
        }
        atomic_store(&fx->running, 0);
        return NULL;
}

static void reactor_start(fx_t *fx) {
        char errstr[512];

        assert_null(fx->r);
        fx->r = pd_reactor_new(fx->conf,
                               rd_kafka_mock_cluster_bootstraps(fx->mcluster),
                               errstr, sizeof(errstr));
        if (!fx->r)
                fail_msg("pd_reactor_new: %s", errstr);
        fx->stop    = 0;
        fx->run_ret = -2;
        atomic_store(&fx->running, 1);
        assert_int_equal(pthread_create(&fx->thread, NULL, reactor_main, fx),
                         0);
        fx->thread_started = 1;
}

/* Stops the reactor as SIGTERM does; returns what pd_reactor_run did. */
static int reactor_stop(fx_t *fx) {
        if (fx->thread_started) {
                fx->stop = 1;
                pthread_join(fx->thread, NULL);
                fx->thread_started = 0;
        }
        pd_reactor_destroy(fx->r);
        fx->r = NULL;
        return fx->run_ret;
}

static void assert_reactor_running(fx_t *fx) {
        if (!atomic_load(&fx->running))
                fail_msg(
                    "the reactor stopped by itself (pd_reactor_run "
                    "returned %d)",
                    fx->run_ret);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                             */


/* t.inproc: an in-process action, as a plugin's would be; it appends a
 * line to its marker per run, as mark.sh does. */
static char inproc_markers[96];

static int inproc_run(const pd_action_ctx_t *ctx, char *errstr,
                      size_t errstr_size) {
        char path[256];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s.t.inproc", inproc_markers,
                 ctx->tenant);
        if (!(fp = fopen(path, "a"))) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return 1;
        }
        fprintf(fp, "t.inproc %s %s\n", ctx->tenant, ctx->event_id);
        return fclose(fp) ? 1 : 0;
}

static const pd_plugin_action_t inproc_action = {.name    = "t.inproc",
                                                 .is_auto = PD_AUTO,
                                                 .fn      = inproc_run};

static int setup_with(void **state, int inproc) {
        fx_t *fx = calloc(1, sizeof(*fx));
        char errstr[512], path[128], run[256];
        const char *topics[3];
        pd_config_t *conf;

        assert_non_null(fx);
        atomic_init(&fx->running, 0);
        /* Short: the supervisor's socket path must fit sun_path. */
        pd_test_tmpdir(fx->base, sizeof(fx->base), "faults", 24);
        snprintf(fx->state, sizeof(fx->state), "%s/state.db", fx->base);
        snprintf(fx->markers, sizeof(fx->markers), "%s/m", fx->base);
        assert_int_equal(mkdir(fx->markers, 0700), 0);
        snprintf(fx->group, sizeof(fx->group), "faults-%s",
                 strrchr(fx->base, '.') + 1);

        snprintf(path, sizeof(path), "%s/mark.sh", fx->base);
        write_file(path, 0700,
                   "#!/bin/sh\n"
                   "# mark.sh ACTION TENANT: one line per run\n"
                   "echo \"$1 $2 $POSTDEPLOY_RELEASE $POSTDEPLOY_EVENT_ID\" "
                   ">>\"%s/$2.$1\"\n",
                   fx->markers);
        snprintf(path, sizeof(path), "%s/gate.sh", fx->base);
        write_file(
            path, 0700,
            "#!/bin/sh\n"
            "# gate.sh TENANT: one line per run; then, if the test\n"
            "# armed the gate, says so and waits to be let go.\n"
            "echo \"t.gate $1 $POSTDEPLOY_RELEASE $$\" >>\"%s/$1.t.gate\"\n"
            "if [ -p \"%s/$1.go\" ]; then\n"
            "        echo up >\"%s/$1.up\"\n"
            "        read line <\"%s/$1.go\"\n"
            "fi\n",
            fx->markers, fx->base, fx->base, fx->base);

        /* The mock cluster lives in a producer handle of its own. */
        {
                rd_kafka_conf_t *kconf = rd_kafka_conf_new();
                rd_kafka_conf_set_log_cb(kconf, pd_log_rdkafka_cb);
                fx->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                       sizeof(errstr));
                if (!fx->mrk)
                        fail_msg("rd_kafka_new: %s", errstr);
        }
        fx->mcluster = rd_kafka_mock_cluster_new(fx->mrk, 1);
        assert_non_null(fx->mcluster);

        fx->conf = conf = pd_config_new();
        conf_set(conf, "kafka", "bootstrap.servers",
                 rd_kafka_mock_cluster_bootstraps(fx->mcluster));
        /* The mock broker does not check an idempotent producer's
         * sequence numbers unless it is transactional, so with several
         * batches of a partition in flight, one that failed (not
         * persisted) is "implicitly acked" by a later one the mock took
         * out of order, and lost. A real broker refuses that later batch
         * (OUT_OF_ORDER_SEQUENCE_NUMBER) until the first is in. One
         * request in flight keeps the mock as strict as a broker. */
        conf_set(conf, "kafka", "max.in.flight.requests.per.connection", "1");
        /* A restarted reactor joins at once, not after the mock's
         * rebalance delay of session.timeout.ms - 1 s that follows the
         * last member's leave (a broker would take an empty group's join
         * at once). The integration tests use the same session. */
        conf_set(conf, "kafka", "session.timeout.ms", "6000");
        conf_set(conf, "kafka", "heartbeat.interval.ms", "1000");
        /* Committed offsets are what two tests wait for, and the broker
         * coming back: neither needs librdkafka's production pace (the
         * integration test keeps it, against a real broker). */
        conf_set(conf, "kafka", "auto.commit.interval.ms", "1000");
        conf_set(conf, "kafka", "reconnect.backoff.max.ms", "1000");
        conf_set(conf, "reactor", "group.id", fx->group);
        conf_set(conf, "reactor", "state", fx->state);
        conf_set(conf, "reactor", "workers", "2");
        conf_set(conf, "reactor", "shutdown_grace", "5s");
        conf_set(conf, "reactor", "name", "test-reactor");
        if (getenv("PD_TEST_RDKAFKA_DEBUG"))
                conf_set(conf, "kafka", "debug",
                         getenv("PD_TEST_RDKAFKA_DEBUG"));
        conf_set(conf, "topics", "events", "faults.events");
        conf_set(conf, "topics", "results", "faults.results");
        conf_set(conf, "topics", "dlq", "faults.dlq");
        conf_set(conf, "topics", "partitions", "2");
        for (int a = 0; a < ACTION_CNT; a++) {
                char section[64];

                if (!pd_config_action_new(conf, actions[a], errstr,
                                          sizeof(errstr)))
                        fail_msg("pd_config_action_new: %s", errstr);
                snprintf(section, sizeof(section), "action %s", actions[a]);
                if (!strcmp(actions[a], "t.gate"))
                        snprintf(run, sizeof(run), "%s/gate.sh {tenant}",
                                 fx->base);
                else
                        snprintf(run, sizeof(run),
                                 "%s/mark.sh {action} "
                                 "{tenant}",
                                 fx->base);
                conf_set(conf, section, "run", run);
                conf_set(conf, section, "auto", "true");
        }
        conf_set(conf, "action t.two", "after", "t.one");
        if (inproc) {
                pd_action_def_t *def = pd_config_action_new(
                    conf, "t.inproc", errstr, sizeof(errstr));

                if (!def)
                        fail_msg("pd_config_action_new: %s", errstr);
                def->is_auto       = 1;
                def->plugin_action = &inproc_action;
                fx->inproc         = 1;
                snprintf(inproc_markers, sizeof(inproc_markers), "%s",
                         fx->markers);
        }
        if (pd_config_validate(conf, errstr, sizeof(errstr)))
                fail_msg("pd_config_validate: %s", errstr);

        topics[0] = conf->topic_events;
        topics[1] = conf->topic_results;
        topics[2] = conf->topic_dlq;
        for (int i = 0; i < 3; i++)
                assert_int_equal(
                    rd_kafka_mock_topic_create(fx->mcluster, topics[i],
                                               i == 2 ? 1 : PARTITIONS, 1),
                    0);
        *state = fx;
        return 0;
}

static int setup(void **state) {
        return setup_with(state, 0);
}

/* The pid of the supervisor serving dir, or -1 if none answers. */
static pid_t serving_pid(const char *dir) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd        = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        pid_t pid     = -1;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/supervisor.sock", dir);
        if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
            !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
                pid = cred.pid;
        close(fd);
        return pid;
}

/* Stops the supervisors the reactor started (ours, as the subreaper).
 * Returns how many did not exit 0. */
static int supervisors_stop(fx_t *fx) {
        char pattern[128];
        glob_t g;
        int bad = 0;

        snprintf(pattern, sizeof(pattern), "%s/supervisor-*", fx->base);
        if (glob(pattern, GLOB_ONLYDIR, NULL, &g))
                return 0;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                pid_t pid   = serving_pid(g.gl_pathv[i]);
                int wstatus = 0;

                if (pid <= 0)
                        continue;
                kill(pid, SIGTERM);
                while (waitpid(pid, &wstatus, 0) == -1 && errno == EINTR)
                        ;
                if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
                        fprintf(stderr, "supervisor %ld: %s %d\n", (long)pid,
                                WIFEXITED(wstatus) ? "exit status" : "signal",
                                WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                                   : WTERMSIG(wstatus));
                        bad++;
                }
        }
        globfree(&g);
        return bad;
}

static int teardown(void **state) {
        fx_t *fx = *state;
        int bad;

        /* A test that failed may have left the broker down or a gate shut:
         * nothing must keep the reactor from stopping. */
        rd_kafka_mock_broker_set_up(fx->mcluster, BROKER_ID);
        for (size_t i = 0; i < fx->event_cnt; i++)
                gate_release(fx, fx->events[i].tenant, 0);
        if (fx->r)
                reactor_stop(fx);
        if (fx->rkc) {
                rd_kafka_consumer_close(fx->rkc);
                rd_kafka_destroy(fx->rkc);
        }
        if (fx->rkp)
                rd_kafka_destroy(fx->rkp);
        rd_kafka_mock_cluster_destroy(fx->mcluster);
        rd_kafka_destroy(fx->mrk);
        bad = supervisors_stop(fx);
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        pd_test_rmtree(fx->base);
        pd_config_destroy(fx->conf);
        for (size_t i = 0; i < fx->event_cnt; i++) {
                free(fx->events[i].id);
                free(fx->events[i].tenant);
        }
        for (size_t i = 0; i < fx->result_cnt; i++) {
                free(fx->results[i].id);
                free(fx->results[i].trigger_id);
                free(fx->results[i].tenant);
                free(fx->results[i].action);
        }
        free(fx->results);
        free(fx);
        assert_int_equal(bad, 0);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

/*
 * Produce requests fail (leader moved, timeouts, not enough replicas, a
 * dropped connection) while the reactor publishes the results of a
 * running action: the producer retries, the outbox holds the records
 * meanwhile, and every action.finished arrives exactly once.
 */
static void test_produce_errors_lose_no_result_and_run_nothing_twice(
    void **state) {
        fx_t *fx  = *state;
        int up_fd = gate_arm(fx, "acme");

        reactor_start(fx);
        publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        gate_wait_up(up_fd);

        /* Broker-level errors: only the reactor produces from now on. */
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                             fx->mcluster, BROKER_ID, PD_APIKEY_PRODUCE, 6,
                             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0,
                             RD_KAFKA_RESP_ERR__TRANSPORT, 0,
                             RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0,
                             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0),
                         0);
        assert_int_equal(gate_release(fx, "acme", WAIT_MS), 0);

        wait_errors_hit(fx, PD_APIKEY_PRODUCE);
        wait_settled(fx);
        assert_reactor_running(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

/*
 * Fetch requests fail before and while the events are consumed: the
 * consumer refreshes its metadata, reconnects and fetches again from where
 * it was; each event is processed once.
 */
static void test_fetch_errors_process_each_event_once(void **state) {
        fx_t *fx = *state;

        publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        /* Only the reactor fetches: the results are read at the end. */
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                             fx->mcluster, BROKER_ID, PD_APIKEY_FETCH, 4,
                             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                             RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 0,
                             RD_KAFKA_RESP_ERR__TRANSPORT, 0,
                             RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR, 0),
                         0);
        reactor_start(fx);
        wait_errors_hit(fx, PD_APIKEY_FETCH);
        wait_settled(fx);

        /* Again once it is consuming, with events behind the errors. */
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                             fx->mcluster, BROKER_ID, PD_APIKEY_FETCH, 3,
                             RD_KAFKA_RESP_ERR__TRANSPORT, 0,
                             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0),
                         0);
        publish(fx, "initech", "1.0");
        publish(fx, "umbrella", "1.0");
        wait_errors_hit(fx, PD_APIKEY_FETCH);
        wait_settled(fx);

        assert_reactor_running(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

/*
 * Every offset commit of a run fails: the events stay uncommitted, so a
 * reactor restarted on the same state gets them all again, and runs
 * nothing twice (the state knows them by ce_source + ce_id); it commits
 * them, and processes what comes next.
 */
static void test_offset_commit_errors_rerun_nothing_after_restart(
    void **state) {
        fx_t *fx = *state;
        int64_t committed[PARTITIONS];
        rd_kafka_resp_err_t errs[100];

        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
                errs[i] = i % 2
                              ? RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT
                              : RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
        rd_kafka_mock_push_request_errors_array(
            fx->mcluster, PD_APIKEY_OFFSETCOMMIT,
            sizeof(errs) / sizeof(errs[0]), errs);

        publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        publish(fx, "initech", "1.0");
        reactor_start(fx);
        wait_settled(fx);
        assert_reactor_running(fx);
        assert_int_equal(reactor_stop(fx), 0);
        assert_each_action_once(fx);

        /* Nothing got committed: the restart is handed every event. */
        rd_kafka_mock_clear_request_errors(fx->mcluster,
                                           PD_APIKEY_OFFSETCOMMIT);
        committed_at_end(fx, committed);
        for (int p = 0; p < PARTITIONS; p++)
                assert_int_equal(committed[p], RD_KAFKA_OFFSET_INVALID);

        reactor_start(fx);
        wait_committed_at_end(fx);
        publish(fx, "umbrella", "1.0");
        wait_settled(fx);
        wait_committed_at_end(fx);
        assert_reactor_running(fx);
        assert_int_equal(reactor_stop(fx), 0);
        assert_each_action_once(fx);
}

/*
 * The broker goes down while an action runs and stays down until the
 * reactor has recorded the outcome of the whole event: the reactor keeps
 * running, holds the results in its outbox, reconnects when the broker is
 * back, delivers them once, and processes what comes next. Before that,
 * while the action runs, its event's offset is not committed.
 */
static void test_broker_down_during_a_run_delivers_everything_after(
    void **state) {
        fx_t *fx  = *state;
        int up_fd = gate_arm(fx, "acme");
        const fx_event_t *e, *first;
        int64_t committed[PARTITIONS];

        reactor_start(fx);
        first = publish(fx, "initech", "1.0");
        e     = publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        gate_wait_up(up_fd);

        /* What runs is not committed: once the event before it is (the
         * commits go on), and two more commit intervals, acme's is not. */
        wait_committed_past(fx, first);
        sleep_ms(2000);
        committed_at_end(fx, committed);
        if (committed[e->partition] > e->offset)
                fail_msg("acme's event [%d] @%" PRId64
                         " was committed "
                         "(%" PRId64 ") while its action ran",
                         (int)e->partition, e->offset, committed[e->partition]);

        assert_int_equal(rd_kafka_mock_broker_set_down(fx->mcluster, BROKER_ID),
                         0);
        assert_int_equal(gate_release(fx, "acme", WAIT_MS), 0);
        /* Down until the reactor has recorded acme's event. */
        wait_event_done(fx, e);
        assert_reactor_running(fx);
        /* Its results could not go out: they wait in the outbox. */
        assert_true(outbox_cnt(fx) > 0);
        assert_int_equal(rd_kafka_mock_broker_set_up(fx->mcluster, BROKER_ID),
                         0);

        publish(fx, "umbrella", "1.0");
        wait_settled(fx);
        assert_reactor_running(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

/*
 * The broker stays down longer than the group session: when it is back,
 * the reactor's membership is gone, it joins again and is handed the
 * events whose offsets were not committed, including the one it finished
 * during the outage. It runs none of them again, commits them all, and
 * processes what comes next.
 */
static void test_broker_down_past_the_session_rejoins_and_runs_nothing_twice(
    void **state) {
        fx_t *fx  = *state;
        int up_fd = gate_arm(fx, "acme");
        const fx_event_t *e;
        int64_t down_at;

        conf_set(fx->conf, "kafka", "session.timeout.ms", "3000");
        conf_set(fx->conf, "kafka", "heartbeat.interval.ms", "500");
        reactor_start(fx);
        e = publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        gate_wait_up(up_fd);

        assert_int_equal(rd_kafka_mock_broker_set_down(fx->mcluster, BROKER_ID),
                         0);
        down_at = pd_now_ms();
        assert_int_equal(gate_release(fx, "acme", WAIT_MS), 0);
        wait_event_done(fx, e);
        /* The outage must outlast the session (3 s) for the group to
         * drop the reactor. */
        if (down_at + 5000 > pd_now_ms())
                sleep_ms((int)(down_at + 5000 - pd_now_ms()));
        assert_reactor_running(fx);
        assert_int_equal(rd_kafka_mock_broker_set_up(fx->mcluster, BROKER_ID),
                         0);

        publish(fx, "initech", "1.0");
        wait_settled(fx);
        wait_committed_at_end(fx);
        assert_reactor_running(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

/*
 * The broker is down when the reactor starts (a machine boot, a broker
 * restart): the reactor waits for it past any fixed limit (this outage
 * outlasts the 10 s after which it used to exit), and once the broker is
 * back it creates nothing twice, joins, and processes what comes.
 */
static void test_broker_down_at_start_waits_for_it(void **state) {
        fx_t *fx = *state;

        assert_int_equal(rd_kafka_mock_broker_set_down(fx->mcluster, BROKER_ID),
                         0);
        reactor_start(fx);
        sleep_ms(12000); /* the outage itself, not a wait for an event */
        assert_reactor_running(fx);
        assert_int_equal(rd_kafka_mock_broker_set_up(fx->mcluster, BROKER_ID),
                         0);

        publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        wait_settled(fx);
        wait_committed_at_end(fx);
        assert_reactor_running(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

/* SIGTERM while the reactor waits for Kafka: it stops at once, exit 0. */
static void test_stop_while_waiting_for_kafka(void **state) {
        fx_t *fx = *state;
        int64_t asked;

        assert_int_equal(rd_kafka_mock_broker_set_down(fx->mcluster, BROKER_ID),
                         0);
        reactor_start(fx);
        sleep_ms(3000); /* the outage itself: a few attempts fail */
        assert_reactor_running(fx);
        asked = pd_now_ms();
        assert_int_equal(reactor_stop(fx), 0);
        /* One attempt (at most 2 s against a refused connection) may be
         * under way; then the stop is seen within 100 ms. */
        if (pd_now_ms() - asked > 5000)
                fail_msg("stopping took %" PRId64
                         " ms while waiting for "
                         "Kafka",
                         pd_now_ms() - asked);
        assert_int_equal(rd_kafka_mock_broker_set_up(fx->mcluster, BROKER_ID),
                         0);
}

/* ------------------------------------------------------------------ */
/* State store faults: one write of the WAL fails with EIO              */

/*
 * SQLite's unix VFS makes its system calls through a table that tests may
 * replace (xSetSystemCall): the writes are wrapped, and the Nth write to a
 * file ending in "-wal" after wal_fault_arm fails with EIO, once, exactly
 * as a disk error would show. Only the reactor's store writes a WAL in
 * this process.
 */
typedef ssize_t pd_pwrite_fn_t(int, const void *, size_t, off_t);
typedef ssize_t pd_write_fn_t(int, const void *, size_t);

static pd_pwrite_fn_t *real_pwrite, *real_pwrite64;
static pd_write_fn_t *real_write;
static atomic_int wal_armed;   /* writes are counted, and one fails */
static atomic_int wal_writes;  /* WAL writes since armed */
static atomic_int wal_fail_at; /* the write that fails (1-based) */
static atomic_int wal_failed;  /* it did */

static int wal_fd(int fd) {
        char link[64], path[PATH_MAX];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof(path) - 1);
        return n > 4 && !memcmp(path + n - 4, "-wal", 4);
}

/* Whether this write is the one that fails (errno is set then). */
static int wal_write_fails(int fd) {
        if (!atomic_load(&wal_armed) || !wal_fd(fd))
                return 0;
        if (atomic_fetch_add(&wal_writes, 1) + 1 != atomic_load(&wal_fail_at))
                return 0;
        atomic_store(&wal_failed, 1);
        errno = EIO;
        return 1;
}

static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off) {
        return wal_write_fails(fd) ? -1 : real_pwrite(fd, buf, n, off);
}

static ssize_t eio_pwrite64(int fd, const void *buf, size_t n, off_t off) {
        return wal_write_fails(fd) ? -1 : real_pwrite64(fd, buf, n, off);
}

static ssize_t eio_write(int fd, const void *buf, size_t n) {
        return wal_write_fails(fd) ? -1 : real_write(fd, buf, n);
}

/* Puts the wrappers in SQLite's unix VFS, once per process. */
static void wal_fault_install(void) {
        sqlite3_vfs *vfs = sqlite3_vfs_find("unix");

        assert_non_null(vfs);
        if (real_write)
                return;
        real_pwrite   = (pd_pwrite_fn_t *)vfs->xGetSystemCall(vfs, "pwrite");
        real_pwrite64 = (pd_pwrite_fn_t *)vfs->xGetSystemCall(vfs, "pwrite64");
        real_write    = (pd_write_fn_t *)vfs->xGetSystemCall(vfs, "write");
        assert_non_null(real_write);
        if (real_pwrite)
                assert_int_equal(
                    vfs->xSetSystemCall(vfs, "pwrite",
                                        (sqlite3_syscall_ptr)eio_pwrite),
                    SQLITE_OK);
        if (real_pwrite64)
                assert_int_equal(
                    vfs->xSetSystemCall(vfs, "pwrite64",
                                        (sqlite3_syscall_ptr)eio_pwrite64),
                    SQLITE_OK);
        assert_int_equal(
            vfs->xSetSystemCall(vfs, "write", (sqlite3_syscall_ptr)eio_write),
            SQLITE_OK);
}

/* From now on, the fail_at-th WAL write fails. */
static void wal_fault_arm(int fail_at) {
        atomic_store(&wal_writes, 0);
        atomic_store(&wal_failed, 0);
        atomic_store(&wal_fail_at, fail_at);
        atomic_store(&wal_armed, 1);
}

static void wal_fault_disarm(void) {
        atomic_store(&wal_armed, 0);
}

/* The reactor's fault hook: the nth time it passes wal_point, the next WAL
 * write (the commit that follows) fails. */
static const char *wal_point;
static int wal_point_nth;
static atomic_int wal_point_hits;

static void wal_fault_hook(const char *point) {
        if (wal_point && !strcmp(point, wal_point) &&
            atomic_fetch_add(&wal_point_hits, 1) + 1 == wal_point_nth)
                wal_fault_arm(1);
}

static void wait_wal_failed(const char *point) {
        int64_t deadline = pd_now_ms() + WAIT_MS;

        while (!atomic_load(&wal_failed)) {
                if (pd_now_ms() > deadline)
                        fail_msg("no WAL write failed at %s within %d ms",
                                 point, WAIT_MS);
                sleep_ms(5);
        }
}

/*
 * One run: acme's t.gate holds one worker; meanwhile globex and initech
 * go through the other, and the commit that follows the nth pass of
 * point fails on a WAL write with EIO, losing the batch and every part in
 * it. Then acme's action goes on and is recorded (it must not commit a
 * batch after the lost one), the reactor is made again, and everything
 * settles. Throughout, once the group has committed an event's offset the
 * event must be on disk: it will never be delivered again.
 */
static void wal_fault_run(const char *point, int nth) {
        static const char *const tenants[] = {"globex", "initech"};
        void *state                        = NULL;
        int64_t deadline, committed[PARTITIONS];
        fx_t *fx;
        int up_fd;

        setup_with(&state, 1);
        fx            = state;
        wal_point     = point;
        wal_point_nth = nth;
        atomic_store(&wal_point_hits, 0);
        up_fd = gate_arm(fx, "acme");
        reactor_start(fx);
        publish(fx, "acme", "1.0");
        gate_wait_up(up_fd);
        for (size_t t = 0; t < sizeof(tenants) / sizeof(*tenants); t++)
                publish(fx, tenants[t], "1.0");
        wait_wal_failed(point);
        assert_int_equal(gate_release(fx, "acme", WAIT_MS), 0);

        deadline = pd_now_ms() + WAIT_MS;
        for (;;) {
                int at_end = committed_at_end(fx, committed);

                for (size_t i = 0; i < fx->event_cnt; i++) {
                        const fx_event_t *e = &fx->events[i];

                        if (committed[e->partition] > e->offset &&
                            !event_done(fx, e))
                                fail_msg(
                                    "EIO after %s: %s's event [%d] @%" PRId64
                                    " is committed (offset %" PRId64
                                    ") but not recorded done",
                                    point, e->tenant, (int)e->partition,
                                    e->offset, committed[e->partition]);
                }
                if (at_end == PARTITIONS && all_events_done(fx) &&
                    outbox_cnt(fx) == 0)
                        break;
                if (pd_now_ms() > deadline)
                        fail_msg(
                            "EIO after %s: not settled within %d ms "
                            "(%d rebuild(s))",
                            point, WAIT_MS, atomic_load(&fx->rebuilds));
                sleep_ms(50);
        }
        if (!atomic_load(&fx->rebuilds))
                fail_msg("EIO after %s: the reactor was not made again", point);
        assert_each_action_once(fx);
        for (size_t i = 0; i < fx->event_cnt; i++) {
                const fx_event_t *e = &fx->events[i];
                int succeeded       = 0;

                for (size_t j = 0; j < fx->result_cnt; j++)
                        succeeded +=
                            !strcmp(fx->results[j].trigger_id, e->id) &&
                            !strcmp(fx->results[j].action, "t.inproc") &&
                            fx->results[j].status == PD_ST_SUCCEEDED;
                if (succeeded != 1)
                        fail_msg(
                            "EIO after %s: %s t.inproc has %d SUCCEEDED; "
                            "want 1",
                            point, e->tenant, succeeded);
        }
        assert_reactor_running(fx);
        wal_fault_disarm();
        wal_point = NULL;
        close(up_fd);
        teardown(&state);
}

/*
 * One EIO on a write of the WAL loses the batch being committed, with
 * the parts of every worker in it. No later batch may then commit: it
 * would make the lost one look durable, and the offset gate, the
 * supervisor's FORGET and the final flush would trust outcomes that are
 * gone. Tried at the commit after each kind of part, command and
 * in-process actions alike.
 */
static void test_wal_write_error_commits_no_offset_past_a_lost_batch(
    void **state) {
        static const struct {
                const char *point;
                int nth;
        } at[] = {
            {"event_done.before_commit", 1}, {"event_done.before_commit", 2},
            {"finished.before_commit", 2},   {"finished.before_commit", 5},
            {"started.before_commit", 3},    {"plan.before_commit", 2},
        };

        (void)state;
        wal_fault_install();
        pd_reactor_set_fault_hook(wal_fault_hook);
        for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++)
                wal_fault_run(at[i].point, at[i].nth);
        pd_reactor_set_fault_hook(NULL);
}

/* ------------------------------------------------------------------ */
/* The supervisor dies, or hangs, during a run                          */

/* The pid of the supervisor serving the fixture's state, or fails. */
static pid_t supervisor_pid(fx_t *fx) {
        char pattern[128];
        glob_t g;
        pid_t pid = -1;

        snprintf(pattern, sizeof(pattern), "%s/supervisor-*", fx->base);
        if (!glob(pattern, GLOB_ONLYDIR, NULL, &g)) {
                for (size_t i = 0; i < g.gl_pathc && pid <= 0; i++)
                        pid = serving_pid(g.gl_pathv[i]);
                globfree(&g);
        }
        if (pid <= 0)
                fail_msg("no supervisor serves %s", fx->base);
        return pid;
}

/* Waits until the supervisor has logged a record (the first run's
 * STARTED): a kill between its spawn and that append would leave the
 * command unknown to the next supervisor. */
static void wait_run_logged(fx_t *fx) {
        char pattern[128];
        int64_t deadline = pd_now_ms() + WAIT_MS;

        snprintf(pattern, sizeof(pattern),
                 "%s/supervisor-*/supervisor/outcomes", fx->base);
        for (;;) {
                struct stat sb;
                glob_t g;
                int logged = 0;

                if (!glob(pattern, 0, NULL, &g)) {
                        logged = !stat(g.gl_pathv[0], &sb) && sb.st_size > 0;
                        globfree(&g);
                }
                if (logged)
                        return;
                if (pd_now_ms() > deadline)
                        fail_msg("the supervisor logged no run within %d ms",
                                 WAIT_MS);
                sleep_ms(5);
        }
}

/* The pid gate.sh wrote on line n (from 1) of tenant's t.gate marker. */
static pid_t gate_pid(fx_t *fx, const char *tenant, int n) {
        char path[256], line[256];
        FILE *fp;
        pid_t pid = -1;

        snprintf(path, sizeof(path), "%s/%s.t.gate", fx->markers, tenant);
        assert_non_null(fp = fopen(path, "r"));
        for (int i = 1; fgets(line, sizeof(line), fp); i++)
                if (i == n && strrchr(line, ' '))
                        pid = (pid_t)atol(strrchr(line, ' ') + 1);
        fclose(fp);
        assert_true(pid > 0);
        return pid;
}

/* Whether process pid has ended (gone, or a zombie not yet reaped: the
 * test is the subreaper of everything the supervisor leaves). */
static int proc_ended(pid_t pid) {
        char path[64], buf[512];
        const char *p;
        FILE *fp;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        if (!(fp = fopen(path, "r")))
                return 1;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        p      = strrchr(buf, ')');
        return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* Waits for t.gate of an armed tenant to say it runs, again. */
static int gate_rearm(fx_t *fx, const char *tenant) {
        char up[128];
        int fd;

        gate_path(fx, tenant, "up", up, sizeof(up));
        fd = open(up, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(fd != -1);
        return fd;
}

/*
 * acme's t.gate runs under the supervisor when the supervisor is sent sig
 * alone: SIGKILL (it dies), or SIGSTOP (it hangs; with supervisor_timeout
 * = 1s the worker must take it for hung and kill it). A new supervisor
 * must kill the command the old one left, and the reactor record the run
 * INTERRUPTED and start it again (never beside the old one), then go on:
 * later events of the same partition run and their offsets are committed.
 */
static void supervisor_lost_during_a_run(fx_t *fx, int sig) {
        int up_fd = gate_arm(fx, "acme");
        const fx_event_t *first;
        pid_t sup, orphan;
        int interrupted = 0;

        if (sig == SIGSTOP)
                conf_set(fx->conf, "reactor", "supervisor_timeout", "1s");
        reactor_start(fx);
        first = publish(fx, "acme", "1.0");
        gate_wait_up(up_fd);
        sup   = supervisor_pid(fx);
        up_fd = gate_rearm(fx, "acme");
        wait_run_logged(fx);
        assert_int_equal(kill(sup, sig), 0);

        /* The run again, by a new supervisor, once the old command is
         * dead. */
        gate_wait_up(up_fd);
        orphan = gate_pid(fx, "acme", 1);
        if (!proc_ended(orphan))
                fail_msg(
                    "the first run of acme t.gate (pid %ld) still runs "
                    "beside the second",
                    (long)orphan);
        assert_true(supervisor_pid(fx) != sup);
        if (!proc_ended(sup))
                fail_msg("the old supervisor (pid %ld) was not killed",
                         (long)sup);
        assert_int_equal(gate_release(fx, "acme", WAIT_MS), 0);

        /* Nothing is frozen: the partition goes on. */
        publish(fx, "acme", "1.1");
        publish(fx, "globex", "1.0");
        wait_settled(fx);
        wait_committed_at_end(fx);
        assert_reactor_running(fx);

        results_read(fx);
        for (size_t i = 0; i < fx->event_cnt; i++)
                for (int a = 0; a < ACTION_CNT; a++) {
                        int final = 0, succeeded = 0;

                        for (size_t j = 0; j < fx->result_cnt; j++) {
                                const fx_result_t *res = &fx->results[j];

                                if (strcmp(res->trigger_id, fx->events[i].id) ||
                                    strcmp(res->action, actions[a]))
                                        continue;
                                if (res->retrying) {
                                        interrupted +=
                                            res->status == PD_ST_INTERRUPTED;
                                        continue;
                                }
                                final++;
                                succeeded += res->status == PD_ST_SUCCEEDED;
                        }
                        if (final != 1 || succeeded != 1)
                                fail_msg(
                                    "%s %s (event %zu): %d final, %d "
                                    "SUCCEEDED; want 1",
                                    fx->events[i].tenant, actions[a], i, final,
                                    succeeded);
                }
        /* The lost run is on record, and was the only one. */
        assert_int_equal(interrupted, 1);
        (void)first;
        assert_int_equal(marker_lines(fx, "acme", "t.gate"), 3);
        assert_int_equal(marker_lines(fx, "acme", "t.one"), 2);
        assert_int_equal(marker_lines(fx, "acme", "t.two"), 2);
        assert_int_equal(marker_lines(fx, "globex", "t.gate"), 1);
        assert_int_equal(reactor_stop(fx), 0);
}

static void test_supervisor_killed_during_a_run_is_replaced_and_the_run_redone(
    void **state) {
        supervisor_lost_during_a_run(*state, SIGKILL);
}

static void test_supervisor_hung_during_a_run_is_killed_and_the_run_redone(
    void **state) {
        supervisor_lost_during_a_run(*state, SIGSTOP);
}

/*
 * After a power loss with state_sync = false, the store's last commits are
 * gone and the rowids of their runs are handed out again, while the
 * supervisor, whose log reached the disk, still holds the outcomes of the
 * runs that had those rowids. Made here by giving the supervisor of a new
 * store finished runs under the first rowids the store will hand out (a
 * FAILED exit 7 each), before the reactor starts: a new run must run, not
 * be answered with the outcome of the old one.
 */
static void test_a_rowid_that_comes_back_is_not_an_old_run(void **state) {
        fx_t *fx = *state;
        char errstr[512], dir[160];
        pd_store_t *st = pd_store_open(fx->state, 0, errstr, sizeof(errstr));
        char *argv[]   = {"/bin/sh", "-c", "exit 7", NULL};
        pd_runner_job_t job     = {.argv = argv};
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        pd_sup_t *sup;

        if (!st)
                fail_msg("pd_store_open: %s", errstr);
        snprintf(dir, sizeof(dir), "%s/supervisor-%s", fx->base,
                 pd_store_id(st));
        pd_store_close(st);
        sup = pd_sup_connect(dir, NULL, 0, errstr, sizeof(errstr));
        if (!sup)
                fail_msg("pd_sup_connect: %s", errstr);
        for (int64_t id = 1; id <= 2 * ACTION_CNT; id++) {
                assert_int_equal(pd_sup_run(sup, id, &job, res), 0);
                assert_int_equal(res->exit_code, 7);
        }
        pd_sup_close(sup);
        free(res);

        reactor_start(fx);
        publish(fx, "acme", "1.0");
        publish(fx, "globex", "1.0");
        wait_settled(fx);
        assert_each_action_once(fx);
        assert_int_equal(reactor_stop(fx), 0);
}

int main(int argc, char **argv) {
        /* The reactor starts its supervisor as `/proc/self/exe
         * --supervisor DIR --idle S --log-format F`: this binary, which
         * serves it as postdeploy-reactor does. */
        if (argc >= 5 && !strcmp(argv[1], "--supervisor") &&
            !strcmp(argv[3], "--idle"))
                return pd_sup_main(argv[2], atoi(argv[4]));

        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_produce_errors_lose_no_result_and_run_nothing_twice, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_fetch_errors_process_each_event_once, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_offset_commit_errors_rerun_nothing_after_restart, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_broker_down_during_a_run_delivers_everything_after, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_broker_down_past_the_session_rejoins_and_runs_nothing_twice,
                setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_broker_down_at_start_waits_for_it, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stop_while_waiting_for_kafka,
                                            setup, teardown),
            cmocka_unit_test(
                test_wal_write_error_commits_no_offset_past_a_lost_batch),
            cmocka_unit_test_setup_teardown(
                test_supervisor_killed_during_a_run_is_replaced_and_the_run_redone,
                setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_supervisor_hung_during_a_run_is_killed_and_the_run_redone,
                setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_a_rowid_that_comes_back_is_not_an_old_run, setup,
                teardown),
        };

        if (getenv("PD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("PD_TEST_FILTER"));
        pd_log_set_program("test_reactor_faults");
        pd_log_level = getenv("PD_TEST_VERBOSE") ? PD_LOG_DEBUG : PD_LOG_WARN;
        /* The supervisor detaches; as the subreaper we get it back as our
         * child, to stop and reap in teardown. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
                perror("prctl(PR_SET_CHILD_SUBREAPER)");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
