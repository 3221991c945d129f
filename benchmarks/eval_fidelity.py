"""Benchmark: `deepvision eval run` on the benchmarks' official files, against an oracle server
that answers every item with its official gold and a server that answers every item wrong,
each phrasing answers the way models do (boxed letter, boxed option text, an `Answer:` line,
a free-form sentence, several letters in any order).

DATA_DIR holds snapshots of the benchmarks' repositories under the names a user gives them
(`git clone` or `git archive` of each): MATH-V (mathllm/MATH-V), We-Math (We-Math/We-Math),
LogicVista (Yijia-Xiao/LogicVista) ship their data and images and are read as they are;
MMMU (MMMU-Benchmark/MMMU), M3CoT (LightChen233/M3CoT) and MathVerse (ZrrSkywalker/MathVerse)
keep their data on the Hugging Face Hub, so their repositories' real records (MMMU's answer
dictionary and example outputs, MMMU-Pro's model outputs, M3CoT's experiment outputs,
MathVerse's `testmini_text_only.json`) are written into the Hub layouts with stand-in images.

The servers know the items only from the official files (question text and image bytes ->
record), never from our loader. Per benchmark the script prints the items of the official
files and the items loaded, the oracle's and the wrong server's accuracy, and every failure
with its reason; then it checks, on LogicVista, that injected HTTP 400s leave every failed
item's reason on disk and a partial figure, and that `--overwrite` with another model shows
only the new model's numbers.

    python benchmarks/eval_fidelity.py DATA_DIR [--benchmarks mathvision,wemath] [--out DIR]
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import io
import json
import logging
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from _common import machine
from deepvision.cli.main import main as deepvision
from deepvision.llm.fake_server import FakeServer, Faults
from deepvision.records import EvalFiles, iter_jsonl

OUT = Path(__file__).resolve().parent / "out" / "eval_fidelity"
ORDER = (
    "wemath",
    "mathvision",
    "mathverse_vision",
    "logic_vista",
    "mmmu",
    "mmmu_pro",
    "mmmu_pro_vision",
    "m3cot",
)


# ------------------------------------------------------------------ the official records


@dataclass
class Official:
    """One record of an official file, as the servers know it."""

    bench: str
    id: str
    text: str  # the question as shipped (matched against the prompt sent)
    images: list[bytes]  # the image bytes a loader should send
    gold: str  # as shipped
    options: list[str] | None = None  # option texts as shipped
    letters_only: str = ""  # multiple choice whose options are drawn in the image
    shown: bool = True  # whether the options are in the text sent to the model
    accepted: list[str] = field(default_factory=list)  # several accepted golds (MMMU open)


def stand_in_image(key: str) -> bytes:
    """A small PNG whose pixels come from `key`'s hash: one per item, never two alike."""
    digest = hashlib.sha512(key.encode()).digest()
    im = Image.new("RGB", (4, 4))
    im.putdata([tuple(digest[i : i + 3]) for i in range(0, 48, 3)])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def read_mathvision(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    rows = [json.loads(x) for x in (repo / "data" / "test.jsonl").read_text().splitlines() if x]
    out = []
    for r in rows:
        options = r["options"] or None
        letters = "".join(options) if options and all(len(o) == 1 for o in options) else ""
        image = (repo / r["image"]).read_bytes()
        out.append(
            Official(
                "mathvision",
                str(r["id"]),
                r["question"],
                [image],
                r["answer"],
                None if letters else options,
                letters,
            )
        )
    return out, repo.parent


def read_wemath(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    out = []
    for r in json.loads((repo / "data" / "testmini.json").read_text()):
        image = (repo / "data" / r["image_path"]).read_bytes()
        out.append(
            Official(
                "wemath",
                f"{r['ID']}@{r['key']}",
                r["question"],
                [image],
                r["answer"],
                split_options(r["option"]),
            )
        )
    return out, repo.parent


def read_logicvista(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    out = []
    for key, r in json.loads((repo / "data" / "dataset.json").read_text()).items():
        image = (repo / "data" / "images" / r["imagename"]).read_bytes()
        out.append(
            Official(
                "logic_vista", key, r["question"], [image], r["answer"], letters_only="ABCDEFGHI"
            )
        )
    return out, repo.parent


def split_options(s: str) -> list[str] | None:
    """WeMath's option string split the plain way (`A. x;B. y`), for the oracle's option-text
    replies; None when it does not split that way (the oracle then answers letters)."""
    parts = re.split(r"\s*[;；]\s*(?=[A-H][.．])", s.strip())
    heads = [re.match(r"([A-H])[.．]\s*", p) for p in parts]
    if len(parts) < 2 or not all(heads):
        return None
    if [h.group(1) for h in heads if h] != [chr(65 + i) for i in range(len(parts))]:
        return None
    return [p[h.end() :].strip() for p, h in zip(parts, heads, strict=True) if h]


IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_parquet(path: Path, rows: list[dict], images: int) -> None:
    """Rows in the Hub's parquet layout; `image_1`..`image_k` (or `image`) as Image structs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [k for k in rows[0] if not k.startswith("image")]
    cols = {k: pa.array([r.get(k) for r in rows], pa.string()) for k in names}
    image_cols = ["image"] if images == 0 else [f"image_{k}" for k in range(1, images + 1)]
    for k in image_cols:
        cols[k] = pa.array([r.get(k) for r in rows], IMAGE)
    pq.write_table(pa.table(cols), path)


def read_mmmu(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    """MMMU validation: golds from `answer_dict_val.json`, options from the example outputs'
    `index2ans`; the question text is not in the repository: a stand-in naming the item with
    an `<image 1>` marker."""
    base = repo / "mmmu"
    golds = json.loads((base / "answer_dict_val.json").read_text())
    choices = {}
    for f in sorted((base / "example_outputs" / "qwen_vl").glob("*/output.json")):
        for r in json.loads(f.read_text()):
            choices[r["id"]] = r.get("index2ans") or {}
    out, by_subject = [], {}
    for pid, g in golds.items():
        subject = "_".join(pid.split("_")[1:-1])
        image = stand_in_image(pid)
        options = list(choices.get(pid, {}).values()) or None
        gold = g["ground_truth"]
        qtype = "multiple-choice" if g["question_type"] == "multiple-choice" else "open"
        text = f"<image 1> Item {pid}: which is right?"
        by_subject.setdefault(subject, []).append(
            {
                "id": pid,
                "question": text,
                "options": str(options or []),
                "explanation": "",
                "img_type": "['Diagrams']",
                "answer": str(gold),
                "topic_difficulty": "Medium",
                "question_type": qtype,
                "subfield": subject,
                "image_1": {"bytes": image, "path": f"{pid}_1.png"},
            }
        )
        accepted = [str(x) for x in gold] if isinstance(gold, list) else []
        out.append(
            Official(
                "mmmu",
                pid,
                f"Item {pid}: which is right?",
                [image],
                str(gold),
                options,
                accepted=accepted,
            )
        )
    for subject, rows in by_subject.items():
        write_parquet(stage / "MMMU" / subject / "validation-00000-of-00001.parquet", rows, 7)
    return out, stage


def read_mmmu_pro(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    """MMMU-Pro: the records of the repository's model outputs (official fields), the
    `standard (10 options)` config with stand-in images for every `<image k>` marker, and the
    `vision` config (id, image, options, answer, subject)."""
    out_dir = repo / "mmmu-pro" / "output"
    out = []
    standard, vision = [], []
    for line in (out_dir / "gpt-4o_standard(10 options)_direct.jsonl").read_text().splitlines():
        r = json.loads(line)
        options = ast.literal_eval(r["options"])
        marks = sorted({int(k) for k in re.findall(r"<image (\d+)>", r["question"] + r["options"])})
        images = {k: stand_in_image(f"{r['id']}/{k}") for k in marks}
        row = {
            k: r[k]
            for k in (
                "id",
                "question",
                "options",
                "explanation",
                "img_type",
                "answer",
                "topic_difficulty",
                "subject",
            )
        }
        for k, data in images.items():
            row[f"image_{k}"] = {"bytes": data, "path": f"{r['id']}_{k}.png"}
        standard.append(row)
        out.append(
            Official(
                "mmmu_pro", r["id"], r["question"], list(images.values()), r["answer"], options
            )
        )
        page = stand_in_image(f"{r['id']}/vision")
        vision.append(
            {
                "id": r["id"],
                "image": {"bytes": page, "path": f"{r['id']}.png"},
                "options": r["options"],
                "answer": r["answer"],
                "subject": r["subject"],
            }
        )
        out.append(
            Official("mmmu_pro_vision", r["id"], "", [page], r["answer"], options, shown=False)
        )
    write_parquet(
        stage / "MMMU_Pro" / "standard (10 options)" / "test-00000-of-00001.parquet", standard, 7
    )
    write_parquet(stage / "MMMU_Pro" / "vision" / "test-00000-of-00001.parquet", vision, 0)
    return out, stage


def read_m3cot(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    """M3CoT test: the official fields of the repository's GPT-4V experiment output (id,
    category, context, question, choices, answer, domain, topic), in the Hub's parquet layout
    with stand-in images."""
    src = repo / "experiment" / "zero-shot" / "gpt4v" / "direct.jsonl"
    rows, out = [], []
    for line in src.read_text().splitlines():
        r = json.loads(line)
        image = stand_in_image(r["id"])
        rows.append(
            {
                "id": r["id"],
                "category": r["category"],
                "image_id": r["image_id"],
                "question": r["question"],
                "choices": str(r["choices"]),
                "context": r["context"],
                "answer": r["answer"],
                "rationale": "",
                "split": "test",
                "domain": r["domain"],
                "topic": r["topic"],
                "image": {"bytes": image, "path": f"{r['id']}.png"},
            }
        )
        out.append(Official("m3cot", r["id"], r["question"], [image], r["answer"], r["choices"]))
    write_parquet(stage / "M3CoT" / "data" / "test-00000-of-00001.parquet", rows, 0)
    return out, stage


VISION_QUERY = {
    "multi-choice": "According to the question shown in the image, please first conduct "
    "reasoning, and then answer the question and provide the correct option letter, e.g., A, "
    "B, C, D, at the end.\nQuestion: ",
    "free-form": "According to the question shown in the image, please first conduct "
    "reasoning, and then answer the question and provide the final value, e.g., 1, 2.5, 300, "
    "at the end.\nQuestion: ",
}


def read_mathverse(repo: Path, stage: Path) -> tuple[list[Official], Path]:
    """MathVerse testmini: the repository holds the Text Only version; its Vision Only twin of
    each problem (same gold, question and options drawn in the image) is written beside it in
    `testmini.json`, with a stand-in image, as the Hub's testmini holds both."""
    text_only = json.loads((repo / "data" / "testmini_text_only.json").read_text())
    folder = stage / "MathVerse"
    (folder / "images_version_5").mkdir(parents=True, exist_ok=True)
    records, out = list(text_only), []
    for r in text_only:
        image = stand_in_image(f"mathverse/{r['problem_index']}")
        rel = f"images_version_5/image_{r['problem_index']}.png"
        (folder / rel).write_bytes(image)
        query = VISION_QUERY[r["question_type"]]
        records.append(
            {
                **r,
                "sample_index": f"v{r['sample_index']}",
                "problem_version": "Vision Only",
                "question": "",
                "image": rel,
                "query_wo": query,
                "query_cot": query,
            }
        )
        options = None
        if r["question_type"] == "multi-choice":
            options = re.findall(r"(?m)^[A-F][:.]\s*(.+)$", r["question"].split("Choices:")[-1])
        out.append(
            Official(
                "mathverse_vision",
                f"v{r['sample_index']}",
                "",
                [image],
                r["answer"],
                options or None,
                "ABCDE" if options else "",
                shown=False,
            )
        )
    (folder / "testmini.json").write_text(json.dumps(records))
    return out, stage


READERS = {  # benchmark -> (repository folder in DATA_DIR, reader)
    "mathvision": ("MATH-V", read_mathvision),
    "wemath": ("We-Math", read_wemath),
    "logic_vista": ("LogicVista", read_logicvista),
    "mmmu": ("MMMU", read_mmmu),
    "mmmu_pro": ("MMMU", read_mmmu_pro),
    "m3cot": ("M3CoT", read_m3cot),
    "mathverse_vision": ("MathVerse", read_mathverse),
}


# ---------------------------------------------------------------------------- the servers


def clean_gold(gold: str) -> str:
    """The answer a model means by a stored gold (the oracle's own reading, written apart
    from the loader's): no `$`, no whole `\\boxed{}`, an eaten `\\f` restored, units dropped."""
    g = gold.replace("\x0c", "\\f").strip()
    for _ in range(3):
        g = re.sub(r"^\$+|\$+$", "", g).strip()
        m = re.fullmatch(r"\\boxed\{(.*)\}", g)
        g = m.group(1) if m else g
    g = g.replace("{degrees}", "°").replace("掳", "°")
    g = ", ".join(part.strip() for part in g.splitlines() if part.strip())
    named = re.fullmatch(r"[A-Za-z][A-Za-z .']*\s\$=\s*(.+?)\$?\s*", g)
    g = named.group(1).replace("$", "").strip() if named else g
    return re.sub(r"\{(square)?(inches|feet|units)\}$", "", g).strip()


def _style(item: Official, k: int) -> int:
    return int(hashlib.sha1(item.id.encode()).hexdigest(), 16) % k


def letters_of(gold: str) -> list[str] | None:
    m = re.fullmatch(r"\s*([A-J])(?:\s*,\s*([A-J]))*\s*", gold)
    return re.findall(r"[A-J]", gold) if m else None


def reads_as_letter(item: Official, text: str) -> bool:
    """An option text that is itself one of the item's option letters (MMMU-Pro ships options
    such as `['B', 'A', 'D', 'C']`): a reply naming the option by it reads as that letter."""
    letter = str(text).strip()
    return len(letter) == 1 and "A" <= letter < chr(65 + len(item.options or []))


def choice_reply(item: Official, letters: list[str], wrong: bool = False) -> str:
    """A model's reply naming `letters`: the styles rotate over the items. A wrong reply never
    names an option by a text that is itself an option letter: that reply reads as another
    letter (the gold, as often as not) to any grader, the benchmark's own scorer included, so
    it would not be a wrong answer. (The oracle keeps such replies; they are counted as
    unrecoverable.)"""
    options = item.options or []
    text = [options[ord(x) - 65] for x in letters if ord(x) - 65 < len(options)]
    if wrong and any(reads_as_letter(item, t) for t in text):
        text = []
    if len(letters) > 1:
        shuffled = letters[::-1]
        return [
            f"Both hold. \\boxed{{{', '.join(shuffled)}}}",
            f"Checking each statement.\nAnswer: {''.join(shuffled)}",
            f"So the answer is \\boxed{{{'、'.join(shuffled)}}}",
        ][_style(item, 3)]
    (x,) = letters
    styles = [
        f"Comparing the options, the answer is \\boxed{{{x}}}.",
        f"Let me check each option in turn.\nAnswer: {x}",
        f"The correct option is ({x}).",
    ]
    if text:
        styles += [
            f"The value matches. \\boxed{{{text[0]}}}",
            f"Therefore the answer is \\boxed{{{x}. {text[0]}}}",
        ]
    return styles[_style(item, len(styles))]


def uses_option_text(item: Official, reply: str) -> bool:
    """Whether the oracle's `reply` names the answer by an option's text."""
    return any(f"{{{o}}}" in reply or f". {o}}}" in reply for o in item.options or [])


def value_reply(item: Official, value: str) -> str:
    styles = [
        f"Working it out step by step gives \\boxed{{{value}}}.",
        f"Let me compute.\nAnswer: {value}",
        f"<think>compute</think>So the final answer is {value}.",
    ]
    return styles[_style(item, len(styles))]


def wrong_value(gold: str) -> str:
    """A value no reading of `gold` equals: a number moved by one, else another expression."""
    try:
        x = float(gold.replace(",", ""))
    except ValueError:
        return f"{gold}+1" if re.search(r"[\d\\]", gold) else "none of these"
    y = x + 1 if x != -1 else 3.0
    return str(int(y)) if y.is_integer() and "." not in gold else f"{y:g}"


def wrong_letters(item: Official, gold: list[str]) -> list[str]:
    count = len(item.options or []) or len(item.letters_only) or 4
    pool = [chr(65 + i) for i in range(max(count, 2))]
    if len(gold) > 1:
        return gold[:1]  # a part of the set is not the set
    return [pool[(pool.index(gold[0]) + 1) % len(pool)] if gold[0] in pool else "A"]


def reply_for(item: Official, wrong: bool) -> str:
    gold = clean_gold(item.gold)
    letters = letters_of(gold) if (item.options or item.letters_only) else None
    if letters:
        return choice_reply(item, wrong_letters(item, letters) if wrong else letters, wrong)
    if item.accepted:
        return value_reply(item, "none of these" if wrong else item.accepted[-1])
    return value_reply(item, wrong_value(gold) if wrong else gold)


def flat(text: str) -> str:
    """Text compared across layouts: no image markers or placeholders, no spaces."""
    return "".join(re.sub(r"<image\s*\d*>", " ", text).split())


class Index:
    """Official records by the hash of each of their images. A request is the record one of
    whose images it sends first and whose question text it holds; `unknown` counts requests
    matching none, `text_missing` those whose image matched one record but not its text."""

    def __init__(self, items: list[Official]) -> None:
        self.by_image: dict[str, list[Official]] = {}
        for it in items:
            for data in it.images:
                self.by_image.setdefault(hashlib.sha1(data).hexdigest(), []).append(it)
        self.unknown = self.text_missing = 0

    def find(self, body: dict) -> Official | None:
        text, images = "", []
        for m in body["messages"]:
            content = m.get("content")
            if m.get("role") != "user":
                continue
            if isinstance(content, str):
                text += content
                continue
            for part in content or []:
                if part.get("type") == "text":
                    text += " " + part["text"]
                elif part.get("type") == "image_url":
                    images.append(base64.b64decode(part["image_url"]["url"].partition(",")[2]))
        sent = flat(text)
        found = self.by_image.get(hashlib.sha1(images[0]).hexdigest(), []) if images else []
        hits = [it for it in found if flat(it.text) in sent]
        if hits:
            return hits[0]
        if len(found) == 1:
            self.text_missing += 1
            return found[0]
        self.unknown += 1
        return None


def server(index: Index, wrong: bool, faults: Faults | None = None) -> FakeServer:
    def respond(body: dict) -> str:
        item = index.find(body)
        return "I cannot tell." if item is None else reply_for(item, wrong)

    return FakeServer(faults, responder=respond, models=["oracle", "wrong"]).start()


# ------------------------------------------------------------------------------ the runs


def eval_run(bench: str, data_dir: Path, url: str, model: str, out: Path, *extra: str) -> int:
    args = [
        "--quiet",
        "eval",
        "run",
        "--benchmarks",
        bench,
        "--data-dir",
        str(data_dir),
        "--endpoint",
        url,
        "--model",
        model,
        "--out",
        str(out),
        "--concurrency",
        "32",
        *extra,
    ]
    try:
        deepvision(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def verdict_rows(out: Path, bench: str, correct: bool) -> list[dict]:
    """The samples judged `correct` (or not): id, gold, the reply, what was extracted, the
    verifier's method and reason, and whether the loaded item had its options; with
    `correct` False, also every item without an answer and why."""
    files = EvalFiles(out)
    lines = {line["id"]: line for _, line in iter_jsonl(files.responses(bench))}
    rows = []
    for _, v in iter_jsonl(files.judge(bench).verdicts):
        if bool(v.get("correct")) == correct:
            line = lines.get(v["problem_id"], {})
            rows.append(
                {
                    "id": v["problem_id"],
                    "gold": line.get("answer"),
                    "reply": line.get("model_response") or "",
                    "extracted": v.get("extracted"),
                    "why": f"{v.get('method')} {v.get('reason') or ''}".strip(),
                    "options_known": bool(line.get("options")),
                }
            )
    if not correct and files.infer(bench).errors.exists():
        for _, e in iter_jsonl(files.infer(bench).errors):
            rows.append(
                {
                    "id": e["id"],
                    "gold": None,
                    "reply": "",
                    "extracted": None,
                    "why": f"no answer: {e.get('reason')}",
                    "options_known": False,
                }
            )
    return rows


def row_text(row: dict) -> str:
    return (
        f"{row['id']}: gold {row['gold']!r}, reply ...{row['reply'][-70:]!r}, extracted "
        f"{row['extracted']!r}: {row['why']}"
    )


def unrecoverable(item: Official, row: dict) -> str | None:
    """Why no verifier can accept the oracle's reply from what was sent, or None: it names
    an option by its text while the options are drawn only in the image (the item was loaded
    without them), by a text that two options share, or by a text that is itself one of the
    option letters (a bare letter is read as the choice, as graders read it)."""
    if not uses_option_text(item, row["reply"]):
        return None
    if not item.shown and not row["options_known"]:
        return "an option named by its text, the options only in the image"
    texts = item.options or []
    gold = letters_of(clean_gold(item.gold)) or []
    if any(texts.count(texts[ord(x) - 65]) > 1 for x in gold if ord(x) - 65 < len(texts)):
        return "an option named by its text, which another option has too"
    named = [texts[ord(x) - 65] for x in gold if ord(x) - 65 < len(texts)]
    if any(reads_as_letter(item, t) for t in named):
        return "an option named by its text, which is itself an option letter (read as a choice)"
    return None


def measure(name: str, items: list[Official], data_dir: Path, out: Path) -> dict:
    index = Index(items)
    result: dict = {"official": len(items)}
    for role in ("oracle", "wrong"):
        srv = server(index, wrong=role == "wrong")
        t0 = time.monotonic()
        try:
            rc = eval_run(name, data_dir, srv.url, role, out / role)
        finally:
            srv.stop()
        results = json.loads(EvalFiles(out / role).results.read_text())["benchmarks"][name]
        load = results["load"]
        result.update(
            loaded=load["rows"],
            excluded=load["excluded"],
            skipped=load["skipped"],
            golds_normalized=len(load["golds_normalized"]),
            options_unparsed=load["options_unparsed"],
            options_relettered=load["options_relettered"],
        )
        acc = results["accuracy"]
        result[role] = {
            "rc": rc,
            "accuracy": acc["value"],
            "partial": acc["partial"],
            "unrecognized": index.unknown,
            "text_missing": index.text_missing,
            "wall_s": round(time.monotonic() - t0, 1),
            "failures": verdict_rows(out / role, name, correct=role == "wrong"),
        }
        index.unknown = index.text_missing = 0
    by_id = {it.id: it for it in items}
    rejected = result["oracle"]["failures"]
    lost = []
    for r in rejected:
        why = unrecoverable(by_id[r["id"]], r) if r["id"] in by_id else None
        if why:
            lost.append({**r, "why": f"unrecoverable: {why}"})
    lost_ids = {r["id"] for r in lost}
    result["oracle"]["unrecoverable"] = lost
    result["oracle"]["failures"] = [r for r in rejected if r["id"] not in lost_ids]
    decided = result["loaded"] - len(lost)
    result["oracle"]["accuracy_recoverable"] = (
        (decided - len(result["oracle"]["failures"])) / decided if decided else None
    )
    result["options_only_in_image"] = sum(1 for i in items if not i.shown and i.options)
    return result


def fault_checks(items: list[Official], data_dir: Path, out: Path) -> dict:
    """On LogicVista: injected HTTP 400s leave each failed item's reason on disk and a partial
    figure (exit 1); the same command on a healthy server finishes the set; `--overwrite` with
    another model shows only the new model's numbers."""
    index, folder = Index(items), out / "faults"
    shutil.rmtree(folder, ignore_errors=True)
    flaky = server(index, wrong=False, faults=Faults(bad_request_rate=0.1, seed=7))
    try:
        rc = eval_run("logic_vista", data_dir, flaky.url, "oracle", folder, "--attempts", "1")
    finally:
        flaky.stop()
    files = EvalFiles(folder)
    b = json.loads(files.results.read_text())["benchmarks"]["logic_vista"]
    failed = [e for _, e in iter_jsonl(files.infer("logic_vista").errors)]
    checks = {
        "400s: exit 1": rc == 1,
        "400s: a reason on disk for every failed item": bool(failed)
        and len(failed) == b["inference"]["failed"] == b["missing"]
        and all("400" in str(e.get("reason")) for e in failed),
        "400s: accuracy partial, no value": b["accuracy"]["partial"]
        and b["accuracy"]["value"] is None,
    }
    healthy = server(index, wrong=False)
    try:
        rc = eval_run("logic_vista", data_dir, healthy.url, "oracle", folder)
    finally:
        healthy.stop()
    b = json.loads(files.results.read_text())["benchmarks"]["logic_vista"]
    checks["re-run: exit 0, whole figure"] = rc == 0 and b["accuracy"]["value"] is not None
    wrong = server(index, wrong=True)
    try:
        rc = eval_run("logic_vista", data_dir, wrong.url, "wrong", folder, "--overwrite")
        asked = wrong.stats.requests
    finally:
        wrong.stop()
    res = json.loads(files.results.read_text())
    b = res["benchmarks"]["logic_vista"]
    checks["--overwrite: the new model asked for every item"] = asked >= b["expected"]
    checks["--overwrite: the new model's numbers only"] = (
        res["run"]["model"] == "wrong" and (b["accuracy"]["value"] or 0) <= 0.01
    )
    return checks


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="folder holding the repositories' snapshots")
    ap.add_argument("--benchmarks", default=",".join(ORDER))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-fault-checks", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    wanted = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    shutil.rmtree(args.out, ignore_errors=True)
    stage = args.out / "hub-layouts"
    stage.mkdir(parents=True)
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "benchmarks": {}}
    officials: dict[str, list[Official]] = {}
    data_dirs: dict[str, Path] = {}
    for name in wanted:
        key = "mmmu_pro" if name == "mmmu_pro_vision" else name
        if key not in officials:
            folder, reader = READERS[key]
            if not (args.data_dir / folder).is_dir():
                print(f"{name}: no {folder}/ in {args.data_dir}; skipped")
                continue
            items, where = reader(args.data_dir / folder, stage)
            for it in items:
                officials.setdefault(it.bench, []).append(it)
                data_dirs[it.bench] = where
    for name in wanted:
        if name not in officials:
            continue
        print(f"{name}: {len(officials[name])} official items ...", flush=True)
        report["benchmarks"][name] = measure(
            name, officials[name], data_dirs[name], args.out / "runs" / name
        )
    if not args.no_fault_checks and "logic_vista" in officials:
        report["fault_checks"] = fault_checks(
            officials["logic_vista"], data_dirs["logic_vista"], args.out
        )
    (args.out / "fidelity.json").write_text(json.dumps(report, indent=1))
    print_report(report)
    return 0 if meets_goals(report) else 1


def print_report(report: dict) -> None:
    print(f"\n{report['machine']}, {report['date']}\n")
    head = [
        "benchmark",
        "official items",
        "loaded",
        "excluded",
        "skipped",
        "golds normalized",
        "oracle acc",
        "oracle acc (recoverable)",
        "unrecoverable",
        "wrong acc",
        "oracle rejected",
        "wrong accepted",
    ]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, r in report["benchmarks"].items():
        o, w = r["oracle"], r["wrong"]
        row = [
            name,
            r["official"],
            r["loaded"],
            len(r["excluded"]),
            r["skipped"],
            r["golds_normalized"],
            pct(o["accuracy"]),
            pct(o["accuracy_recoverable"]),
            len(o["unrecoverable"]),
            pct(w["accuracy"]),
            len(o["failures"]),
            len(w["failures"]),
        ]
        print("| " + " | ".join(str(c) for c in row) + " |")
    for name, r in report["benchmarks"].items():
        print(f"\n## {name}")
        for x in r["excluded"]:
            print(f"  excluded: {x}")
        if r["options_unparsed"] or r["options_relettered"]:
            print(
                f"  options unparsed: {r['options_unparsed']}; relettered: "
                f"{r['options_relettered']}"
            )
        if r["options_only_in_image"]:
            print(
                f"  multiple-choice items whose options are only in the image: "
                f"{r['options_only_in_image']} ({len(r['oracle']['unrecoverable'])} oracle "
                "replies named an option by its text, which no verifier can accept from "
                "what was sent)"
            )
        for role in ("oracle", "wrong"):
            o = r[role]
            print(
                f"  {role}: exit {o['rc']}, accuracy {pct(o['accuracy'])}, unrecognized "
                f"requests {o['unrecognized']}, question text not sent {o['text_missing']}, "
                f"{o['wall_s']} s"
            )
        for f in r["oracle"]["failures"]:
            print(f"  oracle answer rejected: {row_text(f)}")
        for f in r["oracle"]["unrecoverable"]:
            print(f"  oracle answer rejected, {row_text(f)}")
        for f in r["wrong"]["failures"]:
            print(f"  wrong answer accepted: {row_text(f)}")
    for check, ok in (report.get("fault_checks") or {}).items():
        print(f"fault check: {'ok  ' if ok else 'FAIL'} {check}")


def meets_goals(report: dict) -> bool:
    ok = all(
        (r["oracle"]["accuracy_recoverable"] or 0) >= 0.995
        and r["wrong"]["accuracy"] is not None
        and r["wrong"]["accuracy"] <= 0.001
        for r in report["benchmarks"].values()
    )
    ok = ok and all((report.get("fault_checks") or {}).values())
    print(
        f"\nsummary: goals (oracle >= 99.5% of recoverable items, wrong <= 0.1%, fault "
        f"checks) {'met' if ok else 'NOT met'}"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
