/*
 * sup_int.h - what the pieces of the supervisor share (private to
 * consumer/supervisor/): its limits and timings, the server's state (the
 * run table, the connections, the outcome log and its syncer), and the
 * calls one piece makes into another. proto.c is the wire protocol,
 * outlog.c the outcome log, server.c the run table, connections and
 * requests, loop.c the loop and the process's life (pd_sup_main), client.c
 * what the reactor calls.
 */
#ifndef PD_SUP_INT_H
#define PD_SUP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "consumer/runner.h"
#include "consumer/supervisor.h"
#include "consumer/supervisor/proto.h"

/* DIR fits a socket path (108 bytes), so any path under it fits here. */
#define PD_SUP_PATH_MAX       256
#define PD_SUP_IDLE_DEFAULT_S 60
#define PD_SUP_CONNECT_MS     10000 /* to reach or start one */
#define PD_SUP_HANG_MS        30000 /* silent this long: hung */
#define PD_SUP_TICK_MS        100   /* how often cancel is seen */
#define PD_SUP_QUIET_MS       1000  /* then a long log is compacted */
#define PD_SUP_SYNC_DELAY_MS  10    /* outcomes gather for a sync */
/* Bytes of forgotten outcomes (and FORGOTTEN records) in the log past
 * which it is rewritten in a quiet second, or at once if they are also
 * more than half of it. */
#define PD_SUP_LOG_COMPACT (1024 * 1024)
#define PD_SUP_RECONNECTS  3 /* per request */
#define PD_SUP_READ_SIZE   (64 * 1024)
/* Input kept per connection: a whole frame and one read beyond it. */
#define PD_SUP_IN_MAX (PD_SUP_HDR + PD_SUP_FRAME_MAX + PD_SUP_READ_SIZE)
/* Replies a client leaves unread before it is dropped. */
#define PD_SUP_OUT_MAX (8 * 1024 * 1024)

/* What a request handler or a wait came to, besides the PD_SUP_* states. */
enum {
        PD_SUP_PARK   = -2, /* answer UNKNOWN only once everything is read */
        PD_SUP_BROKEN = -3, /* the connection ended */
};

typedef struct pd_sup_server_s pd_sup_server_t;

/* One run, from its START until FORGET. */
typedef struct pd_sup_run_s {
        int64_t id;
        int state;         /* PD_SUP_RUNNING or PD_SUP_FINISHED */
        int saved;         /* its outcome is in the log (on disk once
                            * the syncer has synced it) */
        size_t log_len;    /* bytes of its record in the log, once saved */
        int runner_failed; /* pd_runner_run returned -1 */
        int orphan;        /* loaded from a STARTED record: a dead
                            * supervisor's run, maybe still going */
        /* Stopped because the reactor went silent past its lease of
         * this many ms (pd__sup_lease_check); 0: not so. */
        int64_t lease_cut_ms;
        int pid; /* its process (and group) once spawned, */
        /* ... and when that process started, in clock ticks after boot
         * (field 22 of /proc/PID/stat): the first tick it may have, and
         * above bit 48 how many more (pd_sup_pstart_window); records of
         * older supervisors have the exact tick. */
        uint64_t pstart;
        volatile int cancel;
        pd_runner_t *rn; /* while it runs: watched by the loop */
        pd_sup_server_t *srv;
        /* While it runs: the START payload, which argv and envp point
         * into, and the job made of them. */
        char *start;
        char **argv;
        char **envp;
        pd_runner_job_t job;
        pd_runner_result_t res; /* its outcome, once finished */
        /* The newest progress the command reported, and whether it moved
         * since the last PROGRESS frame, sent at sent_ms (monotonic). */
        int64_t prog_done, prog_total, prog_sent_ms;
        int prog_dirty;
} pd_sup_run_t;

/* One client connection. */
typedef struct pd_sup_conn_s {
        int fd;
        pd_sup_buf_t in;  /* bytes read, not yet handled */
        pd_sup_buf_t out; /* replies not yet written */
        int64_t waiting;  /* run whose RESULT this connection awaits */
        int has_waiting;
        int eof;     /* the peer sent its last byte */
        int hup;     /* ... and is gone (poll said so) */
        int closing; /* refused: close once out is written */
        int dead;    /* close now */
} pd_sup_conn_t;

struct pd_sup_server_s {
        char *dir;
        char results[128]; /* DIR/supervisor (DIR < 108 bytes) */
        struct sockaddr_un sa;
        int64_t idle_ms;
        int lock_fd;    /* flock held for the process's lifetime */
        int listen_fd;  /* -1 once stopping */
        int results_fd; /* the folder, for fsync */
        unsigned umask; /* of commands whose START names none: the
                         * one the supervisor was started with */
        int event_fd;   /* the syncer -> loop */
        int signal_fd;
        pd_sup_conn_t **conns;
        size_t conn_cnt;
        size_t conn_cap; /* room in conns */
        pd_sup_run_t **runs;
        size_t run_cnt;
        size_t run_cap; /* room in runs */
        size_t running;
        int stopping;
        /* The reactor's lease (LEASE; 0: none): silent this long while
         * runs go on, it is taken for gone and its runs are stopped.
         * heard_ms is when any connection last sent a frame (monotonic). */
        int64_t lease_ms;
        int64_t heard_ms;
        /* The outcome log, DIR/supervisor/outcomes (pd__sup_log_write),
         * and what the syncer (pd__sup_syncer_main) works from; guarded by
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

/* outlog.c: the outcome log and its syncer. */
void pd__sup_log_started(pd_sup_buf_t *b, const pd_sup_run_t *run);
int pd__sup_log_write(pd_sup_server_t *srv, const char *p, size_t len,
                      pd_sup_run_t *run);
void *pd__sup_syncer_main(void *arg);
int pd__sup_log_bloated(pd_sup_server_t *srv, int quiet);
int pd__sup_all_synced(pd_sup_server_t *srv);
void pd__sup_persist(pd_sup_server_t *srv, pd_sup_run_t *run);
void pd__sup_persist_forget(pd_sup_server_t *srv, int64_t id);
int pd__sup_log_compact(pd_sup_server_t *srv);
int pd__sup_log_load(pd_sup_server_t *srv);
void pd__sup_syncer_stop(pd_sup_server_t *srv);

/* server.c: the run table, connections and requests. */
pd_sup_run_t *pd__sup_find(pd_sup_server_t *srv, int64_t id);
void pd__sup_run_destroy(pd_sup_run_t *run);
void pd__sup_run_add(pd_sup_server_t *srv, pd_sup_run_t *run);
void pd__sup_run_remove(pd_sup_server_t *srv, pd_sup_run_t *run);
int pd__sup_load(pd_sup_server_t *srv);
void pd__sup_conn_flush(pd_sup_conn_t *conn);
int pd__sup_conn_read(pd_sup_server_t *srv, pd_sup_conn_t *conn);
int pd__sup_accept(pd_sup_server_t *srv);
void pd__sup_conn_destroy(pd_sup_conn_t *conn);
void pd__sup_finish(pd_sup_server_t *srv, pd_sup_run_t *run);
void pd__sup_process(pd_sup_server_t *srv);
/* The running runs in the loop's poll: pd__sup_runs_prepare fills pfd and
 * owner (room for PD_RUNNER_PFD_MAX per
 * run) and lowers *timeout (ms, -1: none); returns
 * how many. pd__sup_runs_handle takes poll's answer, ending the runs whose
 * command exited. pd__sup_runs_end_all cancels every run and waits for
 * each (after an error only). */
struct pollfd;
size_t pd__sup_runs_prepare(pd_sup_server_t *srv, struct pollfd *pfd,
                            pd_sup_run_t **owner, int *timeout);
void pd__sup_runs_handle(pd_sup_server_t *srv, struct pollfd *pfd,
                         pd_sup_run_t **owner, size_t n);
void pd__sup_runs_end_all(pd_sup_server_t *srv);
/* Stops every run once the lease has passed with nothing heard from any
 * connection. Called after the loop has read and handled every
 * connection, so a PING that waited in a socket counts; while runs go on
 * the loop wakes at least every PD_RUNNER_TICK_MS, which bounds how late
 * the lease is seen to pass. */
void pd__sup_lease_check(pd_sup_server_t *srv, int64_t now);

#endif
