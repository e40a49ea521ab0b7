/*
 * test_history.c - the released schemas: that the table follows the .avsc
 * files, and that a value written with another schema is read by Avro's
 * resolution rules (fields added with a default, removed, reordered; enum
 * symbols added or reordered; int promoted to long) and refused where
 * those rules refuse it.
 *
 * The files are read from the source tree (PD_SOURCE_DIR, set by ctest), so
 * that editing a schemas/<type>.avsc without registering the new version
 * fails here, before any record is written with it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/event.h"
#include "schemas/history.h"

#define ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))


/*
 * Helpers.
 */

/* PD_SOURCE_DIR/rel into buf. */
static const char *src_path(char *buf, size_t size, const char *rel) {
        const char *dir = getenv("PD_SOURCE_DIR");

        if (!dir)
                fail_msg("PD_SOURCE_DIR is not set (run through ctest)");
        snprintf(buf, size, "%s/%s", dir, rel);
        return buf;
}

/* The whole file, NUL-ended (caller frees), or NULL if it cannot be read. */
static char *slurp(const char *path) {
        FILE *fp = fopen(path, "rb");
        char *buf;
        long n;

        if (!fp)
                return NULL;
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        rewind(fp);
        buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
        buf[n] = '\0';
        fclose(fp);
        return buf;
}

/* The fingerprint of a schema text, as the decoder computes it. */
static uint64_t fingerprint_of(const char *text, const char *what) {
        char errstr[256];
        char *canonical;
        uint64_t fp;

        canonical =
            pd_event_canonicalize(text, strlen(text), errstr, sizeof(errstr));
        if (!canonical)
                fail_msg("%s: %s", what, errstr);
        fp = pd_crc64_avro(canonical, strlen(canonical));
        free(canonical);
        return fp;
}

/* The row of the table for a path in the source tree, or NULL. */
static const pd_schema_version_t *row_of(const char *rel) {
        const pd_schema_version_t *v;
        size_t i, cnt;

        v = pd_history_versions(&cnt);
        for (i = 0; i < cnt; i++)
                if (!strcmp(v[i].path, rel))
                        return &v[i];
        return NULL;
}

/* The highest version registered for a type. */
static int newest_version(pd_evtype_t type) {
        const pd_schema_version_t *v;
        size_t i, cnt;
        int newest = 0;

        v = pd_history_versions(&cnt);
        for (i = 0; i < cnt; i++)
                if (v[i].type == type && v[i].version > newest)
                        newest = v[i].version;
        return newest;
}

/* "action_finished" for the type whose newest schema is
 * schemas/action_finished.avsc. */
static const char *current_stem(pd_evtype_t type, char *buf, size_t size) {
        const pd_schema_version_t *v;
        size_t i, cnt;
        const char *base;

        v = pd_history_versions(&cnt);
        for (i = 0; i < cnt; i++) {
                if (v[i].type != type || v[i].version != newest_version(type))
                        continue;
                base = strrchr(v[i].path, '/') + 1;
                snprintf(buf, size, "%.*s", (int)(strlen(base) - 5), base);
                return buf;
        }
        fail_msg("no current schema for %s", pd_evtype_name(type));
        return NULL;
}

/* Runs fn on the name of every *.avsc in the source folder rel. */
static void each_avsc(const char *rel,
                      void (*fn)(const char *rel_dir, const char *name)) {
        char path[4096];
        struct dirent *de;
        size_t n, seen = 0;
        DIR *d = opendir(src_path(path, sizeof(path), rel));

        if (!d)
                fail_msg("cannot open %s", path);
        while ((de = readdir(d))) {
                n = strlen(de->d_name);
                if (n > 5 && !strcmp(de->d_name + n - 5, ".avsc")) {
                        fn(rel, de->d_name);
                        seen++;
                }
        }
        closedir(d);
        assert_true(seen > 0);
}

/* A tiny Avro writer of the test's own. */
typedef struct wbuf_s {
        uint8_t b[4096];
        size_t n;
} wbuf_t;

static void w_raw(wbuf_t *w, const void *p, size_t n) {
        assert_true(w->n + n <= sizeof(w->b));
        memcpy(w->b + w->n, p, n);
        w->n += n;
}

static void w_long(wbuf_t *w, int64_t v) {
        uint64_t u = v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
        uint8_t b;

        do {
                b = (uint8_t)(u & 0x7f);
                u >>= 7;
                if (u)
                        b |= 0x80;
                w_raw(w, &b, 1);
        } while (u);
}

static void w_str(wbuf_t *w, const char *s) {
        w_long(w, (int64_t)strlen(s));
        w_raw(w, s, strlen(s));
}

static void w_byte(wbuf_t *w, uint8_t b) {
        w_raw(w, &b, 1);
}

/* Decodes w's datum, written with writer schema `schema`, as the current
 * schema of type. Returns the event, or NULL with errstr. */
static pd_event_t *read_as(pd_evtype_t type, const char *schema,
                           const wbuf_t *w, char *errstr, size_t errstr_size) {
        pd_event_t *ev = pd_event_new(type);

        if (pd_history_decode_with(ev, schema, w->b, w->n, errstr,
                                   errstr_size)) {
                pd_event_destroy(ev);
                return NULL;
        }
        return ev;
}

static pd_event_t *must_read_as(pd_evtype_t type, const char *schema,
                                const wbuf_t *w) {
        char errstr[512];
        pd_event_t *ev = read_as(type, schema, w, errstr, sizeof(errstr));

        if (!ev)
                fail_msg("%s", errstr);
        return ev;
}

static void assert_read_fails(pd_evtype_t type, const char *schema,
                              const wbuf_t *w, const char *want) {
        char errstr[512] = "";
        pd_event_t *ev   = read_as(type, schema, w, errstr, sizeof(errstr));

        if (ev) {
                pd_event_destroy(ev);
                fail_msg("reading succeeded; expected \"%s\"", want);
        }
        if (!strstr(errstr, want))
                fail_msg("\"%s\" does not contain \"%s\"", errstr, want);
}

#define REC(name, fields)                                                      \
        "{\"type\":\"record\",\"name\":\"" name                                \
        "\","                                                                  \
        "\"namespace\":\"io.postdeploy\",\"fields\":[" fields "]}"
#define FIELD(name, type) "{\"name\":\"" name "\",\"type\":" type "}"


/*
 * The table follows the files.
 */

/* A schemas/<type>.avsc: the newest version of its type, registered with
 * the fingerprint it has now. */
static void check_current(const char *rel_dir, const char *name) {
        char rel[512], path[4096];
        const pd_schema_version_t *row;
        char *text;
        uint64_t fp;

        snprintf(rel, sizeof(rel), "%s/%s", rel_dir, name);
        text = slurp(src_path(path, sizeof(path), rel));
        assert_non_null(text);
        fp  = fingerprint_of(text, rel);
        row = row_of(rel);
        if (!row)
                fail_msg("%s is not in the table of schemas/history.c", rel);
        if (row->fp != fp)
                fail_msg("%s changed: its fingerprint is now 0x%016" PRIx64
                         ", the table says 0x%016" PRIx64
                         ". Register it as "
                         "version %d and move the released text to "
                         "schemas/history/ (docs/SCHEMAS.md)",
                         rel, fp, row->fp, row->version + 1);
        assert_int_equal(row->version, newest_version(row->type));
        assert_string_equal(row->text, text); /* the build is current */
        free(text);
}

/* A schemas/history/<type>.v<N>.avsc: an older version of <type>, whose
 * text has not changed since it was registered. */
static void check_history(const char *rel_dir, const char *name) {
        char rel[512], path[4096], want[512], stem[256];
        const pd_schema_version_t *row;
        char *text;

        snprintf(rel, sizeof(rel), "%s/%s", rel_dir, name);
        row = row_of(rel);
        if (!row)
                fail_msg("%s is not in the table of schemas/history.c", rel);
        text = slurp(src_path(path, sizeof(path), rel));
        assert_non_null(text);
        if (fingerprint_of(text, rel) != row->fp)
                fail_msg("%s was edited: released schemas never change", rel);
        assert_string_equal(row->text, text);
        assert_true(row->version < newest_version(row->type));
        /* Named after the current file of its type, and its version. */
        snprintf(want, sizeof(want), "%s.v%d.avsc",
                 current_stem(row->type, stem, sizeof(stem)), row->version);
        assert_string_equal(name, want);
        free(text);
}

static void test_every_schema_file_is_registered_with_its_fingerprint(
    void **state) {
        (void)state;
        each_avsc("schemas", check_current);
        each_avsc("schemas/history", check_history);
}

static void test_every_type_has_versions_one_to_current(void **state) {
        const pd_schema_version_t *v;
        size_t i, cnt;
        char path[4096];
        char *text;
        int t, ver, found;

        (void)state;
        v = pd_history_versions(&cnt);
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++) {
                assert_true(newest_version((pd_evtype_t)t) >= 1);
                for (ver = 1; ver <= newest_version((pd_evtype_t)t); ver++) {
                        for (found = 0, i = 0; i < cnt; i++)
                                found += v[i].type == (pd_evtype_t)t &&
                                         v[i].version == ver;
                        if (found != 1)
                                fail_msg("%s v%d: %d rows",
                                         pd_evtype_name((pd_evtype_t)t), ver,
                                         found);
                }
        }
        /* Each row's file exists, and its fingerprint is the decoder's for
         * the newest one. */
        for (i = 0; i < cnt; i++) {
                text = slurp(src_path(path, sizeof(path), v[i].path));
                if (!text)
                        fail_msg(
                            "%s: no such file (released schemas are "
                            "never deleted)",
                            v[i].path);
                free(text);
                if (v[i].version == newest_version(v[i].type))
                        assert_true(v[i].fp == pd_event_fingerprint(v[i].type));
                assert_true(pd_history_accepts(v[i].type, v[i].fp));
        }
}


/*
 * Resolution.
 */

static void test_a_field_added_with_a_default_takes_it(void **state) {
        /* release.deployed as a writer with only the fields without a
         * default would have written it. */
        static const char writer[] = REC(
            "ReleaseDeployed", FIELD("release", "\"string\"") "," FIELD(
                                   "selection",
                                   "{\"type\":\"enum\",\"name\":\"Selection\","
                                   "\"symbols\":[\"AUTO\",\"ALL\",\"ONE\"]}"));
        wbuf_t w = {0};
        pd_event_t *ev;

        (void)state;
        w_str(&w, "4.2.0");
        w_long(&w, 1); /* ALL */
        ev = must_read_as(PD_EVT_RELEASE_DEPLOYED, writer, &w);
        assert_string_equal(ev->release, "4.2.0");
        assert_int_equal(ev->selection, PD_SEL_ALL);
        assert_string_equal(ev->environment, "");
        assert_int_equal(ev->actions.cnt, 0);
        assert_string_equal(ev->requested_by, "");
        assert_int_equal(ev->deployed_at, 0);
        pd_event_destroy(ev);
}

static void test_a_field_added_without_a_default_cannot_be_read(void **state) {
        static const char writer[] = REC(
            "ActionStarted",
            FIELD("action", "\"string\"") "," FIELD("tenant", "\"string\"") "," FIELD(
                "release",
                "\"string\"") "," FIELD("trigger_id",
                                        "\"string\"") "," FIELD("started_at",
                                                                "\"long\"") "," FIELD("reactor",
                                                                                      "\"string\""));
        wbuf_t w = {0};

        (void)state;
        assert_read_fails(PD_EVT_ACTION_STARTED, writer, &w,
                          "field 'attempt' is not in the writer's schema "
                          "and has no default");
}

static void test_removed_fields_of_every_type_are_skipped(void **state) {
        /* action.started as a writer that had more fields, of every Avro
         * type, around and between the ones the reader knows, in another
         * order. */
        static const char writer[] =
            REC("ActionStarted", FIELD(
                                     "host", "\"string\"") "," FIELD("reactor",
                                                                     "\"string\"") "," FIELD("labels", "{\"type\":\"map\",\"values\":\"long\"}") "," FIELD("action", "\"string\"") "," FIELD("extra",
                                                                                                                                                                                             "[\"null\",{\"type\":\"record\",\"name\":\"Extra\","
                                                                                                                                                                                             "\"fields\":[{\"name\":\"a\",\"type\":\"long\"},"
                                                                                                                                                                                             "{\"name\":\"b\",\"type\":{\"type\":\"array\","
                                                                                                                                                                                             "\"items\":\"double\"}}]}]") "," FIELD("tenant", "\"string\"") "," FIELD("release", "\"string\"") "," FIELD("blob",
                                                                                                                                                                                                                                                                                                         "{\"type\":\"fixed\",\"name\":\"Blob\","
                                                                                                                                                                                                                                                                                                         "\"size\":3}") "," FIELD("trigger_id", "\"string\"") "," FIELD("f",
                                                                                                                                                                                                                                                                                                                                                                        "\"float\"") "," FIELD("flag", "\"boolean\"") "," FIELD("attempt",
                                                                                                                                                                                                                                                                                                                                                                                                                                "\"int\"") "," FIELD("kind",
                                                                                                                                                                                                                                                                                                                                                                                                                                                     "{\"type\":\"enum\",\"name\":\"Kind\","
                                                                                                                                                                                                                                                                                                                                                                                                                                                     "\"symbols\":[\"A\",\"B\"]}") "," FIELD("started_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             "\"long\"") "," FIELD("raw",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   "\"bytes\"") "," FIELD("none",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "\"null\""));
        static const uint8_t double_bytes[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                 9, 10, 11, 12, 13, 14, 15, 16};
        wbuf_t w                              = {0};
        pd_event_t *ev;
        size_t at_kind;

        (void)state;
        w_str(&w, "host-1");
        w_str(&w, "reactor-1");
        w_long(&w, 2); /* labels: a block of 2 */
        w_str(&w, "x");
        w_long(&w, 1);
        w_str(&w, "y");
        w_long(&w, -5);
        w_long(&w, 0);
        w_str(&w, "core.reindex_search");
        w_long(&w, 1); /* extra: the record */
        w_long(&w, 99);
        w_long(&w, -2); /* b: a block of 2 with its size in bytes */
        w_long(&w, 16);
        w_raw(&w, double_bytes, 16);
        w_long(&w, 0);
        w_str(&w, "acme");
        w_str(&w, "4.2.0");
        w_raw(&w, "abc", 3);
        w_str(&w, "trigger");
        w_raw(&w, "\0\0\x80\x3f", 4);
        w_byte(&w, 1);
        w_long(&w, 3);
        at_kind = w.n;
        w_long(&w, 1);
        w_long(&w, 1764079201000);
        w_str(&w, "raw");
        ev = must_read_as(PD_EVT_ACTION_STARTED, writer, &w);
        assert_string_equal(ev->action, "core.reindex_search");
        assert_string_equal(ev->tenant, "acme");
        assert_string_equal(ev->release, "4.2.0");
        assert_string_equal(ev->trigger_id, "trigger");
        assert_int_equal(ev->attempt, 3);
        assert_int_equal(ev->started_at, 1764079201000);
        assert_string_equal(ev->reactor, "reactor-1");
        pd_event_destroy(ev);

        /* A skipped field is checked and bounded like a read one. */
        w.n -= 4; /* "raw" cut short */
        assert_read_fails(PD_EVT_ACTION_STARTED, writer, &w,
                          "field 'raw': truncated datum");
        w.n = at_kind; /* "kind" with a symbol it lacks */
        w_long(&w, 2);
        w_long(&w, 1764079201000);
        w_str(&w, "raw");
        assert_read_fails(PD_EVT_ACTION_STARTED, writer, &w,
                          "field 'kind': symbol 2 does not exist");
}

static void test_a_removed_recursive_field_is_skipped_to_a_bound(void **state) {
        /* A removed field of a recursive type: a hostile value nests it
         * as deep as its bytes allow, and skipping it must not follow. */
        static const char writer[] = REC(
            "ReleaseDeployed",
            FIELD("release", "\"string\"") "," FIELD(
                "selection",
                "{\"type\":\"enum\",\"name\":\"Selection\","
                "\"symbols\":[\"AUTO\"]}") "," FIELD("tree",
                                                     "{\"type\":\"record\",\"name\":\"Node\","
                                                     "\"fields\":[{\"name\":\"next\","
                                                     "\"type\":[\"null\",\"Node\"]}]}"));
        wbuf_t w = {0};
        pd_event_t *ev;
        int i;

        (void)state;
        /* Ten deep is an ordinary value. */
        w_str(&w, "4.2.0");
        w_long(&w, 0);
        for (i = 0; i < 10; i++)
                w_long(&w, 1);
        w_long(&w, 0);
        ev = must_read_as(PD_EVT_RELEASE_DEPLOYED, writer, &w);
        assert_string_equal(ev->release, "4.2.0");
        pd_event_destroy(ev);
        /* A thousand deep is refused, not recursed into. */
        w.n = 0;
        w_str(&w, "4.2.0");
        w_long(&w, 0);
        for (i = 0; i < 1000; i++)
                w_long(&w, 1);
        w_long(&w, 0);
        assert_read_fails(PD_EVT_RELEASE_DEPLOYED, writer, &w,
                          "field 'tree': nested more than 32 deep");
}

static void test_enum_symbols_are_matched_by_name(void **state) {
        /* The writer's Selection has another order and a symbol more. */
        static const char writer[] =
            REC("ReleaseDeployed",
                FIELD("release", "\"string\"") "," FIELD(
                    "selection",
                    "{\"type\":\"enum\",\"name\":\"Selection\","
                    "\"symbols\":[\"ONE\",\"AUTO\",\"CANARY\",\"ALL\"]}"));
        wbuf_t w = {0};
        pd_event_t *ev;

        (void)state;
        w_str(&w, "4.2.0");
        w_long(&w, 0);
        ev = must_read_as(PD_EVT_RELEASE_DEPLOYED, writer, &w);
        assert_int_equal(ev->selection, PD_SEL_ONE);
        pd_event_destroy(ev);
        w.n = 0;
        w_str(&w, "4.2.0");
        w_long(&w, 3);
        ev = must_read_as(PD_EVT_RELEASE_DEPLOYED, writer, &w);
        assert_int_equal(ev->selection, PD_SEL_ALL);
        pd_event_destroy(ev);
        /* The reader has no CANARY and no default symbol: only a record
         * that uses it fails. */
        w.n = 0;
        w_str(&w, "4.2.0");
        w_long(&w, 2);
        assert_read_fails(PD_EVT_RELEASE_DEPLOYED, writer, &w,
                          "field 'selection': symbol 'CANARY' of the "
                          "writer's schema is not in the reader's");
        w.n = 0;
        w_str(&w, "4.2.0");
        w_long(&w, 4);
        assert_read_fails(PD_EVT_RELEASE_DEPLOYED, writer, &w,
                          "field 'selection': symbol 4 does not exist");
}

static void test_types_resolve_as_avro_says(void **state) {
        /* int is promoted to long. */
        static const char int_to_long[] = REC(
            "ReleaseDeployed",
            FIELD("release", "\"string\"") "," FIELD(
                "selection",
                "{\"type\":\"enum\",\"name\":\"Selection\","
                "\"symbols\":[\"AUTO\"]}") "," FIELD("deployed_at", "\"int\""));
        /* long is not narrowed to int. */
        static const char long_to_int[] = REC(
            "ActionStarted",
            FIELD("action", "\"string\"") "," FIELD("tenant", "\"string\"") "," FIELD("release", "\"string\"") "," FIELD(
                "trigger_id",
                "\"string\"") "," FIELD("attempt",
                                        "\"long\"") "," FIELD("started_at",
                                                              "\"long\"") "," FIELD("reactor",
                                                                                    "\"string\""));
        /* Records and enums must keep their names. */
        static const char renamed[] = REC(
            "ReleaseRolledOut", FIELD("release", "\"string\"") "," FIELD(
                                    "selection",
                                    "{\"type\":\"enum\",\"name\":\"Selection\","
                                    "\"symbols\":[\"AUTO\"]}"));
        static const char enum_renamed[] =
            REC("ReleaseDeployed", FIELD("release", "\"string\"") "," FIELD(
                                       "selection",
                                       "{\"type\":\"enum\",\"name\":\"Choice\","
                                       "\"symbols\":[\"AUTO\"]}"));
        wbuf_t w = {0};
        pd_event_t *ev;

        (void)state;
        w_str(&w, "4.2.0");
        w_long(&w, 0);
        w_long(&w, -1234567);
        ev = must_read_as(PD_EVT_RELEASE_DEPLOYED, int_to_long, &w);
        assert_int_equal(ev->deployed_at, -1234567);
        pd_event_destroy(ev);
        assert_read_fails(PD_EVT_ACTION_STARTED, long_to_int, &w,
                          "field 'attempt': the writer's type cannot be "
                          "read as the reader's");
        assert_read_fails(PD_EVT_RELEASE_DEPLOYED, renamed, &w,
                          "not a record ReleaseDeployed");
        assert_read_fails(PD_EVT_RELEASE_DEPLOYED, enum_renamed, &w,
                          "enum Choice is not the reader's");
}

static void test_registry_items_resolve_field_by_field(void **state) {
        /* RegisteredAction with its fields in another order and one the
         * reader does not have. */
        static const char writer[] = REC(
            "RegistryPublished",
            FIELD("reactor", "\"string\"") "," FIELD("published_at", "\"long\"") "," FIELD(
                "actions",
                "{\"type\":\"array\",\"items\":{\"type\":\"record\","
                "\"name\":\"RegisteredAction\",\"fields\":[" FIELD(
                    "after",
                    "{\"type\":\"array\",\"items\":"
                    "\"string\"}") "," FIELD("owner",
                                             "\"string\"") "," FIELD("id",
                                                                     "\"string\"") "," FIELD("auto",
                                                                                             "\"boolean\"") "," FIELD("policy",
                                                                                                                      "\"string\"") "," FIELD("description",
                                                                                                                                              "\"string\"") "]}}"));
        static const char no_policy[] = REC(
            "RegistryPublished",
            FIELD("reactor", "\"string\"") "," FIELD("published_at", "\"long\"") "," FIELD(
                "actions",
                "{\"type\":\"array\",\"items\":{\"type\":\"record\","
                "\"name\":\"RegisteredAction\",\"fields\":[" FIELD("id", "\"string\"") "," FIELD(
                    "auto",
                    "\"boolean\"") "," FIELD("description",
                                             "\"string\"") "," FIELD("after",
                                                                     "{\"type\":\"array\",\"items\":"
                                                                     "\"string\"}") "]}}"));
        wbuf_t w = {0};
        pd_event_t *ev;
        int i;

        (void)state;
        w_str(&w, "reactor-1");
        w_long(&w, 1764079199000);
        w_long(&w, 2);
        for (i = 0; i < 2; i++) {
                w_long(&w, 1);
                w_str(&w, i ? "core.a" : "core.b");
                w_long(&w, 0);
                w_str(&w, "team-x");
                w_str(&w, i ? "core.b" : "core.a");
                w_byte(&w, (uint8_t)i);
                w_str(&w, "once");
                w_str(&w, "d");
        }
        w_long(&w, 0);
        ev = must_read_as(PD_EVT_REGISTRY_PUBLISHED, writer, &w);
        assert_int_equal(ev->registry_cnt, 2);
        assert_string_equal(ev->registry[0].id, "core.a");
        assert_int_equal(ev->registry[0].is_auto, 0);
        assert_string_equal(ev->registry[1].id, "core.b");
        assert_int_equal(ev->registry[1].is_auto, 1);
        assert_string_equal(ev->registry[1].after.v[0], "core.a");
        assert_string_equal(ev->registry[1].policy, "once");
        pd_event_destroy(ev);

        /* An error inside an item names it. */
        w.n -= 3; /* the second item's description cut short */
        assert_read_fails(PD_EVT_REGISTRY_PUBLISHED, writer, &w,
                          "field 'actions[1].description': truncated datum");
        assert_read_fails(PD_EVT_REGISTRY_PUBLISHED, no_policy, &w,
                          "field 'policy' is not in the writer's schema and "
                          "has no default");
}

static void test_known_fingerprints_are_listed_newest_first(void **state) {
        const pd_schema_version_t *v;
        char buf[256], want[256];
        size_t i, cnt;
        uint64_t v1 = 0, v2 = 0;

        (void)state;
        v = pd_history_versions(&cnt);
        for (i = 0; i < cnt; i++) {
                if (v[i].type == PD_EVT_ACTION_FINISHED && v[i].version == 1)
                        v1 = v[i].fp;
                if (v[i].type == PD_EVT_ACTION_FINISHED && v[i].version == 2)
                        v2 = v[i].fp;
        }
        assert_true(v1 != 0);
        assert_true(v2 != 0);
        snprintf(want, sizeof(want),
                 "0x%016" PRIx64 " (v3), 0x%016" PRIx64 " (v2), 0x%016" PRIx64
                 " (v1)",
                 pd_event_fingerprint(PD_EVT_ACTION_FINISHED), v2, v1);
        assert_string_equal(
            pd_history_known(PD_EVT_ACTION_FINISHED, buf, sizeof(buf)), want);
        assert_true(pd_history_accepts(PD_EVT_ACTION_FINISHED, v1));
        assert_false(pd_history_accepts(PD_EVT_ACTION_STARTED, v1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_every_schema_file_is_registered_with_its_fingerprint),
            cmocka_unit_test(test_every_type_has_versions_one_to_current),
            cmocka_unit_test(test_a_field_added_with_a_default_takes_it),
            cmocka_unit_test(
                test_a_field_added_without_a_default_cannot_be_read),
            cmocka_unit_test(test_removed_fields_of_every_type_are_skipped),
            cmocka_unit_test(
                test_a_removed_recursive_field_is_skipped_to_a_bound),
            cmocka_unit_test(test_enum_symbols_are_matched_by_name),
            cmocka_unit_test(test_types_resolve_as_avro_says),
            cmocka_unit_test(test_registry_items_resolve_field_by_field),
            cmocka_unit_test(test_known_fingerprints_are_listed_newest_first),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
