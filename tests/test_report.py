"""The HTML reports (pslsched.app.report): the figures' content read back from the pages, offline pages, escaping,
and a real headless Chromium loading every page (no JavaScript error, every plotly figure rendered)."""

from __future__ import annotations

import base64
import html as htmllib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pslsched.app.report import (
    compare_report,
    schedule_report,
    simulation_report,
    sweep_report,
    training_report,
    write_report,
)
from pslsched.core.instance import Instance
from pslsched.core.testbed import build, default_testbed_path, load_testbed
from pslsched.core.timing import completion_times
from pslsched.simulator import SimConfig, simulate
from pslsched.solvers import solve
from pslsched.solvers.compare import compare

CHROMIUM = shutil.which("chromium")
TOL = 1e-6


# ---------------------------------------------------------------- inputs


def tiny_instance(name: str = "tiny", clients=("c0", "c1", "c2", "c3"), helpers=("h0", "h1")) -> Instance:
    """4 clients, 2 helpers, 2 batches per round: chains that repeat and queues that wait."""
    rng = np.random.default_rng(1)
    k, h = len(clients), len(helpers)

    def m():
        return rng.uniform(5, 20, (k, h)).round(1)

    return Instance(
        name=name,
        clients=tuple(clients),
        helpers=tuple(helpers),
        release=m(),
        fwd=m(),
        delay=m(),
        bwd=m(),
        tail=m(),
        demand=np.ones(k),
        capacity=np.full(h, 10.0),
        batches=2,
    )


@pytest.fixture(scope="module")
def world():
    built = build(load_testbed(default_testbed_path()))
    inst = built.instance
    names = ["random", "greedy", "equid"]
    schedules = {n: solve(inst, n, time_limit=5).schedule for n in names}
    table = compare(inst, names, time_limit=5)
    record = simulate(inst, schedules["greedy"], SimConfig(rounds=3), workload=built.workload)
    rounds = record.rounds.copy()
    rounds["samples"] = 100
    rounds["train_loss"] = [2.0, 1.2, 0.8]
    rounds["test_loss"] = [2.1, np.nan, 0.9]
    rounds["test_accuracy"] = [0.3, np.nan, 0.85]
    rounds["wall_s"] = 0.5
    cost = record.rounds.assign(train_loss=np.nan, test_loss=np.nan, test_accuracy=np.nan, wall_s=0.1)
    sweep = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(6)],
            "solver": ["greedy", "greedy", "equid", "equid", "random", "random"],
            "seed": [0, 1] * 3,
            "strategy": ["psl"] * 6,
            "run_status": ["ok"] * 5 + ["error"],
            "makespan_ms": [10.0, 12.0, 9.0, 9.5, 15.0, np.nan],
            "final_accuracy": [0.8, 0.7, 0.9, 0.85, 0.5, np.nan],
            "time_to_accuracy_ms": [100.0, None, 300.0, 200.0, None, None],
        }
    )
    tiny = tiny_instance()
    return {
        "inst": inst,
        "schedule": schedules["greedy"],
        "schedules": schedules,
        "table": table,
        "record": record,
        "rounds": rounds,
        "cost": cost,
        "sweep": sweep,
        "tiny": tiny,
        "tiny_schedule": solve(tiny, "greedy").schedule,
    }


@pytest.fixture(scope="module")
def pages(world, tmp_path_factory):
    """Every report page, written to files: name -> (path, html)."""
    w = world
    built = {
        "schedule": schedule_report(w["inst"], w["schedule"], "greedy on the default testbed", w["table"]),
        "tiny": schedule_report(w["tiny"], w["tiny_schedule"], "greedy on a tiny instance, 2 batches"),
        "compare": compare_report(w["inst"], w["table"], w["schedules"]),
        "simulation": simulation_report(w["record"]),
        "training": training_report(w["rounds"], w["record"], 0.8),
        "cost_only": training_report(w["cost"], w["record"], 0.8),
        "sweep": sweep_report(
            w["sweep"], ["solver", "seed", "strategy"], ["makespan_ms", "time_to_accuracy_ms"]
        ),
    }
    folder = tmp_path_factory.mktemp("reports")
    return {name: (write_report(folder / f"{name}.html", text), text) for name, text in built.items()}


# ---------------------------------------------------------------- reading figures back from a page


def _arrays(obj):
    """plotly's base64 typed arrays ({"dtype", "bdata"}) decoded to lists, everywhere in a figure."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
            return arr.reshape(obj["shape"]).tolist() if "shape" in obj else arr.tolist()
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    return obj


def figures(page: str) -> dict[str, dict]:
    """div id -> {"data": traces, "layout": layout}, parsed from the page's ``Plotly.newPlot(id, data, layout``."""
    body = page[page.index("</head>") :]
    dec = json.JSONDecoder()
    out = {}
    for match in re.finditer(r"Plotly\.newPlot\(\s*", body):
        pos = match.end()
        parts = []
        for _ in range(3):
            value, pos = dec.raw_decode(body, pos)
            parts.append(value)
            pos = re.compile(r"\s*,\s*").match(body, pos).end()
        out[parts[0]] = {"data": _arrays(parts[1]), "layout": parts[2]}
    return out


def traces(fig: dict, prefix: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("name", "").startswith(prefix)]


def points(fig: dict, prefix: str) -> int:
    return sum(len(t.get("x") or []) for t in traces(fig, prefix))


def bars(fig: dict, prefix: str) -> list[tuple[str, float, float, list]]:
    """(row, start, end, customdata) of every horizontal bar of the traces named ``prefix...``."""
    out = []
    for t in traces(fig, prefix):
        custom = t.get("customdata") or [None] * len(t["x"])
        for y, base, width, cd in zip(t["y"], t["base"], t["x"], custom):
            out.append((y, base, base + width, cd))
    return out


# ---------------------------------------------------------------- the schedule page


@pytest.mark.parametrize("case", ["default", "tiny"])
def test_the_timeline_has_a_bar_per_helper_task_and_per_client_step(world, pages, case):
    inst = world["inst"] if case == "default" else world["tiny"]
    sched = world["schedule"] if case == "default" else world["tiny_schedule"]
    fig = figures(pages["schedule" if case == "default" else "tiny"][1])["fig-timeline"]
    helper = bars(fig, "T2 fwd") + bars(fig, "T4 bwd")
    assert len(helper) == len(sched.tasks) == 2 * inst.batches * inst.num_clients
    by_key = {(t.client, t.batch, t.phase): t for t in sched.tasks}
    got = {(cd[0], cd[3], cd[2]): (row, s, e, cd) for row, s, e, cd in helper}
    assert set(got) == set(by_key)
    for key, t in by_key.items():
        row, s, e, cd = got[key]
        assert row == f"helper {t.helper}" and s == pytest.approx(t.start) and e == pytest.approx(t.end)
    # the wait on a helper task is start - ready, ready recomputed here from the chain of problem.md §1
    for c in inst.clients:
        j, i = inst.client_index[c], inst.helper_index[sched.assignment[c]]
        t = 0.0
        for b in range(inst.batches):
            f, k = by_key[(c, b, "fwd")], by_key[(c, b, "bwd")]
            assert got[(c, b, "fwd")][3][7] == pytest.approx(f.start - (t + inst.release[j, i]), abs=1e-6)
            assert got[(c, b, "bwd")][3][7] == pytest.approx(k.start - (f.end + inst.delay[j, i]), abs=1e-6)
            t = k.end + inst.tail[j, i]
    for step in ("T1 release", "T3 delay", "T5 tail"):  # one bar per client and batch
        assert points(fig, step) == inst.num_clients * inst.batches
    # a client's own bars and its helper tasks tile [0, completion] exactly
    completion = completion_times(inst, sched.assignment, sched.tasks)
    client = [b for p in ("T1", "T3", "T5", "waiting") for b in bars(fig, p)]
    for c in inst.clients:
        mine = sorted([(s, e) for row, s, e, _ in client if row == f"client {c}"])
        mine += [(s, e) for row, s, e, cd in helper if cd[0] == c]
        mine.sort()
        assert mine[0][0] == pytest.approx(0.0)
        assert all(a[1] == pytest.approx(b[0]) for a, b in zip(mine, mine[1:]))
        assert mine[-1][1] == pytest.approx(completion[inst.client_index[c]])


@pytest.mark.parametrize("case", ["default", "tiny"])
def test_the_critical_path_ends_with_the_last_client_and_spans_the_makespan(world, pages, case):
    inst = world["inst"] if case == "default" else world["tiny"]
    sched = world["schedule"] if case == "default" else world["tiny_schedule"]
    fig = figures(pages["schedule" if case == "default" else "tiny"][1])["fig-timeline"]
    completion = completion_times(inst, sched.assignment, sched.tasks)
    last = inst.clients[int(np.argmax(completion))]
    (crit,) = traces(fig, "critical path")
    assert crit["meta"]["critical_client"] == last and last in crit["name"]
    assert crit["marker"]["line"]["width"] >= 2
    path = sorted(zip(crit["base"], (b + x for b, x in zip(crit["base"], crit["x"])), crit["y"]))
    assert path[0][0] == pytest.approx(0.0)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(path, path[1:]))  # one unbroken chain of steps
    assert path[-1][1] == pytest.approx(float(completion.max())) and path[-1][2] == f"client {last}"
    assert any(row.startswith("helper ") for _, _, row in path)
    assert any(row == f"client {last}" and end == pytest.approx(completion.max()) for _, end, row in path)


def test_the_makespan_is_a_labelled_vertical_line(world, pages):
    fig = figures(pages["schedule"][1])["fig-timeline"]
    m = world["schedule"].makespan
    lines = [s for s in fig["layout"]["shapes"] if s["x0"] == s["x1"] and s.get("yref") == "paper"]
    assert len(lines) == 1 and lines[0]["x0"] == pytest.approx(m) and "makespan" in lines[0]["name"]
    assert any(f"{m:,.1f}" in a["text"] for a in fig["layout"]["annotations"])
    assert fig["layout"]["barmode"] == "overlay" and fig["layout"]["yaxis"]["autorange"] == "reversed"


def test_the_chain_bars_stack_to_each_clients_completion(world, pages):
    inst, sched = world["tiny"], world["tiny_schedule"]
    fig = figures(pages["tiny"][1])["fig-chain"]
    assert fig["layout"]["barmode"] == "stack"
    total: dict[str, float] = {}
    for t in fig["data"]:
        for x, y in zip(t["x"], t["y"]):
            total[x] = total.get(x, 0.0) + y
    completion = completion_times(inst, sched.assignment, sched.tasks)
    assert total == {c: pytest.approx(completion[inst.client_index[c]]) for c in inst.clients}
    names = " ".join(t["name"] for t in fig["data"])
    assert "(client)" in names and "(helper)" in names and "waiting" in names


def test_the_baselines_bars_start_at_zero_with_gap_labels_and_the_bound(world, pages):
    table = world["table"]
    fig = figures(pages["schedule"][1])["fig-baselines"]
    (bar,) = traces(fig, "makespan")
    assert bar["x"] == list(table["solver"]) and bar["y"] == pytest.approx(list(table["makespan_ms"]))
    assert all(t.startswith("gap ") and t.endswith(" %") for t in bar["text"])
    assert fig["layout"]["yaxis"]["range"][0] == 0
    bound = float(table["lower_bound_ms"].iloc[0])
    assert [s["y0"] for s in fig["layout"]["shapes"]] == [pytest.approx(bound)]
    assert pages["schedule"][1].count('<table class="dataframe data"') == 2  # helpers + baselines


# ---------------------------------------------------------------- compare, simulation, training, sweep


def test_compare_shows_every_solver_and_the_best_valid_timeline(world):
    table = world["table"]
    broken = pd.DataFrame(
        [{"solver": "broken", "status": "error: boom", "valid": False, "makespan_ms": np.nan}]
    )
    table = pd.concat([table, broken], ignore_index=True)
    page = compare_report(world["inst"], table, world["schedules"])
    figs = figures(page)
    assert set(figs) == {"fig-compare", "fig-timeline", "fig-chain"}
    (missing,) = traces(figs["fig-compare"], "no valid schedule")
    assert missing["x"] == ["broken"] and missing["y"] == [0.0] and "error: boom" in missing["text"][0]
    valid = table.dropna(subset=["makespan_ms"])
    best = valid.loc[valid["makespan_ms"].idxmin(), "solver"]
    tl = figs["fig-timeline"]
    assert best in tl["layout"]["title"]["text"]
    assert points(tl, "T2 fwd") + points(tl, "T4 bwd") == len(world["schedules"][best].tasks)


def test_the_simulation_page_reads_round_0_and_the_round_times(world, pages):
    record = world["record"]
    figs = figures(pages["simulation"][1])
    assert set(figs) == {"fig-timeline", "fig-completion", "fig-rounds", "fig-planned", "fig-plan"}
    r0 = record.timeline[record.timeline["round"] == 0]
    helper = bars(figs["fig-timeline"], "T2 fwd") + bars(figs["fig-timeline"], "T4 bwd")
    assert len(helper) == len(r0)
    assert sorted(cd[7] for *_, cd in helper) == pytest.approx(sorted(r0["wait"]), abs=1e-6)
    waits = sum(e - s for _, s, e, _ in bars(figs["fig-timeline"], "waiting"))
    assert waits == pytest.approx(float(r0["wait"].sum()))
    total: dict[str, float] = {}
    for t in figs["fig-completion"]["data"]:
        for x, y in zip(t["x"], t["y"]):
            total[x] = total.get(x, 0.0) + y
    comp = record.completion[record.completion["round"] == 0].set_index("client")["completion_ms"]
    assert total == {c: pytest.approx(v) for c, v in comp.items()}
    rounds = figs["fig-rounds"]
    assert rounds["layout"]["barmode"] == "stack"
    (span,) = traces(rounds, "makespan")
    (exchange,) = traces(rounds, "round-end weight exchange")
    assert span["y"] == pytest.approx(list(record.rounds["makespan_ms"]))
    assert exchange["y"] == pytest.approx(list(record.rounds["round_time_ms"] - record.rounds["makespan_ms"]))
    (planned,) = traces(figs["fig-planned"], "planned")
    assert planned["y"] == [pytest.approx(record.schedule.makespan)]


def test_the_training_page_plots_accuracy_on_virtual_time_with_the_target(world, pages):
    rounds = world["rounds"]
    figs = figures(pages["training"][1])
    assert set(figs) == {"fig-accuracy", "fig-loss", "fig-rounds", "fig-timeline"}
    (acc,) = figs["fig-accuracy"]["data"]
    ok = rounds["test_accuracy"].notna()
    ends = ((rounds["start_ms"] + rounds["round_time_ms"]) / 1000)[ok]
    assert acc["x"] == pytest.approx(list(ends)) and acc["y"] == pytest.approx(
        list(rounds["test_accuracy"][ok])
    )
    layout = figs["fig-accuracy"]["layout"]
    assert [s["y0"] for s in layout["shapes"]] == [0.8]
    assert any(a["text"] == "target 0.8" for a in layout["annotations"])
    assert "(s)" in layout["xaxis"]["title"]["text"]
    assert {t["name"] for t in figs["fig-loss"]["data"]} == {"train loss", "test loss"}
    assert "target 0.8 reached after" in pages["training"][1]


def test_a_cost_only_training_run_gets_notes_instead_of_empty_figures(pages):
    page = pages["cost_only"][1]
    assert set(figures(page)) == {"fig-rounds", "fig-timeline"}
    assert "no round was evaluated" in page and "no loss was recorded" in page


def test_the_sweep_page_shows_points_that_never_reached_the_target(world, pages):
    results = world["sweep"]
    figs = figures(pages["sweep"][1])
    tta = figs["fig-metric-1"]
    assert tta["layout"]["xaxis"]["type"] == "category"
    assert tta["layout"]["xaxis"]["categoryarray"] == ["greedy", "equid", "random"]
    assert all("lines" not in t["mode"] for f in figs.values() for t in f["data"])
    gone = [t for t in tta["data"] if "not reached" in t["name"] or "failed" in t["name"]]
    assert sum(len(t["x"]) for t in gone) == int(results["time_to_accuracy_ms"].isna().sum()) == 3
    assert all(y == 0 for t in gone for y in t["y"])
    texts = [s for t in gone for s in t["text"]]
    assert texts.count("not reached") == 2 and texts.count("failed") == 1  # the failed run is told apart
    shown = sum(len(t["x"]) for t in tta["data"])
    assert shown == len(results)  # nothing dropped
    ms = figs["fig-metric-0"]
    assert ms["layout"]["yaxis"]["title"]["text"] == "makespan (ms)"
    assert sum(len(t["x"]) for t in ms["data"]) == len(results)
    assert pages["sweep"][1].count("<tr") == len(results) + 1


# ---------------------------------------------------------------- every page


def test_every_figure_has_axis_titles_a_legend_and_bars_from_zero(pages):
    for name, (_, page) in pages.items():
        for div, fig in figures(page).items():
            layout = fig["layout"]
            assert layout["title"]["text"], (name, div)
            for axis in ("xaxis", "yaxis"):
                assert layout[axis]["title"]["text"], (name, div, axis)
            series = len(fig["data"]) + sum(1 for s in layout.get("shapes", []) if s.get("showlegend"))
            if series > 1:
                assert layout.get("showlegend", True) is not False, (name, div)
            if any(t["type"] == "bar" and t.get("orientation") != "h" for t in fig["data"]):
                assert layout["yaxis"]["range"][0] == 0 and layout["yaxis"]["rangemode"] == "tozero", (
                    name,
                    div,
                )


def test_pages_are_offline_and_embed_plotly_js_once(pages):
    from plotly.offline import get_plotlyjs

    head = get_plotlyjs()[:200]
    for name, (_, page) in pages.items():
        remote = re.findall(
            r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page
        )
        assert remote == [], name
        assert not re.search(r"<script\b[^>]*\bsrc\s*=", page), name  # every script is inline
        assert "<link" not in page and "@import" not in page and "fonts.googleapis" not in page, name
        assert page.count(head) == 1 and page.count("* plotly.js v") == 1, name
        n = len(figures(page))
        assert n >= 2 and page.count("Plotly.newPlot(") - get_plotlyjs().count("Plotly.newPlot(") == n, name
        assert page.startswith("<!DOCTYPE html>") and "<title>" in page and '<p class="summary">' in page


def test_names_are_escaped_everywhere():
    evil = "<script>alert(1)</script>"
    inst = tiny_instance(
        name=f"x {evil} & y", clients=("c<0>", "<b>c1</b>", "c&2", 'c"3'), helpers=("h<0>", "h1")
    )
    sched = solve(inst, "greedy").schedule
    page = schedule_report(inst, sched, f"title {evil}")
    assert evil not in page and "<b>c1</b>" not in page
    assert "<title>title &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert "<h1>title &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    rows = figures(page)["fig-timeline"]["layout"]["yaxis"]["categoryarray"]
    assert (
        "client &lt;b&gt;c1&lt;/b&gt;" in rows and "helper h&lt;0&gt;" in rows
    )  # plotly shows entities as text


def test_write_report_is_atomic_with_the_usual_permissions(tmp_path):
    path = tmp_path / "sub" / "r.html"
    assert write_report(path, "<p>one</p>") == path
    write_report(path, "<p>two</p>")
    assert path.read_text() == "<p>two</p>"
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_report_package_does_not_import_torch():
    code = (
        "import sys, pandas as pd\n"
        "from pslsched.app.report import schedule_report, sweep_report\n"
        "from pslsched.core.testbed import build, load_testbed, default_testbed_path\n"
        "from pslsched.solvers import solve\n"
        "inst = build(load_testbed(default_testbed_path())).instance\n"
        "schedule_report(inst, solve(inst, 'greedy').schedule, 't')\n"
        "sweep_report(pd.DataFrame({'a': [1, 2], 'm': [1.0, None]}), ['a'], ['m'])\n"
        "assert 'torch' not in sys.modules and 'pslsched.training' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ---------------------------------------------------------------- a real browser

# Chromium (150) logs every console message to stderr as INFO, whatever its level, so the level cannot be read
# there. The page under test gets this probe as the first script of its head instead: it records console.error
# calls, uncaught errors and failed resource loads ("error" events, capture phase) and unhandled promise
# rejections into an attribute of <html>, which --dump-dom prints. Uncaught errors also appear on stderr.
PROBE = """<script>(function () {
  var seen = [];
  function note(kind, text) {
    seen.push(kind + ": " + text);
    document.documentElement.setAttribute("data-console-errors", JSON.stringify(seen));
  }
  var original = console.error;
  console.error = function () {
    note("console.error", Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    note("error", e.message || ("failed to load " + ((t && (t.src || t.href)) || "a resource")));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { note("unhandledrejection", String(e.reason)); });
})();</script>"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing leaves the machine: a remote script would fail to load
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--window-size=1400,1000",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)"
)


def load_in_chromium(page_html: str, folder: Path, name: str) -> tuple[int, int, list[str]]:
    """Load the page (with the probe) from a file:// URL: (plotly figures rendered, SVG roots, errors)."""
    probed = folder / f"{name}.html"
    probed.write_text(page_html.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=folder)
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", probed.as_uri()]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        dom, log = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # only the browser this test started, by its process group
        proc.communicate()
        pytest.fail(f"chromium did not finish loading {name}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert "<html" in dom, f"chromium printed no DOM for {name}: {log[-2000:]}"
    errors = []
    found = re.search(r'<html[^>]*\bdata-console-errors="([^"]*)"', dom)
    if found:
        errors += json.loads(htmllib.unescape(found.group(1)))
    for line in log.splitlines():
        if ":CONSOLE" in line and ('"Uncaught' in line or "Failed to load resource" in line):
            errors.append("stderr: " + line.split("] ", 1)[-1])
    rendered = len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom))
    return rendered, len(re.findall(r'class="main-svg"', dom)), errors


@needs_chromium
def test_every_page_renders_in_chromium_without_errors(pages, tmp_path):
    def load(name: str) -> tuple[int, int, list[str]]:
        return load_in_chromium(pages[name][0].read_text(encoding="utf-8"), tmp_path, name)

    with ThreadPoolExecutor(max_workers=2) as pool:  # two browsers at a time: the loads are mostly start-up
        loaded = dict(zip(pages, pool.map(load, pages)))
    for name, (rendered, svgs, errors) in loaded.items():
        expected = len(figures(pages[name][1]))
        assert errors == [], (name, errors)
        assert rendered == expected, (name, rendered, expected)
        assert svgs >= expected, (name, svgs)


BROKEN = {
    "console_error": '<script>console.error("deliberate console error")</script>',
    "uncaught_exception": "<script>undefinedFunctionCall();</script>",
    "rejected_promise": '<script>Promise.reject(new Error("deliberate rejection"));</script>',
    "remote_script": '<script src="https://cdn.plot.ly/plotly-2.0.0.min.js"></script>',
}


MINIMAL = "<!DOCTYPE html>\n<html>\n<head>\n<title>broken</title>\n</head>\n<body>\n<p>broken</p>\n</body>\n</html>\n"
EXPECTED = {
    "console_error": "console.error: deliberate console error",
    "uncaught_exception": "undefinedFunctionCall is not defined",
    "rejected_promise": "deliberate rejection",
    "remote_script": "failed to load https://cdn.plot.ly/",
    "report_with_console_error": "console.error: deliberate console error",
    "report_without_plotly_js": "Plotly is not defined",
}


@needs_chromium
@pytest.mark.parametrize("case", list(EXPECTED))
def test_the_browser_check_catches_a_broken_page(pages, tmp_path, case):
    """The check above can fail: a deliberate error of each kind is caught (on a bare page, and inside a real
    report page whose figures still render), and so is a report page without its plotly.js (nothing renders)."""
    from plotly.offline import get_plotlyjs

    report = pages["tiny"][1]
    if case == "report_without_plotly_js":
        page = report.replace(get_plotlyjs(), "", 1)
        assert "* plotly.js v" not in page
    elif case == "report_with_console_error":
        page = report.replace("</body>", BROKEN["console_error"] + "\n</body>", 1)
    else:
        page = MINIMAL.replace("</body>", BROKEN[case] + "\n</body>", 1)
    rendered, _, errors = load_in_chromium(page, tmp_path, case)
    assert errors, f"{case}: no error detected"
    assert any(EXPECTED[case] in e for e in errors), errors
    if case == "report_with_console_error":
        assert rendered == len(figures(report))  # the figures render, and the error is still caught
    else:
        assert rendered == 0
