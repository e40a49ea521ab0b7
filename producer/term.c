/*
 * term.c - control characters from events and actions' output made visible
 * (see term.h).
 *
 * Printable runs are written with one fwrite each, so a report of 100,000
 * rows pays one scan per field, not a call per byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "producer/term.h"

#include "common/utf8.h"
#include "common/xalloc.h"

/*
 * The length of the printable character at s (n bytes left): 1 for ASCII
 * 0x20..0x7e, 2..4 for a well-formed UTF-8 sequence that is not a C1
 * control; 0 if s starts something to escape.
 */
static size_t term_printable(const unsigned char *s, size_t n) {
        size_t len = pd_utf8_seq(s, n);

        if (len == 1)
                return s[0] >= 0x20 && s[0] < 0x7f;
        if (len == 2 && s[0] == 0xc2 && s[1] < 0xa0)
                return 0; /* U+0080..U+009F: the C1 controls (CSI, OSC) */
        return len;
}

int pd_term_escape(const char *s, size_t len, FILE *fp) {
        const unsigned char *p = (const unsigned char *)s, *run = p;
        const unsigned char *end = p + len;

        while (p < end) {
                size_t k = term_printable(p, (size_t)(end - p));

                if (k) {
                        p += k;
                        continue;
                }
                if (p > run &&
                    fwrite(run, 1, (size_t)(p - run), fp) != (size_t)(p - run))
                        return -1;
                /* A C1 control is one character: both of its bytes are
                 * shown, so no lone 0xc2 is left to look like a bad byte. */
                k = p[0] == 0xc2 && end - p > 1 && p[1] >= 0x80 && p[1] <= 0x9f
                        ? 2
                        : 1;
                for (size_t i = 0; i < k; i++)
                        if (fprintf(fp, "\\x%02x", p[i]) < 0)
                                return -1;
                p += k;
                run = p;
        }
        if (p > run &&
            fwrite(run, 1, (size_t)(p - run), fp) != (size_t)(p - run))
                return -1;
        return 0;
}

char *pd_term_escape_dup(const char *s) {
        char *buf   = NULL;
        size_t size = 0;
        FILE *fp;

        if (!s)
                return NULL;
        fp = pd_xalloc(open_memstream(&buf, &size));
        if (pd_term_escape(s, strlen(s), fp) || fclose(fp))
                abort();
        return buf;
}
