"""Layer 2: the autotuner (Optuna ask/tell) and the synthetic load generator it measures with."""
