/*
 * messy.c - a plugin whose action fails with an error message holding
 * everything a log line must escape: quotes, a backslash, newlines, a tab,
 * control characters and bytes that are not UTF-8. test_log_json.sh checks
 * that the reactor's JSON log still parses, and says the same thing.
 */
#include <stdio.h>

#include <postdeploy/plugin.h>

static int fail(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        snprintf(errstr, errstr_size,
                 "say \"hi\" \\ back\nnext line\r\ttab \x01\x1b[31m red "
                 "\xc3\xa9 \xff end");
        return 4;
}

PD_PLUGIN_INIT(reg) {
        if (reg->abi != PD_PLUGIN_ABI)
                return 9;
        return PD_ACTION(reg, "messy.fail", PD_MANUAL, fail, "Fails messily")
                   ? 1
                   : 0;
}
