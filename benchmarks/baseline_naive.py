"""The naive baseline: what a one-off pandas script does with a DeepVision-103K file.

Loads the whole file with `pandas.read_parquet`, then converts and checks row by row.
Usage: python baseline_naive.py validate|validate-fast|stats|export FILE [OUT]
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def rows(path: str):
    df = pd.read_parquet(path)
    return df.to_dict("records")


def user_text(prompt) -> str:
    return next((m["content"] for m in prompt if m["role"] == "user"), "")


def validate(path: str, full: bool) -> int:
    bad = 0
    seen = set()
    for _i, row in enumerate(rows(path)):
        problems = []
        images = list(row["images"])
        if user_text(row["prompt"]).count("<image>") != len(images):
            problems.append("placeholder count")
        if not str(row["reward_model"]["ground_truth"]).strip():
            problems.append("empty answer")
        if not re.fullmatch(r"\d+/\d+", str(row["mimo-pass_rate"])):
            problems.append("pass rate")
        for col in ("domain-anno", "gpt5-mini-vision-anno", "q32-vision-anno"):
            try:
                json.loads(row[col])
            except (TypeError, ValueError):
                problems.append(col)
        h = hashlib.blake2b(row["question"].encode(), digest_size=10)
        for im in images:
            try:
                with Image.open(io.BytesIO(im["bytes"])) as img:
                    img.load() if full else img.verify()
            except Exception:
                problems.append("image")
            h.update(im["bytes"])
        if h.digest() in seen:
            problems.append("duplicate")
        seen.add(h.digest())
        bad += bool(problems)
    print(f"{bad} bad rows")
    return 1 if bad else 0


def stats(path: str, out: str) -> int:
    topics, knowledge, elements, pass_rates, sizes = Counter(), Counter(), Counter(), Counter(), []
    for row in rows(path):
        domain = json.loads(row["domain-anno"])
        topics[tuple(domain.get(f"Level_{k}") for k in range(1, 5))] += 1
        knowledge.update(domain.get("Knowledge", []))
        vision = json.loads(row["gpt5-mini-vision-anno"])
        for cat, items in vision.get("visual_elements", {}).items():
            elements.update(f"{cat}/{x}" for x in items)
        pass_rates[row["mimo-pass_rate"]] += 1
        for im in row["images"]:
            with Image.open(io.BytesIO(im["bytes"])) as img:
                sizes.append(img.size)
    report = {
        "topics": {"/".join(map(str, k)): v for k, v in topics.most_common()},
        "knowledge": dict(knowledge.most_common(50)),
        "elements": dict(elements),
        "pass_rates": dict(pass_rates),
        "images": len(sizes),
    }
    with open(out, "w") as f:
        json.dump(report, f)
    return 0


def export_verl(path: str, out: str) -> int:
    records = []
    for i, row in enumerate(rows(path)):
        rm = row["reward_model"]
        records.append(
            {
                "prompt": [{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
                "images": [{"bytes": im["bytes"]} for im in row["images"]],
                "data_source": row["data_source"],
                "ability": row["ability"],
                "reward_model": {
                    "style": "rule",
                    "ground_truth": rm["ground_truth"],
                    "equivalent_answers": list(rm["equivalent_answers"]),
                },
                "extra_info": {"index": i, "question": row["question"]},
            }
        )
    pq.write_table(pa.Table.from_pylist(records), out)
    return 0


if __name__ == "__main__":
    verb, path = sys.argv[1], sys.argv[2]
    if verb in ("validate", "validate-fast"):
        sys.exit(validate(path, full=verb == "validate"))
    if verb == "stats":
        sys.exit(stats(path, sys.argv[3]))
    if verb == "export":
        sys.exit(export_verl(path, sys.argv[3]))
    sys.exit(f"unknown verb {verb}")
