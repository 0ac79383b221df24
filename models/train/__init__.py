"""Offline training of the CAMEO models (PyTorch; never imported by the plugin).

Run as `python -m models.train {s2,s1,fusion,gpp,export,evaluate} --config bundled`.
Modules: `config` (JSON configs), `spec` (each modality's bands and scaling), `data`
(context windows from CAMEO stacks), `model` (dense-exact modality encoders, decoders,
fusion), `loss` (context-aware loss), `loop` (training loop, one `Stage` class per stage,
DDP), `checkpoints` (saving, loading, the trained models of a run), `export` (ONNX +
metadata + manifest, parity check, `run_export`), `evaluate` (model-card figures), `cost`
(multiply-adds), `compare` (loss and size comparisons), `cli` (command line).
GPP: `gpp_lue` (the bundled light-use-efficiency model and its ONNX export),
`gpp_experiment` (the five-tower experiment that trains and exports it,
scripts/train_gpp.sh), `gpp_small` (the regressors it is compared with; the `gpp` stage).
"""
