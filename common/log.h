/*
 * log.h - the one log sink of postdeploy.
 *
 * Diagnostics go to stderr, data to stdout. pd_log() checks the level before
 * it formats anything, so a debug line in a hot path costs one comparison when
 * debug is off. librdkafka's own logs are routed here too (pd_log_rdkafka_cb),
 * so an operator reads one stream.
 */
#ifndef PD_LOG_H
#define PD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Syslog numbering, the same librdkafka uses. */
typedef enum pd_log_level_e {
        PD_LOG_ERROR = 3,
        PD_LOG_WARN  = 4,
        PD_LOG_INFO  = 6,
        PD_LOG_DEBUG = 7,
} pd_log_level_t;

/* The current level; lines above it are dropped unformatted. */
extern int pd_log_level;

#define pd_log(lvl, ...)                                                       \
        do {                                                                   \
                if ((int)(lvl) <= pd_log_level)                                \
                        pd_log_write((lvl), __VA_ARGS__);                      \
        } while (0)

/* Writes one line "TIME LEVEL [prog] message" to stderr (or, with
 * PD_LOG_FORMAT_JSON, one JSON object). Thread-safe. */
void pd_log_write(int lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* How lines are written: text for people (the default), or one JSON object
 * per line for Loki or Elasticsearch to index. */
typedef enum pd_log_format_e {
        PD_LOG_FORMAT_TEXT,
        PD_LOG_FORMAT_JSON,
} pd_log_format_t;

/* The current format, for every line of this process. */
extern int pd_log_format;

/* Parses "text|json"; returns -1 if unknown. */
int pd_log_format_parse(const char *s);

/* "text" or "json", as pd_log_format_parse reads it. */
const char *pd_log_format_name(int fmt);

/*
 * What a line is about, for a JSON line's fields: a NULL string, attempt 0
 * or run_id 0 (neither starts below 1) and has_duration 0 leave a field
 * out. Text lines do not show them: their message says it already.
 */
typedef struct pd_log_fields_s {
        const char *tenant;
        const char *action;
        const char *event_id;
        const char *status;
        const char *reason; /* why a record was refused, or failed */
        int attempt;
        int has_duration;
        int64_t duration_ms;
        int64_t run_id;
        /* An INFO line written many times a second (one per attempt) that
         * may wait in memory for pd_log_flush, when pd_log_defer is on:
         * one write for many lines. A WARN or ERROR line never waits. */
        int deferrable;
} pd_log_fields_t;

/* pd_log with fields (NULL for none); the level is checked first, too. */
#define pd_logf(lvl, fields, ...)                                              \
        do {                                                                   \
                if ((int)(lvl) <= pd_log_level)                                \
                        pd_log_write_fields((lvl), (fields), __VA_ARGS__);     \
        } while (0)

void pd_log_write_fields(int lvl, const pd_log_fields_t *fields,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Deferral of deferrable lines: on (1) by each caller that flushes, off (0)
 * by each when it stops flushing; on while any caller has it on. While on, such
 * a line waits in a buffer of this process until pd_log_flush, until the buffer
 * is full, or until any other line is written (which goes after it, in order).
 * Whoever turns it on calls pd_log_flush at least every few milliseconds while
 * lines come (the reactor: its committer thread, every tick); turning it on
 * also flushes at exit(). A process killed meanwhile loses what waited.
 */
void pd_log_defer(int on);

/* Writes the lines that wait, in the order they came. Thread-safe. */
void pd_log_flush(void);

/*
 * Formats one line, newline included, into buf as the current format says,
 * truncated to fit (a JSON line stays a whole object). Returns its length.
 * For tests; pd_log_write_fields writes what this formats.
 */
size_t pd_log_format_line(char *buf, size_t size, int lvl,
                          const pd_log_fields_t *fields, const char *msg);

/*
 * Formats an error message into errstr (nothing if errstr is NULL or
 * errstr_size 0) and returns -1, so an error path reads
 * `return pd_errf(errstr, errstr_size, "...", ...);`.
 */
int pd_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the program name shown in every line (not copied: pass a literal). */
void pd_log_set_program(const char *prog);

/* Parses "error|warn|info|debug" into a level; returns -1 if unknown. */
int pd_log_level_parse(const char *s);

/* A librdkafka log_cb (rd_kafka_conf_set_log_cb) that forwards to pd_log.
 * Runs on librdkafka's internal threads. */
struct rd_kafka_s;
void pd_log_rdkafka_cb(const struct rd_kafka_s *rk, int level, const char *fac,
                       const char *buf);

/* The newest error pd_log_rdkafka_cb saw, whether or not the level let it
 * be printed, without librdkafka's thread and state decorations, into buf
 * ("" if none). Returns buf. Thread-safe. */
const char *pd_log_rdkafka_last(char *buf, size_t size);

#endif
