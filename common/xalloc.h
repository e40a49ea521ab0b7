/*
 * xalloc.h - allocation where running out of memory is fatal: the one
 * policy for code that has no error path to report it on (an event being
 * built, the reactor's own bookkeeping). The failure is logged, then the
 * process aborts.
 */
#ifndef PD_XALLOC_H
#define PD_XALLOC_H

#include <stddef.h>

/* Returns p, or logs and aborts if it is NULL (wrap an allocation). */
void *pd_xalloc(void *p);

/* calloc that never returns NULL (n 0 is taken as 1). */
void *pd_xcalloc(size_t n, size_t size);

/* strdup that never returns NULL; NULL is copied as "". */
char *pd_xstrdup(const char *s);

#endif
