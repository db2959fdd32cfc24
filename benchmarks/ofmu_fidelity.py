"""How far the first-order OFMU is from the exact one, measured (README, "First-order OFMU").

A. float64, the truncation / round-off V-curve: relative error of first-order grad Phi (beta = 0.5) and
   grad F (beta = 0.5 and beta = 0) against autograd's, over difference steps 1e-1 .. 1e-11, forward and
   central, on a theory problem (logistic_ridge, the problem family of claims C1-C5) and a small smooth
   network (tanh MLP, 5 classes); the "auto" default steps are marked.
B. float32, the real default-tier cells (vision: small CNN on Fashion-MNIST; LLM: GPT-2 on the TOFU-format
   corpus, forget10): an OFMU run with the experiments' settings; at every outer iteration, at the point and
   on the mini-batches where grad F is taken, the first-order grad F at each candidate step against the
   exact one: cosine similarity and relative norm error, median and 10th / 90th percentile over the run.
   This chooses ``fd_step`` in config/methods/OFMU.yaml.

    python benchmarks/ofmu_fidelity.py [--iterations 12] [--output benchmarks/results/ofmu_fidelity.json]
                                       [--figure figures/fig11_first_order_fidelity.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ofmu.core.ofmu import (OFMUConfig, difference_step, grad_phi, grad_phi_first_order, ofmu_iteration,  # noqa: E402
                            penalty_grad, penalty_grad_first_order, rho_schedule)
from ofmu.io import provenance, write_json_atomic  # noqa: E402

STEPS_F64 = [10.0**-k for k in range(1, 12)]
STEPS_F32 = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5]
SCHEMES = ("forward", "central")


def _flat(g) -> torch.Tensor:
    return torch.cat([x.reshape(-1) for x in g])


def _compare(approx, exact) -> dict:
    a, e = _flat(approx).double(), _flat(exact).double()
    return {"rel_error": float((a - e).norm() / e.norm()), "cosine": float(a @ e / (a.norm() * e.norm()))}


# ---- A: float64 V-curves --------------------------------------------------------------------------------
def _theory_problem():
    from ofmu.theory.problems import make_problem

    p = make_problem("logistic_ridge", 0)
    f, r = p.torch_objectives()
    return [torch.tensor(p.initial_point(), dtype=torch.float64, requires_grad=True)], f, r


def _network_problem():
    g = torch.Generator().manual_seed(0)
    x_f, x_r = torch.randn(32, 20, generator=g, dtype=torch.float64), torch.randn(64, 20, generator=g, dtype=torch.float64)
    y_f, y_r = torch.randint(0, 5, (32,), generator=g), torch.randint(0, 5, (64,), generator=g)
    params = [(0.3 * torch.randn(20, 16, generator=g, dtype=torch.float64)).requires_grad_(),
              torch.zeros(16, dtype=torch.float64, requires_grad=True),
              (0.3 * torch.randn(16, 5, generator=g, dtype=torch.float64)).requires_grad_(),
              torch.zeros(5, dtype=torch.float64, requires_grad=True)]

    def loss(x, y):
        return lambda p: torch.nn.functional.cross_entropy(torch.tanh(x @ p[0] + p[1]) @ p[2] + p[3], y)

    return params, loss(x_f, y_f), loss(x_r, y_r)


def v_curves() -> list[dict]:
    rows = []
    for problem, build in (("theory problem (logistic_ridge)", _theory_problem), ("tanh network", _network_problem)):
        params, f, r = build()
        exact = {"grad Phi, beta=0.5": grad_phi(params, f, r, 0.5)[0],
                 "grad F, beta=0.5": penalty_grad(params, f, r, 0.5, 1.0)[0],
                 "grad F, beta=0": penalty_grad(params, f, r, 0.0, 1.0)[0]}
        norm = 1.0 + float(_flat(params).detach().norm())
        for scheme in SCHEMES:
            auto = {"grad Phi, beta=0.5": difference_step(params, "auto", scheme) / norm,
                    "grad F, beta=0.5": difference_step(params, "auto", scheme, nested=True) / norm,
                    "grad F, beta=0": difference_step(params, "auto", scheme) / norm}
            for step in [*STEPS_F64, *sorted(set(auto.values()))]:
                approx = {"grad Phi, beta=0.5": grad_phi_first_order(params, f, r, 0.5, fd_step=step, fd_scheme=scheme)[0],
                          "grad F, beta=0.5": penalty_grad_first_order(params, f, r, 0.5, 1.0, fd_step=step, fd_scheme=scheme)[0],
                          "grad F, beta=0": penalty_grad_first_order(params, f, r, 0.0, 1.0, fd_step=step, fd_scheme=scheme)[0]}
                for quantity, a in approx.items():
                    if step in STEPS_F64 or step == auto[quantity]:
                        rows.append({"problem": problem, "dtype": "float64", "quantity": quantity, "scheme": scheme,
                                     "fd_step": step, "auto": step == auto[quantity], **_compare(a, exact[quantity])})
    return rows


# ---- B: float32 along real runs ---------------------------------------------------------------------------
def along_run(domain: str, iterations: int, cache: Path) -> list[dict]:
    from cases import CASES

    from ofmu.seeds import derive_seed
    from ofmu.unlearning.settings import method_settings

    torch.set_num_threads(1)
    case = CASES[domain](cache)
    cfg = OFMUConfig.from_dict(method_settings("OFMU", domain))
    forget, retain = case.loaders(0)
    it_f, it_r = iter(forget), iter(retain)
    model, task = case.model.train(), case.task
    rows = []

    def next_batch(it, loader):
        try:
            return next(it), it
        except StopIteration:
            it = iter(loader)
            return next(it), it

    def make_objectives():
        nonlocal it_f, it_r
        fb, it_f = next_batch(it_f, forget)
        rb, it_r = next_batch(it_r, retain)
        return (lambda p: task.loss(model, fb)), (lambda p: task.loss(model, rb))

    def probe(k):
        def compare(params, forget_loss, retain_loss, rho, grad_f):
            exact, _ = penalty_grad(params, forget_loss, retain_loss, cfg.beta, rho, cfg.outer_grad, cfg.cos_eps)
            for scheme in SCHEMES:
                for step in STEPS_F32:
                    approx, _ = penalty_grad_first_order(params, forget_loss, retain_loss, cfg.beta, rho,
                                                         cfg.outer_grad, cfg.cos_eps, step, scheme)
                    rows.append({"problem": f"{domain} cell", "dtype": "float32", "quantity": f"grad F, beta={cfg.beta:g}",
                                 "scheme": scheme, "fd_step": step, "iteration": k, **_compare(approx, exact)})
        return compare

    torch.manual_seed(derive_seed(0, "method"))
    for k in range(iterations):
        ofmu_iteration(list(model.parameters()), make_objectives, cfg, rho_schedule(cfg, k), k, probe=probe(k))
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    import pandas as pd

    frame = pd.DataFrame(rows)
    out = []
    for key, g in frame.groupby(["problem", "dtype", "quantity", "scheme", "fd_step"], sort=True):
        out.append({**dict(zip(["problem", "dtype", "quantity", "scheme", "fd_step"], key)),
                    "rel_error_median": float(g["rel_error"].median()),
                    "rel_error_p90": float(g["rel_error"].quantile(0.9)),
                    "cosine_median": float(g["cosine"].median()), "cosine_p10": float(g["cosine"].quantile(0.1)),
                    "auto": bool(g["auto"].any()) if "auto" in g else False, "n": len(g)})
    return out


def plot(summary: list[dict], chosen: dict, path: Path) -> None:
    import pandas as pd

    from ofmu.plotting import style

    frame = pd.DataFrame(summary)
    panels = list(frame.groupby(["problem", "dtype"], sort=False))
    fig, axes = style.new_figure(len(panels), size=(4.6 * len(panels), 4.2))
    colours = {"grad Phi, beta=0.5": "#1f77b4", "grad F, beta=0.5": "#d62728", "grad F, beta=0": "#2ca02c",
               "grad F, beta=0.1": "#d62728"}
    for ax, ((problem, dtype), d) in zip(axes, panels):
        for (quantity, scheme), g in d.groupby(["quantity", "scheme"], sort=True):
            g = g.sort_values("fd_step")
            curve = g[~g["auto"]] if dtype == "float64" else g
            ax.loglog(curve["fd_step"], curve["rel_error_median"], marker="o", ms=3,
                      ls="-" if scheme == "forward" else "--", color=colours.get(quantity, "k"),
                      label=f"{quantity}, {scheme}")
            if dtype == "float64":
                auto = g[g["auto"]]
                ax.loglog(auto["fd_step"], auto["rel_error_median"], marker="*", ms=11, ls="none",
                          color=colours.get(quantity, "k"), markeredgecolor="k")
            else:
                ax.fill_between(g["fd_step"], g["rel_error_median"], g["rel_error_p90"], alpha=0.15,
                                color=colours.get(quantity, "k"))
        if dtype == "float32":
            step = chosen.get(problem.split()[0])
            if step is not None:
                ax.axvline(step, color="k", lw=0.8, ls=":", label=f"chosen fd_step {step:g}")
        ax.set_title(f"{problem}, {dtype}" + (" (median, band to p90 over a run)" if dtype == "float32" else ""),
                     fontsize=9)
        ax.set_xlabel("fd_step (perturbation / (1 + ||theta||))")
        ax.set_ylabel("relative error vs exact autograd")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("First-order OFMU: finite-difference derivatives against exact ones "
                 "(float64: * = the 'auto' step; float32: the real cells)", fontsize=10)
    style.save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=12, help="OFMU outer iterations per real cell")
    parser.add_argument("--domains", nargs="*", default=["vision", "llm"])
    parser.add_argument("--output", default=str(HERE / "results" / "ofmu_fidelity.json"))
    parser.add_argument("--figure", default="figures/fig11_first_order_fidelity.png")
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    from ofmu.unlearning.settings import method_settings

    rows = v_curves()
    for domain in args.domains:
        rows += along_run(domain, args.iterations, HERE / "results" / "cache")
    summary = summarize(rows)
    chosen = {d: method_settings("OFMU", d)["fd_step"] for d in args.domains}
    for s in summary:
        print({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in s.items()})
    write_json_atomic(args.output, {"summary": summary, "rows": rows, "chosen_fd_step": chosen,
                                    "provenance": provenance({"iterations": args.iterations, "domains": args.domains}, seed=0)})
    plot(summary, {d: v for d, v in chosen.items() if v != "auto"}, Path(args.figure))
    print(f"wrote {args.output} and {args.figure}")


if __name__ == "__main__":
    main()
