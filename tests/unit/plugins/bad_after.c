/* bad_after.c - runs after a name no action can have. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        static const char *const after[] = {"good.hello", "no way", NULL};
        const pd_plugin_action_t act     = {
                .name  = "bad_after.noop",
                .after = after,
                .fn    = noop,
        };

        return reg->add(reg, &act);
}
