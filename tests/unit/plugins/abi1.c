/*
 * abi1.c - a plugin built for ABI 1, before ctx->param: it must still load
 * and run (ABI 2 only appended to the context).
 */
#include <postdeploy/plugin.h>

static int hello(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)errstr;
        (void)errstr_size;
        ctx->log(ctx, "abi1 says hello to %s", ctx->tenant);
        return 0;
}

const int postdeploy_plugin_abi = 1;

int postdeploy_plugin_init(pd_plugin_registry_t *reg) {
        return PD_ACTION(reg, "abi1.hello", PD_AUTO, hello, NULL);
}
