"""Parses Prometheus text exposition from stdin with the official Python client's parser
(prometheus_client.parser) and prints what it read as JSON:

    {"families": [{"name", "type", "documentation", "unit"}],
     "samples": [{"family", "name", "labels": {...}, "value"}]}

Exits non-zero (with the parser's message) when the text does not parse, so a malformed
exposition fails the test that drives this.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    families = []
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            families.append(
                {
                    "name": family.name,
                    "type": family.type,
                    "documentation": family.documentation,
                    "unit": family.unit,
                }
            )
            for sample in family.samples:
                value = sample.value
                # JSON has no infinities or NaN; the tests compare finite values only.
                if math.isinf(value) or math.isnan(value):
                    value = str(value)
                samples.append(
                    {
                        "family": family.name,
                        "name": sample.name,
                        "labels": dict(sample.labels),
                        "value": value,
                    }
                )
    except Exception as error:  # the parser raises ValueError and friends
        print(f"unparsable exposition: {error}", file=sys.stderr)
        return 1
    json.dump({"families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
