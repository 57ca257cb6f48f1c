#!/usr/bin/env python3
"""The python-scim compliance checker (scim2-tester, third party) run against our SCIM API.

Usage: compliance.py BASE_URL BEARER_TOKEN [--timeout SECONDS]

The SCIM service is expected at BASE_URL + "/scim/v2". This runs the same checks as
`scim2 --url BASE_URL/scim/v2 test` (scim2-cli), through scim2-tester's `check_server`, and
prints ONE JSON line to stdout: a list of every check's result, each with its `key`
("RESOURCE_TYPE check_name [path]"), `status` (SUCCESS, ERROR, SKIPPED, ...) and `reason`.
It exits 0 whatever the results: judging them (and the exclusions) is the Rust test's job
(tests/scim_compliance.rs). The exit status is 1 only when the checker could not run.

Configuration (not exclusion): the checker fills every attribute with random values unless the
attribute's schema gives examples (`canonicalValues`). Our register validates some attributes
that the schemas describe as free strings, so before the checks the schemas we publish are
given valid examples here, for the checker only:
  - addresses.postalCode: the register keeps at most 16 characters (a random UUID has 36);
  - addresses.country: an ISO 3166-1 alpha-2 code, two characters;
  - homeMunicipality (municipal extension): a three-digit municipality code.
And one attribute is left out of the checker's models:
  - nationalId (municipal extension, write-only): the register accepts only valid Finnish
    personal identity codes, unique in the register, and only from clients granted the right to
    handle them; random strings are refused (400, or 403 without the right), and repeating a
    valid example would clash (409). tests/scim.rs covers national ids.
"""

import argparse
import json
import sys
import traceback
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import ResourceType
from scim2_models import Schema
from scim2_models import ScimProvider
from scim2_models import ServiceProviderConfig
from scim2_tester import check_server

SCIM_PREFIX = "/scim/v2"
MUNICIPAL_SCHEMA = "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User"

# Valid example values for attributes the register validates more strictly than their schema says.
EXAMPLES = {
    ("urn:ietf:params:scim:schemas:core:2.0:User", "addresses", "postalCode"): [
        "00100",
        "20100",
        "33100",
        "90100",
    ],
    ("urn:ietf:params:scim:schemas:core:2.0:User", "addresses", "country"): ["FI", "SE", "NO"],
    (MUNICIPAL_SCHEMA, "homeMunicipality", None): ["091", "853", "837", "564"],
}
LEFT_OUT = {(MUNICIPAL_SCHEMA, "nationalId")}


def configure(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for schema in schemas:
        sid = schema.get("id")
        schema["attributes"] = [
            a for a in schema.get("attributes", []) if (sid, a.get("name")) not in LEFT_OUT
        ]
        for attr in schema["attributes"]:
            if (sid, attr.get("name"), None) in EXAMPLES:
                attr["canonicalValues"] = EXAMPLES[(sid, attr["name"], None)]
            for sub in attr.get("subAttributes") or []:
                key = (sid, attr.get("name"), sub.get("name"))
                if key in EXAMPLES:
                    sub["canonicalValues"] = EXAMPLES[key]
    return schemas


def result_key(result: Any) -> str:
    urn = result.data.get("urn") if isinstance(result.data, dict) else None
    parts = [result.resource_type or "-", result.title or "?"]
    if urn:
        parts.append(str(urn))
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", metavar="BASE_URL")
    parser.add_argument("token", metavar="BEARER_TOKEN")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    base_url = args.base_url.rstrip("/")
    if not base_url.endswith(SCIM_PREFIX):
        base_url += SCIM_PREFIX
    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {args.token}"},
        timeout=args.timeout,
    )
    try:
        raw_schemas = http.get("/Schemas").raise_for_status().json()["Resources"]
        schemas = [Schema.model_validate(s) for s in configure(raw_schemas)]
        resource_types = [
            ResourceType.model_validate(r)
            for r in http.get("/ResourceTypes").raise_for_status().json()["Resources"]
        ]
        config = ServiceProviderConfig.model_validate(
            http.get("/ServiceProviderConfig").raise_for_status().json()
        )
        client = SyncSCIMClient(http)
        client.provider = ScimProvider.from_discovery(schemas, resource_types, config)
        results = check_server(client)
    except Exception:  # noqa: BLE001 - the checker could not run at all
        traceback.print_exc()
        return 1
    out = [
        {
            "key": result_key(r),
            "status": r.status.name,
            "reason": r.reason,
        }
        for r in results
    ]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
