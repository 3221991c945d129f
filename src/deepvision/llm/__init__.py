"""Talk to models over OpenAI-compatible HTTP: one `Endpoint` config, one HTTP layer and retry
policy (`llm.http`), one chat call with retries (`chat`, `asker`), the async
continuous-batching client with exactly-once resumable output (`infer`), requests from
inference JSONL, sampling presets, and server launchers for vLLM and `transformers serve`
(`ServerGroup`)."""

from deepvision.llm.chat import Asker, asker, chat
from deepvision.llm.client import InferConfig, InferSummary, Request, infer
from deepvision.llm.endpoint import Endpoint
from deepvision.llm.http import ModelSession, check_endpoint, retry_delay
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.llm.serve import ServeConfig, ServeError, ServerGroup

__all__ = [
    "PRESETS",
    "Asker",
    "Endpoint",
    "InferConfig",
    "InferSummary",
    "ModelSession",
    "Request",
    "ServeConfig",
    "ServeError",
    "ServerGroup",
    "asker",
    "chat",
    "check_endpoint",
    "infer",
    "retry_delay",
    "sampling_params",
]
