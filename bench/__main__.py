"""Run every benchmark under bench/ (or the ones named): ``python -m bench [NAME...]``.

Each benchmark runs its anchor and sahab side by side in the same process and prints
the ratio, because the machines are shared and absolute numbers drift.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                           if m.name.startswith("bench_"))
    for name in names:
        module_name = name if name.startswith("bench_") else f"bench_{name}"
        module = importlib.import_module(f"bench.{module_name}")
        print(f"== {module.__name__}: {module.__doc__.strip().splitlines()[0]}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
