"""Thin adapter (both stages): the signal checks on the reference rows -> signal.json, or a failed job whose
message names the setting to change (ofmu.unlearning.signal)."""
from ofmu.io import write_json_atomic
from ofmu.logs import log_to
from ofmu.tables import read_results
from ofmu.unlearning.signal import LLM_THRESHOLDS, VISION_THRESHOLDS, llm_signal, vision_signal

with log_to(snakemake.log[0]):
    p = snakemake.params
    refs = read_results(snakemake.input.references)
    if p.domain == "vision":
        report = vision_signal(refs, p.seed, {**VISION_THRESHOLDS, **{k: v for k, v in p.signal.items() if k in VISION_THRESHOLDS}})
    else:
        report = llm_signal(refs, {**LLM_THRESHOLDS, **{k: v for k, v in p.signal.items() if k in LLM_THRESHOLDS}})
    write_json_atomic(snakemake.output[0], report)
    print(report)
