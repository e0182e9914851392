"""One module per model type, each defining `SPEC`, a `ModelSpec` (see
`forex_assets.models.registry`, which finds them). A module here must import without
torch or CUDA: every process of the code location imports them all."""
