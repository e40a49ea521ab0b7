/*
 * supervisor.c - command actions that outlive a crash of the reactor
 * (supervisor.h): the supervisor process, and the client the reactor's
 * workers use to reach it.
 *
 * The supervisor. One thread, the loop, owns the listening socket, every
 * connection and the table of runs; it never blocks on anything but poll().
 * Each run gets a thread of its own that calls pd_runner_run (so a command
 * runs exactly as it does in the reactor: its own process group, output
 * tail and log, timeout, cancel), then appends the outcome to the log of
 * outcomes and hands the run back to the loop through a queue and an
 * eventfd. The run threads are as many as the runs at once, that is at
 * most the reactor's workers.
 *
 * Durability. An append is in the page cache, which outlives a crash of
 * the reactor and of the supervisor: that is all the reactor's crashes
 * need, so the outcome is sent as soon as it is appended. Only a crash of
 * the machine needs the disk, and such a crash also loses every run still
 * going; so one syncer thread fdatasyncs the log for groups of outcomes,
 * off every reply, and the supervisor does not exit while idle until all
 * are synced. One log, not a file per run: creating and removing a file
 * per run cost the supervisor more CPU than the run itself (ext4 inode
 * allocation). A run that ends in the few milliseconds before the machine
 * goes down, and that the reactor has not recorded durably either, is
 * lost with it, as if it had been running: the reactor records it
 * INTERRUPTED and runs it again.
 *
 * The one race that matters: a reactor commits a run, sends START and is
 * killed; a new reactor asks STATUS of that run seconds later, while the
 * START still sits unread in the dead connection (or the dead connection
 * itself still waits in the listen backlog). Answering UNKNOWN then would
 * record INTERRUPTED for a command that is about to run. So UNKNOWN is
 * never answered straight away: the request is parked, the loop accepts
 * every pending connection and reads every connection to its end or to
 * EAGAIN, handles what it read, repeats until a pass finds nothing new,
 * and only then answers. Data a process wrote before it died is in the
 * socket by then, and Linux hands it out before it reports the end.
 *
 * The folder is held with a flock on DIR/supervisor/lock for the process's
 * lifetime, so only one supervisor serves it, and a socket found there
 * without the lock is a dead supervisor's and can be replaced. To exit when
 * idle, the supervisor unlinks its socket first (new clients then start a
 * new one, which retries until our lock is free), then accepts whatever
 * reached the backlog in between; if something did, it binds again and
 * serves on.
 *
 * The loop hardly waits for the disk: outcomes are appended by the run
 * threads and synced by the syncer; the loop appends FORGOTTEN records
 * (a write to the page cache), and rewrites the log without the forgotten
 * outcomes at start, at exit, in a quiet second once they take over
 * 1 MiB of it, and at once when they also take more than half of it. So
 * however busy, the log stays under twice what is kept, or what is kept
 * plus 1 MiB, and each rewrite is paid for by as many bytes appended
 * since the last one.
 *
 * The client sends one request at a time and reads its reply. A run whose
 * START was sent whole is from then on only waited for, never sent again,
 * whatever happens to the connection: that is what makes a run id start at
 * most once even across a supervisor that died.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, close_range, SOCK_CLOEXEC, strerrordesc_np */
#endif
#include "consumer/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

extern char **environ;

#define PD_SUP_HDR 5                     /* u32 length, u8 type */
/* DIR fits a socket path (108 bytes), so any path under it fits here. */
#define PD_SUP_PATH_MAX 256
#define PD_SUP_IDLE_DEFAULT_S 60
#define PD_SUP_CONNECT_MS 10000          /* to reach or start one */
#define PD_SUP_HANG_MS 30000             /* silent this long: hung */
#define PD_SUP_TICK_MS 100               /* how often cancel is seen */
#define PD_SUP_QUIET_MS 1000             /* then a long log is compacted */
#define PD_SUP_SYNC_DELAY_MS 10          /* outcomes gather for a sync */
/* Bytes of forgotten outcomes (and FORGOTTEN records) in the log past
 * which it is rewritten in a quiet second, or at once if they are also
 * more than half of it. */
#define PD_SUP_LOG_COMPACT (1024 * 1024)
#define PD_SUP_RECONNECTS 3              /* per request */
#define PD_SUP_READ_SIZE (64 * 1024)
/* Input kept per connection: a whole frame and one read beyond it. */
#define PD_SUP_IN_MAX (PD_SUP_HDR + PD_SUP_FRAME_MAX + PD_SUP_READ_SIZE)
/* Replies a client leaves unread before it is dropped. */
#define PD_SUP_OUT_MAX (8 * 1024 * 1024)

/* What a request handler or a wait came to, besides the PD_SUP_* states. */
enum {
        PD_SUP_PARK   = -2, /* answer UNKNOWN only once everything is read */
        PD_SUP_BROKEN = -3, /* the connection ended */
};

static int64_t pd_sup_clock_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t pd_sup_min(int64_t a, int64_t b) {
        return a < b ? a : b;
}

/* strerror() may use a static buffer; this never does. */
static const char *pd_sup_strerror(int err) {
        const char *s = strerrordesc_np(err);

        return s ? s : "Unknown error";
}

/*
 * Returns path made absolute against the working folder, in buf ("." is
 * the folder itself), or path as it is when it is absolute already or the
 * result does not fit.
 */
static const char *pd_sup_abspath(const char *path, char *buf,
                                  size_t size) {
        size_t len;

        if (*path == '/' || !getcwd(buf, size))
                return path;
        len = strlen(buf);
        if (!strcmp(path, "."))
                return buf;
        if ((size_t)snprintf(buf + len, size - len, "/%s", path) >=
            size - len)
                return path;
        return buf;
}

/* ------------------------------------------------------------------ */
/* Frames                                                               */

/* A growing byte buffer. An append that fails sets oom and the buffer is
 * then unusable, so encoders check once at the end. */
typedef struct pd_sup_buf_s {
        char *p;
        size_t len;
        size_t size;
        int oom;
} pd_sup_buf_t;

/* Makes room for n more bytes. Returns 0, or -1 (oom set). */
static int pd_sup_buf_reserve(pd_sup_buf_t *b, size_t n) {
        size_t size = b->size ? b->size : 256;
        char *p;

        if (b->oom)
                return -1;
        if (b->len + n <= b->size)
                return 0;
        while (size < b->len + n)
                size *= 2;
        p = realloc(b->p, size);
        if (!p) {
                b->oom = 1;
                return -1;
        }
        b->p    = p;
        b->size = size;
        return 0;
}

static void pd_sup_buf_put(pd_sup_buf_t *b, const void *data, size_t n) {
        if (pd_sup_buf_reserve(b, n))
                return;
        memcpy(b->p + b->len, data, n);
        b->len += n;
}

static void pd_sup_buf_le(pd_sup_buf_t *b, uint64_t v, size_t n) {
        unsigned char le[8];

        for (size_t i = 0; i < n; i++)
                le[i] = (unsigned char)(v >> (8 * i));
        pd_sup_buf_put(b, le, n);
}

static void pd_sup_buf_u8(pd_sup_buf_t *b, unsigned v) {
        pd_sup_buf_le(b, v, 1);
}

static void pd_sup_buf_u32(pd_sup_buf_t *b, uint32_t v) {
        pd_sup_buf_le(b, v, 4);
}

static void pd_sup_buf_i64(pd_sup_buf_t *b, int64_t v) {
        pd_sup_buf_le(b, (uint64_t)v, 8);
}

static void pd_sup_buf_str(pd_sup_buf_t *b, const char *s) {
        pd_sup_buf_put(b, s ? s : "", strlen(s ? s : "") + 1);
}

static void pd_sup_buf_strv(pd_sup_buf_t *b, char *const *v) {
        uint32_t n = 0;

        while (v && v[n])
                n++;
        pd_sup_buf_u32(b, n);
        for (uint32_t i = 0; i < n; i++)
                pd_sup_buf_str(b, v[i]);
}

/* Drops the first n bytes. */
static void pd_sup_buf_consume(pd_sup_buf_t *b, size_t n) {
        if (!n)
                return;
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
}

static void pd_sup_buf_free(pd_sup_buf_t *b) {
        free(b->p);
        memset(b, 0, sizeof(*b));
}

static uint32_t pd_sup_le32(const void *p) {
        const unsigned char *u = p;

        return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
               (uint32_t)u[3] << 24;
}

/* Starts a frame of type in b; pd_sup_frame_end sets its length. Returns
 * where the frame starts. */
static size_t pd_sup_frame_begin(pd_sup_buf_t *b, unsigned type) {
        size_t at = b->len;

        pd_sup_buf_u32(b, 0);
        pd_sup_buf_u8(b, type);
        return at;
}

/* Returns 0, or -1 if the frame is over PD_SUP_FRAME_MAX or b is oom. */
static int pd_sup_frame_end(pd_sup_buf_t *b, size_t at) {
        size_t len;

        if (b->oom)
                return -1;
        len = b->len - at - PD_SUP_HDR;
        if (len > PD_SUP_FRAME_MAX)
                return -1;
        for (int i = 0; i < 4; i++)
                b->p[at + (size_t)i] = (char)(unsigned char)(len >> (8 * i));
        return 0;
}

/* Reads a payload; any read past its end sets bad and returns zeros. */
typedef struct pd_sup_rd_s {
        const char *p;
        size_t len;
        size_t off;
        int bad;
} pd_sup_rd_t;

static const char *pd_sup_rd_bytes(pd_sup_rd_t *rd, size_t n) {
        const char *p = rd->p + rd->off;

        if (rd->bad || n > rd->len - rd->off) {
                rd->bad = 1;
                return NULL;
        }
        rd->off += n;
        return p;
}

static uint64_t pd_sup_rd_le(pd_sup_rd_t *rd, size_t n) {
        const unsigned char *p = (const unsigned char *)pd_sup_rd_bytes(rd, n);
        uint64_t v             = 0;

        for (size_t i = 0; p && i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static unsigned pd_sup_rd_u8(pd_sup_rd_t *rd) {
        return (unsigned)pd_sup_rd_le(rd, 1);
}

static uint32_t pd_sup_rd_u32(pd_sup_rd_t *rd) {
        return (uint32_t)pd_sup_rd_le(rd, 4);
}

static int32_t pd_sup_rd_i32(pd_sup_rd_t *rd) {
        return (int32_t)pd_sup_rd_u32(rd);
}

static int64_t pd_sup_rd_i64(pd_sup_rd_t *rd) {
        return (int64_t)pd_sup_rd_le(rd, 8);
}

/* A NUL-terminated string inside the payload, or NULL (bad set). */
static const char *pd_sup_rd_str(pd_sup_rd_t *rd) {
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
static void pd_sup_result_put(pd_sup_buf_t *b, int64_t id, int runner_failed,
                              const pd_runner_result_t *res) {
        size_t at = pd_sup_frame_begin(b, PD_SUP_F_RESULT);

        pd_sup_buf_i64(b, id);
        pd_sup_buf_u8(b, runner_failed ? 1 : 0);
        pd_sup_buf_u8(b, (unsigned)res->status);
        pd_sup_buf_u8(b, res->has_exit_code ? 1 : 0);
        pd_sup_buf_u32(b, (uint32_t)res->exit_code);
        pd_sup_buf_u32(b, (uint32_t)res->term_signal);
        pd_sup_buf_i64(b, res->duration_ms);
        pd_sup_buf_str(b, res->error);
        pd_sup_buf_u32(b, (uint32_t)res->tail_len);
        pd_sup_buf_put(b, res->tail, res->tail_len);
        pd_sup_buf_le(b, res->output_bytes, 8);
        /* A result is a few KiB: it always fits. */
        pd_sup_frame_end(b, at);
}

/* Decodes a RESULT payload after its id. Returns 0, or -1 if malformed. */
static int pd_sup_result_get(pd_sup_rd_t *rd, int *runner_failed,
                             pd_runner_result_t *res) {
        const char *error, *tail;
        unsigned status;
        uint32_t tail_len;

        memset(res, 0, sizeof(*res));
        *runner_failed     = pd_sup_rd_u8(rd) != 0;
        status             = pd_sup_rd_u8(rd);
        res->has_exit_code = pd_sup_rd_u8(rd) != 0;
        res->exit_code     = pd_sup_rd_i32(rd);
        res->term_signal   = pd_sup_rd_i32(rd);
        res->duration_ms   = pd_sup_rd_i64(rd);
        error              = pd_sup_rd_str(rd);
        tail_len           = pd_sup_rd_u32(rd);
        if (rd->bad || tail_len > PD_OUTPUT_TAIL_MAX ||
            status >= PD_ST__CNT)
                return -1;
        tail              = pd_sup_rd_bytes(rd, tail_len);
        res->output_bytes = pd_sup_rd_le(rd, 8);
        if (rd->bad || rd->off != rd->len)
                return -1;
        res->status = (pd_status_t)status;
        snprintf(res->error, sizeof(res->error), "%s", error);
        memcpy(res->tail, tail, tail_len);
        res->tail[tail_len] = '\0';
        res->tail_len       = tail_len;
        return 0;
}

/* Where the socket of dir is. Returns 0, or -1 with errstr. */
static int pd_sup_addr(const char *dir, struct sockaddr_un *sa, char *errstr,
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

/* ------------------------------------------------------------------ */
/* The supervisor: state                                                */

typedef struct pd_sup_server_s pd_sup_server_t;

/* One run, from its START until FORGET. */
typedef struct pd_sup_run_s {
        int64_t id;
        int state;          /* PD_SUP_RUNNING or PD_SUP_FINISHED */
        int saved;          /* its outcome is in the log (on disk once
                             * the syncer has synced it) */
        size_t log_len;     /* bytes of its record in the log, once saved */
        int runner_failed;  /* pd_runner_run returned -1 */
        int orphan;         /* loaded from a STARTED record: a dead
                             * supervisor's run, maybe still going */
        int pid;            /* its process (and group) once spawned, */
        uint64_t pstart;    /* ... and when that process started */
        volatile int cancel;
        pthread_t thread;
        pd_sup_server_t *srv;
        /* While it runs: the START payload, which argv and envp point
         * into, and the job made of them. */
        char *start;
        char **argv;
        char **envp;
        pd_runner_job_t job;
        pd_runner_result_t res; /* set by its thread, read after the join */
        struct pd_sup_run_s *done_next;
} pd_sup_run_t;

/* One client connection. */
typedef struct pd_sup_conn_s {
        int fd;
        pd_sup_buf_t in;    /* bytes read, not yet handled */
        pd_sup_buf_t out;   /* replies not yet written */
        int64_t waiting;    /* run whose RESULT this connection awaits */
        int has_waiting;
        int eof;            /* the peer sent its last byte */
        int hup;            /* ... and is gone (poll said so) */
        int closing;        /* refused: close once out is written */
        int dead;           /* close now */
} pd_sup_conn_t;

struct pd_sup_server_s {
        char *dir;
        char results[128];   /* DIR/supervisor (DIR < 108 bytes) */
        struct sockaddr_un sa;
        int64_t idle_ms;
        int lock_fd;         /* flock held for the process's lifetime */
        int listen_fd;       /* -1 once stopping */
        int results_fd;      /* the folder, for fsync */
        unsigned umask;      /* of commands whose START names none: the
                              * one the supervisor was started with */
        int event_fd;        /* run threads -> loop */
        int signal_fd;
        pd_sup_conn_t **conns;
        size_t conn_cnt;
        pd_sup_run_t **runs;
        size_t run_cnt;
        size_t running;
        int stopping;
        pthread_mutex_t lock;  /* guards done */
        pd_sup_run_t *done;    /* runs whose thread has finished */
        /* The outcome log, DIR/supervisor/outcomes (pd_sup_log_write),
         * and what the syncer (pd_sup_syncer_main) works from; guarded by
         * log_lock. Counts are of outcomes appended. */
        pthread_mutex_t log_lock;
        pthread_cond_t log_cond;
        int log_fd;
        uint64_t log_bytes;  /* its size, */
        uint64_t live_bytes; /* ... of which outcomes not forgotten */
        uint64_t saved;      /* outcomes appended, */
        uint64_t sync_upto;  /* ... of which the syncer has taken on, */
        uint64_t synced;     /* ... and of which are on disk */
        int syncing;         /* the syncer is in fdatasync */
        int sync_failed;     /* a sync failed: not idle until compacted */
        int sync_stop;       /* sync what is appended, then end */
        pthread_t syncer;
        int has_syncer;
};

static pd_sup_run_t *pd_sup_find(pd_sup_server_t *srv, int64_t id) {
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i]->id == id)
                        return srv->runs[i];
        return NULL;
}

/* Frees the job of a run that no longer runs. */
static void pd_sup_run_clear_job(pd_sup_run_t *run) {
        free(run->start);
        free(run->argv);
        free(run->envp);
        run->start = NULL;
        run->argv  = NULL;
        run->envp  = NULL;
}

static void pd_sup_run_destroy(pd_sup_run_t *run) {
        pd_sup_run_clear_job(run);
        free(run);
}

/* Adds run to the table (which then owns it). Returns 0, or -1. */
static int pd_sup_run_add(pd_sup_server_t *srv, pd_sup_run_t *run) {
        pd_sup_run_t **runs =
                realloc(srv->runs, (srv->run_cnt + 1) * sizeof(*runs));

        if (!runs)
                return -1;
        srv->runs                 = runs;
        srv->runs[srv->run_cnt++] = run;
        return 0;
}

static void pd_sup_run_remove(pd_sup_server_t *srv, pd_sup_run_t *run) {
        if (run->saved) {
                pthread_mutex_lock(&srv->log_lock);
                srv->live_bytes -= run->log_len;
                pthread_mutex_unlock(&srv->log_lock);
        }
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i] == run) {
                        srv->runs[i] = srv->runs[--srv->run_cnt];
                        break;
                }
        pd_sup_run_destroy(run);
}

/* ------------------------------------------------------------------ */
/* The supervisor: durable outcomes                                     */

/* FNV-1a: tells a record a crash cut short from a whole one. */
static uint32_t pd_sup_checksum(const char *p, size_t len) {
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)p[i]) * 16777619u;
        return h;
}

/* Appends to b a RESULT record of the log for run, or a FORGOTTEN record
 * for id when run is NULL: the frame, then its checksum. */
static void pd_sup_log_record(pd_sup_buf_t *b, int64_t id,
                              const pd_sup_run_t *run) {
        size_t at = b->len;

        if (run) {
                pd_sup_result_put(b, id, run->runner_failed, &run->res);
        } else {
                size_t f = pd_sup_frame_begin(b, PD_SUP_F_FORGOTTEN);

                pd_sup_buf_i64(b, id);
                pd_sup_frame_end(b, f);
        }
        if (!b->oom)
                pd_sup_buf_u32(b, pd_sup_checksum(b->p + at, b->len - at));
}

/* Appends to b a STARTED record of the log: run's process, so a
 * supervisor that finds the log of a dead one can stop what it left. */
static void pd_sup_log_started(pd_sup_buf_t *b, const pd_sup_run_t *run) {
        size_t at = b->len;
        size_t f  = pd_sup_frame_begin(b, PD_SUP_F_STARTED);

        pd_sup_buf_i64(b, run->id);
        pd_sup_buf_u32(b, (uint32_t)run->pid);
        pd_sup_buf_le(b, run->pstart, 8);
        pd_sup_frame_end(b, f);
        if (!b->oom)
                pd_sup_buf_u32(b, pd_sup_checksum(b->p + at, b->len - at));
}

/*
 * Appends len bytes of records to the log; with run set, they are run's
 * outcome, which the syncer then makes durable, and run->saved is set.
 * A write that fails is undone, so the log never holds a torn record
 * before whole ones. Returns 0, or -1 with errno. Any thread.
 */
static int pd_sup_log_write(pd_sup_server_t *srv, const char *p, size_t len,
                            pd_sup_run_t *run) {
        size_t off = 0;
        int ret    = 0;

        pthread_mutex_lock(&srv->log_lock);
        while (off < len) {
                ssize_t n = write(srv->log_fd, p + off, len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int err = errno;

                        if (off && ftruncate(srv->log_fd,
                                             (off_t)srv->log_bytes))
                                srv->sync_failed = 1; /* torn for good */
                        errno = err;
                        ret   = -1;
                        break;
                }
                off += (size_t)n;
        }
        if (!ret) {
                srv->log_bytes += len;
                if (run) {
                        run->saved   = 1;
                        run->log_len = len;
                        srv->live_bytes += len;
                        /* Only the first outcome of a pass wakes the
                         * syncer: for the next ones it is in its delay,
                         * or syncing, and sees them after. */
                        if (srv->saved++ == srv->sync_upto)
                                pthread_cond_signal(&srv->log_cond);
                }
        }
        pthread_mutex_unlock(&srv->log_lock);
        return ret;
}

/*
 * The syncer: makes the log durable in groups, off the path of every
 * reply. A pass starts PD_SUP_SYNC_DELAY_MS after the first outcome not
 * yet synced, and fdatasyncs the log once for every outcome appended
 * until then; outcomes appended meanwhile go in the next pass. An
 * fdatasync costs the supervisor as much CPU as a run (this file system
 * has no journal, so each also writes the inode; in a VM each write is an
 * exit), and the runs of a worker come one after another, so without the
 * delay a pass holds one or two. Then it wakes the loop, which may exit
 * when idle. A failure is logged, and the supervisor then never exits
 * while idle (the outcomes stay in memory for the reactor). Its own
 * thread.
 */
/* Waits PD_SUP_SYNC_DELAY_MS, or less if the supervisor stops, with
 * log_lock held on entry and return, so more outcomes join the pass. */
static void pd_sup_syncer_delay(pd_sup_server_t *srv) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += PD_SUP_SYNC_DELAY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        while (!srv->sync_stop &&
               pthread_cond_timedwait(&srv->log_cond, &srv->log_lock,
                                      &until) != ETIMEDOUT)
                ;
}

static void *pd_sup_syncer_main(void *arg) {
        pd_sup_server_t *srv = arg;
        const uint64_t one   = 1;

        pthread_mutex_lock(&srv->log_lock);
        for (;;) {
                uint64_t upto;
                int fd, err = 0;

                while (srv->saved == srv->sync_upto && !srv->sync_stop)
                        pthread_cond_wait(&srv->log_cond, &srv->log_lock);
                if (srv->saved == srv->sync_upto)
                        break; /* stopping, and everything is tried */
                pd_sup_syncer_delay(srv);
                upto           = srv->saved;
                fd             = srv->log_fd;
                srv->sync_upto = upto;
                srv->syncing   = 1;
                pthread_mutex_unlock(&srv->log_lock);

                if (fdatasync(fd))
                        err = errno;
                if (err)
                        pd_log(PD_LOG_ERROR,
                               "cannot sync the outcomes in %s: %s; they "
                               "are kept in memory until the reactor has "
                               "them",
                               srv->results, pd_sup_strerror(err));

                pthread_mutex_lock(&srv->log_lock);
                srv->syncing = 0;
                if (err)
                        srv->sync_failed = 1;
                else if (upto > srv->synced)
                        srv->synced = upto;
                pthread_cond_broadcast(&srv->log_cond);
                while (write(srv->event_fd, &one, sizeof(one)) < 0 &&
                       errno == EINTR)
                        ;
        }
        pthread_mutex_unlock(&srv->log_lock);
        return NULL;
}

/*
 * Whether the log should be rewritten now: the bytes of forgotten
 * outcomes in it are over PD_SUP_LOG_COMPACT and, unless the supervisor is
 * quiet, more than half of it. In a quiet second a log over that size
 * whose sync failed is rewritten too, which is how a failed sync is
 * tried again. Any thread.
 */
static int pd_sup_log_bloated(pd_sup_server_t *srv, int quiet) {
        uint64_t dead, live;
        int failed;

        pthread_mutex_lock(&srv->log_lock);
        live   = srv->live_bytes;
        dead   = srv->log_bytes - live;
        failed = srv->sync_failed && srv->log_bytes > PD_SUP_LOG_COMPACT;
        pthread_mutex_unlock(&srv->log_lock);
        if (quiet)
                return dead > PD_SUP_LOG_COMPACT || failed;
        return dead > PD_SUP_LOG_COMPACT && dead > live;
}

/* Whether every outcome appended so far is on disk. Any thread. */
static int pd_sup_all_synced(pd_sup_server_t *srv) {
        int yes;

        pthread_mutex_lock(&srv->log_lock);
        yes = srv->synced == srv->saved && !srv->sync_failed;
        pthread_mutex_unlock(&srv->log_lock);
        return yes;
}

/*
 * Appends run's outcome to the log, DIR/supervisor/outcomes. The append
 * is in the page cache at once, which outlives any process; the syncer
 * makes it durable soon after, and nobody waits for that: only a crash of
 * the machine needs the disk, and it loses the runs still going anyway
 * (supervisor.h). A failure is logged and the outcome stays in memory only
 * (the reactor still gets it; the supervisor then does not exit while
 * idle). Runs on the run's thread.
 */
static void pd_sup_persist(pd_sup_server_t *srv, pd_sup_run_t *run) {
        pd_sup_buf_t b = {0};

        pd_sup_log_record(&b, run->id, run);
        if (b.oom)
                pd_log(PD_LOG_ERROR,
                       "run %" PRId64 ": cannot save its outcome: out of "
                       "memory; it is kept in memory only",
                       run->id);
        else if (pd_sup_log_write(srv, b.p, b.len, run))
                pd_log(PD_LOG_ERROR,
                       "run %" PRId64 ": cannot save its outcome (%s/"
                       "outcomes: %s); it is kept in memory only",
                       run->id, srv->results, pd_sup_strerror(errno));
        pd_sup_buf_free(&b);
}

/* Records that run id is forgotten, so a later supervisor does not load
 * it again. Not synced: one that comes back after a crash of the machine
 * is never asked for again, so it only costs its bytes. The loop's
 * thread. */
static void pd_sup_persist_forget(pd_sup_server_t *srv, int64_t id) {
        pd_sup_buf_t b = {0};

        pd_sup_log_record(&b, id, NULL);
        if (!b.oom && pd_sup_log_write(srv, b.p, b.len, NULL))
                pd_log(PD_LOG_WARN, "%s/outcomes: %s", srv->results,
                       pd_sup_strerror(errno));
        pd_sup_buf_free(&b);
}

/*
 * Rewrites the log with only the outcomes not forgotten (those of the
 * table, and those a run thread has appended but the loop not yet seen):
 * a new file, synced, renamed over the log, the folder synced. Everything
 * in it is then durable. Holds the log while it works, so it is done when
 * the log has grown and the supervisor is quiet (or the log is mostly
 * forgotten outcomes: pd_sup_log_bloated), at start and at exit.
 * Returns 0, or -1 (logged; the old log stays). The loop's thread.
 */
static int pd_sup_log_compact(pd_sup_server_t *srv) {
        pd_sup_buf_t b = {0};
        char tmp[PD_SUP_PATH_MAX], path[PD_SUP_PATH_MAX];
        size_t off = 0;
        int fd     = -1;
        int synced;

        snprintf(tmp, sizeof(tmp), "%s/outcomes.tmp", srv->results);
        snprintf(path, sizeof(path), "%s/outcomes", srv->results);
        pthread_mutex_lock(&srv->log_lock);
        while (srv->syncing)
                pthread_cond_wait(&srv->log_cond, &srv->log_lock);
        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];
                size_t at         = b.len;

                if (run->saved) {
                        pd_sup_log_record(&b, run->id, run);
                        run->log_len = b.len - at; /* an older file's, too */
                } else if (run->pid > 0) { /* runs: set under log_lock */
                        pd_sup_log_started(&b, run);
                }
        }
        if (b.oom) {
                errno = ENOMEM;
                goto fail;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                  0600);
        if (fd == -1)
                goto fail;
        while (off < b.len) {
                ssize_t n = write(fd, b.p + off, b.len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        goto fail;
                off += (size_t)n;
        }
        if (fdatasync(fd) || rename(tmp, path))
                goto fail;
        /* Renamed: from here on fd is the log, whatever happens. */
        synced = !fsync(srv->results_fd);
        if (!synced)
                pd_log(PD_LOG_ERROR, "cannot sync %s: %s", srv->results,
                       pd_sup_strerror(errno));
        if (srv->log_fd != -1)
                close(srv->log_fd);
        srv->log_fd      = fd;
        srv->log_bytes   = b.len;
        srv->live_bytes  = b.len;
        srv->sync_upto   = srv->saved;
        srv->synced      = synced ? srv->saved : srv->synced;
        srv->sync_failed = !synced;
        pthread_cond_broadcast(&srv->log_cond);
        pthread_mutex_unlock(&srv->log_lock);
        pd_sup_buf_free(&b);
        return 0;
fail:
        pd_log(PD_LOG_ERROR, "cannot rewrite %s: %s", path,
               pd_sup_strerror(errno));
        if (fd != -1) {
                close(fd);
                unlink(tmp);
        }
        pthread_mutex_unlock(&srv->log_lock);
        pd_sup_buf_free(&b);
        return -1;
}

/*
 * Applies one record of the log at p (avail bytes on): a RESULT adds or
 * replaces its run in the table, a FORGOTTEN drops it. Returns the
 * record's size, or 0 if it is cut short or damaged (the log ends there).
 */
static size_t pd_sup_log_apply(pd_sup_server_t *srv, const char *p,
                               size_t avail) {
        pd_sup_run_t *run = NULL, *old;
        pd_sup_rd_t rd;
        size_t size;
        unsigned type;
        int64_t id;

        if (avail < PD_SUP_HDR + 8 + 4)
                return 0;
        size = PD_SUP_HDR + (size_t)pd_sup_le32(p) + 4;
        if (pd_sup_le32(p) > PD_SUP_FRAME_MAX || size > avail ||
            pd_sup_le32(p + size - 4) != pd_sup_checksum(p, size - 4))
                return 0;
        type = (unsigned char)p[4];
        rd   = (pd_sup_rd_t){p + PD_SUP_HDR, size - PD_SUP_HDR - 4, 0, 0};
        id   = pd_sup_rd_i64(&rd);
        if (type == PD_SUP_F_RESULT) {
                run = calloc(1, sizeof(*run));
                if (!run || pd_sup_result_get(&rd, &run->runner_failed,
                                              &run->res)) {
                        free(run);
                        return 0;
                }
                run->id      = id;
                run->srv     = srv;
                run->state   = PD_SUP_FINISHED;
                run->saved   = 1;
                run->log_len = size;
        } else if (type == PD_SUP_F_STARTED) {
                if (!(run = calloc(1, sizeof(*run))))
                        return 0;
                run->id     = id;
                run->srv    = srv;
                run->state  = PD_SUP_RUNNING;
                run->orphan = 1;
                run->pid    = (int)pd_sup_rd_u32(&rd);
                run->pstart = pd_sup_rd_le(&rd, 8);
                if (rd.bad || rd.off != rd.len || run->pid <= 0) {
                        free(run);
                        return 0;
                }
        } else if (type != PD_SUP_F_FORGOTTEN || rd.off != rd.len) {
                return 0;
        }
        if ((old = pd_sup_find(srv, id)))
                pd_sup_run_remove(srv, old);
        if (run && pd_sup_run_add(srv, run)) {
                free(run);
                return 0;
        }
        if (run)
                srv->live_bytes += size; /* at start: no other thread */
        return size;
}

/*
 * Opens the log and loads the outcomes it holds. A record that a crash of
 * the machine cut short ends it: that outcome never reached the disk, and
 * its run is unknown, as a run the crash interrupted. Returns 0, or -1
 * (logged).
 */
static int pd_sup_log_load(pd_sup_server_t *srv) {
        char path[PD_SUP_PATH_MAX];
        struct stat sb;
        char *data = NULL;
        size_t len = 0, off = 0, n;
        int ret    = -1;

        snprintf(path, sizeof(path), "%s/outcomes", srv->results);
        srv->log_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
                           0600);
        if (srv->log_fd == -1 || fstat(srv->log_fd, &sb))
                goto out;
        len  = (size_t)sb.st_size;
        data = malloc(len ? len : 1);
        if (!data)
                goto out;
        while (off < len) {
                ssize_t r = pread(srv->log_fd, data + off, len - off,
                                  (off_t)off);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        goto out;
                off += (size_t)r;
        }
        for (off = 0; off < len; off += n)
                if (!(n = pd_sup_log_apply(srv, data + off, len - off)))
                        break;
        if (off < len)
                pd_log(PD_LOG_WARN,
                       "%s: the last %zu bytes are cut short (a crash of "
                       "the machine): dropped",
                       path, len - off);
        ret = 0;
out:
        if (ret)
                pd_log(PD_LOG_ERROR, "%s: %s", path, pd_sup_strerror(errno));
        free(data);
        return ret;
}

/*
 * The state of process pid (R, S, Z, ...: field 3 of /proc/PID/stat) and
 * when it started, in clock ticks after boot (field 22). Returns 0, or -1
 * if there is no such process.
 */
static int pd_sup_proc_stat(int pid, char *state, uint64_t *start) {
        char path[64], buf[1024];
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* The name in parentheses may hold anything: count from its end. */
        if (!(p = strrchr(buf, ')')) || p[1] != ' ')
                return -1;
        *state = p[2];
        for (int field = 2; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p)
                return -1;
        *start = strtoull(p + 1, NULL, 10);
        return 0;
}

/*
 * A run the log says started but not how it ended was a dead supervisor's
 * (killed, or hung and killed by a client). Its command may still run,
 * reparented, its output going nowhere and its exit status out of reach:
 * its process group is killed, so it can never run beside the new run the
 * reactor starts, and the run ends INTERRUPTED. A process of that pid
 * that started at another time is somebody else's and is left alone. The
 * loop's thread, at start.
 */
static void pd_sup_orphans_stop(pd_sup_server_t *srv) {
        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];
                uint64_t start;
                char state;
                int alive;

                if (!run->orphan)
                        continue;
                alive = !pd_sup_proc_stat(run->pid, &state, &start);
                if (!alive || start == run->pstart) {
                        /* No process has that pid: any group of that id is
                         * still the run's (Linux hands out no pid that a
                         * group or session still uses). */
                        kill(-run->pid, SIGKILL);
                        /* Dead before the reactor may start it again. */
                        for (int t = 0; t < 200 && alive && state != 'Z';
                             t++) {
                                poll(NULL, 0, 5);
                                alive = !pd_sup_proc_stat(run->pid, &state,
                                                          &start);
                        }
                }
                pd_log(PD_LOG_WARN,
                       "run %" PRId64 ": the supervisor that ran it died; "
                       "%s",
                       run->id,
                       alive && start != run->pstart
                           ? "its process is gone"
                           : "its processes were killed");
                run->orphan           = 0;
                run->state            = PD_SUP_FINISHED;
                run->res.status       = PD_ST_INTERRUPTED;
                run->res.has_exit_code = 0;
                snprintf(run->res.error, sizeof(run->res.error),
                         "interrupted: the supervisor running it died");
                pd_sup_persist(srv, run);
        }
}

/*
 * Loads the outcomes kept in the log, which is then rewritten with what is
 * not forgotten (synced, so a killed supervisor's unsynced appends are on
 * disk now too). If it cannot be rewritten (disk full, say), the old log
 * serves on. Returns 0, or -1 (logged) if it cannot be read.
 */
static int pd_sup_load(pd_sup_server_t *srv) {
        if (pd_sup_log_load(srv))
                return -1;
        pd_sup_orphans_stop(srv);
        pd_sup_log_compact(srv);
        return 0;
}

/* ------------------------------------------------------------------ */
/* The supervisor: connections                                          */

/* Queues a reply frame with just the run id. */
static void pd_sup_reply(pd_sup_conn_t *conn, unsigned type, int64_t id) {
        size_t at = pd_sup_frame_begin(&conn->out, type);

        pd_sup_buf_i64(&conn->out, id);
        pd_sup_frame_end(&conn->out, at);
}

/* Queues what is known of run id: UNKNOWN, RUNNING or RESULT. */
static void pd_sup_reply_state(pd_sup_conn_t *conn, int64_t id,
                               const pd_sup_run_t *run) {
        if (!run)
                pd_sup_reply(conn, PD_SUP_F_UNKNOWN, id);
        else if (run->state == PD_SUP_RUNNING)
                pd_sup_reply(conn, PD_SUP_F_RUNNING, id);
        else
                pd_sup_result_put(&conn->out, id, run->runner_failed,
                                  &run->res);
}

/* Answers ERROR and closes conn once that is written. */
static void pd_sup_refuse(pd_sup_conn_t *conn, const char *why) {
        size_t at = pd_sup_frame_begin(&conn->out, PD_SUP_F_ERROR);

        pd_sup_buf_i64(&conn->out, 0);
        pd_sup_buf_str(&conn->out, why);
        pd_sup_frame_end(&conn->out, at);
        pd_log(PD_LOG_WARN, "client refused: %s", why);
        conn->closing = 1;
}

/* Writes what conn has queued, without blocking. */
static void pd_sup_conn_flush(pd_sup_conn_t *conn) {
        if (conn->out.oom || conn->out.len > PD_SUP_OUT_MAX) {
                pd_log(PD_LOG_WARN, "dropping a client that does not read "
                                    "its replies");
                conn->dead = 1;
                return;
        }
        while (conn->out.len && !conn->dead) {
                ssize_t n = send(conn->fd, conn->out.p, conn->out.len,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n > 0)
                        pd_sup_buf_consume(&conn->out, (size_t)n);
                else if (n < 0 && errno == EINTR)
                        continue;
                else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                else
                        conn->dead = 1; /* EPIPE: the client is gone */
        }
}

/*
 * Reads what conn has now, without blocking, up to the end or EAGAIN.
 * Returns 1 if it read anything or the end. A reset counts as the end:
 * Linux reports it only after every byte the peer sent has been read.
 */
static int pd_sup_conn_read(pd_sup_server_t *srv, pd_sup_conn_t *conn) {
        int got = 0;

        if (conn->eof || conn->closing || conn->dead || srv->stopping)
                return 0;
        while (conn->in.len < PD_SUP_IN_MAX) {
                size_t room = PD_SUP_IN_MAX - conn->in.len;
                ssize_t n;

                if (room > PD_SUP_READ_SIZE)
                        room = PD_SUP_READ_SIZE;
                if (pd_sup_buf_reserve(&conn->in, room)) {
                        conn->dead = 1;
                        return got;
                }
                n = read(conn->fd, conn->in.p + conn->in.len, room);
                if (n > 0) {
                        conn->in.len += (size_t)n;
                        got = 1;
                } else if (n < 0 && errno == EINTR) {
                        continue;
                } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        break;
                } else {
                        conn->eof = 1;
                        return 1;
                }
        }
        return got;
}

/* Accepts every connection waiting in the backlog. Returns how many. */
static int pd_sup_accept(pd_sup_server_t *srv) {
        int got = 0;

        while (srv->listen_fd != -1) {
                int fd = accept4(srv->listen_fd, NULL, NULL,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                pd_sup_conn_t **conns;
                pd_sup_conn_t *conn;

                if (fd == -1 && (errno == EINTR || errno == ECONNABORTED))
                        continue;
                if (fd == -1) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                pd_log(PD_LOG_WARN, "accept: %s",
                                       pd_sup_strerror(errno));
                        break;
                }
                conn  = calloc(1, sizeof(*conn));
                conns = realloc(srv->conns,
                                (srv->conn_cnt + 1) * sizeof(*conns));
                if (conns)
                        srv->conns = conns;
                if (!conn || !conns) {
                        pd_log(PD_LOG_WARN, "out of memory for a client");
                        free(conn);
                        close(fd);
                        break;
                }
                conn->fd                    = fd;
                srv->conns[srv->conn_cnt++] = conn;
                got++;
        }
        return got;
}

static void pd_sup_conn_destroy(pd_sup_conn_t *conn) {
        close(conn->fd);
        pd_sup_buf_free(&conn->in);
        pd_sup_buf_free(&conn->out);
        free(conn);
}

/* ------------------------------------------------------------------ */
/* The supervisor: requests                                             */

/* The run's command started: its pid goes to the log (not synced: only
 * a dead supervisor's successor needs it, and a crash of the machine
 * takes the process too). The run's thread. */
static void pd_sup_spawned(void *opaque, int pid) {
        pd_sup_run_t *run    = opaque;
        pd_sup_server_t *srv = run->srv;
        pd_sup_buf_t b       = {0};

        char state;

        pthread_mutex_lock(&srv->log_lock);
        run->pid = pid;
        if (pd_sup_proc_stat(pid, &state, &run->pstart))
                run->pstart = 0;
        pthread_mutex_unlock(&srv->log_lock);
        pd_sup_log_started(&b, run);
        if (!b.oom && pd_sup_log_write(srv, b.p, b.len, NULL))
                pd_log(PD_LOG_WARN, "%s/outcomes: %s", srv->results,
                       pd_sup_strerror(errno));
        pd_sup_buf_free(&b);
}

static void *pd_sup_run_main(void *arg) {
        pd_sup_run_t *run    = arg;
        pd_sup_server_t *srv = run->srv;
        uint64_t one         = 1;

        run->job.spawned   = pd_sup_spawned;
        run->job.opaque    = run;
        run->runner_failed = pd_runner_run(&run->job, &run->res) != 0;
        pd_sup_persist(srv, run);
        pthread_mutex_lock(&srv->lock);
        run->done_next = srv->done;
        srv->done      = run;
        pthread_mutex_unlock(&srv->lock);
        while (write(srv->event_fd, &one, sizeof(one)) < 0 && errno == EINTR)
                ;
        return NULL;
}

/* Reads a string list of the START payload copy into a NULL-ended array
 * pointing into it. Returns it, or NULL (rd->bad set when malformed). */
static char **pd_sup_start_strv(pd_sup_rd_t *rd) {
        uint32_t n = pd_sup_rd_u32(rd);
        char **v;

        /* Each string takes at least its NUL: a bigger count is a lie. */
        if (rd->bad || n > rd->len - rd->off) {
                rd->bad = 1;
                return NULL;
        }
        v = calloc((size_t)n + 1, sizeof(*v));
        if (!v)
                return NULL;
        for (uint32_t i = 0; i < n; i++)
                v[i] = (char *)pd_sup_rd_str(rd);
        if (rd->bad) {
                free(v);
                return NULL;
        }
        return v;
}

/* The run ended (or never started): tell whoever waits for it. */
static void pd_sup_finish(pd_sup_server_t *srv, pd_sup_run_t *run) {
        run->state = PD_SUP_FINISHED;
        pd_sup_run_clear_job(run);
        pd_log(PD_LOG_DEBUG, "run %" PRId64 ": %s%s%s", run->id,
               pd_status_name(run->res.status), *run->res.error ? ": " : "",
               run->res.error);
        for (size_t i = 0; i < srv->conn_cnt; i++) {
                pd_sup_conn_t *conn = srv->conns[i];

                if (conn->has_waiting && conn->waiting == run->id) {
                        conn->has_waiting = 0;
                        pd_sup_reply_state(conn, run->id, run);
                }
        }
}

/* START: runs it unless the id is known, in which case the client gets
 * its state and, if it runs, its RESULT later. */
static void pd_sup_start(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                         int64_t id, const char *payload, size_t len) {
        pd_sup_run_t *run = pd_sup_find(srv, id);
        const char *workdir, *log_path;
        pd_sup_rd_t rd;
        int err;

        if (run) {
                pd_sup_reply_state(conn, id, run);
                if (run->state == PD_SUP_RUNNING) {
                        conn->waiting     = id;
                        conn->has_waiting = 1;
                }
                return;
        }
        run = calloc(1, sizeof(*run));
        if (!run || !(run->start = malloc(len)))
                goto oom;
        memcpy(run->start, payload, len);
        rd                  = (pd_sup_rd_t){run->start, len, 8, 0};
        run->id             = id;
        run->srv            = srv;
        run->state          = PD_SUP_RUNNING;
        run->job.timeout_ms = pd_sup_rd_i64(&rd);
        run->argv           = pd_sup_start_strv(&rd);
        if (!run->argv && !rd.bad)
                goto oom;
        run->envp = pd_sup_start_strv(&rd);
        if (!run->envp && !rd.bad)
                goto oom;
        workdir  = pd_sup_rd_str(&rd);
        log_path = pd_sup_rd_str(&rd);
        /* A START without a umask (an older reactor's, or an action that
         * names none) gets the one our starter had. */
        run->job.has_umask = 1;
        run->job.umask     = rd.off < len ? pd_sup_rd_u32(&rd) : srv->umask;
        if (rd.bad || rd.off != len || !run->argv[0] || !*run->argv[0] ||
            run->job.umask > 0777) {
                pd_sup_run_destroy(run);
                pd_sup_refuse(conn, "malformed START");
                return;
        }
        run->job.argv     = run->argv;
        run->job.envp     = run->envp;
        run->job.workdir  = *workdir ? workdir : NULL;
        run->job.log_path = *log_path ? log_path : NULL;
        run->job.cancel   = &run->cancel;
        if (pd_sup_run_add(srv, run))
                goto oom;

        conn->waiting     = id;
        conn->has_waiting = 1;
        pd_sup_reply(conn, PD_SUP_F_STARTED, id);
        err = pthread_create(&run->thread, NULL, pd_sup_run_main, run);
        if (err) {
                /* Like a spawn that failed for want of resources: the
                 * runner's own failure, recorded as the run's outcome. */
                run->res.status    = PD_ST_FAILED;
                run->runner_failed = 1;
                snprintf(run->res.error, sizeof(run->res.error),
                         "the supervisor cannot start a thread: %s",
                         pd_sup_strerror(err));
                pd_sup_persist(srv, run);
                pd_sup_finish(srv, run);
                return;
        }
        srv->running++;
        pd_log(PD_LOG_DEBUG, "run %" PRId64 ": %s started", id, run->argv[0]);
        return;
oom:
        if (run)
                pd_sup_run_destroy(run);
        pd_sup_refuse(conn, "the supervisor is out of memory");
}

/* FORGET: the reactor has recorded the outcome. */
static void pd_sup_forget_run(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                              int64_t id) {
        pd_sup_run_t *run = pd_sup_find(srv, id);

        if (run && run->state == PD_SUP_RUNNING) {
                pd_sup_reply(conn, PD_SUP_F_RUNNING, id);
                return;
        }
        if (run && run->saved)
                pd_sup_persist_forget(srv, id);
        if (run)
                pd_sup_run_remove(srv, run);
        pd_sup_reply(conn, PD_SUP_F_FORGOTTEN, id);
}

/*
 * Handles one request frame. Returns 0 when it is done with, or
 * PD_SUP_PARK for a STATUS or WAIT of an unknown run while settled is
 * unset: that answer waits until every connection is read.
 */
static int pd_sup_handle(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                         unsigned type, const char *payload, size_t len,
                         int settled) {
        pd_sup_rd_t rd = {payload, len, 0, 0};
        int64_t id     = pd_sup_rd_i64(&rd);
        pd_sup_run_t *run;

        if (rd.bad) {
                pd_sup_refuse(conn, "frame too short");
                return 0;
        }
        if (type != PD_SUP_F_START && len != 8) {
                pd_sup_refuse(conn, "malformed request");
                return 0;
        }
        run = pd_sup_find(srv, id);
        switch (type) {
        case PD_SUP_F_START:
                pd_sup_start(srv, conn, id, payload, len);
                break;
        case PD_SUP_F_STATUS:
        case PD_SUP_F_WAIT:
                if (!run && !settled)
                        return PD_SUP_PARK;
                if (type == PD_SUP_F_WAIT && run &&
                    run->state == PD_SUP_RUNNING) {
                        conn->waiting     = id;
                        conn->has_waiting = 1;
                } else {
                        pd_sup_reply_state(conn, id, run);
                }
                break;
        case PD_SUP_F_CANCEL:
                if (run && run->state == PD_SUP_RUNNING)
                        run->cancel = 1;
                break;
        case PD_SUP_F_FORGET:
                pd_sup_forget_run(srv, conn, id);
                break;
        case PD_SUP_F_PING:
                pd_sup_reply(conn, PD_SUP_F_PONG, id);
                break;
        default:
                pd_sup_refuse(conn, "unknown request type");
                break;
        }
        return 0;
}

/*
 * Handles the complete frames conn holds, in order, until one is parked.
 * With settled set, the first frame may answer UNKNOWN. Returns 1 if a
 * frame is parked.
 */
static int pd_sup_conn_process(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                               int settled) {
        while (!conn->closing && !conn->dead && !srv->stopping &&
               conn->in.len >= PD_SUP_HDR) {
                uint32_t len = pd_sup_le32(conn->in.p);

                if (len > PD_SUP_FRAME_MAX) {
                        char why[128];

                        snprintf(why, sizeof(why),
                                 "frame of %" PRIu32 " bytes is over the "
                                 "limit of %d",
                                 len, PD_SUP_FRAME_MAX);
                        pd_sup_refuse(conn, why);
                        break;
                }
                if (conn->in.len < PD_SUP_HDR + (size_t)len)
                        break;
                if (pd_sup_handle(srv, conn, (unsigned char)conn->in.p[4],
                                  conn->in.p + PD_SUP_HDR, len,
                                  settled) == PD_SUP_PARK)
                        return 1;
                pd_sup_buf_consume(&conn->in, PD_SUP_HDR + (size_t)len);
                settled = 0;
        }
        return 0;
}

/* Handles what every connection holds. Returns how many are parked. */
static size_t pd_sup_process_all(pd_sup_server_t *srv, int settled) {
        size_t parked = 0;

        /* conn_cnt is read each time: nothing here adds or removes. */
        for (size_t i = 0; i < srv->conn_cnt; i++)
                parked += (size_t)pd_sup_conn_process(srv, srv->conns[i],
                                                      settled);
        return parked;
}

/*
 * Handles every request read so far. A STATUS or WAIT of an unknown run
 * is answered only after a pass that accepted and read everything there
 * was found nothing new: by then, a START that any process sent before
 * this request (a killed reactor's, still unread in its connection or its
 * connection still in the backlog) has been handled.
 */
static void pd_sup_process(pd_sup_server_t *srv) {
        size_t parked = pd_sup_process_all(srv, 0);

        while (parked) {
                int progress;

                do {
                        progress = pd_sup_accept(srv) > 0;
                        for (size_t i = 0; i < srv->conn_cnt; i++)
                                progress |=
                                        pd_sup_conn_read(srv, srv->conns[i]);
                        pd_sup_process_all(srv, 0);
                } while (progress);
                /* Settled: what is still unknown is unknown. Each pass
                 * answers at least one parked request, so this ends. */
                parked = pd_sup_process_all(srv, 1);
        }
}

/* ------------------------------------------------------------------ */
/* The supervisor: the loop                                             */

/* The run threads that finished: join them and pass their outcomes on. */
static void pd_sup_reap(pd_sup_server_t *srv) {
        pd_sup_run_t *run, *next;
        uint64_t n;

        while (read(srv->event_fd, &n, sizeof(n)) < 0 && errno == EINTR)
                ;
        pthread_mutex_lock(&srv->lock);
        run       = srv->done;
        srv->done = NULL;
        pthread_mutex_unlock(&srv->lock);
        for (; run; run = next) {
                next = run->done_next;
                pthread_join(run->thread, NULL);
                srv->running--;
                pd_sup_finish(srv, run);
        }
}

/* Binds and listens at the socket path (which we hold the lock for, so
 * what is there is a dead supervisor's). Returns the fd, or -1. */
static int pd_sup_listen(pd_sup_server_t *srv, char *errstr,
                         size_t errstr_size) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
        mode_t old;
        int err;

        if (fd == -1) {
                snprintf(errstr, errstr_size, "socket: %s",
                         pd_sup_strerror(errno));
                return -1;
        }
        if (unlink(srv->sa.sun_path) && errno != ENOENT) {
                snprintf(errstr, errstr_size, "cannot remove %s: %s",
                         srv->sa.sun_path, pd_sup_strerror(errno));
                close(fd);
                return -1;
        }
        /* Created 0600 (its x bits mean nothing): only our user may
         * connect. */
        old = umask(0177);
        err = bind(fd, (const struct sockaddr *)&srv->sa, sizeof(srv->sa));
        umask(old);
        if (err || listen(fd, 128)) {
                snprintf(errstr, errstr_size, "cannot listen at %s: %s",
                         srv->sa.sun_path, pd_sup_strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Whether nothing would be lost if the supervisor exited now. */
static int pd_sup_idle(pd_sup_server_t *srv) {
        if (srv->conn_cnt || srv->running)
                return 0;
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (!srv->runs[i]->saved)
                        return 0;
        return pd_sup_all_synced(srv);
}

/* Idle long enough: returns 1 if the supervisor may exit, 0 if a client
 * slipped in while the socket went away (it is then served, at a new
 * socket). */
static int pd_sup_idle_exit(pd_sup_server_t *srv) {
        char errstr[256];

        /* From here on a connect fails, and the client starts a new
         * supervisor, which waits for our lock. */
        unlink(srv->sa.sun_path);
        if (!pd_sup_accept(srv))
                return 1;
        close(srv->listen_fd);
        srv->listen_fd = pd_sup_listen(srv, errstr, sizeof(errstr));
        if (srv->listen_fd == -1)
                pd_log(PD_LOG_ERROR, "%s; serving the clients connected",
                       errstr);
        return 0;
}

/* SIGTERM/SIGINT: stop taking requests, cancel every run, and exit once
 * they have ended (their outcomes saved as usual). */
static void pd_sup_stop(pd_sup_server_t *srv) {
        if (srv->stopping)
                return;
        srv->stopping = 1;
        pd_log(PD_LOG_INFO, "stopping: %zu run(s) interrupted",
               srv->running);
        if (srv->listen_fd != -1) {
                unlink(srv->sa.sun_path);
                close(srv->listen_fd);
                srv->listen_fd = -1;
        }
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i]->state == PD_SUP_RUNNING)
                        srv->runs[i]->cancel = 1;
}

/* Serves until idle, or stopped and every run has ended. */
static void pd_sup_serve(pd_sup_server_t *srv) {
        struct pollfd *pfd = NULL;
        int64_t idle_since = -1;

        for (;;) {
                const size_t base = 3;
                size_t cnt        = srv->conn_cnt;
                int timeout       = -1;
                struct pollfd *p;
                int64_t now;
                int n;

                if (srv->stopping && !srv->running)
                        break;
                now = pd_sup_clock_ms();
                if (!srv->stopping && pd_sup_idle(srv)) {
                        if (idle_since < 0)
                                idle_since = now;
                        if (now - idle_since >= srv->idle_ms) {
                                if (pd_sup_idle_exit(srv))
                                        break;
                                idle_since = -1;
                                continue;
                        }
                        timeout = (int)pd_sup_min(
                                idle_since + srv->idle_ms - now, 3600000);
                } else {
                        idle_since = -1;
                }

                /* A log grown long is compacted after a quiet second. */
                if (pd_sup_log_bloated(srv, 1) &&
                    (timeout < 0 || timeout > PD_SUP_QUIET_MS))
                        timeout = PD_SUP_QUIET_MS;

                p = realloc(pfd, (base + cnt) * sizeof(*pfd));
                if (!p) {
                        pd_log(PD_LOG_ERROR, "out of memory; retrying");
                        poll(NULL, 0, PD_SUP_TICK_MS);
                        continue;
                }
                pfd    = p;
                pfd[0] = (struct pollfd){srv->signal_fd, POLLIN, 0};
                pfd[1] = (struct pollfd){srv->event_fd, POLLIN, 0};
                pfd[2] = (struct pollfd){srv->listen_fd, POLLIN, 0};
                for (size_t i = 0; i < cnt; i++) {
                        pd_sup_conn_t *conn = srv->conns[i];
                        short ev            = 0;

                        if (!conn->eof && !conn->closing && !srv->stopping)
                                ev |= POLLIN;
                        if (conn->out.len)
                                ev |= POLLOUT;
                        pfd[base + i] = (struct pollfd){conn->fd, ev, 0};
                }
                n = poll(pfd, base + cnt, timeout);
                if (n < 0 && errno != EINTR) {
                        pd_log(PD_LOG_ERROR, "poll: %s; retrying",
                               pd_sup_strerror(errno));
                        poll(NULL, 0, PD_SUP_TICK_MS);
                        continue;
                }
                if (n == 0 && pd_sup_log_bloated(srv, 1))
                        pd_sup_log_compact(srv);
                if (n <= 0)
                        continue;

                if (pfd[0].revents) {
                        struct signalfd_siginfo si;

                        if (read(srv->signal_fd, &si, sizeof(si)) > 0)
                                pd_log(PD_LOG_INFO, "signal %u",
                                       (unsigned)si.ssi_signo);
                        pd_sup_stop(srv);
                }
                if (pfd[1].revents)
                        pd_sup_reap(srv);
                if (pfd[2].revents)
                        pd_sup_accept(srv);
                for (size_t i = 0; i < cnt; i++) {
                        pd_sup_conn_t *conn = srv->conns[i];
                        short rev           = pfd[base + i].revents;

                        if (rev & (POLLIN | POLLHUP | POLLERR))
                                pd_sup_conn_read(srv, conn);
                        if (rev & (POLLHUP | POLLERR))
                                conn->hup = 1;
                }
                /* Connections accepted above are read here, so a request
                 * that came with its connection waits for no other poll. */
                for (size_t i = cnt; i < srv->conn_cnt; i++)
                        pd_sup_conn_read(srv, srv->conns[i]);

                /* Handle before closing: a connection whose peer is gone
                 * may still hold its last request. */
                pd_sup_process(srv);
                /* Busy for so long that no quiet second comes, and mostly
                 * forgotten: now, then. */
                if (pd_sup_log_bloated(srv, 0))
                        pd_sup_log_compact(srv);
                for (size_t i = srv->conn_cnt; i-- > 0;) {
                        pd_sup_conn_t *conn = srv->conns[i];

                        pd_sup_conn_flush(conn);
                        if (conn->dead ||
                            (conn->hup && (conn->eof || conn->closing ||
                                           srv->stopping)) ||
                            (!conn->out.len &&
                             (conn->closing ||
                              (conn->eof && !conn->has_waiting)))) {
                                pd_sup_conn_destroy(conn);
                                srv->conns[i] = srv->conns[--srv->conn_cnt];
                        }
                }
        }
        /* Last replies, best effort: a client that misses its RESULT asks
         * the next supervisor, which reads it from the file. */
        for (size_t i = 0; i < srv->conn_cnt; i++)
                pd_sup_conn_flush(srv->conns[i]);
        free(pfd);
}

/* ------------------------------------------------------------------ */
/* The supervisor: life cycle                                           */

/* Lets the syncer sync what is appended, and end. */
static void pd_sup_syncer_stop(pd_sup_server_t *srv) {
        if (!srv->has_syncer)
                return;
        pthread_mutex_lock(&srv->log_lock);
        srv->sync_stop = 1;
        pthread_cond_broadcast(&srv->log_cond);
        pthread_mutex_unlock(&srv->log_lock);
        pthread_join(srv->syncer, NULL);
        srv->has_syncer = 0;
}

static void pd_sup_server_destroy(pd_sup_server_t *srv) {
        if (!srv)
                return;
        /* Only after an error: the loop itself ends with no run left. */
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i]->state == PD_SUP_RUNNING) {
                        srv->runs[i]->cancel = 1;
                        pthread_join(srv->runs[i]->thread, NULL);
                }
        pd_sup_syncer_stop(srv);
        for (size_t i = 0; i < srv->run_cnt; i++)
                pd_sup_run_destroy(srv->runs[i]);
        free(srv->runs);
        if (srv->log_fd != -1)
                close(srv->log_fd);
        for (size_t i = 0; i < srv->conn_cnt; i++)
                pd_sup_conn_destroy(srv->conns[i]);
        free(srv->conns);
        if (srv->listen_fd != -1) {
                unlink(srv->sa.sun_path);
                close(srv->listen_fd);
        }
        if (srv->event_fd != -1)
                close(srv->event_fd);
        if (srv->signal_fd != -1)
                close(srv->signal_fd);
        if (srv->results_fd != -1)
                close(srv->results_fd);
        if (srv->lock_fd != -1)
                close(srv->lock_fd);
        pthread_mutex_destroy(&srv->lock);
        pthread_mutex_destroy(&srv->log_lock);
        pthread_cond_destroy(&srv->log_cond);
        free(srv->dir);
        free(srv);
}

/*
 * Takes dir: creates it and DIR/supervisor (0700) if missing, takes the
 * lock and listens. Returns the server, or NULL with errstr, or NULL with
 * *busy set when another supervisor holds dir.
 */
static pd_sup_server_t *pd_sup_server_new(const char *dir, int idle_s,
                                          int *busy, char *errstr,
                                          size_t errstr_size) {
        pd_sup_server_t *srv = calloc(1, sizeof(*srv));
        char path[PD_SUP_PATH_MAX];
        pthread_condattr_t cattr;

        *busy = 0;
        if (!srv) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        srv->lock_fd = srv->listen_fd = srv->results_fd = -1;
        srv->event_fd = srv->signal_fd = srv->log_fd = -1;
        pthread_mutex_init(&srv->lock, NULL);
        pthread_mutex_init(&srv->log_lock, NULL);
        /* The syncer's delay is measured on the monotonic clock. */
        pthread_condattr_init(&cattr);
        pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->log_cond, &cattr);
        pthread_condattr_destroy(&cattr);
        srv->idle_ms = (int64_t)(idle_s < 0 ? PD_SUP_IDLE_DEFAULT_S : idle_s) *
                       1000;
        if (!(srv->dir = strdup(dir))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (pd_sup_addr(dir, &srv->sa, errstr, errstr_size))
                goto fail;
        snprintf(srv->results, sizeof(srv->results), "%s/supervisor", dir);
        if ((mkdir(dir, 0700) && errno != EEXIST) ||
            (mkdir(srv->results, 0700) && errno != EEXIST)) {
                snprintf(errstr, errstr_size, "cannot create %s: %s",
                         access(dir, F_OK) ? dir : srv->results,
                         pd_sup_strerror(errno));
                goto fail;
        }
        snprintf(path, sizeof(path), "%s/lock", srv->results);
        srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (srv->lock_fd == -1) {
                snprintf(errstr, errstr_size, "cannot open %s: %s", path,
                         pd_sup_strerror(errno));
                goto fail;
        }
        if (flock(srv->lock_fd, LOCK_EX | LOCK_NB)) {
                if (errno == EWOULDBLOCK)
                        *busy = 1;
                snprintf(errstr, errstr_size, "cannot lock %s: %s", path,
                         pd_sup_strerror(errno));
                goto fail;
        }
        srv->results_fd = open(srv->results, O_RDONLY | O_DIRECTORY |
                                                     O_CLOEXEC);
        if (srv->results_fd == -1) {
                snprintf(errstr, errstr_size, "cannot open %s: %s",
                         srv->results, pd_sup_strerror(errno));
                goto fail;
        }
        srv->listen_fd = pd_sup_listen(srv, errstr, errstr_size);
        if (srv->listen_fd == -1)
                goto fail;
        return srv;
fail:
        pd_sup_server_destroy(srv);
        return NULL;
}

/* In the serving process: the run table, the eventfd and the signals.
 * Returns 0, or -1 (logged). */
static int pd_sup_server_start(pd_sup_server_t *srv) {
        sigset_t mask;
        int err;

        /* Blocked before any thread starts, so every thread inherits it
         * and the signals reach the loop's signalfd only. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        srv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        srv->event_fd  = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->signal_fd == -1 || srv->event_fd == -1) {
                pd_log(PD_LOG_ERROR, "signalfd/eventfd: %s",
                       pd_sup_strerror(errno));
                return -1;
        }
        err = pthread_create(&srv->syncer, NULL, pd_sup_syncer_main, srv);
        if (err) {
                pd_log(PD_LOG_ERROR, "cannot start the syncer thread: %s",
                       pd_sup_strerror(err));
                return -1;
        }
        srv->has_syncer = 1;
        return pd_sup_load(srv);
}

/* Points stdin at /dev/null and stdout, stderr at DIR/supervisor.log. */
static int pd_sup_redirect(const char *dir) {
        char path[PD_SUP_PATH_MAX];
        int null_fd, log_fd, ret = 0;

        snprintf(path, sizeof(path), "%s/supervisor.log", dir);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_fd  = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                       0600);
        if (null_fd == -1 || log_fd == -1 ||
            dup2(null_fd, STDIN_FILENO) == -1 ||
            dup2(log_fd, STDOUT_FILENO) == -1 ||
            dup2(log_fd, STDERR_FILENO) == -1)
                ret = -1;
        if (null_fd > STDERR_FILENO)
                close(null_fd);
        if (log_fd > STDERR_FILENO)
                close(log_fd);
        return ret;
}

/* Tells the starter (pd_sup_main's parent half) how starting went. */
static void pd_sup_ready(int *ready_fd, unsigned char status) {
        while (write(*ready_fd, &status, 1) < 0 && errno == EINTR)
                ;
        close(*ready_fd);
        *ready_fd = -1;
}

int pd_sup_main(const char *dir, int idle_s) {
        pd_sup_server_t *srv = NULL;
        unsigned char status = 1;
        char errstr[512], abs[PATH_MAX];
        int ready[2], busy, ret = 1;
        mode_t started_umask;
        pid_t pid;

        pd_log_set_program("postdeploy-supervisor");
        /* Started as /proc/self/exe, the kernel would name us "exe" in ps
         * and top; the name says what we are (15 bytes at most). */
        prctl(PR_SET_NAME, "pd-supervisor", 0, 0, 0);
        dir = pd_sup_abspath(dir, abs, sizeof(abs)); /* before chdir("/") */
        /* Whatever the starter left open (another client's connection to
         * an older supervisor, say) must not be kept alive by us. */
        close_range(STDERR_FILENO + 1, ~0U, 0);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        /* Our files are private; the commands get their starter's umask
         * back (pd_sup_start), which is what the operator set. */
        started_umask = umask(077);

        /* The child serves, detached in a session of its own; the parent
         * returns once the child listens (or found another supervisor, or
         * failed), which tells the client that started it when to
         * connect. Forked first, so the process that listens is the one
         * that serves (a client sees its pid as the socket's peer). */
        if (pipe2(ready, O_CLOEXEC)) {
                pd_log(PD_LOG_ERROR, "pipe: %s", pd_sup_strerror(errno));
                return 1;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == -1) {
                pd_log(PD_LOG_ERROR, "fork: %s", pd_sup_strerror(errno));
                close(ready[0]);
                close(ready[1]);
                return 1;
        }
        if (pid > 0) {
                ssize_t n;

                close(ready[1]);
                while ((n = read(ready[0], &status, 1)) < 0 && errno == EINTR)
                        ;
                close(ready[0]);
                return n == 1 ? status : 1;
        }

        close(ready[0]);
        setsid();
        /* Nothing here uses a relative path (clients send absolute ones),
         * and a release folder we were started from may be deleted. */
        if (chdir("/"))
                pd_log(PD_LOG_WARN, "chdir /: %s", pd_sup_strerror(errno));
        srv = pd_sup_server_new(dir, idle_s, &busy, errstr, sizeof(errstr));
        if (!srv && busy) {
                pd_sup_ready(&ready[1], 0); /* another one serves dir */
                return 0;
        }
        if (!srv) {
                pd_log(PD_LOG_ERROR, "%s", errstr);
                pd_sup_ready(&ready[1], 1);
                return 1;
        }
        srv->umask = (unsigned)started_umask;
        if (!pd_sup_server_start(srv)) {
                pd_sup_ready(&ready[1], 0);
                if (pd_sup_redirect(dir))
                        pd_log(PD_LOG_WARN, "cannot open %s/supervisor.log: %s",
                               dir, pd_sup_strerror(errno));
                pd_log(PD_LOG_INFO, "pid %ld serves %s (%zu result(s) kept, "
                                    "idle exit after %" PRId64 " ms)",
                       (long)getpid(), dir, srv->run_cnt, srv->idle_ms);
                pd_sup_serve(srv);
                /* What a later supervisor loads: the outcomes kept. */
                pd_sup_log_compact(srv);
                pd_log(PD_LOG_INFO, "pid %ld exits", (long)getpid());
                ret = 0;
        } else {
                pd_sup_ready(&ready[1], 1);
        }
        pd_sup_server_destroy(srv);
        return ret;
}

/* ------------------------------------------------------------------ */
/* The client                                                           */

struct pd_sup_s {
        int fd;            /* -1 while disconnected */
        char *dir;
        char *exe;
        int idle_s;
        pd_sup_buf_t in;   /* bytes read: the frame handed out, then more */
        size_t handed;     /* size of the frame handed out, to drop */
        char errstr[256];  /* why the last reconnect failed */
        /* The run whose RESULT this handle read last: it has ended. */
        int64_t ended_id;
        int has_ended;
        /* A FORGET that rides with the next request (pd_sup_forget). */
        int64_t forget_id;
        int forget;        /* PD_SUP_FORGET_* */
        int64_t hang_ms;   /* silent this long: taken for hung */
};

enum {
        PD_SUP_FORGET_NONE,
        PD_SUP_FORGET_HELD, /* to send before the next request */
        PD_SUP_FORGET_SENT, /* sent: its reply comes first */
};

/* Starts a supervisor for sup->dir and waits until it listens (or finds
 * one already there). Returns 0, or -1 with errstr. */
static int pd_sup_spawn(pd_sup_t *sup, char *errstr, size_t errstr_size) {
        char idle[16];
        /* argv[0] is what `ps -o args` shows: the binary's path (often
         * /proc/self/exe) would not say which process this is. Its log
         * lines are in our format, so one shipper reads both. */
        char *argv[] = {"postdeploy-supervisor", "--supervisor", sup->dir,
                        "--idle", idle, "--log-format",
                        (char *)pd_log_format_name(pd_log_format), NULL};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int err, wstatus = 0;
        pid_t pid;

        snprintf(idle, sizeof(idle), "%d", sup->idle_s);
        err = posix_spawn_file_actions_init(&fa);
        if (err)
                goto out;
        err = posix_spawnattr_init(&attr);
        if (err) {
                posix_spawn_file_actions_destroy(&fa);
                goto out;
        }
        /* Its stderr stays ours until it listens, so a failure to start is
         * in the reactor's log; after that it writes its own log. */
        err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
                                               O_RDONLY, 0);
        /* Our signal set-up is not the supervisor's; it stays in our
         * process group until it detaches (setsid). */
        if (!err)
                err = pd_spawnattr_child(&attr, 0);
        if (!err)
                err = posix_spawn(&pid, sup->exe, &fa, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
out:
        if (err) {
                snprintf(errstr, errstr_size,
                         "cannot start the supervisor '%s': %s", sup->exe,
                         pd_sup_strerror(err));
                return -1;
        }
        while (waitpid(pid, &wstatus, 0) == -1) {
                if (errno != EINTR) {
                        snprintf(errstr, errstr_size,
                                 "cannot wait for the supervisor: %s",
                                 pd_sup_strerror(errno));
                        return -1;
                }
        }
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
                snprintf(errstr, errstr_size,
                         "the supervisor '%s --supervisor %s' did not start "
                         "(%s %d)",
                         sup->exe, sup->dir,
                         WIFEXITED(wstatus) ? "exit status" : "signal",
                         WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                            : WTERMSIG(wstatus));
                return -1;
        }
        return 0;
}

/*
 * Connects sup, starting a supervisor when none answers, for up to
 * PD_SUP_CONNECT_MS: one that is still starting, or exiting while idle,
 * is waited out. Returns 0, or -1 with errstr.
 */
static int pd_sup_dial(pd_sup_t *sup, char *errstr, size_t errstr_size) {
        const int64_t deadline = pd_sup_clock_ms() + PD_SUP_CONNECT_MS;
        struct sockaddr_un sa;
        int nap_ms = 1;

        if (pd_sup_addr(sup->dir, &sa, errstr, errstr_size))
                return -1;
        sup->in.len = 0;
        sup->handed = 0;
        for (int spawned = 0;; spawned = !spawned) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int err;

                if (fd == -1) {
                        snprintf(errstr, errstr_size, "socket: %s",
                                 pd_sup_strerror(errno));
                        return -1;
                }
                if (!connect(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
                        sup->fd = fd;
                        return 0;
                }
                err = errno;
                close(fd);
                if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN &&
                    err != EINTR) {
                        snprintf(errstr, errstr_size,
                                 "cannot connect to %s: %s", sa.sun_path,
                                 pd_sup_strerror(err));
                        return -1;
                }
                if (pd_sup_clock_ms() >= deadline) {
                        snprintf(errstr, errstr_size,
                                 "no supervisor answers at %s (see "
                                 "%s/supervisor.log)",
                                 sa.sun_path, sup->dir);
                        return -1;
                }
                if (spawned) {
                        /* It found another one holding the folder, still
                         * starting or on its way out: try again soon. */
                        poll(NULL, 0, nap_ms);
                        nap_ms = nap_ms < 100 ? nap_ms * 2 : 100;
                } else if (pd_sup_spawn(sup, errstr, errstr_size)) {
                        return -1;
                }
        }
}

static void pd_sup_hangup(pd_sup_t *sup) {
        if (sup->fd != -1)
                close(sup->fd);
        sup->fd = -1;
        /* Unanswered, so maybe unread: asked again on the next one. */
        if (sup->forget == PD_SUP_FORGET_SENT)
                sup->forget = PD_SUP_FORGET_HELD;
}

void pd_sup_set_timeout(pd_sup_t *sup, int64_t ms) {
        sup->hang_ms = ms >= 300 ? ms : 300;
}

pd_sup_t *pd_sup_connect(const char *dir, const char *exe, int idle_s,
                         char *errstr, size_t errstr_size) {
        pd_sup_t *sup = calloc(1, sizeof(*sup));
        char abs[PATH_MAX];

        if (sup)
                sup->fd = -1;
        /* The supervisor works from "/": it is told where DIR really is. */
        dir = pd_sup_abspath(dir, abs, sizeof(abs));
        if (!sup || !(sup->dir = strdup(dir)) ||
            !(sup->exe = strdup(exe ? exe : "/proc/self/exe"))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        sup->idle_s  = idle_s > 0 ? idle_s : PD_SUP_IDLE_DEFAULT_S;
        sup->hang_ms = PD_SUP_HANG_MS;
        if (pd_sup_dial(sup, errstr, errstr_size))
                goto fail;
        return sup;
fail:
        pd_sup_close(sup);
        return NULL;
}

/* Sends len bytes. Returns 0, or PD_SUP_BROKEN if they did not all go. */
static int pd_sup_send(pd_sup_t *sup, const char *p, size_t len) {
        while (len) {
                ssize_t n = send(sup->fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return PD_SUP_BROKEN;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Appends a frame that is just a run id to b. Returns 0, or -1 (oom). */
static int pd_sup_put_id(pd_sup_buf_t *b, unsigned type, int64_t id) {
        size_t at = pd_sup_frame_begin(b, type);

        pd_sup_buf_i64(b, id);
        return pd_sup_frame_end(b, at);
}

/* Sends a frame that is just a run id. */
static int pd_sup_send_id(pd_sup_t *sup, unsigned type, int64_t id) {
        pd_sup_buf_t b = {0};
        int ret;

        ret = pd_sup_put_id(&b, type, id) ? -1 : pd_sup_send(sup, b.p, b.len);
        pd_sup_buf_free(&b);
        return ret;
}

/*
 * Sends sig to the supervisor that listens at sa, whose pid the kernel
 * tells the peer of a connection. Returns 0, or -1 if none answers.
 */
static int pd_sup_signal(const struct sockaddr_un *sa, int sig) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int ret = -1;

        if (fd == -1)
                return -1;
        if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) &&
            !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) &&
            cred.pid > 0 && !kill(cred.pid, sig))
                ret = 0;
        close(fd);
        return ret;
}

int pd_sup_shutdown(const char *dir, int64_t timeout_ms, char *errstr,
                    size_t errstr_size) {
        const int64_t deadline = pd_sup_clock_ms() + timeout_ms;
        char path[PD_SUP_PATH_MAX];
        struct sockaddr_un sa;
        int fd, signalled = 0, ret = -1;

        if (pd_sup_addr(dir, &sa, errstr, errstr_size))
                return -1;
        snprintf(path, sizeof(path), "%s/supervisor/lock", dir);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd == -1) {
                if (errno == ENOENT) /* no supervisor ever served dir */
                        return 0;
                snprintf(errstr, errstr_size, "cannot open %s: %s", path,
                         pd_sup_strerror(errno));
                return -1;
        }
        /* The supervisor holds its lock for as long as it lives: once we
         * get it, it is gone, and with it every command it ran. */
        while (flock(fd, LOCK_EX | LOCK_NB)) {
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        snprintf(errstr, errstr_size, "cannot lock %s: %s",
                                 path, pd_sup_strerror(errno));
                        goto done;
                }
                if (pd_sup_clock_ms() >= deadline) {
                        snprintf(errstr, errstr_size,
                                 "the supervisor of %s is still there after "
                                 "%" PRId64 " ms",
                                 dir, timeout_ms);
                        goto done;
                }
                /* No answer yet: one that is starting, or exiting. */
                if (!signalled)
                        signalled = !pd_sup_signal(&sa, SIGTERM);
                poll(NULL, 0, 20);
        }
        ret = 0;
done:
        close(fd);
        return ret;
}

void pd_sup_close(pd_sup_t *sup) {
        if (!sup)
                return;
        /* The supervisor reads what a closed connection sent. */
        if (sup->fd != -1 && sup->forget == PD_SUP_FORGET_HELD)
                pd_sup_send_id(sup, PD_SUP_F_FORGET, sup->forget_id);
        pd_sup_hangup(sup);
        pd_sup_buf_free(&sup->in);
        free(sup->dir);
        free(sup->exe);
        free(sup);
}

/*
 * Sends the request frame(s) req, preceded by a held FORGET, in one send:
 * the supervisor handles both in one pass, and no round trip is spent on
 * the FORGET alone. Returns as pd_sup_send.
 */
static int pd_sup_send_req(pd_sup_t *sup, const pd_sup_buf_t *req) {
        pd_sup_buf_t b = {0};
        int ret;

        if (sup->forget != PD_SUP_FORGET_HELD)
                return pd_sup_send(sup, req->p, req->len);
        if (pd_sup_put_id(&b, PD_SUP_F_FORGET, sup->forget_id)) {
                pd_sup_buf_free(&b);
                return -1;
        }
        pd_sup_buf_put(&b, req->p, req->len);
        ret = b.oom ? -1 : pd_sup_send(sup, b.p, b.len);
        if (!ret)
                sup->forget = PD_SUP_FORGET_SENT;
        pd_sup_buf_free(&b);
        return ret;
}

/* Sends a request that is just a run id (with a held FORGET). */
static int pd_sup_send_req_id(pd_sup_t *sup, unsigned type, int64_t id) {
        pd_sup_buf_t b = {0};
        int ret;

        ret = pd_sup_put_id(&b, type, id) ? -1 : pd_sup_send_req(sup, &b);
        pd_sup_buf_free(&b);
        return ret;
}

/*
 * Reads the next frame: its type and a reader over its payload, valid
 * until the next call. Waits at most timeout_ms (< 0: for ever); while it
 * waits, sends CANCEL for id once *cancel is set (*cancel_sent records
 * that). Returns 0, PD_SUP_BROKEN when the connection ended or sent
 * garbage, or -1 on timeout.
 */
/*
 * The supervisor at the other end answered nothing, not even a PING, for
 * sup->hang_ms: it is hung (stopped, or stuck). It is killed, so that the
 * next connection starts a new one, which stops the runs it left and
 * reports them INTERRUPTED. Returns PD_SUP_BROKEN.
 */
static int pd_sup_hung(pd_sup_t *sup) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (!getsockopt(sup->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) &&
            cred.pid > 0) {
                pd_log(PD_LOG_ERROR,
                       "the supervisor of %s (pid %ld) answered nothing for "
                       "%" PRId64 " ms: killing it and starting another",
                       sup->dir, (long)cred.pid, sup->hang_ms);
                kill(cred.pid, SIGKILL);
        }
        pd_sup_hangup(sup);
        return PD_SUP_BROKEN;
}

/*
 * Reads the next frame of the conversation about id into *type and *rd
 * (valid until the next call), sending CANCEL once *cancel is set. PONGs
 * are taken here; while a wait has no time limit (timeout_ms < 0), a
 * supervisor silent for a third of hang_ms is sent a PING, and one silent
 * for hang_ms is taken for hung. Returns 0, -1 on a timeout, or
 * PD_SUP_BROKEN.
 */
static int pd_sup_recv(pd_sup_t *sup, int64_t id, volatile int *cancel,
                       int *cancel_sent, int timeout_ms, unsigned *type,
                       pd_sup_rd_t *rd) {
        const int64_t deadline = pd_sup_clock_ms() + timeout_ms;
        int64_t heard          = pd_sup_clock_ms();
        int pinged             = 0;

        pd_sup_buf_consume(&sup->in, sup->handed);
        sup->handed = 0;
        for (;;) {
                struct pollfd pfd = {sup->fd, POLLIN, 0};
                int64_t wait      = PD_SUP_TICK_MS;
                int64_t now;
                ssize_t n;

                if (sup->in.len >= PD_SUP_HDR) {
                        uint32_t len = pd_sup_le32(sup->in.p);

                        if (len > PD_SUP_FRAME_MAX)
                                return PD_SUP_BROKEN;
                        if (sup->in.len >= PD_SUP_HDR + (size_t)len &&
                            (unsigned char)sup->in.p[4] == PD_SUP_F_PONG) {
                                pd_sup_buf_consume(&sup->in,
                                                   PD_SUP_HDR + (size_t)len);
                                continue;
                        }
                        if (sup->in.len >= PD_SUP_HDR + (size_t)len) {
                                *type = (unsigned char)sup->in.p[4];
                                *rd   = (pd_sup_rd_t){sup->in.p + PD_SUP_HDR,
                                                    len, 0, 0};
                                sup->handed = PD_SUP_HDR + (size_t)len;
                                return 0;
                        }
                }
                if (cancel && *cancel && !*cancel_sent) {
                        if (pd_sup_send_id(sup, PD_SUP_F_CANCEL, id))
                                return PD_SUP_BROKEN;
                        *cancel_sent = 1;
                }
                now = pd_sup_clock_ms();
                if (timeout_ms >= 0) {
                        int64_t left = deadline - now;

                        if (left <= 0)
                                return -1;
                        if (left < wait)
                                wait = left;
                } else if (now - heard >= sup->hang_ms) {
                        return pd_sup_hung(sup);
                } else if (!pinged && now - heard >= sup->hang_ms / 3) {
                        if (pd_sup_send_id(sup, PD_SUP_F_PING, id))
                                return PD_SUP_BROKEN;
                        pinged = 1;
                }
                if (poll(&pfd, 1, (int)wait) <= 0)
                        continue;
                if (pd_sup_buf_reserve(&sup->in, 4096))
                        return PD_SUP_BROKEN;
                n = read(sup->fd, sup->in.p + sup->in.len,
                         sup->in.size - sup->in.len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return PD_SUP_BROKEN;
                sup->in.len += (size_t)n;
                heard  = pd_sup_clock_ms();
                pinged = 0;
        }
}

/* Whether the frame is the reply to a FORGET sent before the request
 * (it comes first); it then needs no more. */
static int pd_sup_forgotten(pd_sup_t *sup, unsigned type, pd_sup_rd_t rd) {
        if (sup->forget != PD_SUP_FORGET_SENT ||
            (type != PD_SUP_F_FORGOTTEN && type != PD_SUP_F_RUNNING) ||
            pd_sup_rd_i64(&rd) != sup->forget_id || rd.bad)
                return 0;
        sup->forget = PD_SUP_FORGET_NONE;
        return 1;
}

/*
 * Reads replies about id until one settles it. With await set, STARTED and
 * RUNNING mean "wait on" and the wait has no time limit. Returns a PD_SUP_*
 * state (FINISHED with *res and *runner_failed), PD_SUP_BROKEN, or -1 with
 * res->error.
 */
static int pd_sup_reply_get(pd_sup_t *sup, int64_t id, int await,
                            volatile int *cancel, pd_runner_result_t *res,
                            int *runner_failed) {
        int cancel_sent = 0;

        for (;;) {
                const char *why;
                pd_sup_rd_t rd;
                unsigned type = 0;
                int r = pd_sup_recv(sup, id, cancel, &cancel_sent,
                                    await ? -1 : (int)sup->hang_ms, &type,
                                    &rd);

                /* After a timeout or a refusal the conversation is lost:
                 * the next request starts a new one. */
                if (r == -1) {
                        snprintf(res->error, sizeof(res->error),
                                 "the supervisor of %s did not answer "
                                 "within %" PRId64 " ms",
                                 sup->dir, sup->hang_ms);
                        pd_sup_hung(sup);
                        return -1;
                }
                if (r)
                        return r;
                if (pd_sup_forgotten(sup, type, rd))
                        continue;
                if (type == PD_SUP_F_ERROR) {
                        pd_sup_rd_i64(&rd);
                        why = pd_sup_rd_str(&rd);
                        snprintf(res->error, sizeof(res->error),
                                 "the supervisor refused: %s",
                                 why ? why : "no reason given");
                        pd_sup_hangup(sup);
                        return -1;
                }
                if (pd_sup_rd_i64(&rd) != id || rd.bad)
                        return PD_SUP_BROKEN; /* not our conversation */
                switch (type) {
                case PD_SUP_F_STARTED:
                case PD_SUP_F_RUNNING:
                        if (!await)
                                return PD_SUP_RUNNING;
                        break;
                case PD_SUP_F_UNKNOWN:
                        return PD_SUP_UNKNOWN;
                case PD_SUP_F_FORGOTTEN:
                        return PD_SUP_FINISHED; /* done with, too */
                case PD_SUP_F_RESULT:
                        if (pd_sup_result_get(&rd, runner_failed, res))
                                return PD_SUP_BROKEN;
                        sup->ended_id  = id;
                        sup->has_ended = 1;
                        return PD_SUP_FINISHED;
                default:
                        return PD_SUP_BROKEN;
                }
        }
}

/* Reconnects after a broken connection. Returns 0, or -1 with
 * sup->errstr. */
static int pd_sup_redial(pd_sup_t *sup) {
        pd_sup_hangup(sup);
        return pd_sup_dial(sup, sup->errstr, sizeof(sup->errstr));
}

/*
 * Asks a one-id request (STATUS, WAIT, FORGET) and reads the answer,
 * reconnecting if the connection breaks (each of them may be asked
 * again). Returns as pd_sup_reply_get, never PD_SUP_BROKEN.
 */
static int pd_sup_ask(pd_sup_t *sup, unsigned type, int64_t id,
                      volatile int *cancel, pd_runner_result_t *res,
                      int *runner_failed) {
        for (int tries = 0;; tries++) {
                int r = PD_SUP_BROKEN;

                if (sup->fd != -1 && !pd_sup_send_req_id(sup, type, id))
                        r = pd_sup_reply_get(sup, id, type == PD_SUP_F_WAIT,
                                             cancel, res, runner_failed);
                if (r != PD_SUP_BROKEN)
                        return r;
                pd_sup_hangup(sup);
                if (tries == PD_SUP_RECONNECTS || pd_sup_redial(sup)) {
                        snprintf(res->error, sizeof(res->error),
                                 "lost the supervisor: %s",
                                 tries == PD_SUP_RECONNECTS
                                         ? "the connection keeps breaking"
                                         : sup->errstr);
                        return -1;
                }
        }
}

int pd_sup_status(pd_sup_t *sup, int64_t run_id, pd_runner_result_t *res) {
        int failed;

        memset(res, 0, sizeof(*res));
        return pd_sup_ask(sup, PD_SUP_F_STATUS, run_id, NULL, res, &failed);
}

int pd_sup_wait(pd_sup_t *sup, int64_t run_id, volatile int *cancel,
                pd_runner_result_t *res) {
        int failed;

        memset(res, 0, sizeof(*res));
        return pd_sup_ask(sup, PD_SUP_F_WAIT, run_id, cancel, res, &failed);
}

int pd_sup_forget(pd_sup_t *sup, int64_t run_id) {
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        int failed, r;

        /* The run whose RESULT we read last has ended: its FORGET waits
         * for the next request, which takes it along. */
        if (sup->has_ended && sup->ended_id == run_id &&
            sup->forget == PD_SUP_FORGET_NONE) {
                sup->forget    = PD_SUP_FORGET_HELD;
                sup->forget_id = run_id;
                sup->has_ended = 0;
                free(res);
                return 0;
        }
        if (sup->forget != PD_SUP_FORGET_NONE && sup->forget_id == run_id) {
                free(res);
                return 0; /* on its way already */
        }
        if (!res)
                return -1;
        r = pd_sup_ask(sup, PD_SUP_F_FORGET, run_id, NULL, res, &failed);
        free(res);
        return r == PD_SUP_FINISHED ? 0 : -1;
}

int pd_sup_run(pd_sup_t *sup, int64_t run_id, const pd_runner_job_t *job,
               pd_runner_result_t *res) {
        pd_sup_buf_t b = {0};
        char path[PATH_MAX];
        size_t at;
        int failed = 0, sent = 0, r = PD_SUP_BROKEN;

        memset(res, 0, sizeof(*res));
        res->status = PD_ST_FAILED;
        at          = pd_sup_frame_begin(&b, PD_SUP_F_START);
        pd_sup_buf_i64(&b, run_id);
        pd_sup_buf_i64(&b, job->timeout_ms);
        pd_sup_buf_strv(&b, job->argv);
        pd_sup_buf_strv(&b, job->envp ? job->envp : environ);
        /* The supervisor works from "/" and may outlive the reactor that
         * started it: paths go as they mean to the reactor that sends
         * them, and no workdir means this one's, as in pd_runner_run. */
        pd_sup_buf_str(&b, pd_sup_abspath(job->workdir ? job->workdir : ".",
                                          path, sizeof(path)));
        pd_sup_buf_str(&b, job->log_path ? pd_sup_abspath(job->log_path, path,
                                                          sizeof(path))
                                         : "");
        /* Only when the job has one: a supervisor older than the umask
         * field, still serving after an upgrade, reads the rest. */
        if (job->has_umask)
                pd_sup_buf_u32(&b, job->umask);
        if (pd_sup_frame_end(&b, at)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot start '%s': %s", job->argv[0],
                         b.oom ? "out of memory"
                               : "its arguments and environment are over "
                                 "1 MiB");
                pd_sup_buf_free(&b);
                return -1;
        }

        /* Until the START is sent whole it can be sent again: a partial
         * frame is never run. After that, only WAIT. */
        for (int tries = 0; tries <= PD_SUP_RECONNECTS; tries++) {
                if ((tries || sup->fd == -1) && pd_sup_redial(sup))
                        break;
                if (pd_sup_send_req(sup, &b))
                        continue;
                sent = 1;
                r = pd_sup_reply_get(sup, run_id, 1, job->cancel, res,
                                     &failed);
                break;
        }
        pd_sup_buf_free(&b);
        if (!sent) {
                snprintf(res->error, sizeof(res->error),
                         "cannot start '%s': no supervisor: %s", job->argv[0],
                         sup->errstr);
                return -1;
        }
        if (r == PD_SUP_FINISHED)
                return failed ? -1 : 0;
        if (r == -1)
                return -1; /* refused: it never started (res->error) */

        /* The START went out whole, so it may be running: from now on it
         * is only waited for, never sent again. */
        pd_sup_hangup(sup);
        r = pd_sup_ask(sup, PD_SUP_F_WAIT, run_id, job->cancel, res,
                       &failed);
        if (r == PD_SUP_FINISHED)
                return failed ? -1 : 0;
        /* Nobody saw how it ended: the supervisor was lost with it, or
         * cannot be reached again (res->error says which). */
        res->status = PD_ST_INTERRUPTED;
        if (r == PD_SUP_UNKNOWN)
                snprintf(res->error, sizeof(res->error),
                         "interrupted: the supervisor was lost during the "
                         "run");
        return -1;
}
