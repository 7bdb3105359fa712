//! The WLM learner: an energy network, friction and an integrator, trained on snapshots.
