/*
 * random.h - random bytes and random ids. Running out of randomness is
 * fatal (abort): there is no sensible way on without it, since event ids
 * must not collide.
 */
#ifndef PD_RANDOM_H
#define PD_RANDOM_H

#include <stddef.h>
#include <stddef.h>

/* Fills buf with n random bytes from the kernel; aborts if it cannot. */
void pd_random(void *buf, size_t n);

/* A random (version 4) UUID, lowercase, into buf[37]. */
void pd_uuid4(char *buf);

#endif
