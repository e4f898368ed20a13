"""Validates FHIR R4 transaction bundles, one JSON object per line on stdin, with the
fhir.resources R4 (4.0.1) models: each bundle and every resource in it must parse as its
FHIR type. Prints one line per invalid bundle (its line number and the validator's message)
and a summary; exits 1 when any bundle is invalid or none was read.

Checks the repository's bundles only; never given patient data by the tests."""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle


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
                entries += 1
        except Exception as error:  # the validator's message is the point of the output
            bad += 1
            print(f"line {number}: {error}")
    print(f"{total} bundles, {entries} entries, {bad} invalid")
    return 1 if bad or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
