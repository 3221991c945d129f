"""Build a tiny Qwen2.5-VL or Qwen3-VL model offline (random weights, byte-level BPE trained on
the spot): enough for `transformers serve`, generation and training steps on CPU in tests.
Nothing is downloaded. Needs the `tiny` extra: torch, torchvision, transformers, tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>"]  # fmt: skip

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or part['type'] == 'image_url' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Find the area of the triangle in the figure. The answer is \\boxed{12}.",
    "Step by step: the angle is 30 degrees, so x = 60. Final answer \\boxed{60}.",
    "Which option is correct? A, B, C or D. The answer is B.",
    "The slope of the line is 2 and the intercept is 1, so y = 2x + 1.",
] * 50


FAMILIES = ("qwen2_5_vl", "qwen3_vl")


def build_tiny_vlm(
    out: str | Path, seed: int = 0, family: str = "qwen2_5_vl", extra_tokens: tuple[str, ...] = ()
) -> Path:
    """Write a tiny Qwen2.5-VL or Qwen3-VL (model, tokenizer, processor) to `out`; return it.

    `extra_tokens` become whole (non-special) tokens, e.g. `\\boxed{A}` for a task whose answers
    a random model should be able to emit in one step."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} (one of {', '.join(FAMILIES)})")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    bpe.train_from_iterator(_CORPUS, trainer)
    from tokenizers import decoders

    bpe.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", bos_token=None)  # fmt: skip
    tok.chat_template = CHAT_TEMPLATE
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    if family == "qwen3_vl":
        return _save_qwen3_vl(out, tok, ids)
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
    try:
        from transformers import Qwen2VLVideoProcessor

        processor = Qwen2_5_VLProcessor(image_processor, tok, Qwen2VLVideoProcessor(),
                                        chat_template=CHAT_TEMPLATE)  # fmt: skip
    except ImportError:  # older transformers: no video processor argument
        processor = Qwen2_5_VLProcessor(image_processor, tok, chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])  # fmt: skip
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  fullatt_block_indexes=[0], window_size=56)  # fmt: skip
    return _save(out, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, text, vision, ids,
                 processor, tok)  # fmt: skip


def restrict_generation(model_dir: str | Path, allowed: tuple[str, ...]) -> list[list[int]]:
    """Let the model at `model_dir` generate only the tokens `allowed` (each a whole token of
    its tokenizer); returns the `bad_words_ids` that ban every other token.

    They are saved in the model's generation_config.json, which `transformers serve` starts
    each request from (and a trained checkpoint keeps), so served answers are constrained the
    same way; a trainer that builds its own generation settings (TRL) needs them passed."""
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    keep = {tok.convert_tokens_to_ids(t) for t in allowed}
    if tok.unk_token_id in keep or None in keep or len(keep) != len(allowed):
        raise ValueError(f"not whole, distinct tokens of {model_dir}: {allowed}")
    bad = [[i] for i in range(len(tok)) if i not in keep]
    config = GenerationConfig.from_pretrained(model_dir)
    config.bad_words_ids = bad
    config.save_pretrained(model_dir)
    return bad


def _save_qwen3_vl(out: Path, tok: Any, ids: dict[str, int]) -> Path:
    """Qwen3-VL: 16-pixel patches, deepstack visual features, interleaved M-RoPE."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    image_processor = Qwen2VLImageProcessor(
        patch_size=16, merge_size=2, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 16
    )
    video_processor = Qwen3VLVideoProcessor(patch_size=16, merge_size=2)
    processor = Qwen3VLProcessor(image_processor, tok, video_processor, chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                max_position_embeddings=2048,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                 "mrope_section": [2, 1, 1], "mrope_interleaved": True},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])  # fmt: skip
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                  patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                  num_position_embeddings=64, deepstack_visual_indexes=[1])  # fmt: skip
    return _save(out, Qwen3VLConfig, Qwen3VLForConditionalGeneration, text, vision, ids,
                 processor, tok)  # fmt: skip


def _save(out: Path, config_cls: Any, model_cls: Any, text: dict, vision: dict,
          ids: dict[str, int], processor: Any, tok: Any) -> Path:  # fmt: skip
    """Random weights from the family's config (special token ids set at both levels, as
    generation reads them from the top), saved with the processor and tokenizer."""
    config = config_cls(text_config=text, vision_config=vision,
                        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                        vision_start_token_id=ids["<|vision_start|>"],
                        vision_end_token_id=ids["<|vision_end|>"])  # fmt: skip
    for k in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size"):
        setattr(config, k, text[k])
    model = model_cls(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tok.save_pretrained(out)
    return out
