/*
 * map.h - a hash map from byte-string keys to pointers: the newest result
 * of each "tenant/action" (the CLI's report and --wait), and anything else
 * that looks a value up by name.
 *
 * FNV-1a over the key, open addressing with linear probing, at most half
 * full (it doubles before an insert would pass that), so a lookup reads a
 * slot or two. Each entry keeps its hash, so neither a probe past another
 * key nor a rehash touches key bytes. The map owns a copy of each key; the
 * values are the caller's (pd_map_clear and pd_map_destroy can free them).
 * Not thread-safe: one owner at a time. The calls that only read
 * (pd_map_get, pd_map_count, pd_map_next) take a NULL map as an empty one,
 * so a map can be made at its first pd_map_put.
 */
#ifndef PD_MAP_H
#define PD_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pd_map_s pd_map_t;

/* An empty map. Never NULL (aborts on OOM). */
pd_map_t *pd_map_new(void);

/* Frees m and its keys, and each value with free_value unless that is
 * NULL. m NULL is fine. */
void pd_map_destroy(pd_map_t *m, void (*free_value)(void *));

/* Removes every entry (freeing values as pd_map_destroy does); m stays
 * usable and keeps its room. */
void pd_map_clear(pd_map_t *m, void (*free_value)(void *));

/* The value of the len bytes at key, or NULL if the key is absent. */
void *pd_map_get(const pd_map_t *m, const char *key, size_t len);

/*
 * The place of key's value, made (holding NULL, with a copy of the key) if
 * the key is new: the caller reads or replaces the value through it, e.g.
 *   void **vp = pd_map_put(m, key, len); free(*vp); *vp = value;
 * The place is valid until the next pd_map_put. Never fails.
 */
void **pd_map_put(pd_map_t *m, const char *key, size_t len);

/* Number of keys in m. */
size_t pd_map_count(const pd_map_t *m);

/*
 * Iterates: set *iter to 0, then each call returns 1 with the next entry's
 * value in *valuep (and its key in *keyp, *lenp when not NULL), or 0 when
 * none is left. The order is the slots', not the insertion's. Do not put
 * while iterating.
 */
int pd_map_next(const pd_map_t *m, size_t *iter, const char **keyp,
                size_t *lenp, void **valuep);

/* 64-bit FNV-1a of the len bytes at s. */
uint64_t pd_map_hash(const char *s, size_t len);

#endif
