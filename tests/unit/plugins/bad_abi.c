/* bad_abi.c - built for an ABI this reactor does not know. Its init must
 * never run: it would register an action. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

const int postdeploy_plugin_abi = PD_PLUGIN_ABI + 1;

int postdeploy_plugin_init(pd_plugin_registry_t *reg) {
        return PD_ACTION(reg, "bad_abi.noop", PD_AUTO, noop, NULL);
}
