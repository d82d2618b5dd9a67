#!/usr/bin/env python3
"""tests/integration/sample_redraw.py - an independent re-draw of
`riskctl sample`, written from riskctl(1), SAMPLE ALGORITHM, alone (no
code shared with riskctl): what an auditor would write to check a
published draw.

usage: sample_redraw.py EVENTS.json PERIOD SHARE SEED KIND MIN_FINE WEIGHTS.json

EVENTS.json is a JSON array of the `data` values of the input streams in
the order riskctl reads them (streams.scan whole, then streams.case);
WEIGHTS.json maps unit id -> open alerts (used when it is not empty, i.e.
--weighted). PERIOD is YYYY-MM (clock.timezone +08:00). Prints one JSON
object: {"units": {unit: k}, "targets": [ids, in unit order then id order]}.
"""
import hashlib
import json
import math
import sys
from datetime import datetime, timedelta, timezone

TZ = timezone(timedelta(hours=8))


def ms(v):
    if isinstance(v, int):
        return v
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)


def valid(e):
    """The required fields of the three types used (riskd(8), Event types):
    an entry riskd dead-letters is no action."""
    def s(k):
        return isinstance(e.get(k), str)
    t = e.get("type")
    if "ts" not in e:
        return False
    if t == "inspection.filed":
        offs = e.get("officers")
        return (s("task_id") and s("unit_id") and s("enterprise_id") and
                isinstance(offs, list) and len(offs) >= 1)
    if t == "case.decided":
        fine = e.get("fine")
        return (s("case_id") and s("unit_id") and isinstance(fine, (int, float))
                and fine >= 0)
    if t == "case.opened":
        return s("case_id") and s("unit_id") and s("source")
    return False


def main():
    events_path, period, share, seed, kind, min_fine, weights_path = sys.argv[1:8]
    share = float(share)
    min_fine = float(min_fine)
    with open(events_path, encoding="utf-8") as f:
        events = json.load(f)
    with open(weights_path, encoding="utf-8") as f:
        open_alerts = json.load(f)
    year, month = (int(x) for x in period.split("-"))
    start = int(datetime(year, month, 1, tzinfo=TZ).timestamp() * 1000)
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    end = int(datetime(ny, nm, 1, tzinfo=TZ).timestamp() * 1000)

    last = {}        # id -> event (the last one read wins)
    opened = {}      # case_id -> case.opened
    for data in events:
        try:
            e = json.loads(data)
        except ValueError:
            continue
        if not isinstance(e, dict):
            continue
        t = e.get("type")
        if not valid(e):
            continue
        if kind == "inspection" and t == "inspection.filed":
            last[e["task_id"]] = e
        elif kind == "case" and t == "case.decided":
            last[e["case_id"]] = e
        elif kind == "case" and t == "case.opened":
            opened[e["case_id"]] = e

    per_unit = {}
    for i, e in last.items():
        if kind == "inspection":
            when = ms(e.get("planned_at", e["ts"]))
            ok = True
        else:
            when = ms(e["ts"])
            ok = e["fine"] >= min_fine
        if ok and start <= when < end and e.get("unit_id"):
            per_unit.setdefault(e["unit_id"], []).append(i)

    def key(i):
        d = hashlib.sha256(seed.encode() + b"\x00" + i.encode()).digest()
        return int.from_bytes(d[:8], "big")

    total_n = sum(len(v) for v in per_unit.values())
    sum_nw = sum(len(v) * (1 + open_alerts.get(u, 0)) for u, v in per_unit.items())
    out_units, targets = {}, []
    for u in sorted(per_unit, key=lambda s: s.encode()):
        ids = sorted(per_unit[u], key=lambda s: s.encode())
        n = len(ids)
        if open_alerts:
            x = share * float(n * (1 + open_alerts.get(u, 0)) * total_n) / float(sum_nw)
        else:
            x = share * n
        k = min(n, max(1, math.ceil(x - 1e-9)))
        chosen = sorted(ids, key=lambda i: (key(i), i.encode()))[:k]
        out_units[u] = k
        targets.extend(sorted(chosen, key=lambda s: s.encode()))
    print(json.dumps({"units": out_units, "targets": targets}, sort_keys=True))


if __name__ == "__main__":
    main()
