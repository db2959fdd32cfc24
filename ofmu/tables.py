"""Paper tables: one summary (mean ± std over seeds, failures counted) for both stages, written as
.csv + .md + .tex from one DataFrame, atomically."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ofmu.io import write_csv_atomic, write_text_atomic


def mean_std(values, digits: int = 2) -> str:
    """'mean ± std' over seeds (std with ddof=1; a single seed shows the mean alone)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def write_table(frame: pd.DataFrame, stem: str | Path, caption: str) -> None:
    """stem.csv (raw), stem.md (caption + pipe table), stem.tex (table environment), stem.html (caption +
    table: what the Snakemake report shows)."""
    stem = Path(stem)
    write_csv_atomic(stem.with_suffix(".csv"), frame)
    write_text_atomic(stem.with_suffix(".md"), f"{caption}\n\n{frame.to_markdown(index=False)}\n")
    write_text_atomic(stem.with_suffix(".html"),
                      f"<!doctype html>\n<meta charset=\"utf-8\">\n<title>{html.escape(stem.name)}</title>\n"
                      f"<p>{html.escape(caption)}</p>\n{frame.to_html(index=False, border=1)}\n")
    latex = frame.to_latex(index=False, escape=True).replace("±", r"$\pm$")
    write_text_atomic(stem.with_suffix(".tex"),
                      "\\begin{table}[t]\n\\centering\n\\small\n"
                      f"\\caption{{{_tex_escape(caption)}}}\n{latex}\\end{{table}}\n")


def _tex_escape(text: str) -> str:
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")]:
        text = text.replace(a, b)
    return text


# ---- one summary table for both stages ---------------------------------------------------------------------


def fmt_mean_std(digits: int = 2, scale: float = 1.0) -> Callable[[pd.Series], str]:
    """'mean ± std' of the values times ``scale``; '-' when there are none."""
    def fmt(values: pd.Series) -> str:
        values = pd.Series(values, dtype=float).dropna()
        return "-" if values.empty else mean_std(scale * values, digits)
    return fmt


def fmt_median_range(values: pd.Series) -> str:
    """For p-values spanning orders of magnitude (FQ, a KS p-value): the median over seeds and the range
    [min, max], 2 significant digits; a linear mean of p-values would be ruled by the largest one."""
    values = pd.Series(values, dtype=float).dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.2g}"
    return f"{values.median():.2g} [{values.min():.2g}, {values.max():.2g}]"


@dataclass(frozen=True)
class Column:
    """A table column: the mean ± std over seeds of ``source``, titled ``title``, formatted by ``fmt``."""

    source: str
    title: str
    fmt: Callable[[pd.Series], str] = fmt_mean_std()


def summary_table(frame: pd.DataFrame, index: Sequence[str], columns: Sequence[Column], order: Sequence[str],
                  spread: str | None = None, spread_order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per value of ``index`` (its last key is the row label, in ``order``), each column the mean ±
    std over the ok rows (seeds); with ``spread``, one group of columns per value of that key, titled
    "<value> <title>". Every group counts its seeds; runs that did not finish ("diverged") are counted,
    never averaged: "2 (+1 diverged)", and a group with no finished run says "diverged (3/3)". Rows with a
    true ``collapsed`` column (utility collapsed, ``ofmu.unlearning.comparison``) are averaged but counted:
    "3 (1 collapsed)"."""
    *outer, label_key = index
    frame = frame.assign(status=frame["status"] if "status" in frame else "ok")
    spreads = [None] if spread is None else list(spread_order or sorted(frame[spread].unique()))
    groups = frame.groupby(outer, sort=False) if outer else [((), frame)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        for label in [m for m in order if m in set(g[label_key])]:
            row = {**dict(zip(outer, key)), label_key: label}
            for value in spreads:
                part = g[g[label_key] == label] if value is None else g[(g[label_key] == label) & (g[spread] == value)]
                prefix = "" if value is None else f"{value} "
                ok = part[part["status"] == "ok"]
                failed = len(part) - len(ok)
                for col in columns:
                    row[prefix + col.title] = col.fmt(ok[col.source]) if col.source in ok else "-"
                if len(part) and ok.empty:
                    row[prefix + columns[0].title] = f"diverged ({failed}/{len(part)})"
                n_collapsed = int(ok["collapsed"].fillna(False).astype(bool).sum()) if "collapsed" in ok else 0
                row[prefix + "seeds"] = (f"{ok['seed'].nunique()}" + (f" ({n_collapsed} collapsed)" if n_collapsed else "")
                                         + (f" (+{failed} diverged)" if failed else ""))
            rows.append(row)
    return pd.DataFrame(rows)


def read_results(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of many result CSVs as one frame (files without rows, e.g. no diagnostics, add nothing)."""
    frames = [pd.read_csv(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---- reproducibility: a run's metric tables against reference tables ----------------------------------------


def metric_tables(directory: str | Path) -> list[str]:
    """The metric tables of a paper_tables/ directory: every tab*.csv except the measured costs (*_costs.csv),
    which differ from run to run by design."""
    return sorted(p.name for p in Path(directory).glob("tab*.csv") if not p.name.endswith("_costs.csv"))


def compare_tables(run: str | Path, reference: str | Path, max_cells: int = 20) -> list[str]:
    """Every difference between the metric tables of ``run`` and ``reference`` (two paper_tables/ folders),
    one line each: a table missing on either side, a different shape or header, or a cell whose text differs
    (named by table, row, its leading key cells, and column). Empty when the tables are byte-identical.
    Cells are compared as written (text), so a change in the last printed digit counts."""
    run, reference = Path(run), Path(reference)
    for d in (run, reference):
        if not d.is_dir():
            raise ValueError(f"{d} is not a directory: pass a paper_tables/ folder of a finished run")
    names = metric_tables(reference)
    if not names:
        raise ValueError(f"{reference} holds no metric tables (tab*.csv): pass the paper_tables/ folder")
    diffs = [f"{n}: in {run} but not in {reference}" for n in metric_tables(run) if n not in names]
    for name in names:
        if not (run / name).exists():
            diffs.append(f"{name}: missing from {run}")
            continue
        if (run / name).read_bytes() == (reference / name).read_bytes():
            continue
        a, b = (pd.read_csv(d / name, dtype=str, keep_default_na=False) for d in (run, reference))
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            diffs.append(f"{name}: shape {a.shape} columns {list(a.columns)} vs {b.shape} {list(b.columns)}")
            continue
        cells = [(i, c) for i in range(len(a)) for c in a.columns if a.at[i, c] != b.at[i, c]]
        keys = list(a.columns[:2])
        for i, c in cells[:max_cells]:
            where = " | ".join(b.at[i, k] for k in keys)
            diffs.append(f"{name}: row {i + 1} ({where}), column {c!r}: {a.at[i, c]!r} vs {b.at[i, c]!r}")
        if len(cells) > max_cells:
            diffs.append(f"{name}: ... and {len(cells) - max_cells} more cells")
        if not cells:  # same cells, different bytes (quoting, line ends)
            diffs.append(f"{name}: same cells, different bytes")
    return diffs


# ---- reproducibility levels: what holds between two runs of one config ---------------------------------------

LEVELS = ("bit-identical", "equal within tolerance", "verdict unchanged", "verdict changed")
# a number not glued to a word ("seed 0-2" is 0 and 2, not 0 and -2)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
VERDICT_TABLE = "tab10_verdict.csv"
VERDICT_KEYS = ["stage", "cell", "metric", "baseline", "decision"]


def cells_within(a: str, b: str, rtol: float) -> bool:
    """Two printed cells agree within ``rtol``: the same text around the numbers, and each pair of numbers
    within ``rtol`` of the larger one or within one unit of the last printed digit. Only measurements get a
    tolerance: a cell with words (a setting "lr=0.003", a count "3 (1 collapsed)", a status) and an integer
    (a count) must match exactly."""
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b) or len(na) != len(nb):
        return False
    if re.search(r"[A-Za-z]", _NUMBER.sub("", a)):
        return a == b
    for x, y in zip(na, nb):
        if not re.search(r"[.eE]", x + y):  # integers: counts
            if x != y:
                return False
            continue
        unit = max(_last_digit(x), _last_digit(y))
        fx, fy = float(x), float(y)
        if abs(fx - fy) > max(rtol * max(abs(fx), abs(fy)), unit * (1 + 1e-9)):
            return False
    return True


def _last_digit(number: str) -> float:
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


@dataclass(frozen=True)
class Reproduction:
    """How far two runs' metric tables agree: ``level`` (one of LEVELS, or "not comparable"), every differing
    cell (``diffs``), the cells outside the tolerance, and the verdict decisions that differ."""

    level: str
    diffs: list[str]
    outside_tolerance: list[str]
    verdict_changes: list[str]


def reproduction(run: str | Path, reference: str | Path, rtol: float = 0.05) -> Reproduction:
    """Which level holds between a run's metric tables and reference ones: bit-identical (every byte), equal
    within ``rtol`` (every differing cell, number by number, see ``cells_within``), verdict unchanged (every
    decision of tab10_verdict the same), or verdict changed. A missing table or a changed shape is "not
    comparable"; so is a difference beyond the tolerance when the reference has no verdict table."""
    run, reference = Path(run), Path(reference)
    diffs = compare_tables(run, reference, max_cells=10**9)
    if not diffs:
        return Reproduction(LEVELS[0], [], [], [])
    outside, structural = [], []
    for name in metric_tables(reference):
        if not (run / name).exists():
            structural.append(f"{name}: missing from {run}")
            continue
        a, b = (pd.read_csv(d / name, dtype=str, keep_default_na=False) for d in (run, reference))
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            structural.append(f"{name}: shape or columns differ")
            continue
        outside += [f"{name}: row {i + 1}, column {c!r}: {a.at[i, c]!r} vs {b.at[i, c]!r}"
                    for i in range(len(a)) for c in a.columns
                    if a.at[i, c] != b.at[i, c] and not cells_within(a.at[i, c], b.at[i, c], rtol)]
    structural += [f"{name}: in {run} but not in {reference}" for name in metric_tables(run)
                   if name not in metric_tables(reference)]
    if structural:
        return Reproduction("not comparable", diffs, structural + outside, [])
    if not outside:
        return Reproduction(LEVELS[1], diffs, [], [])
    if not ((run / VERDICT_TABLE).exists() and (reference / VERDICT_TABLE).exists()):
        return Reproduction("not comparable", diffs, outside, [f"{VERDICT_TABLE} missing: the verdict cannot be compared"])
    a, b = (pd.read_csv(d / VERDICT_TABLE, dtype=str, keep_default_na=False)[VERDICT_KEYS] for d in (run, reference))
    changes = [f"{' | '.join(r[k] for k in VERDICT_KEYS[:-1])}: {r['decision']!r} vs {q['decision']!r}"
               for (_, r), (_, q) in zip(a.iterrows(), b.iterrows()) if list(r) != list(q)]
    return Reproduction(LEVELS[3] if changes else LEVELS[2], diffs, outside, changes)
