"""Rendering a suite's tables as Markdown, LaTeX, CSV or HTML, with the profile line,
the rank summary, the rows chosen on validation and the claim verdicts
(``amrbench.claims``) under them. The tables themselves are built by ``amrbench.tables``.
"""
from __future__ import annotations

import csv
import html
import io

from tabulate import tabulate

from amrbench.api import AmrbenchError
from amrbench.claims import claim_line, claims_note, evaluate_claims, verdicts_by_group
from amrbench.tables import (CHOICE_NOTE, FORMATS, Table, build_tables, choices, profile_text, rank_summary)


BY_GROUP_NOTE = "Comparisons per table (hold / fail / undecided), from the claim lines above."


def render(suite, records: list, fmt: str = "markdown") -> str:
    if fmt not in FORMATS:
        raise AmrbenchError(f"--format {fmt!r}: allowed: {', '.join(FORMATS)}")

    tables = build_tables(suite, records)
    extras = {"profile": profile_text(suite, records), "ranks": rank_summary(suite, tables),
              "claims": evaluate_claims(suite, records, tables), "choices": choices(suite, records, tables),
              "choice_note": CHOICE_NOTE.format(metric=suite.table.get("choose_by"))}
    return {"markdown": _markdown, "latex": _latex, "csv": _csv, "html": _html}[fmt](suite, tables, extras)


def _styled(table: Table, on, off="") -> list:
    return [[row] + [f"{on}{t}{off}" if b else t for t, b in zip(texts, bolds)]
            for row, texts, bolds in zip(table.rows, table.cells, table.bold)]


def _markdown(suite, tables, extras) -> str:

    parts = [f"# {suite.name}\n", f"*{extras['profile']}*\n"]
    for t in tables:
        body = tabulate(_styled(t, "**", "**"), headers=t.header, tablefmt="pipe", disable_numparse=True,
                        colalign=["left"] + ["right"] * (len(t.header) - 1))
        parts.append(f"## {t.title}\n\n{body}\n\n*{t.caption}*\n")
    if extras["ranks"]:
        parts.append(f"*{extras['ranks']}*\n")
    if extras["choices"]:
        lines = "\n".join(f"- {line}" for line in extras["choices"])
        parts.append(f"## Chosen on validation\n\n*{extras['choice_note']}*\n\n{lines}\n")
    if extras["claims"]:
        lines = "\n".join(f"- {claim_line(c, markdown=True)}" for c in extras["claims"])
        parts.append(f"## Claims\n\n*{claims_note(extras['claims'])}*\n\n{lines}\n")
        header, rows = verdicts_by_group(extras["claims"])
        if rows:
            body = tabulate(rows, headers=header, tablefmt="pipe", disable_numparse=True)
            parts.append(f"*{BY_GROUP_NOTE}*\n\n{body}\n")
    return "\n".join(parts)


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
    return (text.replace("±", r"$\pm$").replace("→", r"$\rightarrow$").replace("×", r"$\times$")
            .replace("α", r"$\alpha$").replace("χ²", r"$\chi^2$"))


def _latex(suite, tables, extras) -> str:

    parts = []
    for t in tables:
        caption = f"{t.title}: {t.caption} {extras['profile']}"
        lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{latex_escape(caption)}}}",
                 r"\begin{tabular}{l" + "r" * (len(t.header) - 1) + "}", r"\toprule",
                 " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule"]
        for row in _styled(t, "\x00", "\x01"):
            cells = [latex_escape(c).replace("\x00", r"\textbf{").replace("\x01", "}") for c in row]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    notes = ([extras["ranks"]] if extras["ranks"] else []) + [f"chosen: {line}" for line in extras["choices"]] + \
        [f"claim: {claim_line(c)}" for c in extras["claims"]]
    if notes:
        parts.append("\n".join(f"% {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


def _csv(suite, tables, extras) -> str:

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["profile", extras["profile"]])
    for t in tables:
        writer.writerow(["table"] + t.header)
        for row, texts, bolds in zip(t.rows, t.cells, t.bold):
            writer.writerow([t.title, row] + [f"*{x}*" if b else x for x, b in zip(texts, bolds)])
    if extras["ranks"]:
        writer.writerow(["ranks", extras["ranks"]])
    for line in extras["choices"]:
        writer.writerow(["chosen", line])
    for c in extras["claims"]:
        writer.writerow(["claim", c.claim.label, c.verdict, claim_line(c)])
    return out.getvalue()


def _html(suite, tables, extras) -> str:

    parts = [f"<h1>{html.escape(suite.name)}</h1>", f"<p><i>{html.escape(extras['profile'])}</i></p>"]
    for t in tables:
        rows = [[html.escape(c) for c in row] for row in _styled(t, "\x00", "\x01")]
        rows = [[c.replace("\x00", "<b>").replace("\x01", "</b>") for c in row] for row in rows]
        body = tabulate(rows, headers=[html.escape(h) for h in t.header], tablefmt="unsafehtml", disable_numparse=True)
        parts.append(f"<h2>{html.escape(t.title)}</h2>\n{body}\n<p><i>{html.escape(t.caption)}</i></p>")
    if extras["ranks"]:
        parts.append(f"<p><i>{html.escape(extras['ranks'])}</i></p>")
    if extras["choices"]:
        items = "\n".join(f"<li>{html.escape(line)}</li>" for line in extras["choices"])
        parts.append(f"<h2>Chosen on validation</h2>\n<p><i>{html.escape(extras['choice_note'])}</i></p>\n"
                     f"<ul>\n{items}\n</ul>")
    if extras["claims"]:
        items = "\n".join(f"<li>{html.escape(claim_line(c))}</li>" for c in extras["claims"])
        parts.append(f"<h2>Claims</h2>\n<ul>\n{items}\n</ul>")
        header, rows = verdicts_by_group(extras["claims"])
        if rows:
            body = tabulate([[html.escape(c) for c in row] for row in rows], headers=[html.escape(h) for h in header],
                            tablefmt="unsafehtml", disable_numparse=True)
            parts.append(f"<p><i>{html.escape(BY_GROUP_NOTE)}</i></p>\n{body}")
    return "\n".join(parts) + "\n"
