/*
 * proto.c - the supervisor's wire protocol (proto.h): frame
 * encoding into a growing buffer, the payload reader, the RESULT frame,
 * the socket's address, and the small helpers the server and the client
 * share.
 */
#include "consumer/supervisor/proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t pd_sup_min(int64_t a, int64_t b) {
        return a < b ? a : b;
}

/*
 * Returns path made absolute against the working folder, in buf ("." is
 * the folder itself), or path as it is when it is absolute already or the
 * result does not fit.
 */
const char *pd_sup_abspath(const char *path, char *buf, size_t size) {
        size_t len;

        if (*path == '/' || !getcwd(buf, size))
                return path;
        len = strlen(buf);
        if (!strcmp(path, "."))
                return buf;
        if ((size_t)snprintf(buf + len, size - len, "/%s", path) >= size - len)
                return path;
        return buf;
}

/* ------------------------------------------------------------------ */
/* Frames                                                               */

/* Makes room for n more bytes. */
void pd_sup_buf_reserve(pd_sup_buf_t *b, size_t n) {
        b->p = pd_xgrow(b->p, &b->size, b->len + n, 1);
}

void pd_sup_buf_put(pd_sup_buf_t *b, const void *data, size_t n) {
        pd_sup_buf_reserve(b, n);
        memcpy(b->p + b->len, data, n);
        b->len += n;
}

void pd_sup_buf_le(pd_sup_buf_t *b, uint64_t v, size_t n) {
        unsigned char le[8];

        for (size_t i = 0; i < n; i++)
                le[i] = (unsigned char)(v >> (8 * i));
        pd_sup_buf_put(b, le, n);
}

static void sup_buf_u8(pd_sup_buf_t *b, unsigned v) {
        pd_sup_buf_le(b, v, 1);
}

void pd_sup_buf_u32(pd_sup_buf_t *b, uint32_t v) {
        pd_sup_buf_le(b, v, 4);
}

void pd_sup_buf_i64(pd_sup_buf_t *b, int64_t v) {
        pd_sup_buf_le(b, (uint64_t)v, 8);
}

void pd_sup_buf_str(pd_sup_buf_t *b, const char *s) {
        pd_sup_buf_put(b, s ? s : "", strlen(s ? s : "") + 1);
}

void pd_sup_buf_strv(pd_sup_buf_t *b, char *const *v) {
        uint32_t n = 0;

        while (v && v[n])
                n++;
        pd_sup_buf_u32(b, n);
        for (uint32_t i = 0; i < n; i++)
                pd_sup_buf_str(b, v[i]);
}

/* Drops the first n bytes. */
void pd_sup_buf_consume(pd_sup_buf_t *b, size_t n) {
        if (!n)
                return;
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
}

void pd_sup_buf_free(pd_sup_buf_t *b) {
        free(b->p);
        memset(b, 0, sizeof(*b));
}

uint32_t pd_sup_le32(const void *p) {
        const unsigned char *u = p;

        return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
               (uint32_t)u[3] << 24;
}

/* Starts a frame of type in b; pd_sup_frame_end sets its length. Returns
 * where the frame starts. */
size_t pd_sup_frame_begin(pd_sup_buf_t *b, unsigned type) {
        size_t at = b->len;

        pd_sup_buf_u32(b, 0);
        sup_buf_u8(b, type);
        return at;
}

/* Returns 0, or -1 if the frame is over PD_SUP_FRAME_MAX. */
int pd_sup_frame_end(pd_sup_buf_t *b, size_t at) {
        size_t len;

        len = b->len - at - PD_SUP_HDR;
        if (len > PD_SUP_FRAME_MAX)
                return -1;
        for (int i = 0; i < 4; i++)
                b->p[at + (size_t)i] = (char)(unsigned char)(len >> (8 * i));
        return 0;
}

static const char *sup_rd_bytes(pd_sup_rd_t *rd, size_t n) {
        const char *p = rd->p + rd->off;

        if (rd->bad || n > rd->len - rd->off) {
                rd->bad = 1;
                return NULL;
        }
        rd->off += n;
        return p;
}

uint64_t pd_sup_rd_le(pd_sup_rd_t *rd, size_t n) {
        const unsigned char *p = (const unsigned char *)sup_rd_bytes(rd, n);
        uint64_t v             = 0;

        for (size_t i = 0; p && i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static unsigned sup_rd_u8(pd_sup_rd_t *rd) {
        return (unsigned)pd_sup_rd_le(rd, 1);
}

uint32_t pd_sup_rd_u32(pd_sup_rd_t *rd) {
        return (uint32_t)pd_sup_rd_le(rd, 4);
}

static int32_t sup_rd_i32(pd_sup_rd_t *rd) {
        return (int32_t)pd_sup_rd_u32(rd);
}

int64_t pd_sup_rd_i64(pd_sup_rd_t *rd) {
        return (int64_t)pd_sup_rd_le(rd, 8);
}

/* A NUL-terminated string inside the payload, or NULL (bad set). */
const char *pd_sup_rd_str(pd_sup_rd_t *rd) {
        const char *s = rd->p + rd->off;
        const char *nul;

        if (rd->bad)
                return NULL;
        nul = memchr(s, '\0', rd->len - rd->off);
        if (!nul) {
                rd->bad = 1;
                return NULL;
        }
        rd->off += (size_t)(nul - s) + 1;
        return s;
}

/* Appends a RESULT frame for run id to b. */
void pd_sup_result_put(pd_sup_buf_t *b, int64_t id, int runner_failed,
                       const pd_runner_result_t *res) {
        size_t at = pd_sup_frame_begin(b, PD_SUP_F_RESULT);

        pd_sup_buf_i64(b, id);
        sup_buf_u8(b, runner_failed ? 1 : 0);
        sup_buf_u8(b, (unsigned)res->status);
        sup_buf_u8(b, res->has_exit_code ? 1 : 0);
        pd_sup_buf_u32(b, (uint32_t)res->exit_code);
        pd_sup_buf_u32(b, (uint32_t)res->term_signal);
        pd_sup_buf_i64(b, res->duration_ms);
        pd_sup_buf_str(b, res->error);
        pd_sup_buf_u32(b, (uint32_t)res->tail_len);
        pd_sup_buf_put(b, res->tail, res->tail_len);
        pd_sup_buf_le(b, res->output_bytes, 8);
        /* Last, so that a result an older supervisor logged without it
         * still decodes (as 0: unknown). */
        pd_sup_buf_i64(b, res->ended_at_ms);
        /* A result is a few KiB: it always fits. */
        pd_sup_frame_end(b, at);
}

/* Decodes a RESULT payload after its id. Returns 0, or -1 if malformed. */
int pd_sup_result_get(pd_sup_rd_t *rd, int *runner_failed,
                      pd_runner_result_t *res) {
        const char *error, *tail;
        unsigned status;
        uint32_t tail_len;

        memset(res, 0, sizeof(*res));
        *runner_failed     = sup_rd_u8(rd) != 0;
        status             = sup_rd_u8(rd);
        res->has_exit_code = sup_rd_u8(rd) != 0;
        res->exit_code     = sup_rd_i32(rd);
        res->term_signal   = sup_rd_i32(rd);
        res->duration_ms   = pd_sup_rd_i64(rd);
        error              = pd_sup_rd_str(rd);
        tail_len           = pd_sup_rd_u32(rd);
        if (rd->bad || tail_len > PD_OUTPUT_TAIL_MAX || status >= PD_ST__CNT)
                return -1;
        tail              = sup_rd_bytes(rd, tail_len);
        res->output_bytes = pd_sup_rd_le(rd, 8);
        if (!rd->bad && rd->off < rd->len)
                res->ended_at_ms = pd_sup_rd_i64(rd);
        if (rd->bad || rd->off != rd->len)
                return -1;
        res->status = (pd_status_t)status;
        snprintf(res->error, sizeof(res->error), "%s", error);
        memcpy(res->tail, tail, tail_len);
        res->tail[tail_len] = '\0';
        res->tail_len       = tail_len;
        return 0;
}

/* The error of a run stopped because its reactor was silent past a lease
 * of lease_ms: "reactor silent past its lease (10 s)". */
void pd_sup_lease_error(int64_t lease_ms, char *buf, size_t size) {
        if (lease_ms % 1000 == 0)
                snprintf(buf, size, "%s (%" PRId64 " s)", PD_SUP_LEASE_ERROR,
                         lease_ms / 1000);
        else
                snprintf(buf, size, "%s (%" PRId64 " ms)", PD_SUP_LEASE_ERROR,
                         lease_ms);
}

/* Where the socket of dir is. Returns 0, or -1 with errstr. */
int pd_sup_addr(const char *dir, struct sockaddr_un *sa, char *errstr,
                size_t errstr_size) {
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path),
                             "%s/supervisor.sock",
                             dir) >= sizeof(sa->sun_path)) {
                snprintf(errstr, errstr_size,
                         "state folder '%s' is too long for a Unix socket "
                         "path (at most %zu bytes)",
                         dir, sizeof(sa->sun_path) - 17);
                return -1;
        }
        return 0;
}
