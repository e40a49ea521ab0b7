/*
 * log.c - see log.h. One fprintf per line under stdio's own lock, so lines
 * from librdkafka's threads and ours never interleave.
 */
#include "common/log.h"

#include <pthread.h>
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

/* The newest error librdkafka logged, for a one-line message that says
 * why a broker did not answer when its log lines are not shown. */
static pthread_mutex_t pd_log_rdkafka_lock = PTHREAD_MUTEX_INITIALIZER;
static char pd_log_rdkafka_err[512];

void pd_log_rdkafka_cb(const struct rd_kafka_s *rk, int level, const char *fac,
                       const char *buf) {
        (void)rk;
        pd_log(level, "kafka %s: %s", fac, buf);
        if (level > PD_LOG_ERROR)
                return;
        /* A FAIL line says what went wrong with a connection ("Connection
         * refused", "Authentication failed"); the ERROR line that follows
         * only counts brokers down, so it never replaces one. */
        pthread_mutex_lock(&pd_log_rdkafka_lock);
        if (!strcmp(fac, "FAIL") || !*pd_log_rdkafka_err)
                snprintf(pd_log_rdkafka_err, sizeof(pd_log_rdkafka_err), "%s",
                         buf);
        pthread_mutex_unlock(&pd_log_rdkafka_lock);
}

const char *pd_log_rdkafka_last(char *buf, size_t size) {
        const char *s;
        size_t n;

        pthread_mutex_lock(&pd_log_rdkafka_lock);
        s = pd_log_rdkafka_err;
        /* "[thrd:HOST/bootstrap]: HOST/bootstrap: Connect to ... failed:
         * Connection refused (after 0ms in state CONNECT)": the thread and
         * the state say nothing to a user. */
        if (!strncmp(s, "[thrd:", 6) && strstr(s, "]: "))
                s = strstr(s, "]: ") + 3;
        /* "HOST:PORT/bootstrap: " (or ".../ID: "): the message says
         * which brokers already. */
        if (strstr(s, ": ") && memchr(s, '/', (size_t)(strstr(s, ": ") - s)) &&
            !memchr(s, ' ', (size_t)(strstr(s, ": ") - s)))
                s = strstr(s, ": ") + 2;
        n = strlen(s);
        if (strstr(s, " (after "))
                n = (size_t)(strstr(s, " (after ") - s);
        snprintf(buf, size, "%.*s", (int)n, s);
        pthread_mutex_unlock(&pd_log_rdkafka_lock);
        return buf;
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
