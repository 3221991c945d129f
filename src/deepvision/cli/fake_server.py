"""`python -m deepvision.cli.fake_server`: run the fault-injecting OpenAI-compatible test
server (deepvision.llm.fake_server) from the command line; also stands in for `vllm serve`
in tests (unknown flags are ignored)."""

from __future__ import annotations

import argparse

from deepvision.llm.fake_server import FakeServer, Faults


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible fake server with fault injection")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    for name in (
        "fail-rate",
        "rate-limit-rate",
        "reset-rate",
        "malformed-rate",
        "slow-rate",
        "bad-request-rate",
    ):
        ap.add_argument(f"--{name}", type=float, default=0.0)
    ap.add_argument("--slow-s", type=float, default=2.0)
    ap.add_argument("--ignore-n", action="store_true")
    ap.add_argument("--reply", default="")
    ap.add_argument("--seed", type=int, default=0)
    a, _unknown = ap.parse_known_args(argv)  # tolerate vllm-style flags when used as a fake vllm
    faults = Faults(
        a.fail_rate,
        a.rate_limit_rate,
        0.05,
        a.reset_rate,
        a.malformed_rate,
        a.slow_rate,
        a.slow_s,
        a.bad_request_rate,
        a.ignore_n,
        a.reply,
        a.seed,
    )
    server = FakeServer(faults, a.host, a.port)
    print(f"fake server listening on {server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
