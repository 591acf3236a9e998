"""``make bench``: the benchmarks. By default the serving benchmark (benchmarks/serving.py).

python benchmarks/run.py                    # serving: 3 s warm-up + 10 s per server, batch
python benchmarks/run.py --quick            # serving smoke run: 1 s + 2 s
python benchmarks/run.py --help             # serving options
python benchmarks/run.py operator-scale ... # benchmarks/operator_scale.py with its options
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITES = {"operator-scale": HERE / "operator_scale.py"}


def main(argv: list[str]) -> int:
    if argv and argv[0] in SUITES:
        sys.argv = [str(SUITES[argv[0]]), *argv[1:]]
        runpy.run_path(str(SUITES[argv[0]]), run_name="__main__")  # exits with its own code
        return 0
    sys.path.insert(0, str(HERE))
    import serving

    return serving.main(serving.parse(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
