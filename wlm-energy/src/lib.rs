//! Potential-energy networks for populations, with hand-written differentiable forces.
