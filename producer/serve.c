/*
 * serve.c - `postdeploy serve`: a live status page for people. It follows
 * the results topic (so it works from any machine and shows every reactor
 * of the group) into the report's own model (report.h), and serves it over
 * HTTP with libmicrohttpd: an index of tenants, a page per tenant with the
 * report's sections, and the same rows as `report --format json`.
 *
 * The pages are static HTML with their CSS and script inline (no build
 * step, no external asset); the script polls the JSON every 2 s and builds
 * the rows with textContent, so nothing that came from an event is ever
 * parsed as HTML. The one event-given string the server itself writes
 * into a page, the tenant of the URL, goes through html_escape.
 *
 * Threads: the calling thread follows the topic; libmicrohttpd's one
 * internal thread answers requests. The model is theirs under `lock`.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/log.h"
#include "common/strerror.h"
#include "common/xalloc.h"
#include "producer/cli.h"
#include "producer/report.h"
#include "producer/results.h"

typedef struct pd_serve_s {
        pthread_mutex_t lock; /* guards rp and loaded */
        pd_report_t *rp;
        /* The topic is read up to the end it had at the start. Until
         * then the JSON answers 503: a half-read history would show as
         * pending what the report calls done. */
        int loaded;
} pd_serve_t;

/* SIGINT or SIGTERM: stop following, close the server, exit 0. */
static volatile sig_atomic_t serve_stop;

static void serve_on_signal(int sig) {
        (void)sig;
        serve_stop = 1;
}

/* Runs on the following thread. */
static void serve_on_event(pd_event_t *ev, void *opaque) {
        pd_serve_t *sv = opaque;

        pthread_mutex_lock(&sv->lock);
        pd_report_add(sv->rp, ev);
        pthread_mutex_unlock(&sv->lock);
}

/* Runs on the following thread. */
static void serve_on_loaded(void *opaque) {
        pd_serve_t *sv = opaque;

        pthread_mutex_lock(&sv->lock);
        sv->loaded = 1;
        pthread_mutex_unlock(&sv->lock);
}

/* Writes s to fp with the five characters HTML gives a meaning to as
 * entities, so that it reads as text in an element or an attribute. */
static void html_escape(FILE *fp, const char *s) {
        for (; *s; s++) {
                switch (*s) {
                case '&':
                        fputs("&amp;", fp);
                        break;
                case '<':
                        fputs("&lt;", fp);
                        break;
                case '>':
                        fputs("&gt;", fp);
                        break;
                case '"':
                        fputs("&quot;", fp);
                        break;
                case '\'':
                        fputs("&#39;", fp);
                        break;
                default:
                        fputc(*s, fp);
                }
        }
}

/* What both pages share: the head, with the style. */
#define PD_PAGE_HEAD                                                            \
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"   \
        "<meta name=\"viewport\" content=\"width=device-width\">\n"             \
        "<style>\n"                                                             \
        "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;"      \
        "background:#f4f6f8}\n"                                                 \
        "header{background:#1d232a;color:#fff;padding:12px 24px;display:flex;"  \
        "gap:16px;align-items:baseline}\n"                                      \
        "header h1{font-size:20px;margin:0}header a{color:#9cc4ff}\n"           \
        "#status{margin-left:auto;font-size:13px;color:#c9d1d9}\n"              \
        "#status.down{color:#ffb4a8}\n"                                         \
        "main{padding:16px 24px;max-width:1100px}\n"                            \
        "section{background:#fff;border-left:6px solid #9aa5b1;"                \
        "margin:0 0 14px;padding:8px 14px;border-radius:4px;"                   \
        "box-shadow:0 1px 2px #0002}\n"                                         \
        "section h2{font-size:16px;margin:4px 0 6px}\n"                         \
        "section.running{border-color:#2f6fde}\n"                               \
        "section.failed{border-color:#d1242f;background:#fff5f5}\n"             \
        "section.failed h2{color:#b11d27}\n"                                    \
        "section.completed{border-color:#1f883d}\n"                             \
        "section.empty{opacity:.6}\n"                                           \
        "table{border-collapse:collapse;width:100%}\n"                          \
        "td,th{text-align:left;padding:3px 10px 3px 0;vertical-align:top}\n"    \
        "th{font-size:12px;color:#57606a;font-weight:600}\n"                    \
        "td.action{width:230px;font-family:ui-monospace,monospace;"             \
        "font-weight:600}\n"                                                    \
        "td.exit{color:#b11d27;font-weight:600}\n"                              \
        "td:nth-child(2){width:100px}td:nth-child(3){width:230px}\n"            \
        ".state{font-size:12px;padding:1px 7px;border-radius:9px;"              \
        "background:#e6e9ed}\n"                                                 \
        ".state.failed,.state.timed_out,.state.interrupted{background:#d1242f;" \
        "color:#fff}\n"                                                         \
        ".state.running{background:#2f6fde;color:#fff}\n"                       \
        ".state.succeeded{background:#1f883d;color:#fff}\n"                     \
        "pre.tail{background:#1d232a;color:#e6edf3;padding:8px;margin:2px 0 "   \
        "8px;white-space:pre-wrap;word-break:break-all;font-size:12px}\n"       \
        ".error{color:#b11d27}.muted{color:#57606a}\n"                          \
        "td.bad{background:#d1242f;color:#fff;font-weight:600}\n"               \
        "</style>\n"

/* Shared by both pages' scripts: elements with text, never HTML. */
#define PD_PAGE_JS_COMMON                                                      \
        "\"use strict\";\n"                                                    \
        "function el(tag, cls, text) {\n"                                      \
        "  const e = document.createElement(tag);\n"                           \
        "  if (cls) e.className = cls;\n"                                      \
        "  if (text !== undefined && text !== null) e.textContent = "          \
        "String(text);\n"                                                      \
        "  return e;\n}\n"                                                     \
        "function status(text, down) {\n"                                      \
        "  const s = document.getElementById('status');\n"                     \
        "  s.textContent = text; s.className = down ? 'down' : '';\n}\n"       \
        "function clock(iso) { return iso ? iso.replace('T', ' ')"             \
        ".replace(/\\.\\d+Z$/, ' UTC') : '-'; }\n"                             \
        "function dur(ms) {\n"                                                 \
        "  const s = Math.max(0, Math.floor(ms / 1000));\n"                    \
        "  if (s < 60) return s + 's';\n"                                      \
        "  const m = Math.floor(s / 60);\n"                                    \
        "  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + "   \
        "'s';\n"                                                               \
        "  return Math.floor(m / 60) + 'h ' + String(m % 60).padStart(2, "     \
        "'0') + 'm';\n}\n"                                                     \
        "const FAILED = ['failed', 'timed_out', 'interrupted'];\n"             \
        "const SECTIONS = [\n"                                                 \
        "  ['pending-auto', 'Pending auto', r => r.state === 'pending' && "    \
        "r.auto],\n"                                                           \
        "  ['pending-manual', 'Pending manual', r => r.state === 'pending' "   \
        "&& !r.auto],\n"                                                       \
        "  ['running', 'Running', r => r.state === 'running'],\n"              \
        "  ['failed', 'Failed', r => FAILED.includes(r.state)],\n"             \
        "  ['completed', 'Completed', r => r.state === 'succeeded' || "        \
        "r.state === 'skipped'],\n"                                            \
        "  ['unavailable', 'Unavailable (no longer registered)', r => "        \
        "r.state === 'unavailable'],\n];\n"                                    \
        "async function poll(url, render) {\n"                                 \
        "  for (;;) {\n"                                                       \
        "    try {\n"                                                          \
        "      const res = await fetch(url, {cache: 'no-store'});\n"           \
        "      if (res.status === 503) {\n"                                    \
        "        status('reading the results topic...', 0);\n"                 \
        "      } else {\n"                                                     \
        "        render(res.status === 404 ? null : await res.json());\n"      \
        "        status('live, updated ' + new Date().toLocaleTimeString(), "  \
        "0);\n"                                                                \
        "      }\n"                                                            \
        "    } catch (e) {\n"                                                  \
        "      status('cannot reach the server: retrying', 1);\n"              \
        "    }\n"                                                              \
        "    await new Promise(ok => setTimeout(ok, 2000));\n"                 \
        "  }\n}\n"

static const char page_index[] = PD_PAGE_HEAD
    "<title>postdeploy: tenants</title></head>\n"
    "<body><header><h1>postdeploy</h1><span>tenants</span>"
    "<a href=\"/api/report.json\">JSON</a>"
    "<span id=\"status\">loading</span></header>\n"
    "<main><section><table id=\"tenants\"><thead><tr><th>Tenant</th>"
    "<th>Pending</th><th>Running</th><th>Failed</th><th>Completed</th>"
    "</tr></thead><tbody></tbody></table>"
    "<p id=\"none\" class=\"muted\" hidden>No tenant has results yet.</p>"
    "</section></main>\n"
    "<script>\n" PD_PAGE_JS_COMMON
    "function render(rows) {\n"
    "  const by = new Map();\n"
    "  for (const r of rows || []) {\n"
    "    if (!by.has(r.tenant)) by.set(r.tenant, {pending: 0, running: 0, "
    "failed: 0, completed: 0});\n"
    "    const c = by.get(r.tenant);\n"
    "    if (r.state === 'pending') c.pending++;\n"
    "    else if (r.state === 'running') c.running++;\n"
    "    else if (FAILED.includes(r.state)) c.failed++;\n"
    "    else if (r.state === 'succeeded' || r.state === 'skipped') "
    "c.completed++;\n"
    "  }\n"
    "  const body = document.querySelector('#tenants tbody');\n"
    "  const trs = [];\n"
    "  for (const [t, c] of by) {\n"
    "    const tr = el('tr'), td = el('td'), a = el('a', '', t);\n"
    "    tr.dataset.tenant = t;\n"
    "    a.href = '/tenant/' + encodeURIComponent(t);\n"
    "    td.append(a); tr.append(td);\n"
    "    for (const k of ['pending', 'running', 'failed', 'completed']) {\n"
    "      const cell = el('td', k === 'failed' && c.failed ? 'bad' : k, "
    "c[k]);\n"
    "      cell.dataset.count = k; tr.append(cell);\n"
    "    }\n"
    "    trs.push(tr);\n"
    "  }\n"
    "  body.replaceChildren(...trs);\n"
    "  document.getElementById('none').hidden = trs.length > 0;\n"
    "}\n"
    "poll('/api/report.json', render);\n"
    "</script></body></html>\n";

/* The tenant page, around the tenant's name (escaped) three times. */
static const char page_tenant_1[] = PD_PAGE_HEAD "<title>postdeploy: ";
static const char page_tenant_2[] = "</title></head>\n<body data-tenant=\"";
static const char page_tenant_3[] = "\"><header><h1 id=\"tenant\">";
static const char page_tenant_4[] =
    "</h1><a href=\"/\">all tenants</a><a id=\"json\">JSON</a>"
    "<span id=\"status\">loading</span></header>\n"
    "<main id=\"sections\"></main>\n"
    "<script>\n" PD_PAGE_JS_COMMON
    "const tenant = document.body.dataset.tenant;\n"
    "const url = '/api/tenant/' + encodeURIComponent(tenant) + '.json';\n"
    "document.getElementById('json').href = url;\n"
    "let last = null;\n"
    "function cell(tr, cls, text) { const td = el('td', cls, text); "
    "tr.append(td); return td; }\n"
    "function row(r, id) {\n"
    "  const trs = [], tr = el('tr');\n"
    "  tr.dataset.action = r.action; tr.dataset.state = r.state;\n"
    "  cell(tr, 'action', r.action);\n"
    "  cell(tr, '').append(el('span', 'state ' + r.state, r.state));\n"
    "  trs.push(tr);\n"
    "  if (id === 'running') {\n"
    "    cell(tr, 'elapsed', 'running for ' + dur(Date.now() - "
    "Date.parse(r.started_at)));\n"
    "    cell(tr, 'muted', 'since ' + clock(r.started_at) + ', attempt ' + "
    "r.attempt);\n"
    "  } else if (id.startsWith('pending')) {\n"
    "    cell(tr, 'muted', r.error ? 'reason: ' + r.error : 'never ran');\n"
    "  } else {\n"
    "    cell(tr, 'muted', clock(r.finished_at));\n"
    "    cell(tr, 'muted', r.duration_ms !== null ? dur(r.duration_ms) + "
    "', attempt ' + r.attempt : '');\n"
    "    if (id === 'failed') {\n"
    "      cell(tr, 'exit', r.exit_code !== null ? 'exit ' + r.exit_code : "
    "'no exit code');\n"
    "      const more = el('tr', 'detail'), td = el('td');\n"
    "      td.colSpan = 5;\n"
    "      if (r.error) td.append(el('div', 'error', 'error: ' + r.error));\n"
    "      if (r.output_tail) td.append(el('pre', 'tail', r.output_tail));\n"
    "      more.append(td); trs.push(more);\n"
    "    }\n"
    "  }\n"
    "  if (r.release) cell(tr, 'muted', 'release ' + r.release);\n"
    "  return trs;\n"
    "}\n"
    "function render(rows) {\n"
    "  last = rows;\n"
    "  const main = document.getElementById('sections');\n"
    "  if (!rows) {\n"
    "    main.replaceChildren(el('p', 'muted', 'No results for tenant ' + "
    "tenant + ' yet.'));\n"
    "    return;\n"
    "  }\n"
    "  const out = [];\n"
    "  for (const [id, title, want] of SECTIONS) {\n"
    "    let sel = rows.filter(want);\n"
    "    if (id === 'unavailable' && !sel.length) continue;\n"
    "    if (id === 'completed' || id === 'unavailable')\n"
    "      sel = sel.sort((a, b) => (b.finished_at || '').localeCompare("
    "a.finished_at || '') || a.action.localeCompare(b.action));\n"
    "    const sec = el('section', id + (sel.length ? '' : ' empty'));\n"
    "    sec.id = id;\n"
    "    sec.append(el('h2', '', title + ' (' + sel.length + ')'));\n"
    "    const table = el('table');\n"
    "    for (const r of sel) table.append(...row(r, id));\n"
    "    sec.append(table); out.push(sec);\n"
    "  }\n"
    "  main.replaceChildren(...out);\n"
    "}\n"
    "setInterval(() => { if (last) render(last); }, 1000);\n"
    "poll(url, render);\n"
    "</script></body></html>\n";

/* The tenant page of `tenant`, in a malloc'ed buffer (*lenp bytes). */
static char *serve_tenant_page(const char *tenant, size_t *lenp) {
        char *buf = NULL;
        FILE *fp  = pd_xalloc(open_memstream(&buf, lenp));

        fputs(page_tenant_1, fp);
        html_escape(fp, tenant);
        fputs(page_tenant_2, fp);
        html_escape(fp, tenant);
        fputs(page_tenant_3, fp);
        html_escape(fp, tenant);
        fputs(page_tenant_4, fp);
        if (fclose(fp))
                abort();
        return buf;
}

/* The JSON rows of every tenant (tenant NULL) or one, in a malloc'ed
 * buffer, and the HTTP status in *codep: 200; 404 (NULL) if that tenant
 * has none; 503 (NULL) while the history is still being read. */
static char *serve_json(pd_serve_t *sv, const char *tenant, size_t *lenp,
                        unsigned int *codep) {
        char *buf = NULL;
        FILE *fp  = pd_xalloc(open_memstream(&buf, lenp));
        int err   = 0;

        pthread_mutex_lock(&sv->lock);
        if (sv->loaded)
                err = pd_report_json_write(sv->rp, tenant, fp);
        *codep = !sv->loaded ? 503 : err ? 404 : 200;
        pthread_mutex_unlock(&sv->lock);
        if (fclose(fp) || err > 0)
                abort(); /* only memory can fail a memory stream */
        if (*codep != 200) {
                free(buf);
                return NULL;
        }
        return buf;
}

static enum MHD_Result serve_reply(struct MHD_Connection *conn,
                                   unsigned int code, const char *type,
                                   char *body, size_t len,
                                   enum MHD_ResponseMemoryMode mode) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(len, body, mode);
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", type);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        /* Nothing from elsewhere: no script, style or image but the
         * page's own, no frame around it. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src "
                                "'unsafe-inline'; style-src 'unsafe-inline'; "
                                "connect-src 'self'; frame-ancestors 'none'");
        ret = MHD_queue_response(conn, code, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* The NAME of url when it is PREFIX NAME SUFFIX with a NAME that is not
 * empty and has no '/', in a malloc'ed string; else NULL. */
static char *serve_route(const char *url, const char *prefix,
                         const char *suffix) {
        size_t pl = strlen(prefix), sl = strlen(suffix), ul = strlen(url);

        if (ul <= pl + sl || strncmp(url, prefix, pl) ||
            strcmp(url + ul - sl, suffix) ||
            memchr(url + pl, '/', ul - pl - sl))
                return NULL;
        return pd_xstrndup(url + pl, ul - pl - sl);
}

/* Runs on libmicrohttpd's thread; url comes percent-decoded. */
static enum MHD_Result serve_on_request(void *cls, struct MHD_Connection *conn,
                                        const char *url, const char *method,
                                        const char *version,
                                        const char *upload_data,
                                        size_t *upload_data_size,
                                        void **con_cls) {
        static const char json[] = "application/json";
        static const char html[] = "text/html; charset=utf-8";
        static char not_found[]  = "not found\n";
        static char no_tenant[]  = "[]\n";
        static char loading[] =
            "{\"error\": \"still reading the "
            "results topic\"}\n";
        static char not_allowed[] = "only GET\n";
        pd_serve_t *sv            = cls;
        char *name, *body;
        size_t len = 0;
        unsigned int code;

        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)con_cls;
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
                return serve_reply(conn, 405, "text/plain", not_allowed,
                                   strlen(not_allowed), MHD_RESPMEM_PERSISTENT);
        if (!strcmp(url, "/"))
                return serve_reply(conn, 200, html, (char *)page_index,
                                   sizeof(page_index) - 1,
                                   MHD_RESPMEM_PERSISTENT);
        if (!strcmp(url, "/api/report.json")) {
                body = serve_json(sv, NULL, &len, &code);
        } else if ((name = serve_route(url, "/api/tenant/", ".json"))) {
                body = serve_json(sv, name, &len, &code);
                free(name);
        } else {
                body = NULL;
                code = 0;
        }
        if (code == 200)
                return serve_reply(conn, 200, json, body, len,
                                   MHD_RESPMEM_MUST_FREE);
        if (code == 404)
                return serve_reply(conn, 404, json, no_tenant,
                                   strlen(no_tenant), MHD_RESPMEM_PERSISTENT);
        if (code == 503)
                return serve_reply(conn, 503, json, loading, strlen(loading),
                                   MHD_RESPMEM_PERSISTENT);
        if ((name = serve_route(url, "/tenant/", ""))) {
                body = serve_tenant_page(name, &len);
                free(name);
                return serve_reply(conn, 200, html, body, len,
                                   MHD_RESPMEM_MUST_FREE);
        }
        return serve_reply(conn, 404, "text/plain", not_found,
                           strlen(not_found), MHD_RESPMEM_PERSISTENT);
}

/*
 * Starts the server on addr, HOST:PORT ([V6]:PORT; port 0: one the system
 * picks), and writes where it listens to where (size bytes), as
 * http://HOST:PORT/. Returns the daemon, or NULL after a message.
 */
static struct MHD_Daemon *serve_listen(pd_cli_t *cli, const char *addr,
                                       pd_serve_t *sv, char *where,
                                       size_t size) {
        struct addrinfo hints = {0}, *ai = NULL;
        const struct sockaddr *sa;
        struct sockaddr_storage bound;
        socklen_t bound_len = sizeof(bound);
        const union MHD_DaemonInfo *info;
        struct MHD_Daemon *d = NULL;
        char host[256], port[16], nhost[NI_MAXHOST], nport[NI_MAXSERV];
        const char *colon = strrchr(addr, ':');
        size_t hl;
        int err;

        if (!colon || colon == addr || !colon[1] ||
            strlen(colon + 1) >= sizeof(port) ||
            (size_t)(colon - addr) >= sizeof(host)) {
                pd_cli_error(cli, "--listen wants HOST:PORT, got '%s'", addr);
                return NULL;
        }
        hl = (size_t)(colon - addr);
        if (addr[0] == '[' && addr[hl - 1] == ']') { /* [::1]:8080 */
                memcpy(host, addr + 1, hl - 2);
                host[hl - 2] = '\0';
        } else {
                memcpy(host, addr, hl);
                host[hl] = '\0';
        }
        snprintf(port, sizeof(port), "%s", colon + 1);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
        if ((err = getaddrinfo(host, port, &hints, &ai))) {
                pd_cli_error(cli, "--listen %s: %s", addr, gai_strerror(err));
                return NULL;
        }
        sa    = ai->ai_addr;
        errno = 0;
        d     = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD |
                    (sa->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                0, NULL, NULL, serve_on_request, sv, MHD_OPTION_SOCK_ADDR, sa,
                MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
        freeaddrinfo(ai);
        if (!d) {
                /* An address in use is the usual reason, and errno says
                 * so; libmicrohttpd has no message of its own to give. */
                pd_cli_error(
                    cli, "cannot listen on %s: %s", addr,
                    errno ? pd_strerror(errno) : "libmicrohttpd failed");
                return NULL;
        }
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
        if (!info ||
            getsockname(info->listen_fd, (struct sockaddr *)&bound,
                        &bound_len) ||
            getnameinfo((struct sockaddr *)&bound, bound_len, nhost,
                        sizeof(nhost), nport, sizeof(nport),
                        NI_NUMERICHOST | NI_NUMERICSERV)) {
                snprintf(where, size, "http://%s/", addr);
                return d;
        }
        snprintf(
            where, size,
            bound.ss_family == AF_INET6 ? "http://[%s]:%s/" : "http://%s:%s/",
            nhost, nport);
        return d;
}

static void serve_usage(FILE *fp) {
        fprintf(fp,
                "Usage: postdeploy serve [--listen HOST:PORT] [options]\n"
                "\n"
                "Serves a live status page: every tenant's actions as "
                "`report` shows them\n"
                "(pending, running with elapsed time, failed with exit "
                "code, error and output\n"
                "tail, completed), updated every 2 s. Follows the results "
                "topic, so it works\n"
                "from any machine and shows every reactor. Pages: / (the "
                "tenants), /tenant/T;\n"
                "JSON: /api/report.json (as `report --format json`), "
                "/api/tenant/T.json.\n"
                "Prints the URL it listens on; runs until SIGINT or "
                "SIGTERM.\n"
                "\n"
                "Options:\n"
                "  -l, --listen ADDR    HOST:PORT to listen on (default "
                "127.0.0.1:8080; port 0:\n"
                "                       any free one). It has no "
                "authentication: keep it on\n"
                "                       a trusted network\n" PD_CLI_COMMON_HELP
                "\n"
                "Exit status: 0 stopped by a signal; 2 usage or "
                "configuration error, or the\n"
                "address cannot be listened on (in use); 4 Kafka "
                "unreachable.\n");
}

int pd_cmd_serve(pd_cli_t *cli, int argc, char **argv) {
        static const struct option longopts[] = {
            {"listen", required_argument, NULL, 'l'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        pd_serve_t sv           = {.lock = PTHREAD_MUTEX_INITIALIZER};
        const char *listen_addr = "127.0.0.1:8080";
        struct sigaction sa     = {0};
        struct MHD_Daemon *d    = NULL;
        rd_kafka_t *rkc         = NULL;
        char where[300];
        int opt, ret = PD_EXIT_USAGE;

        optind = 1;
        while ((opt = getopt_long(argc, argv, ":l:" PD_CLI_COMMON_SHORTOPTS,
                                  longopts, NULL)) != -1) {
                if (pd_cli_swallowed(cli, argv))
                        goto done;
                switch (opt) {
                case 'l':
                        listen_addr = optarg;
                        break;
                case 'h':
                        serve_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                goto done;
                        break;
                }
        }
        if (pd_cli_no_operands(cli, argc, argv) ||
            !(rkc = pd_cli_results_open(cli, &ret)))
                goto done;
        sv.rp = pd_report_new(cli);
        if (!(d = serve_listen(cli, listen_addr, &sv, where, sizeof(where)))) {
                ret = PD_EXIT_USAGE;
                goto done;
        }
        sa.sa_handler = serve_on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        /* The one line a script waits for: the server answers from now. */
        printf("postdeploy serve: %s (following %s)\n", where,
               cli->conf->topic_results);
        fflush(stdout);
        ret = pd_results_follow(cli, rkc, &serve_stop, serve_on_event,
                                serve_on_loaded, &sv);

done:
        if (d)
                MHD_stop_daemon(d);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        pd_report_destroy(sv.rp);
        return ret;
}
