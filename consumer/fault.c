/*
 * fault.c - crash points: the named places of an event's life where the
 * crash tests kill the reactor (PD_CRASH_AT) or an in-process test hooks
 * in (pd_reactor_set_fault_hook). Nothing here runs when no test asks.
 */

#include "consumer/reactor_int.h"

/* ------------------------------------------------------------------ */
/* Fault injection                                                     */

/*
 * The crash tests kill the reactor at named points of an event's life:
 * PD_CRASH_AT=NAME[:N] makes it SIGKILL itself the N-th time (default the
 * first) it passes point NAME. The environment is read once, so a point
 * costs one pointer test when no test asks for it. In-process tests hook
 * every point instead (pd_reactor_set_fault_hook).
 */
static const char *crash_at;
static int crash_nth = 1;
static atomic_int crash_hits;

void pd__crash_init(void) {
        static char name[128];
        const char *v = getenv("PD_CRASH_AT");
        char *colon;

        if (!v || !*v)
                return;
        snprintf(name, sizeof(name), "%s", v);
        if ((colon = strchr(name, ':'))) {
                *colon    = '\0';
                crash_nth = atoi(colon + 1) > 0 ? atoi(colon + 1) : 1;
        }
        crash_at = name;
}

static void (*pd_fault_hook)(const char *point);

void pd_reactor_set_fault_hook(void (*hook)(const char *point)) {
        pd_fault_hook = hook;
}

void pd__crashpoint(const char *name) {
        if (pd_fault_hook)
                pd_fault_hook(name);
        if (!crash_at || strcmp(name, crash_at))
                return;
        if (atomic_fetch_add(&crash_hits, 1) + 1 != crash_nth)
                return;
        pd_log(PD_LOG_WARN, "PD_CRASH_AT=%s: killing myself", name);
        raise(SIGKILL);
}

/* pd__crashpoint("NAME.SUFFIX") for a transaction named NAME. */
void pd__crashpoint2(const char *name, const char *suffix) {
        char point[160];

        if (!crash_at && !pd_fault_hook)
                return;
        snprintf(point, sizeof(point), "%s.%s", name, suffix);
        pd__crashpoint(point);
}
