/*
 * clock.h - the two clocks: wall-clock time for events (now in milliseconds
 * since the epoch, and the RFC 3339 text of ce_time both ways) and the
 * monotonic clock for measuring time.
 */
#ifndef PD_CLOCK_H
#define PD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the epoch (CLOCK_REALTIME): for what is recorded or
 * shown. */
int64_t pd_now_ms(void);

/* Milliseconds on CLOCK_MONOTONIC, which no clock change moves: for
 * deadlines, timeouts and durations. Only differences mean anything. */
int64_t pd_mono_ms(void);

/* RFC 3339 in UTC with milliseconds, "2024-05-01T12:00:00.000Z", into buf
 * (32 bytes are enough); buf is "" if ms cannot be formatted. */
void pd_time_format(int64_t ms, char *buf, size_t size);

/* Reads an RFC 3339 date-time of len bytes at s (the ce_time of
 * CloudEvents; not NUL-terminated) into milliseconds since the epoch.
 * Digits past the millisecond are read and dropped. Returns 0, or -1 if s
 * is not one. */
int pd_time_parse(const char *s, size_t len, int64_t *msp);

#endif
