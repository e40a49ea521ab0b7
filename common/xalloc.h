/*
 * xalloc.h - the one out-of-memory policy: allocation never fails. Running
 * out of memory is logged and the process aborts, so no caller checks for
 * NULL and no function grows an "out of memory" error path that no test can
 * reach. Every allocation in the programs goes through these; a plugin's
 * memory is its own business (include/postdeploy/plugin.h).
 */
#ifndef PD_XALLOC_H
#define PD_XALLOC_H

#include <stddef.h>

/* Returns p, or logs and aborts if it is NULL (wrap an allocation made by a
 * library call, e.g. a strdup of our own). */
void *pd_xalloc(void *p);

/* malloc that never returns NULL (size 0 is taken as 1). */
void *pd_xmalloc(size_t size);

/* calloc that never returns NULL (n 0 is taken as 1); aborts if n * size
 * overflows. */
void *pd_xcalloc(size_t n, size_t size);

/* realloc that never returns NULL (size 0 is taken as 1). */
void *pd_xrealloc(void *p, size_t size);

/* strdup that never returns NULL; NULL is copied as "". */
char *pd_xstrdup(const char *s);

/* strndup that never returns NULL: at most n bytes of s, NUL-terminated. */
char *pd_xstrndup(const char *s, size_t n);

/*
 * The growable array: makes room for at least `need` items of `size` bytes
 * in items (*capp of them now), doubling the capacity (from 8) so n appends
 * cost O(n). Returns the array, moved perhaps: assign it back, e.g.
 *   v = pd_xgrow(v, &cap, cnt + 1, sizeof(*v));
 * Items past the old capacity are not initialised. Aborts on overflow.
 */
void *pd_xgrow(void *items, size_t *capp, size_t need, size_t size);

#endif
