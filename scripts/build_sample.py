"""Rebuild the embedded sample (src/deepvision/data/sample/deepvision-sample.parquet).

Run after a change to the synthetic engine or to the sample's pass-rate rule:
    .venv/bin/python scripts/build_sample.py            # rewrites the shipped file
    .venv/bin/python scripts/build_sample.py --out x.parquet
`tests/data/test_sample.py` checks that the shipped file is what this writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepvision.data.sample import SAMPLE_FILE, build_sample

SHIPPED = Path(__file__).resolve().parents[1] / "src/deepvision/data/sample" / SAMPLE_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED, help="where to write the sample")
    args = parser.parse_args()
    print(f"wrote {build_sample(args.out)}")


if __name__ == "__main__":
    main()
