/* empty.c - loads fine and registers nothing. */
#include <postdeploy/plugin.h>

PD_PLUGIN_INIT(reg) {
        (void)reg;
        return 0;
}
