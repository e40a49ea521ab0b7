/*
 * test_metrics.c - the reactor's metrics registry: what /metrics says after
 * the reactor counted something (cumulative histogram buckets, lower-case
 * statuses, escaped label values), what librdkafka's statistics turn into
 * (lag summed over assigned partitions, rebalances across clients), and
 * what /livez and /readyz answer, reason by reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/metrics.h"

/* The value of the series `series` (name and labels exactly as rendered),
 * or NULL when it is not there; the text is freed by the caller. */
static const char *value_of(const char *text, const char *series) {
        static char value[64];
        size_t n = strlen(series);

        for (const char *p = text; p && *p;
             p = strchr(p, '\n'), p = p ? p + 1 : p)
                if (!strncmp(p, series, n) && p[n] == ' ') {
                        sscanf(p + n + 1, "%63s", value);
                        return value;
                }
        return NULL;
}

static void assert_series(const char *series, const char *want) {
        char *text      = pd_metrics_render();
        const char *got = value_of(text, series);

        if (!want)
                assert_null(got);
        else {
                assert_non_null(got);
                assert_string_equal(got, want);
        }
        free(text);
}

static int setup(void **state) {
        (void)state;
        pd_metrics_reset();
        return 0;
}

static void test_durations_fill_cumulative_buckets(void **state) {
        (void)state;
        pd_metrics_action_done("core.reindex", "SUCCEEDED", 700);
        pd_metrics_action_done("core.reindex", "FAILED", 20000);

        assert_series(
            "postdeploy_action_duration_seconds_bucket"
            "{action=\"core.reindex\",le=\"0.5\"}",
            "0");
        assert_series(
            "postdeploy_action_duration_seconds_bucket"
            "{action=\"core.reindex\",le=\"1\"}",
            "1");
        assert_series(
            "postdeploy_action_duration_seconds_bucket"
            "{action=\"core.reindex\",le=\"10\"}",
            "1");
        assert_series(
            "postdeploy_action_duration_seconds_bucket"
            "{action=\"core.reindex\",le=\"30\"}",
            "2");
        assert_series(
            "postdeploy_action_duration_seconds_bucket"
            "{action=\"core.reindex\",le=\"+Inf\"}",
            "2");
        assert_series(
            "postdeploy_action_duration_seconds_count"
            "{action=\"core.reindex\"}",
            "2");
        assert_series(
            "postdeploy_action_duration_seconds_sum"
            "{action=\"core.reindex\"}",
            "20.699999999999999");
}

static void test_statuses_are_counted_apart_in_lower_case(void **state) {
        (void)state;
        pd_metrics_action_done("a", "SUCCEEDED", 1);
        pd_metrics_action_done("a", "SUCCEEDED", 1);
        pd_metrics_action_done("a", "TIMED_OUT", 1);

        assert_series(
            "postdeploy_actions_total{action=\"a\",status=\"succeeded\"}", "2");
        assert_series(
            "postdeploy_actions_total{action=\"a\",status=\"timed_out\"}", "1");
        assert_series(
            "postdeploy_actions_total{action=\"a\",status=\"SUCCEEDED\"}",
            NULL);
}

/* Rows are found through an index that grows: thousands of actions keep
 * one row per (action, status), counted apart, none made twice. */
static void test_thousands_of_actions_keep_a_row_each(void **state) {
        char name[32], series[96];
        size_t lines = 0;
        char *text;

        (void)state;
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < 3000; i++) {
                        snprintf(name, sizeof(name), "bulk.a%d", i);
                        pd_metrics_action_done(
                            name, round < 2 ? "SUCCEEDED" : "FAILED", 1);
                }
        for (int i = 0; i < 3000; i += 1499) {
                snprintf(series, sizeof(series),
                         "postdeploy_actions_total{action=\"bulk.a%d\","
                         "status=\"succeeded\"}",
                         i);
                assert_series(series, "2");
                snprintf(series, sizeof(series),
                         "postdeploy_actions_total{action=\"bulk.a%d\","
                         "status=\"failed\"}",
                         i);
                assert_series(series, "1");
                snprintf(series, sizeof(series),
                         "postdeploy_action_duration_seconds_count"
                         "{action=\"bulk.a%d\"}",
                         i);
                assert_series(series, "3");
        }
        text = pd_metrics_render();
        for (const char *p = text;
             (p = strstr(p, "\npostdeploy_actions_total{")); p++)
                lines++;
        free(text);
        assert_int_equal(lines, 2 * 3000);
}

/* A reset forgets the index with the rows: an action seen before it
 * starts again from nothing, its old rows not found through stale
 * places. */
static void test_a_reset_forgets_every_row_of_an_action(void **state) {
        (void)state;
        pd_metrics_action_done("again", "SUCCEEDED", 1);
        pd_metrics_action_done("again", "SUCCEEDED", 1);
        pd_metrics_reset();
        pd_metrics_action_done("again", "FAILED", 1);

        assert_series(
            "postdeploy_actions_total{action=\"again\",status=\"failed\"}",
            "1");
        assert_series(
            "postdeploy_actions_total{action=\"again\",status=\"succeeded\"}",
            NULL);
        assert_series(
            "postdeploy_action_duration_seconds_count{action=\"again\"}", "1");
}

static void test_label_values_are_escaped(void **state) {
        (void)state;
        pd_metrics_action_done("a\"b\\c\nd", "FAILED", 1);

        assert_series(
            "postdeploy_actions_total{action=\"a\\\"b\\\\c\\nd\","
            "status=\"failed\"}",
            "1");
}

static void test_dead_letters_count_their_class_and_the_event(void **state) {
        (void)state;
        pd_metrics_dead_letter(PD_METRICS_DLQ_SIGNATURE);
        pd_metrics_event(PD_METRICS_PROCESSED);

        assert_series("postdeploy_dead_letters_total{reason=\"signature\"}",
                      "1");
        assert_series("postdeploy_dead_letters_total{reason=\"invalid_event\"}",
                      "0");
        assert_series("postdeploy_events_total{outcome=\"dead_lettered\"}",
                      "1");
        assert_series("postdeploy_events_total{outcome=\"processed\"}", "1");
}

static void stats(const char *json) {
        char *copy = strdup(json);
        pd_metrics_stats_cb(NULL, copy, strlen(copy), NULL);
        free(copy);
}

#define STATS(state, assigned, rebalances, lag0, lag1)                         \
        "{\"brokers\":{\"b:9092/1\":{\"state\":\"" state                       \
        "\",\"nodeid\":1}},"                                                   \
        "\"topics\":{\"ev\":{\"partitions\":{"                                 \
        "\"0\":{\"consumer_lag\":" lag0 "},\"1\":{\"consumer_lag\":" lag1      \
        "},"                                                                   \
        "\"-1\":{\"consumer_lag\":99}}}},"                                     \
        "\"cgrp\":{\"state\":\"up\",\"assignment_size\":" assigned             \
        ",\"rebalance_cnt\":" rebalances "}}"

static void test_statistics_sum_lag_and_count_rebalances(void **state) {
        (void)state;
        assert_series("postdeploy_consumer_lag_records", NULL); /* unknown */
        stats(STATS("UP", "2", "2", "3", "4"));
        assert_series("postdeploy_consumer_lag_records", "7");
        assert_series("postdeploy_consumer_rebalances_total", "2");

        /* Not assigned (-1) adds nothing; the count is the client's. */
        stats(STATS("UP", "2", "3", "-1", "5"));
        assert_series("postdeploy_consumer_lag_records", "5");
        assert_series("postdeploy_consumer_rebalances_total", "3");

        /* A reactor made again: its new client counts from 0. */
        pd_metrics_kafka_reset();
        stats(STATS("UP", "2", "1", "0", "0"));
        assert_series("postdeploy_consumer_rebalances_total", "4");
}

static void assert_ready(const char *want) {
        char reason[256] = "";
        int err          = pd_metrics_ready(reason, sizeof(reason));

        if (!want) {
                assert_int_equal(err, 0);
        } else {
                assert_int_equal(err, -1);
                assert_string_equal(reason, want);
        }
}

static void test_ready_needs_every_condition(void **state) {
        (void)state;
        assert_ready("state not restored yet");
        pd_metrics_cond_set(PD_METRICS_RESTORED, 1);
        assert_ready("state store not writable");
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);
        assert_ready("broker unreachable");
        pd_metrics_cond_set(PD_METRICS_BROKER_OK, 1);
        assert_ready("not joined the consumer group yet");
        stats(STATS("UP", "0", "1", "0", "0"));
        assert_ready("not joined the consumer group (no partitions assigned)");
        stats(STATS("UP", "3", "1", "0", "0"));
        assert_ready(NULL);

        /* Each fault on its own makes it unready again. */
        stats(STATS("DOWN", "3", "1", "0", "0"));
        assert_ready("broker unreachable");
        stats(STATS("UP", "3", "1", "0", "0"));
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 0);
        assert_ready("state store not writable");
        pd_metrics_cond_set(PD_METRICS_STORE_OK, 1);
        pd_metrics_kafka_reset(); /* the reactor is made again */
        assert_ready("state not restored yet");
}

static void test_live_while_the_poll_loop_turns(void **state) {
        char reason[256];
        int64_t now;

        (void)state;
        assert_int_equal(pd_metrics_live(0, 5000, reason, sizeof(reason)), -1);
        assert_string_equal(reason, "the poll loop has not started");
        pd_metrics_tick();
        now = (int64_t)(pd_metrics_clock() * 1000);
        assert_int_equal(pd_metrics_live(now, 5000, reason, sizeof(reason)), 0);
        assert_int_equal(
            pd_metrics_live(now + 6000, 5000, reason, sizeof(reason)), -1);
        assert_non_null(strstr(reason, "last turned"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_durations_fill_cumulative_buckets,
                                   setup),
            cmocka_unit_test_setup(
                test_statuses_are_counted_apart_in_lower_case, setup),
            cmocka_unit_test_setup(test_thousands_of_actions_keep_a_row_each,
                                   setup),
            cmocka_unit_test_setup(test_a_reset_forgets_every_row_of_an_action,
                                   setup),
            cmocka_unit_test_setup(test_label_values_are_escaped, setup),
            cmocka_unit_test_setup(
                test_dead_letters_count_their_class_and_the_event, setup),
            cmocka_unit_test_setup(test_statistics_sum_lag_and_count_rebalances,
                                   setup),
            cmocka_unit_test_setup(test_ready_needs_every_condition, setup),
            cmocka_unit_test_setup(test_live_while_the_poll_loop_turns, setup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
