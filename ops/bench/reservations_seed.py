#!/usr/bin/env python3
"""Seeds the reservations benchmark (ops/bench/reservations.sh) straight into a migrated database:
one unit and two facilities, both open every day 06:00-23:00 Europe/Helsinki time, one-hour slots,
bookings of 1-3 hours, no buffers, bookable from now on up to 3650 days ahead, free, confirmed at
once, at most 100 000 upcoming reservations a resident:

  - bench-a ("full"): RESERVATIONS confirmed one-hour reservations, every slot of every day from
    tomorrow (local) on, 17 a day, so 10 000 fill 588 days and 4 slots of the 589th;
  - bench-b ("empty"): no reservations; the booking run of reservations_book.lua books it.

Writes into SQLite (--sqlite PATH, one transaction) or tab-separated COPY files for PostgreSQL
(--pg-dir DIR: res_units.tsv, res_resources.tsv, res_hours.tsv, res_reservations.tsv, loaded by
reservations.sh with psql \\copy). Also writes, for the wrk scripts:

  --windows FILE  one availability window a line, "FROM TO" (local dates, TO = FROM + 7 days),
                  every window whose 7 days on bench-a are all fully booked (17 × 7 = 119 taken);
  --slots FILE    the booking pool of bench-b, --book-days days from tomorrow, one slot start a line:
                  "BEGINS END1 END2 END3" (RFC 3339 UTC; ends of 1, 2 and 3 hours);
  --probe FILE    one slot outside the pool (the day after it, 12:00 local), "BEGINS END END30"
                  (END one hour later, END30 half an hour later: too short, a rule refuses it), for
                  the script's own checks before the load.

Times are UTC instants written as diesel writes chrono NaiveDateTime to SQLite ('YYYY-MM-DD
HH:MM:SS', no fraction for whole seconds: the triggers and queries compare them as text).
Prints one line: `SEED reservations=… days=… first=… last=… windows=… pool_slots=… write_s=…`.
"""

import argparse
import datetime as dt
import os
import sqlite3
import sys
import time
import uuid
from zoneinfo import ZoneInfo

p = argparse.ArgumentParser()
p.add_argument("--reservations", type=int, default=10_000)
p.add_argument("--book-days", type=int, default=30)
p.add_argument("--sqlite")
p.add_argument("--pg-dir")
p.add_argument("--windows", required=True)
p.add_argument("--slots", required=True)
p.add_argument("--probe", required=True)
a = p.parse_args()
if bool(a.sqlite) == bool(a.pg_dir):
    sys.exit("reservations_seed.py: give exactly one of --sqlite PATH and --pg-dir DIR")

TZ = ZoneInfo("Europe/Helsinki")
UTC = dt.timezone.utc
OPENS, CLOSES = 6 * 60, 23 * 60  # local minutes
PER_DAY = (CLOSES - OPENS) // 60  # 17 one-hour slots
UNIT = "bench-unit"
FULL, EMPTY = "bench-a", "bench-b"
SUB = "bench-seed-resident"

t0 = time.monotonic()
now_utc = dt.datetime.now(UTC).replace(microsecond=0)
today = now_utc.astimezone(TZ).date()
tomorrow = today + dt.timedelta(days=1)


def local_to_utc(day, minutes):
    """Local wall-clock time `day` + `minutes` as a naive UTC datetime. Opening hours 06-23 never
    fall into a daylight-saving gap or fold of Europe/Helsinki (the changes happen at 03/04)."""
    local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    return local.replace(tzinfo=TZ).astimezone(UTC).replace(tzinfo=None)


ts = lambda t: t.strftime("%Y-%m-%d %H:%M:%S")  # diesel's text for a whole-second NaiveDateTime
rfc = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
NOW = ts(now_utc.replace(tzinfo=None))

unit = dict(id=UNIT, name="Penkkitalo", municipality_code="091", street_address="Penkkikatu 1",
            postal_code="00100", city="Helsinki", contact="penkki@example.fi",
            latitude=None, longitude=None, created_at=NOW)


def resource(rid, name):
    return dict(
        id=rid, unit_id=UNIT, kind="facility", name_fi=f"Penkkisali {name}",
        name_sv=f"Bänksal {name}", name_en=f"Bench hall {name}", description="Benchmark",
        resource_type="sports_hall", purposes="sports", capacity=20, equipment="",
        image_url=None, terms="", auth_level="weak", lipas_id=None, slot_minutes=60,
        min_minutes=60, max_minutes=180, buffer_before=0, buffer_after=0,
        advance_min_minutes=0, advance_max_days=3650, max_per_resident=100_000, cancel_hours=24,
        manual_approval=False, price_kind="free", price_cents=0, reduced_price_cents=None,
        vat_basis_points=0, active=True, created_at=NOW)


resources = [resource(FULL, "A"), resource(EMPTY, "B")]
hours = [dict(id=f"{r['id']}-h{wd}", resource_id=r["id"], valid_from="2020-01-01",
              valid_until=None, weekday=wd, opens_min=OPENS, closes_min=CLOSES)
         for r in resources for wd in range(1, 8)]

# bench-a: every slot from tomorrow on, day by day.
reservations = []
day, slot = tomorrow, 0
for i in range(a.reservations):
    b = local_to_utc(day, OPENS + 60 * slot)
    e = b + dt.timedelta(hours=1)
    reservations.append(dict(
        id=str(uuid.UUID(int=i + 1, version=4)), resource_id=FULL, sub=SUB, kind="resident",
        series_id=None, appt_type_id=None, state="confirmed", begins_at=ts(b), ends_at=ts(e),
        blocked_from=ts(b), blocked_until=ts(e), purpose="", price_cents=0, vat_basis_points=0,
        language="fi", message=None, expires_at=None, reminded_at=None, created_at=NOW,
        updated_at=NOW))
    slot += 1
    if slot == PER_DAY:
        day, slot = day + dt.timedelta(days=1), 0
full_days = a.reservations // PER_DAY  # days with every slot taken, from tomorrow
last_day = tomorrow + dt.timedelta(days=max(full_days - 1, 0))

with open(a.windows, "w") as f:
    n_windows = 0
    for k in range(0, full_days - 6):
        d = tomorrow + dt.timedelta(days=k)
        f.write(f"{d.isoformat()} {(d + dt.timedelta(days=7)).isoformat()}\n")
        n_windows += 1
if n_windows == 0:
    sys.exit("reservations_seed.py: fewer than 7 fully booked days: raise --reservations")

with open(a.slots, "w") as f:
    n_slots = 0
    for k in range(a.book_days):
        d = tomorrow + dt.timedelta(days=k)
        for s in range(PER_DAY):
            b = local_to_utc(d, OPENS + 60 * s)
            f.write(" ".join([rfc(b)] + [rfc(b + dt.timedelta(hours=h)) for h in (1, 2, 3)]) + "\n")
            n_slots += 1
with open(a.probe, "w") as f:
    b = local_to_utc(tomorrow + dt.timedelta(days=a.book_days), 12 * 60)
    f.write(f"{rfc(b)} {rfc(b + dt.timedelta(hours=1))} {rfc(b + dt.timedelta(minutes=30))}\n")

TABLES = [("res_units", [unit]), ("res_resources", resources), ("res_hours", hours),
          ("res_reservations", reservations)]
t_write = time.monotonic()
if a.sqlite:
    db = sqlite3.connect(a.sqlite, timeout=30)
    db.execute("PRAGMA foreign_keys = ON")
    with db:  # one transaction
        for table, rows in TABLES:
            cols = list(rows[0])
            # Newest first: the no-overlap trigger's index look-up (resource_id, blocked_from <
            # NEW.blocked_until) then meets no earlier rows, also on schemas whose trigger does not
            # bound how far back it searches.
            if table == "res_reservations":
                rows = list(reversed(rows))
            db.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[int(v) if isinstance(v, bool) else v for v in r.values()] for r in rows])
    db.close()
else:
    os.makedirs(a.pg_dir, exist_ok=True)

    def cell(v):
        if v is None:
            return "\\N"
        if isinstance(v, bool):
            return "t" if v else "f"
        return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    for table, rows in TABLES:
        with open(os.path.join(a.pg_dir, f"{table}.tsv"), "w") as f:
            for r in rows:
                f.write("\t".join(cell(v) for v in r.values()) + "\n")
        with open(os.path.join(a.pg_dir, f"{table}.cols"), "w") as f:
            f.write(", ".join(rows[0]) + "\n")
t_end = time.monotonic()
print(f"SEED reservations={len(reservations)} days={full_days} first={tomorrow} last_full={last_day}"
      f" windows={n_windows} pool_days={a.book_days} pool_slots={n_slots}"
      f" generate_s={t_write - t0:.1f} write_s={t_end - t_write:.1f}")
