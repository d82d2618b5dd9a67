/* daemon/lib/arena.c - a bump arena for short-lived trees of small objects.
 *
 * Two trees are built and thrown away per entry or per reply, node by
 * node: an event's jansson tree (event.c) and the hiredis reply of a read
 * (redis.c). With malloc that is one allocation per node and as many frees;
 * here every node is a slice of a block, and the whole tree is dropped at
 * once by a rewind.
 *
 * Blocks are chained, each at least twice its predecessor, so a big tree
 * takes O(log size) blocks. A rewind keeps one block for the next tree: the
 * only one, if it is not above keep_max; after a tree that needed several,
 * all are freed and the next first block is sized for their total (again
 * at most keep_max). So memory follows the largest recent tree up to
 * keep_max, and one enormous tree does not leave an enormous arena behind.
 *
 * Under AddressSanitizer every allocation is unpoisoned on its own with a
 * poisoned red zone after it, and a rewind poisons what was used: overflows
 * between nodes and a use of a node after the rewind are reported as with
 * malloc. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_REDZONE ((size_t)16)
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_REDZONE ((size_t)0)
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The defaults of a zero-initialised arena: the smallest block (a typical
 * event's tree takes 2-3 KiB) and the most a rewind keeps. */
#define ARENA_MIN ((size_t)16 * 1024)
#define ARENA_KEEP_MAX ((size_t)256 * 1024)

/* One block: cap bytes of data, the first `used` handed out. */
struct rk__arena_block {
    struct rk__arena_block *next;       /* the previous (smaller) block */
    size_t cap, used;
    max_align_t data[];
};

#define ARENA_ALIGN (sizeof(max_align_t))

void *rk__arena_alloc(rk__arena *a, size_t n)
{
    struct rk__arena_block *b = a->blocks, *nb;
    size_t need, cap, min = a->min ? a->min : ARENA_MIN;
    unsigned char *p;

    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 4)
        return NULL;
    need = (n + ARENA_REDZONE + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (b == NULL || b->cap - b->used < need) {
        cap = b == NULL ? (a->next > min ? a->next : min)
              : b->cap <= SIZE_MAX / 4 ? 2 * b->cap : need;
        if (cap < need)
            cap = need;
        if ((nb = malloc(sizeof(*nb) + cap)) == NULL)
            return NULL;
        nb->next = b;
        nb->cap = cap;
        nb->used = 0;
        a->size += cap;
        ARENA_POISON(nb->data, cap);
        a->blocks = b = nb;
    }
    p = (unsigned char *)b->data + b->used;
    b->used += need;
    ARENA_UNPOISON(p, n);
    return p;
}

void rk__arena_rewind(rk__arena *a, bool all)
{
    struct rk__arena_block *b = a->blocks, *next;
    size_t total = 0, keep_max = a->keep_max ? a->keep_max : ARENA_KEEP_MAX;

    if (b == NULL)
        return;
    if (!all && b->next == NULL && b->cap <= keep_max) {
        ARENA_POISON(b->data, b->used);
        b->used = 0;
        return;
    }
    for (; b != NULL; b = next) {
        next = b->next;
        total += b->cap;
        ARENA_UNPOISON(b->data, b->cap);
        free(b);
    }
    a->blocks = NULL;
    a->size = 0;
    a->next = all ? 0 : total <= keep_max ? total : 0;
}
