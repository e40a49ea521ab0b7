/*
 * abi2.c - a plugin built for ABI 2, before ctx->progress: it must still
 * load and run, parameters and all (ABI 3 only appended to the context).
 * It spells out the ABI 2 context it was built against, so it never sees
 * the member ABI 3 appended.
 */
#include <postdeploy/plugin.h>

static int hello(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        const char *v = ctx->param(ctx, "batch_size");

        (void)errstr;
        (void)errstr_size;
        ctx->log(ctx, "abi2 says hello to %s, batch_size=%s", ctx->tenant,
                 v ? v : "-");
        return 0;
}

const int postdeploy_plugin_abi = 2;

int postdeploy_plugin_init(pd_plugin_registry_t *reg) {
        return PD_ACTION(reg, "abi2.hello", PD_AUTO, hello, NULL);
}
