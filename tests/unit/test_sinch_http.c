/* The Sinch client (adapters/sinch/sinch_http.c) against the real simulator, tests/sim's
 * sinch-sim, started on a free loopback port: sends with OAuth and basic auth, 100 in parallel
 * over reused connections with one token fetch, refresh-and-retry on an expired token, the
 * token endpoint's 429 backoff, Retry-After, dropped, refused and slow connections, and
 * sb_sinch_check(). The simulator's control endpoints (/_sim/...) set faults and count. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapters/sinch.h"
#include "bridge/log.h"
#include "check.h"

#ifndef SB_SIM_BIN

int main(void)
{
    printf("skipped: built without the sinch-sim target\n");
    return check_report();
}

#else

#define SEND_PATH "/v1/projects/sim-project/messages:send"
#define SEND_BODY                                                                                  \
    "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":[{"          \
    "\"channel\":\"WHATSAPP\",\"identity\":\"15551234567\"}]}},\"message\":{\"text_message\":{"    \
    "\"text\":\"hi\"}}}"
#define MAX_JOBS 256
#define WAIT_S   30

static pid_t sim_pid = -1;
static char sim_base[64];
static char sim_log_path[64] = "/tmp/test_sinch_http.XXXXXX";

/* struct sb_config holds char *; these give the literals somewhere writable to live. */
static char s_project[] = "sim-project";
static char s_app[] = "sim-app";
static char s_key[] = "sim-key";
static char s_secret[] = "sim-secret";
static char s_wrong_secret[] = "not-the-secret";
static char s_wrong_app[] = "no-such-app";
static char s_api_url[80];
static char s_auth_url[96];
static char s_dead_url[80];
static char s_dead_auth_url[96];

/* ---- the simulator ---- */

/* A loopback port nobody listens on right now: bind port 0, read it, close. */
static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0) {
        return -1;
    }
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void sim_dump_log(void)
{
    char buf[4096];
    int fd = open(sim_log_path, O_RDONLY);
    ssize_t n;

    fprintf(stderr, "---- sinch-sim output ----\n");
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
        fwrite(buf, 1, (size_t)n, stderr);
    }
    fprintf(stderr, "---- end ----\n");
    if (fd >= 0) {
        close(fd);
    }
}

static bool sim_start(void)
{
    char port_s[16];
    int port = free_port();
    int logfd = mkstemp(sim_log_path);

    if (port < 0 || logfd < 0) {
        return false;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(sim_base, sizeof(sim_base), "http://127.0.0.1:%d", port);
    sim_pid = fork();
    if (sim_pid < 0) {
        return false;
    }
    if (sim_pid == 0) {
        /* Linux only: the simulator dies with the test, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        execl(SB_SIM_BIN, SB_SIM_BIN, "--host", "127.0.0.1", "--port", port_s, "--project-id",
              "sim-project", "--app-id", "sim-app", "--key-id", "sim-key", "--key-secret",
              "sim-secret", "--token-ttl", "3599", (char *)NULL);
        _exit(127);
    }
    close(logfd);
    for (int i = 0; i < 1000; i++) { /* 10 s */
        char buf[8192];
        int fd = open(sim_log_path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0) {
            close(fd);
        }
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, "sinch-sim listening on http://")) {
                return true;
            }
        }
        int status;
        if (waitpid(sim_pid, &status, WNOHANG) == sim_pid) {
            sim_pid = -1;
            sim_dump_log();
            return false;
        }
        sleep_ms(10);
    }
    sim_dump_log();
    return false;
}

static void sim_stop(void)
{
    int status;

    if (sim_pid > 0) {
        kill(sim_pid, SIGTERM);
        for (int i = 0; i < 300 && waitpid(sim_pid, &status, WNOHANG) == 0; i++) {
            sleep_ms(10);
        }
        if (waitpid(sim_pid, &status, WNOHANG) == 0) {
            kill(sim_pid, SIGKILL);
            waitpid(sim_pid, &status, 0);
        }
        sim_pid = -1;
    }
    unlink(sim_log_path);
}

struct grow {
    char data[65536];
    size_t len;
};

static size_t grow_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct grow *g = arg;
    size_t n = size * nmemb;
    if (g->len + n >= sizeof(g->data)) {
        return 0;
    }
    memcpy(g->data + g->len, p, n);
    g->len += n;
    g->data[g->len] = '\0';
    return n;
}

/* One plain request to the simulator's control endpoints; the answer's JSON in *out (new
 * reference) when out is not NULL. Returns the HTTP status, 0 on failure. */
static long sim_call(const char *method, const char *path, const char *body, json_t **out)
{
    static struct grow g;
    char url[256];
    long status = 0;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    g.len = 0;
    g.data[0] = '\0';
    snprintf(url, sizeof(url), "%s%s", sim_base, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grow_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(e) == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (out) {
        *out = json_loadb(g.data, g.len, 0, NULL);
    }
    return status;
}

static long sim_stat(const char *name)
{
    json_t *j = NULL;
    long v = -1;
    if (sim_call("GET", "/_sim/stats", NULL, &j) == 200 &&
        json_is_integer(json_object_get(j, name))) {
        v = (long)json_integer_value(json_object_get(j, name));
    }
    json_decref(j);
    return v;
}

/* The "auth" ("bearer", "basic", "none") of the last recorded request to `endpoint`, "" when
 * there is none, read page by page from GET /_sim/requests. */
static void sim_last_auth(const char *endpoint, char *out, size_t out_len)
{
    char path[64];
    json_int_t since = 0;

    snprintf(out, out_len, "%s", "");
    for (int page = 0; page < 1000; page++) {
        json_t *j = NULL, *rec;
        size_t i;
        snprintf(path, sizeof(path), "/_sim/requests?since=%lld", (long long)since);
        if (sim_call("GET", path, NULL, &j) != 200 ||
            json_array_size(json_object_get(j, "requests")) == 0) {
            json_decref(j);
            return;
        }
        json_array_foreach(json_object_get(j, "requests"), i, rec)
        {
            const char *ep = json_string_value(json_object_get(rec, "endpoint"));
            const char *auth = json_string_value(json_object_get(rec, "auth"));
            if (ep && auth && strcmp(ep, endpoint) == 0) {
                snprintf(out, out_len, "%s", auth);
            }
        }
        since = json_integer_value(json_object_get(j, "next"));
        json_decref(j);
    }
}

static void sim_fault(const char *rules)
{
    long st = sim_call("POST", "/_sim/faults", rules, NULL);
    CHECKF(st >= 200 && st < 300, "POST /_sim/faults %s: %ld", rules, st);
}

static void sim_reset(void)
{
    sim_call("DELETE", "/_sim/faults", NULL, NULL);
}

/* ---- the client's results ---- */

struct results {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sb_sinch_result *items[MAX_JOBS];
    size_t n;
    int calls_per_tag[MAX_JOBS];
    int calls; /* every call of done, even for a tag out of range */
};

static void on_done(void *arg, struct sb_sinch_result *res)
{
    struct results *r = arg;

    pthread_mutex_lock(&r->mu);
    r->calls++;
    if (res->tag < MAX_JOBS) {
        r->calls_per_tag[res->tag]++;
    }
    if (r->n < MAX_JOBS) {
        r->items[r->n++] = res;
        res = NULL;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    sb_sinch_result_free(res);
}

static void results_init(struct results *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void results_clear(struct results *r)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        sb_sinch_result_free(r->items[i]);
    }
    r->n = 0;
    r->calls = 0;
    memset(r->calls_per_tag, 0, sizeof(r->calls_per_tag));
    pthread_mutex_unlock(&r->mu);
}

static void results_destroy(struct results *r)
{
    results_clear(r);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* Waits until `n` results came, at most `secs`. */
static bool results_wait(struct results *r, size_t n, int secs)
{
    struct timespec until;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    pthread_mutex_lock(&r->mu);
    while (r->n < n) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    ok = r->n >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void base_config(struct sb_config *cfg, enum sb_auth_mode auth)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->project_id = s_project;
    cfg->app_id = s_app;
    cfg->key_id = s_key;
    cfg->key_secret = s_secret;
    cfg->auth = auth;
    cfg->api_url = s_api_url;
    cfg->auth_url = s_auth_url;
    cfg->sinch_timeout = 10;
    cfg->sinch_connections = 16;
}

static char *dup_body(void)
{
    return strdup(SEND_BODY);
}

/* Submits one send and waits for its result (the caller frees it). */
static struct sb_sinch_result *send_one(struct sb_sinch *s, struct results *r, uint64_t tag)
{
    size_t before;
    pthread_mutex_lock(&r->mu);
    before = r->n;
    pthread_mutex_unlock(&r->mu);
    CHECK(sb_sinch_submit(s, tag, "POST", SEND_PATH, dup_body()) == SB_OK);
    if (!results_wait(r, before + 1, WAIT_S)) {
        CHECKF(false, "no result for tag %llu", (unsigned long long)tag);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    struct sb_sinch_result *res = r->items[before];
    r->items[before] = NULL;
    r->n = before;
    pthread_mutex_unlock(&r->mu);
    return res;
}

static bool accepted(const struct sb_sinch_result *res)
{
    json_t *j = res && res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    bool ok = json_is_string(json_object_get(j, "message_id"));
    json_decref(j);
    return ok;
}

/* ---- the cases ---- */

static void test_send_oauth(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    struct sb_sinch_stats st;
    long issued = sim_stat("tokens_issued");

    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    struct sb_sinch_result *res = send_one(s, &r, 1);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_OK, "%s", sb_err_name(res->err));
        CHECKF(res->status == 200, "status %ld: %s", res->status, res->body ? res->body : "");
        CHECK(res->tag == 1);
        CHECK(accepted(res));
        CHECK(res->requests == 1);
        CHECK(res->maybe_sent);
        CHECK(res->retry_after_ms == -1);
        CHECK(res->seconds > 0 && res->seconds < 5);
    }
    sb_sinch_result_free(res);
    /* a second send reuses the cached token */
    res = send_one(s, &r, 2);
    CHECK(res && res->status == 200 && res->requests == 1);
    sb_sinch_result_free(res);
    CHECK(sim_stat("tokens_issued") == issued + 1);
    char auth[16];
    const char *got = auth;
    sim_last_auth("send", auth, sizeof(auth));
    CHECK_STR(got, "bearer");
    sim_last_auth("token", auth, sizeof(auth));
    CHECK_STR(got, "basic");
    sb_sinch_stats(s, &st);
    CHECK(st.token_valid);
    CHECK(st.last_status == 200);
    CHECK(st.requests == 2);
    CHECK(st.token_fetches == 1);

    /* a GET of the app, no body */
    CHECK(sb_sinch_submit(s, 3, "GET", "/v1/projects/sim-project/apps/sim-app", NULL) == SB_OK);
    CHECK(results_wait(&r, 1, WAIT_S));
    CHECK(r.n == 1 && r.items[0]->status == 200 && r.items[0]->err == SB_OK);
    results_clear(&r);
    /* bad submissions are refused at once, and the body is still freed */
    CHECK(sb_sinch_submit(s, 4, "PUT", SEND_PATH, dup_body()) == SB_E_INVAL);
    CHECK(sb_sinch_submit(s, 4, "POST", "no-slash", dup_body()) == SB_E_INVAL);
    sb_sinch_free(s);
    CHECK(r.n == 0);
    results_destroy(&r);
}

static void test_send_basic(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    struct sb_sinch_stats st;
    long token_requests = sim_stat("token_requests");

    base_config(&cfg, SB_AUTH_BASIC);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    struct sb_sinch_result *res = send_one(s, &r, 7);
    CHECK(res && res->err == SB_OK && res->status == 200 && accepted(res));
    sb_sinch_result_free(res);
    CHECK(sim_stat("token_requests") == token_requests);
    char auth[16];
    const char *got = auth;
    sim_last_auth("send", auth, sizeof(auth));
    CHECK_STR(got, "basic");
    sb_sinch_stats(s, &st);
    CHECK(!st.token_valid);
    CHECK(st.token_fetches == 0);
    sb_sinch_free(s);
    results_destroy(&r);

    /* a wrong secret with basic auth: the API's 401 comes back as is */
    cfg.key_secret = s_wrong_secret;
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    res = send_one(s, &r, 8);
    CHECK(res && res->err == SB_OK && res->status == 401 && res->requests == 1);
    sb_sinch_result_free(res);
    sb_sinch_free(s);
    results_destroy(&r);
}

/* The local and the remote port of a /proc/net/tcp line, "  0: 0100007F:C350 0100007F:1F90 01 ...",
 * in hex after the second and the third ':'; false for the heading or a line cut short. */
static bool tcp_ports(const char *line, unsigned *local, unsigned *remote)
{
    const char *slot = strchr(line, ':');
    const char *l = slot ? strchr(slot + 1, ':') : NULL;
    const char *r = l ? strchr(l + 1, ':') : NULL;
    char *end;

    if (!r) {
        return false;
    }
    *local = (unsigned)strtoul(l + 1, &end, 16);
    if (end == l + 1 || *end != ' ') {
        return false;
    }
    *remote = (unsigned)strtoul(r + 1, &end, 16);
    return end != r + 1 && *end == ' ';
}

/* Local ports of this host's TCP sockets to the simulator's port, in any state (TIME_WAIT
 * included), from /proc/net/tcp: Linux only, like the rest of this file. */
static size_t sim_client_ports(unsigned *ports, size_t max)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    size_t n = 0;
    unsigned sim_port = (unsigned)strtoul(strrchr(sim_base, ':') + 1, NULL, 10);

    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) && n < max) {
        unsigned lport, rport;
        if (tcp_ports(line, &lport, &rport) && rport == sim_port) {
            ports[n++] = lport;
        }
    }
    fclose(f);
    return n;
}

static void test_parallel(void)
{
    enum { N = 100, PORTS_MAX = 4096 };
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    long token_requests = sim_stat("token_requests");
    long sends = sim_stat("sends_accepted");
    static unsigned before[PORTS_MAX], after[PORTS_MAX];
    size_t n_before = sim_client_ports(before, PORTS_MAX);

    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    for (int round = 0; round < 2; round++) {
        for (uint64_t tag = 0; tag < N; tag++) {
            CHECK(sb_sinch_submit(s, tag, "POST", SEND_PATH, dup_body()) == SB_OK);
        }
        CHECK(results_wait(&r, N, WAIT_S));
        sleep_ms(50); /* a late duplicate would show up here */
        pthread_mutex_lock(&r.mu);
        int ok = 0, once = 0;
        for (size_t i = 0; i < r.n; i++) {
            ok += r.items[i]->err == SB_OK && r.items[i]->status == 200;
        }
        for (int tag = 0; tag < N; tag++) {
            once += r.calls_per_tag[tag] == 1;
        }
        CHECKF(ok == N, "round %d: %d of %d accepted", round, ok, N);
        CHECKF(once == N && r.calls == N, "round %d: %d tags answered once, %d calls", round, once,
               r.calls);
        pthread_mutex_unlock(&r.mu);
        results_clear(&r);
    }
    /* At most BRIDGE_SINCH_CONNECTIONS connections for the API plus one for the token were
     * opened for 200 sends: the rest went over kept-alive connections. Counted before any
     * control request, which would open connections of its own. */
    size_t n_after = sim_client_ports(after, PORTS_MAX), opened = 0;
    for (size_t i = 0; i < n_after; i++) {
        bool old = false;
        for (size_t k = 0; k < n_before && !old; k++) {
            old = before[k] == after[i];
        }
        opened += !old;
    }
    CHECKF(opened >= 1 && opened <= (size_t)cfg.sinch_connections + 1,
           "%zu connections opened for %d sends", opened, 2 * N);
    printf("%d parallel sends went over %zu connections\n", 2 * N, opened);
    CHECKF(sim_stat("token_requests") == token_requests + 1, "token requests %ld -> %ld",
           token_requests, sim_stat("token_requests"));
    CHECK(sim_stat("sends_accepted") == sends + 2L * N);
    sb_sinch_free(s);
    results_destroy(&r);
}

static void test_token_expired(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    struct sb_sinch_stats st;
    long issued = sim_stat("tokens_issued");

    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    struct sb_sinch_result *res = send_one(s, &r, 1);
    CHECK(res && res->status == 200 && res->requests == 1);
    sb_sinch_result_free(res);

    CHECK(sim_call("POST", "/_sim/tokens/expire", NULL, NULL) / 100 == 2);
    res = send_one(s, &r, 2);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_OK && res->status == 200, "%s, status %ld", sb_err_name(res->err),
               res->status);
        CHECKF(res->requests == 2, "requests %d", res->requests);
        CHECK(accepted(res));
    }
    sb_sinch_result_free(res);
    CHECKF(sim_stat("tokens_issued") == issued + 2, "tokens issued %ld -> %ld", issued,
           sim_stat("tokens_issued"));
    sb_sinch_stats(s, &st);
    CHECK(st.token_fetches == 2);
    CHECK(st.token_valid);

    /* many jobs on an expired token: one refresh serves them all, each retried once */
    CHECK(sim_call("POST", "/_sim/tokens/expire", NULL, NULL) / 100 == 2);
    for (uint64_t tag = 10; tag < 40; tag++) {
        CHECK(sb_sinch_submit(s, tag, "POST", SEND_PATH, dup_body()) == SB_OK);
    }
    CHECK(results_wait(&r, 30, WAIT_S));
    int ok = 0;
    for (size_t i = 0; i < r.n; i++) {
        ok += r.items[i]->status == 200 && r.items[i]->requests <= 2;
    }
    CHECKF(ok == 30, "%d of 30", ok);
    CHECKF(sim_stat("tokens_issued") == issued + 3, "tokens issued %ld -> %ld", issued,
           sim_stat("tokens_issued"));
    results_clear(&r);
    sb_sinch_free(s);
    results_destroy(&r);
}

#define WWW_EXPIRED "Bearer error=\\\"invalid_token\\\", error_description=\\\"token expired\\\""
#define WWW_INVALID "Bearer error=\\\"invalid_token\\\""

static void test_401_not_expired(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;

    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    struct sb_sinch_result *res = send_one(s, &r, 1); /* token cached */
    sb_sinch_result_free(res);

    /* 401 without "expired": bad credentials, not retried */
    long issued = sim_stat("tokens_issued");
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":1,\"status\":401,"
              "\"www_authenticate\":\"" WWW_INVALID "\"}]}");
    res = send_one(s, &r, 2);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_OK && res->status == 401, "%s, status %ld", sb_err_name(res->err),
               res->status);
        CHECK(res->requests == 1);
        CHECK(res->maybe_sent);
    }
    sb_sinch_result_free(res);
    CHECK(sim_stat("tokens_issued") == issued);
    sim_reset();

    /* 401 without any WWW-Authenticate: the same */
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":1,\"status\":401}]}");
    res = send_one(s, &r, 3);
    CHECK(res && res->status == 401 && res->requests == 1);
    sb_sinch_result_free(res);
    CHECK(sim_stat("tokens_issued") == issued);
    sim_reset();

    /* "expired" twice: one refresh, one retry, and the second 401 is returned as is */
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":2,\"status\":401,"
              "\"www_authenticate\":\"" WWW_EXPIRED "\"}]}");
    res = send_one(s, &r, 4);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_OK && res->status == 401, "%s, status %ld", sb_err_name(res->err),
               res->status);
        CHECK(res->requests == 2);
    }
    sb_sinch_result_free(res);
    CHECK(sim_stat("tokens_issued") == issued + 1);
    sim_reset();
    sb_sinch_free(s);
    results_destroy(&r);

    /* basic auth never refreshes anything: an "expired" 401 is returned as is */
    base_config(&cfg, SB_AUTH_BASIC);
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":1,\"status\":401,"
              "\"www_authenticate\":\"" WWW_EXPIRED "\"}]}");
    res = send_one(s, &r, 5);
    CHECK(res && res->status == 401 && res->requests == 1);
    sb_sinch_result_free(res);
    sim_reset();
    sb_sinch_free(s);
    results_destroy(&r);
}

static void test_token_429(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    long token_requests = sim_stat("token_requests");

    /* twice 429 without Retry-After: full jitter (at most 1 s + 4 s), then a token */
    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    sim_fault("{\"rules\":[{\"match\":\"token\",\"count\":2,\"status\":429}]}");
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    CHECK(sb_sinch_submit(s, 1, "POST", SEND_PATH, dup_body()) == SB_OK);
    CHECK(sb_sinch_submit(s, 2, "POST", SEND_PATH, dup_body()) == SB_OK);
    CHECK(results_wait(&r, 2, WAIT_S));
    for (size_t i = 0; i < r.n; i++) {
        CHECKF(r.items[i]->err == SB_OK && r.items[i]->status == 200, "%s, status %ld",
               sb_err_name(r.items[i]->err), r.items[i]->status);
    }
    CHECKF(sim_stat("token_requests") == token_requests + 3, "token requests %ld -> %ld",
           token_requests, sim_stat("token_requests"));
    results_clear(&r);
    sb_sinch_free(s);
    sim_reset();

    /* five times 429 (with Retry-After: 0, to keep the test quick): three retries, then
     * SB_E_RATE for every parked job, none of them sent */
    token_requests = sim_stat("token_requests");
    sim_fault(
        "{\"rules\":[{\"match\":\"token\",\"count\":5,\"status\":429,\"retry_after\":\"0\"}]}");
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    CHECK(sb_sinch_submit(s, 1, "POST", SEND_PATH, dup_body()) == SB_OK);
    CHECK(sb_sinch_submit(s, 2, "POST", SEND_PATH, dup_body()) == SB_OK);
    CHECK(results_wait(&r, 2, WAIT_S));
    for (size_t i = 0; i < r.n; i++) {
        CHECKF(r.items[i]->err == SB_E_RATE, "%s", sb_err_name(r.items[i]->err));
        CHECK(!r.items[i]->maybe_sent);
        CHECK(r.items[i]->requests == 0);
        CHECK(r.items[i]->status == 0);
    }
    CHECKF(sim_stat("token_requests") == token_requests + 4, "token requests %ld -> %ld",
           token_requests, sim_stat("token_requests"));
    results_clear(&r);
    sim_reset();

    /* the next job starts a new fetch, which now succeeds */
    CHECK(sb_sinch_submit(s, 3, "POST", SEND_PATH, dup_body()) == SB_OK);
    CHECK(results_wait(&r, 1, WAIT_S));
    CHECK(r.n == 1 && r.items[0]->status == 200);
    results_clear(&r);
    sb_sinch_free(s);
    results_destroy(&r);
}

static void test_token_failures(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;

    /* 5xx from the token endpoint: SB_E_SERVER, no retry */
    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    long token_requests = sim_stat("token_requests");
    sim_fault("{\"rules\":[{\"match\":\"token\",\"count\":1,\"status\":503}]}");
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    struct sb_sinch_result *res = send_one(s, &r, 1);
    CHECK(res && res->err == SB_E_SERVER && !res->maybe_sent && res->requests == 0);
    sb_sinch_result_free(res);
    CHECK(sim_stat("token_requests") == token_requests + 1);
    sb_sinch_free(s);
    sim_reset();

    /* a wrong secret: the token endpoint says 401, the job fails with SB_E_AUTH */
    cfg.key_secret = s_wrong_secret;
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    res = send_one(s, &r, 2);
    CHECK(res && res->err == SB_E_AUTH && !res->maybe_sent && res->requests == 0);
    sb_sinch_result_free(res);
    sb_sinch_free(s);

    /* the token endpoint refuses connections: SB_E_NET, nothing sent */
    base_config(&cfg, SB_AUTH_OAUTH);
    cfg.auth_url = s_dead_auth_url;
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    res = send_one(s, &r, 3);
    CHECK(res && res->err == SB_E_NET && !res->maybe_sent && res->requests == 0);
    sb_sinch_result_free(res);
    sb_sinch_free(s);
    results_destroy(&r);
}

static void test_api_faults(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    struct sb_sinch_result *res;

    base_config(&cfg, SB_AUTH_OAUTH);
    cfg.sinch_timeout = 1;
    results_init(&r);
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    res = send_one(s, &r, 1); /* token cached, connection open */
    CHECK(res && res->status == 200);
    sb_sinch_result_free(res);

    /* 503 with Retry-After: 2 is an answer: SB_OK, the status and the delay */
    sim_fault(
        "{\"rules\":[{\"match\":\"send\",\"count\":1,\"status\":503,\"retry_after\":\"2\"}]}");
    res = send_one(s, &r, 2);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_OK && res->status == 503, "%s, status %ld", sb_err_name(res->err),
               res->status);
        CHECKF(res->retry_after_ms == 2000, "retry_after_ms %ld", res->retry_after_ms);
        CHECK(res->maybe_sent);
        CHECK(res->requests == 1);
    }
    sb_sinch_result_free(res);
    sim_reset();

    /* a dropped connection: no answer, but the request may have arrived. curl re-sends once on
     * a fresh connection when a reused one dies silently, so drop a few. */
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":3,\"drop\":true}]}");
    res = send_one(s, &r, 3);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_E_NET, "%s, status %ld", sb_err_name(res->err), res->status);
        CHECK(res->maybe_sent);
        CHECK(res->status == 0);
        CHECK(res->body == NULL);
    }
    sb_sinch_result_free(res);
    sim_reset();

    /* an answer slower than BRIDGE_SINCH_TIMEOUT (1 s) */
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":1,\"status\":200,\"delay_ms\":2500}]}");
    res = send_one(s, &r, 4);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_E_TIMEOUT, "%s", sb_err_name(res->err));
        CHECK(res->maybe_sent);
        CHECKF(res->seconds >= 0.9 && res->seconds < 2.4, "%.3f s", res->seconds);
    }
    sb_sinch_result_free(res);
    sim_reset();
    sleep_ms(1700); /* let the simulator finish the slow answer before the next case */

    /* and the client still works */
    res = send_one(s, &r, 5);
    CHECK(res && res->status == 200);
    sb_sinch_result_free(res);
    sb_sinch_free(s);

    /* nobody listens: the request surely never left */
    base_config(&cfg, SB_AUTH_BASIC);
    cfg.api_url = s_dead_url;
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    res = send_one(s, &r, 6);
    CHECK(res != NULL);
    if (res) {
        CHECKF(res->err == SB_E_NET, "%s", sb_err_name(res->err));
        CHECK(!res->maybe_sent);
        CHECK(res->status == 0);
        CHECK(res->requests == 1);
    }
    sb_sinch_result_free(res);
    sb_sinch_free(s);
    results_destroy(&r);
}

/* Freeing with jobs in flight, parked and queued drops them without a callback. */
static void test_free_in_flight(void)
{
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;

    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    sim_fault("{\"rules\":[{\"match\":\"token\",\"count\":1,\"status\":200,\"delay_ms\":1500}]}");
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    for (uint64_t tag = 0; tag < 20; tag++) {
        CHECK(sb_sinch_submit(s, tag, "POST", SEND_PATH, dup_body()) == SB_OK);
    }
    sleep_ms(100);
    sb_sinch_free(s);
    CHECK(r.calls == 0);
    sim_reset();

    base_config(&cfg, SB_AUTH_BASIC);
    sim_fault("{\"rules\":[{\"match\":\"send\",\"count\":20,\"status\":200,\"delay_ms\":1500}]}");
    CHECK(sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK);
    for (uint64_t tag = 0; tag < 20; tag++) {
        CHECK(sb_sinch_submit(s, tag, "POST", SEND_PATH, dup_body()) == SB_OK);
    }
    sleep_ms(100);
    sb_sinch_free(s);
    CHECK(r.calls == 0);
    sb_sinch_free(NULL);
    sim_reset();
    sleep_ms(1500);
    results_destroy(&r);
}

static void test_check(void)
{
    struct sb_config cfg;
    char why[512];

    base_config(&cfg, SB_AUTH_OAUTH);
    why[0] = 'x';
    CHECKF(sb_sinch_check(&cfg, why, sizeof(why)) == SB_OK, "%s", why);

    base_config(&cfg, SB_AUTH_BASIC);
    CHECKF(sb_sinch_check(&cfg, why, sizeof(why)) == SB_OK, "%s", why);

    base_config(&cfg, SB_AUTH_OAUTH);
    cfg.app_id = s_wrong_app;
    CHECK(sb_sinch_check(&cfg, why, sizeof(why)) == SB_E_NOTFOUND);
    CHECKF(strstr(why, "SINCH_REGION") != NULL && strstr(why, "404") != NULL, "%s", why);

    base_config(&cfg, SB_AUTH_OAUTH);
    cfg.key_secret = s_wrong_secret;
    CHECK(sb_sinch_check(&cfg, why, sizeof(why)) == SB_E_AUTH);
    CHECKF(strncmp(why, "token: HTTP 401 from ", 21) == 0 && strstr(why, s_auth_url), "%s", why);
    CHECKF(!strstr(why, s_wrong_secret) && !strstr(why, s_secret), "%s", why);

    base_config(&cfg, SB_AUTH_BASIC);
    cfg.key_secret = s_wrong_secret;
    CHECK(sb_sinch_check(&cfg, why, sizeof(why)) == SB_E_AUTH);
    CHECKF(strstr(why, "401") != NULL && !strstr(why, s_wrong_secret), "%s", why);

    base_config(&cfg, SB_AUTH_OAUTH);
    cfg.auth_url = s_dead_auth_url;
    CHECK(sb_sinch_check(&cfg, why, sizeof(why)) == SB_E_NET);
    CHECKF(strncmp(why, "token: ", 7) == 0, "%s", why);

    base_config(&cfg, SB_AUTH_BASIC);
    cfg.api_url = s_dead_url;
    CHECK(sb_sinch_check(&cfg, why, sizeof(why)) == SB_E_NET);
    CHECKF(strstr(why, "/apps/sim-app") != NULL, "%s", why);

    /* the token endpoint's 429 is waited out here too */
    base_config(&cfg, SB_AUTH_OAUTH);
    sim_fault(
        "{\"rules\":[{\"match\":\"token\",\"count\":1,\"status\":429,\"retry_after\":\"0\"}]}");
    CHECKF(sb_sinch_check(&cfg, why, sizeof(why)) == SB_OK, "%s", why);
    sim_reset();
}

/* At debug level, nothing the client logs carries the secret or an Authorization header. */
static void test_no_secrets_logged(void)
{
    char path[] = "/tmp/test_sinch_http_log.XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    struct sb_config cfg;
    struct results r;
    struct sb_sinch *s = NULL;
    char buf[65536];
    ssize_t n;

    if (fd < 0 || saved < 0) {
        CHECK(false);
        return;
    }
    sb_log_setup(SB_LOG_DEBUG, SB_LOG_TEXT);
    dup2(fd, STDERR_FILENO);
    base_config(&cfg, SB_AUTH_OAUTH);
    results_init(&r);
    if (sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK) {
        sb_sinch_result_free(send_one(s, &r, 1));
        sim_call("POST", "/_sim/tokens/expire", NULL, NULL);
        sb_sinch_result_free(send_one(s, &r, 2));
        sb_sinch_free(s);
    }
    cfg.key_secret = s_wrong_secret;
    if (sb_sinch_new(&cfg, on_done, &r, &s) == SB_OK) {
        sb_sinch_result_free(send_one(s, &r, 3));
        sb_sinch_free(s);
    }
    results_destroy(&r);
    dup2(saved, STDERR_FILENO);
    close(saved);
    sb_log_setup(SB_LOG_WARN, SB_LOG_TEXT);

    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    CHECKF(strstr(buf, "token fetched") != NULL, "log: %s", buf);
    CHECKF(strstr(buf, "messages:send -> 200") != NULL, "log: %s", buf);
    CHECK(strstr(buf, s_secret) == NULL);
    CHECK(strstr(buf, s_wrong_secret) == NULL);
    CHECK(strstr(buf, "Authorization") == NULL);
    CHECK(strstr(buf, "Bearer ") == NULL);
    CHECK(strstr(buf, "c2ltLWtleTpzaW0tc2VjcmV0") == NULL);       /* base64 of sim-key:sim-secret */
    CHECK(strstr(buf, "c2ltLWtleTpub3QtdGhlLXNlY3JldA") == NULL); /* and of the wrong one */
    CHECK(strstr(buf, "eyJ") == NULL);                            /* a JWT's first bytes */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sb_log_setup(SB_LOG_WARN, SB_LOG_TEXT);
    if (!sim_start()) {
        fprintf(stderr, "cannot start %s\n", SB_SIM_BIN);
        sim_stop();
        return 1;
    }
    snprintf(s_api_url, sizeof(s_api_url), "%s", sim_base);
    snprintf(s_auth_url, sizeof(s_auth_url), "%s/oauth2/token", sim_base);
    int dead = free_port();
    snprintf(s_dead_url, sizeof(s_dead_url), "http://127.0.0.1:%d", dead);
    snprintf(s_dead_auth_url, sizeof(s_dead_auth_url), "http://127.0.0.1:%d/oauth2/token", dead);

    test_send_oauth();
    test_send_basic();
    test_parallel();
    test_token_expired();
    test_401_not_expired();
    test_token_429();
    test_token_failures();
    test_api_faults();
    test_free_in_flight();
    test_check();
    test_no_secrets_logged();

    if (check_failed) {
        sim_dump_log();
    }
    sim_stop();
    curl_global_cleanup();
    return check_report();
}

#endif
