/*
 * test_argv.c - splitting a `run` line with the shell's quoting rules and
 * nothing else, and substituting {placeholders} without ever making or
 * breaking a word.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/argv.h"

/* Splits line and asserts the words are exactly want[0..cnt). */
static void assert_split(const char *line, const char *const *want,
                         size_t cnt) {
        pd_strv_t out    = {0};
        char errstr[256] = "";

        assert_int_equal(pd_argv_split(line, &out, errstr, sizeof(errstr)), 0);
        assert_string_equal(errstr, "");
        assert_int_equal(out.cnt, cnt);
        for (size_t i = 0; i < cnt; i++)
                assert_string_equal(out.v[i], want[i]);
        assert_null(out.v[cnt]);
        pd_strv_clear(&out);
}

/* Asserts that splitting line fails with exactly msg and adds nothing. */
static void assert_split_fails(const char *line, const char *msg) {
        pd_strv_t out    = {0};
        char errstr[256] = "";

        assert_int_equal(pd_argv_split(line, &out, errstr, sizeof(errstr)), -1);
        assert_string_equal(errstr, msg);
        assert_int_equal(out.cnt, 0);
        assert_null(out.v);
}

#define SPLIT(line, ...)                                                       \
        do {                                                                   \
                static const char *const want_[] = {__VA_ARGS__};              \
                assert_split(line, want_, sizeof(want_) / sizeof(want_[0]));   \
        } while (0)

/* ---- splitting ---- */

static void test_blanks_separate_words(void **state) {
        (void)state;
        SPLIT("echo hello", "echo", "hello");
        SPLIT("  echo \t hello\t", "echo", "hello");
        SPLIT("a\nb", "a", "b");
        SPLIT("one", "one");
}

static void test_single_quotes_keep_everything_literally(void **state) {
        (void)state;
        SPLIT("echo 'a  b'", "echo", "a  b");
        SPLIT("echo 'a\\b' '\"x\"' '$HOME'", "echo", "a\\b", "\"x\"", "$HOME");
        SPLIT("echo 'tab\there'", "echo", "tab\there");
}

static void test_double_quotes_let_backslash_escape_only_specials(
    void **state) {
        (void)state;
        SPLIT("echo \"a  b\"", "echo", "a  b");
        SPLIT("echo \"q\\\"q\" \"b\\\\s\" \"d\\$x\" \"t\\`x\"", "echo", "q\"q",
              "b\\s", "d$x", "t`x");
        SPLIT("echo \"keep\\n\\t\\a\"", "echo", "keep\\n\\t\\a");
        SPLIT("echo \"it's\"", "echo", "it's");
        SPLIT("echo \"join\\\nme\"", "echo", "joinme");
}

static void test_backslash_outside_quotes_escapes_the_next_character(
    void **state) {
        (void)state;
        SPLIT("echo a\\ b", "echo", "a b");
        SPLIT("echo \\'x\\' \\\"y\\\"", "echo", "'x'", "\"y\"");
        SPLIT("echo \\\\", "echo", "\\");
        SPLIT("echo \\n", "echo", "n");
}

static void test_backslash_newline_joins_lines(void **state) {
        (void)state;
        SPLIT("echo a\\\nb", "echo", "ab");
        SPLIT("echo a \\\n b", "echo", "a", "b");
}

static void test_empty_quoted_word_is_a_word(void **state) {
        (void)state;
        SPLIT("prog '' \"\" x", "prog", "", "", "x");
        SPLIT("''", "");
}

static void test_adjacent_quoted_parts_make_one_word(void **state) {
        (void)state;
        SPLIT("echo 'a'\"b\"c\\ d", "echo", "abc d");
        SPLIT("--name='big value'", "--name=big value");
}

static void test_shell_syntax_stays_literal(void **state) {
        (void)state;
        SPLIT("echo $HOME ${PATH} `id` $(id) * ~ ; | > < & && #x", "echo",
              "$HOME", "${PATH}", "`id`", "$(id)", "*", "~", ";", "|", ">", "<",
              "&", "&&", "#x");
        SPLIT("a;b|c>d", "a;b|c>d");
}

static void test_unterminated_single_quote_is_an_error(void **state) {
        (void)state;
        assert_split_fails("echo 'oops", "unterminated single quote");
        assert_split_fails("echo 'a\\'b'", "unterminated single quote");
}

static void test_unterminated_double_quote_is_an_error(void **state) {
        (void)state;
        assert_split_fails("echo \"oops", "unterminated double quote");
        assert_split_fails("echo \"a\\\"", "unterminated double quote");
        assert_split_fails("echo \"a\\", "unterminated double quote");
}

static void test_trailing_backslash_is_an_error(void **state) {
        (void)state;
        assert_split_fails("echo \\", "trailing backslash");
}

static void test_line_without_words_is_an_empty_command(void **state) {
        (void)state;
        assert_split_fails("", "empty command");
        assert_split_fails("   \t  ", "empty command");
        assert_split_fails("\\\n", "empty command");
}

static void test_split_appends_to_existing_words(void **state) {
        pd_strv_t out = {0};
        char errstr[128];

        (void)state;
        pd_strv_add(&out, "first");
        assert_int_equal(pd_argv_split("a b", &out, errstr, sizeof(errstr)), 0);
        assert_int_equal(out.cnt, 3);
        assert_string_equal(out.v[0], "first");
        assert_string_equal(out.v[2], "b");
        pd_strv_clear(&out);
}

static void test_failed_split_leaves_existing_words_alone(void **state) {
        pd_strv_t out = {0};
        char errstr[128];

        (void)state;
        pd_strv_add(&out, "first");
        assert_int_equal(pd_argv_split("a b 'c", &out, errstr, sizeof(errstr)),
                         -1);
        assert_int_equal(out.cnt, 1);
        assert_string_equal(out.v[0], "first");
        assert_null(out.v[1]);
        pd_strv_clear(&out);
}

/* ---- placeholders ---- */

/* Splits line, expands it with vars and asserts the result. */
static void assert_expand(const char *line, const pd_subst_t *vars,
                          size_t vars_cnt, const char *const *want,
                          size_t cnt) {
        pd_strv_t words = {0}, out = {0};
        char errstr[128];

        assert_int_equal(pd_argv_split(line, &words, errstr, sizeof(errstr)),
                         0);
        pd_argv_expand(&words, vars, vars_cnt, &out);
        assert_int_equal(out.cnt, cnt);
        for (size_t i = 0; i < cnt; i++)
                assert_string_equal(out.v[i], want[i]);
        assert_null(out.v[cnt]);
        pd_strv_clear(&words);
        pd_strv_clear(&out);
}

#define EXPAND(line, vars, ...)                                                \
        do {                                                                   \
                static const char *const want_[] = {__VA_ARGS__};              \
                assert_expand(line, vars, sizeof(vars) / sizeof(vars[0]),      \
                              want_, sizeof(want_) / sizeof(want_[0]));        \
        } while (0)

static const pd_subst_t deploy_vars[] = {
    {"tenant", "acme"},
    {"release", "4.2.0"},
    {"action", "core.fix"},
};

static void test_placeholders_are_replaced_inside_words(void **state) {
        (void)state;
        EXPAND("fix --tenant={tenant} {release} /logs/{tenant}-{action}.log",
               deploy_vars, "fix", "--tenant=acme", "4.2.0",
               "/logs/acme-core.fix.log");
        EXPAND("'{tenant}' \"{tenant}\"", deploy_vars, "acme", "acme");
}

static void test_value_with_blanks_or_quotes_stays_one_word(void **state) {
        static const pd_subst_t vars[] = {
            {"tenant", "a b 'c' \"d\" ; rm -rf / $HOME"},
        };

        (void)state;
        EXPAND("run --t {tenant} x{tenant}y", vars, "run", "--t",
               "a b 'c' \"d\" ; rm -rf / $HOME",
               "xa b 'c' \"d\" ; rm -rf / $HOMEy");
}

static void test_value_with_braces_is_not_expanded_again(void **state) {
        static const pd_subst_t vars[] = {
            {"tenant", "{release}"},
            {"release", "1.0"},
        };

        (void)state;
        EXPAND("{tenant}:{release}", vars, "{release}:1.0");
}

static void test_unknown_placeholders_are_kept(void **state) {
        (void)state;
        EXPAND("echo {nope} {tenant {} { } {{tenant}} {TENANT} {tenant",
               deploy_vars, "echo", "{nope}", "{tenant", "{}", "{", "}",
               "{acme}", "{TENANT}", "{tenant");
}

static void test_expand_with_no_vars_copies_words(void **state) {
        pd_strv_t words = {0}, out = {0};
        char errstr[128];

        (void)state;
        assert_int_equal(
            pd_argv_split("a {tenant}", &words, errstr, sizeof(errstr)), 0);
        pd_argv_expand(&words, NULL, 0, &out);
        assert_int_equal(out.cnt, 2);
        assert_string_equal(out.v[1], "{tenant}");
        pd_strv_clear(&words);
        pd_strv_clear(&out);
}

static void test_expand_appends_to_existing_words(void **state) {
        pd_strv_t words = {0}, out = {0};
        char errstr[128];

        (void)state;
        pd_strv_add(&out, "env");
        assert_int_equal(
            pd_argv_split("t={tenant}", &words, errstr, sizeof(errstr)), 0);
        pd_argv_expand(&words, deploy_vars, 3, &out);
        assert_int_equal(out.cnt, 2);
        assert_string_equal(out.v[0], "env");
        assert_string_equal(out.v[1], "t=acme");
        assert_null(out.v[2]);
        pd_strv_clear(&words);
        pd_strv_clear(&out);
}

static void test_empty_value_leaves_an_empty_word(void **state) {
        static const pd_subst_t vars[] = {{"release", ""}};

        (void)state;
        EXPAND("x {release} y", vars, "x", "", "y");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_blanks_separate_words),
            cmocka_unit_test(test_single_quotes_keep_everything_literally),
            cmocka_unit_test(
                test_double_quotes_let_backslash_escape_only_specials),
            cmocka_unit_test(
                test_backslash_outside_quotes_escapes_the_next_character),
            cmocka_unit_test(test_backslash_newline_joins_lines),
            cmocka_unit_test(test_empty_quoted_word_is_a_word),
            cmocka_unit_test(test_adjacent_quoted_parts_make_one_word),
            cmocka_unit_test(test_shell_syntax_stays_literal),
            cmocka_unit_test(test_unterminated_single_quote_is_an_error),
            cmocka_unit_test(test_unterminated_double_quote_is_an_error),
            cmocka_unit_test(test_trailing_backslash_is_an_error),
            cmocka_unit_test(test_line_without_words_is_an_empty_command),
            cmocka_unit_test(test_split_appends_to_existing_words),
            cmocka_unit_test(test_failed_split_leaves_existing_words_alone),
            cmocka_unit_test(test_placeholders_are_replaced_inside_words),
            cmocka_unit_test(test_value_with_blanks_or_quotes_stays_one_word),
            cmocka_unit_test(test_value_with_braces_is_not_expanded_again),
            cmocka_unit_test(test_unknown_placeholders_are_kept),
            cmocka_unit_test(test_expand_with_no_vars_copies_words),
            cmocka_unit_test(test_expand_appends_to_existing_words),
            cmocka_unit_test(test_empty_value_leaves_an_empty_word),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
