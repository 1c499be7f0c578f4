"""The claims scorecard in the reports: first on docs/RESULTS.md (scripts/write_results.py), and in
a run's summary.md (summary.summary_markdown), never repeated in the generic results below."""

from __future__ import annotations

from tapkit.course import claims
from tapkit.course.summary import summary_markdown

from test_write_results_pretext import load_script


def entry(claim_id: str, winner, other, **kw) -> dict:
    return claims.assess(claim_id, winner, other, record=False, **kw)


def summary(results: dict) -> dict:
    return {
        "profile": "cpu",
        "device": "cpu",
        "out": "runs/ref",
        "commit": "abc123",
        "notebooks": {"02_gradcam": {"status": "ok", "seconds": 12.0}},
        "results": results,
    }


def run_results() -> dict:
    return {
        "gradcam": {"event_enrichment": 2.5, "k": 8},
        "claims": {
            "000-gradcam-divisions": entry(
                "000-gradcam-divisions",
                [0.3, 0.25, 0.4],
                [0.05, 0.06, 0.04],
                measured="division fraction, top regions - random regions",
            ),
            "001-content-view": entry("001-content-view", [0.8], [0.7]),
        },
    }


def test_results_page_puts_the_scorecard_first_with_the_rule():
    page = load_script().results_markdown(summary(run_results()))
    card, machine = page.index("## Claims scorecard"), page.index("| device used |")
    assert (
        machine < card < page.index("## Notebooks") < page.index("### gradcam")
    )  # right after the run/machine table
    assert page.count("## Claims scorecard") == 1 and claims.RULE in page
    assert claims.scorecard_markdown(run_results()["claims"]) in page
    assert (
        "| 000 | Grad-CAM of the time arrow highlights dividing cells | division fraction" in page
    )
    assert "| 3 | **holds** |" in page and "| 1 | **inconclusive** |" in page


def test_results_page_does_not_repeat_the_claims_in_the_results_dump():
    page = load_script().results_markdown(summary(run_results()))
    assert "### claims" not in page and "claims (per entry)" not in page
    assert page.count("Grad-CAM of the time arrow highlights dividing cells") == 1
    assert "event_enrichment" in page  # the other sections are still rendered


def test_results_page_without_claims_lists_every_claim_as_not_measured():
    page = load_script().results_markdown(summary({"data": {"n_frames": 24}}))
    assert "## Claims scorecard" in page and page.count("not measured in this run") == len(
        claims.CLAIMS
    )
    assert f"0 of {len(claims.CLAIMS)} claims measured in this run" in page


def test_summary_md_shows_the_scorecard_once():
    text = summary_markdown(summary(run_results()))
    assert (
        text.index("| notebook | status |")
        < text.index("## Claims scorecard")
        < text.index("## Results")
    )
    assert claims.RULE in text and text.count("## Claims scorecard") == 1
    assert "### claims" not in text and "claims (per entry)" not in text
    assert (
        f"2 of {len(claims.CLAIMS)} claims measured in this run: 1 holds, 0 fails, 1 inconclusive."
        in text
    )
    assert "### gradcam" in text


def test_summary_md_can_leave_the_scorecard_out():
    text = summary_markdown(summary(run_results()), scorecard=False)
    assert "Claims scorecard" not in text and "### claims" not in text


def test_a_stopped_run_names_the_notebooks_it_did_not_run():
    stopped = {
        **summary(run_results()),
        "stopped_before": ["08_few_labels_dense", "09_your_own_movie"],
    }
    page = load_script().results_markdown(stopped)
    assert "| not run (stopped before them) | 08_few_labels_dense, 09_your_own_movie |" in page
    assert page.index("not run (stopped") < page.index("## Claims scorecard")
    assert "not run (stopped" not in load_script().results_markdown(summary(run_results()))


def test_a_stopped_run_is_summarised_from_run_json_and_its_results(tmp_path):
    import json

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "02_gradcam.json").write_text(json.dumps(run_results()))
    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "profile": "cpu",
                "params": {},
                "started": "2026-12-07 12:44:55",
                "dry_run": False,
                "notebook_list": ["02_gradcam", "03_labelling_criteria"],
                "notebooks": {
                    "02_gradcam": {"status": "ok", "seconds": 17.0},
                    "03_labelling_criteria": {"status": "running"},
                },
            }
        )
    )
    s = load_script().stopped_run_summary(tmp_path, "abc123")
    assert s["notebooks"] == {"02_gradcam": {"status": "ok", "seconds": 17.0}}
    assert s["stopped_before"] == ["03_labelling_criteria"] and s["commit"] == "abc123"
    assert set(s["results"]["claims"]) == {"000-gradcam-divisions", "001-content-view"}
    page = load_script().results_markdown(s)
    assert (
        "| not run (stopped before them) | 03_labelling_criteria |" in page
        and "## Claims scorecard" in page
    )


def test_a_run_resumed_with_only_still_names_the_notebook_it_left_out(tmp_path):
    """`course run --resume --only 08 --force` lists only 08; the 07 it stopped in is still
    'not run'."""
    import json

    (tmp_path / "results").mkdir()
    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "profile": "cpu",
                "params": {},
                "started": "2026-12-07 21:10:00",
                "dry_run": False,
                "notebook_list": ["08_few_labels_dense"],
                "notebooks": {
                    "06_calibration": {"status": "ok", "seconds": 9.0},
                    "07_which_pretext": {"status": "running"},
                    "08_few_labels_dense": {"status": "ok", "seconds": 60.0},
                },
            }
        )
    )
    s = load_script().stopped_run_summary(tmp_path, "abc123")
    assert list(s["notebooks"]) == ["06_calibration", "08_few_labels_dense"]
    assert s["stopped_before"] == ["07_which_pretext"]


def test_fill_from_takes_only_the_unfinished_notebooks_of_another_run_and_says_so(tmp_path):
    """--fill-from: 07 (not finished here) comes from the other run; this run's own values always
    win."""
    import json

    main, other = tmp_path / "main", tmp_path / "cpu3"
    for run, notebooks in (
        (main, {"06_calibration": "ok", "07_which_pretext": "running"}),
        (other, {"06_calibration": "ok", "07_which_pretext": "ok"}),
    ):
        (run / "results").mkdir(parents=True)
        (run / "run.json").write_text(
            json.dumps(
                {
                    "profile": "cpu",
                    "params": {},
                    "started": "2026-12-07",
                    "dry_run": False,
                    "notebook_list": list(notebooks),
                    "notebooks": {n: {"status": st, "seconds": 5.0} for n, st in notebooks.items()},
                }
            )
        )
        for n in notebooks:
            (run / "results" / f"{n}.json").write_text(
                json.dumps({"calibration" if n.startswith("06") else "pretext": {"who": run.name}})
            )
    script = load_script()
    s = script.fill_from(script.stopped_run_summary(main, "new1"), other, "old2")
    assert s["results"]["calibration"] == {"who": "main"}  # measured here: kept
    assert s["results"]["pretext"] == {"who": "cpu3"}  # not finished here: from the other run
    assert s["stopped_before"] == [] and list(s["notebooks"]) == [
        "06_calibration",
        "07_which_pretext",
    ]
    assert s["notebooks"]["07_which_pretext"]["status"] == "ok (cpu3 at old2)"
    page = script.results_markdown(s)
    assert "| from another run | 07_which_pretext:" in page and "`old2`" in page
    assert "| total time | 0.1 min (without 07_which_pretext, from another run) |" in page
