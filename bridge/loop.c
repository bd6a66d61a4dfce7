/* The loop: an lws context whose service thread runs everything that owns state. Other threads
 * post calls into a mutex-guarded queue and wake the service with lws_cancel_service(); the
 * queue is drained on LWS_CALLBACK_EVENT_WAIT_CANCELLED (lws's own cross-thread pattern). */
#include "bridge/loop.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/log.h"

struct post {
    sb_loop_fn fn;
    void *arg;
};

struct sb_loop {
    struct lws_context *ctx;
    pthread_mutex_t lock;
    struct post *posts; /* {lock} a ring of `cap` slots */
    size_t head;        /* {lock} index of the oldest post */
    size_t count;       /* {lock} */
    size_t cap;         /* {lock} */
    atomic_bool stop;
    sb_loop_fn turn_end;
    void *turn_end_arg;
};

struct sb_timer {
    lws_sorted_usec_list_t sul; /* first: the lws callback gets a pointer to it */
    struct sb_loop *loop;
    sb_loop_fn fn;
    void *arg;
    bool armed;
};

static void turn_end(struct sb_loop *loop)
{
    if (loop->turn_end) {
        loop->turn_end(loop->turn_end_arg);
    }
}

#define DRAIN_BATCH  256 /* posts run between two turn ends (one store commit each) */
#define DRAIN_ROUNDS 4   /* batches before lws gets to serve sockets and timers again */

/* Runs the queued posts, a batch at a time. A batch that leaves posts behind ends its turn (the
 * store commits what it staged), so a turn never holds more than DRAIN_BATCH posts' writes; the
 * last batch's turn ends with the rest of the service pass (sb_loop_run()), together with the
 * sockets' work. With `all` false it stops after DRAIN_ROUNDS batches so a busy producer cannot
 * starve the sockets and timers, and asks lws to come back for the rest. */
static void drain(struct sb_loop *loop, bool all)
{
    struct post batch[DRAIN_BATCH];

    for (int round = 0; all || round < DRAIN_ROUNDS; round++) {
        size_t n = 0, left;
        pthread_mutex_lock(&loop->lock);
        while (loop->count > 0 && n < DRAIN_BATCH) {
            batch[n++] = loop->posts[loop->head];
            loop->head = (loop->head + 1) % loop->cap;
            loop->count--;
        }
        left = loop->count;
        pthread_mutex_unlock(&loop->lock);
        for (size_t i = 0; i < n; i++) {
            batch[i].fn(batch[i].arg);
        }
        if (left == 0) {
            return;
        }
        turn_end(loop);
    }
    /* Posts are left, and their producers did not wake us (the queue was not empty). */
    lws_cancel_service(loop->ctx);
}

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        struct sb_loop *loop = lws_context_user(lws_get_context(wsi));
        drain(loop, false);
        return 0;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols loop_protocols[] = {
    {"sb-loop", loop_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws's own log lines, routed into ours: errors and warnings only, lws is chatty. */
static void lws_log_emit(int level, const char *line)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }
    sb_log(level == LLL_ERR ? SB_LOG_ERROR : SB_LOG_WARN, "lws", "%.*s", (int)len, line);
}

enum sb_err sb_loop_new(struct sb_loop **out)
{
    struct lws_context_creation_info info;
    struct sb_loop *loop = calloc(1, sizeof(*loop));

    if (!loop) {
        return SB_E_NOMEM;
    }
    loop->cap = 1024;
    loop->posts = calloc(loop->cap, sizeof(*loop->posts));
    if (!loop->posts) {
        free(loop);
        return SB_E_NOMEM;
    }
    pthread_mutex_init(&loop->lock, NULL);
    atomic_init(&loop->stop, false);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop_protocols;
    info.user = loop;
    info.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    /* For the HTTP listener's vhost: bounded headers, and lws's own timeouts (a connection that
     * stalls in the middle of its headers or body) short. */
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 64;
    info.timeout_secs = 10;
    loop->ctx = lws_create_context(&info);
    if (!loop->ctx) {
        sb_loop_free(loop);
        return SB_E_NOMEM;
    }
    *out = loop;
    return SB_OK;
}

void sb_loop_free(struct sb_loop *loop)
{
    if (!loop) {
        return;
    }
    if (loop->ctx) {
        lws_context_destroy(loop->ctx);
    }
    pthread_mutex_destroy(&loop->lock);
    free(loop->posts);
    free(loop);
}

static bool grow(struct sb_loop *loop)
{
    size_t cap = loop->cap * 2;
    struct post *posts = malloc(cap * sizeof(*posts));
    if (!posts) {
        return false;
    }
    for (size_t i = 0; i < loop->count; i++) {
        posts[i] = loop->posts[(loop->head + i) % loop->cap];
    }
    free(loop->posts);
    loop->posts = posts;
    loop->head = 0;
    loop->cap = cap;
    return true;
}

enum sb_err sb_loop_post(struct sb_loop *loop, sb_loop_fn fn, void *arg)
{
    pthread_mutex_lock(&loop->lock);
    if (loop->count == loop->cap && !grow(loop)) {
        pthread_mutex_unlock(&loop->lock);
        return SB_E_NOMEM;
    }
    /* Only a post onto an empty queue wakes the loop: until the loop has emptied the queue, a
     * wake-up is already on its way (drain() takes what is there; a post made while it runs
     * the batch found the queue empty and woke it again). Each wake-up is a write(2). */
    bool wake = loop->count == 0;
    loop->posts[(loop->head + loop->count) % loop->cap] = (struct post){fn, arg};
    loop->count++;
    pthread_mutex_unlock(&loop->lock);
    if (wake) {
        lws_cancel_service(loop->ctx);
    }
    return SB_OK;
}

size_t sb_loop_cancel(struct sb_loop *loop, const void *arg)
{
    size_t kept = 0, removed;

    pthread_mutex_lock(&loop->lock);
    for (size_t i = 0; i < loop->count; i++) {
        struct post p = loop->posts[(loop->head + i) % loop->cap];
        if (p.arg != arg) {
            loop->posts[(loop->head + kept++) % loop->cap] = p;
        }
    }
    removed = loop->count - kept;
    loop->count = kept;
    pthread_mutex_unlock(&loop->lock);
    return removed;
}

void sb_loop_set_turn_end(struct sb_loop *loop, sb_loop_fn fn, void *arg)
{
    loop->turn_end = fn;
    loop->turn_end_arg = arg;
}

void sb_loop_run(struct sb_loop *loop)
{
    while (!atomic_load(&loop->stop)) {
        if (lws_service(loop->ctx, 0) < 0) {
            sb_log(SB_LOG_ERROR, "loop", "lws_service failed; stopping");
            break;
        }
        /* One lws_service() runs the timers due (each ends its own turn), then one poll()
         * and a callback for each ready socket, the posts included: a turn. What those staged
         * (store writes, webhook events) is committed here, together. */
        turn_end(loop);
    }
    /* Posts that arrived during the last turn still run: they may carry results to store. */
    drain(loop, true);
    turn_end(loop);
}

void sb_loop_run_pending(struct sb_loop *loop)
{
    drain(loop, true);
    turn_end(loop);
}

void sb_loop_stop(struct sb_loop *loop)
{
    atomic_store(&loop->stop, true);
    lws_cancel_service(loop->ctx);
}

struct lws_context *sb_loop_lws(struct sb_loop *loop)
{
    return loop->ctx;
}

static void timer_fired(lws_sorted_usec_list_t *sul)
{
    struct sb_timer *t = lws_container_of(sul, struct sb_timer, sul);
    t->armed = false;
    t->fn(t->arg);
    /* Its own turn: lws runs timers before it polls, and the pass's end may be far off. */
    turn_end(t->loop);
}

enum sb_err sb_timer_new(struct sb_loop *loop, sb_loop_fn fn, void *arg, struct sb_timer **out)
{
    struct sb_timer *t = calloc(1, sizeof(*t));
    if (!t) {
        return SB_E_NOMEM;
    }
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    *out = t;
    return SB_OK;
}

void sb_timer_arm(struct sb_timer *t, int64_t delay_ms)
{
    if (delay_ms < 0) {
        delay_ms = 0;
    }
    t->armed = true;
    lws_sul_schedule(t->loop->ctx, 0, &t->sul, timer_fired, (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

void sb_timer_cancel(struct sb_timer *t)
{
    if (t->armed) {
        lws_sul_cancel(&t->sul);
        t->armed = false;
    }
}

bool sb_timer_armed(const struct sb_timer *t)
{
    return t->armed;
}

void sb_timer_free(struct sb_timer *t)
{
    if (!t) {
        return;
    }
    sb_timer_cancel(t);
    free(t);
}

int64_t sb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sb_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}
