"""The time-series branch: hourly first-24 h tables and sequence models beside the text model.

    variables   the shared vocabulary of hourly variables (names, units) and how sources map onto it
    hourly      the hourly table (value, measured mask, time since last per variable), Parquet + manifest
    sources     builders: PhysioNet 2012, YAIB's hourly eICU export, the MIMIC-IV demo
    preprocess  forward fill, train medians, train standardisation (fitted on train, saved with the run)
    models      BiLSTM + Transformer fusion, BiLSTM, Transformer, GRU, TCN (one config dataclass each)
    train       training into a run directory: early stopping on val AUPRC, seeds, resume
    predict     per-stay and hour-by-hour risk from a run
    transfer    zero-shot and fine-tuned transfer to another source, with rule-out metrics
"""
