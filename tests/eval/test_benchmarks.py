"""Each benchmark adapter on records written in its official schema (built in code), the
release layout, and the benchmarks' own scoring rules on known cases."""

from __future__ import annotations

import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import png_bytes
from deepvision.errors import DataError
from deepvision.eval import LoadReport, get_benchmark, load_problems
from deepvision.eval.metrics import compute_metrics

RED, GREEN, BLUE = png_bytes((255, 0, 0)), png_bytes((0, 255, 0)), png_bytes((0, 0, 255))
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def img(data: bytes, name: str = "x.png") -> dict:
    return {"bytes": data, "path": name}


def load(name, data_dir):
    report = LoadReport()
    items = list(load_problems(name, data_dir, report))
    return items, report


def test_wemath_official_json_with_image_folder(tmp_path):
    folder = tmp_path / "wemath"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "1.png").write_bytes(RED)
    rows = [
        {"ID": "7", "split": "testmini", "knowledge concept": "Area of Circles",
         "question": "What is the area?", "option": "A. 4π; B. 2π; C. π; D. 8π; E. No answer",
         "answer": "A", "image_path": "1.png", "key": "2steps_multi"},
    ]  # fmt: skip
    (folder / "testmini.json").write_text(json.dumps(rows))
    (items, report) = load("wemath", tmp_path)
    (p,) = items
    assert p.id == "7@2steps_multi" and p.answer == "A"
    assert p.options == ["4π", "2π", "π", "8π", "No answer"]
    assert p.question.startswith("<image>\nWhat is the area?\nA. 4π\nB. 2π")
    assert p.images[0].bytes == RED
    # a multi-step problem's concept is not one of the one-step concepts the scorer reports
    assert p.extra["categories"] == {"step": "2-step"}
    assert report.layout == "official"


def test_mathvision_save_to_disk_dataset_dict_picks_test(tmp_path):
    import datasets

    feats = datasets.Features({
        "id": datasets.Value("string"), "question": datasets.Value("string"),
        "options": datasets.Sequence(datasets.Value("string")), "image": datasets.Value("string"),
        "decoded_image": datasets.Image(), "answer": datasets.Value("string"),
        "solution": datasets.Value("string"), "level": datasets.Value("int64"),
        "subject": datasets.Value("string"),
    })  # fmt: skip
    test = datasets.Dataset.from_dict(
        {"id": ["1", "2"], "question": ["<image1>\nWhich shape?", "How many cubes? <image1>"],
         "options": [["A", "B", "C", "D", "E"], []], "image": ["images/1.jpg", "images/2.jpg"],
         "decoded_image": [RED, GREEN], "answer": ["C", "12"], "solution": ["", ""],
         "level": [2, 5], "subject": ["metric geometry - area", "counting"]},
        features=feats,
    )  # fmt: skip
    mini = test.select([0])
    datasets.DatasetDict({"testmini": mini, "test": test}).save_to_disk(tmp_path / "mathvision")
    items, report = load("mathvision", tmp_path)
    assert [p.id for p in items] == ["1", "2"], "the test split, not testmini"
    a, b = items
    assert a.question.startswith("<image>\nWhich shape?\nA. A\nB. B") and a.options
    assert b.question == "How many cubes? <image>" and b.options is None
    assert b.images[0].bytes[:4] == b"\x89PNG"
    assert a.extra["categories"] == {"level": "2", "subject": "metric geometry - area"}
    assert report.fields["format"] == "datasets save_to_disk"


def test_mathverse_keeps_vision_only(tmp_path):
    rows = [
        {"sample_index": "1", "problem_index": "1", "problem_version": "Text Dominant",
         "question": "Q", "image": img(RED), "answer": "B", "question_type": "multi-choice",
         "metadata": {"subject": "plane geometry", "subfield": "angle"},
         "query_wo": "wo", "query_cot": "cot 1"},
        {"sample_index": "5", "problem_index": "1", "problem_version": "Vision Only",
         "question": "", "image": img(GREEN), "answer": "B", "question_type": "multi-choice",
         "metadata": {"subject": "plane geometry", "subfield": "angle"},
         "query_wo": "wo", "query_cot": "According to the question shown in the image ..."},
    ]  # fmt: skip
    folder = tmp_path / "MathVerse"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "testmini-00000-of-00001.parquet")
    items, _ = load("mathverse_vision", tmp_path)
    (p,) = items
    assert p.id == "5" and p.images[0].bytes == GREEN
    assert p.question == "<image>\nAccording to the question shown in the image ..."
    assert p.extra["categories"] == {"subject": "plane geometry", "subfield": "angle",
                                     "question_type": "multi-choice"}  # fmt: skip


def test_logicvista_json_object_and_set_answers(tmp_path):
    folder = tmp_path / "LogicVista"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "q1.png").write_bytes(BLUE)
    data = {"1": {"imagename": "q1.png", "question": "Which two? A. x B. y C. z",
                  "answer": "A, C", "skill": ["spatial"]}}  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(data))
    items, _ = load("logic_vista", tmp_path)
    (p,) = items
    assert p.id == "1" and p.answer == "A, C" and p.extra["categories"] == {"skill": "spatial"}
    bench = get_benchmark("logic_vista")
    from deepvision.verify import check

    for reply, ok in [("\\boxed{C, A}", True), ("\\boxed{AC}", True), ("\\boxed{A}", False),
                      ("\\boxed{(A)(C)}", True)]:  # fmt: skip
        got = bench.extract(reply, {})
        assert check(got, p.answer, extract=False).correct is ok, reply


def test_mmmu_markers_resolve_in_order_and_split_choice(tmp_path):
    row = {
        "id": "validation_Math_3",
        "question": "Compare <image 2> with <image 1>. Which is larger?",
        "options": "['<image 1>', '<image 2>', 'equal']",
        "answer": "B",
        "question_type": "multiple-choice",
        **{f"image_{k}": None for k in range(1, 8)},
    }
    row["image_1"], row["image_2"] = img(RED), img(GREEN)
    open_row = dict(row, id="validation_Art_Theory_1", question="Year? <image 1>",
                    options="[]", answer="['1889', '1890']", question_type="open")  # fmt: skip
    open_row["image_2"] = None
    for split, rows in (("validation", [row, open_row]), ("dev", [row])):
        folder = tmp_path / "MMMU" / split
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}-00000.parquet")
    items, _ = load("mmmu", tmp_path)
    assert [p.id for p in items] == ["validation_Math_3", "validation_Art_Theory_1"]
    p, q = items
    # question markers then option markers, each an image in that order
    assert p.question.startswith("Compare <image> with <image>. Which is larger?\nA. <image>")
    assert [im.bytes for im in p.images] == [GREEN, RED, RED, GREEN]
    assert p.extra["categories"] == {"subject": "Math", "discipline": "Science",
                                     "question_type": "multiple-choice"}  # fmt: skip
    assert q.answer == "1889" and q.equivalent_answers == ["1890"]
    assert q.extra["categories"]["discipline"] == "Art and Design"
    bench = get_benchmark("mmmu")
    fields = {"options": p.options}
    cases = {
        "So the answer is \\boxed{B}.": True,
        "The answer is (B).": True,
        "Comparing both, I pick (A) first but then (B) is right": True,
        "The larger one is equal": False,  # names option C
        "I cannot tell.": None,  # nothing parsed: no random guess
    }
    from deepvision.verify import check

    for reply, want in cases.items():
        got = bench.extract(reply, fields)
        if want is None:
            assert got is None, reply
        else:
            assert check(got, "B", options=p.options, extract=False).correct is want, reply


def test_mmmu_pro_configs_and_last_answer_rule(tmp_path):
    std = {"id": "test_Finance_1", "question": "Rate? <image 1>",
           "options": str([str(i) for i in range(10)]), "answer": "J", "subject": "Finance",
           **{f"image_{k}": None for k in range(1, 8)}}  # fmt: skip
    std["image_1"] = img(RED)
    vision = {"id": "test_Finance_1", "image": img(BLUE), "options": std["options"],
              "answer": "J", "subject": "Finance"}  # fmt: skip
    for config, row in (("standard (10 options)", std), ("vision", vision)):
        folder = tmp_path / "mmmu_pro" / config
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([row]), folder / "test-00000.parquet")
    (p,), rep = load("mmmu_pro", tmp_path)
    assert rep.fields["config"] == "standard (10 options)"
    assert p.question.startswith("Rate? <image>\nA. 0") and p.question.endswith("J. 9")
    (v,), rep = load("mmmu_pro_vision", tmp_path)
    assert rep.fields["config"] == "vision" and v.images[0].bytes == BLUE
    # only the vision config present: the standard benchmark says so instead of mixing configs
    import shutil

    shutil.rmtree(tmp_path / "mmmu_pro" / "standard (10 options)")
    with pytest.raises(DataError, match=r"no `standard \(10\.\.\.` config folder.*vision"):
        load("mmmu_pro", tmp_path)
    bench = get_benchmark("mmmu_pro")
    fields = {"options": p.options}
    assert bench.extract("Thinking... Answer: B\nthen Answer: J", fields) == "J"
    assert bench.extract("work \\boxed{C} ... Answer: J", fields) == "C"
    assert bench.extract("no idea at all", fields) is None


def test_m3cot_context_optional_image_and_parsing(tmp_path):
    rows = [
        {"id": "m1", "image": img(RED), "question": "Which animal?", "choices": ["cat", "dog"],
         "answer": "B", "context": "A farm.", "rationale": "", "domain": "science",
         "topic": "biology", "category": "commonsense"},
        {"id": "m2", "image": None, "question": "Which number?", "choices": ["1", "2", "3"],
         "answer": "C", "context": "", "rationale": "", "domain": "mathematics",
         "topic": "algebra", "category": "math"},
    ]  # fmt: skip
    (tmp_path / "M3CoT").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "M3CoT" / "test-00000.parquet")
    items, _ = load("m3cot", tmp_path)
    a, b = items
    assert a.question == "<image>\nA farm.\nWhich animal?\nA. cat\nB. dog"
    assert b.images == [] and b.question == "Which number?\nA. 1\nB. 2\nC. 3"
    assert a.extra["categories"] == {"domain": "science", "topic": "biology",
                                     "category": "commonsense"}  # fmt: skip
    bench = get_benchmark("m3cot")
    assert bench.extract("Therefore, the answer is B.", {"options": ["cat", "dog"]}) == "B"
    assert bench.extract("It must be the dog", {"options": ["cat", "dog"]}) == "B"
    assert bench.extract("hmm", {"options": ["cat", "dog"]}) is None


def test_release_layout_jsonl_with_images_in_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "mathvision.zip", "w") as z:
        z.writestr("mathvision/images/1.png", RED)
    lines = [
        {"id": 1, "messages": [{"role": "user", "content": "<image>Find x."}],
         "images": ["mathvision/images/1.png"], "gdt": "5", "level": 1, "subject": "algebra"},
        {"id": 2, "messages": [{"role": "user", "content": "<image>Find y."}],
         "images": ["missing.png"], "gdt": "6"},
    ]  # fmt: skip
    (tmp_path / "mathvision.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items, report = load("mathvision", tmp_path)
    assert [p.id for p in items] == ["1"] and items[0].images[0].bytes == RED
    assert items[0].question == "<image>Find x." and items[0].answer == "5"
    assert items[0].extra["categories"] == {"level": "1", "subject": "algebra"}
    assert report.layout == "release"
    assert report.fields == {"prompt": "messages", "images": "images", "answer": "gdt"}
    assert report.skipped == 1 and "missing.png" in report.skipped_examples[0]


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"no data for benchmark wemath.*wemath\.jsonl"):
        list(load_problems("wemath", tmp_path))
    (tmp_path / "m3cot.jsonl").write_text('{"question": "q"}\nnot json\n')
    with pytest.raises(DataError, match=r"m3cot\.jsonl.*2"):
        list(load_problems("m3cot", tmp_path))


def _item(pid, key, gid, correct):
    return {"id": pid, "categories": {}, "bench": {"ID": gid, "key": key},
            "tokens": 1, "samples": [{"correct": c, "judged": True, "extracted": "A",
                                      "method": "choice", "rule_correct": c, "finish": "stop"}
                                     for c in correct]}  # fmt: skip


def test_wemath_four_dimensional_metrics_by_hand():
    # Group 1: both steps right, whole wrong -> IG.
    # Group 2: one step wrong, whole right -> RM (strict), CM (loose).
    # Group 3 (3 steps): all steps wrong, whole right -> RM (strict and loose).
    # Group 4: one step wrong, whole wrong -> IK.  Group 5: all right -> CM.
    spec = [("1", 2, [True, True], False), ("2", 2, [True, False], True),
            ("3", 3, [False, False, False], True), ("4", 2, [False, True], False),
            ("5", 2, [True, True], True)]  # fmt: skip
    items = []
    for gid, steps, parts, whole in spec:
        for i, ok in enumerate(parts, start=1):
            items.append(_item(f"{gid}@{steps}steps_{i}", f"{steps}steps_{i}", gid, [ok]))
        items.append(_item(f"{gid}@{steps}steps_multi", f"{steps}steps_multi", gid, [whole]))
    m = compute_metrics(get_benchmark("wemath"), items, 1)["wemath_4d"]
    assert m["composites"] == 5
    strict, loose = m["strict"], m["loose"]
    assert (strict["IG"], strict["IK"]) == (1 / 5, 1 / 5)
    assert strict["CM"] == 1 / 5 and loose["CM"] == 2 / 5
    assert strict["RM"] == 2 / 3  # RM / (CM + RM) = 2 / (1 + 2)
    assert loose["RM"] == 1 / 3  # 1 / (2 + 1)
    assert strict["score"] == pytest.approx((5 - 0.5 - 2 - 1) / 5)
    assert loose["score"] == pytest.approx((5 - 0.5 - 1 - 1) / 5)


def test_split_choice_does_not_depend_on_names_order(tmp_path):
    def rows(version):
        return [{"sample_index": version[:4], "problem_index": "1", "problem_version": version,
                 "question": "", "image": img(RED), "answer": "A", "query_wo": "q",
                 "question_type": "multi-choice", "metadata": {"subject": "s"},
                 "query_cot": "q"}]  # fmt: skip

    folder = tmp_path / "mathverse"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows("Text Only")),
                   folder / "testmini_text_only-00000-of-00001.parquet")  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows("Vision Only")),
                   folder / "testmini-00000-of-00001.parquet")  # fmt: skip
    items, report = load("mathverse_vision", tmp_path)
    assert [p.id for p in items] == ["Visi"] and "testmini)" in report.fields["format"]


def test_logicvista_repository_layout_data_folder(tmp_path):
    folder = tmp_path / "LogicVista" / "data"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "1.png").write_bytes(RED)
    (folder / "dataset.json").write_text(json.dumps(
        {"v1_4": {"imagename": "1.png", "question": "Which? A..I", "answer": "G",
                  "skill": "spatial"}}))  # fmt: skip
    items, report = load("logic_vista", tmp_path)
    assert [p.id for p in items] == ["v1_4"] and report.skipped == 0
    assert get_benchmark("logic_vista").extract("The odd one out is (G).", {}) == "G"


def test_free_text_fallback_names_only_explicit_choices():
    bench = get_benchmark("wemath")
    five = {"options": ["1", "2", "3", "4", "5"]}
    for reply in ("...from point C, the foot is D. Then angle at B is",  # truncated, points
                  "A line through E meets the circle",  # article and point names
                  "I think so."):  # fmt: skip
        assert bench.extract(reply, five) is None, reply
    assert bench.extract("The correct option is B. A quick check confirms this.", five) == "B"
    assert bench.extract("so the choice: D", five) == "D"
    mmmu = get_benchmark("mmmu")
    assert mmmu.extract("so the rate is 100 percent", {"options": ["10", "100", "1000"]}) == "B"


def test_wemath_options_with_inner_letters_and_missing_parts_are_undecided(tmp_path):
    folder = tmp_path / "wemath"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "1.png").write_bytes(RED)
    row = {"ID": "1", "knowledge concept": "Angles", "question": "Which angle?",
           "option": "A. angle B: 30°; B. 40°", "answer": "A", "image_path": "1.png",
           "key": "2steps_1"}  # fmt: skip
    (folder / "testmini.json").write_text(json.dumps([row]))
    (p,), _ = load("wemath", tmp_path)
    assert p.options == ["angle B: 30°", "40°"]
    assert p.question.endswith("Which angle?\nA. angle B: 30°\nB. 40°")
    # One 2-step group whose second part was never answered: the part is undecided, so the
    # accuracy is partial (2 of 3 right at least, all 3 at most) and no 4-D figure is given.
    loaded = [{"id": f"1@2steps_{k}", "categories": {}, "bench": {"ID": "1", "key": f"2steps_{k}"}}
              for k in ("1", "2", "multi")]  # fmt: skip
    answered = [_item("1@2steps_1", "2steps_1", "1", [True]),
                _item("1@2steps_multi", "2steps_multi", "1", [True])]  # fmt: skip
    m = compute_metrics(get_benchmark("wemath"), answered, 1, loaded=loaded)
    assert m["missing"] == 1 and m["items"] == 2 and m["expected"] == 3
    acc = m["accuracy"]
    assert acc["value"] is None and acc["partial"]
    assert (acc["lower_bound"], acc["upper_bound"]) == (pytest.approx(2 / 3), 1.0)
    assert m["ci95"] is None and m["pass_at_k"]["1"]["value"] is None
    w = m["wemath_4d"]
    assert w == {"composites": 1, "undecided_composites": 1, "partial": True}
    # once answered, the group's figures are whole
    answered.append(_item("1@2steps_2", "2steps_2", "1", [False]))
    m = compute_metrics(get_benchmark("wemath"), answered, 1, loaded=loaded)
    assert m["accuracy"]["value"] == pytest.approx(2 / 3)
    w = m["wemath_4d"]
    assert w["composites"] == 1 and w["strict"]["RM"] == 1.0 and w["counts"]["CM_loose"] == 1


def test_majority_vote_meets_equal_answers_in_any_form():
    rows = [("1/2", True), ("0.5", True), ("\\frac{1}{2}", True), ("3", False), ("3", False),
            ("4", False)]  # fmt: skip
    item = _item("x", "", "", [c for _, c in rows])
    for s, (ans, _) in zip(item["samples"], rows, strict=True):
        s["extracted"] = ans
    m = compute_metrics(get_benchmark("mathvision"), [item], len(rows))
    assert m["maj_at_n"]["value"] == 1.0  # three forms of 1/2 outvote two 3s


def test_release_data_uris_and_unnamed_images_follow_the_records_rules(tmp_path):
    """Data URIs are decoded strictly (a bad one skips its item, named; the set goes on);
    images no `<image k>` marker names go first, one placeholder each."""
    from deepvision.records import data_uri

    rows = [
        {"id": "ok", "question": "Find x.", "images": [data_uri(RED)], "answer": "5"},
        {
            "id": "bad",
            "question": "Find y.",
            "images": ["data:image/png;base64,@@@"],
            "answer": "6",
        },
        {
            "id": "mixed",
            "question": "Compare with <image 2>.",
            "images": [data_uri(RED), data_uri(GREEN)],
            "answer": "A",
        },
    ]
    (tmp_path / "m3cot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items, report = load("m3cot", tmp_path)
    ok, mixed = items
    assert ok.question == "<image>\nFind x." and ok.images[0].bytes == RED
    assert mixed.question == "<image>\nCompare with <image>."
    assert [im.bytes for im in mixed.images] == [RED, GREEN]
    assert report.skipped == 1 and "m3cot.jsonl:2" in report.skipped_examples[0]
    assert "base64" in report.skipped_examples[0]


def test_a_release_line_that_is_not_json_is_named_by_file_and_line(tmp_path):
    good = {"id": "1", "question": "Find x.", "images": [], "answer": "5"}
    (tmp_path / "m3cot.jsonl").write_text(json.dumps(good) + "\n\n{torn\n")
    with pytest.raises(DataError, match=r"m3cot\.jsonl:3: not JSON"):
        load("m3cot", tmp_path)


def test_image_paths_outside_the_data_folder_are_named_rejections(tmp_path):
    """`../../x.png`, an absolute path, `/etc/passwd`, a symlink out and a folder beside the
    data folder are never read: each record is skipped with the path named; the rest loads."""
    data = tmp_path / "bench"
    (data / "images").mkdir(parents=True)
    (data / "images" / "ok.png").write_bytes(RED)
    secret = tmp_path / "secret.png"
    secret.write_bytes(GREEN)
    (data / "images" / "link.png").symlink_to(secret)
    (tmp_path / "m3cot").mkdir()  # beside the data folder, where release images were looked for
    (tmp_path / "m3cot" / "beside.png").write_bytes(BLUE)
    refs = ["images/ok.png", "../../secret.png", str(secret), "/etc/passwd", "../secret.png"]
    refs += ["images/link.png", "beside.png"]
    rows = [
        {"id": f"r{i}", "question": "Which?", "images": [ref], "answer": "A"}
        for i, ref in enumerate(refs)
    ]
    (data / "m3cot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items, report = load("m3cot", data)
    assert [p.id for p in items] == ["r0"] and items[0].images[0].bytes == RED
    assert report.skipped == 6
    why = {x.split(":")[1].split()[0]: x for x in report.skipped_examples}  # line number -> reason
    assert f"image path '../../secret.png' leaves the data folder {data}" in why["2"]
    assert f"image path {str(secret)!r} is absolute" in why["3"]
    assert "image path '/etc/passwd' is absolute" in why["4"]
    for line in ("5", "6"):  # inside from one folder (not there), out from another
        assert f"leads out of the data folder {data}" in why[line]
    assert "'beside.png' not found" in why["7"]
    # an explicit option admits absolute paths; relative ones still stay inside
    items = list(load_problems("m3cot", data, LoadReport(), allow_absolute=True))
    assert [p.id for p in items] == ["r0", "r2", "r3"]
    assert items[1].images[0].bytes == GREEN


def test_official_layout_paths_stay_inside_the_data_folder(tmp_path):
    data = tmp_path / "bench"
    folder = data / "wemath"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "1.png").write_bytes(RED)
    (tmp_path / "outside.png").write_bytes(GREEN)
    row = {"ID": "1", "question": "Which?", "option": "A. 1; B. 2", "answer": "A"}
    row["key"] = "2steps_1"
    paths = {"1": "1.png", "2": "../../../outside.png", "3": str(tmp_path / "outside.png")}
    rows = [{**row, "ID": k, "image_path": v} for k, v in paths.items()]
    (folder / "testmini.json").write_text(json.dumps(rows))
    items, report = load("wemath", data)
    assert [p.id for p in items] == ["1@2steps_1"]
    assert report.skipped == 2 and all("outside.png" in x for x in report.skipped_examples)
