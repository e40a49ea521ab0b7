/*
 * proto.h - the supervisor's wire protocol (frames,
 * described in consumer/supervisor.h), for the server and the client:
 * a growing byte buffer that frames are encoded into, a reader that
 * decodes a payload without ever reading past it, the RESULT frame both
 * sides and the outcome log share, and the few small helpers (paths,
 * min) every piece of the supervisor uses; with them, common/'s clock,
 * allocation and strerror. Private to consumer/supervisor/.
 */
#ifndef PD_SUP_PROTO_H
#define PD_SUP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "common/clock.h"
#include "common/strerror.h"
#include "common/xalloc.h"
#include "consumer/supervisor.h"

#define PD_SUP_HDR 5 /* u32 length, u8 type */

/* A growing byte buffer (appends never fail: common/xalloc.h). */
typedef struct pd_sup_buf_s {
        char *p;
        size_t len;
        size_t size;
} pd_sup_buf_t;

/* Reads a payload; any read past its end sets bad and returns zeros. */
typedef struct pd_sup_rd_s {
        const char *p;
        size_t len;
        size_t off;
        int bad;
} pd_sup_rd_t;

/* Defined in proto.c, where each says what it does. */
int64_t pd_sup_min(int64_t a, int64_t b);
const char *pd_sup_abspath(const char *path, char *buf, size_t size);
void pd_sup_buf_reserve(pd_sup_buf_t *b, size_t n);
void pd_sup_buf_put(pd_sup_buf_t *b, const void *data, size_t n);
void pd_sup_buf_le(pd_sup_buf_t *b, uint64_t v, size_t n);
void pd_sup_buf_u32(pd_sup_buf_t *b, uint32_t v);
void pd_sup_buf_i64(pd_sup_buf_t *b, int64_t v);
void pd_sup_buf_str(pd_sup_buf_t *b, const char *s);
void pd_sup_buf_strv(pd_sup_buf_t *b, char *const *v);
void pd_sup_buf_consume(pd_sup_buf_t *b, size_t n);
void pd_sup_buf_free(pd_sup_buf_t *b);
uint32_t pd_sup_le32(const void *p);
size_t pd_sup_frame_begin(pd_sup_buf_t *b, unsigned type);
int pd_sup_frame_end(pd_sup_buf_t *b, size_t at);
uint64_t pd_sup_rd_le(pd_sup_rd_t *rd, size_t n);
uint32_t pd_sup_rd_u32(pd_sup_rd_t *rd);
int64_t pd_sup_rd_i64(pd_sup_rd_t *rd);
const char *pd_sup_rd_str(pd_sup_rd_t *rd);
void pd_sup_result_put(pd_sup_buf_t *b, int64_t id, int runner_failed,
                       const pd_runner_result_t *res);
int pd_sup_result_get(pd_sup_rd_t *rd, int *runner_failed,
                      pd_runner_result_t *res);
void pd_sup_lease_error(int64_t lease_ms, char *buf, size_t size);
int pd_sup_addr(const char *dir, struct sockaddr_un *sa, char *errstr,
                size_t errstr_size);

#endif
