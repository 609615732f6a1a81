"""EnvGenExperiment: equal-step A/B comparisons of designers (arms x seeds) with significance, locally and in
the cluster; the statistics and the report serve both modes and the science benchmark."""
