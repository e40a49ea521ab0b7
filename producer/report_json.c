/*
 * report_json.c - the report's JSON printer: the rows of the model
 * (report_model.h) as `report --format json` prints them and `serve`
 * answers them. Every write is checked: a failed one ends the output and
 * is returned to the caller.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "producer/cli.h"
#include "producer/report_model.h"

/*
 * The JSON report is written here rather than through jansson: building and
 * dumping a jansson object per row takes 440 ms for 100,000 rows (335 ms
 * without re-indenting it into the array) where this takes 70 ms, for the
 * same bytes (measured against `cmp`, docs/RELIABILITY.md). Strings are escaped
 * as jansson's JSON_ENSURE_ASCII does
 * (\uXXXX in upper case, surrogate pairs); the layout is an array indented
 * by 2, each row's members by 4 (as Python's json.dumps(indent=2) writes).
 */
typedef struct pd_out_s {
        FILE *fp; /* stdout for `report`, a page's buffer for `serve` */
        size_t len;
        int failed; /* a write failed: the rest is not worth formatting */
        char buf[64 * 1024];
} pd_out_t;

/* Writes n bytes of s to out->fp, unless a write failed already. */
/* Notes that a write to out->fp failed, with errno set by it. */
static void out_failed(pd_out_t *out) {
        if (out->fp == stdout)
                pd_cli_out_error(errno);
        out->failed = 1;
}

static void out_write(pd_out_t *out, const char *s, size_t n) {
        if (out->failed || !n)
                return;
        if (fwrite(s, 1, n, out->fp) != n)
                out_failed(out);
}

static void out_flush(pd_out_t *out) {
        out_write(out, out->buf, out->len);
        out->len = 0;
}

/* Appends n bytes of s. */
static void out_add(pd_out_t *out, const char *s, size_t n) {
        if (out->failed)
                return;
        if (out->len + n > sizeof(out->buf))
                out_flush(out);
        if (n > sizeof(out->buf)) {
                out_write(out, s, n);
                return;
        }
        memcpy(out->buf + out->len, s, n);
        out->len += n;
}

static void out_cstr(pd_out_t *out, const char *s) {
        out_add(out, s, strlen(s));
}

/* The code point of the UTF-8 sequence at s, and its length in *lenp.
 * Strings here are valid UTF-8 (the decoder checks them); a byte that
 * starts no sequence stands for itself. */
static uint32_t utf8_next(const unsigned char *s, size_t *lenp) {
        size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
        uint32_t cp = n == 1 ? s[0] : s[0] & (0x3F >> (n - 1));

        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80) {
                        *lenp = 1;
                        return s[0];
                }
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        *lenp = n;
        return cp;
}

/* Appends s as a JSON string, escaped as jansson escapes with
 * JSON_ENSURE_ASCII: \\ \" \b \f \n \r \t, other control characters and
 * everything past ASCII as \uXXXX (a surrogate pair past the BMP). */
static void out_str(pd_out_t *out, const char *s) {
        const unsigned char *p = (const unsigned char *)s, *run = p;
        char seq[16];

        out_add(out, "\"", 1);
        while (*p) {
                const char *text = seq;
                size_t len;
                uint32_t cp;

                if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
                        p++;
                        continue;
                }
                out_add(out, (const char *)run, (size_t)(p - run));
                cp = utf8_next(p, &len);
                switch (cp) {
                case '\\':
                        text = "\\\\";
                        break;
                case '"':
                        text = "\\\"";
                        break;
                case '\b':
                        text = "\\b";
                        break;
                case '\f':
                        text = "\\f";
                        break;
                case '\n':
                        text = "\\n";
                        break;
                case '\r':
                        text = "\\r";
                        break;
                case '\t':
                        text = "\\t";
                        break;
                default:
                        if (cp < 0x10000)
                                snprintf(seq, sizeof(seq), "\\u%04X",
                                         (unsigned)cp);
                        else
                                snprintf(
                                    seq, sizeof(seq), "\\u%04X\\u%04X",
                                    (unsigned)(0xD800 | ((cp - 0x10000) >> 10)),
                                    (unsigned)(0xDC00 |
                                               ((cp - 0x10000) & 0x3FF)));
                }
                out_cstr(out, text);
                p += len;
                run = p;
        }
        out_add(out, (const char *)run, (size_t)(p - run));
        out_add(out, "\"", 1);
}

/* What a member of a row holds. */
typedef enum pd_val_e {
        PD_VAL_NULL,
        PD_VAL_STR, /* jansson leaves out a member whose string is NULL */
        PD_VAL_INT,
        PD_VAL_BOOL,
        PD_VAL_TIME, /* ms since the epoch; null if <= 0 */
} pd_val_t;

/* Appends member `name` of a row object; *cntp counts those written. */
static void out_member(pd_out_t *out, size_t *cntp, const char *name,
                       pd_val_t type, const char *str, int64_t num) {
        char buf[40];

        if (type == PD_VAL_TIME && num <= 0)
                type = PD_VAL_NULL;
        if (type == PD_VAL_STR && !str)
                return;
        out_cstr(out, (*cntp)++ ? ",\n    \"" : "{\n    \"");
        out_cstr(out, name);
        out_add(out, "\": ", 3);
        switch (type) {
        case PD_VAL_NULL:
                out_add(out, "null", 4);
                break;
        case PD_VAL_STR:
                out_str(out, str);
                break;
        case PD_VAL_INT:
                snprintf(buf, sizeof(buf), "%" PRId64, num);
                out_cstr(out, buf);
                break;
        case PD_VAL_BOOL:
                out_cstr(out, num ? "true" : "false");
                break;
        case PD_VAL_TIME:
                pd_time_format(num, buf, sizeof(buf));
                out_str(out, buf);
                break;
        }
}

static void report_json_row(pd_out_t *out, const pd_row_t *row,
                            const char *paused_by,
                            const pd_result_progress_t *pg) {
        const pd_result_t *res = row->res;
        int finished           = res && res->type == PD_EVT_ACTION_FINISHED;
        int has_exit           = finished && res->has_exit_code;
        int has_tail    = finished && res->output_tail && *res->output_tail;
        int has_release = res && res->release && *res->release;
        size_t cnt      = 0;

        out_member(out, &cnt, "tenant", PD_VAL_STR, row->tenant, 0);
        out_member(out, &cnt, "action", PD_VAL_STR, row->action, 0);
        out_member(out, &cnt, "auto", row->reg ? PD_VAL_BOOL : PD_VAL_NULL,
                   NULL, row->reg && row->reg->is_auto);
        out_member(out, &cnt, "policy", row->reg ? PD_VAL_STR : PD_VAL_NULL,
                   row->reg ? row->reg->policy : NULL, 0);
        out_member(out, &cnt, "state", PD_VAL_STR, pd_state_name(row->state),
                   0);
        /* Only on a paused tenant's rows: who holds its new runs. */
        if (paused_by)
                out_member(out, &cnt, "paused_by", PD_VAL_STR, paused_by, 0);
        /* Only on a running row whose run said how far it has got. */
        if (pg) {
                out_member(out, &cnt, "progress_done", PD_VAL_INT, NULL,
                           pg->done);
                out_member(out, &cnt, "progress_total", PD_VAL_INT, NULL,
                           pg->total);
                out_member(out, &cnt, "progress_at", PD_VAL_TIME, NULL, pg->at);
        }
        /* null whenever there is no release, never "": a skip or a reset
         * may carry none, like a never-run action. */
        out_member(out, &cnt, "release", has_release ? PD_VAL_STR : PD_VAL_NULL,
                   has_release ? res->release : NULL, 0);
        out_member(out, &cnt, "attempt", res ? PD_VAL_INT : PD_VAL_NULL, NULL,
                   res ? res->attempt : 0);
        out_member(out, &cnt, "exit_code", has_exit ? PD_VAL_INT : PD_VAL_NULL,
                   NULL, has_exit ? res->exit_code : 0);
        out_member(out, &cnt, "error",
                   finished && res->error ? PD_VAL_STR : PD_VAL_NULL,
                   finished ? res->error : NULL, 0);
        out_member(out, &cnt, "output_tail",
                   has_tail ? PD_VAL_STR : PD_VAL_NULL,
                   has_tail ? res->output_tail : NULL, 0);
        out_member(out, &cnt, "duration_ms",
                   finished ? PD_VAL_INT : PD_VAL_NULL, NULL,
                   finished ? res->duration_ms : 0);
        out_member(out, &cnt, "started_at", PD_VAL_TIME, NULL,
                   res ? res->started_at : 0);
        out_member(out, &cnt, "finished_at", PD_VAL_TIME, NULL,
                   finished ? res->finished_at : 0);
        out_cstr(out, cnt ? "\n  }" : "{}");
}

/* See report.h. The buffer is static: 64 KB is not for the stack. */
int pd_report_json(pd_report_t *rp, size_t from, size_t to, FILE *fp) {
        static pd_out_t out;

        out.fp     = fp;
        out.failed = 0;
        out.len    = 0;
        out_add(&out, "[", 1);
        for (size_t i = from; i < to; i++) {
                out_cstr(&out, i > from ? ",\n  " : "\n  ");
                report_json_row(&out, &rp->rows[i],
                                pd_report_paused_by(rp, rp->rows[i].tenant),
                                pd_report_progress(rp, &rp->rows[i]));
        }
        out_cstr(&out, to > from ? "\n]\n" : "]\n");
        out_flush(&out);
        /* What fits in fp's own buffer fails only when it is flushed: a
         * report smaller than that on a full disk would pass as written. */
        if (!out.failed && fflush(fp))
                out_failed(&out);
        return out.failed;
}

int pd_report_json_write(pd_report_t *rp, const char *tenant, FILE *fp) {
        size_t from = 0, to, t;
        int ret     = -1;

        pd_report_build(rp);
        to = rp->row_cnt;
        if (tenant) {
                for (t = 0; t < rp->tenants.cnt; t++)
                        if (!strcmp(rp->tenants.v[t], tenant))
                                break;
                if (t == rp->tenants.cnt)
                        goto done;
                from = rp->tenant_rows[t];
                to   = rp->tenant_rows[t + 1];
        }
        ret = pd_report_json(rp, from, to, fp);

done:
        pd_report_unbuild(rp);
        return ret;
}
