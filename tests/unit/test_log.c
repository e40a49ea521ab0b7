/*
 * test_log.c - the one log sink: text lines exactly as they always were,
 * and JSON lines that every parser accepts whatever the message holds
 * (quotes, newlines, control characters, bytes that are not UTF-8), with
 * the fields that are known and none that are not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

/* `{"time":"2026-12-04T19:40:00.123Z"` is 34 bytes; what follows is the
 * same on every run. */
#define TIME_END 34

static int setup(void **state) {
        (void)state;
        pd_log_set_program("postdeploy-reactor");
        pd_log_format = PD_LOG_FORMAT_TEXT;
        return 0;
}

/* Asserts s starts with an RFC 3339 UTC time to the millisecond. */
static void assert_rfc3339_ms(const char *s) {
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";

        for (size_t i = 0; shape[i]; i++) {
                if (shape[i] == 'd')
                        assert_true(isdigit((unsigned char)s[i]));
                else
                        assert_int_equal(s[i], shape[i]);
        }
}

/* Formats a JSON line and returns what follows its time. */
static const char *json_line(char *buf, size_t size, int lvl,
                             const pd_log_fields_t *f, const char *msg) {
        size_t n;

        pd_log_format = PD_LOG_FORMAT_JSON;
        n             = pd_log_format_line(buf, size, lvl, f, msg);
        assert_int_equal(n, strlen(buf));
        assert_memory_equal(buf, "{\"time\":\"", 9);
        assert_rfc3339_ms(buf + 9);
        assert_int_equal(buf[TIME_END - 1], '"');
        assert_string_equal(buf + n - 2, "}\n");
        return buf + TIME_END;
}

static void test_text_lines_are_as_they_always_were(void **state) {
        pd_log_fields_t f = {.tenant  = "acme",
                             .action  = "migrate",
                             .attempt = 2,
                             .status  = "FAILED"};
        char plain[256], with_fields[256];

        (void)state;
        pd_log_format = PD_LOG_FORMAT_TEXT;
        pd_log_format_line(plain, sizeof(plain), PD_LOG_WARN, NULL,
                           "acme migrate attempt 2: FAILED");
        assert_rfc3339_ms(plain);
        assert_string_equal(plain + 24,
                            " WARN  [postdeploy-reactor] acme "
                            "migrate attempt 2: FAILED\n");
        /* Fields add nothing to a text line: its message says it. */
        pd_log_format_line(with_fields, sizeof(with_fields), PD_LOG_WARN, &f,
                           "acme migrate attempt 2: FAILED");
        assert_string_equal(with_fields + 24, plain + 24);
}

static void test_json_line_has_time_level_program_message(void **state) {
        char buf[512];

        (void)state;
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_INFO, NULL, "stopped"),
            ",\"level\":\"info\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"stopped\"}\n");
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_ERROR, NULL, "x"),
            ",\"level\":\"error\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"x\"}\n");
}

static void test_json_escapes_quotes_newlines_and_controls(void **state) {
        char buf[512];

        (void)state;
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_WARN, NULL,
                      "say \"hi\"\\ \n\r\t\x01\x1f\x7f end"),
            ",\"level\":\"warn\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"say \\\"hi\\\"\\\\ \\n\\r\\t\\u0001\\u001f\x7f "
            "end\"}\n");
}

static void test_json_keeps_utf8_and_replaces_what_is_not(void **state) {
        char buf[512];

        (void)state;
        /* é, €, an emoji; then a lone continuation byte, an overlong '/',
         * a UTF-16 surrogate, a code point past U+10FFFF, a cut sequence. */
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_INFO, NULL,
                      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xc0\xaf|"
                      "\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82"),
            ",\"level\":\"info\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\\ufffd|"
            "\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
            "\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"}\n");
}

static void test_json_has_known_fields_and_leaves_out_the_rest(void **state) {
        pd_log_fields_t all  = {.tenant       = "acme",
                                .action       = "migrate",
                                .event_id     = "e-1",
                                .attempt      = 2,
                                .status       = "FAILED",
                                .reason       = "exit code 3",
                                .has_duration = 1,
                                .duration_ms  = 0,
                                .run_id       = 17};
        pd_log_fields_t some = {.tenant = "acme", .event_id = "e-1"};
        char buf[512];

        (void)state;
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_WARN, &all, "m"),
            ",\"level\":\"warn\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"m\",\"tenant\":\"acme\",\"action\":\"migrate\","
            "\"event_id\":\"e-1\",\"attempt\":2,\"status\":\"FAILED\","
            "\"duration_ms\":0,\"run_id\":17,\"reason\":\"exit code 3\"}\n");
        assert_string_equal(
            json_line(buf, sizeof(buf), PD_LOG_INFO, &some, "m"),
            ",\"level\":\"info\",\"program\":\"postdeploy-reactor\","
            "\"message\":\"m\",\"tenant\":\"acme\",\"event_id\":\"e-1\"}\n");
}

static void test_json_fields_are_escaped_too(void **state) {
        pd_log_fields_t f = {.tenant = "a\"b", .reason = "line1\nline2"};
        char buf[512];

        (void)state;
        assert_non_null(
            strstr(json_line(buf, sizeof(buf), PD_LOG_INFO, &f, "m"),
                   ",\"tenant\":\"a\\\"b\",\"reason\":\"line1\\nline2\"}\n"));
}

/* A message too long for the line is cut at a whole escape, and the line
 * is still one object; at every buffer size, from the smallest up. */
static void test_json_cut_short_is_still_one_object(void **state) {
        pd_log_fields_t f = {.tenant = "acme", .attempt = 1};
        char msg[300], buf[400];

        (void)state;
        for (size_t i = 0; i < sizeof(msg) - 1; i++)
                msg[i] = "\"\n\x01\xe2\x82\xac"[i % 6];
        msg[sizeof(msg) - 1] = '\0';
        for (size_t size = 120; size <= sizeof(buf); size++) {
                const char *m;
                size_t n, bs = 0;

                json_line(buf, size, PD_LOG_INFO, &f, msg);
                m = strstr(buf, "\"message\":\"") + 11;
                n = strlen(buf);
                assert_true(n < size);
                /* The message's closing quote is not escaped: an even
                 * number of backslashes before it. */
                const char *end = strstr(m, "\"}\n") ? strstr(m, "\"}\n")
                                                     : strstr(m, "\",\"");
                assert_non_null(end);
                for (const char *p = end - 1; p >= m && *p == '\\'; p--)
                        bs++;
                assert_int_equal(bs % 2, 0);
                /* No \u escape nor UTF-8 sequence cut in two. */
                assert_null(strstr(m, "\\u00\""));
                assert_false((unsigned char)end[-1] == 0xe2 ||
                             (unsigned char)end[-1] == 0x82);
        }
}

static void test_format_takes_text_or_json(void **state) {
        pd_config_t *conf = pd_config_new();
        char errstr[256]  = "";

        (void)state;
        assert_int_equal(pd_log_format_parse("text"), PD_LOG_FORMAT_TEXT);
        assert_int_equal(pd_log_format_parse("json"), PD_LOG_FORMAT_JSON);
        assert_int_equal(pd_log_format_parse("yaml"), -1);
        assert_string_equal(pd_log_format_name(PD_LOG_FORMAT_JSON), "json");
        assert_int_equal(conf->log_format, PD_LOG_FORMAT_TEXT);
        assert_int_equal(pd_config_set(conf, "reactor", "log_format", "json",
                                       errstr, sizeof(errstr)),
                         0);
        assert_int_equal(conf->log_format, PD_LOG_FORMAT_JSON);
        assert_int_equal(pd_config_set(conf, "reactor", "log_format", "xml",
                                       errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "expected text or json"));
        assert_int_equal(conf->log_format, PD_LOG_FORMAT_JSON);
        pd_config_destroy(conf);
}

/* stderr into a temporary file while a test runs, and back. */
typedef struct captured_s {
        FILE *file;
        int saved_fd;
} captured_t;

static captured_t capture_start(void) {
        captured_t c = {tmpfile(), dup(2)};

        assert_non_null(c.file);
        assert_true(c.saved_fd >= 0);
        assert_int_equal(dup2(fileno(c.file), 2), 2);
        return c;
}

/* What was written to stderr so far, as one string in buf. */
static const char *capture_read(captured_t *c, char *buf, size_t size) {
        ssize_t n = pread(fileno(c->file), buf, size - 1, 0);

        assert_true(n >= 0);
        buf[n] = '\0';
        return buf;
}

static void capture_end(captured_t *c) {
        assert_int_equal(dup2(c->saved_fd, 2), 2);
        close(c->saved_fd);
        fclose(c->file);
}

/* The reactor's attempt lines wait for the committer's flush (one write per
 * batch); nothing else waits, and nothing overtakes a line that waits. */
static void test_deferred_lines_wait_for_the_flush_and_keep_their_order(
    void **state) {
        pd_log_fields_t deferred = {.tenant = "acme", .deferrable = 1};
        captured_t c             = capture_start();
        char buf[4096];

        (void)state;
        pd_log_defer(1);
        pd_logf(PD_LOG_INFO, &deferred, "one");
        pd_logf(PD_LOG_INFO, &deferred, "two");
        assert_string_equal(capture_read(&c, buf, sizeof(buf)), "");
        pd_log_flush();
        capture_read(&c, buf, sizeof(buf));
        assert_non_null(strstr(buf, "] one\n"));
        assert_true(strstr(buf, "] one\n") < strstr(buf, "] two\n"));

        /* A line that does not wait writes those that do first. */
        pd_logf(PD_LOG_INFO, &deferred, "three");
        pd_log(PD_LOG_INFO, "four");
        capture_read(&c, buf, sizeof(buf));
        assert_non_null(strstr(buf, "] three\n"));
        assert_true(strstr(buf, "] three\n") < strstr(buf, "] four\n"));

        /* Nor does a warning, deferrable or not. */
        pd_logf(PD_LOG_WARN, &deferred, "five");
        assert_non_null(strstr(capture_read(&c, buf, sizeof(buf)), "] five\n"));

        /* Off again: what waited is written, and nothing waits any more. */
        pd_logf(PD_LOG_INFO, &deferred, "six");
        pd_log_defer(0);
        assert_non_null(strstr(capture_read(&c, buf, sizeof(buf)), "] six\n"));
        pd_logf(PD_LOG_INFO, &deferred, "seven");
        assert_non_null(
            strstr(capture_read(&c, buf, sizeof(buf)), "] seven\n"));
        capture_end(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_text_lines_are_as_they_always_were,
                                   setup),
            cmocka_unit_test_setup(
                test_json_line_has_time_level_program_message, setup),
            cmocka_unit_test_setup(
                test_json_escapes_quotes_newlines_and_controls, setup),
            cmocka_unit_test_setup(
                test_json_keeps_utf8_and_replaces_what_is_not, setup),
            cmocka_unit_test_setup(
                test_json_has_known_fields_and_leaves_out_the_rest, setup),
            cmocka_unit_test_setup(test_json_fields_are_escaped_too, setup),
            cmocka_unit_test_setup(test_json_cut_short_is_still_one_object,
                                   setup),
            cmocka_unit_test_setup(test_format_takes_text_or_json, setup),
            cmocka_unit_test_setup(
                test_deferred_lines_wait_for_the_flush_and_keep_their_order,
                setup),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
