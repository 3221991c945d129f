"""Problem families: each draws a figure and states a question whose answer is exact.

A family is a function `(rng) -> Draft`. The engine turns a Draft into a free-form or
multiple-choice Problem. Distractors are wrong answers of the same kind, for the options.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from deepvision.data.synth import answers as ans
from deepvision.data.synth.canvas import BLACK, COLOR_NAMES, GRID, PALETTE, Canvas, Point, polar


@dataclass
class Draft:
    question: str
    answer: str
    equivalents: list[str]
    distractors: list[str]
    image: bytes
    topic: tuple[str, str, str, str]
    knowledge: list[str]
    visual_elements: dict[str, list[str]]
    kind: str = field(default="")


def _distinct_ints(value: int, extra: list[int], lo: int = 0) -> list[int]:
    """Three distinct wrong values: the given ones first, then value +- 1, 2, ..."""
    cands = [v for v in dict.fromkeys(extra) if v != value and v >= lo][:3]
    step = 1
    while len(cands) < 3:
        for v in (value + step, value - step):
            if v != value and v >= lo and v not in cands and len(cands) < 3:
                cands.append(v)
        step += 1
    return cands


def _int_distractors(rng: random.Random, value: int, extra: list[int], lo: int = 0) -> list[str]:
    cands = _distinct_ints(value, extra, lo)
    rng.shuffle(cands)
    return [str(v) for v in cands]


# ------------------------------------------------------------------ statistics


def bar_chart(rng: random.Random) -> Draft:
    names, noun, unit, title = rng.choice(
        [
            (["Mon", "Tue", "Wed", "Thu", "Fri"], "day", "books", "Books borrowed per day"),
            (["Apples", "Pears", "Plums", "Kiwis", "Limes"], "fruit", "boxes", "Fruit sold"),
            (
                ["Class A", "Class B", "Class C", "Class D", "Class E"],
                "class",
                "students",
                "Choir members",
            ),
        ]
    )
    k = rng.choice([4, 5])
    names = names[:k]
    step = rng.choice([1, 2, 5])
    values = [rng.randint(1, 12) * step for _ in names]
    top = 12 * step
    c = Canvas(560, 420)
    x0, y0, x1, y1 = 70, 370, 540, 50
    c.text((305, 24), title, 18)
    for t in range(0, 13):
        y = y0 - (y0 - y1) * t / 12
        c.line((x0, y), (x1, y), 1, fill=GRID)
        c.text((x0 - 8, y), str(t * step), 14, anchor="rm")
    c.line((x0, y0), (x1, y0), 2)
    c.line((x0, y0), (x0, y1), 2)
    slot = (x1 - x0) / k
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        cx = x0 + slot * (i + 0.5)
        h = (y0 - y1) * v / top
        c.rect((cx - slot * 0.3, y0 - h), (cx + slot * 0.3, y0), fill=PALETTE[i], outline=BLACK)
        c.text((cx, y0 + 16), name, 15)
    topic = ("Probability & Statistics", "Statistics", "Data Representation", "Bar Charts")
    visual = {"data_charts": ["Bar Chart"]}
    q = rng.choice(["diff", "total", "max"])
    if q == "max" and values.count(max(values)) > 1:
        q = "total"
    pairs = [(i, j) for i in range(k) for j in range(k) if values[i] > values[j]]
    if q == "diff" and not pairs:
        q = "total"
    if q == "diff":
        i, j = rng.choice(pairs)
        d = values[i] - values[j]
        return Draft(
            f"The bar chart shows {title.lower()}. How many more {unit} for {names[i]} "
            f"than for {names[j]}?",
            str(d),
            [],
            _int_distractors(rng, d, [values[i] + values[j], values[i], d + step], lo=0),
            c.png(),
            topic,
            ["Reading Bar Charts", "Subtraction of Whole Numbers"],
            visual,
            "integer",
        )
    if q == "total":
        s = sum(values)
        return Draft(
            f"The bar chart shows {title.lower()}. How many {unit} are there in total "
            f"for all {k} {noun}{'es' if noun == 'class' else 's'}?",
            str(s),
            [],
            _int_distractors(rng, s, [s - values[0], s + step, s - step, max(values) * k]),
            c.png(),
            topic,
            ["Reading Bar Charts", "Addition of Whole Numbers"],
            visual,
            "integer",
        )
    best = names[values.index(max(values))]
    return Draft(
        f"The bar chart shows {title.lower()}. Which {noun} has the most {unit}?",
        best,
        [],
        [n for n in names if n != best][:3],
        c.png(),
        topic,
        ["Reading Bar Charts", "Comparing Data"],
        visual,
        "text",
    )


def pie_chart(rng: random.Random) -> Draft:
    labels = rng.choice(
        [
            ["Football", "Tennis", "Swimming", "Running"],
            ["Rice", "Noodles", "Bread", "Soup"],
            ["Bus", "Bike", "Walk", "Car"],
        ]
    )
    while True:
        cuts = sorted(rng.sample(range(2, 20), 3))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, 20], strict=True)]
        if min(parts) >= 2:
            break
    pct = [p * 5 for p in parts]
    hidden = rng.randrange(4)
    total = rng.choice([40, 60, 80, 100, 200, 300, 400])
    c = Canvas(560, 420)
    center, r = (235, 215), 150
    start = 90.0
    for i, p in enumerate(pct):
        end = start - p * 3.6
        c.pieslice(center, r, end, start, PALETTE[i])
        mid = (start + end) / 2
        inside = p >= 20
        lx, ly = polar(center, r * (0.62 if inside else 1.2), mid)
        ink = "white" if inside else BLACK
        c.text((lx, ly - 10), labels[i], 15, fill=ink)
        c.text((lx, ly + 10), "?" if i == hidden else f"{p}%", 15, fill=ink)
        start = end
    c.text((470, 200), f"{total} people", 16)
    c.text((470, 225), "surveyed", 16)
    topic = ("Probability & Statistics", "Statistics", "Data Representation", "Pie Charts")
    visual = {"data_charts": ["Pie Chart"]}
    p = pct[hidden]
    if rng.random() < 0.5:
        n = total * p // 100
        return Draft(
            f"The pie chart shows how {total} people chose their favourite. "
            f"How many people chose {labels[hidden]}?",
            str(n),
            [],
            _int_distractors(rng, n, [p, total - n, n + total // 20], lo=1),
            c.png(),
            topic,
            ["Reading Pie Charts", "Percentages of a Quantity"],
            visual,
            "integer",
        )
    return Draft(
        f"What percentage of the people chose {labels[hidden]}, according to the pie chart?",
        f"{p}\\%",
        [f"{p}%", str(p)],
        [f"{v}\\%" for v in _int_distractors(rng, p, [100 - p, p + 5, p - 5, 25], lo=5)],
        c.png(),
        topic,
        ["Reading Pie Charts", "Percentages Sum to 100%"],
        visual,
        "percent",
    )


# ------------------------------------------------------------------ algebra


class _Grid:
    """A square coordinate grid from -6 to 6 on both axes."""

    LIM = 6

    def __init__(self, c: Canvas) -> None:
        self.c, self.ox, self.oy, self.u = c, 280, 210, 30

    def at(self, x: float, y: float) -> Point:
        return (self.ox + x * self.u, self.oy - y * self.u)

    def draw(self) -> None:
        c, lim = self.c, self.LIM
        for t in range(-lim, lim + 1):
            c.line(self.at(t, -lim), self.at(t, lim), 1, fill=GRID)
            c.line(self.at(-lim, t), self.at(lim, t), 1, fill=GRID)
        c.arrow(self.at(-lim - 0.5, 0), self.at(lim + 0.6, 0), 2)
        c.arrow(self.at(0, -lim - 0.5), self.at(0, lim + 0.6), 2)
        c.text(self.at(lim + 0.6, -0.5), "x", 16)
        c.text(self.at(0.45, lim + 0.5), "y", 16)
        c.text(self.at(-0.35, -0.4), "O", 14)
        for t in range(-lim, lim + 1, 2):
            if t:
                c.text(self.at(t, -0.45), str(t), 12)
                c.text(self.at(-0.45, t), str(t), 12)

    def curve(self, f: Callable[[float], float], color) -> None:
        pts, lim = [], self.LIM
        for i in range(0, 241):
            x = -lim + 2 * lim * i / 240
            y = f(x)
            if -lim - 0.01 <= y <= lim + 0.01:
                pts.append(self.at(x, y))
            elif len(pts) > 1:
                self.c.polyline(pts, 3, fill=color)
                pts = []
            else:
                pts = []
        if len(pts) > 1:
            self.c.polyline(pts, 3, fill=color)


def line_graph(rng: random.Random) -> Draft:
    while True:
        q = rng.choice([1, 1, 2, 3])
        p = rng.choice([v for v in range(-6, 7) if v != 0])
        b = rng.randint(-4, 4)
        m = Fraction(p, q)
        if abs(m) <= 4 and abs(b + p) <= 6 and Fraction(p, q).denominator == q:
            break
    c = Canvas(560, 420)
    g = _Grid(c)
    g.draw()
    g.curve(lambda x: float(m) * x + b, PALETTE[0])
    for x in (0, q):
        c.dot(g.at(x, b + m * x), 5, fill=PALETTE[3])
    topic = ("Algebra", "Functions", "Linear Functions", "Graphs of Linear Functions")
    visual = {"analytic_plots": ["Coordinate System", "Straight Line"]}
    which = rng.choice(["slope", "intercept", "root"])
    if which == "slope":
        value, know = m, ["Slope of a Line", "Reading Coordinates"]
        text = "The straight line passes through the two marked lattice points. What is its slope?"
    elif which == "intercept":
        value, know = Fraction(b), ["y-intercept of a Line", "Reading Coordinates"]
        text = "What is the y-intercept of the straight line shown in the figure?"
    else:
        value, know = -Fraction(b) / m, ["x-intercept of a Line", "Linear Equations"]
        text = (
            "The straight line passes through the two marked lattice points. "
            "At what value of x does it cross the x-axis?"
        )
    main, eq = ans.frac_forms(value)
    wrong = [
        value + 1,
        -value if value else Fraction(2),
        value - Fraction(1, 2),
        1 / value if value else Fraction(3),
    ]
    dis = [ans.frac_latex(w) for w in dict.fromkeys(wrong) if w != value][:3]
    return Draft(text, main, eq, dis, c.png(), topic, know, visual, "fraction")


def parabola(rng: random.Random) -> Draft:
    a = rng.choice([Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-1, 2)])
    h, k = rng.randint(-3, 3), rng.randint(-4, 4)
    c = Canvas(560, 420)
    g = _Grid(c)
    g.draw()
    g.curve(lambda x: float(a) * (x - h) ** 2 + k, PALETTE[2])
    c.dot(g.at(h, k), 5, fill=PALETTE[3])
    topic = ("Algebra", "Functions", "Quadratic Functions", "Graphs of Quadratic Functions")
    visual = {"analytic_plots": ["Coordinate System", "Parabola"]}
    which = rng.choice(["vertex", "axis", "extreme"])
    if which == "vertex":
        return Draft(
            "The graph of a quadratic function is shown, with its vertex marked. "
            "What are the coordinates of the vertex?",
            f"({h},{k})",
            [f"({h}, {k})"],
            [f"({x},{y})" for x, y in [(k, h), (-h, k), (h, -k), (h + 1, k)] if (x, y) != (h, k)][
                :3
            ],
            c.png(),
            topic,
            ["Vertex of a Parabola", "Reading Coordinates"],
            visual,
            "coordinates",
        )
    if which == "axis":
        return Draft(
            "What is the equation of the axis of symmetry of the parabola shown?",
            f"x={h}",
            [f"x = {h}"],
            [f"x={v}" for v in _int_distractors(rng, h, [-h, k, h + 1])],
            c.png(),
            topic,
            ["Axis of Symmetry", "Vertex of a Parabola"],
            visual,
            "equation",
        )
    word = "minimum" if a > 0 else "maximum"
    return Draft(
        f"What is the {word} value of the quadratic function whose graph is shown?",
        str(k),
        [],
        _int_distractors(rng, k, [h, -k, k + 1], lo=-99),
        c.png(),
        topic,
        [f"{word.title()} Value of a Quadratic Function"],
        visual,
        "integer",
    )


# ------------------------------------------------------------------ geometry


def _fit(points: list[tuple[float, float]], box: tuple[float, float, float, float]):
    """Map math points (y up) into a screen box, keeping proportions."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    (bx0, by0, bx1, by1) = box
    s = min((bx1 - bx0) / (max(xs) - min(xs)), (by1 - by0) / (max(ys) - min(ys)))
    ox = bx0 + ((bx1 - bx0) - s * (max(xs) - min(xs))) / 2
    oy = by1 - ((by1 - by0) - s * (max(ys) - min(ys))) / 2
    return [(ox + (x - min(xs)) * s, oy - (y - min(ys)) * s) for x, y in points]


def _screen_angle(v: Point, w: Point) -> float:
    """Math-convention angle (deg) of the ray from v to w on screen."""
    return math.degrees(math.atan2(-(w[1] - v[1]), w[0] - v[0])) % 360


def _mark_angle(c: Canvas, v: Point, a: Point, b: Point, label: str, r: float = 24) -> None:
    """Arc inside the (convex) angle a-v-b and a label on its bisector."""
    t1, t2 = _screen_angle(v, a), _screen_angle(v, b)
    if (t2 - t1) % 360 > 180:
        t1, t2 = t2, t1
    span = (t2 - t1) % 360
    c.arc(v, r, t1, t1 + span, 2)
    c.text(polar(v, r + 20 + (8 if span < 45 else 0), t1 + span / 2), label, 16)


def triangle_angles(rng: random.Random) -> Draft:
    while True:
        A, B = rng.randint(30, 95), rng.randint(30, 95)
        C = 180 - A - B
        if C >= 30:
            break
    b_len = math.sin(math.radians(B)) / math.sin(math.radians(C))
    apex = (b_len * math.cos(math.radians(A)), b_len * math.sin(math.radians(A)))
    exterior = rng.random() < 0.35
    pts = [(0.0, 0.0), (1.0, 0.0), apex]
    if exterior:
        pts.append((1.35, 0.0))
    scr = _fit(pts, (70, 50, 490, 370))
    P, Q, R = scr[0], scr[1], scr[2]
    c = Canvas(560, 420)
    c.polygon([P, Q, R], outline=BLACK, width=2.5)
    c.text((P[0] - 14, P[1] + 10), "A", 18)
    c.text((Q[0] + 4, Q[1] + 18), "B", 18)
    c.text((R[0], R[1] - 18), "C", 18)
    topic = ("Geometry", "Plane Geometry", "Basic Plane Figures", "Triangle")
    visual = {"planar_geometry": ["Triangle", "Angle"]}
    if exterior:
        D = scr[3]
        c.line(Q, D, 2.5)
        _mark_angle(c, P, Q, R, f"{A}°")
        _mark_angle(c, R, P, Q, f"{C}°")
        _mark_angle(c, Q, D, R, "x")
        x = A + C
        know = ["Exterior Angle Theorem of a Triangle"]
        dis = [180 - x, x - 10, A]
        text = (
            "In the figure, side AB is extended beyond B. Find the measure of angle x in degrees."
        )
    else:
        shown = rng.sample([("A", A), ("B", B), ("C", C)], 3)
        (n1, v1), (n2, v2), (n3, x) = shown
        marks = {n1: f"{v1}°", n2: f"{v2}°", n3: "x"}
        _mark_angle(c, P, Q, R, marks["A"])
        _mark_angle(c, Q, R, P, marks["B"])
        _mark_angle(c, R, P, Q, marks["C"])
        know = ["Triangle Angle Sum Theorem"]
        dis = [180 - x, 90 - x if x < 90 else x - 20, v1]
        text = "Find the measure of angle x in the triangle, in degrees."
    main, eq = ans.degrees_forms(x)
    return Draft(
        text, main, eq, _int_distractors(rng, x, dis, lo=1), c.png(), topic, know, visual, "angle"
    )


def right_triangle(rng: random.Random) -> Draft:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    find_leg = rng.random() < 0.35
    pts = _fit([(0, 0), (a, 0), (0, b)], (90, 60, 470, 360))
    origin, X, Y = pts
    c = Canvas(560, 420)
    c.polygon([origin, X, Y], outline=BLACK, width=2.5)
    s = 14
    c.polyline(
        [(origin[0] + s, origin[1]), (origin[0] + s, origin[1] - s), (origin[0], origin[1] - s)],
        1.5,
    )
    c.text(((origin[0] + X[0]) / 2, origin[1] + 18), str(a), 18)
    hyp_at = ((X[0] + Y[0]) / 2 + 22, (X[1] + Y[1]) / 2 - 14)
    if not find_leg:
        c.text(hyp_at, "x", 18)
    else:
        k, m = ans.simplify_sqrt(a * a + b * b)
        if m == 1:
            c.text(hyp_at, str(k), 18)
        else:
            c.radical(hyp_at, str(m), 18, coef=str(k) if k > 1 else "")
    c.text((origin[0] - 18, (origin[1] + Y[1]) / 2), "x" if find_leg else str(b), 18)
    topic = ("Geometry", "Plane Geometry", "Triangles", "Pythagorean Theorem")
    visual = {"planar_geometry": ["Right Triangle", "Right Angle Mark"]}
    know = ["Pythagorean Theorem", "Simplifying Square Roots"]
    if find_leg:
        hyp2 = a * a + b * b
        main, eq = ans.sqrt_forms(b * b)
        wrong = [hyp2 + a * a, hyp2 - a * a + 1, hyp2 - 1]
        text = "In the right triangle, find the length x."
    else:
        main, eq = ans.sqrt_forms(a * a + b * b)
        wrong = [a * a + b * b + 1, a * a + b * b - 2, (a + b) ** 2]
        text = (
            "In the right triangle, the legs have the lengths shown. "
            "Find the length x of the hypotenuse."
        )
    dis = [d for d in dict.fromkeys(ans.sqrt_forms(w)[0] for w in wrong) if d != main]
    while len(dis) < 3:
        dis.append(str(a + b + len(dis)))
    return Draft(text, main, eq, dis[:3], c.png(), topic, know, visual, "radical")


def circle_measures(rng: random.Random) -> Draft:
    r = rng.randint(2, 12)
    use_diameter = rng.random() < 0.4
    c = Canvas(560, 420)
    center, R = (280, 215), 160
    c.circle(center, R, outline=PALETTE[0], width=3)
    c.dot(center, 4)
    c.text((center[0] - 14, center[1] + 16), "O", 16)
    if use_diameter:
        c.line((center[0] - R, center[1]), (center[0] + R, center[1]), 2)
        c.text((center[0] + R / 2, center[1] - 16), f"d = {2 * r} cm", 18)
    else:
        end = polar(center, R, 35)
        c.line(center, end, 2)
        c.text(polar(center, R * 0.55, 55), f"r = {r} cm", 18)
    topic = ("Geometry", "Plane Geometry", "Circles", "Circumference and Area of a Circle")
    visual = {"planar_geometry": ["Circle", "Diameter" if use_diameter else "Radius"]}
    if rng.random() < 0.5:
        main, eq = ans.pi_forms(r * r)
        dis = [ans.pi_forms(v)[0] for v in _distinct_ints(r * r, [2 * r, 4 * r * r, r * r + 2 * r])]
        text = "Find the area of the circle in square centimetres. Give your answer in terms of π."
        know = ["Area of a Circle"]
    else:
        main, eq = ans.pi_forms(2 * r)
        dis = [ans.pi_forms(v)[0] for v in _distinct_ints(2 * r, [r * r, r, 4 * r])]
        text = (
            "Find the circumference of the circle in centimetres. Give your answer in terms of π."
        )
        know = ["Circumference of a Circle"]
    return Draft(text, main, eq, dis[:3], c.png(), topic, know, visual, "pi")


def parallel_lines(rng: random.Random) -> Draft:
    theta = rng.choice([v for v in range(35, 146, 5) if v != 90])
    yu, yl = 140.0, 300.0
    dx = (yl - yu) / math.tan(math.radians(theta))
    p1 = (280 + dx / 2, yu)
    p2 = (280 - dx / 2, yl)
    c = Canvas(560, 420)
    for y, name in ((yu, "a"), (yl, "b")):
        c.line((40, y), (520, y), 2.5)
        c.text((530, y), name, 18, anchor="lm")
    ext = 90 / math.sin(math.radians(theta))
    c.line(polar(p1, ext, theta), polar(p2, ext, theta + 180), 2.5)
    # The four regions at a crossing, as (start ray, end ray, size), counter-clockwise.
    regions = [(0, theta), (theta, 180), (180, 180 + theta), (180 + theta, 360)]
    size = [theta, 180 - theta, theta, 180 - theta]
    gi, xi = rng.randrange(4), rng.randrange(4)

    def mark(p: Point, i: int, label: str) -> None:
        s, e = regions[i]
        c.arc(p, 22, s, e, 2)
        c.text(polar(p, 44, (s + e) / 2), label, 17)

    mark(p1, gi, f"{size[gi]}°")
    mark(p2, xi, "x")
    x = size[xi]
    topic = (
        "Geometry",
        "Plane Geometry",
        "Intersecting and Parallel Lines",
        "Angles Formed by Parallel Lines",
    )
    visual = {"planar_geometry": ["Parallel Lines", "Transversal", "Angle"]}
    know = ["Properties of Parallel Lines"] + (
        ["Corresponding and Alternate Angles"] if size[gi] == x else ["Supplementary Angles"]
    )
    main, eq = ans.degrees_forms(x)
    text = (
        "Lines a and b are parallel and are cut by a transversal. "
        "Find the measure of angle x in degrees."
    )
    return Draft(
        text,
        main,
        eq,
        _int_distractors(rng, x, [180 - x, 90 - x if x < 90 else x - 90, x + 10], lo=1),
        c.png(),
        topic,
        know,
        visual,
        "angle",
    )


def _dashed(c: Canvas, a: Point, b: Point, dash: float = 8) -> None:
    n = max(1, int(math.dist(a, b) // dash))
    for i in range(0, n, 2):
        t0, t1 = i / n, min(1.0, (i + 1) / n)
        c.line(
            (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
            (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1),
            1.5,
        )


def cuboid(rng: random.Random) -> Draft:
    L, W, H = rng.randint(2, 12), rng.randint(2, 10), rng.randint(2, 12)
    s = min(300 / (L + W * 0.5), 300 / (H + W * 0.5))
    ox, oy = 110, 360
    dx, dy = W * s * 0.5 * math.cos(math.radians(35)), W * s * 0.5 * math.sin(math.radians(35))
    f = [(ox, oy), (ox + L * s, oy), (ox + L * s, oy - H * s), (ox, oy - H * s)]
    b = [(x + dx, y - dy) for x, y in f]
    c = Canvas(560, 420)
    for i in range(4):
        c.line(f[i], f[(i + 1) % 4], 2.5)
    for i in (1, 2, 3):
        c.line(f[i], b[i], 2.5)
    c.line(b[1], b[2], 2.5)
    c.line(b[2], b[3], 2.5)
    _dashed(c, f[0], b[0])
    _dashed(c, b[0], b[1])
    _dashed(c, b[0], b[3])
    c.text(((f[0][0] + f[1][0]) / 2, oy + 18), f"{L} cm", 17)
    c.text((ox - 34, (f[0][1] + f[3][1]) / 2), f"{H} cm", 17)
    c.text(((f[1][0] + b[1][0]) / 2 + 30, (f[1][1] + b[1][1]) / 2 + 8), f"{W} cm", 17)
    topic_last = "Volume of a Cuboid"
    if rng.random() < 0.5:
        v = L * W * H
        text = "Find the volume of the cuboid in cubic centimetres."
        dis = [2 * (L * W + L * H + W * H), L + W + H, v + L * W]
        know = ["Volume of a Cuboid"]
    else:
        v = 2 * (L * W + L * H + W * H)
        text = "Find the total surface area of the cuboid in square centimetres."
        dis = [L * W * H, L * W + L * H + W * H, v + 2 * L * W]
        know = ["Surface Area of a Cuboid"]
        topic_last = "Surface Area of a Cuboid"
    topic = ("Geometry", "Solid Geometry", "Cuboids and Cubes", topic_last)
    visual = {"solid_geometry": ["Cuboid", "Hidden Edges"]}
    return Draft(
        text,
        str(v),
        [],
        _int_distractors(rng, v, dis, lo=1),
        c.png(),
        topic,
        know,
        visual,
        "integer",
    )


# ------------------------------------------------------------------ fundamental skills


def _shape(c: Canvas, kind: str, at: Point, r: float, color) -> None:
    x, y = at
    if kind == "circle":
        c.circle(at, r, fill=color, outline=BLACK, width=1.5)
    elif kind == "square":
        c.rect(
            (x - r * 0.85, y - r * 0.85),
            (x + r * 0.85, y + r * 0.85),
            fill=color,
            outline=BLACK,
            width=1.5,
        )
    else:
        c.polygon(
            [(x, y - r), (x + r * 0.95, y + r * 0.75), (x - r * 0.95, y + r * 0.75)],
            fill=color,
            outline=BLACK,
            width=1.5,
        )


def shape_count(rng: random.Random) -> Draft:
    kinds = ["circle", "square", "triangle"]
    colors = list(COLOR_NAMES)[: rng.choice([3, 4])]
    cells = rng.sample([(i, j) for i in range(6) for j in range(4)], rng.randint(10, 18))
    items = [(cell, rng.choice(kinds), rng.choice(colors)) for cell in cells]
    target_kind, target_color = rng.choice([(k, col) for _, k, col in items])
    c = Canvas(560, 420)
    for (i, j), kind, color in items:
        at = (60 + i * 88 + rng.uniform(-12, 12), 60 + j * 100 + rng.uniform(-12, 12))
        _shape(c, kind, at, 26, COLOR_NAMES[color])
    n = sum(1 for _, k, col in items if k == target_kind and col == target_color)
    same_kind = sum(1 for _, k, _ in items if k == target_kind)
    same_color = sum(1 for _, _, col in items if col == target_color)
    topic = (
        "Fundamental Mathematical Skills",
        "Counting",
        "Counting Objects",
        "Counting by Attributes",
    )
    visual = {"schematic_diagrams": ["Shape Arrangement"]}
    return Draft(
        f"How many {target_color} {target_kind}s are there in the picture?",
        str(n),
        [],
        _int_distractors(rng, n, [same_kind, same_color, len(items)], lo=0),
        c.png(),
        topic,
        ["Counting", "Classifying Shapes and Colours"],
        visual,
        "integer",
    )


def fraction_bar(rng: random.Random) -> Draft:
    n = rng.randint(3, 12)
    k = rng.randint(1, n - 1)
    shaded = set(rng.sample(range(n), k))
    c = Canvas(560, 240)
    x0, x1, y0, y1 = 40, 520, 70, 170
    w = (x1 - x0) / n
    for i in range(n):
        c.rect(
            (x0 + i * w, y0),
            (x0 + (i + 1) * w, y1),
            fill=PALETTE[0] if i in shaded else "white",
            outline=BLACK,
            width=2,
        )
    c.text((280, 30), "The strip is divided into equal parts.", 17)
    q = Fraction(k, n)
    main, eq = ans.frac_forms(q)
    if q.denominator != n:
        eq.append(f"{k}/{n}")
    wrong = [
        Fraction(n - k, n),
        Fraction(k, n + 1) if k < n + 1 else Fraction(1, n),
        Fraction(1, n),
    ]
    dis = [ans.frac_latex(w) for w in dict.fromkeys(wrong) if w != q]
    while len(dis) < 3:
        dis.append(ans.frac_latex(Fraction(k + len(dis), n + 3)))
    topic = (
        "Fundamental Mathematical Skills",
        "Fractions",
        "Understanding Fractions",
        "Fractions of a Whole",
    )
    visual = {"schematic_diagrams": ["Fraction Strip"]}
    return Draft(
        "What fraction of the strip is shaded? Give the fraction in lowest terms.",
        main,
        eq,
        dis[:3],
        c.png(),
        topic,
        ["Meaning of Fractions", "Simplifying Fractions"],
        visual,
        "fraction",
    )


FAMILIES: dict[str, Callable[[random.Random], Draft]] = {
    "bar_chart": bar_chart,
    "pie_chart": pie_chart,
    "line_graph": line_graph,
    "parabola": parabola,
    "triangle_angles": triangle_angles,
    "right_triangle": right_triangle,
    "circle": circle_measures,
    "parallel_lines": parallel_lines,
    "cuboid": cuboid,
    "shape_count": shape_count,
    "fraction_bar": fraction_bar,
}
