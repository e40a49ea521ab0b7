/* init_fails.c - registers an action, then reports that it cannot work. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        if (PD_ACTION(reg, "init_fails.noop", PD_AUTO, noop, NULL))
                return 1;
        return 3;
}
