/* bad_name.c - an action name with a space. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        return PD_ACTION(reg, "x y", PD_AUTO, noop, NULL);
}
