/*
 * random.h - random bytes and random ids. Running out of randomness is
 * fatal (abort): there is no sensible way on without it, since event ids
 * must not collide.
 */
#ifndef PD_RANDOM_H
#define PD_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes from the kernel; aborts if it cannot. */
void pd_random(void *buf, size_t n);

/* A random number in 1..2^63-1, from the pool event ids come from: a name
 * that never comes back (a run's at the supervisor). Any thread. */
int64_t pd_random_id63(void);

/* A random (version 4) UUID, lowercase, into buf[37]. */
void pd_uuid4(char *buf);

#endif
