/*
 * test_plan.c - which actions an event runs, and in which order, without a
 * store or a broker (consumer/plan.c): steps keep config order except that
 * a step comes after the steps it names in `after`; an event that names its
 * actions rejects unknown names first, once each; a deploy takes pending
 * `once` actions and every `always` action, a skip only pending `once`
 * actions, a reset only done ones; and a redelivered event skips what it
 * finished, but not a run interrupted nor a failure with retries left;
 * a dry run keeps what would start, in order, and says why of the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "consumer/reactor_int.h"

/* An action named name, once, no retries, running after the names in
 * after (a NULL-terminated list, or NULL). */
static void def_init(pd_action_def_t *def, const char *name,
                     const char *const *after) {
        memset(def, 0, sizeof(*def));
        def->name = strdup(name);
        for (; after && *after; after++)
                pd_strv_add(&def->after, *after);
}

static void def_clear(pd_action_def_t *def) {
        free(def->name);
        pd_strv_clear(&def->after);
}

/* The names of plan's steps, comma-separated, into buf. */
static const char *plan_names(const pd_plan_t *plan, char *buf, size_t size) {
        buf[0] = '\0';
        for (size_t i = 0; i < plan->cnt; i++) {
                if (i)
                        strncat(buf, ",", size - strlen(buf) - 1);
                strncat(buf, plan->steps[i].name, size - strlen(buf) - 1);
        }
        return buf;
}

/* Orders the steps of defs (in that order) and returns their names. */
static const char *order_of(pd_action_def_t *defs, size_t cnt, char *buf,
                            size_t size) {
        pd_step_t steps[8] = {{0}};
        pd_plan_t plan     = {.steps = steps, .cnt = cnt};

        for (size_t i = 0; i < cnt; i++) {
                steps[i].def  = &defs[i];
                steps[i].name = defs[i].name;
        }
        pd__plan_order(&plan);
        return plan_names(&plan, buf, size);
}

static void test_steps_without_after_keep_config_order(void **state) {
        pd_action_def_t defs[3];
        char buf[256];

        (void)state;
        def_init(&defs[0], "a", NULL);
        def_init(&defs[1], "b", NULL);
        def_init(&defs[2], "c", NULL);
        assert_string_equal(order_of(defs, 3, buf, sizeof(buf)), "a,b,c");
        for (int i = 0; i < 3; i++)
                def_clear(&defs[i]);
}

static void test_a_step_comes_after_what_it_names(void **state) {
        static const char *const after_c[] = {"c", NULL};
        pd_action_def_t defs[3];
        char buf[256];

        (void)state;
        def_init(&defs[0], "a", after_c);
        def_init(&defs[1], "b", NULL);
        def_init(&defs[2], "c", NULL);
        /* b is the first whose dependencies are placed, then c, then a. */
        assert_string_equal(order_of(defs, 3, buf, sizeof(buf)), "b,c,a");
        for (int i = 0; i < 3; i++)
                def_clear(&defs[i]);
}

static void test_a_chain_of_after_runs_backwards(void **state) {
        static const char *const after_b[] = {"b", NULL};
        static const char *const after_c[] = {"c", NULL};
        pd_action_def_t defs[3];
        char buf[256];

        (void)state;
        def_init(&defs[0], "a", after_b);
        def_init(&defs[1], "b", after_c);
        def_init(&defs[2], "c", NULL);
        assert_string_equal(order_of(defs, 3, buf, sizeof(buf)), "c,b,a");
        for (int i = 0; i < 3; i++)
                def_clear(&defs[i]);
}

static void test_after_an_action_outside_the_plan_does_not_wait(void **state) {
        static const char *const after_x[] = {"x", NULL};
        pd_action_def_t defs[2];
        char buf[256];

        (void)state;
        def_init(&defs[0], "a", after_x);
        def_init(&defs[1], "b", NULL);
        assert_string_equal(order_of(defs, 2, buf, sizeof(buf)), "a,b");
        for (int i = 0; i < 2; i++)
                def_clear(&defs[i]);
}

static void test_named_actions_reject_unknown_names_first_once_each(
    void **state) {
        pd_action_def_t defs[3];
        pd_config_t conf   = {0};
        pd_event_t *ev     = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        pd_step_t steps[8] = {{0}};
        pd_plan_t plan     = {.steps = steps};
        char buf[256];

        (void)state;
        def_init(&defs[0], "a", NULL);
        def_init(&defs[1], "b", NULL);
        def_init(&defs[2], "c", NULL);
        conf.actions    = defs;
        conf.action_cnt = 3;
        ev->selection   = PD_SEL_ONE;
        pd_strv_add(&ev->actions, "zzz");
        pd_strv_add(&ev->actions, "c");
        pd_strv_add(&ev->actions, "a");
        pd_strv_add(&ev->actions, "zzz");

        pd__plan_named(&conf, ev, &plan);
        /* The unknown name once, without an action; then config order. */
        assert_string_equal(plan_names(&plan, buf, sizeof(buf)), "zzz,a,c");
        assert_null(plan.steps[0].def);
        assert_ptr_equal(plan.steps[1].def, &defs[0]);
        assert_ptr_equal(plan.steps[2].def, &defs[2]);

        pd_event_destroy(ev);
        for (int i = 0; i < 3; i++)
                def_clear(&defs[i]);
}

static void test_which_actions_an_event_takes_by_state(void **state) {
        pd_action_def_t once = {0}, always = {0};
        pd_action_state_t pending = {0}, done = {0};

        (void)state;
        once.policy         = PD_POLICY_ONCE;
        always.policy       = PD_POLICY_ALWAYS;
        done.ever_succeeded = 1;

        /* A deploy: pending once actions, and always actions even done. */
        assert_true(pd__plan_takes(&once, PD_EVT_RELEASE_DEPLOYED, &pending));
        assert_false(pd__plan_takes(&once, PD_EVT_RELEASE_DEPLOYED, &done));
        assert_true(pd__plan_takes(&always, PD_EVT_RELEASE_DEPLOYED, &done));
        /* A skip: only pending once actions; an always one is never done. */
        assert_true(pd__plan_takes(&once, PD_EVT_SKIP_REQUESTED, &pending));
        assert_false(pd__plan_takes(&once, PD_EVT_SKIP_REQUESTED, &done));
        assert_false(pd__plan_takes(&always, PD_EVT_SKIP_REQUESTED, &pending));
        /* A reset: only what is done. */
        assert_true(pd__plan_takes(&once, PD_EVT_RESET_REQUESTED, &done));
        assert_false(pd__plan_takes(&once, PD_EVT_RESET_REQUESTED, &pending));
}

static void test_a_redelivered_event_skips_only_what_it_finished(void **state) {
        pd_action_def_t def = {0};

        (void)state;
        def.retries = 2; /* three attempts */

        assert_false(pd__plan_finished(&def, 0, PD_ST_SUCCEEDED, 0));
        assert_true(pd__plan_finished(&def, 1, PD_ST_SUCCEEDED, 1));
        assert_true(pd__plan_finished(&def, 1, PD_ST_SKIPPED, 1));
        /* An interrupted run runs again. */
        assert_false(pd__plan_finished(&def, 1, PD_ST_INTERRUPTED, 1));
        /* A failure with retries left: the promised retry runs now. */
        assert_false(pd__plan_finished(&def, 1, PD_ST_FAILED, 2));
        assert_false(pd__plan_finished(&def, 1, PD_ST_TIMED_OUT, 1));
        /* The last attempt's failure is final. */
        assert_true(pd__plan_finished(&def, 1, PD_ST_FAILED, 3));
        assert_true(pd__plan_finished(&def, 1, PD_ST_TIMED_OUT, 3));
}

static void test_a_dry_run_keeps_what_would_start_and_says_why_not(
    void **state) {
        static const char *const after_b[] = {"b", NULL};
        pd_action_def_t defs[3];
        pd_event_t *ev     = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        pd_job_t job       = {.ev = ev};
        pd_step_t steps[8] = {{0}};
        pd_plan_t plan     = {.job = &job, .steps = steps};
        char buf[256];

        (void)state;
        ev->dry_run = 1;
        def_init(&defs[0], "a", NULL);
        def_init(&defs[1], "b", NULL);
        def_init(&defs[2], "c", after_b);
        /* A redelivered dry run: b failed for good, so c, after it, would
         * be skipped; a would start; zzz is no action. */
        steps[0] = (pd_step_t){.name = "zzz"};
        steps[1] = (pd_step_t){.def = &defs[0], .name = "a"};
        steps[2] = (pd_step_t){.def      = &defs[1],
                               .name     = "b",
                               .finished = 1,
                               .status   = PD_ST_FAILED};
        steps[3] = (pd_step_t){.def = &defs[2], .name = "c"};
        plan.cnt = 4;

        pd__plan_dry(&plan);
        assert_string_equal(plan_names(&plan, buf, sizeof(buf)), "a");
        assert_int_equal(plan.skipped.cnt, 3);
        assert_string_equal(plan.skipped.v[0], "zzz");
        assert_string_equal(plan.skipped_why.v[0], "unknown action");
        assert_string_equal(plan.skipped.v[1], "b");
        assert_string_equal(plan.skipped_why.v[1],
                            "already finished by this event");
        assert_string_equal(plan.skipped.v[2], "c");
        assert_string_equal(plan.skipped_why.v[2], "dependency b FAILED");

        pd_strv_clear(&plan.skipped);
        pd_strv_clear(&plan.skipped_why);
        pd_event_destroy(ev);
        for (int i = 0; i < 3; i++)
                def_clear(&defs[i]);
}

static void test_parameters_are_refused_unless_declared_and_required_ones_given(
    void **state) {
        pd_action_def_t def;
        pd_event_t *ev = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        char why[512], big[PD_PARAM_VALUE_MAX + 2];

        (void)state;
        def_init(&def, "t.p", NULL);
        pd_strv_add(&def.params, "batch_size");
        pd_strv_add(&def.params, "since?");

        assert_true(pd__plan_params_refused(&def, ev, why, sizeof(why)));
        assert_string_equal(why,
                            "missing required parameter 'batch_size' "
                            "(deploy --one t.p --param "
                            "batch_size=VALUE)");
        pd_strv_add(&ev->params, "batch_size");
        pd_strv_add(&ev->params, "500");
        assert_false(pd__plan_params_refused(&def, ev, why, sizeof(why)));
        pd_strv_add(&ev->params, "since");
        pd_strv_add(&ev->params, "a b; c");
        assert_false(pd__plan_params_refused(&def, ev, why, sizeof(why)));
        assert_string_equal(pd__plan_param(ev, "since"), "a b; c");
        assert_null(pd__plan_param(ev, "nope"));

        pd_strv_add(&ev->params, "evil");
        pd_strv_add(&ev->params, "x");
        assert_true(pd__plan_params_refused(&def, ev, why, sizeof(why)));
        assert_string_equal(why,
                            "parameter 'evil' is not declared by action t.p");

        pd_strv_truncate(&ev->params, 4);
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        pd_strv_set(&ev->params, 3, big);
        assert_true(pd__plan_params_refused(&def, ev, why, sizeof(why)));
        assert_string_equal(why,
                            "parameter 'since': value longer than "
                            "4096 bytes");

        pd_event_destroy(ev);
        def_clear(&def);
        pd_strv_clear(&def.params);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_steps_without_after_keep_config_order),
            cmocka_unit_test(test_a_step_comes_after_what_it_names),
            cmocka_unit_test(test_a_chain_of_after_runs_backwards),
            cmocka_unit_test(
                test_after_an_action_outside_the_plan_does_not_wait),
            cmocka_unit_test(
                test_named_actions_reject_unknown_names_first_once_each),
            cmocka_unit_test(test_which_actions_an_event_takes_by_state),
            cmocka_unit_test(
                test_a_dry_run_keeps_what_would_start_and_says_why_not),
            cmocka_unit_test(
                test_parameters_are_refused_unless_declared_and_required_ones_given),
            cmocka_unit_test(
                test_a_redelivered_event_skips_only_what_it_finished),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
