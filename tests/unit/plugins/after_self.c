/* after_self.c - an action that would wait for itself. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        static const char *const after[] = {"after_self.noop", NULL};
        const pd_plugin_action_t act     = {
                .name  = "after_self.noop",
                .after = after,
                .fn    = noop,
        };

        return reg->add(reg, &act);
}
