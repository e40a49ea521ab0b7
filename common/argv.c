/*
 * argv.c - see argv.h. An action's command never meets a shell, so the only
 * shell behaviour we copy is quoting: it is what lets a config write an
 * argument with blanks in it. Everything a shell would expand stays literal,
 * which is why a tenant name or a release can never inject a word.
 */
#include "common/argv.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

int pd_argv_split(const char *line, pd_strv_t *out, char *errstr,
                  size_t errstr_size) {
        size_t cnt0 = out->cnt, len = 0;
        const char *p = line;
        int in_word = 0, err = -1;
        char *word;

        /* No word is longer than the line, so one buffer serves them all. */
        word = pd_xmalloc(strlen(line) + 1);
        for (; *p; p++) {
                switch (*p) {
                case ' ':
                case '\t':
                case '\n':
                        if (in_word) {
                                word[len] = '\0';
                                pd_strv_add(out, word);
                                in_word = 0;
                                len     = 0;
                        }
                        break;
                case '\'':
                        /* Everything up to the next quote, backslashes
                         * included: a single quote cannot be escaped. */
                        in_word = 1;
                        for (p++; *p != '\''; p++) {
                                if (!*p) {
                                        pd_errf(errstr, errstr_size,
                                                "unterminated single "
                                                "quote");
                                        goto done;
                                }
                                word[len++] = *p;
                        }
                        break;
                case '"':
                        in_word = 1;
                        for (p++; *p != '"'; p++) {
                                if (!*p) {
                                        pd_errf(errstr, errstr_size,
                                                "unterminated double "
                                                "quote");
                                        goto done;
                                }
                                /* Only these lose their backslash here;
                                 * before anything else it stays. */
                                if (*p == '\\' && p[1] &&
                                    strchr("\"\\$`\n", p[1])) {
                                        p++;
                                        if (*p == '\n')
                                                continue; /* joined line */
                                }
                                word[len++] = *p;
                        }
                        break;
                case '\\':
                        if (!p[1]) {
                                pd_errf(errstr, errstr_size,
                                        "trailing backslash");
                                goto done;
                        }
                        p++;
                        /* Backslash-newline joins lines and is not a word
                         * by itself. */
                        if (*p == '\n')
                                break;
                        in_word     = 1;
                        word[len++] = *p;
                        break;
                default:
                        in_word     = 1;
                        word[len++] = *p;
                        break;
                }
        }
        if (in_word) {
                word[len] = '\0';
                pd_strv_add(out, word);
        }
        if (out->cnt == cnt0) {
                pd_errf(errstr, errstr_size, "empty command");
                goto done;
        }
        err = 0;
done:
        /* All or nothing: a caller never sees half a command. */
        if (err)
                pd_strv_truncate(out, cnt0);
        free(word);
        return err;
}

/*
 * Writes word with its placeholders replaced into dst, or only counts when
 * dst is NULL. Returns the length. After a '{' that starts no known
 * placeholder the scan goes on at the next character, so "{{tenant}}"
 * becomes "{acme}".
 */
static size_t argv_subst(const char *word, const pd_subst_t *vars,
                         size_t vars_cnt, char *dst) {
        size_t len = 0;

        for (const char *p = word; *p;) {
                const char *close;
                size_t i = vars_cnt;

                if (*p == '{' && (close = strchr(p + 1, '}'))) {
                        size_t name_len = (size_t)(close - p - 1);

                        for (i = 0; i < vars_cnt; i++)
                                if (strlen(vars[i].name) == name_len &&
                                    !strncmp(vars[i].name, p + 1, name_len))
                                        break;
                        if (i < vars_cnt) {
                                size_t vlen = strlen(vars[i].value);

                                if (dst)
                                        memcpy(dst + len, vars[i].value, vlen);
                                len += vlen;
                                p = close + 1;
                                continue;
                        }
                }
                if (dst)
                        dst[len] = *p;
                len++;
                p++;
        }
        if (dst)
                dst[len] = '\0';
        return len;
}

void pd_argv_expand(const pd_strv_t *in, const pd_subst_t *vars,
                    size_t vars_cnt, pd_strv_t *out) {
        for (size_t i = 0; i < in->cnt; i++) {
                size_t len = argv_subst(in->v[i], vars, vars_cnt, NULL);
                char *word = pd_xmalloc(len + 1);

                argv_subst(in->v[i], vars, vars_cnt, word);
                pd_strv_add(out, word);
                free(word);
        }
}
