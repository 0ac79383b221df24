"""Offline training of the CAMEO models (PyTorch; never imported by the plugin).

Run as `python -m models.train {s2,s1,fusion,gpp,export} --config models/train/configs/bundled.json`.
Modules: `config` (JSON configs), `data` (context windows from CAMEO stacks), `model`
(dense-exact modality encoders, decoders, fusion, GPP regressor), `loss` (context-aware
loss), `loop` (training loop, checkpoints, DDP), `export` (ONNX + metadata + manifest),
`cli` (command line).
"""
