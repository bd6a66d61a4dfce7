/* The loop: the one thread that owns the bridge's state (outbox, store writes, router, the
 * webhook listener). It is libwebsockets' service thread; other threads reach it only through
 * sb_loop_post(), which queues a call and wakes the service with lws_cancel_service().
 * Timers are lws "sorted usec lists" wrapped so that no other file needs lws's headers. */
#ifndef SB_BRIDGE_LOOP_H
#define SB_BRIDGE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/err.h"

struct sb_loop;
struct sb_timer;

typedef void (*sb_loop_fn)(void *arg);

/* Creates the loop (an lws context without listeners). Thread: main. */
enum sb_err sb_loop_new(struct sb_loop **out) SB_MUST_CHECK;
/* Accepts NULL. Posts not yet run are dropped. Thread: the loop's, after it stopped. */
void sb_loop_free(struct sb_loop *loop);

/* Queues fn(arg) to run on the loop, in posting order. Thread: any. Fails only on ENOMEM or
 * after the loop was freed; then fn is not called and arg still belongs to the caller. */
enum sb_err sb_loop_post(struct sb_loop *loop, sb_loop_fn fn, void *arg) SB_MUST_CHECK;

/* Drops the queued posts whose argument is `arg`, for a module about to free it: a post queued
 * by one of its threads must not run after the module is gone. Returns how many were dropped.
 * Thread: the loop's, outside a post (the freeing module's threads have stopped posting). */
size_t sb_loop_cancel(struct sb_loop *loop, const void *arg);

/* Sets the function called at the end of every loop turn: a timer's callback, or one pass over
 * the sockets poll() found ready (the posts among them; a batch of 256 posts when more are
 * queued). Where staged store writes and the turn's webhook events become one transaction.
 * Thread: loop, before sb_loop_run(). */
void sb_loop_set_turn_end(struct sb_loop *loop, sb_loop_fn fn, void *arg);

/* Runs until sb_loop_stop(). Thread: the loop's (it becomes the loop). */
void sb_loop_run(struct sb_loop *loop);
/* Makes sb_loop_run() return after the current turn. Thread: any. */
void sb_loop_stop(struct sb_loop *loop);
/* Runs the posts still queued (and the turn end). For shutdown, once every thread that posts
 * has stopped. Thread: the loop's. */
void sb_loop_run_pending(struct sb_loop *loop);

/* The lws context, for adapters that serve on the loop (the webhook listener). */
struct lws_context *sb_loop_lws(struct sb_loop *loop);

/* A timer that calls fn(arg) on the loop. Thread: loop, for all timer functions. */
enum sb_err sb_timer_new(struct sb_loop *loop, sb_loop_fn fn, void *arg,
                         struct sb_timer **out) SB_MUST_CHECK;
/* (Re)arms: fires once, delay_ms from now. */
void sb_timer_arm(struct sb_timer *t, int64_t delay_ms);
void sb_timer_cancel(struct sb_timer *t);
bool sb_timer_armed(const struct sb_timer *t);
/* Cancels and frees. Accepts NULL. */
void sb_timer_free(struct sb_timer *t);

/* Monotonic milliseconds (for delays and ages). Thread: any. */
int64_t sb_mono_ms(void);
/* Wall clock milliseconds since the epoch (for what is stored and published). Thread: any. */
int64_t sb_wall_ms(void);
/* Sleeps; for threads that are not the loop (the loop never sleeps). Thread: any. */
void sb_sleep_ms(int64_t ms);

#endif
