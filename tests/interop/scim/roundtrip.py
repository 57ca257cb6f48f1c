#!/usr/bin/env python3
"""SCIM 2.0 round trip driven by a third-party client library.

Usage: roundtrip.py BASE_URL BEARER_TOKEN [-v] [--timeout SECONDS]

The SCIM service is expected at BASE_URL + "/scim/v2". Every request is made
and every response is read by scim2-client (python-scim, not written by us),
which validates the payloads against the models it builds from what the
server publishes on /ServiceProviderConfig, /ResourceTypes and /Schemas.

On success ONE JSON line summarising the checks goes to stdout and the exit
status is 0. On any failure a message naming the failed step goes to stderr
and the exit status is 1. With -v each step is also logged to stderr.

Install: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
"""

import argparse
import json
import sys
import traceback
from importlib.metadata import version as dist_version
from typing import Any

import httpx2
from pydantic import ValidationError
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Group as _CoreGroup
from scim2_models import NotFoundException
from scim2_models import PatchOp
from scim2_models import PreconditionFailedException
from scim2_models import SCIMException
from scim2_models import SearchRequest
from scim2_models import User as _CoreUser

SCIM_PREFIX = "/scim/v2"
USER_SCHEMA = str(_CoreUser.__schema__)
GROUP_SCHEMA = str(_CoreGroup.__schema__)
MUNICIPAL_SCHEMA = "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User"

MAIJA = "scim-maija"
MATTI = "scim-matti"
GROUP = "scim-kirjasto"

VERBOSE = False


class CheckFailed(Exception):
    """A value the server returned is not the expected one."""


def log(message: str) -> None:
    if VERBOSE:
        print(f"[roundtrip] {message}", file=sys.stderr, flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def equal(actual: Any, expected: Any, what: str) -> None:
    expect(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def get(resource: Any, path: str) -> Any:
    """Read an attribute by its SCIM path ("name.givenName"), None when unset."""
    try:
        return resource[path]
    except KeyError:
        return None


def check_meta(resource: Any, resource_type: str, endpoint: str, what: str) -> None:
    """The common attributes RFC 7643 §3.1 asks for, on a returned resource."""
    expect(bool(resource.id), f"{what}: no id")
    meta = resource.meta
    expect(meta is not None, f"{what}: no meta")
    equal(meta.resource_type, resource_type, f"{what}: meta.resourceType")
    expect(meta.created is not None, f"{what}: no meta.created")
    expect(meta.last_modified is not None, f"{what}: no meta.lastModified")
    expect(
        bool(meta.location) and meta.location.rstrip("/").endswith(f"{endpoint}/{resource.id}"),
        f"{what}: meta.location {meta.location!r} does not end with {endpoint}/{resource.id}",
    )
    expect(bool(meta.version), f"{what}: no meta.version nor ETag header")


def emails(resource: Any) -> list[str]:
    # The register keeps one email address, so our schema has no `primary` flag for it.
    return [e.value for e in (get(resource, "emails") or [])]


def member_values(group: Any) -> list[str]:
    return sorted(m.value for m in (get(group, "members") or []))


class RoundTrip:
    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        base_url = base_url.rstrip("/")
        if not base_url.endswith(SCIM_PREFIX):
            base_url += SCIM_PREFIX
        self.http = httpx2.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self.scim = SyncSCIMClient(self.http)
        self.step = "start"
        self.summary: dict[str, Any] = {}

    # -- helpers -----------------------------------------------------------

    def enter(self, step: str) -> None:
        self.step = step
        log(step)

    def search(self, model: Any, filter_: str) -> Any:
        return self.scim.query(model, query_parameters=SearchRequest(filter=filter_))

    def filtered_user_names(self, filter_: str) -> tuple[int, list[str]]:
        """Total and userNames of the Users matching a filter."""
        response = self.search(self.User, filter_)
        resources = response.resources or []
        names = sorted(get(r, "userName") for r in resources)
        expect(
            response.total_results == len(resources),
            f"filter {filter_!r}: totalResults {response.total_results} "
            f"but {len(resources)} Resources returned",
        )
        return response.total_results, names

    def read_user(self, user_id: str) -> Any:
        user = self.scim.query(self.User, user_id)
        equal(user.id, user_id, "GET /Users/{id}: id")
        return user

    def read_group(self, group_id: str) -> Any:
        group = self.scim.query(self.Group, group_id)
        equal(group.id, group_id, "GET /Groups/{id}: id")
        return group

    def remove_leftovers(self) -> None:
        """Delete what an interrupted earlier run left, matched exactly.

        The values are compared here too, so that a server whose filters
        misbehave cannot make this delete anything else.
        """
        for name in (MAIJA, MATTI):
            for user in self.search(self.User, f'userName eq "{name}"').resources or []:
                if get(user, "userName") == name:
                    log(f"removing leftover User {name} ({user.id})")
                    self.scim.delete(self.User, user.id)
        for group in self.search(self.Group, f'displayName eq "{GROUP}"').resources or []:
            if get(group, "displayName") == GROUP:
                log(f"removing leftover Group {GROUP} ({group.id})")
                self.scim.delete(self.Group, group.id)

    # -- the round trip ----------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.enter("discovery (/ResourceTypes, /Schemas, /ServiceProviderConfig)")
        self.scim.discover()
        provider = self.scim.provider
        config = provider.config
        expect(config is not None, "no ServiceProviderConfig")
        expect(bool(config.patch and config.patch.supported), "ServiceProviderConfig: patch.supported is not true")
        expect(bool(config.filter and config.filter.supported), "ServiceProviderConfig: filter.supported is not true")
        etag = bool(config.etag and config.etag.supported)
        expect(etag, "ServiceProviderConfig: etag.supported is not true, but the server returns ETags")
        types = {rt.name: rt for rt in provider.resource_types}
        expect("User" in types and "Group" in types, f"resource types are {sorted(types)}, expected User and Group")
        equal(str(types["User"].schema_), USER_SCHEMA, "ResourceType User: schema")
        equal(str(types["Group"].schema_), GROUP_SCHEMA, "ResourceType Group: schema")
        user_extensions = [str(e.schema_) for e in types["User"].schema_extensions or []]
        expect(
            MUNICIPAL_SCHEMA in user_extensions,
            f"ResourceType User: schemaExtensions {user_extensions} lack {MUNICIPAL_SCHEMA}",
        )
        self.User = self.scim.get_resource_model("User")
        self.Group = self.scim.get_resource_model("Group")
        expect(self.User is not None and self.Group is not None, "no model built for User or Group")
        expect(
            MUNICIPAL_SCHEMA in self.User.get_extension_models(),
            "the User model built from /Schemas does not carry the municipal extension",
        )
        self.summary["discovered"] = sorted(types)

        self.enter("removing leftovers of an earlier run")
        self.remove_leftovers()

        # Creation -----------------------------------------------------------
        self.enter("POST /Users scim-maija")
        maija = self.scim.create(
            self.User.model_validate(
                {
                    "userName": MAIJA,
                    "name": {"givenName": "Maija", "familyName": "Meikäläinen"},
                    "emails": [{"value": "maija@example.fi"}],
                    "active": True,
                    "preferredLanguage": "fi",
                }
            )
        )
        check_meta(maija, "User", "/Users", "created scim-maija")
        equal(get(maija, "userName"), MAIJA, "created scim-maija: userName")
        equal(get(maija, "name.givenName"), "Maija", "created scim-maija: name.givenName")
        equal(get(maija, "name.familyName"), "Meikäläinen", "created scim-maija: name.familyName")
        equal(emails(maija), ["maija@example.fi"], "created scim-maija: emails")
        equal(get(maija, "active"), True, "created scim-maija: active")
        equal(get(maija, "preferredLanguage"), "fi", "created scim-maija: preferredLanguage")

        self.enter("POST /Users scim-matti")
        matti = self.scim.create(
            self.User.model_validate(
                {
                    "userName": MATTI,
                    "name": {"givenName": "Matti", "familyName": "Virtanen"},
                    "emails": [{"value": "matti@example.fi"}],
                    "active": True,
                    "preferredLanguage": "fi",
                }
            )
        )
        check_meta(matti, "User", "/Users", "created scim-matti")
        equal(get(matti, "userName"), MATTI, "created scim-matti: userName")
        equal(emails(matti), ["matti@example.fi"], "created scim-matti: emails")
        expect(matti.id != maija.id, "both users got the same id")
        self.summary["created"] = 2

        self.enter("GET /Users/{id} scim-maija")
        read = self.read_user(maija.id)
        equal(get(read, "userName"), MAIJA, "read scim-maija: userName")
        equal(get(read, "name.familyName"), "Meikäläinen", "read scim-maija: name.familyName")
        equal(emails(read), ["maija@example.fi"], "read scim-maija: emails")
        equal(read.meta.version, maija.meta.version, "read scim-maija: meta.version changed without a write")

        # Filters --------------------------------------------------------------
        both = sorted([MAIJA, MATTI])
        filters = [
            (f'userName eq "{MAIJA}"', [MAIJA]),
            ('userName sw "scim-"', both),
            ('name.familyName co "käläi"', [MAIJA]),
            ('userName sw "scim-" and active eq true', both),
        ]
        totals = []
        for filter_, expected in filters:
            self.enter(f"GET /Users?filter={filter_}")
            total, names = self.filtered_user_names(filter_)
            equal(names, expected, f"filter {filter_!r}: userNames")
            totals.append(total)
        self.summary["filters"] = totals

        # PATCH ----------------------------------------------------------------
        self.enter("PATCH /Users/{id} scim-maija (If-Match: its version)")
        patched = self.scim.modify(
            maija,
            PatchOp[self.User](
                operations=[
                    {"op": "replace", "path": "name.givenName", "value": "Maija-Liisa"},
                    {"op": "replace", "path": "active", "value": False},
                ]
            ),
        )
        if patched is not None:  # 200 with the resource; 204 is as good
            equal(get(patched, "name.givenName"), "Maija-Liisa", "PATCH response: name.givenName")
            equal(get(patched, "active"), False, "PATCH response: active")

        self.enter("GET /Users/{id} scim-maija after PATCH")
        maija_now = self.read_user(maija.id)
        equal(get(maija_now, "name.givenName"), "Maija-Liisa", "after PATCH: name.givenName")
        equal(get(maija_now, "name.familyName"), "Meikäläinen", "after PATCH: name.familyName")
        equal(get(maija_now, "active"), False, "after PATCH: active")
        equal(get(maija_now, "userName"), MAIJA, "after PATCH: userName")
        equal(emails(maija_now), ["maija@example.fi"], "after PATCH: emails")
        expect(
            maija_now.meta.version != maija.meta.version,
            f"after PATCH: meta.version is still {maija.meta.version!r}",
        )
        self.summary["patched"] = True

        self.enter("GET /Users?filter=... and active eq true, after PATCH")
        total, names = self.filtered_user_names('userName sw "scim-" and active eq true')
        equal(names, [MATTI], "after PATCH, filter 'userName sw \"scim-\" and active eq true': userNames")
        self.summary["filter_after_patch"] = total

        self.enter("PATCH /Users/{id} scim-maija with a stale If-Match")
        try:
            self.scim.modify(
                maija,  # still carries the version from before the PATCH
                PatchOp[self.User](operations=[{"op": "replace", "path": "preferredLanguage", "value": "sv"}]),
            )
        except PreconditionFailedException as exc:
            equal(exc.status, 412, "stale If-Match: Error status")
        else:
            raise CheckFailed("PATCH with a stale If-Match succeeded, expected 412")
        after_412 = self.read_user(maija.id)
        equal(get(after_412, "preferredLanguage"), "fi", "a PATCH refused with 412 changed preferredLanguage")
        equal(after_412.meta.version, maija_now.meta.version, "a PATCH refused with 412 changed meta.version")
        self.summary["stale_if_match"] = 412

        # PUT ------------------------------------------------------------------
        self.enter("PUT /Users/{id} scim-matti with a new email (If-Match)")
        matti_before = self.read_user(matti.id)
        matti_before["emails"] = [{"value": "matti.virtanen@example.fi"}]
        replaced = self.scim.replace(matti_before)
        equal(replaced.id, matti.id, "PUT response: id")
        equal(get(replaced, "userName"), MATTI, "PUT response: userName")
        equal(emails(replaced), ["matti.virtanen@example.fi"], "PUT response: emails")

        self.enter("GET /Users/{id} scim-matti after PUT")
        matti_now = self.read_user(matti.id)
        equal(emails(matti_now), ["matti.virtanen@example.fi"], "after PUT: emails")
        equal(get(matti_now, "name.givenName"), "Matti", "after PUT: name.givenName")
        equal(get(matti_now, "active"), True, "after PUT: active")
        expect(
            matti_now.meta.version != matti.meta.version,
            f"after PUT: meta.version is still {matti.meta.version!r}",
        )
        self.summary["replaced"] = True

        # Groups ---------------------------------------------------------------
        self.enter("POST /Groups scim-kirjasto with scim-maija")
        group = self.scim.create(
            self.Group.model_validate({"displayName": GROUP, "members": [{"value": maija.id}]})
        )
        check_meta(group, "Group", "/Groups", "created group")
        equal(get(group, "displayName"), GROUP, "created group: displayName")
        equal(member_values(group), [maija.id], "created group: members")

        self.enter("PATCH /Groups/{id} add scim-matti")
        added = self.scim.modify(
            group,
            PatchOp[self.Group](operations=[{"op": "add", "path": "members", "value": [{"value": matti.id}]}]),
        )
        if added is not None:
            equal(member_values(added), sorted([maija.id, matti.id]), "PATCH add response: members")

        self.enter("GET /Groups/{id} after adding")
        group_now = self.read_group(group.id)
        equal(get(group_now, "displayName"), GROUP, "group after add: displayName")
        values = member_values(group_now)
        equal(values, sorted([maija.id, matti.id]), "group after add: members")
        self.summary["group_members"] = len(values)

        self.enter("PATCH /Groups/{id} remove scim-matti")
        removed = self.scim.modify(
            group_now,
            PatchOp[self.Group](operations=[{"op": "remove", "path": f'members[value eq "{matti.id}"]'}]),
        )
        if removed is not None:
            equal(member_values(removed), [maija.id], "PATCH remove response: members")

        self.enter("GET /Groups/{id} after removing")
        values = member_values(self.read_group(group.id))
        equal(values, [maija.id], "group after remove: members")
        self.summary["group_members_after_remove"] = len(values)

        # DELETE ---------------------------------------------------------------
        self.enter("DELETE /Users/{id} scim-maija (If-Match)")
        # Read again: joining a group may have changed its version.
        equal(self.scim.delete(self.read_user(maija.id)), None, "DELETE response")

        self.enter("GET /Users/{id} scim-maija after DELETE")
        try:
            gone = self.scim.query(self.User, maija.id)
        except NotFoundException as exc:
            equal(exc.status, 404, "GET after DELETE: Error status")
            equal(exc.source.status_code, 404, "GET after DELETE: HTTP status")
        else:
            raise CheckFailed(f"GET of the deleted user answered {gone!r}, expected 404")

        self.enter("GET /Users?filter=userName eq scim-maija after DELETE")
        total, names = self.filtered_user_names(f'userName eq "{MAIJA}"')
        equal(names, [], "after DELETE: filter userName eq")
        self.summary["deleted"] = True
        self.summary["filter_after_delete"] = total

        # Cleanup, checked too ------------------------------------------------
        self.enter("DELETE /Groups/{id} and /Users/{id} scim-matti")
        equal(self.scim.delete(self.Group, group.id), None, "DELETE group response")
        equal(self.scim.delete(self.User, matti.id), None, "DELETE scim-matti response")
        self.summary["cleaned_up"] = True

        self.summary["client"] = f"scim2-client {dist_version('scim2-client')}"
        return self.summary


def describe(exc: BaseException) -> str:
    """A message for a failure, with what the server sent when known."""
    lines = [f"{type(exc).__name__}: {exc}"]
    if isinstance(exc, SCIMException):
        error = exc.to_error()
        lines.append(f"server answered a SCIM Error: status={error.status} scimType={error.scim_type} detail={error.detail!r}")
    lines.extend(getattr(exc, "__notes__", []))
    source = getattr(exc, "source", None)
    if isinstance(source, httpx2.Response):
        request = source.request
        lines.append(f"response to {request.method} {request.url}: HTTP {source.status_code}, "
                     f"Content-Type {source.headers.get('content-type')!r}")
        lines.append(f"body: {source.text[:2000]}")
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        lines.append(f"caused by {type(cause).__name__}: {cause}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", metavar="BASE_URL", help="server root; SCIM is under BASE_URL/scim/v2")
    parser.add_argument("token", metavar="BEARER_TOKEN", help="bearer token sent on every request")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step to stderr")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors exit 1 like every other failure
        return 0 if exc.code == 0 else 1
    VERBOSE = args.verbose

    round_trip = RoundTrip(args.base_url, args.token, args.timeout)
    try:
        summary = round_trip.run()
    except (CheckFailed, SCIMClientException, SCIMException, ValidationError) as exc:
        print(f"SCIM round trip FAILED at step: {round_trip.step}\n{describe(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug here or an unexpected library error
        print(f"SCIM round trip FAILED at step: {round_trip.step}\n{describe(exc)}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 1
    finally:
        round_trip.http.close()

    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
