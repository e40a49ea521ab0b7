/*
 * log.c - see log.h. One fprintf per line under stdio's own lock, so lines
 * from librdkafka's threads and ours never interleave.
 */
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int pd_log_level = PD_LOG_INFO;
static const char *pd_log_prog = "postdeploy";

void pd_log_set_program(const char *prog) {
        pd_log_prog = prog;
}

static const char *pd_log_level_name(int lvl) {
        if (lvl <= PD_LOG_ERROR)
                return "ERROR";
        if (lvl <= PD_LOG_WARN)
                return "WARN";
        if (lvl <= PD_LOG_INFO)
                return "INFO";
        return "DEBUG";
}

int pd_log_level_parse(const char *s) {
        static const struct {
                const char *name;
                int lvl;
        } names[] = {{"error", PD_LOG_ERROR},
                     {"warn", PD_LOG_WARN},
                     {"info", PD_LOG_INFO},
                     {"debug", PD_LOG_DEBUG}};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (!strcasecmp(s, names[i].name))
                        return names[i].lvl;
        return -1;
}

void pd_log_write(int lvl, const char *fmt, ...) {
        char msg[2048];
        char ts[32];
        struct timespec now;
        struct tm tm;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", ts,
                now.tv_nsec / 1000000, pd_log_level_name(lvl), pd_log_prog,
                msg);
}

void pd_log_rdkafka_cb(const struct rd_kafka_s *rk, int level, const char *fac,
                       const char *buf) {
        (void)rk;
        pd_log(level, "kafka %s: %s", fac, buf);
}

int pd_errf(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        if (errstr && errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return -1;
}
