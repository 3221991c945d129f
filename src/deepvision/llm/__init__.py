"""Talk to models over OpenAI-compatible HTTP: one chat call with retries (`chat`, `asker`),
the async continuous-batching client with exactly-once resumable output (`infer`), sampling
presets, and server launchers for vLLM and `transformers serve` (`ServerGroup`)."""

from deepvision.llm.chat import asker, chat
from deepvision.llm.client import InferConfig, InferSummary, Request, infer
from deepvision.llm.endpoint import Endpoint
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.llm.serve import ServeConfig, ServeError, ServerGroup

__all__ = [
    "PRESETS",
    "Endpoint",
    "InferConfig",
    "InferSummary",
    "Request",
    "ServeConfig",
    "ServeError",
    "ServerGroup",
    "asker",
    "chat",
    "infer",
    "sampling_params",
]
