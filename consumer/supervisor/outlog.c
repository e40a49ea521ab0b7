/*
 * outlog.c - the supervisor's outcome log, DIR/supervisor/outcomes
 * (its records are described in consumer/supervisor.h): appending STARTED,
 * RESULT and FORGOTTEN records, the syncer thread that fdatasyncs them in
 * groups, the rewrite (compaction) without forgotten outcomes, and loading
 * it at start.
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
 * The loop hardly waits for the disk: outcomes are appended by the run
 * threads and synced by the syncer; the loop appends FORGOTTEN records
 * (a write to the page cache), and rewrites the log without the forgotten
 * outcomes at start, at exit, in a quiet second once they take over
 * 1 MiB of it, and at once when they also take more than half of it. So
 * however busy, the log stays under twice what is kept, or what is kept
 * plus 1 MiB, and each rewrite is paid for by as many bytes appended
 * since the last one.
 */
#include "consumer/supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* ------------------------------------------------------------------ */
/* The supervisor: durable outcomes                                     */

/* FNV-1a: tells a record a crash cut short from a whole one. */
static uint32_t sup_checksum(const char *p, size_t len) {
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)p[i]) * 16777619u;
        return h;
}

/* Appends to b a RESULT record of the log for run, or a FORGOTTEN record
 * for id when run is NULL: the frame, then its checksum. */
static void sup_log_record(pd_sup_buf_t *b, int64_t id,
                           const pd_sup_run_t *run) {
        size_t at = b->len;

        if (run) {
                pd_sup_result_put(b, id, run->runner_failed, &run->res);
        } else {
                size_t f = pd_sup_frame_begin(b, PD_SUP_F_FORGOTTEN);

                pd_sup_buf_i64(b, id);
                pd_sup_frame_end(b, f);
        }
        pd_sup_buf_u32(b, sup_checksum(b->p + at, b->len - at));
}

/* Appends to b a STARTED record of the log: run's process, so a
 * supervisor that finds the log of a dead one can stop what it left. */
void pd__sup_log_started(pd_sup_buf_t *b, const pd_sup_run_t *run) {
        size_t at = b->len;
        size_t f  = pd_sup_frame_begin(b, PD_SUP_F_STARTED);

        pd_sup_buf_i64(b, run->id);
        pd_sup_buf_u32(b, (uint32_t)run->pid);
        pd_sup_buf_le(b, run->pstart, 8);
        pd_sup_frame_end(b, f);
        pd_sup_buf_u32(b, sup_checksum(b->p + at, b->len - at));
}

/*
 * Appends len bytes of records to the log; with run set, they are run's
 * outcome, which the syncer then makes durable, and run->saved is set.
 * A write that fails is undone, so the log never holds a torn record
 * before whole ones. Returns 0, or -1 with errno. Any thread.
 */
int pd__sup_log_write(pd_sup_server_t *srv, const char *p, size_t len,
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

                        if (off &&
                            ftruncate(srv->log_fd, (off_t)srv->log_bytes))
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
static void sup_syncer_delay(pd_sup_server_t *srv) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += PD_SUP_SYNC_DELAY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        while (!srv->sync_stop &&
               pthread_cond_timedwait(&srv->log_cond, &srv->log_lock, &until) !=
                   ETIMEDOUT)
                ;
}

void *pd__sup_syncer_main(void *arg) {
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
                sup_syncer_delay(srv);
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
                               srv->results, pd_strerror(err));

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
int pd__sup_log_bloated(pd_sup_server_t *srv, int quiet) {
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
int pd__sup_all_synced(pd_sup_server_t *srv) {
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
void pd__sup_persist(pd_sup_server_t *srv, pd_sup_run_t *run) {
        pd_sup_buf_t b = {0};

        sup_log_record(&b, run->id, run);
        if (pd__sup_log_write(srv, b.p, b.len, run))
                pd_log(PD_LOG_ERROR,
                       "run %" PRId64
                       ": cannot save its outcome (%s/"
                       "outcomes: %s); it is kept in memory only",
                       run->id, srv->results, pd_strerror(errno));
        pd_sup_buf_free(&b);
}

/* Records that run id is forgotten, so a later supervisor does not load
 * it again. Not synced: one that comes back after a crash of the machine
 * is never asked for again, so it only costs its bytes. The loop's
 * thread. */
void pd__sup_persist_forget(pd_sup_server_t *srv, int64_t id) {
        pd_sup_buf_t b = {0};

        sup_log_record(&b, id, NULL);
        if (pd__sup_log_write(srv, b.p, b.len, NULL))
                pd_log(PD_LOG_WARN, "%s/outcomes: %s", srv->results,
                       pd_strerror(errno));
        pd_sup_buf_free(&b);
}

/*
 * Rewrites the log with only the outcomes not forgotten (those of the
 * table, and those a run thread has appended but the loop not yet seen):
 * a new file, synced, renamed over the log, the folder synced. Everything
 * in it is then durable. Holds the log while it works, so it is done when
 * the log has grown and the supervisor is quiet (or the log is mostly
 * forgotten outcomes: pd__sup_log_bloated), at start and at exit.
 * Returns 0, or -1 (logged; the old log stays). The loop's thread.
 */
int pd__sup_log_compact(pd_sup_server_t *srv) {
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
                        sup_log_record(&b, run->id, run);
                        run->log_len = b.len - at; /* an older file's, too */
                } else if (run->pid > 0) { /* running: set by this thread */
                        pd__sup_log_started(&b, run);
                }
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
                       pd_strerror(errno));
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
        pd_log(PD_LOG_ERROR, "cannot rewrite %s: %s", path, pd_strerror(errno));
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
static size_t sup_log_apply(pd_sup_server_t *srv, const char *p, size_t avail) {
        pd_sup_run_t *run = NULL, *old;
        pd_sup_rd_t rd;
        size_t size;
        unsigned type;
        int64_t id;

        if (avail < PD_SUP_HDR + 8 + 4)
                return 0;
        size = PD_SUP_HDR + (size_t)pd_sup_le32(p) + 4;
        if (pd_sup_le32(p) > PD_SUP_FRAME_MAX || size > avail ||
            pd_sup_le32(p + size - 4) != sup_checksum(p, size - 4))
                return 0;
        type = (unsigned char)p[4];
        rd   = (pd_sup_rd_t){p + PD_SUP_HDR, size - PD_SUP_HDR - 4, 0, 0};
        id   = pd_sup_rd_i64(&rd);
        if (type == PD_SUP_F_RESULT) {
                run = pd_xcalloc(1, sizeof(*run));
                if (pd_sup_result_get(&rd, &run->runner_failed, &run->res)) {
                        free(run);
                        return 0;
                }
                run->id      = id;
                run->srv     = srv;
                run->state   = PD_SUP_FINISHED;
                run->saved   = 1;
                run->log_len = size;
        } else if (type == PD_SUP_F_STARTED) {
                run         = pd_xcalloc(1, sizeof(*run));
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
        if ((old = pd__sup_find(srv, id)))
                pd__sup_run_remove(srv, old);
        if (run) {
                pd__sup_run_add(srv, run);
                srv->live_bytes += size; /* at start: no other thread */
        }
        return size;
}

/*
 * Opens the log and loads the outcomes it holds. A record that a crash of
 * the machine cut short ends it: that outcome never reached the disk, and
 * its run is unknown, as a run the crash interrupted. Returns 0, or -1
 * (logged).
 */
int pd__sup_log_load(pd_sup_server_t *srv) {
        char path[PD_SUP_PATH_MAX];
        struct stat sb;
        char *data = NULL;
        size_t len = 0, off = 0, n;
        int ret = -1;

        snprintf(path, sizeof(path), "%s/outcomes", srv->results);
        srv->log_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (srv->log_fd == -1 || fstat(srv->log_fd, &sb))
                goto out;
        len  = (size_t)sb.st_size;
        data = pd_xmalloc(len);
        while (off < len) {
                ssize_t r =
                    pread(srv->log_fd, data + off, len - off, (off_t)off);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        goto out;
                off += (size_t)r;
        }
        for (off = 0; off < len; off += n)
                if (!(n = sup_log_apply(srv, data + off, len - off)))
                        break;
        if (off < len)
                pd_log(PD_LOG_WARN,
                       "%s: the last %zu bytes are cut short (a crash of "
                       "the machine): dropped",
                       path, len - off);
        ret = 0;
out:
        if (ret)
                pd_log(PD_LOG_ERROR, "%s: %s", path, pd_strerror(errno));
        free(data);
        return ret;
}

/* Lets the syncer sync what is appended, and end. */
void pd__sup_syncer_stop(pd_sup_server_t *srv) {
        if (!srv->has_syncer)
                return;
        pthread_mutex_lock(&srv->log_lock);
        srv->sync_stop = 1;
        pthread_cond_broadcast(&srv->log_cond);
        pthread_mutex_unlock(&srv->log_lock);
        pthread_join(srv->syncer, NULL);
        srv->has_syncer = 0;
}
