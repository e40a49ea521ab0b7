/*
 * fuzz_config.c - libFuzzer target for the configuration: the INI parser
 * (pd_config_load, then pd_config_validate), the `run` line splitter and the
 * placeholder expansion (pd_argv_split, pd_argv_expand), and durations
 * (pd_duration_parse).
 *
 * The input is a config file, optionally followed by a line "%%" and
 * command line overrides, one "SECTION<TAB>KEY<TAB>VALUE" a line, which go
 * to pd_config_set as -s gives them. pd_config_load reads a path, so the
 * file's bytes go to a memfd and the parser opens /proc/self/fd/N. Then
 * every line of the input, and the input up to its first NUL, is a `run`
 * line and a duration. Configs are trusted more than Kafka records, but
 * they are written by people, passed with -c and -s, and a crash or a
 * silently different argv there is still a bug.
 */
#define _GNU_SOURCE /* memfd_create, memmem */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/argv.h"
#include "common/config.h"
#include "tests/fuzz/fuzz.h"

/* Lines of one input given to the splitter and the duration parser: more
 * would only repeat the same work on a long input. */
#define PD_FUZZ_LINES_MAX 64

/* Quotes every word of sv in single quotes (a ' becomes '\''), which the
 * splitter must turn back into exactly those words. */
static char *fuzz_requote(const pd_strv_t *sv) {
        size_t i, size = 1;
        const char *s;
        char *out, *o;

        for (i = 0; i < sv->cnt; i++)
                size += 4 * strlen(sv->v[i]) + 3;
        if (!(o = out = malloc(size)))
                abort();
        for (i = 0; i < sv->cnt; i++) {
                *o++ = '\'';
                for (s = sv->v[i]; *s; s++) {
                        if (*s == '\'') {
                                memcpy(o, "'\\''", 4);
                                o += 4;
                        } else {
                                *o++ = *s;
                        }
                }
                *o++ = '\'';
                *o++ = ' ';
        }
        *o = '\0';
        return out;
}

/* Checks that b holds a's words, NULL-terminated. */
static void fuzz_same_strv(const pd_strv_t *a, const pd_strv_t *b,
                           const char *what) {
        size_t i;

        if (a->cnt != b->cnt || (b->v && b->v[b->cnt]))
                pd_fuzz_fail("%s: %zu words, then %zu", what, a->cnt, b->cnt);
        for (i = 0; i < a->cnt; i++)
                if (strcmp(a->v[i], b->v[i]))
                        pd_fuzz_fail("%s: word %zu '%s' became '%s'", what, i,
                                     a->v[i], b->v[i]);
}

/* Placeholder values that would do damage if expansion were textual: a
 * blank, a quote, another placeholder. */
static const pd_subst_t fuzz_vars[] = {
    {"tenant", "acme corp"},
    {"release", "{tenant}"},
    {"action", "'\""},
};

static void fuzz_expand(const pd_strv_t *argv) {
        pd_strv_t out = {0};
        size_t i;

        pd_argv_expand(argv, fuzz_vars,
                       sizeof(fuzz_vars) / sizeof(fuzz_vars[0]), &out);
        /* A value never adds nor splits a word, and a word without a '{'
         * has nothing to replace. */
        if (out.cnt != argv->cnt)
                pd_fuzz_fail("expansion turned %zu words into %zu", argv->cnt,
                             out.cnt);
        for (i = 0; i < argv->cnt; i++)
                if (!strchr(argv->v[i], '{') && strcmp(argv->v[i], out.v[i]))
                        pd_fuzz_fail("expansion changed '%s' into '%s'",
                                     argv->v[i], out.v[i]);
        pd_strv_clear(&out);

        /* With no placeholders, expansion is a copy. */
        pd_argv_expand(argv, NULL, 0, &out);
        fuzz_same_strv(argv, &out, "expansion without placeholders");
        pd_strv_clear(&out);
}

static void fuzz_split(const char *line) {
        pd_strv_t argv = {0}, again = {0};
        char errstr[256];
        char *quoted;

        /* The words are appended after what the vector holds; a failure
         * leaves that untouched. */
        pd_strv_add(&argv, "before");
        errstr[0] = '\0';
        if (pd_argv_split(line, &argv, errstr, sizeof(errstr))) {
                if (argv.cnt != 1 || strcmp(argv.v[0], "before") || argv.v[1])
                        pd_fuzz_fail("a failed split changed the vector");
                if (!errstr[0])
                        pd_fuzz_fail("pd_argv_split failed without a reason");
                pd_strv_clear(&argv);
                return;
        }
        if (argv.cnt < 2)
                pd_fuzz_fail("pd_argv_split succeeded with no word");

        /* Drop "before" for the checks below. */
        free(argv.v[0]);
        memmove(argv.v, argv.v + 1, argv.cnt * sizeof(*argv.v));
        argv.cnt--;

        quoted = fuzz_requote(&argv);
        if (pd_argv_split(quoted, &again, errstr, sizeof(errstr)))
                pd_fuzz_fail("quoted words do not split: %s: %s", errstr,
                             quoted);
        fuzz_same_strv(&argv, &again, "split of the quoted words");
        free(quoted);
        pd_strv_clear(&again);

        fuzz_expand(&argv);
        pd_strv_clear(&argv);
}

static void fuzz_duration(const char *s) {
        static const struct {
                const char *suffix;
                int64_t ms;
        } units[] = {
            {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
        int64_t ms = -1, n = 0;
        size_t i, digits   = strspn(s, "0123456789");

        if (pd_duration_parse(s, &ms))
                return;
        if (ms < 0)
                pd_fuzz_fail("duration '%s' is %lld ms", s, (long long)ms);
        /* A whole number with a unit, small enough not to overflow here,
         * is worth exactly what arithmetic says. */
        if (!digits || digits > 12)
                return;
        for (i = 0; i < digits; i++)
                n = n * 10 + (s[i] - '0');
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (!strcmp(s + digits, units[i].suffix) &&
                    ms != n * units[i].ms)
                        pd_fuzz_fail("duration '%s' is %lld ms, not %lld", s,
                                     (long long)ms,
                                     (long long)(n * units[i].ms));
}

/* What a config that loaded and validated must look like. */
static void fuzz_check_config(const pd_config_t *conf) {
        pd_strv_t argv = {0};
        char errstr[1024];
        size_t i, j;

        if (conf->kafka.cnt % 2)
                pd_fuzz_fail("[kafka] holds a name without a value");
        for (i = 0; i < conf->kafka.cnt; i += 2)
                if (!conf->kafka.v[i][0])
                        pd_fuzz_fail(
                            "[kafka] holds a property without a "
                            "name");
        if (!pd_tenant_valid(conf->default_tenant))
                pd_fuzz_fail("default_tenant '%s' is not a tenant name",
                             conf->default_tenant);
        for (i = 0; i < conf->tenants.cnt; i++)
                if (!pd_tenant_valid(conf->tenants.v[i]))
                        pd_fuzz_fail("tenants holds '%s'", conf->tenants.v[i]);
        for (i = 0; i < conf->action_cnt; i++) {
                const pd_action_def_t *act = &conf->actions[i];

                if (!pd_action_name_valid(act->name))
                        pd_fuzz_fail("action name '%s' is not valid",
                                     act->name);
                if (pd_config_action(conf, act->name) != act)
                        pd_fuzz_fail("action '%s' is defined twice", act->name);
                if (!act->run || !act->argv.cnt)
                        pd_fuzz_fail("action '%s' has no command", act->name);
                /* `run` is kept as written and split: the two agree. */
                if (pd_argv_split(act->run, &argv, errstr, sizeof(errstr)))
                        pd_fuzz_fail("run '%s' of '%s' no longer splits: %s",
                                     act->run, act->name, errstr);
                fuzz_same_strv(&argv, &act->argv, "argv of a run line");
                pd_strv_clear(&argv);
                fuzz_expand(&act->argv);
                for (j = 0; j < act->after.cnt; j++)
                        if (!pd_config_action(conf, act->after.v[j]))
                                pd_fuzz_fail("'%s' runs after unknown '%s'",
                                             act->name, act->after.v[j]);
        }
}

/* Applies the overrides in text (SECTION TAB KEY TAB VALUE lines); a line
 * without two tabs is skipped. Returns -1 at the first one refused. */
static int fuzz_overrides(pd_config_t *conf, char *text) {
        char *line, *next, *key, *value;
        char errstr[1024];

        for (line = text; line; line = next) {
                if ((next = strchr(line, '\n')))
                        *next++ = '\0';
                if (!(key = strchr(line, '\t')) ||
                    !(value = strchr(key + 1, '\t')))
                        continue;
                *key++    = '\0';
                *value++  = '\0';
                errstr[0] = '\0';
                if (pd_config_set(conf, line, key, value, errstr,
                                  sizeof(errstr))) {
                        if (!errstr[0])
                                pd_fuzz_fail(
                                    "pd_config_set failed without a "
                                    "reason");
                        return -1;
                }
        }
        return 0;
}

static void fuzz_one_config(const uint8_t *data, size_t size) {
        static int fd      = -1;
        const uint8_t *sep = memmem(data, size, "\n%%\n", 4);
        char path[64], errstr[1024];
        pd_config_t *conf;
        size_t off = 0;
        ssize_t n;
        char *rest = NULL;
        int err;

        /* The file ends with the newline before "%%". */
        if (sep) {
                size_t len = size - (size_t)(sep + 4 - data);

                if (!(rest = malloc(len + 1)))
                        abort();
                memcpy(rest, sep + 4, len);
                rest[len] = '\0';
                size      = (size_t)(sep + 1 - data);
        }

        if (fd == -1 && (fd = memfd_create("fuzz_one_config", 0)) == -1) {
                perror("memfd_create");
                abort();
        }
        if (ftruncate(fd, 0))
                abort();
        while (off < size) {
                if ((n = pwrite(fd, data + off, size - off, (off_t)off)) <= 0)
                        abort();
                off += (size_t)n;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        /* An error in the file or in validation names the file; one in an
         * override has no file to name. */
        conf      = pd_config_new();
        errstr[0] = '\0';
        err       = pd_config_load(conf, path, errstr, sizeof(errstr));
        if (!err && rest && fuzz_overrides(conf, rest))
                goto out;
        if (!err)
                err = pd_config_validate(conf, errstr, sizeof(errstr));
        if (err && strncmp(errstr, path, strlen(path)))
                pd_fuzz_fail("config error does not name the file: %s", errstr);
        if (!err)
                fuzz_check_config(conf);
out:
        pd_config_destroy(conf);
        free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, *line, *next;
        int lines = 0;

        fuzz_one_config(data, size);

        /* The same bytes as C strings: all of it up to a NUL, then each
         * line. */
        if (!(text = malloc(size + 1)))
                abort();
        if (size)
                memcpy(text, data, size);
        text[size] = '\0';
        fuzz_split(text);
        fuzz_duration(text);
        for (line = text; line && lines < PD_FUZZ_LINES_MAX; line = next) {
                if ((next = strchr(line, '\n')))
                        *next++ = '\0';
                fuzz_split(line);
                fuzz_duration(line);
                lines++;
        }
        free(text);
        return 0;
}
