/*
 * argv.h - turning an action's `run` line into an argv, with no shell.
 *
 * Splitting follows the shell's quoting rules and nothing else: words are
 * separated by blanks; 'single quotes' keep everything literally; "double
 * quotes" keep everything but let a backslash escape " \ $ ` and newline;
 * outside quotes a backslash escapes the next character. There is no
 * expansion of any kind: $VAR, `cmd`, *, ~, ;, |, > are ordinary characters.
 *
 * Placeholders {tenant}, {release}, {action} are substituted inside words
 * after splitting, so a value can never create or split a word.
 */
#ifndef PD_ARGV_H
#define PD_ARGV_H

#include "common/strv.h"

/*
 * Splits `line` into words appended to *out. Returns 0, or -1 with a message
 * in errstr (an unterminated quote, a trailing backslash, no words at all).
 */
int pd_argv_split(const char *line, pd_strv_t *out, char *errstr,
                  size_t errstr_size);

/* One placeholder: "{name}" in a word is replaced by value. */
typedef struct pd_subst_s {
        const char *name; /* without braces, e.g. "tenant" */
        const char *value;
} pd_subst_t;

/*
 * Appends to *out a copy of each word of `in` with every {name} of `vars`
 * (vars_cnt entries) replaced. Unknown {...} are left as they are.
 * Never fails (aborts on OOM).
 */
void pd_argv_expand(const pd_strv_t *in, const pd_subst_t *vars,
                    size_t vars_cnt, pd_strv_t *out);

#endif
