/* no_fn.c - an action without a function. */
#include <postdeploy/plugin.h>

PD_PLUGIN_INIT(reg) {
        return PD_ACTION(reg, "no_fn.nothing", PD_AUTO, NULL, NULL);
}
