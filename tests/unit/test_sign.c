/*
 * test_sign.c - signed events: the exact bytes signed, that a signed event
 * verifies, that every change to what is signed makes it fail with a reason,
 * and which key files are refused.
 *
 * The known answers were computed outside this code, twice: with the Python
 * snippet of docs/SIGNING.md (hmac + hashlib), and with
 *     printf 'ce_specversion=1.0\nce_id=...\n...key=acme\n{"release"...}' |
 *         openssl dgst -sha256 -hmac postdeploy-test-key-0123456789ab
 * over the signed string written out in full next to each vector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/sign.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"

#define ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

#define SECRET     "postdeploy-test-key-0123456789ab"
#define SECRET_LEN (sizeof(SECRET) - 1)
#define KEY        "acme"
#define VALUE                                                                  \
        "{\"release\":\"4.2.0\",\"selection\":\"AUTO\",\"requested_by\":\"ci\"}"

static const unsigned char *secret = (const unsigned char *)SECRET;

typedef struct hdr_s {
        const char *name;
        const char *value; /* NULL: a Kafka header with a null value */
} hdr_t;

/* The event of the first known answer, headers in the order a producer
 * might write them (not the signed order, which must not matter). */
static const hdr_t full_hdrs[] = {
    {"ce_specversion", "1.0"},
    {"ce_id", "6f9b2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"},
    {"ce_source", "postdeploy-cli/ci-7"},
    {"ce_type", "release.deployed"},
    {"content-type", "application/json"},
    {"ce_time", "2026-11-25T14:00:00.123Z"},
    {"ce_tenant", "acme"},
};

/* Signed string:
 *   ce_specversion=1.0\n
 *   ce_id=6f9b2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4\n
 *   ce_source=postdeploy-cli/ci-7\n
 *   ce_type=release.deployed\n
 *   ce_time=2026-11-25T14:00:00.123Z\n
 *   ce_tenant=acme\n
 *   content-type=application/json\n
 *   key=acme\n
 *   {"release":"4.2.0","selection":"AUTO","requested_by":"ci"}        */
#define FULL_SIG                                                               \
        "hmac-sha256="                                                         \
        "dae77b1b7afbcad3523f08b5bb73a3fe408850600eab7705332b8e6fde19b257"

/* Builds headers from cnt entries of h, leaving out the one named `skip`
 * (NULL: none), then adds the extra one if given. */
static rd_kafka_headers_t *hdrs_build(const hdr_t *h, size_t cnt,
                                      const char *skip, const hdr_t *extra) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(cnt + 2);
        size_t i;

        for (i = 0; i < cnt; i++)
                if (!skip || strcmp(h[i].name, skip))
                        assert_int_equal(
                            rd_kafka_header_add(hdrs, h[i].name, -1, h[i].value,
                                                -1),
                            0);
        if (extra)
                assert_int_equal(rd_kafka_header_add(hdrs, extra->name, -1,
                                                     extra->value, -1),
                                 0);
        return hdrs;
}

static rd_kafka_headers_t *full_build(void) {
        return hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), NULL, NULL);
}

/* The one ce_signature value of hdrs (asserts there is exactly one). */
static const char *sig_of(const rd_kafka_headers_t *hdrs, char *buf,
                          size_t size) {
        const void *val;
        size_t len;

        assert_int_equal(
            rd_kafka_header_get(hdrs, 0, PD_SIGN_HEADER, &val, &len), 0);
        assert_int_not_equal(
            rd_kafka_header_get(hdrs, 1, PD_SIGN_HEADER, &val, &len), 0);
        assert_int_equal(
            rd_kafka_header_get(hdrs, 0, PD_SIGN_HEADER, &val, &len), 0);
        assert_true(len < size);
        memcpy(buf, val, len);
        buf[len] = '\0';
        return buf;
}

/* Asserts that verifying (hdrs, key, value) with SECRET fails with msg. */
static void assert_refused(const rd_kafka_headers_t *hdrs, const char *key,
                           const char *value, const char *msg) {
        char errstr[256] = "";

        assert_int_equal(pd_sign_verify(hdrs, key, key ? strlen(key) : 0, value,
                                        strlen(value), secret, SECRET_LEN,
                                        errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr, msg);
}

static void assert_verifies(const rd_kafka_headers_t *hdrs, const char *key,
                            const char *value) {
        char errstr[256] = "";

        assert_int_equal(pd_sign_verify(hdrs, key, key ? strlen(key) : 0, value,
                                        strlen(value), secret, SECRET_LEN,
                                        errstr, sizeof(errstr)),
                         0);
        assert_string_equal(errstr, "");
}

/* Verifies `hdrs` carrying the genuine signature of the full event. */
static void assert_full_sig_refused(rd_kafka_headers_t *hdrs, const char *key,
                                    const char *value, const char *msg) {
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        assert_refused(hdrs, key, value, msg);
        rd_kafka_headers_destroy(hdrs);
}

/* ---- what is signed ---- */

static void test_signature_matches_the_known_answer(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "", sig[128];

        (void)state;
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            0);
        assert_string_equal(sig_of(hdrs, sig, sizeof(sig)), FULL_SIG);
        rd_kafka_headers_destroy(hdrs);
}

static void test_absent_and_empty_are_signed_apart(void **state) {
        /* Signed string:
         *   ce_specversion=1.0\n ce_id=id-1\n ce_source=s\n
         *   ce_type=release.deployed\n ce_time=\n ce_tenant\n
         *   content-type=application/json\n key\n
         * (an empty ce_time, no ce_tenant, no record key, an empty value) */
        static const hdr_t h[] = {
            {"ce_specversion", "1.0"}, {"ce_id", "id-1"},
            {"ce_source", "s"},        {"ce_type", "release.deployed"},
            {"ce_time", ""},           {"content-type", "application/json"},
        };
        static const hdr_t empty_tenant = {"ce_tenant", ""};
        rd_kafka_headers_t *hdrs = hdrs_build(h, ARRAY_CNT(h), NULL, NULL);
        char errstr[256]         = "", sig[128];

        (void)state;
        assert_int_equal(pd_sign_headers(hdrs, NULL, 0, "", 0, secret,
                                         SECRET_LEN, errstr, sizeof(errstr)),
                         0);
        assert_string_equal(
            sig_of(hdrs, sig, sizeof(sig)),
            "hmac-sha256="
            "ecca29cc1ccb51e256bdb21a6294df245aa71955b2d6d2bac1e825cb5939"
            "eed1");
        /* The same signature is worth nothing with an empty ce_tenant nor
         * with an empty record key. */
        rd_kafka_headers_destroy(hdrs);
        hdrs = hdrs_build(h, ARRAY_CNT(h), NULL, &empty_tenant);
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, sig, -1);
        assert_refused(hdrs, NULL, "", "bad signature");
        rd_kafka_headers_destroy(hdrs);
        hdrs = hdrs_build(h, ARRAY_CNT(h), NULL, NULL);
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, sig, -1);
        assert_verifies(hdrs, NULL, "");
        assert_refused(hdrs, "", "", "bad signature");
        rd_kafka_headers_destroy(hdrs);
}

static void test_signed_event_verifies(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "";

        (void)state;
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            0);
        assert_verifies(hdrs, KEY, VALUE);
        rd_kafka_headers_destroy(hdrs);
}

static void test_headers_of_pd_event_headers_sign_and_verify(void **state) {
        pd_event_t *ev = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
        rd_kafka_headers_t *hdrs;
        char errstr[256] = "";

        (void)state;
        ev->tenant = strdup("acme");
        pd_event_stamp(ev, "postdeploy-cli/test");
        hdrs = pd_event_headers(ev);
        assert_int_equal(pd_sign_headers(hdrs, ev->tenant, strlen(ev->tenant),
                                         "\xc3\x01 avro", 7, secret, SECRET_LEN,
                                         errstr, sizeof(errstr)),
                         0);
        assert_int_equal(
            pd_sign_verify(hdrs, "acme", 4, "\xc3\x01 avro", 7, secret,
                           SECRET_LEN, errstr, sizeof(errstr)),
            0);
        rd_kafka_headers_destroy(hdrs);
        pd_event_destroy(ev);
}

static void test_signing_again_replaces_the_signature(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "", sig[128];

        (void)state;
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, "hmac-sha256=stale", -1);
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            0);
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            0);
        /* sig_of asserts there is exactly one. */
        assert_string_equal(sig_of(hdrs, sig, sizeof(sig)), FULL_SIG);
        assert_verifies(hdrs, KEY, VALUE);
        rd_kafka_headers_destroy(hdrs);
}

static void test_headers_outside_the_list_are_not_signed(void **state) {
        static const hdr_t trace = {"traceparent", "00-abc-def-01"};
        rd_kafka_headers_t *hdrs;

        (void)state;
        /* Documented: the reactor reads no other header, so a proxy that
         * adds tracing headers does not break signatures. */
        hdrs = hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), NULL, &trace);
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        assert_verifies(hdrs, KEY, VALUE);
        rd_kafka_headers_destroy(hdrs);
}

/* ---- tampering ---- */

static void test_changed_value_byte_fails(void **state) {
        char value[] = VALUE;
        size_t i;

        (void)state;
        for (i = 0; i < strlen(VALUE); i += 7) {
                value[i] ^= 0x01;
                assert_full_sig_refused(full_build(), KEY, value,
                                        "bad signature");
                value[i] ^= 0x01;
        }
        assert_full_sig_refused(full_build(), KEY, VALUE "x", "bad signature");
        assert_full_sig_refused(full_build(), KEY, "", "bad signature");
}

static void test_each_changed_signed_header_fails(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < ARRAY_CNT(full_hdrs); i++) {
                hdr_t changed = {full_hdrs[i].name, "changed"};

                assert_full_sig_refused(
                    hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs),
                               full_hdrs[i].name, &changed),
                    KEY, VALUE, "bad signature");
                /* An empty value is not the original one either. */
                changed.value = "";
                assert_full_sig_refused(
                    hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs),
                               full_hdrs[i].name, &changed),
                    KEY, VALUE, "bad signature");
        }
}

static void test_each_removed_signed_header_fails(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < ARRAY_CNT(full_hdrs); i++)
                assert_full_sig_refused(
                    hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs),
                               full_hdrs[i].name, NULL),
                    KEY, VALUE, "bad signature");
}

static void test_added_signed_header_fails(void **state) {
        /* A signature over an event without ce_tenant (the reactor's
         * default tenant) must not carry over to one with ce_tenant. */
        static const hdr_t tenant = {"ce_tenant", "acme"};
        rd_kafka_headers_t *hdrs =
            hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), "ce_tenant", NULL);
        char errstr[256] = "", sig[128];

        (void)state;
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            0);
        sig_of(hdrs, sig, sizeof(sig));
        rd_kafka_headers_destroy(hdrs);

        hdrs =
            hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), "ce_tenant", &tenant);
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, sig, -1);
        assert_refused(hdrs, KEY, VALUE, "bad signature");
        rd_kafka_headers_destroy(hdrs);
}

static void test_duplicated_signed_header_is_refused(void **state) {
        char msg[64];
        size_t i;

        (void)state;
        /* Even a copy with the same value: a verifier and a consumer could
         * read different copies, so there must be one. */
        for (i = 0; i < ARRAY_CNT(full_hdrs); i++) {
                snprintf(msg, sizeof(msg), "duplicate header %s",
                         full_hdrs[i].name);
                assert_full_sig_refused(
                    hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), NULL,
                               &full_hdrs[i]),
                    KEY, VALUE, msg);
        }
}

static void test_signing_a_duplicated_header_is_refused(void **state) {
        static const hdr_t other_id = {"ce_id", "other"};
        rd_kafka_headers_t *hdrs =
            hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), NULL, &other_id);
        const void *val;
        size_t size;
        char errstr[256] = "";

        (void)state;
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            -1);
        assert_string_equal(errstr, "duplicate header ce_id");
        assert_int_not_equal(
            rd_kafka_header_get(hdrs, 0, PD_SIGN_HEADER, &val, &size), 0);
        rd_kafka_headers_destroy(hdrs);
}

static void test_changed_record_key_fails(void **state) {
        (void)state;
        assert_full_sig_refused(full_build(), "globex", VALUE, "bad signature");
        assert_full_sig_refused(full_build(), "acmf", VALUE, "bad signature");
        assert_full_sig_refused(full_build(), NULL, VALUE, "bad signature");
        assert_full_sig_refused(full_build(), "", VALUE, "bad signature");
}

static void test_bytes_cannot_move_between_key_and_value(void **state) {
        static const hdr_t h[] = {
            {"ce_specversion", "1.0"},
            {"ce_id", "id-1"},
            {"ce_source", "s"},
            {"ce_type", "release.deployed"},
        };
        rd_kafka_headers_t *hdrs = hdrs_build(h, ARRAY_CNT(h), NULL, NULL);
        char errstr[256]         = "";

        (void)state;
        /* key "a\nb" + value "c" would sign the same bytes as key "a" +
         * value "b\nc", so a newline in the key is refused on both sides;
         * the same holds for header values. */
        assert_int_equal(pd_sign_headers(hdrs, "a\nb", 3, "c", 1, secret,
                                         SECRET_LEN, errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr, "record key contains a newline");
        assert_int_equal(pd_sign_headers(hdrs, "a", 1, "b\nc", 3, secret,
                                         SECRET_LEN, errstr, sizeof(errstr)),
                         0);
        assert_refused(hdrs, "a\nb", "c", "record key contains a newline");
        rd_kafka_headers_destroy(hdrs);
}

static void test_newline_in_a_signed_header_is_refused(void **state) {
        /* ce_id "x\nce_source=y" could stand for another ce_source. */
        static const hdr_t id = {"ce_id", "x\nce_source=y"};
        rd_kafka_headers_t *hdrs =
            hdrs_build(full_hdrs, ARRAY_CNT(full_hdrs), "ce_id", &id);
        char errstr[256] = "";

        (void)state;
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE),
                            secret, SECRET_LEN, errstr, sizeof(errstr)),
            -1);
        assert_string_equal(errstr, "header ce_id contains a newline");
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        assert_refused(hdrs, KEY, VALUE, "header ce_id contains a newline");
        rd_kafka_headers_destroy(hdrs);
}

static void test_wrong_secret_fails(void **state) {
        static const unsigned char other[] = "postdeploy-test-key-0123456789ac";
        rd_kafka_headers_t *hdrs           = full_build();
        char errstr[256]                   = "";

        (void)state;
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        assert_int_equal(
            pd_sign_verify(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE), other,
                           sizeof(other) - 1, errstr, sizeof(errstr)),
            -1);
        assert_string_equal(errstr, "bad signature");
        rd_kafka_headers_destroy(hdrs);
}

/* ---- the ce_signature header itself ---- */

static void assert_sig_refused(const char *sig, const char *msg) {
        rd_kafka_headers_t *hdrs = full_build();

        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, sig, -1);
        assert_refused(hdrs, KEY, VALUE, msg);
        rd_kafka_headers_destroy(hdrs);
}

#define MALFORMED                                                              \
        "malformed signature (64 hex digits expected after 'hmac-sha256=')"

static void test_truncated_signature_is_malformed(void **state) {
        char sig[] = FULL_SIG;

        (void)state;
        sig[sizeof(sig) - 2] = '\0'; /* one digit short */
        assert_sig_refused(sig, MALFORMED);
        sig[sizeof(sig) - 3] = '\0'; /* one byte short */
        assert_sig_refused(sig, MALFORMED);
        assert_sig_refused("hmac-sha256=", MALFORMED);
        assert_sig_refused("hmac-sha256", MALFORMED);
        assert_sig_refused(FULL_SIG "0", MALFORMED);
        assert_sig_refused(FULL_SIG "00", MALFORMED);
}

static void test_non_hex_signature_is_malformed(void **state) {
        char sig[] = FULL_SIG;

        (void)state;
        sig[sizeof("hmac-sha256=") + 3] = 'g';
        assert_sig_refused(sig, MALFORMED);
        /* base64 of the right bytes is still not the format. */
        assert_sig_refused(
            "hmac-sha256=2ud7G3r7ytNSPwi1u3Oj/kCIUGAOq3cFMyuOb94Zslc=",
            MALFORMED);
}

static void test_wrong_scheme_is_unsupported(void **state) {
        (void)state;
        assert_sig_refused("hmac-sha1=0123456789abcdef0123456789abcdef01234567",
                           "unsupported signature scheme 'hmac-sha1'");
        /* The scheme name is exact; only the hex digits ignore case. */
        assert_sig_refused(
            "HMAC-SHA256=dae77b1b7afbcad3523f08b5bb73a3fe408850"
            "600eab7705332b8e6fde19b257",
            "unsupported signature scheme 'HMAC-SHA256'");
        assert_sig_refused(
            "dae77b1b7afbcad3523f08b5bb73a3fe408850600eab7705"
            "332b8e6fde19b257",
            "unsupported signature scheme "
            "'dae77b1b7afbcad3523f08b5bb73a3fe'");
        assert_sig_refused("", "unsupported signature scheme ''");
        assert_sig_refused("ed\x01\n25519=x",
                           "unsupported signature scheme 'ed??25519'");
}

static void test_uppercase_hex_is_accepted(void **state) {
        rd_kafka_headers_t *hdrs = full_build();

        (void)state;
        /* Decided: accepted. The case of a hex digit carries nothing, the
         * header is not itself signed, and some libraries print upper
         * case; we always write lower case. */
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1,
                            "hmac-sha256=DAE77B1B7AFBCAD3523F08B5BB73A3FE4088"
                            "50600EAB7705332B8E6FDE19B257",
                            -1);
        assert_verifies(hdrs, KEY, VALUE);
        rd_kafka_headers_destroy(hdrs);
}

static void test_unsigned_event_is_refused(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "";

        (void)state;
        assert_refused(hdrs, KEY, VALUE,
                       "unsigned event (no ce_signature header)");
        rd_kafka_headers_destroy(hdrs);
        /* A record with no headers at all. */
        assert_int_equal(
            pd_sign_verify(NULL, KEY, strlen(KEY), VALUE, strlen(VALUE), secret,
                           SECRET_LEN, errstr, sizeof(errstr)),
            -1);
        assert_string_equal(errstr, "unsigned event (no ce_signature header)");
}

static void test_two_signatures_are_refused(void **state) {
        rd_kafka_headers_t *hdrs = full_build();

        (void)state;
        /* Even if one is right: which one a verifier reads is not ours to
         * guess. */
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, FULL_SIG, -1);
        assert_refused(hdrs, KEY, VALUE, "duplicate header ce_signature");
        rd_kafka_headers_destroy(hdrs);
}

/* ---- key files ---- */

static char tmpdir[256];

static int setup_tmpdir(void **state) {
        (void)state;
        pd_test_tmpdir(tmpdir, sizeof(tmpdir), "test_sign", 0);
        return 0;
}

static int teardown_tmpdir(void **state) {
        (void)state;
        pd_test_rmtree(tmpdir);
        return 0;
}

/* Writes len bytes of data to tmpdir/name with the given mode (set with
 * fchmod so that the umask does not interfere). */
static const char *key_file(const char *name, const void *data, size_t len,
                            mode_t mode, char *path, size_t size) {
        int fd;

        snprintf(path, size, "%s/%s", tmpdir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd != -1);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
        return path;
}

/* Asserts that loading the file fails with "signing key PATH" + rest. */
static void assert_key_refused(const char *path, const char *rest) {
        unsigned char *key = (unsigned char *)"sentinel";
        size_t len         = 99;
        char errstr[512]   = "", want[512];

        snprintf(want, sizeof(want), "signing key %s %s", path, rest);
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), -1);
        assert_string_equal(errstr, want);
        assert_null(key);
        assert_int_equal(len, 0);
}

static void test_key_file_0600_is_loaded_without_its_newline(void **state) {
        static const char text[] =
            "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OWFi";
        char path[512], line[sizeof(text) + 2];
        unsigned char *key = NULL;
        size_t len         = 0;
        char errstr[512]   = "";

        (void)state;
        /* Used as text, not base64-decoded; "\n" and "\r\n" both go. */
        snprintf(line, sizeof(line), "%s\n", text);
        key_file("k", line, strlen(line), 0600, path, sizeof(path));
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), 0);
        assert_int_equal(len, strlen(text));
        assert_memory_equal(key, text, len);
        pd_sign_key_free(key, len);

        snprintf(line, sizeof(line), "%s\r\n", text);
        key_file("k", line, strlen(line), 0400, path, sizeof(path));
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), 0);
        assert_int_equal(len, strlen(text));
        assert_memory_equal(key, text, len);
        pd_sign_key_free(key, len);
        assert_int_equal(unlink(path), 0);
}

static void test_key_file_bytes_are_used_as_they_are(void **state) {
        static const unsigned char raw[] = {0x00, 0xff, 0x0a, 0x20, 0x01, 0x02,
                                            0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                            0x09, 0x0b, 0x0c, 0x0e, 0x0d, 0x0a};
        char path[512], errstr[512] = "";
        unsigned char *key = NULL;
        size_t len         = 0;

        (void)state;
        /* Only the trailing CR/LF go; NULs and inner newlines stay. */
        key_file("raw", raw, sizeof(raw), 0600, path, sizeof(path));
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), 0);
        assert_int_equal(len, sizeof(raw) - 2);
        assert_memory_equal(key, raw, len);
        pd_sign_key_free(key, len);
        assert_int_equal(unlink(path), 0);
}

static void test_key_file_readable_by_others_is_refused(void **state) {
        static const mode_t modes[] = {0644, 0640, 0604, 0660, 0602, 0610};
        char path[512];
        size_t i;

        (void)state;
        for (i = 0; i < ARRAY_CNT(modes); i++) {
                key_file("k", SECRET "\n", SECRET_LEN + 1, modes[i], path,
                         sizeof(path));
                assert_key_refused(path, "is readable by others (chmod 600)");
        }
        assert_int_equal(unlink(path), 0);
}

static void test_empty_key_file_is_refused(void **state) {
        char path[512];

        (void)state;
        key_file("k", "", 0, 0600, path, sizeof(path));
        assert_key_refused(path, "is empty");
        key_file("k", "\n\r\n", 3, 0600, path, sizeof(path));
        assert_key_refused(path, "is empty");
        assert_int_equal(unlink(path), 0);
}

static void test_short_key_is_refused(void **state) {
        char path[512];

        (void)state;
        key_file("k", "123456789012345\n", 16, 0600, path, sizeof(path));
        assert_key_refused(path, "is shorter than 16 bytes");
        assert_int_equal(unlink(path), 0);
}

static void test_key_file_over_4_kib_is_refused(void **state) {
        char path[512], *big = malloc(PD_SIGN_KEY_MAX + 1);
        unsigned char *key = NULL;
        size_t len         = 0;
        char errstr[512]   = "";

        (void)state;
        assert_non_null(big);
        memset(big, 'k', PD_SIGN_KEY_MAX + 1);
        key_file("k", big, PD_SIGN_KEY_MAX + 1, 0600, path, sizeof(path));
        assert_key_refused(path, "is larger than 4096 bytes");
        /* Exactly 4 KiB is fine. */
        key_file("k", big, PD_SIGN_KEY_MAX, 0600, path, sizeof(path));
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), 0);
        assert_int_equal(len, PD_SIGN_KEY_MAX);
        pd_sign_key_free(key, len);
        assert_int_equal(unlink(path), 0);
        free(big);
}

static void test_missing_key_file_is_refused(void **state) {
        unsigned char *key = NULL;
        size_t len         = 0;
        char path[512], errstr[512] = "", want[600];

        (void)state;
        snprintf(path, sizeof(path), "%s/missing", tmpdir);
        snprintf(want, sizeof(want),
                 "cannot open signing key %s: No such file or directory", path);
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), -1);
        assert_string_equal(errstr, want);
        assert_null(key);
}

static void test_key_that_is_a_directory_is_refused(void **state) {
        (void)state;
        assert_key_refused(tmpdir, "is not a regular file");
}

static void test_loaded_key_signs_the_known_answer(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char path[512], errstr[512] = "", sig[128];
        unsigned char *key = NULL;
        size_t len         = 0;

        (void)state;
        key_file("k", SECRET "\n", SECRET_LEN + 1, 0600, path, sizeof(path));
        assert_int_equal(
            pd_sign_key_load(path, &key, &len, errstr, sizeof(errstr)), 0);
        assert_int_equal(
            pd_sign_headers(hdrs, KEY, strlen(KEY), VALUE, strlen(VALUE), key,
                            len, errstr, sizeof(errstr)),
            0);
        assert_string_equal(sig_of(hdrs, sig, sizeof(sig)), FULL_SIG);
        pd_sign_key_free(key, len);
        pd_sign_key_free(NULL, 0);
        rd_kafka_headers_destroy(hdrs);
        assert_int_equal(unlink(path), 0);
}

/*
 * Freshness: ce_time of a signed event against max_event_age.
 */

/* 2026-11-25T14:00:00.123Z, the ce_time of full_hdrs, in ms since the
 * epoch (computed with Python's datetime, not with the code under test). */
#define FULL_TIME_MS INT64_C(1795615200123)
#define HOUR_MS      INT64_C(3600000)
#define DAY_MS       (24 * HOUR_MS)

/* pd_sign_check_age of the headers {ce_time: time} (NULL: no ce_time). */
static int age_check(const char *time, int64_t now_ms, int64_t max_age_ms,
                     char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        int ret;

        if (time)
                assert_int_equal(
                    rd_kafka_header_add(hdrs, "ce_time", -1, time, -1), 0);
        ret = pd_sign_check_age(hdrs, now_ms, max_age_ms, errstr, errstr_size);
        rd_kafka_headers_destroy(hdrs);
        return ret;
}

static void test_event_within_max_age_is_fresh(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "";

        (void)state;
        assert_int_equal(pd_sign_check_age(hdrs, FULL_TIME_MS + HOUR_MS, DAY_MS,
                                           errstr, sizeof(errstr)),
                         0);
        /* Exactly max_event_age old is still in. */
        assert_int_equal(pd_sign_check_age(hdrs, FULL_TIME_MS + DAY_MS, DAY_MS,
                                           errstr, sizeof(errstr)),
                         0);
        rd_kafka_headers_destroy(hdrs);
}

static void test_event_older_than_max_age_is_refused(void **state) {
        rd_kafka_headers_t *hdrs = full_build();
        char errstr[256]         = "";

        (void)state;
        assert_int_equal(pd_sign_check_age(hdrs, FULL_TIME_MS + DAY_MS + 1,
                                           DAY_MS, errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr,
                            "event too old: ce_time "
                            "2026-11-25T14:00:00.123Z is 86400 s "
                            "old, over max_event_age (86400 s)");
        assert_int_equal(pd_sign_check_age(hdrs, FULL_TIME_MS + 2 * DAY_MS,
                                           DAY_MS, errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr,
                            "event too old: ce_time "
                            "2026-11-25T14:00:00.123Z is 172800 s "
                            "old, over max_event_age (86400 s)");
        rd_kafka_headers_destroy(hdrs);
}

static void test_event_more_than_5_minutes_ahead_is_refused(void **state) {
        char errstr[256] = "";

        (void)state;
        assert_int_equal(age_check("2026-11-25T14:00:00.123Z",
                                   FULL_TIME_MS - PD_SIGN_MAX_SKEW_MS, DAY_MS,
                                   errstr, sizeof(errstr)),
                         0);
        assert_int_equal(age_check("2026-11-25T14:00:00.123Z",
                                   FULL_TIME_MS - PD_SIGN_MAX_SKEW_MS - 1,
                                   DAY_MS, errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr,
                            "ce_time 2026-11-25T14:00:00.123Z is "
                            "300 s in the future (over 300 s of "
                            "clock skew)");
}

static void test_age_check_reads_offsets_and_fractions(void **state) {
        static const char *const same[] = {
            "2026-11-25T14:00:00.123Z",       "2026-11-25t14:00:00.123z",
            "2026-11-25T16:00:00.123+02:00",  "2026-11-25T09:30:00.123-04:30",
            "2026-11-25T14:00:00.123999999Z",
        };
        char errstr[256] = "";

        (void)state;
        /* now is 1 ms past max_age after FULL_TIME_MS: each spelling of that
         * instant is refused, and 1 ms later it is in. */
        for (size_t i = 0; i < ARRAY_CNT(same); i++) {
                assert_int_equal(age_check(same[i], FULL_TIME_MS + 1001, 1000,
                                           errstr, sizeof(errstr)),
                                 -1);
                assert_non_null(strstr(errstr, "event too old"));
                assert_int_equal(age_check(same[i], FULL_TIME_MS + 1000, 1000,
                                           errstr, sizeof(errstr)),
                                 0);
        }
        /* No fraction: .000 (1 ms old is in, 2 ms is out); a leap day;
         * before 1970. */
        assert_int_equal(age_check("2026-11-25T14:00:00Z", FULL_TIME_MS - 122,
                                   1, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(age_check("2026-11-25T14:00:00Z", FULL_TIME_MS - 121,
                                   1, errstr, sizeof(errstr)),
                         -1);
        assert_int_equal(
            age_check("2024-02-29T23:59:59.999Z", INT64_C(1709251199999), 1,
                      errstr, sizeof(errstr)),
            0);
        assert_int_equal(age_check("1969-12-31T23:00:00Z", -HOUR_MS, 1, errstr,
                                   sizeof(errstr)),
                         0);
}

static void test_unreadable_ce_time_is_refused(void **state) {
        static const char *const bad[] = {
            "",
            "yesterday",
            "1795615200123",
            "2026-11-25T14:00:00",   /* no offset */
            "2026-11-25 14:00:00Z",  /* space, not T */
            "2026-11-25T14:00:00.Z", /* a dot without digits */
            "2026-11-25T14:00:00Z ", /* anything after */
            "2026-11-25T24:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z", /* not a leap year */
            "2026-04-31T00:00:00Z",
            "2026-11-25T14:00:00+2:00",
            "26-11-25T14:00:00Z",
        };
        char errstr[256] = "", want[256];

        (void)state;
        for (size_t i = 0; i < ARRAY_CNT(bad); i++) {
                assert_int_equal(age_check(bad[i], FULL_TIME_MS, DAY_MS, errstr,
                                           sizeof(errstr)),
                                 -1);
                snprintf(want, sizeof(want),
                         "unreadable ce_time '%s' (RFC 3339 expected)", bad[i]);
                assert_string_equal(errstr, want);
        }
}

static void test_missing_ce_time_is_refused_when_age_is_checked(void **state) {
        char errstr[256] = "";

        (void)state;
        assert_int_equal(
            age_check(NULL, FULL_TIME_MS, DAY_MS, errstr, sizeof(errstr)), -1);
        assert_string_equal(errstr,
                            "no ce_time header (max_event_age needs one)");
        assert_int_equal(pd_sign_check_age(NULL, FULL_TIME_MS, DAY_MS, errstr,
                                           sizeof(errstr)),
                         -1);
}

static void test_max_age_0_checks_nothing(void **state) {
        char errstr[256] = "";

        (void)state;
        assert_int_equal(
            age_check(NULL, FULL_TIME_MS, 0, errstr, sizeof(errstr)), 0);
        assert_int_equal(age_check("1970-01-01T00:00:00Z", FULL_TIME_MS, 0,
                                   errstr, sizeof(errstr)),
                         0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_signature_matches_the_known_answer),
            cmocka_unit_test(test_absent_and_empty_are_signed_apart),
            cmocka_unit_test(test_signed_event_verifies),
            cmocka_unit_test(test_headers_of_pd_event_headers_sign_and_verify),
            cmocka_unit_test(test_signing_again_replaces_the_signature),
            cmocka_unit_test(test_headers_outside_the_list_are_not_signed),
            cmocka_unit_test(test_changed_value_byte_fails),
            cmocka_unit_test(test_each_changed_signed_header_fails),
            cmocka_unit_test(test_each_removed_signed_header_fails),
            cmocka_unit_test(test_added_signed_header_fails),
            cmocka_unit_test(test_duplicated_signed_header_is_refused),
            cmocka_unit_test(test_signing_a_duplicated_header_is_refused),
            cmocka_unit_test(test_changed_record_key_fails),
            cmocka_unit_test(test_bytes_cannot_move_between_key_and_value),
            cmocka_unit_test(test_newline_in_a_signed_header_is_refused),
            cmocka_unit_test(test_wrong_secret_fails),
            cmocka_unit_test(test_truncated_signature_is_malformed),
            cmocka_unit_test(test_non_hex_signature_is_malformed),
            cmocka_unit_test(test_wrong_scheme_is_unsupported),
            cmocka_unit_test(test_uppercase_hex_is_accepted),
            cmocka_unit_test(test_unsigned_event_is_refused),
            cmocka_unit_test(test_two_signatures_are_refused),
            cmocka_unit_test(test_key_file_0600_is_loaded_without_its_newline),
            cmocka_unit_test(test_key_file_bytes_are_used_as_they_are),
            cmocka_unit_test(test_key_file_readable_by_others_is_refused),
            cmocka_unit_test(test_empty_key_file_is_refused),
            cmocka_unit_test(test_short_key_is_refused),
            cmocka_unit_test(test_key_file_over_4_kib_is_refused),
            cmocka_unit_test(test_missing_key_file_is_refused),
            cmocka_unit_test(test_key_that_is_a_directory_is_refused),
            cmocka_unit_test(test_loaded_key_signs_the_known_answer),
            cmocka_unit_test(test_event_within_max_age_is_fresh),
            cmocka_unit_test(test_event_older_than_max_age_is_refused),
            cmocka_unit_test(test_event_more_than_5_minutes_ahead_is_refused),
            cmocka_unit_test(test_age_check_reads_offsets_and_fractions),
            cmocka_unit_test(test_unreadable_ce_time_is_refused),
            cmocka_unit_test(
                test_missing_ce_time_is_refused_when_age_is_checked),
            cmocka_unit_test(test_max_age_0_checks_nothing),
        };

        return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
