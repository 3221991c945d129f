"""`--engine ray`: the same stage functions over Ray Data.

The inputs are split into parts (parquet row groups; a JSONL file or `datasets` folder is one
part); a Ray dataset of part numbers goes through `map_batches`, and each task reads its
part, runs `stage.process` chunk by chunk and writes the chunk files (`chunk-PPPPPP-CCCC`,
so file order is input order) exactly as the local engine does; the driver then makes the
stage's selection and writes the outputs. A chunk already done is not redone, so a rerun
resumes. The work folder must be on storage every Ray node sees (local disk on one machine).

Ray connects to `RAY_ADDRESS` when set, else starts (or joins) a local instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepvision.curate.stage import Stage, process_chunk, save_chunk
from deepvision.data.reader import parse_batch
from deepvision.data.sources import Part, Source
from deepvision.errors import UsageError


class _PartRunner:
    """The map_batches function: part numbers in, chunk done markers out."""

    def __init__(
        self, stage: Stage, parts: list[Part], schema: pa.Schema, work: str, chunk_size: int
    ) -> None:
        self.stage, self.parts, self.schema = stage, parts, schema
        self.work, self.chunk_size = Path(work), chunk_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        dones = []
        for i in batch["part"]:
            part = self.parts[int(i)]
            for j, rb in enumerate(part.batches(self.chunk_size)):
                prefix = self.work / f"chunk-{int(i):06d}-{j:04d}"
                marker = prefix.with_suffix(".done.json")
                if marker.exists():
                    done = json.loads(marker.read_text())
                    done["resumed"] = True
                else:
                    pb = parse_batch(rb, src=part)
                    result = process_chunk(self.stage, pb.problems, prefix)
                    done = save_chunk(self.stage, prefix, self.schema, result, pb.rejects)
                dones.append(json.dumps(done))
        return {"done": dones}


def process_with_ray(
    stage: Stage,
    inputs: list[Path],
    sources: list[Source],
    schema: pa.Schema,
    work: Any,
    chunk_size: int,
) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "ray needs Ray installed: pip install 'deepvision[ray]'", param="engine"
        ) from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, log_to_driver=False)
    parts = [part for src in sources for part in src.parts()]
    if not parts:
        return
    ds = ray.data.from_items([{"part": i} for i in range(len(parts))])
    ds = ds.map_batches(
        _PartRunner,
        fn_constructor_args=(stage, parts, schema, str(work.path), chunk_size),
        batch_size=1,
        concurrency=(1, max(1, int(ray.available_resources().get("CPU", 1)))),
    )
    for row in ds.iter_rows():
        yield json.loads(row["done"])
