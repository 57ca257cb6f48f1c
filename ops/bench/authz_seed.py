#!/usr/bin/env python3
"""Seeds the access-rights benchmark (ops/bench/authz.sh) straight into the database, bypassing
the API for speed: USERS residents, GRANTS grants in all (direct permissions and roles to people,
plus roles and permissions granted to groups), ROLES roles of 1-5 permissions, GROUPS groups with
members. Deterministic for a given --seed.

Writes the data either into a migrated SQLite database (--sqlite PATH) or as tab-separated COPY
files for PostgreSQL (--pg-dir DIR: users.tsv, roles.tsv, ... loaded by authz.sh with psql \\copy),
and always the request file for authz.lua (--requests FILE), one line per user:

    USER_ID <TAB> held permissions (up to 4, space-separated) <TAB> one permission not held

"Held" means in force now through any path (direct, role, group, wildcard `svc:*`); the denied
one is, for about half of the people who have one, a permission of an expired or not-yet-valid
grant of theirs, else a random one. Prints one line: `SEED users=… grants=… …`.
"""

import argparse
import datetime as dt
import os
import random
import sqlite3
import sys
import time
import uuid

p = argparse.ArgumentParser()
p.add_argument("--users", type=int, default=100_000)
p.add_argument("--grants", type=int, default=1_000_000)
p.add_argument("--roles", type=int, default=50)
p.add_argument("--groups", type=int, default=100)
p.add_argument("--services", type=int, default=40)
p.add_argument("--functions", type=int, default=25)
p.add_argument("--seed", type=int, default=2026)
p.add_argument("--sqlite")
p.add_argument("--pg-dir")
p.add_argument("--requests", required=True)
a = p.parse_args()
if bool(a.sqlite) == bool(a.pg_dir):
    sys.exit("authz_seed.py: give exactly one of --sqlite PATH and --pg-dir DIR")

t_start = time.monotonic()
rnd = random.Random(a.seed)
now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
ts = lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")  # what diesel stores for TIMESTAMP
NOW = ts(now)
PAST_FROM, PAST_UNTIL = ts(now - dt.timedelta(days=400)), ts(now - dt.timedelta(days=30))
FUTURE_FROM, FUTURE_UNTIL = ts(now + dt.timedelta(days=30)), ts(now + dt.timedelta(days=730))


def new_id():
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


services = [f"svc{i}" for i in range(1, a.services + 1)]
functions = [f"fn{i}" for i in range(1, a.functions + 1)]
perms = [f"{s}:{f}" for s in services for f in functions]


def random_perm(wildcard_share=0.0):
    s = rnd.choice(services)
    return f"{s}:*" if rnd.random() < wildcard_share else f"{s}:{rnd.choice(functions)}"


# Roles: 1-5 permissions each; every tenth role also covers a whole service (`svc:*`).
roles = {}
for i in range(1, a.roles + 1):
    ps = set(rnd.sample(perms, rnd.randint(1, 5)))
    if i % 10 == 0:
        ps.pop()
        ps.add(f"{rnd.choice(services)}:*")
    roles[f"role-{i:02d}"] = sorted(ps)
role_names = list(roles)

# Groups, each with 3 grants (a role or a single permission) and members: 40 % of people are in
# no group, 40 % in one, 20 % in two.
groups = [f"group-{i:03d}" for i in range(1, a.groups + 1)]


def grant_target():
    """(role, permission) with exactly one set: 25 % roles, 75 % single permissions."""
    if rnd.random() < 0.25:
        return rnd.choice(role_names), None
    return None, random_perm(0.02)


def validity():
    """(valid_from, valid_until, in force now): 90 % open, 4 % ending in the future,
    3 % expired, 3 % starting in the future."""
    x = rnd.random()
    if x < 0.90:
        return None, None, True
    if x < 0.94:
        return None, FUTURE_UNTIL, True
    if x < 0.97:
        return PAST_FROM, PAST_UNTIL, False
    return FUTURE_FROM, None, False


group_grants = []  # (id, group, role, permission)
for g in groups:
    for _ in range(3):
        r, pm = grant_target()
        group_grants.append((new_id(), g, r, pm))
group_perms = {g: [] for g in groups}
for _, g, r, pm in group_grants:
    group_perms[g].extend(roles[r] if r else [pm])

users = [new_id() for _ in range(a.users)]
members = []  # (group, user)
user_groups = [[] for _ in users]
for ui, u in enumerate(users):
    x = rnd.random()
    n = 0 if x < 0.4 else 1 if x < 0.8 else 2
    for g in rnd.sample(groups, n):
        members.append((g, u))
        user_groups[ui].append(g)

# People's own grants: GRANTS minus the groups' grants, 5-15 a person (10 on average), the
# total made exact by moving single grants between random people.
n_user_grants = a.grants - len(group_grants)
counts = [rnd.randint(5, 15) for _ in users]
diff = n_user_grants - sum(counts)
while diff != 0:
    ui = rnd.randrange(len(users))
    if diff > 0:
        counts[ui] += 1
        diff -= 1
    elif counts[ui] > 1:
        counts[ui] -= 1
        diff += 1


def covers(held, perm):
    s, _ = perm.split(":")
    return perm in held or f"{s}:*" in held


requests_out = open(a.requests, "w")
grant_rows = []  # (id, user_id, group_name, role, permission, valid_from, valid_until)
stats = {"direct_perm": 0, "direct_role": 0, "not_in_force": 0, "denied_from_lapsed": 0}
for ui, u in enumerate(users):
    held, lapsed = set(), []
    for g in user_groups[ui]:
        held.update(group_perms[g])
    for _ in range(counts[ui]):
        r, pm = grant_target()
        vf, vu, live = validity()
        grant_rows.append((new_id(), u, None, r, pm, vf, vu))
        stats["direct_role" if r else "direct_perm"] += 1
        got = roles[r] if r else [pm]
        if live:
            held.update(got)
        else:
            stats["not_in_force"] += 1
            lapsed.extend(got)
    # Requests: concrete permissions (a wildcard is asked about as one of its functions).
    concrete = sorted({h if not h.endswith(":*") else f"{h[:-2]}:{rnd.choice(functions)}" for h in held})
    ask = rnd.sample(concrete, min(4, len(concrete)))
    denied = [x for x in lapsed if not x.endswith(":*") and not covers(held, x)]
    if denied and rnd.random() < 0.5:
        deny = rnd.choice(denied)
        stats["denied_from_lapsed"] += 1
    else:
        while True:
            deny = rnd.choice(perms)
            if not covers(held, deny):
                break
    requests_out.write(f"{u}\t{' '.join(ask)}\t{deny}\n")
requests_out.close()
for gid, g, r, pm in group_grants:
    grant_rows.append((gid, None, g, r, pm, None, None))
assert len(grant_rows) == a.grants
t_generated = time.monotonic()

user_rows = [(u, f"bench{i:06d}", NOW, NOW) for i, u in enumerate(users)]
role_rows = [(r, f"Benchmark role {r}", NOW) for r in role_names]
role_perm_rows = [(r, pm) for r in role_names for pm in roles[r]]
group_rows = [(g, f"Benchmark group {g}", NOW) for g in groups]
full_grants = [(i, u, g, r, pm, vf, vu, "bench", NOW) for (i, u, g, r, pm, vf, vu) in grant_rows]

if a.sqlite:
    db = sqlite3.connect(a.sqlite, isolation_level=None)
    db.executescript("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000; PRAGMA foreign_keys = ON;")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO users (id, username, password_hash, role, disabled, preferred_language,"
        " message_channels, created_at, updated_at) VALUES (?, ?, NULL, 'resident', 0, 'fi',"
        " 'email notice', ?, ?)", user_rows)
    db.executemany("INSERT INTO authz_roles (name, description, created_at) VALUES (?, ?, ?)", role_rows)
    db.executemany("INSERT INTO authz_role_permissions (role, permission) VALUES (?, ?)", role_perm_rows)
    db.executemany("INSERT INTO authz_groups (name, description, created_at) VALUES (?, ?, ?)", group_rows)
    db.executemany("INSERT INTO authz_group_members (group_name, user_id) VALUES (?, ?)", members)
    db.executemany(
        "INSERT INTO authz_grants (id, user_id, group_name, role, permission, valid_from,"
        " valid_until, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", full_grants)
    # Whatever a node may hold in memory is stale now.
    db.execute("UPDATE authz_state SET generation = generation + 1 WHERE id = 1")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
else:
    os.makedirs(a.pg_dir, exist_ok=True)
    esc = lambda v: "\\N" if v is None else str(v)

    def dump(name, rows):
        with open(os.path.join(a.pg_dir, name + ".tsv"), "w") as f:
            for r in rows:
                f.write("\t".join(esc(v) for v in r) + "\n")

    dump("users", [(u, n, "resident", "f", "fi", "email notice", c, m) for (u, n, c, m) in user_rows])
    dump("authz_roles", role_rows)
    dump("authz_role_permissions", role_perm_rows)
    dump("authz_groups", group_rows)
    dump("authz_group_members", members)
    dump("authz_grants", full_grants)
t_end = time.monotonic()

print(
    f"SEED users={len(users)} grants={len(grant_rows)} direct_perm={stats['direct_perm']}"
    f" direct_role={stats['direct_role']} group_grants={len(group_grants)} roles={len(roles)}"
    f" role_perms={len(role_perm_rows)} groups={len(groups)} memberships={len(members)}"
    f" not_in_force={stats['not_in_force']} denied_from_lapsed={stats['denied_from_lapsed']}"
    f" generate_s={t_generated - t_start:.1f} write_s={t_end - t_generated:.1f}"
)
