/* daemon/lib/addr.c - "host:port" and "[v6addr]:port" address text.
 *
 * The configuration checks addresses with these functions (listen
 * addresses, redis.sentinels, redis.cluster) and the Redis layer parses
 * the same strings when it connects, so a string the configuration accepts
 * is one the connection code can use. Pure text: nothing here resolves a
 * name or opens a socket. */
#include <string.h>

#include "internal.h"

int rk__split_addr(const char *s, const char **host, size_t *hostlen, int *port)
{
    const char *hs, *he, *p;
    long n = 0;

    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (he == NULL || he[1] != ':')
            return -1;
        p = he + 2;
    } else {
        hs = s;
        he = strchr(s, ':');
        if (he == NULL || strchr(he + 1, ':') != NULL)
            return -1;
        p = he + 1;
    }
    if (he == hs || *p == '\0' || memchr(hs, '[', (size_t)(he - hs)) != NULL ||
        memchr(hs, ']', (size_t)(he - hs)) != NULL)
        return -1;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
        if (n > 65535)
            return -1;
    }
    *host = hs;
    *hostlen = (size_t)(he - hs);
    *port = (int)n;
    return 0;
}

int rk__parse_addr(const char *s, char *host, size_t hostlen, int *port)
{
    const char *hs;
    size_t len;
    int n;

    if (s == NULL || hostlen < 2 || rk__split_addr(s, &hs, &len, &n) != 0 ||
        len >= hostlen || memchr(hs, ' ', len) != NULL || n < 1)
        return -1;
    memcpy(host, hs, len);
    host[len] = '\0';
    *port = n;
    return 0;
}
