/*
 * example_plugin.c - two in-process actions, as a plugin author writes them.
 *
 * Build it alone (the header and postdeploy-plugin.pc are installed with
 * postdeploy):
 *   cc -shared -fPIC $(pkg-config --cflags postdeploy-plugin) \
 *      -o libpostdeploy_example_plugin.so example_plugin.c
 * and list it in the reactor's config:
 *   [reactor]
 *   plugins = /path/to/libpostdeploy_example_plugin.so
 *
 * example.count_orders (auto) walks through a few batches, logging each
 * one and stopping early when the reactor asks; example.close_books
 * (manual) fails on purpose, to show what a failure looks like in
 * `postdeploy report`. Both may run at once for different tenants on
 * different threads: they share nothing but constant data.
 */
#include <stdio.h>
#include <time.h>

#include <postdeploy/plugin.h>

#define BATCHES 5

/* Stands for a unit of real work: a query, a batch of updates. */
static void work_a_little(void) {
        struct timespec ts = {0, 20 * 1000 * 1000}; /* 20 ms */

        nanosleep(&ts, NULL);
}

static int count_orders(const pd_action_ctx_t *ctx, char *errstr,
                        size_t errstr_size) {
        ctx->log(ctx, "counting orders of %s for release %s (attempt %d)",
                 ctx->tenant, ctx->release, ctx->attempt);
        for (int batch = 1; batch <= BATCHES; batch++) {
                /* Asked between batches: a timeout or a shutdown stops the
                 * action at a point where its work is consistent. */
                if (ctx->cancelled(ctx)) {
                        snprintf(errstr, errstr_size,
                                 "stopped after %d of %d batches", batch - 1,
                                 BATCHES);
                        return 1;
                }
                work_a_little();
                ctx->log(ctx, "batch %d/%d done", batch, BATCHES);
                /* How far it has got, for `report` and `deploy --wait`
                 * (ABI 3: an older reactor has no ctx->progress). */
                if (ctx->abi >= 3)
                        ctx->progress(ctx, batch, BATCHES);
        }
        ctx->log(ctx, "all %d batches done", BATCHES);
        return 0;
}

static int close_books(const pd_action_ctx_t *ctx, char *errstr,
                       size_t errstr_size) {
        ctx->log(ctx, "closing the books of %s", ctx->tenant);
        snprintf(errstr, errstr_size,
                 "ledger of tenant '%s' is locked by another job; retry "
                 "later",
                 ctx->tenant);
        return 1;
}

PD_PLUGIN_INIT(reg) {
        /* The full form: every field has a say. */
        static const char *const after_count[] = {"example.count_orders", NULL};
        const pd_plugin_action_t books         = {
                    .name        = "example.close_books",
                    .is_auto     = PD_MANUAL,
                    .policy      = "always",
                    .description = "Close the books (fails on purpose)",
                    .after       = after_count,
                    .fn          = close_books,
        };

        /* The short form, for the common case: policy "once". */
        if (PD_ACTION(reg, "example.count_orders", PD_AUTO, count_orders,
                      "Count orders in batches (an in-process action)"))
                return 1;
        return reg->add(reg, &books);
}
