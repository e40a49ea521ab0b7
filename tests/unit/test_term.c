/*
 * test_term.c - what the CLI shows of text that came from an event or an
 * action's output: every control character visible as \xNN, so none can
 * drive the terminal, and every printable character as it is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "producer/term.h"

/* What pd_term_escape writes for the len bytes at s. */
static char *escaped(const char *s, size_t len) {
        char *buf   = NULL;
        size_t size = 0;
        FILE *fp    = open_memstream(&buf, &size);

        assert_non_null(fp);
        assert_int_equal(pd_term_escape(s, len, fp), 0);
        assert_int_equal(fclose(fp), 0);
        return buf;
}

/* Asserts that the C string in is shown as want. */
static void assert_shown(const char *in, const char *want) {
        char *got = escaped(in, strlen(in));

        assert_string_equal(got, want);
        free(got);
}

static void test_the_screen_clearing_title_setting_fake_is_inert(void **state) {
        (void)state;
        assert_shown("\033[2J\033]0;title\007FAKE: all actions succeeded",
                     "\\x1b[2J\\x1b]0;title\\x07FAKE: all actions succeeded");
}

static void test_every_c0_control_and_del_is_escaped(void **state) {
        char in[2] = {0, 0}, want[8];

        (void)state;
        for (int c = 1; c < 0x20; c++) {
                in[0] = (char)c;
                snprintf(want, sizeof(want), "\\x%02x", c);
                assert_shown(in, want);
        }
        assert_shown("\177", "\\x7f");
}

static void test_a_field_stays_one_line(void **state) {
        (void)state;
        /* A release "4.2\n\e[31m" must not break the table. */
        assert_shown("4.2\n\033[31m", "4.2\\x0a\\x1b[31m");
        assert_shown("a\tb\r\n", "a\\x09b\\x0d\\x0a");
}

static void test_a_nul_inside_the_length_is_shown_too(void **state) {
        char *got = escaped("a\0b", 3);

        (void)state;
        assert_string_equal(got, "a\\x00b");
        free(got);
}

static void test_c1_controls_are_escaped_as_both_bytes(void **state) {
        (void)state;
        /* U+009B is CSI and U+009D is OSC in terminals that take C1. */
        assert_shown("\302\2332J", "\\xc2\\x9b2J");
        assert_shown("\302\200\302\237", "\\xc2\\x80\\xc2\\x9f");
        /* U+00A0, the first character past them, is text. */
        assert_shown("\302\240", "\302\240");
}

static void test_valid_utf8_text_stays_as_it_is(void **state) {
        (void)state;
        assert_shown("plain ASCII ~ with \\ and \"quotes\"",
                     "plain ASCII ~ with \\ and \"quotes\"");
        assert_shown("Zürich – 東京 🚀", "Zürich – 東京 🚀");
        assert_shown("", "");
}

static void test_invalid_utf8_bytes_are_escaped_one_by_one(void **state) {
        (void)state;
        assert_shown("a\377b", "a\\xffb");               /* never valid */
        assert_shown("\300\257", "\\xc0\\xaf");          /* overlong '/' */
        assert_shown("\355\240\200", "\\xed\\xa0\\x80"); /* a surrogate */
        assert_shown("\364\220\200\200", "\\xf4\\x90\\x80\\x80"); /* > 10FFFF */
        assert_shown("\342\202", "\\xe2\\x82"); /* cut short */
        assert_shown("\200x", "\\x80x");        /* lone continuation */
        assert_shown("\302", "\\xc2");          /* lone lead at the end */
}

static void test_only_len_bytes_are_read(void **state) {
        char *got = escaped("abc\033def", 3);

        (void)state;
        assert_string_equal(got, "abc");
        free(got);
        got = escaped(NULL, 0);
        assert_string_equal(got, "");
        free(got);
}

static void test_the_dup_gives_the_same_text(void **state) {
        char *got = pd_term_escape_dup("x\033y");

        (void)state;
        assert_string_equal(got, "x\\x1by");
        free(got);
        assert_null(pd_term_escape_dup(NULL));
}

static void test_a_failed_write_is_reported(void **state) {
        FILE *fp = fopen("/dev/full", "w");

        (void)state;
        if (!fp)
                skip();
        setvbuf(fp, NULL, _IONBF, 0);
        assert_int_equal(pd_term_escape("text", 4, fp), -1);
        assert_int_equal(pd_term_escape("\033", 1, fp), -1);
        fclose(fp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_the_screen_clearing_title_setting_fake_is_inert),
            cmocka_unit_test(test_every_c0_control_and_del_is_escaped),
            cmocka_unit_test(test_a_field_stays_one_line),
            cmocka_unit_test(test_a_nul_inside_the_length_is_shown_too),
            cmocka_unit_test(test_c1_controls_are_escaped_as_both_bytes),
            cmocka_unit_test(test_valid_utf8_text_stays_as_it_is),
            cmocka_unit_test(test_invalid_utf8_bytes_are_escaped_one_by_one),
            cmocka_unit_test(test_only_len_bytes_are_read),
            cmocka_unit_test(test_the_dup_gives_the_same_text),
            cmocka_unit_test(test_a_failed_write_is_reported),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
