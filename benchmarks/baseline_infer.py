"""Reference-style inference client (the baseline): encode every problem's images into data
URIs first (open with PIL, save as PNG, base64, as the reference scripts do), then keep a fixed
number of requests in flight, append results, skip done ids.

Usage: python baseline_infer.py PROBLEMS.jsonl BASE_URL OUT.jsonl CONCURRENCY
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import time
from pathlib import Path

import httpx
from PIL import Image


def encode_image(path: Path) -> str:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def main(src: Path, url: str, out: Path, concurrency: int) -> None:
    t0 = time.perf_counter()
    done = set()
    if out.exists():
        done = {json.loads(x)["id"] for x in out.read_text().splitlines() if x.strip()}
    items = []
    for line in src.read_text().splitlines():
        obj = json.loads(line)
        if obj["id"] in done:
            continue
        uris = [encode_image(src.parent / p) for p in obj["images"]]
        text = obj["messages"][-1]["content"].replace("<image>", "")
        content = [{"type": "image_url", "image_url": {"url": u}} for u in uris]
        content.append({"type": "text", "text": text})
        items.append((obj, {"model": "m", "messages": [{"role": "user", "content": content}]}))
    first = None
    sem = asyncio.Semaphore(concurrency)
    fh = out.open("a")
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(obj, body):
            nonlocal first
            async with sem:
                if first is None:
                    first = time.perf_counter() - t0
                for _ in range(5):
                    try:
                        r = await client.post(url + "/chat/completions", json=body, timeout=600)
                        if r.status_code == 200:
                            obj["model_response"] = r.json()["choices"][0]["message"]["content"]
                            fh.write(json.dumps(obj) + "\n")
                            return
                    except httpx.HTTPError:
                        pass

        await asyncio.gather(*(one(o, b) for o, b in items))
    fh.close()
    print(f"first request after {first or 0:.2f} s")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])))
