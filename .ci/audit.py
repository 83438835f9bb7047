"""pip-audit over a lock file, never passing silently.

pip-audit reports "No known vulnerabilities found" even when it could audit nothing (every
package skipped because the vulnerability service was out of reach), so this reads its JSON
report and says which case it was:

- known vulnerabilities in a locked version: listed, exit 1;
- the vulnerability database unreachable (packages skipped): one line saying so; exit 1 under CI
  (``CI`` set, as GitHub Actions does), exit 0 on a developer's machine without internet;
- everything audited and clean: one line, exit 0.

Services are tried in order (PyPI's JSON API, then OSV); the first that audits every package wins.

    python .ci/audit.py requirements/dev.lock
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVICES = ("pypi", "osv")


def audit(lock: Path, service: str) -> dict[str, list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--require-hashes",
         "--disable-pip", "--progress-spinner", "off", "--format", "json",
         "--vulnerability-service", service, "--timeout", "10"],
        capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": [{"name": "*", "skip_reason": reason}], "vulnerable": []}
    deps = report.get("dependencies", [])
    return {"skipped": [d for d in deps if d.get("skip_reason")],
            "vulnerable": [d for d in deps if d.get("vulns")],
            "audited": [d for d in deps if not d.get("skip_reason")]}


def _summary(result: dict[str, list[dict[str, object]]]) -> str:
    skipped = result["skipped"]
    if len(skipped) == 1 and skipped[0]["name"] == "*":
        return str(skipped[0]["skip_reason"]).split("(", 1)[0].strip()[:80]
    return f"{len(skipped)} of {len(skipped) + len(result['audited'])} packages skipped"


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "requirements/dev.lock")
    in_ci = bool(os.environ.get("CI"))
    results: dict[str, dict[str, list[dict[str, object]]]] = {}
    for service in SERVICES:
        results[service] = result = audit(lock, service)
        if result["vulnerable"]:
            for dep in result["vulnerable"]:
                for vuln in dep["vulns"]:  # type: ignore[union-attr]
                    fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
                    print(f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} "
                          f"(fixed in: {fixes})")
            return 1
        if not result["skipped"]:
            print(f"pip-audit ({service}): {len(result['audited'])} locked packages audited, "
                  f"no known vulnerabilities")
            return 0
    why = "; ".join(f"{name}: {_summary(r)}" for name, r in results.items())
    print(f"pip-audit: vulnerability database unreachable, lock NOT audited ({why})"
          + ("" if in_ci else "; not failing outside CI"))
    return 1 if in_ci else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
