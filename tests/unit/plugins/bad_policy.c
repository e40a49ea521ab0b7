/* bad_policy.c - a policy that is neither once nor always. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        const pd_plugin_action_t act = {
            .name   = "bad_policy.noop",
            .policy = "sometimes",
            .fn     = noop,
        };

        return reg->add(reg, &act);
}
