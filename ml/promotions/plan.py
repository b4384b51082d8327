"""`plan`: render the reconciler's actions (text, markdown for the PR comment, JSON).

A ROLLBACK is a move to a version older than production, or once production; `rollback: true`
in the spec also says the gates that compare with production are waived (shown as WAIVED). A
REPAIR keeps the alias and fixes what an interrupted apply or an out-of-band edit left (stage
mirror, records); a RE-SYNC puts back the version git last applied after the alias was moved
outside git (the gates that compare with production show as RE-SYNC). Refused actions are shown
with their reason; the CLI then exits non-zero with the failing gates named.

When the gates were evaluated (`gates.gated_diff`: the moves that change an alias), every such
action carries its `Verdict`; the plan shows each once, with the canary's figures and the
fairness figures on its replay (a table in markdown, one line in text, the numbers in JSON).
When they were not, every format says so first. Notes are the PR author's free text: shown
escaped (`render`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.governance import canary_fairness
from ml.promotions import render
from ml.promotions.gates.results import WAIVED_ON_ROLLBACK, GateResult, Verdict
from ml.promotions.reconcile import Action, Kind, Refusal, Step

_WAIVED = ", ".join(sorted(WAIVED_ON_ROLLBACK))
_WAIVER = f"rollback: true — {_WAIVED} gates waived, shown; integrity gates apply"
NOT_EVALUATED = (
    "Gates NOT evaluated (--without-gates): verdicts unknown; run `mlops promote plan` without "
    "--without-gates, or `mlops promote validate`, to evaluate them."
)


def _cell(text: str | None) -> str:
    """One markdown table cell: one line, no column separator."""
    return " ".join((text or "").split()).replace("|", "/")


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _canary(verdict: Verdict) -> Mapping[str, Any] | None:
    """The canary's figures (every canary result carries them), or None when it did not run."""
    return next((r.figures for r in verdict.results if r.family == "canary" and r.figures), None)


def _canary_line(f: Mapping[str, Any]) -> str:
    """One line of canary figures: what text output and a table caption show."""
    return (
        f"canary v{f['candidate']} vs production v{f['production']} on the {f['replay']}: "
        f"{f['rows']:,} rows, score PSI {f['score_psi']:.4f}, approval "
        f"{_pct(f['approval_production'])} → {_pct(f['approval_candidate'])} "
        f"({f['approval_delta'] * 100:+.2f} pp) at PD < {f['threshold']:g}, "
        f"{_pct(f['flip_share'])} of decisions flip"
    )


def _summary(verdict: Verdict) -> str:
    """`gates passed`, `gates passed (1 waived)` or `2 gates FAILED: a, b`."""
    if not verdict.passed:
        names = ", ".join(r.gate for r in verdict.failures)
        return f"{len(verdict.failures)} gate(s) FAILED: {names}"
    waived = sum(r.waived for r in verdict.results)
    return "gates passed" + (f" ({waived} waived by rollback)" if waived else "")


def _result_json(r: GateResult) -> dict[str, Any]:
    out: dict[str, Any] = {"gate": r.gate, "result": r.label, "detail": r.detail}
    if r.figures:
        out["figures"] = dict(r.figures)
    return out


def _refusal(a: Action) -> str:
    """Why `a` is refused; a gate refusal names the failed gates only, since the plan shows the
    verdict with every detail and figure below."""
    if a.refusal == Refusal.GATES and a.gates is not None:
        return f"{_summary(a.gates)} (see the gates of v{a.gates.version})"
    return "; ".join(a.reasons)


def _repairs(a: Action) -> str:
    parts = [w.detail for w in a.writes if w.step in (Step.STAGE, Step.APPLIED)]
    if a.interrupted is not None:
        parts.insert(0, "finish the interrupted apply")
    return "; ".join(parts) or "write the apply record"


@dataclass(frozen=True)
class Plan:
    """Every action, in spec order."""

    actions: list[Action]
    gated: bool = False  # the gates were evaluated (`gated_diff` with a gates file)

    def verdicts(self) -> dict[str, Verdict]:
        """The gate verdict of each model that has one, in spec order (one per model: the
        first environment's; `judged` has each environment's)."""
        out: dict[str, Verdict] = {}
        for a in self.actions:
            if a.gates is not None and a.model not in out:
                out[a.model] = a.gates
        return out

    def judged(self) -> list[tuple[str, list[str], Verdict]]:
        """(model, environments, verdict): one entry per distinct verdict, in spec order (a
        version judged alike for staging and production shows once)."""
        out: list[tuple[str, list[str], Verdict]] = []
        for a in self.actions:
            if a.gates is None:
                continue
            same = next((e for e in out if e[0] == a.model and e[2] == a.gates), None)
            if same is not None:
                same[1].append(a.env)
            else:
                out.append((a.model, [a.env], a.gates))
        return out

    def failing(self) -> list[str]:
        """`model vN (env): gate, gate` for every verdict with a failed gate."""
        return [
            f"{model} v{v.version} ({', '.join(envs)}): " + ", ".join(r.gate for r in v.failures)
            for model, envs, v in self.judged()
            if not v.passed
        ]

    @property
    def changes(self) -> bool:
        """True when applying would write anything."""
        return any(a.writes for a in self.actions)

    @staticmethod
    def arrow(a: Action) -> str:
        """`3 → 4`, `none → 1`, `4 (no change)`, `4 (repair: ...)` or `4 REFUSED: why`."""
        if a.kind == Kind.REFUSED:
            return f"{a.desired} REFUSED: {_refusal(a)}"
        if a.kind == Kind.RESYNC:
            return f"{'none' if a.current is None else a.current} → {a.desired} (RE-SYNC)"
        if a.moves_alias:
            return f"{'none' if a.current is None else a.current} → {a.desired}"
        if a.kind == Kind.REPAIR:
            return f"{a.desired} (repair: {_repairs(a)})"
        return f"{a.desired} (no change)"

    def text(self) -> str:
        """One line per model: `credit-risk: staging 3 → 4, production 3 → 4 after approval`."""
        lines = [] if self.gated else [NOT_EVALUATED]
        for model in dict.fromkeys(a.model for a in self.actions):
            mine = [a for a in self.actions if a.model == model]
            parts = []
            for a in mine:
                part = f"{a.env} {self.arrow(a)}"
                if a.env == "production" and a.writes:
                    part += " after approval"
                parts.append(part)
            line = f"{model}: " + ", ".join(parts)
            if any(a.kind == Kind.ROLLBACK for a in mine):
                line += "  ROLLBACK"
            if any(a.waiver for a in mine):
                line += f" ({_WAIVER})"
            if mine[0].note:
                line += f"  # {render.terminal(mine[0].note)}"
            lines.append(line)
            for _, envs, verdict in (j for j in self.judged() if j[0] == model):
                lines.append(f"  v{verdict.version} ({', '.join(envs)}): {_summary(verdict)}")
                for r in verdict.results:
                    if not r.passed or r.waived or r.resync:
                        lines.append(f"    {r.label} {r.gate}: {r.detail}")
                figures = _canary(verdict)
                if figures:
                    lines.append(f"  {_canary_line(figures)}")
                fair = canary_fairness.text_line(verdict.results)
                if fair:
                    lines.append(f"  {fair}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """A table for the PR comment and the job summary."""
        out = ["### Promotion plan", ""]
        if not self.gated:
            out += [f"**{NOT_EVALUATED}**", ""]
        failing = self.failing()
        if failing:
            out += ["**Gates FAILED** (apply refuses these moves): " + "; ".join(failing), ""]
        out += [
            "| model | environment | current | desired | action | note |",
            "|---|---|---|---|---|---|",
        ]
        for a in self.actions:
            if a.kind == Kind.REFUSED:
                action = "**REFUSED**: " + _refusal(a)
            elif a.kind == Kind.ROLLBACK:
                action = "**ROLLBACK**" + (f" ({_WAIVED} gates waived)" if a.waiver else "")
            elif a.kind == Kind.PROMOTE:
                action = "promote"
            elif a.kind == Kind.REPAIR:
                action = f"repair: {_repairs(a)}"
            elif a.kind == Kind.RESYNC:
                action = "**RE-SYNC** (alias moved outside git; back to the version last applied)"
            else:
                action = "no change"
            if a.writes and a.env == "production":
                action += " after approval"
            current = "—" if a.current is None else str(a.current)
            out.append(
                f"| {a.model} | {a.env} | {current} | {a.desired} | {_cell(action)} "
                f"| {render.markdown(a.note)} |"
            )
        for model, envs, verdict in self.judged():
            out += [
                "",
                f"#### {model} v{verdict.version} ({', '.join(envs)}): {_summary(verdict)}",
                "",
            ]
            out += ["| gate | result | detail |", "|---|---|---|"]
            for r in verdict.results:
                label = r.label if r.passed and not (r.waived or r.resync) else f"**{r.label}**"
                out.append(f"| {_cell(r.gate)} | {label} | {_cell(r.detail)} |")
            figures = _canary(verdict)
            if figures:
                out += ["", *self._canary_table(figures)]
            fair = canary_fairness.markdown(verdict.results, _cell)
            if fair:
                out += ["", *fair]
        return "\n".join(out) + "\n"

    @staticmethod
    def _canary_table(f: Mapping[str, Any]) -> list[str]:
        """The canary's figures as a table, bounds beside them."""
        v, p = f["candidate"], f["production"]
        excluded = f" ({f['excluded']:,} out of contract left out)" if f.get("excluded") else ""
        return [
            f"Canary: v{v} against production v{p} on the {_cell(f['replay'])}{excluded}; "
            f"approved when PD < {f['threshold']:g} ({f['threshold_from']}).",
            "",
            f"| rows | approval v{p} | approval v{v} | delta | flips | score PSI |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {f['rows']:,} | {_pct(f['approval_production'])} "
            f"| {_pct(f['approval_candidate'])} "
            f"| {f['approval_delta'] * 100:+.2f} pp (max ±{f['max_approval_delta'] * 100:.2f}) "
            f"| {_pct(f['flip_share'])} = {f['flips']:,} (max {_pct(f['max_flip_share'])}) "
            f"| {f['score_psi']:.4f} (max {f['max_score_psi']:g}) |",
        ]

    def json(self) -> str:
        """Machine-readable plan."""
        steps = [
            {
                "model": a.model,
                "environment": a.env,
                "kind": str(a.kind),
                "current": a.current,
                "desired": a.desired,
                "changes": bool(a.writes),
                "rollback": a.kind == Kind.ROLLBACK,
                "resync": a.kind == Kind.RESYNC,
                "waiver": a.waiver,
                "note": a.note,
                "writes": [w.detail for w in a.writes],
                "reasons": list(a.reasons) if a.kind == Kind.REFUSED else [],
            }
            for a in self.actions
        ]
        gates = {
            model: {
                "version": v.version,
                "passed": v.passed,
                "results": [_result_json(r) for r in v.results],
            }
            for model, v in self.verdicts().items()
        }
        by_env = [
            {
                "model": model,
                "environments": envs,
                "version": v.version,
                "passed": v.passed,
                "results": [_result_json(r) for r in v.results],
            }
            for model, envs, v in self.judged()
        ]
        return json.dumps(
            {
                "gates_evaluated": self.gated,
                "failing": self.failing(),
                "steps": steps,
                "gates": gates,
                "verdicts": by_env,
            },
            indent=2,
        )
