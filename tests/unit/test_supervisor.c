/*
 * test_supervisor.c - command actions under the supervisor: outcomes,
 * at most one start per run id, adoption by a new client, durability
 * across a restart of the supervisor, cancel and timeout, the race of a
 * START left unread by a dead client, modes, idle exit, bad frames, the
 * lease (runs stopped when the reactor is silent past it).
 *
 * Each test starts its own supervisor: a forked child calls pd_sup_main,
 * which returns (and the child exits) once the socket listens, while the
 * serving process goes on in the background. The test process is a child
 * subreaper, so that process, and whatever a killed supervisor leaves
 * behind, become its children: teardown stops and reaps them, and checks
 * the supervisor exited 0 (under LeakSanitizer, a leak makes that fail).
 * Two tests start the supervisor the way the reactor does, by running
 * $PD_BUILD_DIR/postdeploy-reactor --supervisor; they are skipped when it
 * is not built.
 *
 * Commands that must stay running block on a FIFO until the test writes
 * to it; a command that must say it started writes to another FIFO. No
 * test sleeps to wait for something.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SO_PEERCRED, struct ucred */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include "common/clock.h"
#include "consumer/supervisor.h"
#include "consumer/supervisor/proto.h"

extern char **environ;

#define IDLE_LONG 60    /* teardown stops it first */
#define WAIT_MS   20000 /* a reply that takes this long is a failure */

/* Short paths: the state folder must fit a socket address. */
typedef struct fx_s {
        char base[64];  /* the test's temporary folder */
        char dir[80];   /* the state folder: base/state, not created */
        char go[80];    /* FIFO a blocked command waits on */
        char up[80];    /* FIFO a command says it started on */
        char count[80]; /* a line per command run */
} fx_t;

static int setup(void **state) {
        fx_t *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        /* Short: the supervisor's socket path must fit sun_path. */
        pd_test_tmpdir(fx->base, sizeof(fx->base), "test_sup", 40);
        snprintf(fx->dir, sizeof(fx->dir), "%s/state", fx->base);
        snprintf(fx->go, sizeof(fx->go), "%s/go", fx->base);
        snprintf(fx->up, sizeof(fx->up), "%s/up", fx->base);
        snprintf(fx->count, sizeof(fx->count), "%s/count", fx->base);
        assert_int_equal(mkfifo(fx->go, 0600), 0);
        assert_int_equal(mkfifo(fx->up, 0600), 0);
        *state = fx;
        return 0;
}


/* The pid of the process serving dir, or -1 if none answers. */
static pid_t serving_pid(const char *dir) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd        = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        pid_t pid     = -1;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/supervisor.sock", dir);
        if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
            !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
                pid = cred.pid;
        close(fd);
        return pid;
}

/* Reaps pid (one of ours, as the subreaper) and returns its wait status. */
static int reap(pid_t pid) {
        int wstatus = 0;

        while (waitpid(pid, &wstatus, 0) == -1)
                if (errno != EINTR)
                        fail_msg("waitpid(%ld): %s", (long)pid,
                                 strerror(errno));
        return wstatus;
}

static void assert_exit_0(int wstatus, const char *who) {
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus))
                fail_msg("%s: %s %d", who,
                         WIFEXITED(wstatus) ? "exit status" : "signal",
                         WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                            : WTERMSIG(wstatus));
}

static int teardown(void **state) {
        fx_t *fx    = *state;
        pid_t pid   = serving_pid(fx->dir);
        int wstatus = 0;

        if (pid > 0) {
                kill(pid, SIGTERM);
                wstatus = reap(pid);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        pd_test_rmtree(fx->base);
        free(fx);
        assert_exit_0(wstatus, "supervisor");
        return 0;
}

/* The reactor binary, or NULL when it is not built. */
static const char *reactor_exe(char *buf, size_t size) {
        const char *build = getenv("PD_BUILD_DIR");

        if (!build)
                return NULL;
        snprintf(buf, size, "%s/postdeploy-reactor", build);
        return access(buf, X_OK) ? NULL : buf;
}

/*
 * Starts a supervisor for fx->dir and returns its serving pid: the reactor
 * binary run as the reactor runs it when it is built (so LeakSanitizer
 * checks the supervisor when it exits), else a forked child that calls
 * pd_sup_main. Either way the started process returns once it listens.
 */
static pid_t start_supervisor(fx_t *fx, int idle_s) {
        char exe[PATH_MAX], idle[16];
        pid_t pid, serving;

        snprintf(idle, sizeof(idle), "%d", idle_s);
        fflush(NULL);
        pid = fork();
        assert_true(pid != -1);
        if (pid == 0) {
                if (reactor_exe(exe, sizeof(exe)))
                        execl(exe, exe, "--supervisor", fx->dir, "--idle", idle,
                              (char *)NULL);
                _exit(pd_sup_main(fx->dir, idle_s)); /* both halves */
        }
        assert_exit_0(reap(pid), "starting the supervisor");
        serving = serving_pid(fx->dir);
        assert_true(serving > 0);
        return serving;
}

static pd_sup_t *client(fx_t *fx) {
        char errstr[512];
        /* No binary to start: the test started the supervisor. */
        pd_sup_t *sup = pd_sup_connect(fx->dir, "/nonexistent", IDLE_LONG,
                                       errstr, sizeof(errstr));

        if (!sup)
                fail_msg("pd_sup_connect: %s", errstr);
        return sup;
}

/* Lets a command blocked on the FIFO go on (waits until it listens). */
static void release(const char *fifo) {
        int fd = open(fifo, O_WRONLY | O_CLOEXEC);

        assert_true(fd != -1);
        assert_int_equal(write(fd, "\n", 1), 1);
        close(fd);
}

/* Waits until a command has written to the FIFO and closed it. */
static void await_fifo(const char *fifo) {
        char buf[64];
        int fd = open(fifo, O_RDONLY | O_CLOEXEC);

        assert_true(fd != -1);
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        close(fd);
}

/* The lines of a file, as one string ("" if it is missing). */
static char *slurp(const char *path, char *buf, size_t size) {
        FILE *fp = fopen(path, "r");
        size_t n = 0;

        if (fp) {
                n = fread(buf, 1, size - 1, fp);
                fclose(fp);
        }
        buf[n] = '\0';
        return buf;
}

static void assert_mode(const char *path, mode_t type, mode_t mode) {
        struct stat sb;

        if (stat(path, &sb))
                fail_msg("stat(%s): %s", path, strerror(errno));
        if ((sb.st_mode & S_IFMT) != type)
                fail_msg("%s: wrong file type", path);
        if ((sb.st_mode & 07777) != mode)
                fail_msg("%s: mode %04o, expected %04o", path,
                         (unsigned)(sb.st_mode & 07777), (unsigned)mode);
}

static int exists(const char *path) {
        struct stat sb;

        return !stat(path, &sb);
}

/* The log of outcomes. */
static void log_path(const fx_t *fx, char *buf, size_t size) {
        snprintf(buf, size, "%s/supervisor/outcomes", fx->dir);
}

static off_t size_of(const char *path) {
        struct stat sb;

        return stat(path, &sb) ? -1 : sb.st_size;
}

/* Runs `sh -c script sh args...` as run id through the client. */
static int run_sh(pd_sup_t *sup, int64_t id, const char *script,
                  const char *arg1, const char *arg2, int64_t timeout_ms,
                  volatile int *cancel, pd_runner_result_t *res) {
        char *argv[] = {"sh",         "-c", (char *)script, "sh", (char *)arg1,
                        (char *)arg2, NULL};
        pd_runner_job_t job = {0};

        job.argv       = argv;
        job.envp       = environ;
        job.timeout_ms = timeout_ms;
        job.cancel     = cancel;
        return pd_sup_run(sup, id, &job, res);
}

/* ---- the raw protocol, as a client that crashes would leave it ---- */

typedef struct frame_s {
        unsigned char b[64 * 1024];
        size_t n;
} frame_t;

static void f_begin(frame_t *f, unsigned type) {
        f->n    = 5;
        f->b[4] = (unsigned char)type;
}

static void f_le(frame_t *f, uint64_t v, int n) {
        for (int i = 0; i < n; i++)
                f->b[f->n++] = (unsigned char)(v >> (8 * i));
}

static void f_str(frame_t *f, const char *s) {
        size_t len = strlen(s) + 1;

        assert_true(f->n + len <= sizeof(f->b));
        memcpy(f->b + f->n, s, len);
        f->n += len;
}

static void f_send(int fd, frame_t *f) {
        size_t len = f->n - 5;

        for (int i = 0; i < 4; i++)
                f->b[i] = (unsigned char)(len >> (8 * i));
        assert_int_equal(write(fd, f->b, f->n), (ssize_t)f->n);
}

static void f_send_id(int fd, unsigned type, int64_t id) {
        frame_t f;

        f_begin(&f, type);
        f_le(&f, (uint64_t)id, 8);
        f_send(fd, &f);
}

/* A START of `sh -c script sh arg1` with a minimal environment. */
static void f_send_start(int fd, int64_t id, const char *script,
                         const char *arg1) {
        frame_t f;

        f_begin(&f, PD_SUP_F_START);
        f_le(&f, (uint64_t)id, 8);
        f_le(&f, 0, 8); /* no timeout */
        f_le(&f, 5, 4);
        f_str(&f, "sh");
        f_str(&f, "-c");
        f_str(&f, script);
        f_str(&f, "sh");
        f_str(&f, arg1);
        f_le(&f, 1, 4);
        f_str(&f, "PATH=/usr/local/bin:/usr/bin:/bin");
        f_str(&f, "");
        f_str(&f, "");
        f_send(fd, &f);
}

static int raw_connect(const fx_t *fx) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd                = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/supervisor.sock",
                 fx->dir);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

static void read_full(int fd, void *buf, size_t len) {
        size_t off = 0;

        while (off < len) {
                struct pollfd pfd = {fd, POLLIN, 0};
                ssize_t n;

                if (poll(&pfd, 1, WAIT_MS) != 1)
                        fail_msg("no reply from the supervisor");
                n = read(fd, (char *)buf + off, len - off);
                if (n <= 0)
                        fail_msg("connection ended mid-frame");
                off += (size_t)n;
        }
}

/* Reads a frame; returns its type and the run id it starts with. Returns
 * -1 at the end of the connection. */
static int f_recv(int fd, int64_t *id) {
        unsigned char hdr[5];
        static unsigned char payload[8192];
        struct pollfd pfd = {fd, POLLIN, 0};
        uint32_t len;
        ssize_t n;

        if (poll(&pfd, 1, WAIT_MS) != 1)
                fail_msg("no reply from the supervisor");
        n = read(fd, hdr, 1);
        if (n == 0)
                return -1;
        assert_int_equal(n, 1);
        read_full(fd, hdr + 1, 4);
        len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
              (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
        assert_true(len >= 8 && len <= sizeof(payload));
        read_full(fd, payload, len);
        *id = 0;
        for (int i = 0; i < 8; i++)
                *id |= (int64_t)((uint64_t)payload[i] << (8 * i));
        return hdr[4];
}

static void assert_reply(int fd, int type, int64_t id) {
        int64_t got;

        assert_int_equal(f_recv(fd, &got), type);
        assert_int_equal(got, id);
}

/* A script that records its run, then waits for the go FIFO. */
#define SH_COUNT_THEN_WAIT "echo \"$1\" >> \"$2\"; read x < \"$3\"; echo done"

/* ---- outcomes ---- */

static void test_run_reports_exit_code_tail_and_log(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char *argv[] = {"sh", "-c", "echo hello; echo oops >&2; exit 3", NULL};
        char *missing[]     = {"/nonexistent/cmd", NULL};
        pd_runner_job_t job = {0};
        char log[256], buf[256], path[256];
        pd_sup_t *sup;

        off_t sizes[4];

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        log_path(fx, path, sizeof(path));
        sizes[0] = size_of(path);
        snprintf(log, sizeof(log), "%s/logs/t/run-1.log", fx->base);
        job.argv     = argv;
        job.log_path = log;
        assert_int_equal(pd_sup_run(sup, 1, &job, res), 0);
        sizes[1] = size_of(path);
        assert_int_equal(res->status, PD_ST_FAILED);
        assert_true(res->has_exit_code);
        assert_int_equal(res->exit_code, 3);
        assert_string_equal(res->error, "exited with status 3");
        assert_string_equal(res->tail, "hello\noops\n");
        assert_int_equal(res->tail_len, 11);
        assert_int_equal(res->output_bytes, 11);
        assert_string_equal(slurp(log, buf, sizeof(buf)), "hello\noops\n");
        assert_mode(log, S_IFREG, 0600);

        assert_int_equal(run_sh(sup, 2, "exit 0", "", "", 0, NULL, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
        assert_string_equal(res->error, "");
        sizes[2] = size_of(path);

        job.argv     = missing;
        job.log_path = NULL;
        assert_int_equal(pd_sup_run(sup, 3, &job, res), 0);
        sizes[3] = size_of(path);
        assert_int_equal(res->status, PD_ST_FAILED);
        assert_int_equal(res->exit_code, 127);
        assert_non_null(strstr(res->error, "cannot execute"));

        /* Each outcome is in the log before anyone hears of it. */
        assert_mode(path, S_IFREG, 0600);
        for (int i = 1; i <= 3; i++)
                assert_true(sizes[i] > sizes[i - 1]);
        pd_sup_close(sup);
        free(res);
}

static void test_same_run_id_twice_runs_once(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char buf[256];
        pd_sup_t *sup;
        int a, b;

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        /* Again after it finished: the same outcome, no second run. */
        for (int i = 0; i < 2; i++) {
                assert_int_equal(run_sh(sup, 7, "echo \"$1\" >> \"$2\"; exit 4",
                                        "7", fx->count, 0, NULL, res),
                                 0);
                assert_int_equal(res->exit_code, 4);
        }
        assert_string_equal(slurp(fx->count, buf, sizeof(buf)), "7\n");

        /* Again while it runs: told RUNNING, and both get the RESULT. */
        a = raw_connect(fx);
        b = raw_connect(fx);
        {
                frame_t f;

                f_begin(&f, PD_SUP_F_START);
                f_le(&f, 8, 8);
                f_le(&f, 0, 8);
                f_le(&f, 7, 4);
                f_str(&f, "sh");
                f_str(&f, "-c");
                f_str(&f, SH_COUNT_THEN_WAIT);
                f_str(&f, "sh");
                f_str(&f, "8");
                f_str(&f, fx->count);
                f_str(&f, fx->go);
                f_le(&f, 0, 4);
                f_str(&f, "");
                f_str(&f, "");
                f_send(a, &f);
                assert_reply(a, PD_SUP_F_STARTED, 8);
                f_send(b, &f);
                assert_reply(b, PD_SUP_F_RUNNING, 8);
        }
        release(fx->go);
        assert_reply(a, PD_SUP_F_RESULT, 8);
        assert_reply(b, PD_SUP_F_RESULT, 8);
        assert_string_equal(slurp(fx->count, buf, sizeof(buf)), "7\n8\n");
        close(a);
        close(b);
        pd_sup_close(sup);
        free(res);
}

/* ---- adoption ---- */

static void test_new_client_adopts_run_of_a_client_that_left(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char script[256];
        pd_sup_t *sup;
        int a;

        start_supervisor(fx, IDLE_LONG);
        snprintf(script, sizeof(script), "read x < \"$1\"; echo done; exit 4");
        a = raw_connect(fx);
        f_send_start(a, 10, script, fx->go);
        assert_reply(a, PD_SUP_F_STARTED, 10);
        close(a); /* the reactor is gone; the run goes on */

        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 10, res), PD_SUP_RUNNING);
        release(fx->go);
        assert_int_equal(pd_sup_wait(sup, 10, NULL, res), PD_SUP_FINISHED);
        assert_int_equal(res->status, PD_ST_FAILED);
        assert_int_equal(res->exit_code, 4);
        assert_string_equal(res->tail, "done\n");
        pd_sup_close(sup);

        /* That client is gone too: a third one still gets the outcome. */
        memset(res, 0, sizeof(*res));
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 10, res), PD_SUP_FINISHED);
        assert_int_equal(res->exit_code, 4);
        assert_string_equal(res->tail, "done\n");
        /* WAIT of a finished run answers at once; of an unknown one,
         * UNKNOWN. */
        assert_int_equal(pd_sup_wait(sup, 10, NULL, res), PD_SUP_FINISHED);
        assert_int_equal(pd_sup_wait(sup, 11, NULL, res), PD_SUP_UNKNOWN);
        assert_int_equal(pd_sup_status(sup, 11, res), PD_SUP_UNKNOWN);
        pd_sup_close(sup);
        free(res);
}

static void test_forget_outlives_a_restart(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char path[256];
        pd_sup_t *sup;
        off_t before;
        pid_t pid;
        int a;

        pid = start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(run_sh(sup, 20, "exit 0", "", "", 0, NULL, res), 0);
        /* The FORGET of the run just ended rides with the next request,
         * and is handled before it: gone from memory at once. */
        assert_int_equal(pd_sup_forget(sup, 20), 0);
        assert_int_equal(pd_sup_status(sup, 20, res), PD_SUP_UNKNOWN);
        assert_int_equal(pd_sup_forget(sup, 20), 0); /* unknown: fine */
        assert_int_equal(run_sh(sup, 22, "exit 2", "", "", 0, NULL, res), 0);
        /* One held when the handle closes is sent all the same. */
        assert_int_equal(run_sh(sup, 23, "exit 0", "", "", 0, NULL, res), 0);
        assert_int_equal(pd_sup_forget(sup, 23), 0);
        pd_sup_close(sup);
        sup = client(fx);
        for (int i = 0; pd_sup_status(sup, 23, res) != PD_SUP_UNKNOWN; i++) {
                assert_true(i < 500);
                poll(NULL, 0, 10);
        }
        pd_sup_close(sup);

        /* ... and for a supervisor started after a crash, which keeps
         * only what is not forgotten. */
        log_path(fx, path, sizeof(path));
        before = size_of(path);
        kill(pid, SIGKILL);
        reap(pid);
        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 20, res), PD_SUP_UNKNOWN);
        assert_int_equal(pd_sup_status(sup, 23, res), PD_SUP_UNKNOWN);
        assert_int_equal(pd_sup_status(sup, 22, res), PD_SUP_FINISHED);
        assert_int_equal(res->exit_code, 2);
        assert_true(size_of(path) < before);

        /* A running run cannot be forgotten. */
        a = raw_connect(fx);
        f_send_start(a, 21, "read x < \"$1\"", fx->go);
        assert_reply(a, PD_SUP_F_STARTED, 21);
        assert_int_equal(pd_sup_forget(sup, 21), -1);
        release(fx->go);
        assert_reply(a, PD_SUP_F_RESULT, 21);
        assert_int_equal(pd_sup_forget(sup, 21), 0);
        close(a);
        pd_sup_close(sup);
        free(res);
}

static void test_log_stays_bounded_while_busy(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        /* Runs back to back leave no quiet second to compact in. Each
         * outcome carries a 4000-byte tail: 800 of them write over 3 MiB. */
        const char *script = "printf '%4000s' \"$1\"";
        off_t size, peak = 0;
        char path[256];
        pd_sup_t *sup;
        pid_t pid;

        pid = start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        log_path(fx, path, sizeof(path));
        /* One outcome the reactor has not recorded yet: kept throughout. */
        assert_int_equal(run_sh(sup, 1, script, "kept", "", 0, NULL, res), 0);
        for (int64_t id = 2; id < 802; id++) {
                assert_int_equal(
                    run_sh(sup, id, script, "gone", "", 0, NULL, res), 0);
                assert_int_equal(res->tail_len, 4000);
                assert_int_equal(pd_sup_forget(sup, id), 0);
                size = size_of(path);
                if (size > peak)
                        peak = size;
        }
        /* The forgotten outcomes went while busy: never much over 1 MiB
         * of them (the rest would be 3 MiB). */
        if (peak > 1024 * 1024 + 64 * 1024)
                fail_msg("the log grew to %lld bytes", (long long)peak);
        pd_sup_close(sup);

        /* What the rewrites kept is durable and whole. */
        kill(pid, SIGKILL);
        reap(pid);
        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 1, res), PD_SUP_FINISHED);
        assert_int_equal(res->tail_len, 4000);
        assert_memory_equal(res->tail + 3996, "kept", 4);
        assert_int_equal(pd_sup_status(sup, 2, res), PD_SUP_UNKNOWN);
        assert_int_equal(pd_sup_status(sup, 700, res), PD_SUP_UNKNOWN);
        pd_sup_close(sup);
        free(res);
}

/* A RESULT an older supervisor wrote (to its log, or to a reactor) has no
 * end time after its output count: it decodes, the end time unknown (0). */
static void test_a_result_without_its_end_time_still_decodes(void **state) {
        pd_runner_result_t res = {.status      = PD_ST_SUCCEEDED,
                                  .duration_ms = 12,
                                  .ended_at_ms = 1796449797645};
        pd_runner_result_t got;
        pd_sup_buf_t b = {0};
        pd_sup_rd_t rd;
        int failed;

        (void)state;
        pd_sup_result_put(&b, 7, 0, &res);
        /* The payload after the header and the run's id. */
        rd = (pd_sup_rd_t){.p   = b.p + PD_SUP_HDR + 8,
                           .len = b.len - PD_SUP_HDR - 8};
        assert_int_equal(pd_sup_result_get(&rd, &failed, &got), 0);
        assert_int_equal(got.ended_at_ms, 1796449797645);
        assert_int_equal(got.duration_ms, 12);
        rd = (pd_sup_rd_t){.p   = b.p + PD_SUP_HDR + 8,
                           .len = b.len - PD_SUP_HDR - 8 - 8};
        assert_int_equal(pd_sup_result_get(&rd, &failed, &got), 0);
        assert_int_equal(got.ended_at_ms, 0);
        assert_int_equal(got.duration_ms, 12);
        pd_sup_buf_free(&b);
}

static void test_restarted_supervisor_reports_finished_run(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char path[256];
        pd_sup_t *sup;
        pid_t pid;
        FILE *fp;

        int64_t before, after;

        pid    = start_supervisor(fx, IDLE_LONG);
        sup    = client(fx);
        before = pd_now_ms();
        assert_int_equal(
            run_sh(sup, 30, "printf x; exit 5", "", "", 0, NULL, res), 0);
        after = pd_now_ms();
        pd_sup_close(sup);

        /* Killed outright: it leaves its socket behind. */
        kill(pid, SIGKILL);
        reap(pid);
        snprintf(path, sizeof(path), "%s/supervisor.sock", fx->dir);
        assert_true(exists(path));
        /* An outcome that a crash of the machine cut short ends the log
         * (a RESULT of id 33 that never got past its first bytes). */
        log_path(fx, path, sizeof(path));
        assert_non_null(fp = fopen(path, "a"));
        fwrite("\x40\x00\x00\x00\x84\x21\x00\x00", 1, 8, fp);
        fclose(fp);

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        memset(res, 0, sizeof(*res));
        assert_int_equal(pd_sup_status(sup, 30, res), PD_SUP_FINISHED);
        assert_int_equal(res->status, PD_ST_FAILED);
        assert_int_equal(res->exit_code, 5);
        assert_string_equal(res->tail, "x");
        assert_int_equal(res->output_bytes, 1);
        /* When it ended, kept across the restart: a redelivered event's
         * record of it carries its own times (consumer/record.c). */
        assert_true(res->ended_at_ms >= before && res->ended_at_ms <= after);
        assert_int_equal(pd_sup_status(sup, 33, res), PD_SUP_UNKNOWN);
        pd_sup_close(sup);
        free(res);
}

/* The supervisor works from "/": relative paths are the client's. */
static void test_relative_paths_mean_what_they_mean_to_the_client(
    void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char *argv[]            = {"sh", "-c", "pwd -P", NULL};
        char old[PATH_MAX], real[PATH_MAX], expect[PATH_MAX + 8];
        char errstr[256], path[256];
        pd_runner_job_t job = {0};
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        assert_non_null(getcwd(old, sizeof(old)));
        assert_int_equal(chdir(fx->base), 0);
        assert_non_null(realpath(fx->base, real));
        assert_int_equal(mkdir("sub", 0700), 0);
        sup = pd_sup_connect("state", "/nonexistent", IDLE_LONG, errstr,
                             sizeof(errstr));
        if (!sup)
                fail_msg("pd_sup_connect(state): %s", errstr);

        job.argv     = argv;
        job.log_path = "logs/run.log";
        assert_int_equal(pd_sup_run(sup, 45, &job, res), 0);
        snprintf(expect, sizeof(expect), "%s\n", real);
        assert_string_equal(res->tail, expect);
        job.workdir = "sub";
        assert_int_equal(pd_sup_run(sup, 46, &job, res), 0);
        snprintf(expect, sizeof(expect), "%s/sub\n", real);
        assert_string_equal(res->tail, expect);
        assert_int_equal(chdir(old), 0);
        snprintf(path, sizeof(path), "%s/logs/run.log", fx->base);
        assert_true(exists(path));
        pd_sup_close(sup);
        free(res);
}

/* ---- stopping a run ---- */

typedef struct runner_arg_s {
        fx_t *fx;
        pd_sup_t *sup;
        volatile int cancel;
        pd_runner_result_t res;
        int ret;
} runner_arg_t;

static void *cancel_target(void *arg) {
        runner_arg_t *ra = arg;

        ra->ret = run_sh(ra->sup, 40, "echo up > \"$1\"; exec sleep 30",
                         ra->fx->up, "", 0, &ra->cancel, &ra->res);
        return NULL;
}

static void test_cancel_is_interrupted(void **state) {
        fx_t *fx         = *state;
        runner_arg_t *ra = calloc(1, sizeof(*ra));
        pthread_t th;

        start_supervisor(fx, IDLE_LONG);
        ra->fx  = fx;
        ra->sup = client(fx);
        assert_int_equal(pthread_create(&th, NULL, cancel_target, ra), 0);
        await_fifo(fx->up);
        ra->cancel = 1;
        pthread_join(th, NULL);
        assert_int_equal(ra->ret, 0);
        assert_int_equal(ra->res.status, PD_ST_INTERRUPTED);
        assert_false(ra->res.has_exit_code);
        assert_int_equal(ra->res.term_signal, SIGTERM);
        assert_string_equal(ra->res.error,
                            "interrupted: reactor shutting down");
        pd_sup_close(ra->sup);
        free(ra);
}

/* What the client handed to job.progress: how often, the last value, and
 * whether done ever went back. */
typedef struct heard_s {
        int calls;
        int64_t done, total;
        int backwards;
} heard_t;

static void heard_progress(void *opaque, int64_t done, int64_t total) {
        heard_t *h = opaque;

        h->backwards |= h->calls && done < h->done;
        h->calls++;
        h->done  = done;
        h->total = total;
}

/* A command's progress lines reach the client in PROGRESS frames: the
 * newest at most every 100 ms, and the last before the RESULT. */
static void test_progress_reaches_the_client_at_most_ten_a_second(
    void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        /* 100 lines, one every 10 ms or so (each read finds one): the
         * throttle, not the reads, bounds the frames. */
        char *argv[]        = {"sh", "-c",
                               "i=1; while [ $i -le 100 ]; do echo \"$i 100\"; "
                                      "sleep 0.01; i=$((i + 1)); done >&3",
                               NULL};
        pd_runner_job_t job = {0};
        heard_t h           = {0, 0, 0, 0};
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        sup          = client(fx);
        job.argv     = argv;
        job.envp     = environ;
        job.progress = heard_progress;
        job.opaque   = &h;
        assert_int_equal(pd_sup_run(sup, 60, &job, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
        assert_int_equal(h.done, 100);
        assert_int_equal(h.total, 100);
        assert_false(h.backwards);
        /* One frame per 100 ms of the run, the first and the last. */
        assert_true(h.calls >= 2);
        assert_true(h.calls <= res->duration_ms / 100 + 2);
        /* A run without a taker: the frames are dropped, the run is the
         * same. */
        job.progress = NULL;
        assert_int_equal(pd_sup_run(sup, 61, &job, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
        pd_sup_close(sup);
        free(res);
}

static void test_timeout_is_timed_out(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(
            run_sh(sup, 41, "exec sleep 30", "", "", 300, NULL, res), 0);
        assert_int_equal(res->status, PD_ST_TIMED_OUT);
        assert_string_equal(res->error, "timed out after 300ms");
        assert_true(res->duration_ms >= 300 && res->duration_ms < 10000);
        pd_sup_close(sup);
        free(res);
}

/* ---- the race ---- */

/*
 * A reactor sends START and dies; a new one asks STATUS. The new client
 * is connected (and served) before the dead one's connection exists, so
 * the supervisor meets the STATUS first: it must read the dead
 * connection's START before it may answer, and run it exactly once.
 */
static void test_unread_start_of_a_dead_client_is_never_unknown(void **state) {
        enum { N = 50 };
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char *buf = calloc(1, 4096), expect[4096] = "";
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 99, res), PD_SUP_UNKNOWN);
        for (int64_t id = 100; id < 100 + N; id++) {
                char arg[32];
                int a = raw_connect(fx);
                int st;

                snprintf(arg, sizeof(arg), "%" PRId64, id);
                {
                        frame_t f;

                        f_begin(&f, PD_SUP_F_START);
                        f_le(&f, (uint64_t)id, 8);
                        f_le(&f, 0, 8);
                        f_le(&f, 6, 4);
                        f_str(&f, "sh");
                        f_str(&f, "-c");
                        f_str(&f, "echo \"$1\" >> \"$2\"");
                        f_str(&f, "sh");
                        f_str(&f, arg);
                        f_str(&f, fx->count);
                        f_le(&f, 0, 4);
                        f_str(&f, "");
                        f_str(&f, "");
                        f_send(a, &f);
                }
                close(a);
                st = pd_sup_status(sup, id, res);
                if (st != PD_SUP_RUNNING && st != PD_SUP_FINISHED)
                        fail_msg("run %" PRId64 ": status %d", id, st);
        }
        for (int64_t id = 100; id < 100 + N; id++) {
                assert_int_equal(pd_sup_wait(sup, id, NULL, res),
                                 PD_SUP_FINISHED);
                assert_int_equal(res->status, PD_ST_SUCCEEDED);
                snprintf(expect + strlen(expect),
                         sizeof(expect) - strlen(expect), "%" PRId64 "\n", id);
        }
        /* Each ran once; their order is the supervisor's business. */
        slurp(fx->count, buf, 4096);
        assert_int_equal(strlen(buf), strlen(expect));
        for (char *line = strtok(expect, "\n"); line;
             line       = strtok(NULL, "\n")) {
                char needle[40];
                char *hit;

                snprintf(needle, sizeof(needle), "%s\n", line);
                hit = strstr(buf, needle);
                assert_non_null(hit);
                assert_true(hit == buf || hit[-1] == '\n');
        }
        pd_sup_close(sup);
        free(buf);
        free(res);
}

/* ---- files, life cycle, bad input ---- */

/* Runs, as run id, a command that creates fx->base/NAME and prints its
 * mode, with umask mask when has_umask; returns the mode it printed. */
static unsigned created_mode(fx_t *fx, pd_sup_t *sup, int64_t id,
                             const char *name, int has_umask, unsigned mask) {
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char path[256];
        char *argv[]        = {"sh", "-c", ": > \"$1\"; stat -c %a \"$1\"",
                               "sh", path, NULL};
        pd_runner_job_t job = {0};
        unsigned mode;

        snprintf(path, sizeof(path), "%s/%s", fx->base, name);
        job.argv      = argv;
        job.envp      = environ;
        job.has_umask = has_umask;
        job.umask     = mask;
        assert_int_equal(pd_sup_run(sup, id, &job, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
        mode = (unsigned)strtoul(res->tail, NULL, 8);
        free(res);
        return mode;
}

static void test_commands_get_the_starters_umask_or_their_own(void **state) {
        fx_t *fx   = *state;
        mode_t old = umask(022); /* the operator's, as the reactor has it */
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        umask(old);
        sup = client(fx);
        /* Not the supervisor's own 077: files an action writes for the
         * application are readable by it. */
        assert_int_equal(created_mode(fx, sup, 1, "default", 0, 0), 0644);
        assert_int_equal(created_mode(fx, sup, 2, "private", 1, 077), 0600);
        assert_int_equal(created_mode(fx, sup, 3, "group", 1, 007), 0660);
        /* The supervisor's own files stay private meanwhile. */
        assert_mode(fx->dir, S_IFDIR, 0700);
        pd_sup_close(sup);
}

static void test_socket_folder_and_files_are_private(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char path[256];
        pd_sup_t *sup;

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(run_sh(sup, 50, "exit 0", "", "", 0, NULL, res), 0);
        assert_mode(fx->dir, S_IFDIR, 0700);
        snprintf(path, sizeof(path), "%s/supervisor.sock", fx->dir);
        assert_mode(path, S_IFSOCK, 0600);
        snprintf(path, sizeof(path), "%s/supervisor", fx->dir);
        assert_mode(path, S_IFDIR, 0700);
        snprintf(path, sizeof(path), "%s/supervisor/lock", fx->dir);
        assert_mode(path, S_IFREG, 0600);
        snprintf(path, sizeof(path), "%s/supervisor.log", fx->dir);
        assert_mode(path, S_IFREG, 0600);
        log_path(fx, path, sizeof(path));
        assert_mode(path, S_IFREG, 0600);
        pd_sup_close(sup);
        free(res);
}

/* Waits for pid (ours) to exit by itself and returns its wait status. */
static int await_exit(pid_t pid) {
        int pidfd = pidfd_open(pid, 0);
        struct pollfd pfd;

        assert_true(pidfd != -1);
        pfd = (struct pollfd){pidfd, POLLIN, 0};
        if (poll(&pfd, 1, WAIT_MS) != 1)
                fail_msg("pid %ld did not exit", (long)pid);
        close(pidfd);
        return reap(pid);
}

static void test_exits_when_idle_and_keeps_outcomes(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char path[256], errstr[256];
        pd_sup_t *sup;
        pid_t pid;

        pid = start_supervisor(fx, 1);
        sup = client(fx);
        assert_int_equal(run_sh(sup, 60, "exit 6", "", "", 0, NULL, res), 0);
        pd_sup_close(sup);

        /* Unforgotten but on disk: nothing keeps it. */
        assert_exit_0(await_exit(pid), "supervisor");
        snprintf(path, sizeof(path), "%s/supervisor.sock", fx->dir);
        assert_false(exists(path));
        log_path(fx, path, sizeof(path));
        assert_true(size_of(path) > 0);
        /* Nothing answers now, and this client cannot start one. */
        assert_null(
            pd_sup_connect(fx->dir, "/nonexistent", 1, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "/nonexistent"));

        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 60, res), PD_SUP_FINISHED);
        assert_int_equal(res->exit_code, 6);
        pd_sup_close(sup);
        free(res);
}

static void test_bad_frames_are_refused_without_harm(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        unsigned char huge[5]   = {0, 0, 0x20, 0, PD_SUP_F_STATUS}; /* 2 MiB */
        pd_sup_t *sup;
        int64_t id;
        frame_t f;
        int a;

        start_supervisor(fx, IDLE_LONG);
        a = raw_connect(fx);
        assert_int_equal(write(a, huge, sizeof(huge)), 5);
        assert_int_equal(f_recv(a, &id), PD_SUP_F_ERROR);
        assert_int_equal(f_recv(a, &id), -1); /* and closed */
        close(a);

        /* A START without argv, and an unknown type. */
        a = raw_connect(fx);
        f_begin(&f, PD_SUP_F_START);
        f_le(&f, 70, 8);
        f_le(&f, 0, 8);
        f_le(&f, 0, 4);
        f_le(&f, 0, 4);
        f_str(&f, "");
        f_str(&f, "");
        f_send(a, &f);
        assert_int_equal(f_recv(a, &id), PD_SUP_F_ERROR);
        close(a);
        a = raw_connect(fx);
        f_send_id(a, 0x42, 71);
        assert_int_equal(f_recv(a, &id), PD_SUP_F_ERROR);
        close(a);

        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 70, res), PD_SUP_UNKNOWN);
        pd_sup_close(sup);
        free(res);
}

/* ---- as the reactor starts it ---- */

static void test_connect_starts_a_supervisor_that_exits_clean(void **state) {
        fx_t *fx                = *state;
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        char exe[PATH_MAX], errstr[512];
        pd_sup_t *sup;
        pid_t pid;

        if (!reactor_exe(exe, sizeof(exe))) {
                free(res);
                fail_msg(
                    "needs $PD_BUILD_DIR/postdeploy-reactor (run it "
                    "through ctest)");
        }
        sup = pd_sup_connect(fx->dir, exe, 1, errstr, sizeof(errstr));
        if (!sup)
                fail_msg("pd_sup_connect: %s", errstr);
        pid = serving_pid(fx->dir);
        assert_true(pid > 0);
        assert_int_equal(run_sh(sup, 80, "echo hi", "", "", 0, NULL, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
        assert_string_equal(res->tail, "hi\n");
        assert_int_equal(pd_sup_forget(sup, 80), 0);
        pd_sup_close(sup);
        /* Exit status 0: under LeakSanitizer, leak-free too. */
        assert_exit_0(await_exit(pid), "supervisor");
        free(res);
}

typedef struct connector_s {
        const char *dir;
        const char *exe;
        pd_sup_t *sup;
        char errstr[256];
} connector_t;

static void *connector(void *arg) {
        connector_t *c = arg;

        c->sup =
            pd_sup_connect(c->dir, c->exe, 1, c->errstr, sizeof(c->errstr));
        return NULL;
}

/* The reactor's workers all connect at once when it starts: one
 * supervisor comes up, and every one of them reaches it. */
static void test_clients_starting_at_once_share_one_supervisor(void **state) {
        enum { N = 6 };
        fx_t *fx = *state;
        connector_t c[N];
        pthread_t th[N];
        char exe[PATH_MAX];
        pid_t pid;

        if (!reactor_exe(exe, sizeof(exe)))
                fail_msg(
                    "needs $PD_BUILD_DIR/postdeploy-reactor (run it "
                    "through ctest)");
        for (int i = 0; i < N; i++) {
                c[i] = (connector_t){fx->dir, exe, NULL, ""};
                assert_int_equal(pthread_create(&th[i], NULL, connector, &c[i]),
                                 0);
        }
        for (int i = 0; i < N; i++) {
                pthread_join(th[i], NULL);
                if (!c[i].sup)
                        fail_msg("client %d: %s", i, c[i].errstr);
        }
        pid = serving_pid(fx->dir);
        assert_true(pid > 0);
        /* Each asks, and is answered, on its own connection. */
        for (int i = 0; i < N; i++) {
                pd_runner_result_t res;

                assert_int_equal(pd_sup_status(c[i].sup, i, &res),
                                 PD_SUP_UNKNOWN);
                pd_sup_close(c[i].sup);
        }
        /* The others that were started found the lock taken and left:
         * the one serving is the only one to exit now. */
        assert_exit_0(await_exit(pid), "supervisor");
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        assert_int_equal(serving_pid(fx->dir), -1);
}

static void *lost_target(void *arg) {
        runner_arg_t *ra = arg;

        ra->ret =
            run_sh(ra->sup, 90, "echo $$ > \"$1\"; read x < \"$2\"; exit 0",
                   ra->fx->up, ra->fx->go, 0, NULL, &ra->res);
        return NULL;
}

static void test_run_whose_supervisor_died_is_killed_and_interrupted(
    void **state) {
        fx_t *fx         = *state;
        runner_arg_t *ra = calloc(1, sizeof(*ra));
        char exe[PATH_MAX], errstr[512], buf[64];
        pthread_t th;
        pid_t pid, orphan;
        int fd, wstatus;
        ssize_t n;

        if (!reactor_exe(exe, sizeof(exe))) {
                free(ra);
                fail_msg(
                    "needs $PD_BUILD_DIR/postdeploy-reactor (run it "
                    "through ctest)");
        }
        ra->fx = fx;
        ra->sup =
            pd_sup_connect(fx->dir, exe, IDLE_LONG, errstr, sizeof(errstr));
        if (!ra->sup)
                fail_msg("pd_sup_connect: %s", errstr);
        pid = serving_pid(fx->dir);
        assert_int_equal(pthread_create(&th, NULL, lost_target, ra), 0);
        fd = open(fx->up, O_RDONLY | O_CLOEXEC);
        assert_true(fd != -1);
        n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        close(fd);
        orphan = (pid_t)atol(buf);
        /* The command runs; killed once its STARTED record is in the log
         * (a kill between spawn and that append leaves it unknown). */
        {
                char log[PATH_MAX];
                struct stat sb;
                int tries = 0;

                snprintf(log, sizeof(log), "%s/supervisor/outcomes", fx->dir);
                while ((stat(log, &sb) || sb.st_size == 0) && tries++ < 500)
                        poll(NULL, 0, 10);
                assert_true(sb.st_size > 0);
        }

        /* The connection breaks; the client starts a new supervisor, which
         * finds the run started in the log but not ended: it kills what the
         * dead one left, so that it never runs beside a new run, and
         * reports the run INTERRUPTED. */
        kill(pid, SIGKILL);
        reap(pid);
        pthread_join(th, NULL);
        assert_int_equal(ra->ret, 0);
        assert_int_equal(ra->res.status, PD_ST_INTERRUPTED);
        assert_non_null(strstr(ra->res.error, "supervisor"));
        wstatus = reap(orphan);
        if (!WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGKILL)
                fail_msg(
                    "the orphaned command was not killed (wait "
                    "status %#x)",
                    (unsigned)wstatus);
        pd_sup_close(ra->sup);
        free(ra);
}

/* ---- the lease: a reactor silent for too long ---- */

/* The pid a command wrote to the FIFO (it opens it after its start). */
static pid_t read_pid(const char *fifo) {
        char buf[64];
        ssize_t n;
        int fd = open(fifo, O_RDONLY | O_CLOEXEC);

        assert_true(fd != -1);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(n > 0);
        buf[n] = '\0';
        return (pid_t)atol(buf);
}

typedef struct lease_arg_s {
        fx_t *fx;
        pd_sup_t *sup;
        int64_t id;
        const char *script;
        pd_runner_result_t res;
        int ret;
        int64_t took_ms;   /* from the START to its RESULT */
        _Atomic int ended; /* the run has its RESULT */
} lease_arg_t;

static void *lease_target(void *arg) {
        lease_arg_t *la = arg;
        int64_t t0      = pd_mono_ms();

        la->ret = run_sh(la->sup, la->id, la->script, la->fx->up, la->fx->go, 0,
                         NULL, &la->res);
        la->took_ms = pd_mono_ms() - t0;
        la->ended   = 1;
        return NULL;
}

/*
 * The reactor told a lease of 500 ms, started a run, and then says nothing
 * (SIGSTOP keeps its sockets open: here the client waits for the RESULT
 * and pings only after a third of its 60 s timeout). The supervisor stops
 * the run's process group and records it INTERRUPTED, saying why, in its
 * log: a successor supervisor still answers that outcome.
 */
static void test_silent_reactor_past_its_lease_has_its_runs_stopped(
    void **state) {
        fx_t *fx                = *state;
        lease_arg_t *la         = calloc(1, sizeof(*la));
        pd_runner_result_t *res = calloc(1, sizeof(*res));
        pthread_t th;
        pid_t serving, pid;
        pd_sup_t *sup;

        serving = start_supervisor(fx, IDLE_LONG);
        la->fx  = fx;
        la->sup = client(fx);
        la->id  = 60;
        /* The child of sh sleeps in the group too: all of it must go. */
        la->script = "echo $$ > \"$1\"; sleep 20";
        pd_sup_set_timeout(la->sup, 60000);
        assert_int_equal(pd_sup_set_lease(la->sup, 500), 0);
        assert_int_equal(pthread_create(&th, NULL, lease_target, la), 0);
        pid = read_pid(fx->up);
        pthread_join(th, NULL);

        assert_int_equal(la->ret, 0);
        assert_int_equal(la->res.status, PD_ST_INTERRUPTED);
        assert_string_equal(la->res.error,
                            "reactor silent past its lease (500 ms)");
        assert_true(pd_sup_lease_cut(&la->res));
        /* Not before the lease, and long before the command's 20 s. */
        assert_true(la->took_ms >= 500 && la->took_ms < 10000);
        /* Its whole group is gone: sh, reaped by the supervisor, and its
         * sleep, which may come to us (the subreaper) to be reaped. */
        for (int t = 0; t < 500 && !kill(-pid, 0); t++) {
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                poll(NULL, 0, 10);
        }
        assert_int_equal(kill(-pid, 0), -1);
        assert_int_equal(errno, ESRCH);

        /* The outcome is in the log: a supervisor started after a kill -9
         * of this one answers it to a reactor that comes back. */
        kill(serving, SIGKILL);
        reap(serving);
        start_supervisor(fx, IDLE_LONG);
        sup = client(fx);
        assert_int_equal(pd_sup_status(sup, 60, res), PD_SUP_FINISHED);
        assert_int_equal(res->status, PD_ST_INTERRUPTED);
        assert_string_equal(res->error,
                            "reactor silent past its lease (500 ms)");
        pd_sup_close(sup);
        pd_sup_close(la->sup);
        free(res);
        free(la);
}

/*
 * A reactor that pings within its lease keeps its runs going for as long
 * as they take (here four leases), on any of its connections; one that
 * then tells a lease of 0 is never cut, however long it stays silent.
 */
static void test_pings_within_the_lease_keep_runs_going(void **state) {
        fx_t *fx        = *state;
        lease_arg_t *la = calloc(1, sizeof(*la));
        pd_sup_t *main_sup;
        pthread_t th;

        start_supervisor(fx, IDLE_LONG);
        main_sup = client(fx);
        assert_int_equal(pd_sup_set_lease(main_sup, 300), 0);
        la->fx     = fx;
        la->sup    = client(fx);
        la->id     = 61;
        la->script = "echo $$ > \"$1\"; read x < \"$2\"; echo done";
        pd_sup_set_timeout(la->sup, 60000);
        assert_int_equal(pthread_create(&th, NULL, lease_target, la), 0);
        read_pid(fx->up);
        /* Time passing is what is tested: 1.2 s of pings, 100 ms apart. */
        for (int i = 0; i < 12; i++) {
                assert_int_equal(pd_sup_ping(main_sup), 0);
                poll(NULL, 0, 100);
        }
        /* Still going (else nobody would read the FIFO). */
        assert_false(la->ended);
        release(fx->go);
        pthread_join(th, NULL);
        assert_int_equal(la->ret, 0);
        assert_int_equal(la->res.status, PD_ST_SUCCEEDED);
        assert_true(la->took_ms >= 1200);

        /* Lease 0: silent for three times the old lease, still going. */
        assert_int_equal(pd_sup_set_lease(main_sup, 0), 0);
        la->id    = 62;
        la->ended = 0;
        assert_int_equal(pthread_create(&th, NULL, lease_target, la), 0);
        read_pid(fx->up);
        poll(NULL, 0, 900);
        assert_false(la->ended);
        release(fx->go);
        pthread_join(th, NULL);
        assert_int_equal(la->res.status, PD_ST_SUCCEEDED);
        pd_sup_close(la->sup);
        pd_sup_close(main_sup);
        free(la);
}

/* A supervisor of the previous version, as far as a lease goes: it answers
 * a LEASE (a frame it does not know) with ERROR and closes; a PING it
 * answers PONG. */
typedef struct old_sup_s {
        int listen_fd;
        int first_type; /* of the frame read on the first connection */
        int pings;      /* PINGs read on the second connection */
} old_sup_t;

/* Reads len bytes, or fewer at the end of the connection; returns how
 * many. (This thread cannot fail a test: the main thread checks.) */
static size_t read_upto(int fd, void *buf, size_t len) {
        size_t got = 0;
        ssize_t n;

        while (got < len && (n = read(fd, (char *)buf + got, len - got)) > 0)
                got += (size_t)n;
        return got;
}

static void *old_sup_main(void *arg) {
        old_sup_t *o = arg;
        unsigned char in[5 + 16];
        frame_t f;
        int c;

        /* First connection: the LEASE (5 + 16 bytes), refused as a
         * request of the wrong length. */
        c = accept(o->listen_fd, NULL, NULL);
        if (read_upto(c, in, sizeof(in)) == sizeof(in))
                o->first_type = in[4];
        f_begin(&f, PD_SUP_F_ERROR);
        f_le(&f, 0, 8);
        f_str(&f, "malformed request");
        f.b[0] = (unsigned char)(f.n - 5);
        f.b[1] = f.b[2] = f.b[3] = 0;
        (void)send(c, f.b, f.n, MSG_NOSIGNAL);
        close(c);
        /* The client comes back without it and pings; a client that
         * closes with a PONG unread resets the connection. */
        c = accept(o->listen_fd, NULL, NULL);
        for (;;) {
                unsigned char ping[13];

                if (read_upto(c, ping, sizeof(ping)) < sizeof(ping) ||
                    ping[4] != PD_SUP_F_PING)
                        break;
                o->pings++;
                ping[4] = PD_SUP_F_PONG;
                (void)send(c, ping, sizeof(ping), MSG_NOSIGNAL);
        }
        close(c);
        return NULL;
}

static void test_older_supervisor_without_leases_still_serves(void **state) {
        fx_t *fx              = *state;
        old_sup_t o           = {0};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        pthread_t th;
        pd_sup_t *sup;

        assert_int_equal(mkdir(fx->dir, 0700), 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/supervisor.sock",
                 fx->dir);
        o.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(o.listen_fd, (struct sockaddr *)&sa, sizeof(sa)),
                         0);
        assert_int_equal(listen(o.listen_fd, 8), 0);
        assert_int_equal(pthread_create(&th, NULL, old_sup_main, &o), 0);

        sup = client(fx);
        /* Refused, but connected again: the reactor runs on. */
        assert_int_equal(pd_sup_set_lease(sup, 2000), -1);
        assert_int_equal(pd_sup_ping(sup), 0);
        assert_int_equal(pd_sup_ping(sup), 0);
        pd_sup_close(sup);
        pthread_join(th, NULL);
        assert_int_equal(o.first_type, PD_SUP_F_LEASE);
        assert_int_equal(o.pings, 2);
        /* Not a supervisor for teardown to stop. */
        unlink(sa.sun_path);
        close(o.listen_fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_run_reports_exit_code_tail_and_log, setup, teardown),
            cmocka_unit_test_setup_teardown(test_log_stays_bounded_while_busy,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_commands_get_the_starters_umask_or_their_own, setup,
                teardown),
            cmocka_unit_test_setup_teardown(test_same_run_id_twice_runs_once,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_new_client_adopts_run_of_a_client_that_left, setup,
                teardown),
            cmocka_unit_test_setup_teardown(test_forget_outlives_a_restart,
                                            setup, teardown),
            cmocka_unit_test(test_a_result_without_its_end_time_still_decodes),
            cmocka_unit_test_setup_teardown(
                test_restarted_supervisor_reports_finished_run, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_relative_paths_mean_what_they_mean_to_the_client, setup,
                teardown),
            cmocka_unit_test_setup_teardown(test_cancel_is_interrupted, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_timeout_is_timed_out, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(
                test_progress_reaches_the_client_at_most_ten_a_second, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_unread_start_of_a_dead_client_is_never_unknown, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_socket_folder_and_files_are_private, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_exits_when_idle_and_keeps_outcomes, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_bad_frames_are_refused_without_harm, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_connect_starts_a_supervisor_that_exits_clean, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_run_whose_supervisor_died_is_killed_and_interrupted, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_clients_starting_at_once_share_one_supervisor, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_silent_reactor_past_its_lease_has_its_runs_stopped, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_pings_within_the_lease_keep_runs_going, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_older_supervisor_without_leases_still_serves, setup,
                teardown),
        };

        /* Orphans (a supervisor, what a killed one leaves) come to us. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1))
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
