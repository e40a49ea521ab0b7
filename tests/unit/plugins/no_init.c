/* no_init.c - a shared object that is not a plugin: no init function. */
#include <postdeploy/plugin.h>

PD_PLUGIN_EXPORT int something_else(void);

int something_else(void) {
        return 0;
}
