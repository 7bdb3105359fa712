//! The Boids flocking simulator with the reference rules of SPEC 5.
