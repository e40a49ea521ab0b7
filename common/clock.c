/*
 * clock.c - the monotonic clock for measuring time (pd_mono_ms), and
 * wall-clock time in milliseconds and its RFC 3339 form, the
 * ce_time of CloudEvents: written by schemas/event.c when it stamps an event
 * and read by common/sign.c when it checks an event's age. One formatter and
 * one parser, so the two cannot disagree about what a ce_time is.
 */
#include "common/clock.h"

#include <stdio.h>
#include <time.h>

int64_t pd_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pd_mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pd_time_format(int64_t ms, char *buf, size_t size) {
        int64_t sec = ms / 1000, frac = ms % 1000;
        time_t t;
        struct tm tm;
        char day[32];

        if (!size)
                return;
        /* Floor division, so that times before 1970 read correctly. */
        if (frac < 0) {
                frac += 1000;
                sec--;
        }
        t = (time_t)sec;
        if (!gmtime_r(&t, &tm) ||
            !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm)) {
                buf[0] = '\0';
                return;
        }
        snprintf(buf, size, "%s.%03dZ", day, (int)frac);
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (the days_from_civil
 * of Howard Hinnant's date algorithms): timegm() is neither C11 nor
 * POSIX. */
static int64_t clock_days(int64_t y, int m, int d) {
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *pp, then the separator sep unless it is 0.
 * Returns the number, or -1 if the text is not that. */
static int clock_field(const char **pp, const char *end, int n, char sep) {
        int v = 0;

        for (; n; n--, (*pp)++) {
                if (*pp >= end || **pp < '0' || **pp > '9')
                        return -1;
                v = v * 10 + (**pp - '0');
        }
        if (sep && (*pp >= end || *(*pp)++ != sep))
                return -1;
        return v;
}

/* Reads an RFC 3339 date-time (the ce_time of CloudEvents) into
 * milliseconds since the epoch. Digits past the millisecond are read and
 * dropped. Returns 0, or -1 if s is not one. */
int pd_time_parse(const char *s, size_t len, int64_t *msp) {
        static const int mdays[] = {31, 29, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        const char *p = s, *end = s + len;
        int y, mo, d, h, mi, sec, ms = 0, scale = 100, off = 0;

        if ((y = clock_field(&p, end, 4, '-')) < 0 ||
            (mo = clock_field(&p, end, 2, '-')) < 1 || mo > 12 ||
            (d = clock_field(&p, end, 2, 0)) < 1 || d > mdays[mo - 1] ||
            (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) ||
            p >= end || (*p != 'T' && *p != 't') ||
            (p++, (h = clock_field(&p, end, 2, ':')) < 0) || h > 23 ||
            (mi = clock_field(&p, end, 2, ':')) < 0 || mi > 59 ||
            /* 60: a leap second. */
            (sec = clock_field(&p, end, 2, 0)) < 0 || sec > 60)
                return -1;
        if (p < end && *p == '.') {
                if (++p >= end || *p < '0' || *p > '9')
                        return -1;
                for (; p < end && *p >= '0' && *p <= '9'; p++, scale /= 10)
                        ms += (*p - '0') * scale;
        }
        if (p < end && (*p == 'Z' || *p == 'z')) {
                p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
                int sign = *p++ == '-' ? -1 : 1, oh, om;

                if ((oh = clock_field(&p, end, 2, ':')) < 0 || oh > 23 ||
                    (om = clock_field(&p, end, 2, 0)) < 0 || om > 59)
                        return -1;
                off = sign * (oh * 60 + om);
        } else {
                return -1; /* RFC 3339 requires the offset */
        }
        if (p != end)
                return -1;
        *msp = ((clock_days(y, mo, d) * 24 + h) * 60 + mi - off) * 60000 +
               (int64_t)sec * 1000 + ms;
        return 0;
}
