"""``make bench``: the benchmarks. Today that is the serving benchmark (benchmarks/serving.py).

python benchmarks/run.py            # full run: 3 s warm-up + 10 s per server and batch
python benchmarks/run.py --quick    # smoke run: 1 s + 2 s
python benchmarks/run.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving

if __name__ == "__main__":
    sys.exit(serving.main(serving.parse()))
