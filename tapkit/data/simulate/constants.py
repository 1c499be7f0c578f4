"""The simulator's constants: scale and timing of CTC Fluo-N2DL-HeLa, cell-cycle timing, and the
imaging constants in camera units (ADU) measured on that dataset."""

REAL_PIXEL_SIZE = 0.645  # um / px of CTC Fluo-N2DL-HeLa, whose nuclei have radius ~13.7 px
REAL_RADIUS = 13.7
FRAME_INTERVAL = 30.0  # minutes, as in Fluo-N2DL-HeLa; mitosis takes 2-3 frames, the cell cycle ~40
BURN_IN = 48  # at most this many frames simulated (not recorded) before frame 0, see `_burn_in`
TEXTURE_SIZE = 256
PROPHASE = 2.0  # frames of visible chromatin condensation before mitosis (~1 h)
YOUTH = 3.0  # frames: time constant of the daughters' re-expansion after mitosis (~1.5 h)

# Imaging constants in camera units (ADU), measured on Fluo-N2DL-HeLa: flat background with
# read noise ~10 ADU, nuclei ~100-1300 ADU above background (median ~700).
OFFSET = 1000.0
BACKGROUND = 40.0
BRIGHTNESS = 650.0
READ_NOISE = 10.0
GAIN = 3.0  # ADU per photon
