/* The shared-memory book region of parsec_fast._shm: its fixed layout, the per-slot seqlock and
 * the futex wait/wake, in C so that the memory ordering is written once and can be read in one
 * place. parsec_fast/_shm.pyx has the why; this file has the exact orderings.
 *
 * Layout (all offsets from the start of the region; every struct is 64-byte aligned so a field
 * group never shares a cache line with a group written by another party):
 *
 *   0                      pfshm_header          written by the publisher only
 *   reader_offset          pfshm_reader_page     the one page readers write (the waiter flag)
 *   dir_offset             uint32 dir[dir_entries]  hash index: slot + 1, 0 = empty
 *   slots_offset           max_books x slot_size: a pfshm_slot (the lock, one line), then two
 *                          copies of the book (copy_size each): a pfshm_copy, then
 *                          bids[max_levels], asks[max_levels]
 *
 * Both targets (x86-64, aarch64) are LP64 and little-endian, so the layout is the same; the
 * _Static_asserts below pin the offsets and the header records every size a reader checks.
 */
#ifndef PARSEC_FAST_SHM_C_H
#define PARSEC_FAST_SHM_C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sched.h>
#include <limits.h>
#ifdef __linux__
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define PFSHM_MAGIC "PFBOOKS"          /* 8 bytes with the NUL */
#define PFSHM_VERSION 2u                /* 2: two copies per slot (1: one, under a plain seqlock) */
#define PFSHM_BYTE_ORDER 0x01020304u

#define PFSHM_PID_MAX 128              /* UTF-8 bytes of a parsec_id */
#define PFSHM_OUTCOME_MAX 64           /* UTF-8 bytes of an outcome (as given, and folded) */
#define PFSHM_TEXT_MAX 48              /* invalid_reason, book_state / feed_state text */
#define PFSHM_ERROR_MAX 256            /* last_error */

/* pfshm_slot.flags */
#define PFSHM_OCCUPIED      1u         /* the slot holds a book (else free) */
#define PFSHM_VALID         2u         /* Book.is_valid */
#define PFSHM_HAS_BASELINE  4u         /* a snapshot was applied: seq is meaningful */
#define PFSHM_LOCALLY_STALE 8u         /* Subscription.locally_stale */

/* pfshm_header.wake_protocol: how the writer's "counter bumped, anyone asleep?" is ordered */
#define PFSHM_WAKE_FENCED     0u       /* a seq_cst RMW + load on the writer (Dekker) */
#define PFSHM_WAKE_MEMBARRIER 1u       /* the writer never fences; a reader about to sleep
                                        * forces a barrier on it with membarrier(2) */

/* pfshm_header.state */
#define PFSHM_LIVE   0u
#define PFSHM_CLOSED 1u

/* results of the reads */
#define PFSHM_OK    0
#define PFSHM_BUSY  1                  /* the writer stayed inside the slot: retried, gave up */
#define PFSHM_GONE  2                  /* the slot no longer holds the book this handle names */

typedef struct {
    int64_t key;                       /* _book.pxd's Level: -nanos for bids, +nanos for asks */
    double size;
} pfshm_level;

typedef struct {
    /* line 0-2: identity and layout; immutable once the region is visible (it is renamed into
     * place only after this is written) */
    char magic[8];
    uint32_t version;
    uint32_t byte_order;
    uint32_t header_size;
    uint32_t slot_header_size;
    uint32_t level_size;
    uint32_t slot_size;
    uint32_t max_books;
    uint32_t max_levels;
    uint32_t dir_entries;
    uint32_t text_sizes;               /* PID_MAX | OUTCOME_MAX << 8 ... (a layout check) */
    uint64_t reader_offset;
    uint64_t dir_offset;
    uint64_t slots_offset;
    uint64_t region_size;
    int64_t writer_pid;
    uint64_t writer_pidns;             /* inode of /proc/self/ns/pid (0: unknown) */
    int64_t created_ns;                /* CLOCK_MONOTONIC */
    int64_t heartbeat_timeout_ns;      /* the bound the publisher advertises */
    uint32_t wake_protocol;            /* PFSHM_WAKE_* */
    uint32_t copy_size;                /* one copy of a book: pfshm_copy + its levels */
    char _pad0[192 - 120];
    /* line 3: the directory's seqlock, written on add/remove only */
    uint64_t dir_lock;
    uint64_t books_version;            /* bumped on every add and remove */
    uint32_t n_books;
    uint32_t n_unpublished;            /* books the publisher holds but could not place */
    char _pad1[64 - 24];
    /* line 4: what every reader polls, written at each publishing flush: one line, so one
     * cache-line transfer per flush however many of these fields changed */
    uint32_t changes;                  /* the futex word: bumped once per publishing flush */
    uint32_t state;                    /* PFSHM_LIVE / PFSHM_CLOSED */
    int64_t heartbeat_ns;              /* CLOCK_MONOTONIC of the writer's last sign of life */
    char _pad2[64 - 16];
    /* line 5: why the publisher closed (written before state turns PFSHM_CLOSED) */
    uint32_t close_reason_len;
    char close_reason[PFSHM_TEXT_MAX];
    char _pad3[64 - 52];
} pfshm_header;

typedef struct {
    uint32_t waiters;                  /* a reader announced a long sleep: wake it */
    char _pad[60];
} pfshm_reader_page;

typedef struct {
    /* Write k of the slot (k = 0, 1, 2, ...) goes to copy k & 1: lock = 2k + 1 while it is
     * written, 2k + 2 once complete (see "the slot protocol" below). Its own line. */
    uint64_t lock;
    char _pad[56];
} pfshm_slot;

typedef struct {
    /* line 0: everything seq / is_valid / best_bid / best_ask / top() read */
    uint32_t gen;                      /* bumped whenever the slot changes owner */
    uint32_t flags;                    /* PFSHM_* above */
    uint8_t book_state;                /* BOOK_STATE_* of _scan.pxd */
    uint8_t feed_state;                /* FEED_STATE_* */
    uint16_t n_bids;                   /* levels published, <= max_levels */
    uint16_t n_asks;
    uint16_t _pad0;
    int64_t seq;
    pfshm_level top_bid;               /* bids[0] again, so a top-of-book read is one line */
    pfshm_level top_ask;
    char _pad4[8];
    /* line 1: timestamps and counts */
    int64_t exchange_ts_ms;            /* INT64_MIN: none */
    int64_t ingest_ts_ms;
    int64_t last_frame_ns;
    int64_t stale_after_ms;            /* -1: none announced */
    uint32_t total_bids;               /* the book's levels, which may exceed n_bids */
    uint32_t total_asks;
    uint64_t publishes;                /* times written since the slot took this book */
    uint16_t reason_len;
    uint16_t error_len;
    uint16_t book_text_len;
    uint16_t feed_text_len;
    char _pad1[8];
    /* identity, written when the slot takes a book */
    uint16_t pid_len;
    uint16_t outcome_len;
    uint16_t key_len;
    uint16_t _pad2;
    char pid[PFSHM_PID_MAX];
    char outcome[PFSHM_OUTCOME_MAX];
    char key[PFSHM_OUTCOME_MAX];       /* the folded outcome (rules.fold_outcome) */
    /* texts, written only when they change */
    char reason[PFSHM_TEXT_MAX];
    char book_text[PFSHM_TEXT_MAX];
    char feed_text[PFSHM_TEXT_MAX];
    char error[PFSHM_ERROR_MAX];
    char _pad3[832 - 792];
} pfshm_copy;

_Static_assert(sizeof(pfshm_level) == 16, "level");
_Static_assert(sizeof(pfshm_header) == 384, "header");
_Static_assert(offsetof(pfshm_header, dir_lock) == 192, "header line 3");
_Static_assert(offsetof(pfshm_header, changes) == 256, "header line 4");
_Static_assert(sizeof(pfshm_reader_page) == 64, "reader page");
_Static_assert(sizeof(pfshm_slot) == 64, "slot lock line");
_Static_assert(offsetof(pfshm_copy, exchange_ts_ms) == 64, "copy line 1");
_Static_assert(offsetof(pfshm_copy, pid_len) == 128, "copy identity");
_Static_assert(offsetof(pfshm_copy, reason) == 392, "copy texts");
_Static_assert(sizeof(pfshm_copy) == 832, "copy header is 13 lines");

#define PFSHM_TEXT_SIZES ((uint32_t)PFSHM_PID_MAX | ((uint32_t)PFSHM_OUTCOME_MAX << 8) \
                          | ((uint32_t)PFSHM_TEXT_MAX << 16) | ((uint32_t)(PFSHM_ERROR_MAX / 16) << 24))

static inline pfshm_copy *pfshm_copy_at(const pfshm_slot *s, size_t copy_size, uint64_t c) {
    return (pfshm_copy *)((char *)s + sizeof(pfshm_slot) + (size_t)c * copy_size);
}
static inline pfshm_level *pfshm_bids(pfshm_copy *c) {
    return (pfshm_level *)((char *)c + sizeof(pfshm_copy));
}
static inline pfshm_level *pfshm_asks(pfshm_copy *c, uint32_t max_levels) {
    return pfshm_bids(c) + max_levels;
}

/* -- clocks and pauses ---------------------------------------------------------------------- */

static inline int64_t pfshm_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void pfshm_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* -- the slot protocol: a seqlock over two copies ----------------------------------------------
 *
 * One writer per region (the publisher's thread, under the GIL). Each slot holds two copies of
 * its book; write k goes to copy k & 1, bracketed by the slot's lock:
 *
 *   writer (write k):  lock = 2k + 1 (release), fence(release), store copy k & 1,
 *                      lock = 2k + 2 (release)
 *   reader:            v = lock (acquire); m = v / 2 (writes complete: m, the last one m - 1);
 *                      copy the fields it needs from copy (m - 1) & 1; fence(acquire);
 *                      valid unless lock (relaxed) >= 2m + 3, the start of write m + 1, the next
 *                      one into that copy
 *
 * A writer preempted (or SIGSTOPped) in the middle of write m leaves copy (m - 1) & 1 complete:
 * readers go on reading it, consistent, one version old, and never wait. Only a writer that
 * laps a reader (two writes during one read) makes it retry; after a bounded number of retries
 * the read reports BUSY instead of spinning forever.
 *
 * Why no torn copy passes (C11, as Boehm's seqlock analysis, "Can seqlocks get along with
 * programming language memory models?", 2012): if any load of the copy read a value stored by
 * write m + 1 (after its release fence), the reader's acquire fence synchronizes with that fence,
 * so write m + 1's store of 2m + 3 happens-before the reader's second load of lock, which then
 * sees 2m + 3 or later: invalid. Conversely the first, acquire, load read 2m (write m - 1's end)
 * or 2m + 1 (write m's begin, a release store after write m - 1's end): either way every store
 * of write m - 1 is visible, and no later write into that copy had begun storing: consistent.
 * On x86-64 (TSO) the fences are compiler barriers and release/acquire accesses plain moves; on
 * aarch64 they are dmb ish / dmb ishld, stlr and ldar. The scalars a reader interprets are
 * copied with relaxed atomic loads; the level arrays with memcpy, as the Linux kernel's seqcount
 * readers do: a torn copy is possible and always thrown away, and its length is clamped before
 * it is used. */

/* Begin the slot's next write: the copy to write. */
static inline pfshm_copy *pfshm_write_begin(pfshm_slot *s, size_t copy_size) {
    uint64_t v = __atomic_load_n(&s->lock, __ATOMIC_RELAXED);   /* even: 2k */
    __atomic_store_n(&s->lock, v + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return pfshm_copy_at(s, copy_size, (v >> 1) & 1);
}

/* The other copy: the last complete write (the writer's own view). */
static inline pfshm_copy *pfshm_write_latest(const pfshm_slot *s, size_t copy_size) {
    return pfshm_copy_at(s, copy_size, ((__atomic_load_n(&s->lock, __ATOMIC_RELAXED) >> 1) + 1) & 1);
}

static inline void pfshm_write_end(pfshm_slot *s) {
    uint64_t v = __atomic_load_n(&s->lock, __ATOMIC_RELAXED);
    __atomic_store_n(&s->lock, v + 1, __ATOMIC_RELEASE);
}

/* The copy of the last complete write (NULL: none yet) and the lock value to validate with. */
static inline const pfshm_copy *pfshm_read_begin(const pfshm_slot *s, size_t copy_size,
                                                 uint64_t *v) {
    uint64_t m;
    *v = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
    m = *v >> 1;
    if (m == 0)
        return NULL;
    return pfshm_copy_at(s, copy_size, (m - 1) & 1);
}

/* 1 when the copy read since pfshm_read_begin may be torn (the writer began rewriting it). */
static inline int pfshm_read_retry(const pfshm_slot *s, uint64_t v) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&s->lock, __ATOMIC_RELAXED) >= ((v >> 1) << 1) + 3;
}

/* The directory uses a plain seqlock (one copy: it changes only when a book comes or goes, and a
 * lookup that finds it busy retries). */
static inline uint64_t pfshm_dir_read_begin(const pfshm_header *h) {
    return __atomic_load_n(&h->dir_lock, __ATOMIC_ACQUIRE);
}

static inline int pfshm_dir_read_retry(const pfshm_header *h, uint64_t v) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return (v & 1) || __atomic_load_n(&h->dir_lock, __ATOMIC_RELAXED) != v;
}

/* The directory's writer side: lock odd while it is rebuilt. */
static inline void pfshm_dir_begin(pfshm_header *h) {
    uint64_t v = __atomic_load_n(&h->dir_lock, __ATOMIC_RELAXED);
    __atomic_store_n(&h->dir_lock, v + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void pfshm_dir_end(pfshm_header *h) {
    uint64_t v = __atomic_load_n(&h->dir_lock, __ATOMIC_RELAXED);
    __atomic_store_n(&h->dir_lock, v + 1, __ATOMIC_RELEASE);
}

/* Bounded retries (only a writer that laps a reader makes it retry): spin with a pause, then
 * yield the CPU, then give up (BUSY). */
#define PFSHM_SPIN_TRIES 512
#define PFSHM_YIELD_TRIES 64

static inline int pfshm_backoff(int attempt) {
    if (attempt < PFSHM_SPIN_TRIES) {
        pfshm_relax();
        return 1;
    }
    if (attempt < PFSHM_SPIN_TRIES + PFSHM_YIELD_TRIES) {
        sched_yield();
        return 1;
    }
    return 0;
}

/* The writer's level copy: n levels from src into a slot's array, storing only the 64-byte
 * groups (4 levels) that differ. A store to a line a reader holds forces that line out of the
 * reader's cache and back (an RFO, ~100+ ns here); a full memcpy of a 50-level side does that to
 * ~13 lines per publish although a typical delta changes one or two levels: with 8 readers
 * reading bids() the apply path was measured +35 % slower with memcpy, a few % with this.
 * Only the writer writes the slot, so reading it back is not a race. */
static inline uint64_t pfshm_word(const void *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

typedef uint64_t pfshm_v2 __attribute__((vector_size(16)));   /* SSE2 / NEON registers */

static inline pfshm_v2 pfshm_v2_load(const char *p) {
    pfshm_v2 v;
    memcpy(&v, p, 16);
    return v;
}

static inline void pfshm_store_levels(pfshm_level *dst, const pfshm_level *src, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const char *a = (const char *)(dst + i), *b = (const char *)(src + i);
        pfshm_v2 d = (pfshm_v2_load(a) ^ pfshm_v2_load(b))
                     | (pfshm_v2_load(a + 16) ^ pfshm_v2_load(b + 16))
                     | (pfshm_v2_load(a + 32) ^ pfshm_v2_load(b + 32))
                     | (pfshm_v2_load(a + 48) ^ pfshm_v2_load(b + 48));
        if (d[0] | d[1])
            memcpy(dst + i, src + i, 64);
    }
    for (; i < n; i++)
        if (pfshm_word(&dst[i].key) != pfshm_word(&src[i].key)
                || pfshm_word(&dst[i].size) != pfshm_word(&src[i].size))
            dst[i] = src[i];
}

/* -- reads ---------------------------------------------------------------------------------- */

typedef struct {
    uint32_t flags;
    uint8_t book_state;
    uint8_t feed_state;
    uint16_t n_bids;
    uint16_t n_asks;
    int64_t seq;
    pfshm_level top_bid;
    pfshm_level top_ask;
} pfshm_top;

/* A read: copy what is needed from the slot's last complete copy, at one version. READ_BODY
 * runs with `c` the copy; it must copy into local memory only (nothing read from `c` may be used
 * after the validation but through those copies). */
#define PFSHM_READ(s, copy_size, READ_BODY)                                                    \
    do {                                                                                       \
        int attempt_ = 0;                                                                      \
        for (;;) {                                                                             \
            uint64_t v_;                                                                       \
            const pfshm_copy *c = pfshm_read_begin((s), (copy_size), &v_);                     \
            if (c == NULL)                                                                     \
                return PFSHM_GONE;                       /* never written: not a book yet */  \
            READ_BODY                                                                          \
            if (!pfshm_read_retry((s), v_))                                                    \
                break;                                                                         \
            if (!pfshm_backoff(attempt_++))                                                    \
                return PFSHM_BUSY;                                                             \
        }                                                                                      \
    } while (0)

static inline void pfshm_copy_top(const pfshm_copy *c, pfshm_top *out, uint32_t *g) {
    *g = __atomic_load_n(&c->gen, __ATOMIC_RELAXED);
    out->flags = __atomic_load_n(&c->flags, __ATOMIC_RELAXED);
    out->book_state = __atomic_load_n(&c->book_state, __ATOMIC_RELAXED);
    out->feed_state = __atomic_load_n(&c->feed_state, __ATOMIC_RELAXED);
    out->n_bids = __atomic_load_n(&c->n_bids, __ATOMIC_RELAXED);
    out->n_asks = __atomic_load_n(&c->n_asks, __ATOMIC_RELAXED);
    out->seq = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    out->top_bid.key = __atomic_load_n(&c->top_bid.key, __ATOMIC_RELAXED);
    out->top_ask.key = __atomic_load_n(&c->top_ask.key, __ATOMIC_RELAXED);
    memcpy(&out->top_bid.size, (const char *)&c->top_bid.size, 8);
    memcpy(&out->top_ask.size, (const char *)&c->top_ask.size, 8);
}

/* line 0 of the book, if the slot still holds generation gen */
static inline int pfshm_read_top(const pfshm_slot *s, size_t copy_size, uint32_t gen,
                                 pfshm_top *out) {
    uint32_t g = 0;
    PFSHM_READ(s, copy_size, { pfshm_copy_top(c, out, &g); });
    if (g != gen || !(out->flags & PFSHM_OCCUPIED))
        return PFSHM_GONE;
    return PFSHM_OK;
}

/* Everything but the levels and the identity: lines 0-1 and the texts. */
typedef struct {
    pfshm_top top;
    int64_t exchange_ts_ms;
    int64_t ingest_ts_ms;
    int64_t last_frame_ns;
    int64_t stale_after_ms;
    uint32_t total_bids;
    uint32_t total_asks;
    uint64_t publishes;
    uint16_t reason_len, error_len, book_text_len, feed_text_len;
    char reason[PFSHM_TEXT_MAX];
    char book_text[PFSHM_TEXT_MAX];
    char feed_text[PFSHM_TEXT_MAX];
    char error[PFSHM_ERROR_MAX];
} pfshm_state;

static inline uint16_t pfshm_clamp16(uint16_t n, uint16_t cap) { return n < cap ? n : cap; }

static inline int pfshm_read_state(const pfshm_slot *s, size_t copy_size, uint32_t gen,
                                   pfshm_state *out) {
    uint32_t g = 0;
    PFSHM_READ(s, copy_size, {
        pfshm_copy_top(c, &out->top, &g);
        out->exchange_ts_ms = __atomic_load_n(&c->exchange_ts_ms, __ATOMIC_RELAXED);
        out->ingest_ts_ms = __atomic_load_n(&c->ingest_ts_ms, __ATOMIC_RELAXED);
        out->last_frame_ns = __atomic_load_n(&c->last_frame_ns, __ATOMIC_RELAXED);
        out->stale_after_ms = __atomic_load_n(&c->stale_after_ms, __ATOMIC_RELAXED);
        out->total_bids = __atomic_load_n(&c->total_bids, __ATOMIC_RELAXED);
        out->total_asks = __atomic_load_n(&c->total_asks, __ATOMIC_RELAXED);
        out->publishes = __atomic_load_n(&c->publishes, __ATOMIC_RELAXED);
        out->reason_len = pfshm_clamp16(__atomic_load_n(&c->reason_len, __ATOMIC_RELAXED), PFSHM_TEXT_MAX);
        out->error_len = pfshm_clamp16(__atomic_load_n(&c->error_len, __ATOMIC_RELAXED), PFSHM_ERROR_MAX);
        out->book_text_len = pfshm_clamp16(__atomic_load_n(&c->book_text_len, __ATOMIC_RELAXED), PFSHM_TEXT_MAX);
        out->feed_text_len = pfshm_clamp16(__atomic_load_n(&c->feed_text_len, __ATOMIC_RELAXED), PFSHM_TEXT_MAX);
        memcpy(out->reason, c->reason, out->reason_len);
        memcpy(out->error, c->error, out->error_len);
        memcpy(out->book_text, c->book_text, out->book_text_len);
        memcpy(out->feed_text, c->feed_text, out->feed_text_len);
    });
    if (g != gen || !(out->top.flags & PFSHM_OCCUPIED))
        return PFSHM_GONE;
    return PFSHM_OK;
}

/* The best min(cap, published) levels of both sides (cap_b / cap_a, 0 to skip a side) and line
 * 0, at one version. */
static inline int pfshm_read_levels(const pfshm_slot *s, size_t copy_size, uint32_t gen,
                                    uint32_t max_levels,
                                    pfshm_level *bids, size_t cap_b, size_t *n_b,
                                    pfshm_level *asks, size_t cap_a, size_t *n_a,
                                    pfshm_top *top, uint32_t *total_b, uint32_t *total_a) {
    uint32_t g = 0;
    size_t nb = 0, na = 0;
    PFSHM_READ(s, copy_size, {
        const pfshm_level *src_b = (const pfshm_level *)((const char *)c + sizeof(pfshm_copy));
        const pfshm_level *src_a = src_b + max_levels;
        pfshm_copy_top(c, top, &g);
        *total_b = __atomic_load_n(&c->total_bids, __ATOMIC_RELAXED);
        *total_a = __atomic_load_n(&c->total_asks, __ATOMIC_RELAXED);
        /* a torn count is thrown away below, but must never make the copy overrun */
        nb = top->n_bids < max_levels ? top->n_bids : max_levels;
        na = top->n_asks < max_levels ? top->n_asks : max_levels;
        top->n_bids = (uint16_t)nb;
        top->n_asks = (uint16_t)na;
        if (nb > cap_b) nb = cap_b;
        if (na > cap_a) na = cap_a;
        if (nb) memcpy(bids, src_b, nb * sizeof(pfshm_level));
        if (na) memcpy(asks, src_a, na * sizeof(pfshm_level));
    });
    if (g != gen || !(top->flags & PFSHM_OCCUPIED))
        return PFSHM_GONE;
    *n_b = nb;
    *n_a = na;
    return PFSHM_OK;
}

/* Identity of a slot (directory probing): occupied?, generation, and the two keys. */
typedef struct {
    uint32_t gen;
    uint32_t flags;
    uint16_t pid_len, outcome_len, key_len;
    char pid[PFSHM_PID_MAX];
    char outcome[PFSHM_OUTCOME_MAX];
    char key[PFSHM_OUTCOME_MAX];
} pfshm_ident;

static inline int pfshm_read_ident(const pfshm_slot *s, size_t copy_size, pfshm_ident *out) {
    PFSHM_READ(s, copy_size, {
        out->gen = __atomic_load_n(&c->gen, __ATOMIC_RELAXED);
        out->flags = __atomic_load_n(&c->flags, __ATOMIC_RELAXED);
        out->pid_len = pfshm_clamp16(__atomic_load_n(&c->pid_len, __ATOMIC_RELAXED), PFSHM_PID_MAX);
        out->outcome_len = pfshm_clamp16(__atomic_load_n(&c->outcome_len, __ATOMIC_RELAXED), PFSHM_OUTCOME_MAX);
        out->key_len = pfshm_clamp16(__atomic_load_n(&c->key_len, __ATOMIC_RELAXED), PFSHM_OUTCOME_MAX);
        memcpy(out->pid, c->pid, out->pid_len);
        memcpy(out->outcome, c->outcome, out->outcome_len);
        memcpy(out->key, c->key, out->key_len);
    });
    return PFSHM_OK;
}

/* FNV-1a 64 over parsec_id, a 0xff separator (never in UTF-8) and the folded outcome. */
static inline uint64_t pfshm_hash(const char *pid, size_t pid_len, const char *key, size_t key_len) {
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    for (i = 0; i < pid_len; i++) { h ^= (unsigned char)pid[i]; h *= 1099511628211ULL; }
    h ^= 0xffu; h *= 1099511628211ULL;
    for (i = 0; i < key_len; i++) { h ^= (unsigned char)key[i]; h *= 1099511628211ULL; }
    return h;
}

/* -- change counter, waiter flag, futex ------------------------------------------------------
 *
 * The publisher bumps `changes` once per publishing flush (a release store: the slots written
 * before it are visible to whoever sees the new value). A reader about to sleep for long sets
 * `waiters` and re-reads `changes` before FUTEX_WAIT; the publisher, after its bump, reads
 * `waiters` and wakes only if it is set. That is a Dekker handshake: each side stores, then
 * loads the other's word, and at least one must see the other's store, or a sleeper is missed.
 * It needs a store->load barrier on both sides. On the reader's side it is cheap (it is about to
 * sleep anyway). On the writer's it would be a locked instruction per flush, which waits for
 * every store still in flight, the RFOs of the cache lines readers share included: measured
 * at +50-350 ns per delta with 8 polling readers. So with PFSHM_WAKE_MEMBARRIER the writer issues
 * none, and the reader, between its store and its load, calls membarrier(GLOBAL_EXPEDITED),
 * which makes every CPU running the (registered) publisher execute a full barrier: if the
 * writer's bump came before that barrier the reader's load sees it, if after, the writer's load
 * of `waiters` sees 1. Without membarrier (old kernel, seccomp) the region says
 * PFSHM_WAKE_FENCED and both sides use seq_cst accesses. FUTEX_WAIT itself re-checks `changes`
 * under the kernel's lock. The futex is shared (no FUTEX_PRIVATE_FLAG): the kernel keys it by the
 * file's inode and offset, so it works across processes and on the readers' read-only mapping
 * of the header. */

/* The publisher: register for GLOBAL_EXPEDITED barriers; 1 if readers may rely on them. */
static inline int pfshm_membarrier_register(void) {
#if defined(__linux__) && defined(__NR_membarrier)
    long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED)
            || !(q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
        return 0;
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
#else
    return 0;
#endif
}

/* A reader: a full barrier on every CPU running a registered process; 1 on success. */
static inline int pfshm_membarrier(void) {
#if defined(__linux__) && defined(__NR_membarrier)
    return syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
#else
    return 0;
#endif
}

/* Bump the counter; 1 when a reader sleeps and must be woken (the flag is then cleared). */
static inline int pfshm_publish_changes(pfshm_header *h, pfshm_reader_page *r, uint32_t protocol) {
    if (protocol == PFSHM_WAKE_MEMBARRIER) {
        uint32_t c = __atomic_load_n(&h->changes, __ATOMIC_RELAXED);   /* one writer */
        __atomic_store_n(&h->changes, c + 1, __ATOMIC_RELEASE);
        if (!__atomic_load_n(&r->waiters, __ATOMIC_RELAXED))
            return 0;
    } else {
        __atomic_add_fetch(&h->changes, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&r->waiters, __ATOMIC_SEQ_CST))
            return 0;
    }
    return __atomic_exchange_n(&r->waiters, 0, __ATOMIC_SEQ_CST);
}

static inline void pfshm_futex_wake(uint32_t *addr) {
#ifdef __linux__
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Sleep while *addr == expected, at most timeout_ns (>= 0); returns at once if it differs.
 * 1 when a signal interrupted the sleep (the caller lets Python run its handlers). */
static inline int pfshm_futex_wait(const uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts;
    long rc;
    if (timeout_ns < 0) timeout_ns = 0;
    ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
    ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
#ifdef __linux__
    rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, NULL, 0);
#else
    (void)addr; (void)expected;
    rc = nanosleep(&ts, NULL);
#endif
    return rc == -1 && errno == EINTR;
}

/* A reader about to sleep until woken: set the flag, then the store->load barrier of its side
 * of the handshake. 0 when the barrier the region's protocol needs could not be issued (then
 * the reader must not count on a wake). */
static inline int pfshm_announce(const pfshm_header *h, pfshm_reader_page *r) {
    __atomic_store_n(&r->waiters, 1, __ATOMIC_SEQ_CST);
    if (h->wake_protocol == PFSHM_WAKE_MEMBARRIER)
        return pfshm_membarrier();
    return 1;
}

static inline uint32_t pfshm_load_changes(const pfshm_header *h) {
    return __atomic_load_n(&h->changes, __ATOMIC_SEQ_CST);
}

/* A publishing flush's counter bump without looking at the waiter flag (close, stress test). */
static inline void pfshm_bump_changes(pfshm_header *h) {
    __atomic_add_fetch(&h->changes, 1, __ATOMIC_SEQ_CST);
}

/* Counters a reader only reports (no data hangs on them). */
static inline uint32_t pfshm_load_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t pfshm_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* The heartbeat is a lone timestamp (no data hangs on it): relaxed both ways. */
static inline void pfshm_store_heartbeat(pfshm_header *h, int64_t ns) {
    __atomic_store_n(&h->heartbeat_ns, ns, __ATOMIC_RELAXED);
}
static inline int64_t pfshm_load_heartbeat(const pfshm_header *h) {
    return __atomic_load_n(&h->heartbeat_ns, __ATOMIC_RELAXED);
}

/* state is stored with release after close_reason (and the slots' last writes), read with
 * acquire before them. */
static inline void pfshm_store_state(pfshm_header *h, uint32_t state) {
    __atomic_store_n(&h->state, state, __ATOMIC_RELEASE);
}
static inline uint32_t pfshm_load_state(const pfshm_header *h) {
    return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
}

#endif
