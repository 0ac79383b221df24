"""Input conventions of each modality: band order, scaling, clipping (method.md "Inputs").

These are the single source the export writes into the ONNX metadata; the runtime
(models/runtime) reads them back from there and never hard-codes them.
Stack values (docs/stack-format.md) are S2 reflectance (BOA offset already removed) and
S1 backscatter in dB; NaN = invalid.
"""

from ..stack.format import S1_BANDS, S2_BANDS  # the stacks' band order is the models' band order

MODALITIES = {
    "S2": {
        "bands": list(S2_BANDS),
        "units": "reflectance",
        # model value = (clip(stack value, clip_min, clip_max) + add) * multiply
        "scaling": {"clip_min": 0.0, "clip_max": 1.0, "add": 0.0, "multiply": 1.0,
                    "description": "stack value = surface reflectance (DN + BOA_ADD_OFFSET) / 10000; "
                                   "clipped to [0, 1]"},
    },
    "S1": {
        "bands": list(S1_BANDS),
        "units": "dB",
        "scaling": {"clip_min": -30.0, "clip_max": 5.0, "add": 30.0, "multiply": 1.0 / 35.0,
                    "description": "stack value = backscatter in dB after a centred rolling mean over 3 "
                                   "acquisitions in linear power; clipped to [-30, 5] dB, then (dB + 30) / 35"},
    },
}

EMBEDDING_NAMES = [f"F{i:02d}" for i in range(1, 8)]
WINDOW, FRAMES, HALO = 15, 11, 7

DATE_WINDOW_RULE = (
    "window of date t = the 11 nearest dates in the stack's date order: the consecutive run "
    "start..start+10 with start = clamp(t-5, 0, T-11); target off-centre for the first and last "
    "five dates; each frame carries its day offset (frame date - target date); fewer than 11 "
    "dates: the missing frames are padding with frame_exists = 0")
EDGE_RULE = (
    "pixels outside the raster are invalid (NaN), like clouds: a tile at the raster border gets a "
    "NaN halo; a pixel-date is valid when all its bands are finite; invalid pixels are filled with "
    "0 after normalisation (the training mean) and have validity channel 0")
S1_PRESENT_RULE = (
    "S1 is present for a pixel-date when its S1 bands there are finite; otherwise (or without an "
    "S1 stack) s1_present = 0 and the fusion model uses its S1-missing path")


def scaled(values, modality):
    """numpy: stack values -> model scale (before normalisation), NaN kept."""
    import numpy as np
    s = MODALITIES[modality]["scaling"]
    return ((np.clip(values, s["clip_min"], s["clip_max"]) + s["add"]) * s["multiply"]).astype(np.float32)
