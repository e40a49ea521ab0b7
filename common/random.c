/*
 * random.c - random bytes and the ids made of them: event ids (UUIDv4) and
 * 63-bit positive ids. Ids come from a per-thread pool so that stamping a
 * record costs no system call.
 */
#include "common/random.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"

/* Fills buf with n random bytes; there is no sensible way on without them,
 * since event ids must not collide. */
void pd_random(void *buf, size_t n) {
        unsigned char *p = buf;
        ssize_t r;
        int fd;

        while (n > 0) {
                r = getrandom(p, n, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                p += r;
                n -= (size_t)r;
        }
        if (n == 0)
                return;
        /* Kernels before 3.17 have no getrandom(). */
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        while (fd != -1 && n > 0) {
                r = read(fd, p, n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                p += r;
                n -= (size_t)r;
        }
        if (fd != -1)
                close(fd);
        if (n > 0) {
                pd_log(PD_LOG_ERROR, "event: no random bytes for event ids");
                abort();
        }
}

/* Forks so far in this process's line (a child counts its own): a pool
 * drawn before the last fork is its parent's too. Counted by an atfork
 * handler, not by asking getpid() per id, a system call that was 1.5% of
 * the reactor's CPU per in-process action. */
static unsigned random_forks      = 1;
static pthread_once_t random_once = PTHREAD_ONCE_INIT;

static void random_forked(void) {
        random_forks++;
}

static void random_init(void) {
        pthread_atfork(NULL, NULL, random_forked);
}

/*
 * 16 random bytes for an id. Each thread draws them from a pool it refills
 * with one getrandom() per 256 ids, instead of a system call per record (5%
 * of the reactor's time in benchmark 1). The pool is refilled after a fork,
 * so a child never hands out its parent's ids.
 */
static void random_id(unsigned char *b) {
        static _Thread_local unsigned char pool[4096];
        static _Thread_local size_t used = sizeof(pool);
        static _Thread_local unsigned owner;

        pthread_once(&random_once, random_init);
        if (used + 16 > sizeof(pool) || owner != random_forks) {
                pd_random(pool, sizeof(pool));
                used  = 0;
                owner = random_forks;
        }
        memcpy(b, pool + used, 16);
        used += 16;
}

/* A random (version 4) UUID, lowercase, into buf[37]. */
void pd_uuid4(char *buf) {
        unsigned char b[16];

        random_id(b);
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        /* 8-4-4-4-12 hex digits; by hand, as printf was most of its cost. */
        for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *buf++ = '-';
                *buf++ = "0123456789abcdef"[b[i] >> 4];
                *buf++ = "0123456789abcdef"[b[i] & 0x0f];
        }
        *buf = '\0';
}
