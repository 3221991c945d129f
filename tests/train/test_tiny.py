"""`deepvision train tiny-model`: a tiny Qwen2.5-VL built offline that really sees images."""

import io

from PIL import Image


def test_tiny_model_builds_offline_and_generates_from_an_image(cli, tmp_path):
    out = tmp_path / "tiny"
    res = cli("train", "tiny-model", "--out", out)
    assert res.code == 0, res.text
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    buf = io.BytesIO()
    Image.new("RGB", (56, 56), (200, 30, 30)).save(buf, format="PNG")
    image = Image.open(io.BytesIO(buf.getvalue()))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Find x."}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert "pixel_values" in inputs and inputs["image_grid_thw"].shape == (1, 3)
    n_pad = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_pad == int(inputs["image_grid_thw"].prod()) // 4  # one token per merged patch
    with torch.no_grad():
        gen = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] > inputs["input_ids"].shape[1]


def test_tiny_model_refuses_to_overwrite_and_unknown_families(cli, tmp_path):
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = cli("train", "tiny-model", "--out", out)
    assert res.code == 2 and "--overwrite" in res.err
    assert (out / "keep.txt").read_text() == "mine"
    res = cli("train", "tiny-model", "--out", tmp_path / "x", "--family", "llama")
    assert res.code == 2 and "--family" in res.err


def test_tiny_qwen3_vl_builds_offline_and_sees_the_image(cli, tmp_path):
    out = tmp_path / "tiny3"
    res = cli("train", "tiny-model", "--family", "qwen3_vl", "--out", out)
    assert res.code == 0, res.text

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[Image.new("RGB", (64, 64), (0, 90, 200))],
                       return_tensors="pt")  # fmt: skip
    n_pad = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_pad == int(inputs["image_grid_thw"].prod()) // 4 > 0
    with torch.no_grad():  # a different image changes the logits: pixels reach the model
        a = model(**inputs).logits[0, -1]
        other = processor(text=[text], images=[Image.new("RGB", (64, 64), (250, 250, 0))],
                          return_tensors="pt")  # fmt: skip
        b = model(**other).logits[0, -1]
    assert not torch.allclose(a, b)
