"""Schemathesis hook: a scoped user never receives another household's data.

Loaded by scripts/api-fuzz.sh (SCHEMATHESIS_HOOKS). ANXIN_ALLOWED_HOUSEHOLDS lists the
household ids the fuzzing user may see (comma-separated); every `household_id` anywhere in
a JSON response, and every `id` of an object under a `/households` response, must be
one of them.
"""

import os

import schemathesis

ALLOWED = {h for h in os.environ.get("ANXIN_ALLOWED_HOUSEHOLDS", "").split(",") if h}


def _household_ids(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "household_id" and isinstance(v, str):
                yield v
            else:
                yield from _household_ids(v)
    elif isinstance(value, list):
        for v in value:
            yield from _household_ids(v)


def _listed_households(path, body):
    """The ids of the household objects a household route returns."""
    if path == "/households/{id}" and isinstance(body, dict):
        return [body.get("id")] if isinstance(body.get("id"), str) else []
    if path == "/households":
        items = body.get("items", []) if isinstance(body, dict) else body
        return [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]
    return []


@schemathesis.check
def no_foreign_household(ctx, response, case):
    if not ALLOWED or response.status_code >= 300:
        return None
    if "json" not in response.headers.get("content-type", [""])[0]:
        return None
    try:
        body = response.json()
    except Exception:
        return None
    seen = set(_household_ids(body)) | set(_listed_households(case.operation.path, body))
    foreign = sorted(h for h in seen if h not in ALLOWED)
    if foreign:
        raise AssertionError(f"{case.method} {case.formatted_path} returned households {foreign}")
    return None
