"""``python -m controlplane.prometheus > alerts/canonical.rules.yml``."""

import sys

from controlplane.prometheus.canonical import canonical_text

sys.stdout.write(canonical_text())
