/*
 * config_value.c - reading one value into its field: names (tenants,
 * actions, releases, environment variables), durations, lists, commands
 * (split into argv by argv.c), and the [kafka] pass-through, which
 * librdkafka itself checks. Each error says which forms are accepted;
 * pd__config_assign adds which key it was.
 */
#include "common/config_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>

#include "common/argv.h"
#include "common/log.h"
#include "common/xalloc.h"

const char *pd_policy_name(pd_policy_t policy) {
        return policy == PD_POLICY_ALWAYS ? "always" : "once";
}

int pd__config_is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* Trims blanks from both ends of s, in place. */
char *pd__config_trim(char *s) {
        char *end;

        while (pd__config_is_blank(*s))
                s++;
        end = s + strlen(s);
        while (end > s && pd__config_is_blank(end[-1]))
                end--;
        *end = '\0';
        return s;
}

/*
 * Hand-coded instead of a regex: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,max-1}$, in
 * ASCII whatever the locale, since these names end up in Kafka keys, file
 * names and SQL rows.
 */
static int config_name_valid(const char *s, size_t max) {
        size_t i;

        if (!s)
                return 0;
        for (i = 0; s[i]; i++) {
                char c   = s[i];
                int word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '_';

                if (i == max)
                        return 0;
                if (!word && (i == 0 || (c != '.' && c != '-')))
                        return 0;
        }
        return i > 0;
}

int pd_tenant_valid(const char *tenant) {
        return config_name_valid(tenant, 63);
}

int pd_action_name_valid(const char *name) {
        return config_name_valid(name, 128);
}

int pd_param_name_valid(const char *name) {
        size_t i;

        if (!name || !(*name >= 'a' && *name <= 'z'))
                return 0;
        for (i = 1; name[i]; i++)
                if (i >= 64 ||
                    !((name[i] >= 'a' && name[i] <= 'z') ||
                      (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
                        return 0;
        return 1;
}

/*
 * A release is substituted whole into an action's argv words, so its first
 * byte decides whether a program reads it as an option: only a letter or a
 * digit may start it. '+' and '~' are for semver build metadata and Debian
 * versions; blanks, quotes, '/' and ':' have no place in a version.
 */
int pd_release_valid(const char *release) {
        size_t i;

        if (!release)
                return 0;
        for (i = 0; release[i]; i++) {
                char c    = release[i];
                int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9');

                if (i == 128)
                        return 0;
                if (!alnum && (i == 0 || !strchr("_.+~-", c)))
                        return 0;
        }
        return i > 0;
}

/* POSIX portable environment names: [A-Za-z_][A-Za-z0-9_]*. */
static int config_env_name_valid(const char *s) {
        for (size_t i = 0; s[i]; i++) {
                char c = s[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      c == '_' || (i > 0 && c >= '0' && c <= '9')))
                        return 0;
        }
        return *s != '\0';
}

int pd_duration_parse(const char *s, int64_t *msp) {
        static const struct {
                const char *suffix;
                int64_t ms;
        } units[]     = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                         {"h", 3600000}, {"d", 86400000}, {"", 1000}};
        int64_t whole = 0, frac = 0, frac_div = 1, mult = 0;
        const char *p = s;

        if (!s || *p < '0' || *p > '9')
                return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (whole > (INT64_MAX - (*p - '0')) / 10)
                        return -1;
                whole = whole * 10 + (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -1;
                /* Nine digits are finer than a millisecond in any unit;
                 * the rest must still be digits but no longer count. */
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (frac_div < 1000000000) {
                                frac = frac * 10 + (*p - '0');
                                frac_div *= 10;
                        }
                }
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (!strcmp(p, units[i].suffix)) {
                        mult = units[i].ms;
                        break;
                }
        }
        if (!mult)
                return -1;
        /* frac < frac_div <= 1e9 and mult <= 8.64e7: frac * mult fits. */
        frac = frac * mult / frac_div;
        if (whole > (INT64_MAX - frac) / mult)
                return -1;
        *msp = whole * mult + frac;
        return 0;
}

const char *pd_duration_format(int64_t ms, char *buf, size_t size) {
        if (!ms)
                snprintf(buf, size, "0");
        else if (ms % 3600000 == 0)
                snprintf(buf, size, "%" PRId64 "h", ms / 3600000);
        else if (ms % 60000 == 0)
                snprintf(buf, size, "%" PRId64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(buf, size, "%" PRId64 "s", ms / 1000);
        else
                snprintf(buf, size, "%" PRId64 "ms", ms);
        return buf;
}

int64_t pd_action_backoff_ms(const pd_action_def_t *def, int32_t retry) {
        int64_t backoff = def->retry_backoff_ms;

        if (backoff <= 0)
                return 0;
        /* Doubled only while under the cap, so retries = 100 cannot
         * overflow: at most 42 doublings from 1 ms. */
        for (int32_t n = 1; n < retry && backoff < PD_RETRY_BACKOFF_MAX_MS; n++)
                backoff *= 2;
        return backoff < PD_RETRY_BACKOFF_MAX_MS ? backoff
                                                 : PD_RETRY_BACKOFF_MAX_MS;
}

/*
 * Replaces *svp with the comma-separated items of value, trimmed, empty ones
 * and repeats dropped (so "a, b," is a, b). With `tenants` every item must
 * be a tenant name. On error *svp is left as it was.
 */
static int config_list_parse(const char *value, int tenants, pd_strv_t *svp,
                             char *msg, size_t msg_size) {
        pd_strv_t sv = {0};
        char *copy, *item, *save = NULL;
        int err = -1;

        copy = pd_xstrdup(value);
        for (item = strtok_r(copy, ",", &save); item;
             item = strtok_r(NULL, ",", &save)) {
                item = pd__config_trim(item);
                if (!*item || pd_strv_find(&sv, item) >= 0)
                        continue;
                if (tenants && !pd_tenant_valid(item)) {
                        pd_errf(msg, msg_size,
                                "'%s' is not a valid tenant name "
                                "(letters, digits, '_', '.', '-', at "
                                "most 63, not starting with '.' or "
                                "'-')",
                                item);
                        goto done;
                }
                pd_strv_add(&sv, item);
        }
        pd_strv_clear(svp);
        *svp = sv;
        memset(&sv, 0, sizeof(sv)); /* *svp owns it now */
        err = 0;
done:
        pd_strv_clear(&sv);
        free(copy);
        return err;
}

/*
 * Asks librdkafka itself whether it takes `name = value`, on a conf made for
 * the question and thrown away: a typo such as `bootstrap.server` is then
 * an error naming its file:line at --check and at start-up, before anything
 * exists on disk, instead of when the Kafka clients are made. The client
 * type plays no part here (one property table serves producers and
 * consumers alike), so one conf answers for every client built from the
 * section. Returns 0, or -1 with librdkafka's message in msg.
 */
static int config_kafka_check(const char *name, const char *value, char *msg,
                              size_t msg_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_conf_res_t res;

        res = rd_kafka_conf_set(kconf, name, value, msg, msg_size);
        rd_kafka_conf_destroy(kconf);
        return res == RD_KAFKA_CONF_OK ? 0 : -1;
}

/*
 * Stores value into the field ck describes inside base (a pd_config_t, or a
 * pd_action_def_t for section "action"). key is the name as written, which
 * only matters for env.NAME and [kafka]. Returns 0, or -1 with a message
 * that names the accepted forms but not the key (the caller adds that).
 * On error the field keeps its previous value.
 */
static int config_apply(const pd_config_key_t *ck, void *base, const char *key,
                        const char *value, char *msg, size_t msg_size) {
        void *field = (char *)base + ck->offset;

        switch (ck->type) {
        case PD_CONFIG_TENANT:
                if (!pd_tenant_valid(value)) {
                        pd_errf(msg, msg_size,
                                "expected a tenant name (letters, "
                                "digits, '_', '.', '-', at most 63, "
                                "not starting with '.' or '-')");
                        return -1;
                }
                /* fall through */
        case PD_CONFIG_STRING: {
                char **sp  = field;
                char *copy = NULL;

                /* An empty value resets a key whose default is "unset". */
                if (*value || ck->def)
                        copy = pd_xstrdup(value);
                free(*sp);
                *sp = copy;
                return 0;
        }
        case PD_CONFIG_INT: {
                char *end;
                long l;

                /* strtol alone would also take " 5" and "+5". */
                errno = 0;
                l     = strtol(value, &end, 10);
                if (!((*value >= '0' && *value <= '9') || *value == '-') ||
                    *end || errno || l < ck->min || l > ck->max) {
                        pd_errf(msg, msg_size,
                                "expected an integer from %" PRId64
                                " to %" PRId64,
                                ck->min, ck->max);
                        return -1;
                }
                *(int *)field = (int)l;
                return 0;
        }
        case PD_CONFIG_BOOL: {
                static const char *const truths[] = {"true", "yes", "on", "1"};
                static const char *const lies[]   = {"false", "no", "off", "0"};

                for (size_t i = 0; i < 4; i++) {
                        if (!strcasecmp(value, truths[i]) ||
                            !strcasecmp(value, lies[i])) {
                                *(int *)field = !strcasecmp(value, truths[i]);
                                return 0;
                        }
                }
                pd_errf(msg, msg_size,
                        "expected true/false, yes/no, on/off or 1/0");
                return -1;
        }
        case PD_CONFIG_DURATION: {
                char lo[32], hi[32];
                int64_t min = ck->min < 0 ? -ck->min : ck->min;
                int64_t ms;

                if (pd_duration_parse(value, &ms)) {
                        pd_errf(msg, msg_size,
                                "expected a duration such as 500ms, "
                                "30s, 5m, 1h or 1.5 (seconds)");
                        return -1;
                }
                /* A bound keeps deadlines and doubled backoffs far from
                 * overflow, and catches "shutdown_grace = 30000" meant as
                 * milliseconds. */
                if ((ms || ck->min >= 0) && (ms < min || ms > ck->max)) {
                        pd_errf(msg, msg_size,
                                "expected %sa duration from %s to %s",
                                ck->min < 0 ? "0 or " : "",
                                pd_duration_format(min, lo, sizeof(lo)),
                                pd_duration_format(ck->max, hi, sizeof(hi)));
                        return -1;
                }
                *(int64_t *)field = ms;
                return 0;
        }
        case PD_CONFIG_UMASK: {
                char *end;
                long l;

                /* Octal only, as umask(1) writes it: "22" is 022. */
                errno = 0;
                l     = strtol(value, &end, 8);
                if (!*value) {
                        l = -1;
                } else if (*value < '0' || *value > '7' || *end || errno ||
                           l > 0777) {
                        pd_errf(msg, msg_size,
                                "expected an octal mode mask from 0000 to "
                                "0777, such as 0022");
                        return -1;
                }
                *(int *)field = (int)l;
                return 0;
        }
        case PD_CONFIG_LIST:
        case PD_CONFIG_TENANTS:
                return config_list_parse(value, ck->type == PD_CONFIG_TENANTS,
                                         field, msg, msg_size);
        case PD_CONFIG_POLICY:
                if (!strcmp(value, "once"))
                        *(pd_policy_t *)field = PD_POLICY_ONCE;
                else if (!strcmp(value, "always"))
                        *(pd_policy_t *)field = PD_POLICY_ALWAYS;
                else {
                        pd_errf(msg, msg_size, "expected once or always");
                        return -1;
                }
                return 0;
        case PD_CONFIG_LOG_LEVEL: {
                int lvl = pd_log_level_parse(value);

                if (lvl < 0) {
                        pd_errf(msg, msg_size,
                                "expected error, warn, info or debug");
                        return -1;
                }
                *(int *)field = lvl;
                return 0;
        }
        case PD_CONFIG_LOG_FORMAT: {
                int fmt = pd_log_format_parse(value);

                if (fmt < 0) {
                        pd_errf(msg, msg_size, "expected text or json");
                        return -1;
                }
                *(int *)field = fmt;
                return 0;
        }
        case PD_CONFIG_COMMAND: {
                /* Only actions have commands: the words go next to `run`. */
                pd_action_def_t *act = base;
                pd_strv_t argv       = {0};

                if (pd_argv_split(value, &argv, msg, msg_size))
                        return -1;
                free(act->run);
                act->run = pd_xstrdup(value);
                pd_strv_clear(&act->argv);
                act->argv = argv;
                return 0;
        }
        case PD_CONFIG_ENV: {
                pd_strv_t *env   = field;
                const char *name = key + 4; /* after "env." */
                size_t name_len  = strlen(name), pair_size;
                char *pair;
                size_t i;

                if (!config_env_name_valid(name)) {
                        pd_errf(msg, msg_size,
                                "invalid environment variable name "
                                "'%s' (letters, digits and '_', not "
                                "starting with a digit)",
                                name);
                        return -1;
                }
                pair_size = name_len + strlen(value) + 2;
                pair      = pd_xmalloc(pair_size);
                snprintf(pair, pair_size, "%s=%s", name, value);
                for (i = 0; i < env->cnt; i++)
                        if (!strncmp(env->v[i], pair, name_len + 1))
                                break;
                if (i < env->cnt)
                        pd_strv_set(env, i, pair);
                else
                        pd_strv_add(env, pair);
                free(pair);
                return 0;
        }
        case PD_CONFIG_PASS: {
                pd_strv_t *kv = field;

                /* A file cannot say "= x" with no name; -s kafka.=x can. */
                if (!*key) {
                        pd_errf(msg, msg_size, "a property name is required");
                        return -1;
                }
                if (config_kafka_check(key, value, msg, msg_size))
                        return -1;
                /* A later value replaces an earlier one, as in librdkafka. */
                for (size_t i = 0; i + 1 < kv->cnt; i += 2) {
                        if (strcmp(kv->v[i], key))
                                continue;
                        pd_strv_set(kv, i + 1, value);
                        return 0;
                }
                pd_strv_add(kv, key);
                pd_strv_add(kv, value);
                return 0;
        }
        }
        assert(!"unknown config type");
        return -1;
}

/*
 * Writes msg about one value into errstr, naming the key the way a reader
 * finds it: "reactor.workers: msg" or "action 'x': retries: msg".
 */
void pd__config_value_error(const char *section, const pd_action_def_t *act,
                            const char *key, const char *msg, char *errstr,
                            size_t errstr_size) {
        if (act)
                pd_errf(errstr, errstr_size, "action '%s': %s: %s", act->name,
                        key, msg);
        else
                pd_errf(errstr, errstr_size, "%s.%s: %s", section, key, msg);
}

/*
 * Sets key to value in ck's section of conf (act is the action for section
 * "action", else NULL): the code path shared by files, overrides and
 * defaults. Returns 0, or -1 with e.g. "reactor.workers: expected ..." in
 * errstr.
 */
int pd__config_assign(pd_config_t *conf, pd_action_def_t *act,
                      const pd_config_key_t *ck, const char *key,
                      const char *value, char *errstr, size_t errstr_size) {
        char msg[512];

        if (!config_apply(ck, act ? (void *)act : (void *)conf, key, value, msg,
                          sizeof(msg)))
                return 0;
        pd__config_value_error(ck->section, act, key, msg, errstr, errstr_size);
        return -1;
}

/* "unknown key 'k' in [section]", the same for files and overrides. */
void pd__config_unknown_key(const char *section, const pd_action_def_t *act,
                            const char *key, char *errstr, size_t errstr_size) {
        if (act)
                pd_errf(errstr, errstr_size, "unknown key '%s' in [action %s]",
                        key, act->name);
        else
                pd_errf(errstr, errstr_size, "unknown key '%s' in [%s]", key,
                        section);
}
