/*
 * map.c - see map.h.
 */
#include "common/map.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Slots a map starts with once something is put: a power of two. */
#define PD_MAP_MIN_SIZE 16

typedef struct pd_map_slot_s {
        uint64_t hash;
        char *key; /* NULL: a free slot; else owned, NUL-terminated */
        size_t len;
        void *value;
} pd_map_slot_t;

struct pd_map_s {
        pd_map_slot_t *slots;
        size_t size; /* 0 or a power of two */
        size_t cnt;
};

uint64_t pd_map_hash(const char *s, size_t len) {
        uint64_t h = 14695981039346656037ull; /* the FNV offset basis */

        for (size_t i = 0; i < len; i++)
                h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
        return h;
}

pd_map_t *pd_map_new(void) {
        return pd_xcalloc(1, sizeof(pd_map_t));
}

/* The slot holding key, or the free slot where it would go. size > 0. */
static pd_map_slot_t *map_find(const pd_map_t *m, uint64_t h, const char *key,
                               size_t len) {
        size_t mask = m->size - 1, i;

        for (i = h & mask; m->slots[i].key; i = (i + 1) & mask) {
                const pd_map_slot_t *s = &m->slots[i];

                if (s->hash == h && s->len == len && !memcmp(s->key, key, len))
                        break;
        }
        return &m->slots[i];
}

/* Doubles the slots, moving every entry (no key is read: the hash is
 * kept). */
static void map_grow(pd_map_t *m) {
        pd_map_t bigger = {0};

        bigger.size  = m->size ? m->size * 2 : PD_MAP_MIN_SIZE;
        bigger.slots = pd_xcalloc(bigger.size, sizeof(*bigger.slots));
        for (size_t i = 0; i < m->size; i++) {
                const pd_map_slot_t *s = &m->slots[i];
                size_t j;

                if (!s->key)
                        continue;
                for (j = s->hash & (bigger.size - 1); bigger.slots[j].key;
                     j = (j + 1) & (bigger.size - 1))
                        ;
                bigger.slots[j] = *s;
        }
        free(m->slots);
        m->slots = bigger.slots;
        m->size  = bigger.size;
}

void *pd_map_get(const pd_map_t *m, const char *key, size_t len) {
        if (!m || !m->cnt)
                return NULL;
        return map_find(m, pd_map_hash(key, len), key, len)->value;
}

void **pd_map_put(pd_map_t *m, const char *key, size_t len) {
        uint64_t h = pd_map_hash(key, len);
        pd_map_slot_t *s;

        /* At most half full: grow before this key could pass that. */
        if (2 * (m->cnt + 1) > m->size)
                map_grow(m);
        s = map_find(m, h, key, len);
        if (!s->key) {
                s->hash = h;
                s->key  = pd_xmalloc(len + 1);
                memcpy(s->key, key, len);
                s->key[len] = '\0';
                s->len      = len;
                s->value    = NULL;
                m->cnt++;
        }
        return &s->value;
}

size_t pd_map_count(const pd_map_t *m) {
        return m ? m->cnt : 0;
}

int pd_map_next(const pd_map_t *m, size_t *iter, const char **keyp,
                size_t *lenp, void **valuep) {
        for (; m && *iter < m->size; (*iter)++) {
                const pd_map_slot_t *s = &m->slots[*iter];

                if (!s->key)
                        continue;
                if (keyp)
                        *keyp = s->key;
                if (lenp)
                        *lenp = s->len;
                *valuep = s->value;
                (*iter)++;
                return 1;
        }
        return 0;
}

void pd_map_clear(pd_map_t *m, void (*free_value)(void *)) {
        for (size_t i = 0; i < m->size; i++) {
                pd_map_slot_t *s = &m->slots[i];

                if (!s->key)
                        continue;
                if (free_value)
                        free_value(s->value);
                free(s->key);
        }
        if (m->size)
                memset(m->slots, 0, m->size * sizeof(*m->slots));
        m->cnt = 0;
}

void pd_map_destroy(pd_map_t *m, void (*free_value)(void *)) {
        if (!m)
                return;
        pd_map_clear(m, free_value);
        free(m->slots);
        free(m);
}
