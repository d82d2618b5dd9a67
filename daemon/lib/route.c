/* route.c - which partition an event belongs to.
 *
 * Producers split the input between partitions by the event's unit_id
 * (riskd(8), "Leases and partitions"): CRC-32 (IEEE 802.3, the one of zlib's crc32())
 * of the key's bytes, modulo the number of partitions. riskd itself only
 * consumes what it is given; the function lives here so that tests and
 * tools route exactly as producers are told to.
 *
 * Also here: the Redis Cluster hash slot of a key, which the connection
 * layer routes by and the configuration checks (two keys one script
 * touches must share a slot). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

uint32_t rk__crc32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < len; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

int rk__partition_of(const char *key, int partitions)
{
    if (partitions <= 1)
        return 0;
    return (int)(rk__crc32(key, strlen(key)) % (uint32_t)partitions);
}

unsigned rk__redis_keyslot(const char *key, size_t len)
{
    const unsigned char *p = (const unsigned char *)key;
    size_t i, s, e;
    unsigned crc = 0;
    int b;

    for (s = 0; s < len && p[s] != '{'; s++)
        ;
    if (s < len) {
        for (e = s + 1; e < len && p[e] != '}'; e++)
            ;
        if (e < len && e > s + 1) {     /* "{tag}" with a non-empty tag */
            p += s + 1;
            len = e - s - 1;
        }
    }
    /* CRC16-CCITT as XMODEM: polynomial 0x1021, initial value 0. */
    for (i = 0; i < len; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (b = 0; b < 8; b++)
            crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc % 16384u;
}

void rk__slot_tag(const char *key, char *out, size_t len)
{
    const char *open = strchr(key, '{'), *close = open ? strchr(open + 1, '}') : NULL;
    if (open != NULL && close != NULL && close > open + 1)
        snprintf(out, len, "%.*s", (int)(close - open - 1), open + 1);
    else
        snprintf(out, len, "%s", key);
}
