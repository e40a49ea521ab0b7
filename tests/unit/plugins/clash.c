/* clash.c - registers a name good.c already has. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        if (PD_ACTION(reg, "clash.mine", PD_AUTO, noop, NULL))
                return 1;
        return PD_ACTION(reg, "good.hello", PD_AUTO, noop, NULL);
}
