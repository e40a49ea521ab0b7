/* no_abi.c - an init function written without PD_PLUGIN_INIT, so the
 * plugin does not say which ABI it was built for. */
#include <postdeploy/plugin.h>

int postdeploy_plugin_init(pd_plugin_registry_t *reg) {
        (void)reg;
        return 0;
}
