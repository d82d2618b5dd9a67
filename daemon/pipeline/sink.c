/* sink.c - what leaves riskd: alert JSON, alert ids and the writes.
 *
 * Alert ids are a function of the alert's content only: detector, rule,
 * every subject field, ts and, for a per-event rule that sets it, the
 * trigger event's natural key (rk__alert_id). Never of stream entry ids,
 * wall time or a counter: the same events written again, to this Redis or
 * a fresh one under other entry ids, yield the same ids, and an event
 * delivered twice yields one alert. (The previous release derived ids
 * from the trigger entry: rk__alert_id_v1 keeps that formula for the
 * upgrade, see host.c host_emit.)
 *
 * Every alert and every dead letter is written by one Lua script, loaded
 * with SCRIPT LOAD and called with EVALSHA (reloaded after NOSCRIPT, as a
 * restarted Redis has an empty script cache):
 *
 *   GET <epoch key> == my epoch      -- fenced: only the lease holder
 *   SET <dedupe key> 1 NX EX <ttl>   -- first writer of this id wins
 *   XADD <stream> MAXLEN ~ <maxlen> * <field> <value> ...
 *   PUBLISH <channel> <data>         -- alerts only
 *
 * A script runs atomically, so an id is either fully written once or not at
 * all (the script checks the Redis user's rights for XADD and PUBLISH
 * before the SET, since Redis does not roll a script back). The outbox keeps each item until Redis has confirmed it (1 written,
 * 0 already written before); an error or a lost connection puts it back in
 * the queue. At most OUTBOX_MAX_INFLIGHT commands are in flight. When the
 * queue becomes empty the owner is told (on_drained), and only then does
 * the engine acknowledge the entries behind those alerts. A write refused
 * by the fence ("FENCED": another riskd took the partition's lease) stops
 * the outbox for good and tells the owner, who abandons the partition.
 *
 * With redis.wait_replicas n > 0, Redis's asynchronous replication must not
 * lose a confirmed alert when the master fails over: the outbox then sends
 * one group of script calls at a time followed by WAIT n <wait_timeout>,
 * and the items of the group count as confirmed only when WAIT answers
 * >= n. Otherwise (fewer replicas acknowledged in time, an error, a lost
 * connection) they go back to the queue and are sent again, script and
 * WAIT. A retry is harmless: the dedupe key answers 0. Because a retry may
 * run on a new connection whose WAIT would only cover that connection's
 * own writes, the script's duplicate branch rewrites the dedupe key (SET
 * KEEPTTL, same value and expiry): that write follows the original one in
 * the replication stream, so a replica that acknowledges it has both. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "riskd/kit.h"
#include "internal.h"

#define OUTBOX_MAX_INFLIGHT 1024
#define OUTBOX_RETRY_MS 500

/* ===================================================================
 * Ids and JSON
 * =================================================================== */

static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33; h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33; h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

typedef struct idhash { uint64_t a, b; } idhash;

static void idh_feed(idhash *h, const void *p, size_t n)
{
    h->a = rk_kit_fnv1a(h->a, p, n);
    h->b = rk_kit_fnv1a(h->b, p, n);
}

static void idh_str(idhash *h, const char *tag, const char *s)
{
    idh_feed(h, tag, strlen(tag) + 1);
    if (s != NULL)
        idh_feed(h, s, strlen(s) + 1);
    else
        idh_feed(h, "\xff", 1);
}

void rk__alert_id(const char *detector, const rk_alert *a, const char *trigger_key,
                  char out[33])
{
    idhash h = {RK_FNV_OFFSET, RK_FNV_OFFSET ^ UINT64_C(0x9e3779b97f4a7c15)};
    unsigned char ts[8];
    uint64_t v = (uint64_t)a->ts;
    int i;

    idh_str(&h, "v2", "");          /* not an id of the previous formula */
    idh_str(&h, "detector", detector);
    idh_str(&h, "rule", a->rule);
    idh_str(&h, "unit_id", a->subject.unit_id);
    idh_str(&h, "officer_id", a->subject.officer_id);
    idh_str(&h, "enterprise_id", a->subject.enterprise_id);
    idh_str(&h, "task_id", a->subject.task_id);
    idh_str(&h, "case_id", a->subject.case_id);
    idh_str(&h, "region", a->subject.region);
    /* ABI minor 3 subject fields: only when set, so that the ids of
     * alerts without them stay what they were. */
    if (a->item_code != NULL)
        idh_str(&h, "item_code", a->item_code);
    if (a->domain != NULL)
        idh_str(&h, "domain", a->domain);
    for (i = 0; i < 8; i++) ts[i] = (unsigned char)(v >> (8 * i));
    idh_str(&h, "ts", "");
    idh_feed(&h, ts, sizeof(ts));
    idh_str(&h, "key", trigger_key);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)fmix64(h.a),
             (unsigned long long)fmix64(h.b));
}

void rk__alert_id_v1(const char *detector, const rk_alert *a, char out[33])
{
    idhash h = {RK_FNV_OFFSET, RK_FNV_OFFSET ^ UINT64_C(0x9e3779b97f4a7c15)};
    unsigned char ref[16];
    uint64_t v;
    int i;

    idh_str(&h, "detector", detector);
    idh_str(&h, "rule", a->rule);
    idh_str(&h, "unit_id", a->subject.unit_id);
    idh_str(&h, "officer_id", a->subject.officer_id);
    idh_str(&h, "enterprise_id", a->subject.enterprise_id);
    idh_str(&h, "task_id", a->subject.task_id);
    idh_str(&h, "case_id", a->subject.case_id);
    idh_str(&h, "region", a->subject.region);
    if (a->n_evidence > 0) {
        rk_entry_ref r = a->evidence[a->n_evidence - 1];
        for (i = 0; i < 8; i++) ref[i] = (unsigned char)(r.ms >> (8 * i));
        for (i = 0; i < 4; i++) ref[8 + i] = (unsigned char)(r.seq >> (8 * i));
        for (i = 0; i < 4; i++) ref[12 + i] = (unsigned char)(r.stream >> (8 * i));
        idh_feed(&h, "trigger", 8);
    } else {
        v = (uint64_t)a->ts;
        for (i = 0; i < 8; i++) ref[i] = (unsigned char)(v >> (8 * i));
        memset(ref + 8, 0, 8);
        idh_feed(&h, "ts", 3);
    }
    idh_feed(&h, ref, sizeof(ref));
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)fmix64(h.a),
             (unsigned long long)fmix64(h.b));
}

static const char *severity_name(rk_severity s)
{
    switch (s) {
    case RK_SEV_CRITICAL: return "critical";
    case RK_SEV_WARNING: return "warning";
    default: return "info";
    }
}

/* A number as JSON: an integer when it is one (and exact), else a real. */
static json_t *number_json(double v)
{
    char buf[40];
    /* Rounded to the 15 digits the text carries (JSON_REAL_PRECISION(15)),
     * so that the object equals the JSON read back from the stream. */
    snprintf(buf, sizeof(buf), "%.15g", v);
    v = strtod(buf, NULL);
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(json_int_t)v)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* Stream s of the NULL-terminated stream_keys, "?" past its end. */
static const char *stream_name(const char *const *stream_keys, uint32_t s)
{
    uint32_t i;
    for (i = 0; i < s && stream_keys[i] != NULL; i++)
        ;
    return stream_keys[i] != NULL ? stream_keys[i] : "?";
}

json_t *rk__alert_object(const char *id, const char *detector, const rk_alert *a,
                         rk_severity severity, const char *const *stream_keys,
                         int tz_offset_s, int64_t emitted_at, const char *silenced_by)
{
    char ts[48], em[48], ref[512];
    json_t *o = json_object(), *subj = json_object(), *ev = json_array();
    size_t i, first;

    if (o == NULL || subj == NULL || ev == NULL) {
        json_decref(o);
        json_decref(subj);
        json_decref(ev);
        return NULL;
    }
    rk__format_rfc3339(a->ts, tz_offset_s, ts, sizeof(ts));
    rk__format_rfc3339(emitted_at, tz_offset_s, em, sizeof(em));
#define SUBJ(f) if (a->subject.f) json_object_set_new(subj, #f, json_string(a->subject.f));
    SUBJ(unit_id) SUBJ(officer_id) SUBJ(enterprise_id) SUBJ(task_id) SUBJ(case_id) SUBJ(region)
#undef SUBJ
    if (a->item_code)
        json_object_set_new(subj, "item_code", json_string(a->item_code));
    if (a->domain)
        json_object_set_new(subj, "domain", json_string(a->domain));
    first = a->n_evidence > RK_MAX_EVIDENCE ? a->n_evidence - RK_MAX_EVIDENCE : 0;
    for (i = first; i < a->n_evidence; i++) {
        const rk_entry_ref *r = &a->evidence[i];
        snprintf(ref, sizeof(ref), "%s/%llu-%u",
                 stream_name(stream_keys, r->stream),
                 (unsigned long long)r->ms, r->seq);
        json_array_append_new(ev, json_string(ref));
    }
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "status", json_string("firing"));
    json_object_set_new(o, "detector", json_string(detector));
    json_object_set_new(o, "rule", json_string(a->rule));
    json_object_set_new(o, "severity", json_string(severity_name(severity)));
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "emitted_at", json_string(em));
    json_object_set_new(o, "subject", subj);
    json_object_set_new(o, "value", number_json(a->value));
    json_object_set_new(o, "threshold", number_json(a->threshold));
    json_object_set_new(o, "summary", json_string(a->summary ? a->summary : ""));
    json_object_set_new(o, "evidence", ev);
    if (silenced_by != NULL) {
        json_object_set_new(o, "silenced", json_true());
        json_object_set_new(o, "silenced_by", json_string(silenced_by));
    }
    return o;
}

char *rk__alert_dump(const json_t *alert)
{
    return json_dumps(alert, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

char *rk__alert_json(const char *id, const char *detector, const rk_alert *a,
                     rk_severity severity, const char *const *stream_keys,
                     int tz_offset_s, int64_t emitted_at, const char *silenced_by)
{
    json_t *o = rk__alert_object(id, detector, a, severity, stream_keys, tz_offset_s,
                                 emitted_at, silenced_by);
    char *out = o != NULL ? rk__alert_dump(o) : NULL;
    json_decref(o);
    return out;
}

char *rk__notice_members(int64_t ts, int64_t emitted_at, int tz_offset_s, const char *reason,
                         const rk_entry_ref *evidence, size_t n_evidence,
                         const char *const *stream_keys, const char *by)
{
    char t[48], em[48], ref[512];
    json_t *o = json_object(), *ev = n_evidence > 0 ? json_array() : NULL;
    size_t i, first, len;
    char *out = NULL;

    if (o == NULL || (n_evidence > 0 && ev == NULL))
        goto done;
    rk__format_rfc3339(ts, tz_offset_s, t, sizeof(t));
    rk__format_rfc3339(emitted_at, tz_offset_s, em, sizeof(em));
    json_object_set_new(o, "ts", json_string(t));
    json_object_set_new(o, "emitted_at", json_string(em));
    json_object_set_new(o, "reason", json_string(reason ? reason : ""));
    first = n_evidence > RK_MAX_EVIDENCE ? n_evidence - RK_MAX_EVIDENCE : 0;
    for (i = first; i < n_evidence; i++) {
        const rk_entry_ref *r = &evidence[i];
        snprintf(ref, sizeof(ref), "%s/%llu-%u",
                 stream_name(stream_keys, r->stream),
                 (unsigned long long)r->ms, r->seq);
        json_array_append_new(ev, json_string(ref));
    }
    if (ev != NULL)
        json_object_set(o, "evidence", ev);
    if (by != NULL)
        json_object_set_new(o, "by", json_string(by));
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (out != NULL && (len = strlen(out)) >= 2) {     /* drop the braces */
        memmove(out, out + 1, len - 2);
        out[len - 2] = '\0';
    }
done:
    json_decref(o);
    json_decref(ev);
    return out;
}

json_t *rk__notice_json(const json_t *alert, const char *status, const char *members)
{
    static const char *const copied[] = {"detector", "rule", "severity", "subject", "summary"};
    json_t *n = json_object(), *own, *v;
    size_t len = strlen(members), i;
    const char *k;
    char *wrapped = malloc(len + 3);

    if (n == NULL || wrapped == NULL) {
        json_decref(n);
        free(wrapped);
        return NULL;
    }
    wrapped[0] = '{';
    memcpy(wrapped + 1, members, len);
    wrapped[len + 1] = '}';
    wrapped[len + 2] = '\0';
    own = json_loads(wrapped, 0, NULL);
    free(wrapped);
    json_object_set(n, "id", json_object_get(alert, "id"));
    json_object_set_new(n, "status", json_string(status));
    for (i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        v = json_object_get(alert, copied[i]);
        json_object_set(n, copied[i], v != NULL ? v : json_null());
    }
    json_object_foreach(own, k, v)
        json_object_set(n, k, v);
    json_decref(own);
    if (json_is_true(json_object_get(alert, "silenced"))) {
        json_object_set_new(n, "silenced", json_true());
        if (json_is_string(json_object_get(alert, "silenced_by")))
            json_object_set(n, "silenced_by", json_object_get(alert, "silenced_by"));
    }
    return n;
}

void rk__silence_hits_key(const rk__config *cfg, char *out, size_t len)
{
    char tag[256];
    if (cfg->n_cluster == 0) {
        snprintf(out, len, "%s", RK_SILENCE_HITS_KEY);
        return;
    }
    rk__slot_tag(cfg->alerts_stream, tag, sizeof(tag));
    snprintf(out, len, RK_SILENCE_HITS_KEY ":{%s}", tag);
}

void rk__fence_mirror_key(const rk__config *cfg, char *out, size_t len)
{
    char tag[256];
    rk__slot_tag(cfg->alerts_stream, tag, sizeof(tag));
    snprintf(out, len, "riskd:fence:{%s}", tag);
}

/* ===================================================================
 * The publish-once script
 * =================================================================== */

/* KEYS[1] dedupe key (of a notice: riskd:alert:<id>:<status>), KEYS[2]
 * stream, KEYS[3] fence (the partition's epoch
 * key; on a Redis Cluster a hash in the alert stream's slot mirroring the
 * epochs, see node.c; the stream key again when unfenced), KEYS[4] the
 * dedupe key of the alert's id as the previous release derived it (from
 * its trigger entry; KEYS[1] again when there is none): an alert already
 * written under that id is not written again; KEYS[5] the open hash
 * (alerts.open_key; the stream again for a dead letter), KEYS[6] the
 * silences' match counts (rk__silence_hits_key; the stream again for a
 * dead letter); with partitions, for a scan_without_filing or
 * case_without_filing alert, KEYS[7] the filing register's main key and
 * KEYS[8..] its period keys to read (register.c);
 * ARGV[1] the
 * writer's epoch ("" = unfenced), ARGV[2] the fence's hash field ("" = the
 * fence is a plain key), ARGV[3] ttl seconds, ARGV[4] maxlen, ARGV[5]
 * channel ("" = no publish), ARGV[6] the register check ("" = none:
 * "<task key hex> <bucket> <deadline> <partitions> <period ms> <first
 * period>"), ARGV[7] the kind: "" a dead letter, "firing" an alert, else
 * the status of a notice; ARGV[8] the alert id ("" for a dead letter),
 * ARGV[9] the id of the silence that matched a firing alert ("" = none),
 * ARGV[10..] field/value pairs; the published message is ARGV[11], the
 * first value.
 *
 * A firing alert also goes into the open hash (field id, value its JSON)
 * and counts one match of its silence. A notice is written only while its
 * alert is open: the script builds it from the open alert's JSON (id,
 * status, detector, rule, severity, subject, summary, then ARGV[11], the
 * notice's own members "ts":..,"emitted_at":..,"reason":..[,"evidence":..],
 * then the alert's silenced/silenced_by), takes the alert out of the open
 * hash, and publishes it unless the alert was silenced.
 *
 * Replies 1 written, 0 written before, 2 not written: the register holds a
 * filing of the task by the deadline, 3 not written: the notice's alert is
 * not open (resolved, retracted or closed before, or never written). */
static const char publish_once_lua[] =
    /* A writer whose lease another riskd has taken since (the epoch moved
     * on) writes nothing: a paused or cut-off old leader is fenced out. */
    "if ARGV[1] ~= '' then\n"
    "  local cur\n"
    "  if ARGV[2] == '' then cur = redis.call('GET', KEYS[3])\n"
    "  else cur = redis.call('HGET', KEYS[3], ARGV[2]) end\n"
    "  if cur ~= ARGV[1] then\n"
    "    return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[3] .. "
    "' ' .. ARGV[2] .. ' is no longer current')\n"
    "  end\n"
    "end\n"
    /* Check the user's rights before the SET: a script is not rolled back,
     * so a refused XADD or PUBLISH after the SET would leave the id marked
     * written and the alert lost. (redis.acl_check_cmd: Redis >= 7.0.) */
    "if redis.acl_check_cmd and not (redis.acl_check_cmd('XADD', KEYS[2], 'MAXLEN', '~', "
    "ARGV[4], '*', ARGV[10], ARGV[11]) and (ARGV[5] == '' or "
    "redis.acl_check_cmd('PUBLISH', ARGV[5], ARGV[11])) and (ARGV[7] == '' or "
    "(redis.acl_check_cmd('HSET', KEYS[5], ARGV[8], '1') and "
    "redis.acl_check_cmd('HDEL', KEYS[5], ARGV[8]) and "
    "redis.acl_check_cmd('HINCRBY', KEYS[6], 'x', '1')))) then\n"
    "  return redis.error_reply('NOPERM the Redis user may not XADD to ' .. KEYS[2] .. "
    "', PUBLISH to ' .. ARGV[5] .. ' or HSET/HDEL ' .. KEYS[5] .. ' and HINCRBY ' .. KEYS[6])\n"
    "end\n"
    /* A notice: once per (id, status), only while the alert is open. */
    "local kind = ARGV[7]\n"
    "if kind ~= '' and kind ~= 'firing' then\n"
    "  if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "    redis.pcall('SET', KEYS[1], '1', 'KEEPTTL')\n"
    "    return 0\n"
    "  end\n"
    "  local cur = redis.call('HGET', KEYS[5], ARGV[8])\n"
    "  if not cur then return 3 end\n"
    "  local ok, a = pcall(cjson.decode, cur)\n"
    "  if not ok or type(a) ~= 'table' then a = {} end\n"
    "  local function j(v) if v == nil then return 'null' end return cjson.encode(v) end\n"
    "  local sj = '{}'\n"
    "  if type(a.subject) == 'table' and next(a.subject) ~= nil then sj = j(a.subject) end\n"
    "  local m = '{\"id\":' .. j(ARGV[8]) .. ',\"status\":' .. j(kind) .. "
    "',\"detector\":' .. j(a.detector) .. ',\"rule\":' .. j(a.rule) .. "
    "',\"severity\":' .. j(a.severity) .. ',\"subject\":' .. sj .. "
    "',\"summary\":' .. j(a.summary) .. ',' .. ARGV[11]\n"
    "  if a.silenced == true then\n"
    "    m = m .. ',\"silenced\":true'\n"
    "    if type(a.silenced_by) == 'string' then m = m .. ',\"silenced_by\":' .. "
    "j(a.silenced_by) end\n"
    "  end\n"
    "  m = m .. '}'\n"
    "  redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3])\n"
    "  redis.call('HDEL', KEYS[5], ARGV[8])\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', ARGV[10], m)\n"
    "  if ARGV[5] ~= '' and a.silenced ~= true then redis.call('PUBLISH', ARGV[5], m) end\n"
    "  return 1\n"
    "end\n"
    "if KEYS[4] ~= KEYS[1] and redis.call('EXISTS', KEYS[4]) == 1 then\n"
    "  redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3])\n"
    "  return 0\n"
    "end\n"
    /* The filing register (register.c): wait until every partition is past
     * the deadline, then drop the alert if some partition filed the task
     * by then. */
    "if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  local hx, b, dl, n, per, first = string.match(ARGV[6], "
    "'^(%x+) (%d+) (%-?%d+) (%d+) (%d+) (%-?%d+)$')\n"
    "  dl, per, first = tonumber(dl), tonumber(per), tonumber(first)\n"
    "  for p = 0, tonumber(n) - 1 do\n"
    "    local w = redis.call('HGET', KEYS[7], 'wm:' .. p)\n"
    "    if not w or tonumber(w) <= dl then\n"
    "      return redis.error_reply('WAITING partition ' .. p .. ' is not past ' .. "
    "string.format('%d', dl) .. ' yet')\n"
    "    end\n"
    "  end\n"
    "  local dg = (hx:gsub('..', function(h) return string.char(tonumber(h, 16)) end))\n"
    "  for k = 8, #KEYS do\n"
    "    local v = redis.call('HGET', KEYS[k], b)\n"
    "    if v then\n"
    "      local base = (first + k - 8) * per\n"
    "      for j = 1, #v - 11, 12 do\n"
    "        if string.sub(v, j, j + 7) == dg then\n"
    "          local a, c, d, e = string.byte(v, j + 8, j + 11)\n"
    "          if base + ((a * 256 + c) * 256 + d) * 256 + e <= dl then return 2 end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then\n"
    "  local f = {}\n"
    "  for i = 10, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(f))\n"
    "  if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[11]) end\n"
    "  if kind == 'firing' then redis.call('HSET', KEYS[5], ARGV[8], ARGV[11]) end\n"
    "  if ARGV[9] ~= '' then redis.call('HINCRBY', KEYS[6], ARGV[9], 1) end\n"
    "  return 1\n"
    "end\n"
    /* Already written: rewrite the key unchanged so that a WAIT on this
     * connection also covers the first write (see the top of the file). */
    "redis.pcall('SET', KEYS[1], '1', 'KEEPTTL')\n"
    "return 0\n";

/* ===================================================================
 * Outbox
 * =================================================================== */

enum { IT_QUEUED, IT_INFLIGHT, IT_WRITTEN, IT_DONE };  /* WRITTEN: awaits WAIT */

typedef struct ob_item {
    struct rk__outbox *ob;
    int state;
    int is_alert;                   /* 0 dead letter, 1 alert, 2 notice */
    int in_group;                   /* sent in a WAIT group */
    int wrote;                      /* some attempt answered 1 */
    int elsewhere;                  /* some attempt answered 2 */
    int not_open;                   /* some attempt answered 3 */
    int nargs;                      /* field/value strings */
    char kind[16];                  /* "" dead letter, "firing", a notice's status */
    char *id;                       /* the alert id, or NULL (dead letter) */
    char *silence;                  /* the matching silence's id, or NULL */
    char *key;                      /* dedupe key */
    char *legacy;                   /* the previous release's, or NULL */
    char *stream;
    char *channel;                  /* "" for dead letters */
    char *spec;                     /* the register check, or NULL */
    char *xkeys;                    /* its keys, one after the other (with NULs) */
    size_t nxkeys;
    char *args[8];
    size_t lens[8];
} ob_item;

struct rk__outbox {
    uv_loop_t *loop;
    rk__redis *wr;
    void (*on_drained)(void *ud);
    void *ud;
    ob_item **items;
    size_t n, cap;
    size_t scan_from;               /* no queued item before this index */
    size_t done;
    int inflight;
    char sha[41];
    int script_state;               /* 0 none, 1 loading, 2 loaded */
    uv_timer_t retry;
    int retry_armed;
    /* configuration */
    char *alerts_stream, *channel_prefix;
    char *open_key, *hits_key;      /* alerts.open_key, rk__silence_hits_key */
    char ttl_s[24], maxlen[24];
    /* fencing (rk__outbox_set_fence) */
    char *fence_key;                /* NULL: unfenced */
    char *fence_field;              /* a hash field of fence_key, or NULL */
    bool cluster;                   /* redis.cluster: dedupe keys tagged */
    char fence_epoch[24];
    int fenced;                     /* a write was refused: nothing more is sent */
    void (*on_fenced)(void *ud, const char *why);
    int wait_replicas;              /* redis.wait_replicas; 0 = no WAIT */
    char wait_n[16], wait_ms[24];
    int64_t wait_timeout;
    ob_item **grp;                  /* the group the WAIT in flight covers */
    size_t grp_n;
    int grp_wait_n;                 /* the n of that WAIT */
    int wait_inflight;
    int wait_short;                 /* the last WAIT fell short (logged) */
    int holding;                    /* an alert waits for a partition (logged) */
    rk__outbox_stats_t stats;
};

static void ob_send(rk__outbox *o);

static void item_free(ob_item *it)
{
    int i;
    free(it->key);
    free(it->legacy);
    free(it->id);
    free(it->silence);
    free(it->stream);
    free(it->channel);
    free(it->spec);
    free(it->xkeys);
    for (i = 0; i < it->nargs; i++)
        free(it->args[i]);
    free(it);
}

static void on_retry(uv_timer_t *t)
{
    rk__outbox *o = t->data;
    o->retry_armed = 0;
    ob_send(o);
}

static void arm_retry(rk__outbox *o)
{
    if (!o->retry_armed) {
        o->retry_armed = 1;
        uv_timer_start(&o->retry, on_retry, OUTBOX_RETRY_MS, 0);
    }
}

static void on_script_loaded(rk__redis *r, redisReply *reply, void *pd)
{
    rk__outbox *o = pd;
    (void)r;
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "SCRIPT LOAD failed: %s",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        o->script_state = 0;
        arm_retry(o);
        return;
    }
    memcpy(o->sha, reply->str, 40);
    o->sha[40] = '\0';
    o->script_state = 2;
    ob_send(o);
}

static void check_drained(rk__outbox *o)
{
    size_t i;
    if (o->n == 0 || o->done < o->n)
        return;
    for (i = 0; i < o->n; i++)
        item_free(o->items[i]);
    o->n = 0;
    o->done = 0;
    o->scan_from = 0;
    if (o->on_drained)
        o->on_drained(o->ud);
}

static void on_item_reply(rk__redis *r, redisReply *reply, void *pd)
{
    ob_item *it = pd;
    rk__outbox *o = it->ob;
    size_t idx;

    (void)r;
    o->inflight--;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && o->holding) {
        rk__log(RK_LOG_INFO, "alerts held for the partitions behind are written again");
        o->holding = 0;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && it->in_group) {
        it->state = IT_WRITTEN;     /* confirmed by the group's WAIT */
        if (reply->integer == 1)
            it->wrote = 1;
        if (reply->integer == 2)
            it->elsewhere = 1;
        if (reply->integer == 3)
            it->not_open = 1;
        return;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        it->state = IT_DONE;
        o->done++;
        if (reply->integer == 1) {
            if (it->is_alert == 2) o->stats.notices_written++;
            else if (it->is_alert) o->stats.written++;
            else o->stats.dead_written++;
        } else if (reply->integer == 2) {
            o->stats.filed_elsewhere++;
        } else if (reply->integer == 3) {
            o->stats.not_open++;
        } else if (it->is_alert) {
            o->stats.duplicates++;
        }
        check_drained(o);
        if (o->n > 0)
            ob_send(o);
        return;
    }
    /* Failed: back in the queue. */
    it->state = IT_QUEUED;
    for (idx = 0; idx < o->n && o->items[idx] != it; idx++)
        ;
    if (idx < o->scan_from)
        o->scan_from = idx;
    if (reply == NULL)
        return;                     /* connection lost: resent on reconnect */
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WAITING", 7) == 0) {
        /* A partition behind may still apply the filing: later. */
        o->stats.held++;
        if (!o->holding)
            rk__log(RK_LOG_INFO, "an alert waits for the filing register: %s", reply->str);
        o->holding = 1;
        arm_retry(o);
        return;
    }
    o->stats.errors++;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "FENCED", 6) == 0) {
        if (!o->fenced) {
            o->fenced = 1;
            if (o->on_fenced)
                o->on_fenced(o->ud, reply->str);
        }
        return;                     /* the owner abandons the outbox */
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        if (o->script_state == 2) {
            rk__log(RK_LOG_NOTICE, "publish script missing on the server (NOSCRIPT): loading it again");
            o->script_state = 0;
        }
    } else {
        rk__log(RK_LOG_ERR, "writing %s to %s failed: %s",
                it->is_alert ? "an alert" : "a dead letter", it->stream,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
    arm_retry(o);
}

/* The WAIT after a group: confirm its written items, or put them back. */
static void on_wait_reply(rk__redis *r, redisReply *reply, void *pd)
{
    rk__outbox *o = pd;
    int ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
             reply->integer >= o->grp_wait_n;
    size_t i;

    (void)r;
    o->wait_inflight = 0;
    for (i = 0; i < o->grp_n; i++) {
        ob_item *it = o->grp[i];
        it->in_group = 0;
        if (it->state != IT_WRITTEN)
            continue;               /* failed on its own: already queued */
        if (!ok) {
            it->state = IT_QUEUED;
            continue;
        }
        it->state = IT_DONE;
        o->done++;
        if (it->wrote) {
            if (it->is_alert == 2) o->stats.notices_written++;
            else if (it->is_alert) o->stats.written++;
            else o->stats.dead_written++;
        } else if (it->elsewhere) {
            o->stats.filed_elsewhere++;
        } else if (it->not_open) {
            o->stats.not_open++;
        } else if (it->is_alert) {
            o->stats.duplicates++;
        }
    }
    o->grp_n = 0;
    if (!ok) {
        o->scan_from = 0;
        if (reply == NULL)
            return;                 /* connection lost: resent on reconnect */
        o->stats.errors++;
        if (!o->wait_short)
            rk__log(RK_LOG_WARNING, "WAIT %d: %s; alerts stay queued and are written "
                    "again until enough replicas acknowledge them", o->grp_wait_n,
                    reply->type == REDIS_REPLY_ERROR ? reply->str :
                    reply->type == REDIS_REPLY_INTEGER ? "too few replicas acknowledged "
                    "in time" : "unexpected reply");
        o->wait_short = 1;
        arm_retry(o);
        return;
    }
    if (o->wait_short)
        rk__log(RK_LOG_NOTICE, "WAIT %d: replicas acknowledge the alerts again",
                o->grp_wait_n);
    o->wait_short = 0;
    check_drained(o);
    if (o->n > 0)
        ob_send(o);
}

/* Close the group just sent with WAIT. When WAIT cannot be sent, drop the
 * connection: the group's items then come back with NULL replies and are
 * queued again. */
static void send_wait(rk__outbox *o)
{
    const char *argv[3] = {"WAIT", o->wait_n, o->wait_ms};

    o->grp_wait_n = o->wait_replicas;
    if (rk__redis_cmd(o->wr, on_wait_reply, o, o->wait_timeout, 3, argv, NULL) == 0) {
        o->wait_inflight = 1;
        return;
    }
    o->grp_n = 0;
    rk__redis_drop(o->wr, "cannot send WAIT");
}

static void ob_send(rk__outbox *o)
{
    size_t i;
    int grouped;

    if (!rk__redis_ready(o->wr) || o->fenced || o->wait_inflight)
        return;                     /* one WAIT group at a time */
    if (o->script_state == 0) {
        const char *argv[3] = {"SCRIPT", "LOAD", publish_once_lua};
        if (rk__redis_cmd(o->wr, on_script_loaded, o, 0, 3, argv, NULL) == 0)
            o->script_state = 1;
        return;
    }
    if (o->script_state != 2)
        return;
    grouped = o->wait_replicas > 0;
    if (grouped && o->grp == NULL &&
        (o->grp = malloc(OUTBOX_MAX_INFLIGHT * sizeof(*o->grp))) == NULL) {
        arm_retry(o);
        return;
    }
    o->grp_n = 0;
    for (i = o->scan_from; i < o->n && o->inflight < OUTBOX_MAX_INFLIGHT; i++) {
        ob_item *it = o->items[i];
        const char *argv[30 + RK_REG_MAX_PERIODS];
        size_t lens[30 + RK_REG_MAX_PERIODS];
        char nkeys[16];
        const char *xk;
        int argc = 0, k;

        if (it->state != IT_QUEUED) {
            if (i == o->scan_from)
                o->scan_from++;
            continue;
        }
        argv[argc] = "EVALSHA"; lens[argc++] = 7;
        argv[argc] = o->sha; lens[argc++] = 40;
        snprintf(nkeys, sizeof(nkeys), "%zu", 6 + it->nxkeys);
        argv[argc] = nkeys; lens[argc] = strlen(nkeys); argc++;
        argv[argc] = it->key; lens[argc++] = strlen(it->key);
        argv[argc] = it->stream; lens[argc++] = strlen(it->stream);
        argv[argc] = o->fence_key != NULL ? o->fence_key : it->stream;
        lens[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = it->legacy != NULL ? it->legacy : it->key;
        lens[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = it->kind[0] != '\0' ? o->open_key : it->stream;
        lens[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = it->kind[0] != '\0' ? o->hits_key : it->stream;
        lens[argc] = strlen(argv[argc]);
        argc++;
        for (k = 0, xk = it->xkeys; k < (int)it->nxkeys; k++, xk += lens[argc - 1] + 1) {
            argv[argc] = xk;
            lens[argc] = strlen(xk);
            argc++;
        }
        if (o->fence_key != NULL) {
            argv[argc] = o->fence_epoch; lens[argc++] = strlen(o->fence_epoch);
            argv[argc] = o->fence_field ? o->fence_field : "";
            lens[argc] = strlen(argv[argc]);
            argc++;
        } else {
            argv[argc] = ""; lens[argc++] = 0;
            argv[argc] = ""; lens[argc++] = 0;
        }
        argv[argc] = o->ttl_s; lens[argc++] = strlen(o->ttl_s);
        argv[argc] = o->maxlen; lens[argc++] = strlen(o->maxlen);
        argv[argc] = it->channel; lens[argc++] = strlen(it->channel);
        argv[argc] = it->spec ? it->spec : ""; lens[argc] = strlen(argv[argc]); argc++;
        argv[argc] = it->kind; lens[argc] = strlen(it->kind); argc++;
        argv[argc] = it->id ? it->id : ""; lens[argc] = strlen(argv[argc]); argc++;
        argv[argc] = it->silence ? it->silence : ""; lens[argc] = strlen(argv[argc]); argc++;
        for (k = 0; k < it->nargs; k++) {
            argv[argc] = it->args[k];
            lens[argc++] = it->lens[k];
        }
        if (rk__redis_cmd(o->wr, on_item_reply, it, 0, argc, argv, lens) != 0)
            break;
        it->state = IT_INFLIGHT;
        o->inflight++;
        if (grouped) {
            it->in_group = 1;
            o->grp[o->grp_n++] = it;
        }
        if (i == o->scan_from)
            o->scan_from++;
    }
    if (o->grp_n > 0)
        send_wait(o);
}

rk__outbox *rk__outbox_new(uv_loop_t *loop, rk__redis *wr, const rk__config *cfg,
                          void (*on_drained)(void *ud), void *ud)
{
    rk__outbox *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->loop = loop;
    o->wr = wr;
    o->on_drained = on_drained;
    o->ud = ud;
    uv_timer_init(loop, &o->retry);
    o->retry.data = o;
    rk__outbox_configure(o, cfg);
    if (o->alerts_stream == NULL || o->channel_prefix == NULL || o->open_key == NULL ||
        o->hits_key == NULL) {
        rk__outbox_free(o);
        return NULL;
    }
    return o;
}

static void retry_closed(uv_handle_t *h)
{
    rk__outbox *o = h->data;
    size_t i;
    for (i = 0; i < o->n; i++)
        item_free(o->items[i]);
    free(o->items);
    free(o->grp);
    free(o->alerts_stream);
    free(o->channel_prefix);
    free(o->open_key);
    free(o->hits_key);
    free(o->fence_key);
    free(o->fence_field);
    free(o);
}

void rk__outbox_free(rk__outbox *o)
{
    if (o == NULL)
        return;
    uv_timer_stop(&o->retry);
    uv_close((uv_handle_t *)&o->retry, retry_closed);
}

int rk__outbox_set_fence(rk__outbox *o, const char *key, const char *field, long long epoch,
                         void (*on_fenced)(void *ud, const char *why))
{
    char *k = strdup(key), *f = field ? strdup(field) : NULL;
    if (k == NULL || (field != NULL && f == NULL)) {
        free(k);
        free(f);
        return -1;
    }
    free(o->fence_key);
    free(o->fence_field);
    o->fence_key = k;
    o->fence_field = f;
    snprintf(o->fence_epoch, sizeof(o->fence_epoch), "%lld", epoch);
    o->on_fenced = on_fenced;
    return 0;
}

void rk__outbox_configure(rk__outbox *o, const rk__config *cfg)
{
    char *s, *p, *ok, *hk, hits[300];
    if (o == NULL)
        return;
    o->cluster = cfg->n_cluster > 0;
    rk__silence_hits_key(cfg, hits, sizeof(hits));
    s = strdup(cfg->alerts_stream);
    p = strdup(cfg->channel_prefix);
    ok = strdup(cfg->alerts_open_key ? cfg->alerts_open_key : "riskd:open");
    hk = strdup(hits);
    if (s == NULL || p == NULL || ok == NULL || hk == NULL) {
        free(s);
        free(p);
        free(ok);
        free(hk);
        return;
    }
    free(o->alerts_stream);
    free(o->channel_prefix);
    free(o->open_key);
    free(o->hits_key);
    o->alerts_stream = s;
    o->channel_prefix = p;
    o->open_key = ok;
    o->hits_key = hk;
    snprintf(o->ttl_s, sizeof(o->ttl_s), "%lld",
             (long long)((cfg->dedupe_ttl + 999) / 1000));
    snprintf(o->maxlen, sizeof(o->maxlen), "%lld", cfg->alerts_maxlen);
    o->wait_replicas = cfg->redis_wait_replicas;
    o->wait_timeout = cfg->redis_wait_timeout;
    snprintf(o->wait_n, sizeof(o->wait_n), "%d", cfg->redis_wait_replicas);
    snprintf(o->wait_ms, sizeof(o->wait_ms), "%lld", (long long)cfg->redis_wait_timeout);
}

static ob_item *item_new(rk__outbox *o, int is_alert)
{
    ob_item *it;
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 256;
        ob_item **a = realloc(o->items, ncap * sizeof(*a));
        if (a == NULL)
            return NULL;
        o->items = a;
        o->cap = ncap;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->ob = o;
    it->is_alert = is_alert;
    return it;
}

static int item_arg(ob_item *it, const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (c == NULL)
        return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    it->args[it->nargs] = c;
    it->lens[it->nargs++] = len;
    return 0;
}

static int item_push(rk__outbox *o, ob_item *it, int ok)
{
    if (!ok || it->key == NULL || it->stream == NULL || it->channel == NULL) {
        item_free(it);
        return -1;
    }
    o->items[o->n++] = it;
    ob_send(o);
    return 0;
}

/* The dedupe key of alert id: riskd:alert:<id>, on a cluster in the alert
 * stream's slot so that the script's keys share one. NULL when out of
 * memory. */
static char *alert_key(const rk__outbox *o, const char *id)
{
    char tag[256], *key;
    size_t n;
    if (o->cluster) {
        rk__slot_tag(o->alerts_stream, tag, sizeof(tag));
        n = strlen("riskd:alert:{}:") + strlen(tag) + strlen(id) + 1;
        if ((key = malloc(n)) != NULL)
            snprintf(key, n, "riskd:alert:{%s}:%s", tag, id);
    } else {
        n = strlen("riskd:alert:") + strlen(id) + 1;
        if ((key = malloc(n)) != NULL)
            snprintf(key, n, "riskd:alert:%s", id);
    }
    return key;
}

int rk__outbox_alert(rk__outbox *o, const char *id, const char *legacy_id,
                     const char *detector, const char *json, const char *silenced_by)
{
    return rk__outbox_alert_checked(o, id, legacy_id, detector, json, silenced_by,
                                    NULL, 0, NULL);
}

int rk__outbox_alert_checked(rk__outbox *o, const char *id, const char *legacy_id,
                             const char *detector, const char *json, const char *silenced_by,
                             char keys[][320], size_t nkeys, const char *spec)
{
    ob_item *it = item_new(o, 1);
    bool publish = silenced_by == NULL;
    size_t n;
    int ok;
    if (it == NULL)
        return -1;
    snprintf(it->kind, sizeof(it->kind), "firing");
    if ((it->id = strdup(id)) == NULL ||
        (silenced_by != NULL && (it->silence = strdup(silenced_by)) == NULL)) {
        item_free(it);
        return -1;
    }
    if (spec != NULL && nkeys > 0 && nkeys <= RK_REG_MAX_PERIODS + 1) {
        size_t i, len = 0;
        for (i = 0; i < nkeys; i++)
            len += strlen(keys[i]) + 1;
        it->spec = strdup(spec);
        it->xkeys = malloc(len);
        if (it->spec == NULL || it->xkeys == NULL) {
            item_free(it);
            return -1;
        }
        for (i = 0, len = 0; i < nkeys; i++) {
            size_t l = strlen(keys[i]) + 1;
            memcpy(it->xkeys + len, keys[i], l);
            len += l;
        }
        it->nxkeys = nkeys;
    }
    it->key = alert_key(o, id);
    it->stream = strdup(o->alerts_stream);
    n = strlen(o->channel_prefix) + strlen(detector) + 1;
    it->channel = malloc(n);
    if (it->channel) snprintf(it->channel, n, "%s%s", publish ? o->channel_prefix : "",
                              publish ? detector : "");
    ok = item_arg(it, "data", 4) == 0 && item_arg(it, json, strlen(json)) == 0 &&
         (legacy_id == NULL || (it->legacy = alert_key(o, legacy_id)) != NULL);
    return item_push(o, it, ok);
}

int rk__outbox_notice(rk__outbox *o, const char *id, const char *status,
                      const char *detector, const char *members)
{
    ob_item *it = item_new(o, 2);
    char *k;
    size_t n;
    int ok;
    if (it == NULL)
        return -1;
    snprintf(it->kind, sizeof(it->kind), "%s", status);
    it->id = strdup(id);
    if ((k = alert_key(o, id)) != NULL) {
        n = strlen(k) + strlen(status) + 2;
        if ((it->key = malloc(n)) != NULL)
            snprintf(it->key, n, "%s:%s", k, status);
        free(k);
    }
    it->stream = strdup(o->alerts_stream);
    n = strlen(o->channel_prefix) + strlen(detector) + 1;
    if ((it->channel = malloc(n)) != NULL)
        snprintf(it->channel, n, "%s%s", o->channel_prefix, detector);
    ok = it->id != NULL && item_arg(it, "data", 4) == 0 &&
         item_arg(it, members, strlen(members)) == 0;
    return item_push(o, it, ok);
}

int rk__outbox_dead(rk__outbox *o, const char *stream, const char *entry_id,
                    const char *error, const char *data, size_t datalen)
{
    ob_item *it = item_new(o, 0);
    size_t n;
    int ok;
    if (it == NULL)
        return -1;
    n = strlen("riskd:deadseen:{}:/") + strlen(RK_DEAD_STREAM) + strlen(stream) +
        strlen(entry_id) + 1;
    it->key = malloc(n);
    if (it->key != NULL && o->cluster)  /* in riskd:dead's slot */
        snprintf(it->key, n, "riskd:deadseen:{%s}:%s/%s", RK_DEAD_STREAM, stream, entry_id);
    else if (it->key != NULL)
        snprintf(it->key, n, "riskd:deadseen:%s/%s", stream, entry_id);
    it->stream = strdup(RK_DEAD_STREAM);
    it->channel = strdup("");
    if (datalen > RK_DEAD_DATA_MAX)
        datalen = RK_DEAD_DATA_MAX;
    ok = item_arg(it, "stream", 6) == 0 && item_arg(it, stream, strlen(stream)) == 0 &&
         item_arg(it, "id", 2) == 0 && item_arg(it, entry_id, strlen(entry_id)) == 0 &&
         item_arg(it, "error", 5) == 0 && item_arg(it, error, strlen(error)) == 0 &&
         item_arg(it, "data", 4) == 0 && item_arg(it, data ? data : "", data ? datalen : 0) == 0;
    return item_push(o, it, ok);
}

void rk__outbox_kick(rk__outbox *o)
{
    if (o != NULL)
        ob_send(o);
}

size_t rk__outbox_pending(const rk__outbox *o)
{
    return o ? o->n - o->done : 0;
}

const rk__outbox_stats_t *rk__outbox_stats(const rk__outbox *o)
{
    static const rk__outbox_stats_t none;
    return o ? &o->stats : &none;
}

void rk__outbox_writer_down(rk__outbox *o)
{
    /* In-flight items were already put back by their NULL replies; the
     * script cache may be empty after a Redis restart. */
    o->script_state = 0;
}
