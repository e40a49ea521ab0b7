/*
 * test_restore.c - consumer/restore.c: a results partition read into a
 * store (shared_group mode). Records are encoded as the reactor encodes
 * them (pd__finished_encode, by a reactor of another store) and produced
 * to librdkafka's mock cluster; the restore reads them back with its own
 * consumer, and the store's answers (pd_store_action_state,
 * pd_store_trigger_outcome) are what the tests check.
 */
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <librdkafka/rdkafka.h>
/* after rdkafka.h */
#include <librdkafka/rdkafka_mock.h>

#include "consumer/reactor_int.h"

typedef struct fx_s {
        char dir[256];
        pd_store_t *st;    /* the store restored into (ours) */
        pd_store_t *other; /* the store of the reactor that published */
        pd_config_t *conf;
        rd_kafka_t *producer; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        const char *bootstraps; /* where restore() reads */
        char sup_dir[512];      /* a reactor's supervisor, stopped at the end */
        pd_reactor_t pub;       /* just enough of a reactor to encode results */
        int64_t at;             /* a clock for the records, ms */
} fx_t;

static pd_store_t *store_at(fx_t *fx, const char *name) {
        char path[512], errstr[512];
        pd_store_t *st;

        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        st = pd_store_open(path, 0, errstr, sizeof(errstr));
        if (!st)
                fail_msg("pd_store_open(%s): %s", path, errstr);
        return st;
}

static void conf_set(rd_kafka_conf_t *kconf, const char *name,
                     const char *value) {
        char errstr[512];

        if (rd_kafka_conf_set(kconf, name, value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                fail_msg("%s: %s", name, errstr);
}

static int setup(void **state) {
        fx_t *fx               = calloc(1, sizeof(*fx));
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char errstr[512];

        pd_test_tmpdir(fx->dir, sizeof(fx->dir), "test_restore", 0);
        fx->st    = store_at(fx, "ours.db");
        fx->other = store_at(fx, "theirs.db");
        fx->conf  = pd_config_new();
        /* librdkafka's mock cluster, one broker: no real Kafka needed. */
        conf_set(kconf, "test.mock.num.brokers", "1");
        conf_set(kconf, "log_level", "3");
        fx->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        assert_non_null(fx->producer);
        fx->mcluster = rd_kafka_handle_mock_cluster(fx->producer);
        assert_non_null(fx->mcluster);
        assert_int_equal(rd_kafka_mock_topic_create(
                             fx->mcluster, fx->conf->topic_results, 1, 1),
                         0);
        fx->bootstraps   = rd_kafka_mock_cluster_bootstraps(fx->mcluster);
        fx->pub.conf     = fx->conf;
        fx->pub.st       = fx->other;
        fx->pub.producer = fx->producer;
        snprintf(fx->pub.name, sizeof(fx->pub.name), "reactor-b");
        snprintf(fx->pub.source, sizeof(fx->pub.source),
                 "postdeploy-reactor/b");
        fx->at = 1700000000000;
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        fx_t *fx = *state;
        char errstr[512];

        /* The supervisor a reactor started (this binary: main), even
         * when the test failed. */
        if (*fx->sup_dir &&
            pd_sup_shutdown(fx->sup_dir, 10000, errstr, sizeof(errstr)))
                fprintf(stderr, "pd_sup_shutdown: %s\n", errstr);

        rd_kafka_destroy(fx->producer);
        pd_config_destroy(fx->conf);
        pd_store_close(fx->st);
        pd_store_close(fx->other);
        pd_test_rmtree(fx->dir);
        free(fx);
        return 0;
}

/* Encodes an action.finished as the reactor fx->pub does and produces it
 * with producer (NULL: fx's), to the mock cluster. */
static void publish_with(fx_t *fx, rd_kafka_t *producer, const char *tenant,
                         const char *action, const char *trigger_id,
                         int32_t attempt, pd_status_t status,
                         const char *error) {
        pd_run_t run = {0};
        pd_outrec_t o;

        run.tenant      = tenant;
        run.action      = action;
        run.release     = "v1";
        run.trigger_id  = trigger_id;
        run.attempt     = attempt;
        run.status      = status;
        run.error       = error;
        run.started_at  = fx->at;
        run.finished_at = fx->at + 5;
        run.duration_ms = 5;
        fx->at += 10;
        pd__finished_encode(&fx->pub, &run, "", 0, &o);
        fx->pub.producer = producer ? producer : fx->producer;
        pd__produce_rec(&fx->pub, PD_OUTBOX_NONE, PD_PART_ANY, o.topic, o.key,
                        o.headers, o.headers_len, o.value, o.value_len);
        fx->pub.producer = fx->producer;
        pd__outrec_clear(&o);
}

static void publish(fx_t *fx, const char *tenant, const char *action,
                    const char *trigger_id, int32_t attempt, pd_status_t status,
                    const char *error) {
        publish_with(fx, NULL, tenant, action, trigger_id, attempt, status,
                     error);
}

/* An action.started, which changes no ledger. */
static void publish_started(fx_t *fx, const char *tenant, const char *action) {
        pd_event_t *ev = pd_event_new(PD_EVT_ACTION_STARTED);
        char key[256];
        pd_outrec_t o;

        ev->tenant     = pd_xstrdup(tenant);
        ev->action     = pd_xstrdup(action);
        ev->release    = pd_xstrdup("v1");
        ev->trigger_id = pd_xstrdup("trig-started");
        ev->reactor    = pd_xstrdup("reactor-b");
        ev->attempt    = 1;
        ev->started_at = fx->at;
        snprintf(key, sizeof(key), "%s/%s", tenant, action);
        pd__emit_encode(&fx->pub, ev, key, &o);
        pd__produce_rec(&fx->pub, PD_OUTBOX_NONE, PD_PART_ANY, o.topic, o.key,
                        o.headers, o.headers_len, o.value, o.value_len);
        pd__outrec_clear(&o);
        pd_event_destroy(ev);
}

static void flush(rd_kafka_t *rk) {
        assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Restores partition 0 into fx->st; the test fails if it does. */
static void restore(fx_t *fx, pd_restore_stats_t *stats) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        pd_restore_opts_t o    = {0};
        char errstr[512];

        flush(fx->producer);
        conf_set(kconf, "bootstrap.servers", fx->bootstraps);
        conf_set(kconf, "log_level", "3");
        o.topic           = fx->conf->topic_results;
        o.part            = 0;
        o.idle_timeout_ms = 10000;
        if (pd_restore_apply(fx->st, kconf, &o, stats, errstr, sizeof(errstr)))
                fail_msg("pd_restore_apply: %s", errstr);
}

static pd_action_state_t state_of(fx_t *fx, const char *tenant,
                                  const char *action) {
        pd_action_state_t as;

        assert_int_equal(pd_store_action_state(fx->st, tenant, action, &as), 0);
        return as;
}

static void assert_ledger(fx_t *fx, const char *tenant, const char *action,
                          int ever_succeeded, pd_status_t last_status,
                          int32_t last_attempt) {
        pd_action_state_t as = state_of(fx, tenant, action);

        if (!as.known)
                fail_msg("%s/%s: unknown", tenant, action);
        assert_int_equal(as.ever_succeeded, ever_succeeded);
        assert_int_equal(as.last_status, last_status);
        assert_int_equal(as.last_attempt, last_attempt);
        assert_false(as.running);
}

static void test_finished_records_become_the_ledger(void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};
        pd_status_t status;
        int found;
        int32_t attempt;

        publish_started(fx, "t1", "a");
        publish(fx, "t1", "a", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        publish(fx, "t1", "b", "trig-1", 1, PD_ST_FAILED, "exit 1");
        publish(fx, "t1", "b", "trig-1", 2, PD_ST_FAILED, "exit 1");
        publish(fx, "t2", "a", "trig-2", 1, PD_ST_INTERRUPTED, "stopped");
        /* A name the publishing reactor did not know: it stored nothing. */
        publish(fx, "t2", "nope", "trig-2", 1, PD_ST_REJECTED,
                "unknown action 'nope'");
        restore(fx, &stats);

        assert_int_equal(stats.records, 6);
        assert_int_equal(stats.applied, 4);
        assert_int_equal(stats.from, 0);
        assert_int_equal(stats.to, 6);
        assert_ledger(fx, "t1", "a", 1, PD_ST_SUCCEEDED, 1);
        assert_ledger(fx, "t1", "b", 0, PD_ST_FAILED, 2);
        assert_ledger(fx, "t2", "a", 0, PD_ST_INTERRUPTED, 1);
        assert_false(state_of(fx, "t2", "nope").known);
        assert_false(state_of(fx, "t2", "b").known);

        /* The trigger, redelivered to this reactor, finds what it did;
         * action.finished names no source, so any source matches. */
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "t1", "b", "postdeploy-cli/host",
                                     "trig-1", &found, &status, &attempt),
            0);
        assert_true(found);
        assert_int_equal(status, PD_ST_FAILED);
        assert_int_equal(attempt, 2);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "t1", "a", "any", "trig-9", &found,
                                     &status, NULL),
            0);
        assert_false(found);
}

/* A run of this store's own still needs its trigger's source to match. */
static void test_a_local_run_still_matches_by_source_and_id(void **state) {
        fx_t *fx     = *state;
        pd_run_t run = {0};
        pd_status_t status;
        int found;

        run.tenant         = "t1";
        run.action         = "a";
        run.trigger_source = "cli/one";
        run.trigger_id     = "trig-1";
        run.attempt        = 1;
        run.status         = PD_ST_SUCCEEDED;
        run.id             = pd_store_run_id_next(fx->st);
        assert_int_equal(pd_store_run_record(fx->st, &run), 0);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "t1", "a", "cli/two", "trig-1",
                                     &found, &status, NULL),
            0);
        assert_false(found);
        assert_int_equal(
            pd_store_trigger_outcome(fx->st, "t1", "a", "cli/one", "trig-1",
                                     &found, &status, NULL),
            0);
        assert_true(found);
}

static void test_a_second_restore_reads_from_the_checkpoint(void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};
        pd_store_part_t sp;

        publish(fx, "t1", "a", "trig-1", 1, PD_ST_FAILED, "exit 1");
        publish(fx, "t1", "b", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        restore(fx, &stats);
        assert_int_equal(stats.records, 2);
        assert_int_equal(pd_store_part_get(fx->st, 0, &sp), 0);
        assert_true(sp.known);
        assert_false(sp.dirty);
        assert_int_equal(sp.next_offset, 2);

        publish(fx, "t1", "a", "trig-2", 1, PD_ST_SUCCEEDED, NULL);
        publish(fx, "t2", "a", "trig-3", 1, PD_ST_TIMED_OUT, "timeout");
        publish(fx, "t2", "a", "trig-3", 2, PD_ST_FAILED, "exit 2");
        restore(fx, &stats);
        assert_int_equal(stats.from, 2);
        assert_int_equal(stats.to, 5);
        assert_int_equal(stats.records, 3);
        assert_int_equal(stats.applied, 3);
        assert_ledger(fx, "t1", "a", 1, PD_ST_SUCCEEDED, 1);
        assert_ledger(fx, "t2", "a", 0, PD_ST_FAILED, 2);

        /* Nothing new: nothing read. */
        restore(fx, &stats);
        assert_int_equal(stats.records, 0);
        assert_int_equal(stats.applied, 0);
}

/* Read again from the start (a checkpoint lost), every record is known by
 * its origin and adds nothing. */
static void test_a_record_applied_twice_adds_nothing(void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};

        publish(fx, "t1", "a", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        publish(fx, "t1", "a", "trig-2", 1, PD_ST_RESET, "reset on request");
        restore(fx, &stats);
        assert_int_equal(stats.applied, 2);
        assert_int_equal(pd_store_part_set(fx->st, 0, 0, 0), 0);
        restore(fx, &stats);
        assert_int_equal(stats.records, 2);
        assert_int_equal(stats.applied, 0);
        /* The success was not applied again over the reset. */
        assert_ledger(fx, "t1", "a", 0, PD_ST_RESET, 1);
}

static void test_skip_then_reset_ends_pending(void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};

        publish(fx, "t1", "a", "trig-1", 1, PD_ST_SKIPPED,
                "skipped on request of ops/alice");
        publish(fx, "t1", "b", "trig-1", 1, PD_ST_SKIPPED,
                "skipped on request of ops/alice");
        restore(fx, &stats);
        assert_ledger(fx, "t1", "a", 1, PD_ST_SKIPPED, 1);
        assert_ledger(fx, "t1", "b", 1, PD_ST_SKIPPED, 1);

        publish(fx, "t1", "a", "trig-2", 1, PD_ST_RESET,
                "reset on request of ops/alice");
        /* Left out because a dependency failed: still pending, as the
         * reactor that skipped it holds it. */
        publish(fx, "t1", "c", "trig-3", 1, PD_ST_SKIPPED,
                "dependency a FAILED");
        restore(fx, &stats);
        assert_int_equal(stats.applied, 2);
        assert_ledger(fx, "t1", "a", 0, PD_ST_RESET, 1);
        assert_ledger(fx, "t1", "b", 1, PD_ST_SKIPPED, 1);
        assert_ledger(fx, "t1", "c", 0, PD_ST_SKIPPED, 1);
}

static void test_records_of_this_store_are_skipped(void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};

        fx->pub.st = fx->st; /* published by the store restored into */
        publish(fx, "t1", "a", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        fx->pub.st = fx->other;
        publish(fx, "t1", "b", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        restore(fx, &stats);
        assert_int_equal(stats.records, 2);
        assert_int_equal(stats.own, 1);
        assert_int_equal(stats.applied, 1);
        assert_false(state_of(fx, "t1", "a").known);
        assert_ledger(fx, "t1", "b", 1, PD_ST_SUCCEEDED, 1);
}

/* restore, again until it reads something (up to 30 s). The coordinator
 * writes a transaction's commit marker after the commit returns; until then
 * the last stable offset stays before its records, and a restore rightly
 * reads nothing. A restore that reads nothing changes nothing, so *stats
 * is the one that read them. */
static void restore_committed(fx_t *fx, pd_restore_stats_t *stats) {
        int64_t end = pd_mono_ms() + 30000;

        do
                restore(fx, stats);
        while (!stats->records && pd_mono_ms() < end);
}

/*
 * The mock cluster of librdkafka 2.0.2 takes transactions but writes no
 * markers and returns no aborted transactions to a read_committed fetch,
 * so what an abort hides can only be seen on a real broker: PD_BROKERS
 * (the unit run leaves it empty), topics of this run's own. Without one the
 * test is skipped, unless PD_TEST_NEED_BROKER is set (ctest's
 * integration.test_restore_broker runs it so).
 */
static void test_an_aborted_transaction_is_not_applied(void **state) {
        fx_t *fx                 = *state;
        const char *brokers      = getenv("PD_BROKERS");
        pd_restore_stats_t stats = {0};
        rd_kafka_conf_t *kconf;
        rd_kafka_error_t *error;
        rd_kafka_t *txp, *admin;
        char errstr[512], name[128], txid[160];

        if (!brokers || !*brokers) {
                /* The unit run (PD_BROKERS empty): the broker is the
                 * integration run's, which holds its lock. */
                if (getenv("PD_TEST_NEED_BROKER"))
                        fail_msg("PD_BROKERS names no broker");
                skip();
        }
        kconf = rd_kafka_conf_new();
        conf_set(kconf, "bootstrap.servers", brokers);
        conf_set(kconf, "log_level", "0");
        admin = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        assert_non_null(admin);
        if (pd_kafka_ping(admin, brokers, 3000, errstr, sizeof(errstr))) {
                rd_kafka_destroy(admin);
                if (getenv("PD_TEST_NEED_BROKER"))
                        fail_msg("no broker: %s", errstr);
                skip();
        }
        /* This run's own topics, one partition. */
        snprintf(name, sizeof(name), "pdtest-restore-%d-%lld", (int)getpid(),
                 (long long)pd_now_ms());
        for (int i = 0; i < 3; i++) {
                static const char *const keys[] = {"events", "results", "dlq"};
                char topic[160];

                snprintf(topic, sizeof(topic), "%s.%s", name, keys[i]);
                assert_int_equal(pd_config_set(fx->conf, "topics", keys[i],
                                               topic, errstr, sizeof(errstr)),
                                 0);
        }
        assert_int_equal(pd_config_set(fx->conf, "topics", "partitions", "1",
                                       errstr, sizeof(errstr)),
                         0);
        if (pd_kafka_topics_ensure(admin, fx->conf, 30000, errstr,
                                   sizeof(errstr)))
                fail_msg("%s", errstr);
        rd_kafka_destroy(admin);
        fx->bootstraps = brokers;

        kconf = rd_kafka_conf_new();
        snprintf(txid, sizeof(txid), "%s-b", name);
        conf_set(kconf, "bootstrap.servers", brokers);
        conf_set(kconf, "transactional.id", txid);
        conf_set(kconf, "log_level", "3");
        txp = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        assert_non_null(txp);
        assert_null(error = rd_kafka_init_transactions(txp, 30000));

        assert_null(error = rd_kafka_begin_transaction(txp));
        publish_with(fx, txp, "t1", "a", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        flush(txp);
        assert_null(error = rd_kafka_abort_transaction(txp, 30000));

        assert_null(error = rd_kafka_begin_transaction(txp));
        publish_with(fx, txp, "t1", "b", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        assert_null(error = rd_kafka_commit_transaction(txp, 30000));

        restore_committed(fx, &stats);
        assert_int_equal(stats.records, 1);
        assert_int_equal(stats.applied, 1);
        assert_false(state_of(fx, "t1", "a").known);
        assert_ledger(fx, "t1", "b", 1, PD_ST_SUCCEEDED, 1);
        /* Past the commit marker: the next restore reads nothing. */
        restore(fx, &stats);
        assert_int_equal(stats.from, 4);
        assert_int_equal(stats.records, 0);

        /* A transaction still open: its record is not applied, and the
         * restore ends at the last stable offset instead of waiting. */
        assert_null(error = rd_kafka_begin_transaction(txp));
        publish_with(fx, txp, "t1", "c", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        flush(txp);
        restore(fx, &stats);
        assert_int_equal(stats.records, 0);
        assert_int_equal(stats.to, 4);
        assert_false(state_of(fx, "t1", "c").known);
        assert_null(error = rd_kafka_commit_transaction(txp, 30000));
        restore_committed(fx, &stats);
        assert_int_equal(stats.records, 1);
        assert_ledger(fx, "t1", "c", 1, PD_ST_SUCCEEDED, 1);
        rd_kafka_destroy(txp);
}

/* A local run of tenant on partition part, finished SUCCEEDED. */
static void local_run(fx_t *fx, const char *tenant, int32_t part) {
        pd_run_t run = {0};

        run.tenant         = tenant;
        run.action         = "x";
        run.trigger_source = "cli/one";
        run.trigger_id     = "trig-local";
        run.attempt        = 1;
        run.status         = PD_ST_SUCCEEDED;
        run.id             = pd_store_run_id_next(fx->st);
        assert_int_equal(pd_store_tenant_part(fx->st, tenant, part), 0);
        assert_int_equal(pd_store_run_record(fx->st, &run), 0);
}

static void test_a_lost_partition_restores_from_scratch_a_solo_store_in_place(
    void **state) {
        fx_t *fx                 = *state;
        pd_restore_stats_t stats = {0};

        local_run(fx, "t5", 0);
        local_run(fx, "t6", 1); /* another partition's tenant */
        publish(fx, "t5", "y", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        fx->pub.st = fx->st; /* ours, published before the loss */
        publish(fx, "t5", "z", "trig-1", 1, PD_ST_FAILED, "exit 1");
        fx->pub.st = fx->other;
        /* Rows of the partition and no checkpoint (a store that ran
         * without shared_group): restored in place, from the start,
         * deleting nothing: its own history is the one it had. */
        restore(fx, &stats);
        assert_false(stats.dirty);
        assert_int_equal(stats.cleared, 0);
        assert_int_equal(stats.records, 2);
        assert_ledger(fx, "t5", "x", 1, PD_ST_SUCCEEDED, 1);
        assert_ledger(fx, "t6", "x", 1, PD_ST_SUCCEEDED, 1);
        assert_ledger(fx, "t5", "y", 1, PD_ST_SUCCEEDED, 1);
        /* This store's own record is skipped: it holds its rows. */
        assert_false(state_of(fx, "t5", "z").known);

        /* Lost: what the store holds may be ahead of the topic. */
        local_run(fx, "t5", 0);
        restore(fx, &stats);
        assert_false(stats.dirty);
        assert_true(state_of(fx, "t5", "x").known);
        pd_store_part_forget(fx->st, 0);
        restore(fx, &stats);
        assert_true(stats.dirty);
        assert_int_equal(stats.cleared, 3);
        assert_int_equal(stats.records, 2);
        assert_int_equal(stats.applied, 2);
        assert_false(state_of(fx, "t5", "x").known);
        assert_ledger(fx, "t5", "y", 1, PD_ST_SUCCEEDED, 1);
        assert_ledger(fx, "t5", "z", 0, PD_ST_FAILED, 1);
        assert_ledger(fx, "t6", "x", 1, PD_ST_SUCCEEDED, 1);
        /* Over: the next restore is incremental again. */
        restore(fx, &stats);
        assert_false(stats.dirty);
        assert_int_equal(stats.records, 0);
}

/* ------------------------------------------------------------------ */
/* The reactor's side                                                  */

typedef struct reactor_fx_s {
        pd_reactor_t *r;
        pthread_t thread;
        volatile sig_atomic_t stop;
} reactor_fx_t;

static void *reactor_main(void *arg) {
        reactor_fx_t *rf = arg;

        pd_reactor_run(rf->r, &rf->stop);
        return NULL;
}

/* A release.deployed for tenant, produced to partition part of the events
 * topic. */
static void deploy_to(fx_t *fx, const char *tenant, int32_t part) {
        pd_event_t *ev = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        rd_kafka_headers_t *hdrs;
        char errstr[512];
        void *buf;
        size_t len;

        ev->tenant       = pd_xstrdup(tenant);
        ev->release      = pd_xstrdup("1.0.0");
        ev->environment  = pd_xstrdup("test");
        ev->requested_by = pd_xstrdup("test_restore");
        ev->selection    = PD_SEL_AUTO;
        ev->deployed_at  = pd_now_ms();
        pd_event_stamp(ev, "test_restore");
        if (pd_event_encode(ev, &buf, &len, errstr, sizeof(errstr)))
                fail_msg("pd_event_encode: %s", errstr);
        hdrs = pd_event_headers(ev);
        assert_int_equal(
            rd_kafka_producev(fx->producer,
                              RD_KAFKA_V_TOPIC(fx->conf->topic_events),
                              RD_KAFKA_V_PARTITION(part),
                              RD_KAFKA_V_KEY(tenant, strlen(tenant)),
                              RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        flush(fx->producer);
        free(buf);
        pd_event_destroy(ev);
}

/*
 * A reactor of its own (pd_reactor_new on the mock cluster): the restore
 * goes through its batches (pd__reactor_txn_sync, with the committer
 * running), a lost partition's checkpoint is marked dirty, and the tenant
 * of every event it plans is recorded under the event's partition.
 */
static void test_a_reactor_restores_through_its_batches(void **state) {
        fx_t *fx           = *state;
        reactor_fx_t rf    = {0};
        pd_store_t *reader = NULL;
        pd_store_part_t sp;
        pd_action_state_t as;
        char errstr[512], path[512];
        int64_t deadline;

        snprintf(path, sizeof(path), "%s/reactor.db", fx->dir);
        assert_int_equal(pd_config_set(fx->conf, "kafka", "bootstrap.servers",
                                       fx->bootstraps, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "reactor", "state", path,
                                       errstr, sizeof(errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "reactor", "group.id",
                                       "test-restore", errstr, sizeof(errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "topics", "partitions", "2",
                                       errstr, sizeof(errstr)),
                         0);
        assert_int_equal(pd_config_set(fx->conf, "kafka", "session.timeout.ms",
                                       "6000", errstr, sizeof(errstr)),
                         0);
        /* The mock cluster times CreateTopics out: made here. */
        assert_int_equal(rd_kafka_mock_topic_create(
                             fx->mcluster, fx->conf->topic_events, 2, 1),
                         0);
        assert_int_equal(
            rd_kafka_mock_topic_create(fx->mcluster, fx->conf->topic_dlq, 2, 1),
            0);
        publish(fx, "t1", "a", "trig-1", 1, PD_ST_SUCCEEDED, NULL);
        flush(fx->producer);
        rf.r = pd_reactor_new(fx->conf, fx->bootstraps, errstr, sizeof(errstr));
        if (!rf.r)
                fail_msg("pd_reactor_new: %s", errstr);
        snprintf(fx->sup_dir, sizeof(fx->sup_dir), "%s", rf.r->sup_dir);

        if (pd__restore_partition(rf.r, 0, errstr, sizeof(errstr)))
                fail_msg("pd__restore_partition: %s", errstr);
        pthread_mutex_lock(&rf.r->st_lock);
        assert_int_equal(pd_store_action_state(rf.r->st, "t1", "a", &as), 0);
        assert_int_equal(pd_store_part_get(rf.r->st, 0, &sp), 0);
        pthread_mutex_unlock(&rf.r->st_lock);
        assert_true(as.ever_succeeded);
        assert_true(sp.known);
        assert_false(sp.dirty);
        assert_int_equal(sp.next_offset, 1);

        pd__restore_forget(rf.r, 0);
        pthread_mutex_lock(&rf.r->st_lock);
        assert_int_equal(pd_store_part_get(rf.r->st, 0, &sp), 0);
        pthread_mutex_unlock(&rf.r->st_lock);
        assert_true(sp.dirty);

        /* The tenant of a planned event, under its partition: read from
         * a second handle while the reactor runs. */
        assert_int_equal(pthread_create(&rf.thread, NULL, reactor_main, &rf),
                         0);
        deploy_to(fx, "acme", 1);
        reader   = store_at(fx, "reactor.db");
        deadline = pd_now_ms() + 30000;
        do {
                assert_int_equal(pd_store_part_get(reader, 1, &sp), 0);
                if (!sp.has_tenants)
                        pd__sleep_ms(50);
        } while (!sp.has_tenants && pd_now_ms() < deadline);
        rf.stop = 1;
        pthread_join(rf.thread, NULL);
        assert_true(sp.has_tenants);
        assert_int_equal(pd_store_part_get(reader, 0, &sp), 0);
        /* t1, restored from partition 0, is recorded there. */
        assert_true(sp.has_tenants);
        pd_store_close(reader);
        pd_reactor_destroy(rf.r);
}

int main(int argc, char **argv) {
        /* The reactor starts its supervisor as `/proc/self/exe
         * --supervisor DIR --idle S --log-format F`: this binary, which
         * serves it as postdeploy-reactor does (and must not run the
         * tests again). */
        if (argc >= 5 && !strcmp(argv[1], "--supervisor") &&
            !strcmp(argv[3], "--idle"))
                return pd_sup_main(argv[2], atoi(argv[4]));

        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_finished_records_become_the_ledger, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_a_local_run_still_matches_by_source_and_id, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_a_second_restore_reads_from_the_checkpoint, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_a_record_applied_twice_adds_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_skip_then_reset_ends_pending,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_records_of_this_store_are_skipped, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_an_aborted_transaction_is_not_applied, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_a_lost_partition_restores_from_scratch_a_solo_store_in_place,
                setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_a_reactor_restores_through_its_batches, setup, teardown),
        };

        pd_log_level = getenv("PD_TEST_VERBOSE") ? PD_LOG_DEBUG : PD_LOG_ERROR;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
