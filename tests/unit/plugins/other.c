/* other.c - a second good plugin, loaded after good.c. */
#include <postdeploy/plugin.h>

static int task(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        ctx->log(ctx, "other task for %s", ctx->tenant);
        return 0;
}

PD_PLUGIN_INIT(reg) {
        static const char *const after[] = {"good.hello", "good.stack", NULL};
        const pd_plugin_action_t act     = {
                .name        = "other.task",
                .is_auto     = PD_AUTO,
                .policy      = "once",
                .description = "Runs after good's",
                .after       = after,
                .fn          = task,
        };

        return reg->add(reg, &act);
}
