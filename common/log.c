/*
 * log.c - see log.h. Each line is formatted whole, text or JSON, and written
 * with one fwrite under one lock, so lines from librdkafka's threads and ours
 * never interleave; the reactor's per-attempt lines may wait to be written
 * many in one (pd_log_defer).
 */
#include "common/log.h"
#include "common/utf8.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int pd_log_level            = PD_LOG_INFO;
int pd_log_format           = PD_LOG_FORMAT_TEXT;
static const char *log_prog = "postdeploy";

void pd_log_set_program(const char *prog) {
        log_prog = prog;
}

static const char *log_level_name(int lvl) {
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

int pd_log_format_parse(const char *s) {
        if (!strcasecmp(s, "text"))
                return PD_LOG_FORMAT_TEXT;
        if (!strcasecmp(s, "json"))
                return PD_LOG_FORMAT_JSON;
        return -1;
}

const char *pd_log_format_name(int fmt) {
        return fmt == PD_LOG_FORMAT_JSON ? "json" : "text";
}

/*
 * A JSON line being built in a fixed buffer. PD_LOG_JSON_TAIL bytes stay
 * free for what closes the line (a string's quote, '}', '\n', NUL), so a
 * line cut short is still one whole object: a log shipper drops a line it
 * cannot parse, and a long message is better cut than lost.
 */
#define PD_LOG_JSON_TAIL 4

typedef struct pd_log_json_s {
        char *buf;
        size_t size, len;
        int full; /* something did not fit: what follows is left out */
} pd_log_json_t;

static int log_json_fits(pd_log_json_t *j, size_t n) {
        if (!j->full && j->len + n + PD_LOG_JSON_TAIL <= j->size)
                return 1;
        j->full = 1;
        return 0;
}

static void log_json_raw(pd_log_json_t *j, const char *s, size_t n) {
        if (!log_json_fits(j, n))
                return;
        memcpy(j->buf + j->len, s, n);
        j->len += n;
}

/* Appends s as a JSON string; bytes that are not UTF-8 become U+FFFD. Cut
 * short at a character, never inside one, if it does not fit. */
static void log_json_str(pd_log_json_t *j, const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        size_t n               = strlen(s);
        char esc[8];

        if (!log_json_fits(j, 2))
                return;
        j->buf[j->len++] = '"';
        while (n) {
                const char *unit = esc;
                size_t ulen = 2, adv = 1;

                switch (*p) {
                case '"':
                        esc[0] = '\\';
                        esc[1] = '"';
                        break;
                case '\\':
                        esc[0] = '\\';
                        esc[1] = '\\';
                        break;
                case '\n':
                        esc[0] = '\\';
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[0] = '\\';
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[0] = '\\';
                        esc[1] = 't';
                        break;
                default:
                        if (*p < 0x20) {
                                ulen = (size_t)snprintf(esc, sizeof(esc),
                                                        "\\u%04x", *p);
                        } else if (*p < 0x80) {
                                unit = (const char *)p;
                                ulen = 1;
                        } else if ((adv = pd_utf8_seq(p, n))) {
                                /* A log shipper refuses a line that is
                                 * not UTF-8; an action's error or a
                                 * hostile event can hold any byte. */
                                unit = (const char *)p;
                                ulen = adv;
                        } else {
                                unit = "\\ufffd";
                                ulen = 6;
                                adv  = 1;
                        }
                }
                /* The closing quote has its byte in the tail. */
                if (j->len + ulen + PD_LOG_JSON_TAIL > j->size) {
                        j->full = 1;
                        break;
                }
                memcpy(j->buf + j->len, unit, ulen);
                j->len += ulen;
                p += adv;
                n -= adv;
        }
        j->buf[j->len++] = '"';
}

/* Appends ,"name":"value" if all of it but a long value fits. */
static void log_json_field(pd_log_json_t *j, const char *name,
                           const char *value) {
        char key[32];
        int n = snprintf(key, sizeof(key), ",\"%s\":", name);

        if (!value || !log_json_fits(j, (size_t)n + 2))
                return;
        log_json_raw(j, key, (size_t)n);
        log_json_str(j, value);
}

static void log_json_int(pd_log_json_t *j, const char *name, int64_t v) {
        char f[64];
        int n = snprintf(f, sizeof(f), ",\"%s\":%" PRId64, name, v);

        log_json_raw(j, f, (size_t)n);
}

static size_t log_json_line(char *buf, size_t size, const char *ts, int lvl,
                            const pd_log_fields_t *f, const char *msg) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        pd_log_json_t j                  = {buf, size, 0, 0};

        assert(size > 64);
        log_json_raw(&j, "{\"time\":", 8);
        log_json_str(&j, ts);
        log_json_field(&j, "level",
                       names[lvl <= PD_LOG_ERROR  ? 0
                             : lvl <= PD_LOG_WARN ? 1
                             : lvl <= PD_LOG_INFO ? 2
                                                  : 3]);
        log_json_field(&j, "program", log_prog);
        log_json_field(&j, "message", msg);
        if (f) {
                log_json_field(&j, "tenant", f->tenant);
                log_json_field(&j, "action", f->action);
                log_json_field(&j, "event_id", f->event_id);
                if (f->attempt > 0)
                        log_json_int(&j, "attempt", f->attempt);
                log_json_field(&j, "status", f->status);
                if (f->has_duration)
                        log_json_int(&j, "duration_ms", f->duration_ms);
                if (f->run_id > 0)
                        log_json_int(&j, "run_id", f->run_id);
                log_json_field(&j, "reason", f->reason);
        }
        /* The tail kept room for these. */
        j.buf[j.len++] = '}';
        j.buf[j.len++] = '\n';
        j.buf[j.len]   = '\0';
        return j.len;
}

size_t pd_log_format_line(char *buf, size_t size, int lvl,
                          const pd_log_fields_t *fields, const char *msg) {
        char ts[48], date[32];
        struct timespec now;
        struct tm tm;
        int n;

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts, sizeof(ts), "%s.%03ldZ", date, now.tv_nsec / 1000000);
        if (pd_log_format == PD_LOG_FORMAT_JSON)
                return log_json_line(buf, size, ts, lvl, fields, msg);
        n = snprintf(buf, size, "%s %-5s [%s] %s\n", ts, log_level_name(lvl),
                     log_prog, msg);
        if (n < 0)
                return 0;
        if ((size_t)n >= size) { /* cut short: it still ends the line */
                buf[size - 2] = '\n';
                return size - 1;
        }
        return (size_t)n;
}

/* Deferred lines (pd_log_defer): a write per attempt was 4% of the
 * reactor's CPU per in-process action. Whole lines only, in order; every
 * write, deferred or not, happens under log_buf_lock, so a line never
 * overtakes one that waits. */
#define PD_LOG_BUF_SIZE (64 * 1024)
static pthread_mutex_t log_buf_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[PD_LOG_BUF_SIZE];
static size_t log_buf_len;
static int log_deferring;

/* Writes what waits (log_buf_lock held). */
static void log_buf_flush(void) {
        if (log_buf_len)
                fwrite(log_buf, 1, log_buf_len, stderr);
        log_buf_len = 0;
}

void pd_log_flush(void) {
        pthread_mutex_lock(&log_buf_lock);
        log_buf_flush();
        pthread_mutex_unlock(&log_buf_lock);
}

void pd_log_defer(int on) {
        static int at_exit;

        pthread_mutex_lock(&log_buf_lock);
        log_deferring += on ? 1 : -1;
        if (!on)
                log_buf_flush();
        if (on && !at_exit++)
                atexit(pd_log_flush);
        pthread_mutex_unlock(&log_buf_lock);
}

static void log_vwrite(int lvl, const pd_log_fields_t *fields, const char *fmt,
                       va_list ap) {
        /* Every byte of msg may take 6 escaped (\u001f), plus the fields. */
        char msg[2048], line[16384];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = pd_log_format_line(line, sizeof(line), lvl, fields, msg);
        pthread_mutex_lock(&log_buf_lock);
        if (log_deferring > 0 && fields && fields->deferrable &&
            lvl >= PD_LOG_INFO) {
                if (log_buf_len + n > sizeof(log_buf))
                        log_buf_flush();
                memcpy(log_buf + log_buf_len, line, n);
                log_buf_len += n;
        } else {
                /* One write per line, so lines from librdkafka's threads
                 * and ours never interleave; what waits goes first. */
                log_buf_flush();
                fwrite(line, 1, n, stderr);
        }
        pthread_mutex_unlock(&log_buf_lock);
}

void pd_log_write(int lvl, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_vwrite(lvl, NULL, fmt, ap);
        va_end(ap);
}

void pd_log_write_fields(int lvl, const pd_log_fields_t *fields,
                         const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_vwrite(lvl, fields, fmt, ap);
        va_end(ap);
}

/* The newest error librdkafka logged, for a one-line message that says
 * why a broker did not answer when its log lines are not shown. */
static pthread_mutex_t log_rdkafka_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_rdkafka_err[512];

void pd_log_rdkafka_cb(const struct rd_kafka_s *rk, int level, const char *fac,
                       const char *buf) {
        (void)rk;
        pd_log(level, "kafka %s: %s", fac, buf);
        if (level > PD_LOG_ERROR)
                return;
        /* A FAIL line says what went wrong with a connection ("Connection
         * refused", "Authentication failed"); the ERROR line that follows
         * only counts brokers down, so it never replaces one. */
        pthread_mutex_lock(&log_rdkafka_lock);
        if (!strcmp(fac, "FAIL") || !*log_rdkafka_err)
                snprintf(log_rdkafka_err, sizeof(log_rdkafka_err), "%s", buf);
        pthread_mutex_unlock(&log_rdkafka_lock);
}

const char *pd_log_rdkafka_last(char *buf, size_t size) {
        const char *s;
        size_t n;

        pthread_mutex_lock(&log_rdkafka_lock);
        s = log_rdkafka_err;
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
        pthread_mutex_unlock(&log_rdkafka_lock);
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
