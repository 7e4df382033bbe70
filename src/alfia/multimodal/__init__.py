"""LeMoF: level-guided multimodal fusion of the clinical text, the hourly series and the tabular row.

    levels      what a level is, the per-modality cache (safetensors, fp16, stay_id order), matching by stay_id
    encoders    the levels of a trained ALFIA run and of a trained series run
    tabular     the tabular encoder: preprocessing and a small MLP whose hidden layers are levels
    model       LeMoF (eqs. 1-8 of docs/lemof.md) and early fusion
    fit         the small loop over cached tensors (the training package's state and callbacks)
    fusion      train one fusion over cached levels and write its run directory (the run and each ablation)
    run         a LeMoF run: train_lemof, load_lemof, predict_lemof (an ordinary run directory)
    ablations   each modality alone, late, early and single-level fusion, LeMoF without global heads
    figures     the figure of the level weights

It sits above the stages whose models it fuses (inference, series, baselines' neighbours) and below api/cli.
"""
