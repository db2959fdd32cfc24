"""The LLM (TOFU-protocol) stage: generated corpus, tokenizer, small causal LMs, data loading and metrics.

corpus     fictitious-author QA in TOFU's format, deterministic from a seed; hard probes
tokenizer  byte-level BPE trained on the corpus, as a transformers fast tokenizer
data       ``load_tofu_split(source, split)`` for the generated corpus and locuslab/TOFU alike; QA collation
models     GPT-2 with an exactly differentiable LayerNorm, ``answer_nll`` (the plug-in loss), training, I/O
metrics    OpenUnlearning's probability, ROUGE-L, truth ratio, FQ, MU, privleak, extraction strength
unlearn    the text Task, QA loaders and the LLM-only methods (NPO, SimNPO, IdkDPO, RMU) on the shared loop
api        build_corpus, train_model, unlearn, evaluate, probe_evaluate, sample_costs (the whole flow)
domain     LLMDomain for the one cell runner (``ofmu.unlearning.cells``), the stage's files and tables

Submodules import torch/transformers lazily from the caller's point of view: import what you use.
"""
