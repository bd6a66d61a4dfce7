/* Unit tests of the HTTP listener's deferred answers (adapters/webhook/webhook.c), on a real
 * loop and loopback sockets: a webhook answered later (and the keep-alive connection serving
 * the next request), an immediate answer, a client that resets the connection before its
 * answer (the answer is dropped), pipelined requests (the first answered, then the connection
 * closed), and a handle still held when the listener is freed.
 * The loop runs on the main thread; the client runs on a thread of its own and asks the loop
 * for answers with sb_loop_post(). */
#include "adapters/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bridge/log.h"
#include "check.h"

#define MAX_HELD 16
#define WAIT_MS  10000

static char s_host[] = "127.0.0.1";
static char s_path[] = "/webhooks/sinch";

/* What the handler was given, shared by the loop (writes) and the client thread (waits). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sb_webhook_pending *held[MAX_HELD]; /* the deferred requests, in arrival order */
    char body[MAX_HELD][16];
    int n;
} seen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}, {{0}}, 0};

static struct sb_loop *loop;
static int port;

/* ---- the handler (loop thread) ---- */

/* Defers every webhook, except a body "now", answered at once (its handle is not kept). */
static void on_webhook(void *arg, const struct sb_webhook_request *rq, struct sb_http_answer *ans)
{
    (void)arg;
    if (strcmp(rq->body, "now") == 0) {
        ans->status = 200;
        ans->body = strdup("{\"now\":true}");
        return;
    }
    pthread_mutex_lock(&seen.mu);
    if (seen.n < MAX_HELD && rq->pending) {
        seen.held[seen.n] = rq->pending;
        snprintf(seen.body[seen.n], sizeof(seen.body[0]), "%s", rq->body);
        seen.n++;
        ans->status = SB_HTTP_PENDING;
    } else {
        ans->status = 500;
    }
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_ready(void *arg, struct sb_http_answer *ans)
{
    (void)arg;
    ans->status = 200;
}

/* An answer the client thread asks for, given on the loop. */
struct answer_post {
    int which;
    int status;
    const char *body;
};

static void give_answer(void *arg)
{
    struct answer_post *a = arg;
    struct sb_webhook_pending *p;

    pthread_mutex_lock(&seen.mu);
    p = seen.held[a->which];
    seen.held[a->which] = NULL;
    pthread_mutex_unlock(&seen.mu);
    sb_webhook_answer(p, a->status, a->body);
    free(a);
}

static void stop_loop(void *arg)
{
    (void)arg;
    sb_loop_stop(loop);
}

/* ---- the client (its own thread) ---- */

static void answer_later(int which, int status, const char *body)
{
    struct answer_post *a = malloc(sizeof(*a));
    CHECK(a != NULL);
    if (a) {
        *a = (struct answer_post){which, status, body};
        CHECK(sb_loop_post(loop, give_answer, a) == SB_OK);
    }
}

/* Waits until the handler has seen `n` webhooks; false after WAIT_MS. */
static bool wait_seen(int n)
{
    struct timespec until;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&seen.mu);
    while (seen.n < n && ok) {
        ok = pthread_cond_timedwait(&seen.cv, &seen.mu, &until) == 0;
    }
    ok = seen.n >= n;
    pthread_mutex_unlock(&seen.mu);
    return ok;
}

static int seen_count(void)
{
    pthread_mutex_lock(&seen.mu);
    int n = seen.n;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A client connection with what it read and has not parsed yet. */
struct conn {
    int fd;
    char buf[4096];
    size_t len;
};

static bool conn_open(struct conn *c)
{
    struct sockaddr_in a = {0};
    struct timeval tv = {WAIT_MS / 1000, 0};

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0;
}

static bool conn_send(struct conn *c, const char *text)
{
    size_t len = strlen(text);
    return send(c->fd, text, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Appends a webhook POST with `body` to `out`. */
static void post_text(char *out, size_t cap, const char *body)
{
    size_t used = strlen(out);
    snprintf(out + used, cap - used,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             s_path, strlen(body), body);
}

/* The first `what` in buf[0..len), or NULL (memmem is not POSIX). */
static const char *find(const char *buf, size_t len, const char *what)
{
    size_t n = strlen(what);

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, what, n) == 0) {
            return buf + i;
        }
    }
    return NULL;
}

/* Reads one whole answer: its status, and its body into `body`. -1 on a timeout or close. */
static int conn_answer(struct conn *c, char *body, size_t cap)
{
    for (;;) {
        const char *end = find(c->buf, c->len, "\r\n\r\n");
        if (end) {
            int status = 0;
            size_t clen = 0;
            const char *cl = find(c->buf, (size_t)(end - c->buf), "content-length: ");
            size_t head = (size_t)(end - c->buf) + 4;
            if (head > 9 && memcmp(c->buf, "HTTP/1.1 ", 9) == 0) {
                status = (int)strtol(c->buf + 9, NULL, 10);
            }
            if (cl) {
                clen = strtoul(cl + 16, NULL, 10);
            }
            if (c->len >= head + clen) {
                snprintf(body, cap, "%.*s", (int)clen, c->buf + head);
                memmove(c->buf, c->buf + head + clen, c->len - head - clen);
                c->len -= head + clen;
                return status;
            }
        }
        if (c->len == sizeof(c->buf)) {
            return -1;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0) {
            return -1;
        }
        c->len += (size_t)n;
    }
}

/* Whether the listener closed the connection (the end of the stream, nothing after what was
 * read) within WAIT_MS. */
static bool conn_closed(struct conn *c)
{
    char b[64];

    return c->len == 0 && recv(c->fd, b, sizeof(b), 0) == 0;
}

/* A deferred answer, and the keep-alive connection serving the next request afterwards. */
static void case_deferred(void)
{
    struct conn c;
    char req[512] = "";
    char body[256];

    CHECK(conn_open(&c));
    post_text(req, sizeof(req), "A");
    CHECK(conn_send(&c, req));
    CHECK(wait_seen(1));
    answer_later(0, 200, "{\"a\":1}");
    CHECK(conn_answer(&c, body, sizeof(body)) == 200);
    CHECKF(strcmp(body, "{\"a\":1}") == 0, "%s", body);
    req[0] = '\0';
    post_text(req, sizeof(req), "B");
    CHECK(conn_send(&c, req));
    CHECK(wait_seen(2));
    answer_later(1, 503, NULL);
    CHECK(conn_answer(&c, body, sizeof(body)) == 503);
    CHECKF(strcmp(body, "") == 0, "%s", body);
    /* An answer given at once still goes at once. */
    req[0] = '\0';
    post_text(req, sizeof(req), "now");
    CHECK(conn_send(&c, req));
    CHECK(conn_answer(&c, body, sizeof(body)) == 200);
    CHECKF(strcmp(body, "{\"now\":true}") == 0, "%s", body);
    CHECK(seen_count() == 2);
    close(c.fd);
}

/* The client resets the connection while its answer is deferred: the loop sees it close, the
 * answer given afterwards is dropped (ASan would see a use after free), and the listener
 * serves on. */
static void case_client_leaves(void)
{
    struct conn c;
    char req[512] = "";
    char body[256];
    struct linger reset = {1, 0};

    CHECK(conn_open(&c));
    post_text(req, sizeof(req), "C");
    CHECK(conn_send(&c, req));
    CHECK(wait_seen(3));
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(c.fd);
    sleep_ms(300); /* the loop reads the end of the stream and closes its side */
    answer_later(2, 200, "{\"c\":1}");
    CHECK(conn_open(&c));
    CHECK(conn_send(&c, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(conn_answer(&c, body, sizeof(body)) == 200);
    close(c.fd);
}

/* Requests sent behind another one before its answer (pipelined): the first is answered and
 * the connection closed, the next never reaches the handler. lws 4.1 would parse it from its
 * own buffer, take the start of its headers for its body and spin in that buffer's loop once a
 * transaction ended there: the loop stopped for good. Behind a deferred answer, then behind
 * one given at once. */
static void case_pipelined(void)
{
    struct conn c;
    char req[1024] = "";
    char body[256];

    CHECK(conn_open(&c));
    post_text(req, sizeof(req), "E");
    post_text(req, sizeof(req), "F");
    CHECK(conn_send(&c, req));
    CHECK(wait_seen(4));
    answer_later(3, 200, "{\"e\":1}");
    CHECK(conn_answer(&c, body, sizeof(body)) == 200);
    CHECK(conn_closed(&c)); /* F unanswered */
    close(c.fd);
    CHECK(conn_open(&c));
    snprintf(req, sizeof(req), "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    post_text(req, sizeof(req), "G");
    CHECK(conn_send(&c, req));
    CHECK(conn_answer(&c, body, sizeof(body)) == 200);
    CHECK(conn_closed(&c));
    close(c.fd);
    CHECK(seen_count() == 4); /* neither F nor G reached the handler */
}

static struct conn held_conn; /* case_listener_freed's: closed by main() */

/* A request still deferred when the test stops the loop; main() frees the listener and then
 * answers it. */
static void case_listener_freed(void)
{
    char req[512] = "";

    CHECK(conn_open(&held_conn));
    post_text(req, sizeof(req), "D");
    CHECK(conn_send(&held_conn, req));
    CHECK(wait_seen(5));
}

static void *client_main(void *arg)
{
    (void)arg;
    case_deferred();
    case_client_leaves();
    case_pipelined();
    case_listener_freed();
    CHECK(sb_loop_post(loop, stop_loop, NULL) == SB_OK);
    return NULL;
}

/* A loopback port nobody listens on right now: bind port 0, read it, close. */
static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int p = -1;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        p = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return p;
}

int main(void)
{
    struct sb_config cfg;
    struct sb_webhook_handlers h = {.webhook = on_webhook, .ready = on_ready, .metrics = on_ready};
    struct sb_webhook *wh = NULL;
    pthread_t client;

    signal(SIGPIPE, SIG_IGN);
    sb_log_setup(SB_LOG_WARN, SB_LOG_TEXT);
    memset(&cfg, 0, sizeof(cfg));
    port = free_port();
    cfg.listen_host = s_host;
    cfg.listen_port = port;
    cfg.webhook_path = s_path;
    if (sb_loop_new(&loop) != SB_OK || sb_webhook_new(&cfg, loop, &h, NULL, &wh) != SB_OK) {
        CHECK(!"the loop and the listener start");
        return check_report();
    }
    /* Checked once the client is done: CHECK's counters are not for two threads at once. */
    int started = pthread_create(&client, NULL, client_main, NULL);
    if (started == 0) {
        sb_loop_run(loop);
        pthread_join(client, NULL);
    }
    CHECK(started == 0);
    /* The loop has stopped with "D" deferred: freeing the listener lets go of it, so the
     * handler's answer is dropped, and the connection (closed with the context) frees nothing
     * twice. */
    sb_webhook_free(wh);
    sb_webhook_answer(seen.held[4], 200, "{\"d\":1}");
    sb_webhook_answer(NULL, 200, NULL); /* accepted, like free(NULL) */
    sb_loop_free(loop);
    close(held_conn.fd);
    return check_report();
}
