/*
 * good.c - a plugin that does everything right, with one action per
 * behaviour test_plugin.c checks when running actions.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <postdeploy/plugin.h>

/* Gives up on a cancel that never comes, so a broken reactor fails the
 * test instead of hanging it. */
#define WAIT_LIMIT_MS 10000

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

        nanosleep(&ts, NULL);
}

/* Logs everything the context carries, one field a line. */
static int hello(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        ctx->log(ctx, "action=%s", ctx->action);
        ctx->log(ctx, "tenant=%s", ctx->tenant);
        ctx->log(ctx, "release=%s", ctx->release);
        ctx->log(ctx, "environment=%s", ctx->environment);
        ctx->log(ctx, "event_id=%s", ctx->event_id);
        ctx->log(ctx, "attempt=%d", ctx->attempt);
        ctx->log(ctx, "abi=%d\n", ctx->abi); /* '\n' given: not doubled */
        ctx->log(ctx, "cancelled=%d", ctx->cancelled(ctx));
        return 0;
}

/* Logs the parameters it is given (ABI 2), "-" for one not given. */
static int params(const pd_action_ctx_t *ctx, char *errstr,
                  size_t errstr_size) {
        const char *v;

        (void)errstr;
        (void)errstr_size;
        v = ctx->param(ctx, "batch_size");
        ctx->log(ctx, "batch_size=%s", v ? v : "-");
        v = ctx->param(ctx, "since");
        ctx->log(ctx, "since=%s", v ? v : "-");
        return 0;
}

/* Reports progress (ABI 3): a good value, three it must not take, then
 * the last. */
static int progress(const pd_action_ctx_t *ctx, char *errstr,
                    size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        ctx->progress(ctx, 1, 4);
        ctx->progress(ctx, -1, 4); /* done below 0 */
        ctx->progress(ctx, 5, 4);  /* past the total */
        ctx->progress(ctx, 2, -1); /* total below 0 */
        ctx->progress(ctx, 4, 4);
        return 0;
}

static int fail(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        ctx->log(ctx, "about to fail");
        snprintf(errstr, errstr_size, "the ledger of %s is locked",
                 ctx->tenant);
        return 2;
}

static int fail_silently(const pd_action_ctx_t *ctx, char *errstr,
                         size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 3;
}

/* Fills the whole buffer, NUL included: the reactor must cope. */
static int fail_overlong(const pd_action_ctx_t *ctx, char *errstr,
                         size_t errstr_size) {
        (void)ctx;
        memset(errstr, 'e', errstr_size);
        return 1;
}

/* Works until told to stop, then stops with a message. */
static int wait_cancel(const pd_action_ctx_t *ctx, char *errstr,
                       size_t errstr_size) {
        for (long waited = 0; waited < WAIT_LIMIT_MS; waited++) {
                if (ctx->cancelled(ctx)) {
                        ctx->log(ctx, "told to stop after about %ld ms",
                                 waited);
                        snprintf(errstr, errstr_size, "stopped early");
                        return 1;
                }
                sleep_ms(1);
        }
        snprintf(errstr, errstr_size, "never told to stop");
        return 7;
}

/* Is told to stop, and finishes its work anyway. */
static int finish_anyway(const pd_action_ctx_t *ctx, char *errstr,
                         size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        for (long waited = 0; waited < WAIT_LIMIT_MS; waited++) {
                if (ctx->cancelled(ctx))
                        break;
                sleep_ms(1);
        }
        ctx->log(ctx, "finished anyway");
        return 0;
}

static int many_lines(const pd_action_ctx_t *ctx, char *errstr,
                      size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        for (int i = 1; i <= 1000; i++)
                ctx->log(ctx, "line %d", i);
        return 0;
}

/* One line longer than any stack buffer the reactor might use. */
static int long_line(const pd_action_ctx_t *ctx, char *errstr,
                     size_t errstr_size) {
        static char text[10001];

        (void)errstr;
        (void)errstr_size;
        memset(text, 'x', sizeof(text) - 1);
        ctx->log(ctx, "%s|end", text);
        return 0;
}

static int say_opaque(const pd_action_ctx_t *ctx, char *errstr,
                      size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        ctx->log(ctx, "opaque=%s", (const char *)ctx->opaque);
        return 0;
}

static void *log_100(void *arg) {
        const pd_action_ctx_t *ctx = arg;

        for (int i = 0; i < 100; i++)
                ctx->log(ctx, "from a thread: %03d", i);
        return NULL;
}

/* Logs from four threads of its own at once. */
static int threads(const pd_action_ctx_t *ctx, char *errstr,
                   size_t errstr_size) {
        pthread_t th[4];

        for (int i = 0; i < 4; i++) {
                if (pthread_create(&th[i], NULL, log_100, (void *)ctx)) {
                        snprintf(errstr, errstr_size, "pthread_create");
                        while (i-- > 0)
                                pthread_join(th[i], NULL);
                        return 1;
                }
        }
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        return 0;
}

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

/* Registers from buffers it then scribbles over: the reactor must have
 * taken copies. */
static int add_from_stack(pd_plugin_registry_t *reg) {
        char name[32], policy[16], desc[64], after0[32];
        const char *after[] = {after0, NULL};
        pd_plugin_action_t act;
        int rc;

        snprintf(name, sizeof(name), "good.%s", "stack");
        snprintf(policy, sizeof(policy), "always");
        snprintf(desc, sizeof(desc), "registered from the stack");
        snprintf(after0, sizeof(after0), "good.hello");
        memset(&act, 0, sizeof(act));
        act.name        = name;
        act.is_auto     = 7; /* any non-zero is auto */
        act.policy      = policy;
        act.description = desc;
        act.after       = after;
        act.fn          = noop;
        rc              = reg->add(reg, &act);
        memset(name, 'X', sizeof(name) - 1);
        memset(policy, 'X', sizeof(policy) - 1);
        memset(desc, 'X', sizeof(desc) - 1);
        memset(after0, 'X', sizeof(after0) - 1);
        return rc;
}

PD_PLUGIN_INIT(reg) {
        static const char opaque[]           = "handed back";
        const pd_plugin_action_t with_opaque = {
            .name   = "good.opaque",
            .fn     = say_opaque,
            .opaque = (void *)opaque,
        };

        if (reg->abi != PD_PLUGIN_ABI)
                return 9;
        if (PD_ACTION(reg, "good.hello", PD_AUTO, hello, "Says hello") ||
            PD_ACTION(reg, "good.fail", PD_MANUAL, fail, "Fails") ||
            PD_ACTION(reg, "good.params", PD_MANUAL, params, NULL) ||
            PD_ACTION(reg, "good.progress", PD_MANUAL, progress, NULL) ||
            PD_ACTION(reg, "good.fail_silently", PD_MANUAL, fail_silently,
                      NULL) ||
            PD_ACTION(reg, "good.fail_overlong", PD_MANUAL, fail_overlong,
                      NULL) ||
            PD_ACTION(reg, "good.wait_cancel", PD_MANUAL, wait_cancel, NULL) ||
            PD_ACTION(reg, "good.finish_anyway", PD_MANUAL, finish_anyway,
                      NULL) ||
            PD_ACTION(reg, "good.many_lines", PD_MANUAL, many_lines, NULL) ||
            PD_ACTION(reg, "good.long_line", PD_MANUAL, long_line, NULL) ||
            PD_ACTION(reg, "good.threads", PD_MANUAL, threads, NULL) ||
            reg->add(reg, &with_opaque) || add_from_stack(reg))
                return 1;
        return 0;
}
