"""The claims scorecard: every headline claim of papers 000-004 that the course tests, with a
computed verdict.

A notebook measures a claim on paired runs (same split and seed for both rows) and calls `assess`:

  >>> entry = assess("001-tap-beats-random", f1_a1, f1_b1, measured="class-1 F1, A1 - B1")
  claim 001 · frozen TAP features beat frozen random features: holds (+0.081 [+0.040, +0.122], n=3)

The rule (protocol.verdict): 'holds' when the 95 % interval of the mean paired difference
(winner - other) lies above the margin, 'fails' when it lies below, 'inconclusive' at this n
otherwise. A claim of several parts (A1 beats each other strategy) holds when every part holds and
fails when any part fails. The entry goes into results.claims as {id: {paper, claim, measured,
verdict, n_runs, difference, parts}}.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.data.movie import InputError
from tapkit.downstream.protocol import PairedDifference, Verdict, paired_difference, verdict

# id -> (paper, the claim as the paper makes it); notebooks name claims by these ids
CLAIMS: dict[str, tuple[str, str]] = {
    "000-gradcam-divisions": ("000", "Grad-CAM of the time arrow highlights dividing cells"),
    "000-tap-beats-unet-divisions": (
        "000",
        "TAP features + a head beat a supervised U-Net on dividing cells with few labels",
    ),
    "000-tap-beats-unet-divisions-pair": (
        "000",
        "TAP features + a head beat a supervised U-Net on dividing cells "
        "with few labels, both given the frame pair (t, t+1)",
    ),
    "001-a1-best": (
        "001",
        "A1 (frozen TAP + ResNet head) has the best class-1 precision and recall",
    ),
    "001-resnet-beats-linear": (
        "001",
        "a ResNet head beats a linear head on the same frozen TAP features",
    ),
    "001-tap-beats-random": ("001", "frozen TAP features beat frozen random features"),
    "001-tap-beats-end-to-end": (
        "001",
        "frozen TAP features beat end-to-end training with limited annotation",
    ),
    "001-criteria-order": ("001", "labels by size-either > any-either > any-both (Table 5)"),
    "001-criteria-order-auc": (
        "001",
        "labels by size-either > any-either > any-both (Table 5), ranked by ROC AUC, "
        "which does not depend on how many pairs each criterion calls events",
    ),
    "001-content-view": ("001", "a larger content view gives a higher TAP accuracy (Table 6)"),
    "001-temperature-ece": ("001", "temperature scaling lowers the expected calibration error"),
    "002-mim-beats-random": (
        "002",
        "masked image modelling beats random initialisation for segmentation",
    ),
    "002-mim-quarter-labels": (
        "002",
        "MIM pretraining comes near fully supervised with 25 % of the labels",
    ),
    "002-intensity-masking": ("002", "intensity-based masking beats random masking"),
    "003-contrastive-generative": (
        "003",
        "contrastive + generative pretraining beats either alone",
    ),
    "004-consistency-flicker": (
        "004",
        "alternating temporal consistency lowers flicker while Dice holds",
    ),
    "004-consistency-forgets": ("004", "consistency-only fine-tuning forgets the segmentation"),
}
VERDICTS: tuple[Verdict, ...] = ("holds", "fails", "inconclusive")
RULE = (
    "Verdict rule: a claim **holds** when the 95 % t-interval of the mean paired difference "
    "(winner - other, the same split and seed per run) lies above the margin (0 unless the row "
    "says otherwise), **fails** when it lies below, and is **inconclusive** at this n otherwise "
    "(always with one run); a claim of several parts holds when every part holds and fails when "
    "any part fails."
)


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict of a claim with several parts: holds if all hold, fails if any fails, else
    inconclusive."""
    if not verdicts:
        raise InputError("combine: a claim needs at least one measured part.")
    if any(v == "fails" for v in verdicts):
        return "fails"
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def _part(diff: PairedDifference, margin: float) -> dict[str, Any]:
    return {
        "mean": diff.mean,
        "low": diff.low,
        "high": diff.high,
        "n_runs": diff.n,
        "margin": float(margin),
        "verdict": verdict(diff, margin),
    }


def assess(
    claim_id: str,
    winner: Any,
    other: Any = None,
    margin: float = 0.0,
    measured: str = "",
    parts: "Mapping[str, tuple[Any, Any]] | None" = None,
    record: bool = True,
    note: str = "",
    missing: Sequence[str] = (),
) -> dict[str, Any]:
    """Verdict of one claim from paired runs: winner (what the paper says is better) vs other, or
    several parts.

    winner, other: per-run scores (same seeds and splits). parts: {name: (winner, other)} for a
    claim of several comparisons (then winner / other are ignored). margin: the winner must beat
    other by more than this (e.g. -0.05 x reference for "near"). missing: parts of the claim this
    run could not measure (then the verdict is at best 'inconclusive'). Prints one line; with
    record, stores results.claims[claim_id].
    """
    if claim_id not in CLAIMS:
        raise InputError(f"Unknown claim {claim_id!r}. Known claims: {', '.join(CLAIMS)}.")
    pairs = dict(parts) if parts else {"": (winner, other)}
    if any(o is None for _, o in pairs.values()):
        raise InputError(
            f"assess({claim_id!r}): give the other row's runs (other=...) or "
            f"parts={{name: (a, b)}}."
        )
    measured_parts = {
        name: _part(paired_difference(np.ravel(a), np.ravel(b)), margin)
        for name, (a, b) in pairs.items()
    }
    paper, claim = CLAIMS[claim_id]
    verdicts = [p["verdict"] for p in measured_parts.values()] + ["inconclusive"] * len(missing)
    entry = {
        "paper": paper,
        "claim": claim,
        "measured": measured,
        "verdict": combine(verdicts),
        "n_runs": min(p["n_runs"] for p in measured_parts.values()),
        "note": note,
        "missing": list(missing),
    }
    if parts:
        entry["parts"] = measured_parts
    else:
        entry["difference"] = {k: v for k, v in measured_parts[""].items() if k != "verdict"}
    print(format_claim(claim_id, entry))
    if record:
        from tapkit.course import results

        # replace, not merge: no part or key of an earlier entry stays
        results.record("claims", **{claim_id: None})
        results.record("claims", **{claim_id: entry})
    return entry


def _number(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):+.3f}"  # None: a NaN that went through JSON


def _interval(p: Mapping[str, Any]) -> str:
    return f"{_number(p['mean'])} [{_number(p['low'])}, {_number(p['high'])}]"


def format_claim(claim_id: str, entry: Mapping[str, Any]) -> str:
    """One line: 'claim 001 · <claim>: HOLDS (<measured> +0.08 [+0.04, +0.12], n=3)'."""
    if entry.get("parts"):
        detail = "; ".join(f"{name} {_interval(p)}" for name, p in entry["parts"].items())
    else:
        detail = _interval(entry["difference"])
    what = f"{entry['measured']}: " if entry.get("measured") else ""
    gaps = f"; not measured: {', '.join(entry['missing'])}" if entry.get("missing") else ""
    return (
        f"claim {entry['paper']} · {entry['claim']}: {entry['verdict'].upper()} ({what}{detail}, "
        f"n={entry['n_runs']}{gaps})"
    )


def scorecard_markdown(claims: Mapping[str, Mapping[str, Any]]) -> str:
    """The scorecard as a markdown table in CLAIMS order (unmeasured claims listed as
    'not measured')."""
    claims = claims or {}
    lines = [
        "| paper | claim | measured (winner - other: mean [95 % interval]) | runs | verdict |",
        "|---|---|---|---|---|",
    ]
    for claim_id, (paper, claim) in CLAIMS.items():
        e = claims.get(claim_id)
        if not e:
            lines.append(f"| {paper} | {claim} | not measured in this run | | not measured |")
            continue
        detail = (
            "; ".join(f"{n}: {_interval(p)}" for n, p in e["parts"].items())
            if e.get("parts")
            else _interval(e["difference"])
        )
        margins = {
            p.get("margin", 0.0)
            for p in (e["parts"].values() if e.get("parts") else [e["difference"]])
        }
        margin = (
            ""
            if margins <= {0.0, None}
            else f" (margin {', '.join(f'{m:+.3f}' for m in sorted(margins))})"
        )
        note = f" *{e['note']}*" if e.get("note") else ""
        note = (f"; not measured: {', '.join(e['missing'])}" if e.get("missing") else "") + note
        cell = (
            f"{e.get('measured', '')}: {detail}{margin}{note}"
            if e.get("measured")
            else f"{detail}{margin}{note}"
        )
        lines.append(f"| {paper} | {claim} | {_cell(cell)} | {e['n_runs']} | **{e['verdict']}** |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (no line breaks, escaped pipes)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def scorecard_section(
    claims: "Mapping[str, Mapping[str, Any]] | None", heading: str = "## Claims scorecard"
) -> str:
    """The scorecard with its heading and the one-line verdict rule, for summary.md and
    docs/RESULTS.md."""
    claims = claims or {}
    n = sum(1 for c in CLAIMS if claims.get(c))
    counts = {
        v: sum(1 for c in CLAIMS if (claims.get(c) or {}).get("verdict") == v) for v in VERDICTS
    }
    tally = (
        f"{n} of {len(CLAIMS)} claims measured in this run: "
        + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
        + "."
    )
    return "\n".join([heading, "", RULE, "", tally, "", scorecard_markdown(claims), ""])
