"""`python -m deepvision.cli.fake_server`: run the fault-injecting OpenAI-compatible test
server (deepvision.llm.fake_server) from the command line; also stands in for `vllm serve`
in tests (unknown flags are ignored).

Every mode's rate is a flag named after its `Faults` field (`--fail-rate`, `--hang-rate`,
`--usage-list-rate`, ...), so the command line offers exactly what `Faults` does."""

from __future__ import annotations

import argparse
from dataclasses import fields

from deepvision.llm.fake_server import FakeServer, Faults


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parser() -> argparse.ArgumentParser:
    """One flag per `Faults` field (its type and default), plus host, port, models, API key."""
    ap = argparse.ArgumentParser(description="OpenAI-compatible fake server with fault injection")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--served-model-name", dest="models", action="append", default=[])
    ap.add_argument("--api-key", default=None, help="Answer 401 without this bearer key.")
    for f in fields(Faults):
        if f.type in ("bool", bool):
            ap.add_argument(_flag(f.name), dest=f.name, action="store_true")
        else:
            kind = {"float": float, "int": int, "str": str}[str(f.type)]
            ap.add_argument(_flag(f.name), dest=f.name, type=kind, default=f.default)
    return ap


def main(argv: list[str] | None = None) -> None:
    a, _unknown = parser().parse_known_args(argv)  # vllm-style flags, when used as a fake vllm
    faults = Faults(**{f.name: getattr(a, f.name) for f in fields(Faults)})
    server = FakeServer(faults, a.host, a.port, models=a.models, api_key=a.api_key)
    print(f"fake server listening on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
