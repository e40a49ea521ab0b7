/*
 * utf8.h - well-formed UTF-8, the one check the event decoder (text fields
 * must be valid UTF-8) and the CLI's terminal escaping (what is printable)
 * share.
 */
#ifndef PD_UTF8_H
#define PD_UTF8_H

#include <stddef.h>

/*
 * The length of the character at s, n > 0 bytes left: 1 for ASCII (any
 * byte under 0x80, controls included), 2..4 for a well-formed UTF-8
 * sequence, 0 for a byte that starts none (a stray continuation byte, an
 * overlong form, a surrogate, a code point past U+10FFFF, or a sequence
 * cut short by the end).
 */
size_t pd_utf8_seq(const unsigned char *s, size_t n);

#endif
