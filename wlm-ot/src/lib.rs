//! Optimal-transport losses and metrics for WLM: the geomloss-exact debiased Sinkhorn
//! divergence (training loss) and exact W1/W2 (evaluation metric).
