"""Talk to models over OpenAI-compatible HTTP. (The async continuous-batching client and the
server launchers are issue #4; `chat` is the single-request call they will build on.)"""

from deepvision.llm.chat import ChatError, chat

__all__ = ["ChatError", "chat"]
