"""Run every benchmark in bench/ in one go and report which met its target.

Each ``bench_*.py`` is a standalone script that prints its figures and exits non-zero when it
misses its target. Extra arguments (e.g. ``--database-url``) are not passed: run a script
directly for its options.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run each benchmark script in a subprocess; return 1 if any missed its target."""
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=here.parent).returncode != 0:
            failed.append(script.name)
    print("all benchmarks met their targets" if not failed else f"missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
