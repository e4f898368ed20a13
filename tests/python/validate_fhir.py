"""Validates FHIR R4 transaction bundles, one JSON object per line on stdin, with the
fhir.resources R4 (4.0.1) models: each bundle and every resource in it must parse as its
FHIR type (required elements present, no unknown element, primitives well formed), and the
status-like codes must be in the value sets R4 binds as required. Prints one line per invalid bundle (its line number and the validator's message)
and a summary; exits 1 when any bundle is invalid or none was read.

Checks the repository's bundles only; never given patient data by the tests."""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle


# The value sets FHIR R4 binds as "required" for the codes the bundles write; the models check
# a code's form, not its value set, so these are checked here (from the R4 specification).
REQUIRED = {
    ("Observation", "status"): {"registered", "preliminary", "final", "amended", "corrected",
                                "cancelled", "entered-in-error", "unknown"},
    ("DiagnosticReport", "status"): {"registered", "partial", "preliminary", "final", "amended",
                                     "corrected", "appended", "cancelled", "entered-in-error",
                                     "unknown"},
    ("ServiceRequest", "status"): {"draft", "active", "on-hold", "revoked", "completed",
                                   "entered-in-error", "unknown"},
    ("ServiceRequest", "intent"): {"proposal", "plan", "directive", "order", "original-order",
                                   "reflex-order", "filler-order", "instance-order", "option"},
    ("ServiceRequest", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Immunization", "status"): {"completed", "entered-in-error", "not-done"},
    ("Encounter", "status"): {"planned", "arrived", "triaged", "in-progress", "onleave",
                              "finished", "cancelled", "entered-in-error", "unknown"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}


def check_codes(resource: dict) -> None:
    kind = resource.get("resourceType")
    for (rtype, field), allowed in REQUIRED.items():
        if kind == rtype and field in resource and resource[field] not in allowed:
            raise ValueError(f"{kind}.{field} = {resource[field]!r} is not in its required value set")


def main() -> int:
    if fhir.resources.__fhir_version__ != "4.0.1":
        print(f"fhir.resources validates FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1")
        return 2
    total = bad = entries = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        total += 1
        try:
            data = json.loads(line)
            bundle = Bundle.parse_obj(data)
            if bundle.type != "transaction":
                raise ValueError(f"bundle type is {bundle.type}, not transaction")
            for entry in bundle.entry or []:
                if entry.request is None or entry.resource is None or entry.fullUrl is None:
                    raise ValueError("an entry lacks its request, resource or fullUrl")
            for entry in data.get("entry", []):
                check_codes(entry["resource"])
                entries += 1
        except Exception as error:  # the validator's message is the point of the output
            bad += 1
            print(f"line {number}: {error}")
    print(f"{total} bundles, {entries} entries, {bad} invalid")
    return 1 if bad or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
