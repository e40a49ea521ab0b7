/*
 * test_publish.c - the Kafka transaction of a shared group (consumer/
 * publish.c): records and offsets committed together, an abortable error
 * aborted and its records produced again, a fenced producer rebuilt with
 * nothing of its transaction committed.
 *
 * The state machine runs against librdkafka's mock cluster, whose request
 * errors can be injected. The mock keeps no transaction markers (a
 * read_committed reader sees aborted records too), so what a
 * read_committed reader sees is checked against the real broker when
 * PD_BROKERS names one (ctest sets nothing: those tests are skipped then,
 * and say so).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "consumer/reactor_int.h"
#include "fixture.h"

/* Kafka protocol ApiKeys (not in librdkafka's public headers). */
#define API_ADD_PARTITIONS_TO_TXN 24
#define API_END_TXN               26

typedef struct fx_s {
        rd_kafka_t *mrk; /* owns the mock cluster; NULL: the real broker */
        rd_kafka_mock_cluster_t *mcluster;
        char brokers[256];
        char run[64]; /* makes topic, group and transactional ids unique */
        pd_config_t *conf;
        pd_reactor_t *r;
} fx_t;

static void conf_set(pd_config_t *conf, const char *section, const char *key,
                     const char *value) {
        char errstr[512];

        if (pd_config_set(conf, section, key, value, errstr, sizeof(errstr)))
                fail_msg("[%s] %s = %s: %s", section, key, value, errstr);
}

/* A reactor with only what the publisher uses: its config, a
 * transactional producer, and a consumer of the group for its metadata. */
static pd_reactor_t *reactor_make(fx_t *fx, const char *instance) {
        pd_reactor_t *r        = pd_xcalloc(1, sizeof(*r));
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char errstr[512];

        r->conf = fx->conf;
        snprintf(r->brokers, sizeof(r->brokers), "%s", fx->brokers);
        snprintf(r->instance, sizeof(r->instance), "%s", instance);
        snprintf(r->pub.txn_id, sizeof(r->pub.txn_id), "postdeploy-%s-%s",
                 fx->conf->group_id, instance);
        pthread_mutex_init(&r->dr_lock, NULL);
        r->producer = pd__reactor_producer_new(r, errstr, sizeof(errstr));
        if (!r->producer)
                fail_msg("producer: %s", errstr);
        if (rd_kafka_conf_set(kconf, "bootstrap.servers", fx->brokers, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(kconf, "group.id", fx->conf->group_id, errstr,
                              sizeof(errstr)))
                fail_msg("consumer: %s", errstr);
        r->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof(errstr));
        if (!r->consumer)
                fail_msg("consumer: %s", errstr);
        if (pd__publish_init(r, errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        return r;
}

static void reactor_free(pd_reactor_t *r) {
        pd__publish_stop(r);
        rd_kafka_destroy(r->consumer);
        rd_kafka_destroy(r->producer);
        free(r->delivered);
        pthread_mutex_destroy(&r->dr_lock);
        free(r);
}

static int setup_with(void **state, const char *brokers) {
        fx_t *fx = pd_xcalloc(1, sizeof(*fx));
        char name[256], errstr[512];

        snprintf(fx->run, sizeof(fx->run), "%ld-%d", (long)pd_now_ms(),
                 (int)getpid());
        if (!brokers) {
                rd_kafka_conf_t *kconf = rd_kafka_conf_new();

                fx->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                       sizeof(errstr));
                assert_non_null(fx->mrk);
                fx->mcluster = rd_kafka_mock_cluster_new(fx->mrk, 1);
                assert_non_null(fx->mcluster);
                brokers = rd_kafka_mock_cluster_bootstraps(fx->mcluster);
        }
        snprintf(fx->brokers, sizeof(fx->brokers), "%s", brokers);
        fx->conf = pd_config_new();
        conf_set(fx->conf, "kafka", "bootstrap.servers", fx->brokers);
        conf_set(fx->conf, "reactor", "shared_group", "true");
        snprintf(name, sizeof(name), "pdunit-%s", fx->run);
        conf_set(fx->conf, "reactor", "group.id", name);
        snprintf(name, sizeof(name), "pdunit.%s.events", fx->run);
        conf_set(fx->conf, "topics", "events", name);
        snprintf(name, sizeof(name), "pdunit.%s.results", fx->run);
        conf_set(fx->conf, "topics", "results", name);
        snprintf(name, sizeof(name), "pdunit.%s.dlq", fx->run);
        conf_set(fx->conf, "topics", "dlq", name);
        conf_set(fx->conf, "topics", "partitions", "3");
        if (fx->mcluster) {
                assert_int_equal(
                    rd_kafka_mock_topic_create(fx->mcluster,
                                               fx->conf->topic_events, 3, 1),
                    0);
                assert_int_equal(
                    rd_kafka_mock_topic_create(fx->mcluster,
                                               fx->conf->topic_results, 3, 1),
                    0);
        }
        fx->r = reactor_make(fx, "unit");
        if (!fx->mcluster &&
            pd_kafka_topics_ensure(fx->r->producer, fx->conf, 10000, errstr,
                                   sizeof(errstr)))
                fail_msg("%s", errstr);
        *state = fx;
        return 0;
}

static int setup_mock(void **state) {
        return setup_with(state, NULL);
}

static int setup_broker(void **state) {
        const char *brokers = getenv("PD_BROKERS");

        if (!brokers || !*brokers) {
                *state = NULL;
                return 0;
        }
        return setup_with(state, brokers);
}

static int teardown(void **state) {
        fx_t *fx = *state;

        if (!fx)
                return 0;
        if (fx->r)
                reactor_free(fx->r);
        pd_config_destroy(fx->conf);
        if (fx->mcluster)
                rd_kafka_mock_cluster_destroy(fx->mcluster);
        if (fx->mrk)
                rd_kafka_destroy(fx->mrk);
        free(fx);
        return 0;
}

#define SKIP_WITHOUT_BROKER(fx)                                                \
        do {                                                                   \
                if (!(fx)) {                                                   \
                        print_message(                                         \
                            "skipped: PD_BROKERS names no broker\n");          \
                        skip();                                                \
                }                                                              \
        } while (0)

/* A result record, as the outbox hands it on. */
static void add_rec(pd_reactor_t *r, int64_t seq, int32_t part,
                    const char *key) {
        static const char hdrs[] = "ce_type\0action.finished\0";

        pd__publish_add(r, seq, part, r->conf->topic_results, key, hdrs,
                        sizeof(hdrs) - 1, key, strlen(key));
}

static void add_offset(pd_reactor_t *r, int32_t part, int64_t offset) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, r->conf->topic_events, part)
            ->offset = offset;
        pd__publish_offsets(r, l);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Waits (up to 30 s) until the publisher has committed `commits`
 * transactions and holds nothing; fails if it does not. */
static void await_settled(pd_reactor_t *r, int64_t commits) {
        int64_t end = pd_mono_ms() + 30000;
        int settled = 0;

        while (!settled && pd_mono_ms() < end) {
                pthread_mutex_lock(&r->pub.lock);
                settled = r->pub.commits >= commits && !r->pub.cnt &&
                          !r->pub.offsets->cnt && !r->pub.committing;
                if (!settled)
                        pd__cond_wait_ms(&r->pub.cond, &r->pub.lock, 50);
                pthread_mutex_unlock(&r->pub.lock);
        }
        if (!settled)
                fail_msg("publisher not settled: %" PRId64
                         " commit(s), "
                         "%zu record(s) held",
                         r->pub.commits, r->pub.cnt);
}

/* Waits (up to 30 s) for the publisher to find its producer fenced. */
static void await_fenced(pd_reactor_t *r) {
        int64_t end = pd_mono_ms() + 30000;

        while (!pd__publish_fenced(r) && pd_mono_ms() < end)
                pd__sleep_ms(10);
        assert_true(pd__publish_fenced(r));
}

/* The outbox seqs the publisher released (committed, or dropped). */
static size_t delivered(pd_reactor_t *r, int64_t seq) {
        size_t n = 0;

        pthread_mutex_lock(&r->dr_lock);
        for (size_t i = 0; i < r->delivered_cnt; i++)
                n += r->delivered[i] == seq;
        pthread_mutex_unlock(&r->dr_lock);
        return n;
}

/* How many records with key a reader with isolation.level sees in the
 * results topic, and in which partition the last one was (*partp). */
static int visible(fx_t *fx, const char *isolation, const char *key,
                   int32_t *partp) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(3);
        int64_t end = pd_mono_ms() + 20000;
        int eofs = 0, n = 0;
        char errstr[512];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(kconf, "bootstrap.servers",
                                           fx->brokers, errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(kconf, "isolation.level", isolation,
                                           errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(kconf, "enable.partition.eof",
                                           "true", errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(kconf, "group.id", "pdunit-reader",
                                           errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof(errstr));
        assert_non_null(rk);
        for (int32_t p = 0; p < 3; p++)
                rd_kafka_topic_partition_list_add(parts,
                                                  fx->conf->topic_results, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        while (eofs < 3 && pd_mono_ms() < end) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (!m->err && m->key_len == strlen(key) &&
                           !memcmp(m->key, key, m->key_len)) {
                        n++;
                        if (partp)
                                *partp = m->partition;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        assert_int_equal(eofs, 3);
        return n;
}

/* The group's committed offset of an events partition (-1001: none). */
static int64_t committed(fx_t *fx, int32_t part) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        int64_t off;

        rd_kafka_topic_partition_list_add(l, fx->conf->topic_events, part);
        assert_int_equal(rd_kafka_committed(fx->r->consumer, l, 10000), 0);
        off = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return off;
}

/* ------------------------------------------------------------------ */

/* One transaction carries the records to their partitions and the
 * offsets; only then do the records leave the outbox. */
static void test_a_commit_carries_records_and_offsets(void **state) {
        fx_t *fx        = *state;
        pd_reactor_t *r = fx->r;
        int32_t part    = -1;

        add_rec(r, 1, 1, "t1/a");
        add_rec(r, 2, 2, "t2/a");
        add_rec(r, PD_OUTBOX_NONE, PD_PART_ANY, PD_REGISTRY_KEY);
        add_offset(r, 1, 5);
        await_settled(r, 1);
        assert_int_equal(r->pub.aborts, 0);
        assert_int_equal(delivered(r, 1), 1);
        assert_int_equal(delivered(r, 2), 1);
        assert_int_equal(r->delivered_cnt, 2); /* the registry has no row */
        assert_int_equal(visible(fx, "read_committed", "t1/a", &part), 1);
        assert_int_equal(part, 1); /* the partition of its event */
        assert_int_equal(visible(fx, "read_committed", "t2/a", &part), 1);
        assert_int_equal(part, 2);
        assert_int_equal(visible(fx, "read_committed", PD_REGISTRY_KEY, &part),
                         1);
        assert_int_equal(part, 0);
}

/* An abortable error (AddPartitionsToTxn refused) aborts the transaction;
 * its records go again in the next one, which commits: each leaves the
 * outbox once, and the offsets go with them. */
static void test_an_abortable_error_aborts_and_produces_again(void **state) {
        fx_t *fx        = *state;
        pd_reactor_t *r = fx->r;

        /* The first transaction's first request to add a partition. */
        rd_kafka_mock_push_request_errors(
            fx->mcluster, API_ADD_PARTITIONS_TO_TXN, 1,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        add_rec(r, 7, 1, "t1/a");
        add_offset(r, 1, 3);
        await_settled(r, 1);
        assert_int_equal(r->pub.aborts, 1);
        assert_int_equal(r->pub.commits, 1);
        assert_int_equal(delivered(r, 7), 1);
        assert_int_equal(visible(fx, "read_committed", "t1/a", NULL), 1);
}

/* Fences r's producer: a second producer with its transactional.id (a
 * new incarnation of this instance) on a real broker; the mock, which
 * fences no one, answers the commit PRODUCER_FENCED instead. Returns the
 * usurper (NULL on the mock). */
static pd_reactor_t *fence(fx_t *fx) {
        if (fx->mcluster) {
                rd_kafka_mock_push_request_errors(
                    fx->mcluster, API_END_TXN, 1,
                    RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
                return NULL;
        }
        {
                /* Its init_transactions fences ours: wait until it is done,
                 * or our next commit may still go through before it. */
                pd_reactor_t *u = reactor_make(fx, "unit");
                int64_t end     = pd_mono_ms() + 30000;
                int ready       = 0;

                while (!ready && pd_mono_ms() < end) {
                        pthread_mutex_lock(&u->pub.lock);
                        ready = u->pub.ready;
                        pthread_mutex_unlock(&u->pub.lock);
                        if (!ready)
                                pd__sleep_ms(10);
                }
                assert_true(ready);
                return u;
        }
}

/* A fenced producer: the publisher says so and commits nothing; after the
 * rebuild the partitions' records are dropped (their next owner decides),
 * the registry goes out, and transactions work again. */
static void test_a_fenced_producer_is_rebuilt(void **state) {
        fx_t *fx = *state;
        pd_reactor_t *r, *usurper;
        char errstr[512];

        SKIP_WITHOUT_BROKER(fx);
        r = fx->r;
        add_rec(r, 1, 1, "t1/before");
        await_settled(r, 1);
        usurper = fence(fx);
        add_rec(r, 2, 2, "t2/fenced");
        add_rec(r, 3, PD_PART_ANY, PD_REGISTRY_KEY);
        add_offset(r, 2, 9);
        await_fenced(r);
        assert_int_equal(r->pub.commits, 1);
        assert_int_equal(delivered(r, 2), 0);
        if (usurper)
                reactor_free(usurper);

        /* What the main thread does: every partition lost, then a new
         * producer. */
        {
                rd_kafka_topic_partition_list_t *all =
                    rd_kafka_topic_partition_list_new(3);

                for (int32_t p = 0; p < 3; p++)
                        rd_kafka_topic_partition_list_add(
                            all, fx->conf->topic_events, p);
                pd__publish_drop(r, all);
                rd_kafka_topic_partition_list_destroy(all);
        }
        assert_int_equal(pd__publish_rebuild(r, errstr, sizeof(errstr)), 0);
        await_settled(r, 2);
        assert_int_equal(r->pub.rebuilds, 1);
        assert_int_equal(delivered(r, 2), 1); /* dropped from the outbox */
        assert_int_equal(delivered(r, 3), 1); /* the registry committed */
        if (!fx->mcluster) {
                assert_int_equal(
                    visible(fx, "read_committed", PD_REGISTRY_KEY, NULL), 1);
                /* Nothing of the fenced transaction is visible. */
                assert_int_equal(
                    visible(fx, "read_committed", "t2/fenced", NULL), 0);
                assert_int_equal(
                    visible(fx, "read_committed", "t1/before", NULL), 1);
                assert_true(committed(fx, 2) < 0); /* offset 9 never went */
        }
}

/* A member that owns no partition commits the registry alone, with no
 * offsets; when that commit is refused as fenced, the publisher hands the
 * producer to the main thread's rebuild like any other (it once freed the
 * missing offsets list and crashed the reactor). */
static void test_a_member_without_partitions_survives_a_fenced_commit(
    void **state) {
        fx_t *fx        = *state;
        pd_reactor_t *r = fx->r;
        char errstr[512];

        rd_kafka_mock_push_request_errors(fx->mcluster, API_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        add_rec(r, 1, PD_PART_ANY, PD_REGISTRY_KEY);
        await_fenced(r);
        assert_int_equal(r->pub.commits, 0);
        assert_int_equal(pd__publish_rebuild(r, errstr, sizeof(errstr)), 0);
        await_settled(r, 1);
        assert_int_equal(r->pub.rebuilds, 1);
        assert_int_equal(delivered(r, 1), 1);
}

/* Against the real broker: what a read_committed reader sees. */
static void test_broker_commit_carries_records_and_offsets(void **state) {
        SKIP_WITHOUT_BROKER(*state);
        test_a_commit_carries_records_and_offsets(state);
        assert_int_equal(committed(*state, 1), 5);
}

/* Against the real broker: a transaction aborted because a partition was
 * lost in it shows nothing of that partition to a read_committed reader,
 * and the records of the others exactly once, in the next transaction. */
static void test_broker_an_abort_shows_each_record_once(void **state) {
        fx_t *fx = *state;
        pd_reactor_t *r;
        rd_kafka_topic_partition_list_t *lost;

        SKIP_WITHOUT_BROKER(fx);
        r = fx->r;
        add_rec(r, 1, 0, "t0/warm");
        await_settled(r, 1); /* transactions are ready, the next one open */
        pthread_mutex_lock(&r->pub.lock);
        r->pub.hold = 1;
        assert_true(r->pub.txn_open);
        pthread_mutex_unlock(&r->pub.lock);
        add_rec(r, 2, 1, "t1/kept");
        add_rec(r, 3, 2, "t2/lost");
        lost = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(lost, fx->conf->topic_events, 2);
        pthread_mutex_lock(&r->pub.lock);
        assert_int_equal(r->pub.nprod, 2); /* both in the transaction */
        pthread_mutex_unlock(&r->pub.lock);
        pd__publish_drop(r, lost);
        rd_kafka_topic_partition_list_destroy(lost);
        assert_int_equal(r->pub.aborts, 1);
        pthread_mutex_lock(&r->pub.lock);
        r->pub.hold = 0;
        pthread_cond_broadcast(&r->pub.cond);
        pthread_mutex_unlock(&r->pub.lock);
        await_settled(r, 2);
        assert_int_equal(visible(fx, "read_committed", "t1/kept", NULL), 1);
        assert_int_equal(visible(fx, "read_committed", "t2/lost", NULL), 0);
        /* It was on the log, in the aborted transaction. */
        assert_true(visible(fx, "read_uncommitted", "t1/kept", NULL) >= 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_a_commit_carries_records_and_offsets, setup_mock,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_an_abortable_error_aborts_and_produces_again, setup_mock,
                teardown),
            cmocka_unit_test_setup_teardown(test_a_fenced_producer_is_rebuilt,
                                            setup_mock, teardown),
            cmocka_unit_test_setup_teardown(
                test_a_member_without_partitions_survives_a_fenced_commit,
                setup_mock, teardown),
            cmocka_unit_test_setup_teardown(
                test_broker_commit_carries_records_and_offsets, setup_broker,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_broker_an_abort_shows_each_record_once, setup_broker,
                teardown),
            cmocka_unit_test_setup_teardown(test_a_fenced_producer_is_rebuilt,
                                            setup_broker, teardown),
        };

        pd_log_level = PD_LOG_WARN;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
