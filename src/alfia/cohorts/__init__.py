"""CW-24 cohorts: schemas as data, validation and leakage guard, splits, Parquet + manifest I/O,
sources (synthetic, PhysioNet 2012, MIMIC-IV, eICU) and a Table-1 style description."""
