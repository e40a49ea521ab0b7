/*
 * noop_plugin.c - the in-process actions of benchmarks 1 and 4: bench.noop0,
 * bench.noop1, ... (auto, policy once), each a function that returns 0 at
 * once, so what a run costs is the reactor's work around it.
 *
 * How many: $PD_BENCH_NOOP_ACTIONS (1..10000, default 10; benchmark 7
 * deploys 10,000 to one tenant), read once at init. bench/run.sh builds it as
 * bench_noop_plugin.so and lists it in the generated config ([reactor] plugins
 * = ...).
 */
#include <stdio.h>
#include <stdlib.h>

#include <postdeploy/plugin.h>

static int noop(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

PD_PLUGIN_INIT(reg) {
        const char *env = getenv("PD_BENCH_NOOP_ACTIONS");
        int cnt         = env ? atoi(env) : 10;

        if (cnt < 1 || cnt > 10000)
                return 1;
        for (int i = 0; i < cnt; i++) {
                char name[32];

                snprintf(name, sizeof(name), "bench.noop%d", i);
                if (PD_ACTION(reg, name, PD_AUTO, noop, "does nothing"))
                        return 1;
        }
        return 0;
}
