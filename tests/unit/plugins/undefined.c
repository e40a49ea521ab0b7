/* undefined.c - needs a symbol nothing defines (as a plugin would that
 * called into the reactor, which exports none): dlopen must refuse it. */
#include <postdeploy/plugin.h>

int pd_reactor_internal_function(void);

static int call_reactor(const pd_action_ctx_t *ctx, char *errstr,
                        size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return pd_reactor_internal_function();
}

PD_PLUGIN_INIT(reg) {
        return PD_ACTION(reg, "undefined.call", PD_AUTO, call_reactor, NULL);
}
