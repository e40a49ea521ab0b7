/*
 * term.h - showing text that came from an event or an action's output on a
 * terminal without letting it drive the terminal.
 *
 * An action's output, an error, a release or a description is written by
 * whoever can run an action or write to a topic. Printed raw, an ESC
 * sequence in it clears the operator's screen, sets the window title or
 * paints a fake "all actions succeeded"; a newline breaks the table. Every
 * such field the CLI prints for people goes through pd_term_escape; JSON
 * output does not (its own escaping keeps the bytes exact).
 */
#ifndef PD_TERM_H
#define PD_TERM_H

#include <stddef.h>
#include <stdio.h>

/*
 * Writes the len bytes at s to fp, with every byte that is not part of a
 * printable character written visibly as \xNN (lower-case hex): C0 controls
 * (ESC, and \n and \t too: a field is one line), DEL, the C1 controls
 * U+0080..U+009F (both bytes of their UTF-8 form) and each byte of invalid
 * UTF-8. Valid UTF-8 text, spaces and backslashes are written as they are.
 * s may be NULL when len is 0. Returns 0, or -1 if writing to fp failed
 * (errno says why).
 */
int pd_term_escape(const char *s, size_t len, FILE *fp);

/*
 * The same text as pd_term_escape writes for the C string s, in a string
 * the caller frees, for a printf argument. NULL s gives NULL. Aborts when
 * out of memory.
 */
char *pd_term_escape_dup(const char *s);

#endif
