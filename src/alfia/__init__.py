"""ALFIA: ICU in-hospital mortality from the first 24 hours, via clinical text and Adaptive Layer Fusion.

The package follows the data flow: ``cohorts`` -> ``text`` -> ``models`` -> ``training`` ->
``evaluation`` -> ``inference``, with ``baselines`` beside the model and ``cli`` on top.
"""

__version__ = "0.1.0"
