/* duplicate.c - registers one name twice, ignores the refusal, registers
 * a bad name after it and returns success. */
#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        PD_ACTION(reg, "dup.same", PD_AUTO, noop, NULL);
        PD_ACTION(reg, "dup.same", PD_MANUAL, noop, NULL);
        PD_ACTION(reg, "dup bad name", PD_MANUAL, noop, NULL);
        return 0;
}
