"""The loaders on the benchmarks' files exactly as their repositories and Hub datasets lay them
out (written here in code: the same folders, file names, field names and quirks as the
official files, never a copy of them): folder names users give them, golds no answer could
match as stored, option strings with quirks, unusable records, Hub layouts of MMMU, MMMU-Pro,
M3CoT and MathVerse, and bad input named by file and record."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import png_bytes
from deepvision.errors import DataError
from deepvision.eval import LoadReport, get_benchmark, load_problems
from deepvision.eval.golds import normalize_gold
from deepvision.eval.options import parse_options, split_lettered

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def load(name, data_dir):
    report = LoadReport()
    return list(load_problems(name, data_dir, report)), report


def image(k: int) -> bytes:
    return png_bytes((10 * k % 256, 90, 160))


# ------------------------------------------------------------------------ MathVision (MATH-V)


def write_math_v(folder, records: list[dict], mini: list[dict] | None = None):
    """mathllm/MATH-V as shipped: data/test.jsonl, data/testmini.jsonl, images/ at the top
    (plus the repository's other folders)."""
    (folder / "data").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "evaluation").mkdir()
    (folder / "README.md").write_text("# MATH-V\n")
    for r in records:
        (folder / r["image"]).write_bytes(image(int(r["id"])))
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "data" / "test.jsonl").write_text(lines)
    mini_lines = "".join(json.dumps(r) + "\n" for r in (mini or records[:1]))
    (folder / "data" / "testmini.jsonl").write_text(mini_lines)


def math_v_record(pid: int, answer: str, options=(), question="How many?\n<image1>") -> dict:
    return {
        "id": str(pid),
        "question": question,
        "options": list(options),
        "answer": answer,
        "solution": None,
        "level": 2,
        "subject": "arithmetic",
        "image": f"images/{pid}.jpg",
    }


@pytest.mark.parametrize("folder", ["MATH-V", "MATH-V-main", "mathvision", "my benchmark copy"])
def test_math_v_repository_loads_its_test_split_under_any_folder_name(tmp_path, folder):
    """The repository as a clone or download names it (and under a name of the user's own:
    found by its data/test.jsonl) loads the test split: it once loaded nothing."""
    records = [math_v_record(1, "60"), math_v_record(2, "A", "ABCDE", "Which bike?\n<image1>")]
    records.append(math_v_record(3, "6"))
    write_math_v(tmp_path / folder, records)
    items, report = load("mathvision", tmp_path)
    assert [p.id for p in items] == ["1", "2", "3"], "data/test.jsonl, not testmini"
    assert report.layout == "official" and report.path == str(tmp_path / folder)
    assert items[0].images[0].bytes == image(1) and items[0].question == "How many?\n<image>"
    assert items[1].options == list("ABCDE") and "A. A\nB. B" in items[1].question


def test_two_folders_that_could_be_the_benchmark_are_named_not_guessed(tmp_path):
    write_math_v(tmp_path / "MATH-V-main", [math_v_record(1, "60")])
    write_math_v(tmp_path / "math_v", [math_v_record(2, "7")])
    with pytest.raises(
        DataError, match="several folders could hold mathvision: MATH-V-main, math_v"
    ):
        load("mathvision", tmp_path)


def test_math_v_golds_are_normalized_once_and_listed(tmp_path):
    """MathVision test's golds as stored: `$..$`, `$\\boxed{..}$`, a `\\frac` whose backslash
    the JSON escape `\\f` ate (the line holds `"\\frac"`: form feed + `rac`), units as braced
    words. Each is made answerable at load time and listed with what was stored."""
    golds = {
        10: "$4 \\pi$",
        11: "$\\boxed{\\frac{16}{7}}$",
        12: "\frac{36}{13}",
        13: "69{degrees}",
        14: "8\\sqrt{3}{squareinches}",
        15: "11 ",
        16: "60",
    }
    write_math_v(tmp_path / "MATH-V", [math_v_record(k, g) for k, g in golds.items()])
    raw = (tmp_path / "MATH-V" / "data" / "test.jsonl").read_text()
    assert '"\\frac{36}{13}"' in raw, "the fixture holds the JSON escape, as the official file"
    items, report = load("mathvision", tmp_path)
    assert [p.answer for p in items] == [
        "4 \\pi",
        "\\frac{16}{7}",
        "\\frac{36}{13}",
        "69^\\circ",
        "8\\sqrt{3}",
        "11",
        "60",
    ]
    listed = {g["id"]: (g["stored"], g["used"]) for g in report.golds_normalized}
    assert listed == {
        "10": ("$4 \\pi$", "4 \\pi"),
        "11": ("$\\boxed{\\frac{16}{7}}$", "\\frac{16}{7}"),
        "12": ("\frac{36}{13}", "\\frac{36}{13}"),
        "13": ("69{degrees}", "69^\\circ"),
        "14": ("8\\sqrt{3}{squareinches}", "8\\sqrt{3}"),
    }


def test_gold_normalization_leaves_real_text_alone():
    for gold in ("line one\nnot latex", "\\frac{1}{2}", "(3,-4)", "1:2", "\\text{inches}"):
        assert normalize_gold(gold) in (gold, "line one, not latex")
    assert normalize_gold("Area $=9.4 \\mathrm{~cm}^{2}$") == "9.4 \\mathrm{~cm}^{2}"
    assert normalize_gold("118掳T") == "118°T" and normalize_gold("C\nD") == "C, D"
    assert normalize_gold("\times 3") == "\\times 3"


# ---------------------------------------------------------------------------------- We-Math

# The option strings of We-Math testmini that the loader once could not split (each then went
# out without lettered options and could never be matched by option text), with the options
# they hold and the letters the string gives them.
WEMATH_QUIRKS = [
    (
        "A. ①;B．②;C. ③; D. Cannot be determined; E. No correct answer",
        ["①", "②", "③", "Cannot be determined", "No correct answer"],
        "ABCDE",
    ),
    (
        "A. Yes, A needs to be rotated 90 degrees clockwise around point ;O.;B. Yes, A needs to be "
        "rotated 45 degrees counterclockwise around point ;O.;C. No.; F. No correct answer",
        [
            "Yes, A needs to be rotated 90 degrees clockwise around point O.",
            "Yes, A needs to be rotated 45 degrees counterclockwise around point O.",
            "No.",
            "No correct answer",
        ],
        "ABCF",
    ),
    (
        "A. First head northeast to B, then north to ;C.  ;B. First head northwest to B, then west "
        "to ;C.  ;C. First head southeast to B, then west to ;C. ;D. No correct answer",
        [
            "First head northeast to B, then north to C.",
            "First head northwest to B, then west to C.",
            "First head southeast to B, then west to C.",
            "No correct answer",
        ],
        "ABCD",
    ),
    (
        "A. 45° B. 60° ;C. 120°; D. No correct answer",
        ["45°", "60°", "120°", "No correct answer"],
        "ABCD",
    ),
    (
        "A. 6cm, 2cm B. 1cm, 3cm ;C. 1cm, 4cm; D. No correct answer",
        ["6cm, 2cm", "1cm, 3cm", "1cm, 4cm", "No correct answer"],
        "ABCD",
    ),
    (
        "A. 4 B. 3 C. 2 ;D. 1; E. No correct answer",
        ["4", "3", "2", "1", "No correct answer"],
        "ABCDE",
    ),
    (
        "A. There is an obtuse angle ∠AB;E.; B. There is an obtuse angle ∠AB;C.; C. There is no "
        "obtuse angle.; D. It cannot be determined.; E. No correct answer",
        [
            "There is an obtuse angle ∠ABE.",
            "There is an obtuse angle ∠ABC.",
            "There is no obtuse angle.",
            "It cannot be determined.",
            "No correct answer",
        ],
        "ABCDE",
    ),
]


@pytest.mark.parametrize(("raw", "texts", "letters"), WEMATH_QUIRKS)
def test_wemath_option_strings_with_quirks_split_into_their_options(raw, texts, letters):
    found = split_lettered(raw)
    assert found is not None and found.texts == texts and "".join(found.letters) == letters


def test_plain_option_forms_still_split():
    assert parse_options("A. angle B: 30°; B. 40°") == ["angle B: 30°", "40°"]
    assert parse_options("A:3\nB:4") == ["3", "4"] and parse_options("(A) 3 (B) 4") == ["3", "4"]
    assert parse_options("A. only one") is None and parse_options("no options here") is None
    # MMMU-Pro ships some options as a list inside a list
    assert parse_options("[['A', 'B', 'Not enough information']]") == [
        "A",
        "B",
        "Not enough information",
    ]


def write_we_math(folder, rows: list[dict]):
    """We-Math/We-Math as shipped: data/testmini.json, data/knowledge_structure_nodes.json,
    images under data/2steps/image and data/3steps/image."""
    for r in rows:
        path = folder / "data" / r["image_path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image(len(r["ID"]) + int(r["key"][-1] == "i") + r["question number"]))
    nodes = [
        {
            "root0": "Geometry and Figures",
            "root1": "Measurement",
            "root2": "Angles and Length",
            "root3": "Angles",
            "root4": None,
            "full node": "Measurement_Angles and Length_Angles",
        }
    ]
    (folder / "data" / "knowledge_structure_nodes.json").write_text(json.dumps(nodes))
    (folder / "data" / "testmini.json").write_text(json.dumps(rows))


def we_math_row(pid: str, key: str, option: str, answer: str, number: int, concept="Angles"):
    return {
        "ID": pid,
        "split": "testmini",
        "knowledge concept": concept,
        "question": f"Question {pid} {key}?",
        "option": option,
        "answer": answer,
        "image_path": f"{key[0]}steps/image/{pid.split('_')[-1]}-{key.split('_')[-1]}.png",
        "key": key,
        "question number": number,
        "knowledge concept description": "Angles: ...",
    }


def test_we_math_options_are_never_dropped_and_a_skipped_letter_is_relettered(tmp_path):
    rows = [
        we_math_row("2steps_94", "2steps_1", WEMATH_QUIRKS[1][0], "A", 1),
        # a skipped letter, and the gold is that letter
        we_math_row("2steps_95", "2steps_1", "A. 8;B. 12;C. 16; F. No correct answer", "F", 2),
        we_math_row("2steps_59", "2steps_1", "1) one 2) two", "A", 3),  # not lettered at all
    ]
    write_we_math(tmp_path / "We-Math", rows)
    items, report = load("wemath", tmp_path)
    a, b, c = items
    assert a.options == WEMATH_QUIRKS[1][1] and "\nD. No correct answer" in a.question
    assert a.answer == "A" and report.options_relettered[0] == a.id
    # "F" (the 4th option) is lettered again as D, its gold with it
    assert b.options == ["8", "12", "16", "No correct answer"] and b.answer == "D"
    # options that cannot be split go out as shipped, named and scored apart
    assert c.options is None and c.question.endswith("\n1) one 2) two")
    assert report.options_unparsed == [c.id]
    assert c.extra["categories"]["options"] == "unparsed"


def test_we_math_concepts_are_the_one_step_ones_with_their_area(tmp_path):
    """The official accuracy script reports knowledge concepts over the one-step parts only
    (67 in testmini, not the 471 concept lists of every item), grouped into areas by
    knowledge_structure_nodes.json."""
    rows = [
        we_math_row("2steps_1", "2steps_1", "A. 1; B. 2", "A", 1),
        we_math_row("2steps_1", "2steps_2", "A. 1; B. 2", "B", 2, "Area"),
        we_math_row("2steps_1", "2steps_multi", "A. 1; B. 2", "A", 3, "Angles; Area of Triangles"),
    ]
    write_we_math(tmp_path / "We-Math", rows)
    items, _ = load("wemath", tmp_path)
    cats = [p.extra["categories"] for p in items]
    assert cats == [
        {"step": "one-step", "concept": "Angles", "area": "Angles and Length"},
        {"step": "one-step", "concept": "Area"},
        {"step": "2-step"},
    ]


# ------------------------------------------------------------------------------- LogicVista


def write_logicvista(folder, records: dict[str, dict]):
    (folder / "data" / "images").mkdir(parents=True)
    (folder / "label_studio").mkdir()
    for k, r in records.items():
        (folder / "data" / "images" / r["imagename"]).write_bytes(image(len(k)))
    (folder / "data" / "dataset.json").write_text(json.dumps(records))


def logicvista_record(k: str, question: str, answer: str) -> dict:
    return {
        "imagename": f"{k}.png",
        "question": question,
        "answer": answer,
        "reasoning": "",
        "skill": ["spatial"],
        "broad_capability": ["diagram"],
        "specific_capability": ["3d pattern"],
        "imagesource": "x",
        "sourcelink": "y",
        "liscenced": "true",
    }


def test_logicvista_unusable_record_is_excluded_and_named(tmp_path):
    """LogicVista's v1_382 has an empty question and an empty answer: it is excluded from the
    set and named (it once stayed in the set, undecided forever), the rest loads."""
    records = {
        "v1_0": logicvista_record("v1_0", "Which choice (A, B, C, or D)?", "C"),
        "v1_382": logicvista_record("v1_382", "", ""),
        "v1_9": logicvista_record("v1_9", "Which two?", "B, D"),
    }
    write_logicvista(tmp_path / "LogicVista-main", records)
    items, report = load("logic_vista", tmp_path)
    assert [p.id for p in items] == ["v1_0", "v1_9"] and report.skipped == 0
    (excluded,) = report.excluded
    assert "dataset.json[v1_382]" in excluded and "no gold answer" in excluded


# ------------------------------------------------------------------------ Hub-only benchmarks


def write_parquet(path, rows: list[dict], image_columns: list[str]):
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {
        k: pa.array([r.get(k) for r in rows], pa.string())
        for k in rows[0]
        if k not in image_columns
    }
    for k in image_columns:
        cols[k] = pa.array([r.get(k) for r in rows], IMAGE)
    pq.write_table(pa.table(cols), path)


def test_mmmu_validation_subject_shards_with_list_golds_and_markers(tmp_path):
    """MMMU/MMMU: one folder per subject, `validation-00000-of-00001.parquet`, options as a
    stringified list, open golds as a stringified list of accepted answers, `<image k>`
    markers in question and options; image_1..image_7 as Image structs."""
    columns = [f"image_{k}" for k in range(1, 8)]
    rows = [
        {
            "id": "validation_Math_15",
            "question": "Find x in <image 1>.",
            "options": "[]",
            "explanation": "",
            "img_type": "['Diagrams']",
            "answer": "['24/7', '3.429']",
            "topic_difficulty": "Hard",
            "question_type": "open",
            "subfield": "Algebra",
            "image_1": {"bytes": image(1), "path": None},
        },
        {
            "id": "validation_Math_2",
            "question": "How many attendants?",
            "options": "['1 attendant', '2 attendants', '<image 2>', '<image 1>']",
            "explanation": "",
            "img_type": "['Diagrams']",
            "answer": "B",
            "topic_difficulty": "Easy",
            "question_type": "multiple-choice",
            "subfield": "Graph",
            "image_1": {"bytes": image(2), "path": None},
            "image_2": {"bytes": image(3), "path": None},
        },
    ]
    write_parquet(tmp_path / "MMMU" / "Math" / "validation-00000-of-00001.parquet", rows, columns)
    write_parquet(tmp_path / "MMMU" / "Math" / "dev-00000-of-00001.parquet", rows[:1], columns)
    items, report = load("mmmu", tmp_path)
    open_item, choice = items
    assert open_item.answer == "24/7" and open_item.equivalent_answers == ["3.429"]
    assert choice.options == ["1 attendant", "2 attendants", "<image 2>", "<image 1>"]
    assert [im.bytes for im in choice.images] == [image(3), image(2)]  # in marker order
    assert choice.extra["categories"] == {
        "subject": "Math",
        "discipline": "Science",
        "question_type": "multiple-choice",
    }
    assert report.fields["format"].startswith("parquet shards (validation")


def test_mmmu_pro_configs_as_on_the_hub(tmp_path):
    """MMMU/MMMU_Pro: `standard (10 options)/test-*.parquet` (the records of the repository's
    output files: id, question, options as a string, explanation, img_type, answer,
    topic_difficulty, subject) and `vision/test-*.parquet` (id, image, options, answer,
    subject)."""
    std = [
        {
            "id": "validation_Accounting_29",
            "question": "Which call option? <image 1>",
            "options": "[['A', 'B', 'Not enough information']]",
            "explanation": "",
            "img_type": "['Tables']",
            "answer": "B",
            "topic_difficulty": "Medium",
            "subject": "Accounting",
            "image_1": {"bytes": image(4), "path": None},
        }
    ]
    write_parquet(
        tmp_path / "MMMU_Pro" / "standard (10 options)" / "test-00000-of-00001.parquet",
        std,
        [f"image_{k}" for k in range(1, 8)],
    )
    vision = [
        {
            "id": "test_History_1",
            "image": {"bytes": image(5), "path": None},
            "options": "['Trade', 'Pathogens']",
            "answer": "B",
            "subject": "History",
        }
    ]
    write_parquet(
        tmp_path / "MMMU_Pro" / "vision" / "test-00000-of-00001.parquet", vision, ["image"]
    )
    (item,), _ = load("mmmu_pro", tmp_path)
    assert item.options == ["A", "B", "Not enough information"]
    assert item.question == "Which call option? <image>\nA. A\nB. B\nC. Not enough information"
    (page,), _ = load("mmmu_pro_vision", tmp_path)
    assert page.options == ["Trade", "Pathogens"] and page.images[0].bytes == image(5)


def test_m3cot_hub_layout_with_context_and_quoted_choices(tmp_path):
    """LightChen2333/M3CoT: data/{train,validation,test}-*.parquet with the fields of the
    repository's experiment records; choices as a stringified list holding quotes."""
    rows = [
        {
            "id": "physical-commonsense-1398",
            "category": "physical-commonsense",
            "image_id": "1398",
            "question": "What is the likely purpose of the troll statue?",
            "choices": "['To scare away trespassers', \"To bring attention to the city's "
            'tourist attractions"]',
            "context": "A statue under a bridge.",
            "answer": "B",
            "rationale": "",
            "split": "test",
            "domain": "commonsense",
            "topic": "physical-commonsense",
            "image": {"bytes": image(6), "path": None},
        }
    ]
    for split in ("train", "validation", "test"):
        write_parquet(
            tmp_path / "M3CoT" / "data" / f"{split}-00000-of-00001.parquet",
            [{**rows[0], "id": f"{split}-{rows[0]['id']}"}] if split != "test" else rows,
            ["image"],
        )
    (item,), _ = load("m3cot", tmp_path)
    assert item.id == "physical-commonsense-1398"
    assert item.options == [
        "To scare away trespassers",
        "To bring attention to the city's tourist attractions",
    ]
    assert item.question.startswith("<image>\nA statue under a bridge.\nWhat is the likely")


def mathverse_record(index: int, version: str, qtype: str, answer: str) -> dict:
    query = "Please first conduct reasoning, and then answer the question.\nQuestion: "
    return {
        "sample_index": str(index * 10 + (version == "Vision Only")),
        "problem_index": str(index),
        "problem_version": version,
        "question": "" if version == "Vision Only" else "Find the angle.\nChoices:\nA:40°",
        "image": f"images_version_5/image_{index}.png" if version == "Vision Only" else "",
        "answer": answer,
        "question_type": qtype,
        "metadata": {
            "split": "testmini",
            "source": "GeoQA",
            "subject": "Plane Geometry",
            "subfield": "Angle",
        },
        "query_wo": query,
        "query_cot": query,
    }


def test_mathverse_keeps_vision_only_and_says_when_a_file_holds_none(tmp_path):
    folder = tmp_path / "MathVerse"
    (folder / "data").mkdir(parents=True)
    (folder / "images_version_5").mkdir()
    (folder / "images_version_5" / "image_1.png").write_bytes(image(7))
    text_only = [mathverse_record(1, "Text Only", "multi-choice", "D")]
    (folder / "data" / "testmini_text_only.json").write_text(json.dumps(text_only))
    items, report = load("mathverse_vision", tmp_path)
    assert items == [] and report.outside == 1  # counted, not silently nothing
    records = [*text_only, mathverse_record(1, "Vision Only", "free-form", "Area $=9.4$")]
    (folder / "testmini.json").write_text(json.dumps(records))
    (item,), report = load("mathverse_vision", tmp_path)
    assert item.answer == "9.4" and report.outside == 1 and item.images[0].bytes == image(7)


# --------------------------------------------------------------------------------- bad input


def test_truncated_json_is_named_with_where_it_breaks(tmp_path):
    folder = tmp_path / "LogicVista" / "data"
    folder.mkdir(parents=True)
    text = json.dumps({"v1_0": logicvista_record("v1_0", "Which?", "A")}, indent=1)
    (folder / "dataset.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"dataset\.json: neither JSON nor JSON lines: .* line \d+"):
        load("logic_vista", tmp_path)


def test_bad_lines_and_repeated_ids_are_excluded_and_named(tmp_path):
    records = [math_v_record(1, "60"), math_v_record(2, "7"), math_v_record(1, "61")]
    write_math_v(tmp_path / "MATH-V", records)
    test = tmp_path / "MATH-V" / "data" / "test.jsonl"
    lines = test.read_text().splitlines(keepends=True)
    test.write_text(lines[0] + '{"id": "9", "question": "cut\n' + "".join(lines[1:]))
    items, report = load("mathvision", tmp_path)
    assert [p.id for p in items] == ["1", "2"]
    assert report.excluded == [
        f"{test}:2: line is not a JSON object",
        f"{test}:4 (id 1): id '1' repeats the record at {test}:1",
    ]


def test_a_missing_image_stays_in_the_set_undecided_and_named(tmp_path):
    write_math_v(tmp_path / "MATH-V", [math_v_record(1, "60"), math_v_record(2, "7")])
    (tmp_path / "MATH-V" / "images" / "2.jpg").unlink()
    items, report = load("mathvision", tmp_path)
    assert [p.id for p in items] == ["1"] and report.skipped == 1 and not report.excluded
    assert "images/2.jpg" in report.skipped_examples[0]
    assert get_benchmark("mathvision").size == 3040
